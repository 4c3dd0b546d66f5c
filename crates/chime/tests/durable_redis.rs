//! The durable store conformance suite on a real Redis named by `CHIME_REDIS_URL` (`.ci/run` starts
//! one on loopback). Without the variable every test says so loudly on stderr and passes without
//! running.
#![cfg(feature = "redis")]

mod common;

use chime::cluster::Redis;
use chime::durable::DurableStore;
use common::durable_conformance::{self, DurableBackend};

const VAR: &str = "CHIME_REDIS_URL";

/// The server named by `CHIME_REDIS_URL`.
struct Server(String);

impl DurableBackend for Server {
    type Store = Redis;
    async fn connect(&self) -> Redis {
        let store = Redis::connect(&self.0).await.unwrap_or_else(|e| panic!("{VAR}={}: {e}", self.0));
        store.prepare().await.unwrap();
        store
    }
}

fn server(test: &str) -> Option<Server> {
    common::conformance::server_url(VAR, "Redis", "redis://127.0.0.1:6379/", test).map(Server)
}

durable_conformance::durable_conformance_tests!(server);

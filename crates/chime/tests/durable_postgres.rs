//! The durable store conformance suite on a real PostgreSQL named by `CHIME_POSTGRES_URL` (`.ci/run` starts
//! one on loopback). Without the variable every test says so loudly on stderr and passes without
//! running.
#![cfg(feature = "postgres")]

mod common;

use chime::cluster::Postgres;
use chime::durable::DurableStore;
use common::durable_conformance::{self, DurableBackend};

const VAR: &str = "CHIME_POSTGRES_URL";

/// The server named by `CHIME_POSTGRES_URL`.
struct Server(String);

impl DurableBackend for Server {
    type Store = Postgres;
    async fn connect(&self) -> Postgres {
        let store = Postgres::connect(&self.0).await.unwrap_or_else(|e| panic!("{VAR}={}: {e}", self.0));
        store.prepare().await.unwrap();
        store
    }
}

fn server(test: &str) -> Option<Server> {
    common::conformance::server_url(VAR, "PostgreSQL", "postgres://chime:chime@127.0.0.1:5432/chime", test)
        .map(Server)
}

durable_conformance::durable_conformance_tests!(server);

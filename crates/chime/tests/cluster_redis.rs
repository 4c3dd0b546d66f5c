//! The Redis coordinator against a real server named by `CHIME_REDIS_URL` (`.ci/run` starts one on
//! loopback): the rules of the claim protocol, one grant per tick and increasing fences under
//! concurrent claims from separate connections, and three schedulers sharing the server in real
//! time. Without the variable every test says so loudly on stderr and passes without running.
#![cfg(feature = "redis")]

mod common;

use std::collections::HashMap;

use chime::cluster::{Coordinator, Redis};
use common::conformance::{self, Backend, ask, granted, unique_key};

const VAR: &str = "CHIME_REDIS_URL";

/// The server's URL, or `None` (after a loud message) when the variable is not set.
fn url(test: &str) -> Option<String> {
    conformance::server_url(VAR, "Redis", "redis://127.0.0.1:6379/", test)
}

async fn connect(url: &str) -> Redis {
    Redis::connect(url).await.unwrap_or_else(|e| panic!("{VAR}={url}: {e}"))
}

/// Deletes a test's row (the coordinator never deletes one: that would restart its fences).
async fn remove(url: &str, key: &str) {
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("DEL").arg(Redis::row_key(key)).query_async::<()>(&mut conn).await.unwrap();
}

/// The server named by `CHIME_REDIS_URL`.
struct Server(String);

impl Backend for Server {
    type Store = Redis;
    const LARGEST_TICK: u64 = u64::MAX - 1;
    async fn connect(&self) -> Redis {
        connect(&self.0).await
    }
    async fn remove(&self, key: &str) {
        remove(&self.0, key).await;
    }
}

conformance::conformance_tests!(|test: &str| url(test).map(Server));

/// The row is a hash at the hash-tagged `{chime:<key>}`, and its lease is on Redis's clock (`TIME`).
#[tokio::test]
async fn rows_are_hashes_at_hash_tagged_keys_on_the_server_clock() {
    let Some(url) = url("rows_are_hashes_at_hash_tagged_keys_on_the_server_clock") else { return };
    let store = connect(&url).await;
    let key = unique_key("row {odd} key");
    let a = granted(store.claim(&ask(&key, 3, "a", 10_000)).await.unwrap());
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let row_key = format!("{{chime:{key}}}");
    assert_eq!(Redis::row_key(&key), row_key);
    let row: HashMap<String, String> =
        redis::cmd("HGETALL").arg(&row_key).query_async(&mut conn).await.unwrap();
    let (secs, micros): (i64, i64) = redis::cmd("TIME").query_async(&mut conn).await.unwrap();
    let server_now = secs * 1000 + micros / 1000;
    assert_eq!((row["last_tick"].as_str(), row["fence"].as_str(), row["owner"].as_str()), ("3", "1", "a"));
    let until: i64 = row["lease_until"].parse().unwrap();
    assert!(
        (server_now..=server_now + 10_000).contains(&until),
        "lease_until {until} is Redis's TIME ({server_now}) plus at most the lease"
    );
    store.release(&a).await.unwrap();
    let row: HashMap<String, String> =
        redis::cmd("HGETALL").arg(&row_key).query_async(&mut conn).await.unwrap();
    assert!(!row.contains_key("owner"), "released: no owner: {row:?}");
    assert_eq!(
        (row["lease_until"].as_str(), row["last_tick"].as_str(), row["fence"].as_str()),
        ("0", "3", "1")
    );
    remove(&url, &key).await;
}

//! The PostgreSQL coordinator against a real server named by `CHIME_POSTGRES_URL` (`.ci/run` starts
//! one on loopback): the rules of the claim protocol, one grant per tick and increasing fences under
//! concurrent claims from separate connections, and three schedulers sharing the server in real
//! time. Without the variable every test says so loudly on stderr and passes without running.
#![cfg(feature = "postgres")]

mod common;

use std::time::Duration;

use chime::cluster::{ClaimOutcome, Coordinator, Postgres};
use common::conformance::{self, Backend, ask, granted, unique_key};

const VAR: &str = "CHIME_POSTGRES_URL";

/// The server's URL, or `None` (after a loud message) when the variable is not set.
fn url(test: &str) -> Option<String> {
    conformance::server_url(VAR, "PostgreSQL", "postgres://chime:chime@127.0.0.1:5432/chime", test)
}

async fn connect(url: &str) -> Postgres {
    Postgres::connect(url).await.unwrap_or_else(|e| panic!("{VAR}={url}: {e}"))
}

/// Deletes a test's row (the coordinator never deletes one: that would restart its fences).
async fn remove(url: &str, key: &str) {
    let client = raw(url).await;
    client.execute("DELETE FROM chime_claims WHERE key = $1", &[&key]).await.unwrap();
}

/// A plain `tokio_postgres` connection, for checks behind the coordinator's back.
async fn raw(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

/// The server named by `CHIME_POSTGRES_URL`.
struct Server(String);

impl Backend for Server {
    type Store = Postgres;
    async fn connect(&self) -> Postgres {
        connect(&self.0).await
    }
    async fn remove(&self, key: &str) {
        remove(&self.0, key).await;
    }
}

conformance::conformance_tests!(|test: &str| url(test).map(Server));

/// Members starting together on a database without the table all connect (the losers of the race
/// to create it ignore their error), and the table has the documented columns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_connecting_together_create_the_table_once() {
    let Some(url) = url("members_connecting_together_create_the_table_once") else { return };
    let schema = format!("chime_test_{:016x}", rand::random::<u64>());
    let admin = raw(&url).await;
    admin.batch_execute(&format!("CREATE SCHEMA {schema}")).await.unwrap();
    let sep = if url.contains('?') { '&' } else { '?' };
    let scoped = format!("{url}{sep}options=-c%20search_path%3D{schema}");
    let connects: Vec<_> = (0..8)
        .map(|_| {
            let scoped = scoped.clone();
            async move { Postgres::connect(&scoped).await }
        })
        .collect();
    let mut stores = Vec::new();
    for result in futures_join(connects).await {
        stores.push(result.unwrap_or_else(|e| panic!("a member failed to connect: {e}")));
    }
    let key = unique_key("schema");
    let a = granted(stores[0].claim(&ask(&key, 1, "a", 30_000)).await.unwrap());
    assert_eq!(
        stores[1].claim(&ask(&key, 1, "b", 30_000)).await.unwrap(),
        ClaimOutcome::Taken { last_tick: 1 }
    );
    let columns: Vec<(String, String)> = admin
        .query(
            "SELECT column_name::text, data_type::text FROM information_schema.columns
             WHERE table_schema = $1 AND table_name = 'chime_claims' ORDER BY ordinal_position",
            &[&schema],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    let columns: Vec<(&str, &str)> = columns.iter().map(|(c, t)| (c.as_str(), t.as_str())).collect();
    assert_eq!(
        columns,
        [
            ("key", "text"),
            ("last_tick", "bigint"),
            ("previous_tick", "bigint"),
            ("fence", "bigint"),
            ("owner", "text"),
            ("lease_until_ms", "bigint")
        ]
    );
    let row = admin
        .query_one(
            &format!(
                "SELECT last_tick, fence, owner, lease_until_ms - floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint
                 FROM {schema}.chime_claims WHERE key = $1"
            ),
            &[&key],
        )
        .await
        .unwrap();
    let (last, fence, owner, left): (i64, i64, String, i64) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    assert_eq!((last, fence, owner.as_str()), (1, a.fence as i64, "a"));
    assert!((0..=30_000).contains(&left), "the lease runs on the database's clock: {left} ms left");
    drop(stores);
    admin.batch_execute(&format!("DROP SCHEMA {schema} CASCADE")).await.unwrap();
}

/// Awaits every future, concurrently (spawned, so they also run in parallel).
async fn futures_join<F>(futures: Vec<F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.unwrap());
    }
    out
}

/// A connection the server ends is replaced: at most the call that meets it fails (a store error,
/// so that tick would not run), and the next call connects again.
#[tokio::test]
async fn a_broken_connection_is_replaced_by_the_next_call() {
    let Some(url) = url("a_broken_connection_is_replaced_by_the_next_call") else { return };
    let name = format!("chime-reconnect-{:016x}", rand::random::<u64>());
    let sep = if url.contains('?') { '&' } else { '?' };
    let store = connect(&format!("{url}{sep}application_name={name}")).await;
    let key = unique_key("reconnect");
    let a = granted(store.claim(&ask(&key, 1, "a", 30_000)).await.unwrap());
    let admin = raw(&url).await;
    let killed = admin
        .query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", &[&name])
        .await
        .unwrap();
    assert_eq!(killed.len(), 1, "the coordinator's one connection");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut failures = 0;
    let renewed = loop {
        match store.renew(&a, 0).await {
            Ok(renewed) => break renewed,
            Err(chime::Error::Store { backend: "postgres", message, .. }) if failures == 0 => {
                eprintln!("the call that met the broken connection: {message}");
                failures += 1;
            }
            Err(e) => panic!("the next call should have connected again: {e}"),
        }
    };
    assert!(renewed, "the lease survived the broken connection");
    store.release(&a).await.unwrap();
    let b = granted(store.claim(&ask(&key, 2, "b", 30_000)).await.unwrap());
    assert_eq!(b.fence, 2);
    remove(&url, &key).await;
}

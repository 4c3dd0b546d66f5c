//! The cluster store the workers of a run share (`--store`): chime's coordinators behind one type,
//! and the grid anchors of resty.timer's node-wide timers.
//!
//! resty.timer anchors a key's schedule at the first run of any worker; chime numbers cluster ticks
//! from an anchor all members share. chime-lua keeps each key's anchor in the store itself, beside
//! chime's claims (SQLite: table `chime_lua_anchors`; Redis: key `{chime:<key>}:anchor`;
//! PostgreSQL: table `chime_lua_anchors`): the first timer ever created for the key sets it, so the
//! first run is at once and the next ones every interval after it, as in resty.timer, and every
//! member (every worker, every host) agrees on the grid.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chime::cluster::{Claim, ClaimOutcome, Coordinator, Lease, Sqlite, StoreFuture};

/// Where the store is, as `--store` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// `sqlite:PATH`, or the run's own file.
    Sqlite(PathBuf),
    /// `redis://...` or `rediss://...` (feature `redis`).
    Redis(String),
    /// `postgres://...` or `postgresql://...` (feature `postgres`).
    Postgres(String),
}

impl StoreUrl {
    /// Parses `sqlite:PATH`, `redis://...`, `rediss://...`, `postgres://...`, `postgresql://...`.
    ///
    /// # Errors
    ///
    /// A message naming what is wrong with `url`.
    ///
    /// ```
    /// use chime_lua::StoreUrl;
    /// assert_eq!(StoreUrl::parse("sqlite:/tmp/x.db"), Ok(StoreUrl::Sqlite("/tmp/x.db".into())));
    /// assert!(StoreUrl::parse("mysql://x").is_err());
    /// ```
    pub fn parse(url: &str) -> Result<StoreUrl, String> {
        if let Some(path) = url.strip_prefix("sqlite:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err("--store sqlite: needs a path (sqlite:PATH)".to_string());
            }
            return Ok(StoreUrl::Sqlite(PathBuf::from(path)));
        }
        if url.starts_with("redis://") || url.starts_with("rediss://") {
            return Ok(StoreUrl::Redis(url.to_string()));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(StoreUrl::Postgres(url.to_string()));
        }
        Err(format!("--store {url:?}: expected sqlite:PATH, redis://... or postgres://..."))
    }
}

/// A connected store: one of chime's coordinators.
#[derive(Clone)]
pub(crate) enum Store {
    Sqlite(Sqlite),
    #[cfg(feature = "redis")]
    Redis(chime::cluster::Redis, String),
    #[cfg(feature = "postgres")]
    Postgres(chime::cluster::Postgres, String),
}

impl Store {
    /// Connects to the store (`rt` runs the async connections).
    pub(crate) fn connect(url: &StoreUrl, rt: &tokio::runtime::Runtime) -> Result<Store, String> {
        let _ = rt;
        match url {
            StoreUrl::Sqlite(path) => Sqlite::open(path)
                .map(Store::Sqlite)
                .map_err(|e| format!("cannot open the store {}: {e}", path.display())),
            #[cfg(feature = "redis")]
            StoreUrl::Redis(url) => rt
                .block_on(chime::cluster::Redis::connect(url))
                .map(|r| Store::Redis(r, url.clone()))
                .map_err(|e| format!("cannot connect to the store {url}: {e}")),
            #[cfg(not(feature = "redis"))]
            StoreUrl::Redis(_) => Err("this chime-lua was built without the `redis` feature".to_string()),
            #[cfg(feature = "postgres")]
            StoreUrl::Postgres(url) => rt
                .block_on(chime::cluster::Postgres::connect(url))
                .map(|p| Store::Postgres(p, url.clone()))
                .map_err(|e| format!("cannot connect to the store {url}: {e}")),
            #[cfg(not(feature = "postgres"))]
            StoreUrl::Postgres(_) => {
                Err("this chime-lua was built without the `postgres` feature".to_string())
            }
        }
    }

    /// The anchor of `key`'s grid: the creation time of the first timer of the key in this store
    /// (set now if there is none).
    pub(crate) fn anchor(&self, key: &str, rt: &tokio::runtime::Runtime) -> Result<SystemTime, String> {
        let _ = rt;
        let ms = match self {
            Store::Sqlite(sqlite) => sqlite_anchor(sqlite.path(), key)?,
            #[cfg(feature = "redis")]
            Store::Redis(_, url) => rt.block_on(redis_anchor(url, key))?,
            #[cfg(feature = "postgres")]
            Store::Postgres(_, url) => rt.block_on(postgres_anchor(url, key))?,
        };
        Ok(UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64))
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

#[cfg(feature = "redis")]
async fn redis_anchor(url: &str, key: &str) -> Result<i64, String> {
    let fail = |e: redis::RedisError| format!("the store's anchor of {key}: {e}");
    let client = redis::Client::open(url).map_err(fail)?;
    let mut conn = client.get_multiplexed_async_connection().await.map_err(fail)?;
    let name = format!("{{chime:{key}}}:anchor");
    let _: Option<String> =
        redis::cmd("SET").arg(&name).arg(now_ms()).arg("NX").query_async(&mut conn).await.map_err(fail)?;
    redis::cmd("GET").arg(&name).query_async::<i64>(&mut conn).await.map_err(fail)
}

#[cfg(feature = "postgres")]
async fn postgres_anchor(url: &str, key: &str) -> Result<i64, String> {
    let fail = |e: tokio_postgres::Error| format!("the store's anchor of {key}: {e}");
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.map_err(fail)?;
    let task = tokio::spawn(connection);
    let create =
        "CREATE TABLE IF NOT EXISTS chime_lua_anchors (key TEXT PRIMARY KEY, anchor_ms BIGINT NOT NULL)";
    if let Err(e) = client.batch_execute(create).await {
        // workers starting together may race to create the table: the loser's error is harmless
        let raced = [
            tokio_postgres::error::SqlState::UNIQUE_VIOLATION,
            tokio_postgres::error::SqlState::DUPLICATE_TABLE,
        ];
        if !e.code().is_some_and(|code| raced.contains(code)) {
            return Err(fail(e));
        }
    }
    client
        .execute(
            "INSERT INTO chime_lua_anchors (key, anchor_ms) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
            &[&key, &now_ms()],
        )
        .await
        .map_err(fail)?;
    let row = client
        .query_one("SELECT anchor_ms FROM chime_lua_anchors WHERE key = $1", &[&key])
        .await
        .map_err(fail)?;
    drop(client);
    let _ = task.await;
    Ok(row.get(0))
}

fn sqlite_anchor(path: &Path, key: &str) -> Result<i64, String> {
    let fail = |e: rusqlite::Error| format!("the store's anchor table: {e}");
    let conn = rusqlite::Connection::open(path).map_err(fail)?;
    conn.busy_timeout(Duration::from_secs(10)).map_err(fail)?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS chime_lua_anchors (key TEXT PRIMARY KEY, anchor_ms INTEGER NOT NULL)",
    )
    .map_err(fail)?;
    conn.execute("INSERT OR IGNORE INTO chime_lua_anchors (key, anchor_ms) VALUES (?1, ?2)", (key, now_ms()))
        .map_err(fail)?;
    conn.query_row("SELECT anchor_ms FROM chime_lua_anchors WHERE key = ?1", [key], |row| row.get(0))
        .map_err(fail)
}

impl Coordinator for Store {
    fn backend(&self) -> &'static str {
        match self {
            Store::Sqlite(s) => s.backend(),
            #[cfg(feature = "redis")]
            Store::Redis(s, _) => s.backend(),
            #[cfg(feature = "postgres")]
            Store::Postgres(s, _) => s.backend(),
        }
    }

    fn claim<'a>(&'a self, claim: &'a Claim) -> StoreFuture<'a, ClaimOutcome> {
        match self {
            Store::Sqlite(s) => s.claim(claim),
            #[cfg(feature = "redis")]
            Store::Redis(s, _) => s.claim(claim),
            #[cfg(feature = "postgres")]
            Store::Postgres(s, _) => s.claim(claim),
        }
    }

    fn renew<'a>(&'a self, lease: &'a Lease, now_ms: i64) -> StoreFuture<'a, bool> {
        match self {
            Store::Sqlite(s) => s.renew(lease, now_ms),
            #[cfg(feature = "redis")]
            Store::Redis(s, _) => s.renew(lease, now_ms),
            #[cfg(feature = "postgres")]
            Store::Postgres(s, _) => s.renew(lease, now_ms),
        }
    }

    fn release<'a>(&'a self, lease: &'a Lease) -> StoreFuture<'a, ()> {
        match self {
            Store::Sqlite(s) => s.release(lease),
            #[cfg(feature = "redis")]
            Store::Redis(s, _) => s.release(lease),
            #[cfg(feature = "postgres")]
            Store::Postgres(s, _) => s.release(lease),
        }
    }
}

//! The PostgreSQL coordinator (feature `postgres`): claims shared by members on many hosts through
//! one PostgreSQL database.
//!
//! One statement per operation on one table, the database's clock, no advisory locks. The table,
//! the statements and what the backend promises are documented on [`Postgres`] (this module is
//! private: that is where users read them).

use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Config, NoTls};

use super::protocol::{Claim, ClaimOutcome, Lease, stored_lease_ms};
use super::{Coordinator, StoreFuture};
use crate::error::Error;

const BACKEND: &str = "postgres";

/// How many times a refused claim is tried again when the read after it shows the lease ended.
const CLAIM_ATTEMPTS: usize = 3;

/// The database's clock in milliseconds since the Unix epoch, read when evaluated.
macro_rules! now_ms {
    () => {
        "floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint"
    };
}

const CREATE: &str = "CREATE TABLE IF NOT EXISTS chime_claims (
    key text PRIMARY KEY,
    last_tick bigint,
    previous_tick bigint,
    fence bigint NOT NULL,
    owner text,
    lease_until_ms bigint NOT NULL
)";

/// `$1` key, `$2` tick, `$3` member, `$4` lease in ms. A row back: granted (the new fence and the
/// tick claimed before); none: refused.
const CLAIM: &str = concat!(
    "INSERT INTO chime_claims AS c (key, last_tick, previous_tick, fence, owner, lease_until_ms)
     VALUES ($1, $2, NULL, 1, $3, ",
    now_ms!(),
    " + $4)
     ON CONFLICT (key) DO UPDATE SET
         previous_tick = c.last_tick,
         last_tick = EXCLUDED.last_tick,
         fence = c.fence + 1,
         owner = EXCLUDED.owner,
         lease_until_ms = ",
    now_ms!(),
    " + $4
     WHERE (c.last_tick IS NULL OR c.last_tick < EXCLUDED.last_tick)
       AND (c.owner IS NULL OR c.lease_until_ms <= ",
    now_ms!(),
    ")
     RETURNING fence, previous_tick"
);

/// `$1` key: why a claim was refused.
const READ: &str =
    concat!("SELECT last_tick, owner, lease_until_ms, ", now_ms!(), " FROM chime_claims WHERE key = $1");

/// `$1` key, `$2` fence, `$3` member, `$4` lease in ms. A row back: renewed.
const RENEW: &str = concat!(
    "UPDATE chime_claims SET lease_until_ms = ",
    now_ms!(),
    " + $4 WHERE key = $1 AND fence = $2 AND owner = $3 RETURNING fence"
);

/// `$1` key, `$2` fence, `$3` member.
const RELEASE: &str = "UPDATE chime_claims SET owner = NULL, lease_until_ms = 0
     WHERE key = $1 AND fence = $2 AND owner = $3 RETURNING fence";

/// A `tokio_postgres` error, kept as the cause (its message carries the error's own causes: its
/// `Display` alone says only "db error").
fn store(e: tokio_postgres::Error) -> Error {
    Error::store_error(BACKEND, e)
}

fn bigint(what: &str, value: u64) -> Result<i64, Error> {
    i64::try_from(value).map_err(|_| Error::store(BACKEND, format!("{what} {value} is past a bigint")))
}

fn unsigned(what: &str, value: i64) -> Result<u64, Error> {
    u64::try_from(value).map_err(|_| Error::store(BACKEND, format!("the row holds a negative {what}")))
}

struct Shared {
    config: Config,
    /// The current connection; replaced by the next call once it is closed.
    client: tokio::sync::Mutex<Arc<Client>>,
}

/// Claims in a PostgreSQL table, for members on many hosts. Cheap to clone: clones share one
/// connection, which the next call opens again after it broke.
///
/// One table, `chime_claims`, created by [`Postgres::connect`] when missing:
///
/// ```sql
/// CREATE TABLE IF NOT EXISTS chime_claims (
///     key text PRIMARY KEY,
///     last_tick bigint,         -- the last tick claimed
///     previous_tick bigint,     -- the tick claimed before it (what a grant reports)
///     fence bigint NOT NULL,    -- the fence of the last claim
///     owner text,               -- who holds the lease (NULL: released)
///     lease_until_ms bigint NOT NULL -- when it ends, the database's clock, ms since the Unix epoch
/// )
/// ```
///
/// Each operation is **one statement**, atomic on the key's row, reading time from the database's
/// clock (`clock_timestamp()`, read after the row lock is taken), never the members':
///
/// - claim: `INSERT .. ON CONFLICT (key) DO UPDATE SET .. WHERE last_tick < EXCLUDED.last_tick AND
///   (owner IS NULL OR lease_until_ms <= now) RETURNING fence, previous_tick` (the update copies the
///   old `last_tick` into `previous_tick`, so the grant learns the tick before it from the row it
///   locked). When no row comes back the claim was refused, and a plain read of the row tells
///   [`Taken`](ClaimOutcome::Taken) (`last_tick` only grows, so that answer is stable) from
///   [`Busy`](ClaimOutcome::Busy); the read decides nothing, and when it shows neither (the lease
///   was released in between) the claim is tried again, up to three times in all;
/// - renew: `UPDATE .. SET lease_until_ms = now + lease WHERE key = $1 AND fence = $2 AND owner = $3`;
/// - release: `UPDATE .. SET owner = NULL, lease_until_ms = 0 WHERE key = $1 AND fence = $2 AND owner = $3`.
///
/// No advisory locks and no named prepared statements: the statements are sent with their
/// parameter types (`query_typed`, the unnamed statement), so the coordinator works behind PgBouncer
/// in transaction mode. A granted claim is durable as soon as it is acknowledged (with PostgreSQL's
/// defaults, `synchronous_commit = on`); with a replica, promote only one that had it
/// (synchronous replication), or a promoted replica may grant a tick again.
///
/// The connection is plain TCP or a Unix socket (no TLS: a URL with `sslmode=require` is refused).
/// It is one connection per [`Postgres`] (its clones share it, and pipeline their statements over
/// it); when it breaks, the call in flight fails with [`Error::Store`] (the tick does not run here:
/// fail closed) and the next call connects again. A call is never retried after an error, since a
/// claim whose reply was lost may have been granted.
///
/// # Example
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), chime::Error> {
/// let store = chime::cluster::Postgres::connect("postgres://chime:chime@127.0.0.1:5432/chime").await?;
/// let sched = chime::Scheduler::start();
/// let report = sched
///     .timer(std::time::Duration::from_secs(60))
///     .recurring()
///     .key("nightly-report")
///     .coordinator(store)
///     .on_expire(|fire| println!("this host runs the tick with fence {:?}", fire.fence()))
///     .arm()?;
/// # drop(report);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Postgres {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Postgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Postgres")
            .field("hosts", &self.shared.config.get_hosts())
            .field("dbname", &self.shared.config.get_dbname())
            .finish_non_exhaustive()
    }
}

impl Postgres {
    /// Connects to the database at `url` (`postgres://user:password@host:port/dbname`, or the
    /// `key=value` form) and creates the `chime_claims` table if it is missing.
    ///
    /// Connecting waits up to 10 s unless `url` sets `connect_timeout`.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] (backend `postgres`) when `url` cannot be parsed, the database cannot be
    /// reached or refuses the login, or the table cannot be created.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let refused = chime::cluster::Postgres::connect("not a postgres url").await;
    /// assert!(matches!(refused, Err(chime::Error::Store { backend: "postgres", .. })));
    /// # }
    /// ```
    ///
    /// With a server:
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), chime::Error> {
    /// use chime::cluster::{Claim, ClaimOutcome, Coordinator, Postgres};
    /// let store = Postgres::connect("postgres://chime:chime@127.0.0.1:5432/chime").await?;
    /// let ask = Claim { key: "report".into(), tick: 7, member: "a".into(), lease_ms: 1000, now_ms: 0 };
    /// if let ClaimOutcome::Granted(lease) = store.claim(&ask).await? {
    ///     println!("tick 7 is ours, fence {}", lease.fence);
    ///     store.release(&lease).await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn connect(url: &str) -> Result<Postgres, Error> {
        let mut config: Config = url.parse().map_err(store)?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        if config.get_application_name().is_none() {
            config.application_name("chime");
        }
        let client = open(&config).await?;
        if let Err(e) = client.batch_execute(CREATE).await {
            // Members starting together may race to create the table: the loser's error is harmless.
            let raced = [
                tokio_postgres::error::SqlState::UNIQUE_VIOLATION,
                tokio_postgres::error::SqlState::DUPLICATE_TABLE,
            ];
            if !e.code().is_some_and(|code| raced.contains(code)) {
                return Err(store(e));
            }
        }
        Ok(Postgres {
            shared: Arc::new(Shared { config, client: tokio::sync::Mutex::new(Arc::new(client)) }),
        })
    }

    /// The open connection, or a new one when it was closed (the durable timers' tables share it).
    pub(crate) async fn client(&self) -> Result<Arc<Client>, Error> {
        let mut client = self.shared.client.lock().await;
        if client.is_closed() {
            *client = Arc::new(open(&self.shared.config).await?);
        }
        Ok(client.clone())
    }

    async fn claim_once(&self, client: &Client, claim: &Claim) -> Result<Option<ClaimOutcome>, Error> {
        let tick = bigint("tick", claim.tick)?;
        let lease = stored_lease_ms(claim.lease_ms);
        let granted = client
            .query_typed(
                CLAIM,
                &[
                    (&claim.key as &(dyn ToSql + Sync), Type::TEXT),
                    (&tick, Type::INT8),
                    (&claim.member, Type::TEXT),
                    (&lease, Type::INT8),
                ],
            )
            .await
            .map_err(store)?;
        if let Some(row) = granted.first() {
            let fence: i64 = row.try_get(0).map_err(store)?;
            let previous: Option<i64> = row.try_get(1).map_err(store)?;
            let previous_tick = previous.map(|t| unsigned("tick", t)).transpose()?;
            return Ok(Some(ClaimOutcome::Granted(Lease::granted(
                claim,
                unsigned("fence", fence)?,
                previous_tick,
            ))));
        }
        // Refused: read why. `last_tick` only grows, so a tick taken then is taken now.
        let rows = client
            .query_typed(READ, &[(&claim.key as &(dyn ToSql + Sync), Type::TEXT)])
            .await
            .map_err(store)?;
        let Some(row) = rows.first() else { return Ok(None) };
        let last_tick: Option<i64> = row.try_get(0).map_err(store)?;
        let owner: Option<String> = row.try_get(1).map_err(store)?;
        let lease_until_ms: i64 = row.try_get(2).map_err(store)?;
        let now_ms: i64 = row.try_get(3).map_err(store)?;
        if let Some(last_tick) = last_tick.filter(|&last| last >= tick) {
            return Ok(Some(ClaimOutcome::Taken { last_tick: unsigned("tick", last_tick)? }));
        }
        match owner {
            Some(owner) if lease_until_ms > now_ms => Ok(Some(ClaimOutcome::Busy { owner, lease_until_ms })),
            // The lease ended between the claim and the read: worth another try.
            _ => Ok(None),
        }
    }
}

/// Opens a connection and drives it on a task of its own until it closes.
async fn open(config: &Config) -> Result<Client, Error> {
    let (client, connection) = config.connect(NoTls).await.map_err(store)?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %store(e), "the PostgreSQL coordinator's connection closed");
        }
    });
    Ok(client)
}

impl Coordinator for Postgres {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn claim<'a>(&'a self, claim: &'a Claim) -> StoreFuture<'a, ClaimOutcome> {
        Box::pin(async move {
            let client = self.client().await?;
            for _ in 0..CLAIM_ATTEMPTS {
                if let Some(outcome) = self.claim_once(&client, claim).await? {
                    return Ok(outcome);
                }
            }
            // Leases came and went under every try: runs hold the key, or just held it (the owner is
            // unknown, as the last read showed none).
            Ok(ClaimOutcome::Busy { owner: String::new(), lease_until_ms: 0 })
        })
    }

    fn renew<'a>(&'a self, lease: &'a Lease, _now_ms: i64) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let client = self.client().await?;
            let fence = bigint("fence", lease.fence)?;
            let ms = stored_lease_ms(lease.lease_ms);
            let renewed = client
                .query_typed(
                    RENEW,
                    &[
                        (&lease.key as &(dyn ToSql + Sync), Type::TEXT),
                        (&fence, Type::INT8),
                        (&lease.member, Type::TEXT),
                        (&ms, Type::INT8),
                    ],
                )
                .await
                .map_err(store)?;
            Ok(!renewed.is_empty())
        })
    }

    fn release<'a>(&'a self, lease: &'a Lease) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let client = self.client().await?;
            let fence = bigint("fence", lease.fence)?;
            client
                .query_typed(
                    RELEASE,
                    &[
                        (&lease.key as &(dyn ToSql + Sync), Type::TEXT),
                        (&fence, Type::INT8),
                        (&lease.member, Type::TEXT),
                    ],
                )
                .await
                .map_err(store)?;
            Ok(())
        })
    }
}

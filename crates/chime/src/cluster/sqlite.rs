//! The embedded default coordinator: an SQLite file shared by the processes of one machine.
//!
//! Each operation is one `BEGIN IMMEDIATE` transaction (the database's write lock, so claims are
//! serialised across processes) that reads the key's row, applies [`protocol`](super::protocol) and
//! writes the result. WAL mode lets readers go on meanwhile; `synchronous = FULL` keeps a granted
//! claim across a power loss; a busy timeout waits out other writers. SQLite's locks do not work on
//! network filesystems, so a path on NFS, SMB/CIFS, 9P, AFS, Ceph or Lustre is refused.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::protocol::{self, Claim, ClaimOutcome, Lease, Row};
use super::{Coordinator, StoreFuture};
use crate::error::Error;

const BACKEND: &str = "sqlite";

fn store(e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::store_error(BACKEND, e)
}

/// Claims in an SQLite file, for the processes of one machine. Cheap to clone: clones share one
/// connection.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), chime::Error> {
/// let dir = std::env::temp_dir().join(format!("chime-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let store = chime::cluster::Sqlite::open(dir.join("claims.db"))?;
/// let sched = chime::Scheduler::start();
/// let report = sched
///     .timer(std::time::Duration::from_secs(60))
///     .recurring()
///     .key("nightly-report")
///     .coordinator(store)
///     .on_expire(|fire| println!("this process runs tick with fence {:?}", fire.fence()))
///     .arm()?;
/// assert!(report.is_armed());
/// # drop(report); std::fs::remove_dir_all(dir).ok();
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Sqlite {
    conn: Arc<Mutex<Connection>>,
    path: Arc<PathBuf>,
}

impl Sqlite {
    /// Opens (or creates) the claims database at `path`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOption`] (`path`) for a path on a network filesystem; [`Error::Store`] when
    /// SQLite cannot open or set up the file.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), chime::Error> {
    /// let dir = std::env::temp_dir().join(format!("chime-doc-open-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir).unwrap();
    /// let store = chime::cluster::Sqlite::open(dir.join("claims.db"))?;
    /// assert!(store.path().exists());
    /// let missing = chime::cluster::Sqlite::open("/no/such/dir/claims.db");
    /// assert!(matches!(missing, Err(chime::Error::Store { backend: "sqlite", .. })));
    /// # std::fs::remove_dir_all(dir).ok();
    /// # Ok(()) }
    /// ```
    pub fn open(path: impl AsRef<Path>) -> Result<Sqlite, Error> {
        let path = path.as_ref();
        refuse_network_filesystem(path)?;
        let conn = Connection::open(path).map_err(store)?;
        conn.busy_timeout(Duration::from_secs(10)).map_err(store)?;
        // Switching a new file to WAL takes an exclusive lock that the busy timeout does not always
        // wait for, so processes creating the database together retry.
        retry_busy(|| {
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "synchronous", "FULL")?;
            conn.execute_batch(
                "CREATE TABLE IF NOT EXISTS chime_claims (
                    key TEXT PRIMARY KEY,
                    last_tick INTEGER,
                    fence INTEGER NOT NULL,
                    owner TEXT,
                    lease_until_ms INTEGER NOT NULL
                )",
            )
        })
        .map_err(store)?;
        Ok(Sqlite { conn: Arc::new(Mutex::new(conn)), path: Arc::new(path.to_path_buf()) })
    }

    /// The database file.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), chime::Error> {
    /// let dir = std::env::temp_dir().join(format!("chime-doc-path-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir).unwrap();
    /// let store = chime::cluster::Sqlite::open(dir.join("claims.db"))?;
    /// assert_eq!(store.path(), dir.join("claims.db"));
    /// # std::fs::remove_dir_all(dir).ok();
    /// # Ok(()) }
    /// ```
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The shared connection, for the durable timers' tables in the same file.
    pub(crate) fn connection(&self) -> &Arc<Mutex<Connection>> {
        &self.conn
    }

    /// Runs `decide` on `key`'s row inside one `BEGIN IMMEDIATE` transaction, off the async threads.
    async fn apply<T: Send + 'static>(
        &self,
        key: &str,
        decide: impl FnOnce(Option<&Row>) -> (T, Option<Row>) + Send + 'static,
    ) -> Result<T, Error> {
        let mut decide = Some(decide);
        let mut answers = self
            .apply_many(vec![key.to_string()], move |_, row| (decide.take().expect("one key"))(row))
            .await?;
        Ok(answers.pop().expect("one answer per key"))
    }

    /// Runs `decide` on each key's row in turn (`decide(i, row)` for `keys[i]`), all inside one
    /// `BEGIN IMMEDIATE` transaction: one commit (one sync to disk) for the lot.
    async fn apply_many<T: Send + 'static>(
        &self,
        keys: Vec<String>,
        mut decide: impl FnMut(usize, Option<&Row>) -> (T, Option<Row>) + Send + 'static,
    ) -> Result<Vec<T>, Error> {
        let conn = self.conn.clone();
        let task = tokio::task::spawn_blocking(move || {
            let mut conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(store)?;
            let mut answers = Vec::with_capacity(keys.len());
            for (i, key) in keys.iter().enumerate() {
                // Cached statements: parsing the SQL cost more than running it (a thousand claims
                // in one transaction spent two thirds of their time in SQLite's parser).
                let row = tx
                    .prepare_cached(
                        "SELECT last_tick, fence, owner, lease_until_ms FROM chime_claims WHERE key = ?1",
                    )
                    .and_then(|mut select| {
                        select.query_row(params![key], |r| {
                            Ok(Row {
                                last_tick: r.get::<_, Option<i64>>(0)?.map(|t| t as u64),
                                fence: r.get::<_, i64>(1)? as u64,
                                owner: r.get(2)?,
                                lease_until_ms: r.get(3)?,
                            })
                        })
                    })
                    .optional()
                    .map_err(store)?;
                let (answer, next) = decide(i, row.as_ref());
                if let Some(next) = next {
                    tx.prepare_cached(
                        "INSERT INTO chime_claims (key, last_tick, fence, owner, lease_until_ms)
                         VALUES (?1, ?2, ?3, ?4, ?5)
                         ON CONFLICT (key) DO UPDATE SET last_tick = excluded.last_tick, fence = excluded.fence,
                             owner = excluded.owner, lease_until_ms = excluded.lease_until_ms",
                    )
                    .and_then(|mut upsert| {
                        upsert.execute(params![
                            key,
                            next.last_tick.map(|t| t as i64),
                            next.fence as i64,
                            next.owner,
                            next.lease_until_ms
                        ])
                    })
                    .map_err(store)?;
                }
                answers.push(answer);
            }
            tx.commit().map_err(store)?;
            Ok(answers)
        });
        task.await.map_err(store)?
    }
}

impl Coordinator for Sqlite {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn claim<'a>(&'a self, claim: &'a Claim) -> StoreFuture<'a, ClaimOutcome> {
        if i64::try_from(claim.tick).is_err() {
            return Box::pin(async move {
                Err(Error::store(BACKEND, format!("tick {} is past SQLite's INTEGER", claim.tick)))
            });
        }
        let owned = claim.clone();
        Box::pin(self.apply(&claim.key, move |row| protocol::claim(row, &owned, owned.now_ms)))
    }

    fn renew<'a>(&'a self, lease: &'a Lease, now_ms: i64) -> StoreFuture<'a, bool> {
        let owned = lease.clone();
        Box::pin(self.apply(&lease.key, move |row| protocol::renew(row, &owned, now_ms)))
    }

    fn release<'a>(&'a self, lease: &'a Lease) -> StoreFuture<'a, ()> {
        let owned = lease.clone();
        Box::pin(self.apply(&lease.key, move |row| ((), protocol::release(row, &owned))))
    }

    /// All in one transaction: one commit for the lot.
    fn claim_many<'a>(&'a self, claims: &'a [Claim]) -> StoreFuture<'a, Vec<ClaimOutcome>> {
        if let Some(claim) = claims.iter().find(|c| i64::try_from(c.tick).is_err()) {
            return Box::pin(async move {
                Err(Error::store(BACKEND, format!("tick {} is past SQLite's INTEGER", claim.tick)))
            });
        }
        let owned = claims.to_vec();
        let keys = claims.iter().map(|c| c.key.clone()).collect();
        Box::pin(self.apply_many(keys, move |i, row| protocol::claim(row, &owned[i], owned[i].now_ms)))
    }

    /// All in one transaction: one commit for the lot.
    fn release_many<'a>(&'a self, leases: &'a [Lease]) -> StoreFuture<'a, ()> {
        let owned = leases.to_vec();
        let keys = leases.iter().map(|l| l.key.clone()).collect();
        Box::pin(async move {
            self.apply_many(keys, move |i, row| ((), protocol::release(row, &owned[i]))).await?;
            Ok(())
        })
    }
}

/// Runs `setup` again while SQLite answers "busy" or "locked", for up to ten seconds.
pub(crate) fn retry_busy(mut setup: impl FnMut() -> rusqlite::Result<()>) -> rusqlite::Result<()> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match setup() {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if matches!(
                    e.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

/// Refuses a database on a network filesystem, where SQLite's locking cannot be trusted.
#[cfg(target_os = "linux")]
fn refuse_network_filesystem(path: &Path) -> Result<(), Error> {
    const NETWORK: [(i64, &str); 8] = [
        (0x6969, "NFS"),
        (0x517B, "SMB"),
        (0xFF53_4D42, "CIFS"),
        (0xFE53_4D42, "SMB2"),
        (0x0102_1997, "9P"),
        (0x5346_414F, "AFS"),
        (0x00C3_6400, "Ceph"),
        (0x0BD0_0BD0, "Lustre"),
    ];
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let Ok(stat) = rustix::fs::statfs(dir) else { return Ok(()) }; // Connection::open reports a bad path
    // `f_type` is an i64 on x86_64 but narrower elsewhere.
    #[allow(clippy::unnecessary_cast)]
    let magic = stat.f_type as i64;
    match NETWORK.iter().find(|(m, _)| *m == magic) {
        Some((_, name)) => Err(Error::invalid(
            "path",
            format!(
                "{} is on {name}, a network filesystem: SQLite's locks cannot be trusted there",
                dir.display()
            ),
        )),
        None => Ok(()),
    }
}

#[cfg(not(target_os = "linux"))]
fn refuse_network_filesystem(_path: &Path) -> Result<(), Error> {
    Ok(())
}

//! [`Shdicts`]: OpenResty's `ngx.shared.DICT`, shared by the workers of one node through an SQLite
//! file in the run's directory (nginx's shared dictionaries live as long as the master process;
//! these, as long as the run).
//!
//! One table holds every dictionary's entries with their expiry time (wall-clock milliseconds, the
//! clock every worker shares). Read-modify-write operations (`add`, `replace`, `incr`) run in one
//! `BEGIN IMMEDIATE` transaction, so they are atomic across workers. A dictionary holds at most its
//! declared size (keys and values, in bytes): a write that does not fit after expired entries are
//! dropped fails with `"no memory"` (nginx would evict the least recently used entries of a `set`;
//! chime-lua never drops a live entry silently).

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

/// A value a dictionary holds.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Val {
    Bool(bool),
    Num(f64),
    Str(Vec<u8>),
}

impl Val {
    fn kind(&self) -> i64 {
        match self {
            Val::Bool(_) => 1,
            Val::Num(_) => 2,
            Val::Str(_) => 3,
        }
    }

    fn size(&self) -> i64 {
        match self {
            Val::Str(s) => s.len() as i64,
            _ => 8,
        }
    }

    fn from_row(kind: i64, num: Option<f64>, blob: Option<Vec<u8>>) -> Val {
        match kind {
            1 => Val::Bool(num.unwrap_or(0.0) != 0.0),
            2 => Val::Num(num.unwrap_or(0.0)),
            _ => Val::Str(blob.unwrap_or_default()),
        }
    }

    fn columns(&self) -> (Option<f64>, Option<&[u8]>) {
        match self {
            Val::Bool(b) => (Some(f64::from(u8::from(*b))), None),
            Val::Num(n) => (Some(*n), None),
            Val::Str(s) => (None, Some(s.as_slice())),
        }
    }
}

/// How `store` treats an existing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Set,
    Add,
    Replace,
}

/// The node's dictionaries.
pub(crate) struct Shdicts {
    conn: Connection,
    sizes: HashMap<String, u64>,
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

fn db(e: rusqlite::Error) -> String {
    format!("shared dictionary store: {e}")
}

/// `exptime` seconds from now as an expiry time; 0 is "never" (stored as 0).
fn expiry(exptime: f64) -> i64 {
    if exptime > 0.0 { now_ms() + (exptime * 1000.0).ceil() as i64 } else { 0 }
}

const LIVE: &str = "(expires_ms = 0 OR expires_ms > ?3)";

impl Shdicts {
    pub(crate) fn open(path: &Path, declared: &[(String, u64)]) -> Result<Shdicts, String> {
        let conn = Connection::open(path).map_err(db)?;
        conn.busy_timeout(Duration::from_secs(10)).map_err(db)?;
        let mut tries = 0;
        loop {
            let setup = conn.pragma_update(None, "journal_mode", "WAL").and_then(|()| {
                conn.execute_batch(
                    "CREATE TABLE IF NOT EXISTS shdict (
                        dict TEXT NOT NULL, key BLOB NOT NULL, kind INTEGER NOT NULL,
                        num REAL, blob BLOB, flags INTEGER NOT NULL, expires_ms INTEGER NOT NULL,
                        size INTEGER NOT NULL, PRIMARY KEY (dict, key))",
                )
            });
            match setup {
                Ok(()) => break,
                // Workers creating the file together: WAL's switch does not always wait.
                Err(_) if tries < 100 => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => return Err(db(e)),
            }
        }
        Ok(Shdicts { conn, sizes: declared.iter().cloned().collect() })
    }

    /// Whether `name` was declared, and its capacity.
    pub(crate) fn capacity(&self, name: &str) -> Option<u64> {
        self.sizes.get(name).copied()
    }

    /// `(value, flags, stale)` of a key; `stale` entries are only returned when asked for.
    pub(crate) fn get(
        &self,
        dict: &str,
        key: &[u8],
        stale: bool,
    ) -> Result<Option<(Val, i64, bool)>, String> {
        let row = self
            .conn
            .query_row(
                "SELECT kind, num, blob, flags, expires_ms FROM shdict WHERE dict = ?1 AND key = ?2",
                params![dict, key],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get::<_, i64>(4)?)),
            )
            .optional()
            .map_err(db)?;
        Ok(row.and_then(|(kind, num, blob, flags, exp)| {
            let expired = exp != 0 && exp <= now_ms();
            (!expired || stale).then(|| (Val::from_row(kind, num, blob), flags, expired))
        }))
    }

    /// `set`, `add` or `replace`: `Ok(None)` when done, `Ok(Some(err))` for `"exists"`,
    /// `"not found"` or `"no memory"`. A `None` value deletes the key (`set` only).
    pub(crate) fn store(
        &mut self,
        dict: &str,
        key: &[u8],
        value: Option<Val>,
        exptime: f64,
        flags: i64,
        mode: Mode,
    ) -> Result<Option<&'static str>, String> {
        let capacity = self.capacity(dict).unwrap_or(u64::MAX) as i64;
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
        let now = now_ms();
        let live: bool = tx
            .query_row(
                &format!("SELECT count(*) FROM shdict WHERE dict = ?1 AND key = ?2 AND {LIVE}"),
                params![dict, key, now],
                |r| r.get::<_, i64>(0),
            )
            .map_err(db)?
            > 0;
        match (mode, live) {
            (Mode::Add, true) => return Ok(Some("exists")),
            (Mode::Replace, false) => return Ok(Some("not found")),
            _ => {}
        }
        let Some(value) = value else {
            tx.execute("DELETE FROM shdict WHERE dict = ?1 AND key = ?2", params![dict, key]).map_err(db)?;
            tx.commit().map_err(db)?;
            return Ok(None);
        };
        let size = key.len() as i64 + value.size();
        let used: i64 = tx
            .query_row(
                &format!(
                    "SELECT coalesce(sum(size), 0) FROM shdict WHERE dict = ?1 AND key <> ?2 AND {LIVE}"
                ),
                params![dict, key, now],
                |r| r.get(0),
            )
            .map_err(db)?;
        if used + size > capacity {
            return Ok(Some("no memory"));
        }
        tx.execute(
            "DELETE FROM shdict WHERE dict = ?1 AND expires_ms <> 0 AND expires_ms <= ?2",
            params![dict, now],
        )
        .map_err(db)?;
        let (num, blob) = value.columns();
        tx.execute(
            "INSERT OR REPLACE INTO shdict (dict, key, kind, num, blob, flags, expires_ms, size)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![dict, key, value.kind(), num, blob, flags, expiry(exptime), size],
        )
        .map_err(db)?;
        tx.commit().map_err(db)?;
        Ok(None)
    }

    /// `incr`: the new value, or `Err(msg)` for `"not found"` / `"not a number"` as a Lua-side error
    /// string (`Ok(Err)`).
    pub(crate) fn incr(
        &mut self,
        dict: &str,
        key: &[u8],
        by: f64,
        init: Option<f64>,
        init_ttl: f64,
    ) -> Result<Result<f64, &'static str>, String> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
        let now = now_ms();
        let row: Option<(i64, Option<f64>)> = tx
            .query_row(
                &format!("SELECT kind, num FROM shdict WHERE dict = ?1 AND key = ?2 AND {LIVE}"),
                params![dict, key, now],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(db)?;
        let value = match (row, init) {
            (Some((2, num)), _) => {
                let value = num.unwrap_or(0.0) + by;
                tx.execute(
                    "UPDATE shdict SET num = ?3 WHERE dict = ?1 AND key = ?2",
                    params![dict, key, value],
                )
                .map_err(db)?;
                value
            }
            (Some(_), _) => return Ok(Err("not a number")),
            (None, None) => return Ok(Err("not found")),
            (None, Some(init)) => {
                let value = init + by;
                tx.execute(
                    "INSERT OR REPLACE INTO shdict (dict, key, kind, num, blob, flags, expires_ms, size)
                     VALUES (?1, ?2, 2, ?3, NULL, 0, ?4, ?5)",
                    params![dict, key, value, expiry(init_ttl), key.len() as i64 + 8],
                )
                .map_err(db)?;
                value
            }
        };
        tx.commit().map_err(db)?;
        Ok(Ok(value))
    }

    pub(crate) fn delete(&self, dict: &str, key: &[u8]) -> Result<(), String> {
        self.conn
            .execute("DELETE FROM shdict WHERE dict = ?1 AND key = ?2", params![dict, key])
            .map_err(db)?;
        Ok(())
    }

    /// Seconds left (0: never expires); `None` for a missing key.
    pub(crate) fn ttl(&self, dict: &str, key: &[u8]) -> Result<Option<f64>, String> {
        let now = now_ms();
        let exp: Option<i64> = self
            .conn
            .query_row(
                &format!("SELECT expires_ms FROM shdict WHERE dict = ?1 AND key = ?2 AND {LIVE}"),
                params![dict, key, now],
                |r| r.get(0),
            )
            .optional()
            .map_err(db)?;
        Ok(exp.map(|e| if e == 0 { 0.0 } else { (e - now) as f64 / 1000.0 }))
    }

    /// Sets a live key's expiry; `false` for a missing key.
    pub(crate) fn expire(&self, dict: &str, key: &[u8], exptime: f64) -> Result<bool, String> {
        let n = self
            .conn
            .execute(
                &format!("UPDATE shdict SET expires_ms = ?4 WHERE dict = ?1 AND key = ?2 AND {LIVE}"),
                params![dict, key, now_ms(), expiry(exptime)],
            )
            .map_err(db)?;
        Ok(n > 0)
    }

    /// `flush_all` (every entry) or `flush_expired` (at most `max`, 0 = all); how many went.
    pub(crate) fn flush(&self, dict: &str, expired_only: bool, max: i64) -> Result<usize, String> {
        if !expired_only {
            return self.conn.execute("DELETE FROM shdict WHERE dict = ?1", [dict]).map_err(db);
        }
        let limit = if max > 0 { max } else { -1 };
        self.conn
            .execute(
                "DELETE FROM shdict WHERE rowid IN (SELECT rowid FROM shdict WHERE dict = ?1
                 AND expires_ms <> 0 AND expires_ms <= ?2 LIMIT ?3)",
                params![dict, now_ms(), limit],
            )
            .map_err(db)
    }

    /// Live keys, at most `max` (0 = all).
    pub(crate) fn keys(&self, dict: &str, max: i64) -> Result<Vec<Vec<u8>>, String> {
        let limit = if max > 0 { max } else { -1 };
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT key FROM shdict WHERE dict = ?1 AND ?2 = ?2 AND {LIVE} LIMIT ?4"))
            .map_err(db)?;
        let rows = stmt.query_map(params![dict, 0, now_ms(), limit], |r| r.get(0)).map_err(db)?;
        rows.collect::<Result<_, _>>().map_err(db)
    }

    /// Bytes the live entries use.
    pub(crate) fn used(&self, dict: &str) -> Result<u64, String> {
        let used: i64 = self
            .conn
            .query_row(
                &format!("SELECT coalesce(sum(size), 0) FROM shdict WHERE dict = ?1 AND ?2 = ?2 AND {LIVE}"),
                params![dict, 0, now_ms()],
                |r| r.get(0),
            )
            .map_err(db)?;
        Ok(used.max(0) as u64)
    }
}

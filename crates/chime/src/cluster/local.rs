//! The in-process coordinator: for tests, and for several schedulers in one process.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use super::protocol::{self, Claim, ClaimOutcome, Lease, Row};
use super::{Coordinator, StoreFuture};

/// Claims kept in memory, shared by every clone. Its clock is the members' (they share a process).
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
/// use chime::cluster::{Claim, ClaimOutcome, Coordinator, Local};
/// let store = Local::new();
/// let ask = Claim { key: "report".into(), tick: 7, member: "a".into(), lease_ms: 1000, now_ms: 0 };
/// assert!(matches!(store.claim(&ask).await?, ClaimOutcome::Granted(_)));
/// assert!(matches!(store.claim(&ask).await?, ClaimOutcome::Taken { last_tick: 7 }));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
pub struct Local {
    rows: Arc<Mutex<HashMap<String, Row>>>,
}

impl Local {
    /// An empty store.
    ///
    /// # Examples
    ///
    /// ```
    /// let store = chime::cluster::Local::new();
    /// assert_eq!(store.row("report"), None);
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of one key's row, for tests and diagnostics.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), chime::Error> {
    /// use chime::cluster::{Claim, Coordinator, Local};
    /// let store = Local::new();
    /// let ask = Claim { key: "report".into(), tick: 7, member: "a".into(), lease_ms: 1000, now_ms: 0 };
    /// store.claim(&ask).await?;
    /// let row = store.row("report").unwrap();
    /// assert_eq!((row.last_tick, row.fence, row.owner.as_deref()), (Some(7), 1, Some("a")));
    /// assert_eq!(row.lease_until_ms, 1000);
    /// # Ok(()) }
    /// ```
    pub fn row(&self, key: &str) -> Option<Row> {
        self.rows.lock().unwrap_or_else(PoisonError::into_inner).get(key).cloned()
    }

    fn apply<T>(&self, key: &str, decide: impl FnOnce(Option<&Row>) -> (T, Option<Row>)) -> T {
        let mut rows = self.rows.lock().unwrap_or_else(PoisonError::into_inner);
        let (answer, next) = decide(rows.get(key));
        if let Some(next) = next {
            rows.insert(key.to_string(), next);
        }
        answer
    }
}

impl Coordinator for Local {
    fn backend(&self) -> &'static str {
        "local"
    }

    fn claim<'a>(&'a self, claim: &'a Claim) -> StoreFuture<'a, ClaimOutcome> {
        Box::pin(async move { Ok(self.apply(&claim.key, |row| protocol::claim(row, claim, claim.now_ms))) })
    }

    fn renew<'a>(&'a self, lease: &'a Lease, now_ms: i64) -> StoreFuture<'a, bool> {
        Box::pin(async move { Ok(self.apply(&lease.key, |row| protocol::renew(row, lease, now_ms))) })
    }

    fn release<'a>(&'a self, lease: &'a Lease) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.apply(&lease.key, |row| ((), protocol::release(row, lease)));
            Ok(())
        })
    }
}

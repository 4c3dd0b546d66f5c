//! The store behind durable timers: the small trait every backend implements, and what its calls
//! carry. Each call applies the rules of [`machine`](super::machine) atomically, reading time from the
//! store's clock where it has one (PostgreSQL, Redis) and from `now_ms`, the scheduler's wall clock,
//! where it has none (SQLite, on one machine).

use super::machine::{ClaimRules, Decision, Outcome, Row, State};
use crate::cluster::StoreFuture;

/// What a scheduler asks of [`DurableStore::claim`]: up to `limit` claimable timers of its handlers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRequest {
    /// Who claims, the lease, and the policies that decide skips and exhausted timers.
    pub rules: ClaimRules,
    /// The handlers this scheduler knows: timers of other handlers are left alone.
    pub handlers: Vec<String>,
    /// How many timers to take at most (earliest `ready_ms` first).
    pub limit: usize,
    /// The scheduler's wall clock, milliseconds since the Unix epoch (for stores without a clock).
    pub now_ms: i64,
}

/// One timer a claim took, and what it decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    /// Run it, or it was skipped / failed instead (report it).
    pub decision: Decision,
    /// The row as the claim left it (for a run: its attempt and fence).
    pub row: Row,
}

/// What [`DurableStore::claim`] answered.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClaimReply {
    /// The timers taken, earliest first.
    pub claimed: Vec<Claimed>,
    /// When the next timer of these handlers becomes claimable (store clock), if any is left.
    pub next_ready_ms: Option<i64>,
    /// The store's clock when it decided, milliseconds since the Unix epoch.
    pub now_ms: i64,
}

/// A run's end, for [`DurableStore::finish`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finish {
    /// The timer.
    pub key: String,
    /// The run's fence.
    pub fence: u64,
    /// How it ended.
    pub outcome: Outcome,
}

/// A store for durable timers: implemented by [`cluster::Sqlite`](crate::cluster::Sqlite) and, with
/// their features, `cluster::Redis` and `cluster::Postgres`. Every call is atomic on the rows it
/// touches and applies [`machine`](super::machine)'s rules; batch calls apply them row by row.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), chime::Error> {
/// use chime::durable::machine::{ClaimRules, Decision, Outcome, Row, State};
/// use chime::durable::{ClaimRequest, DurableStore, Finish};
///
/// let store = chime::cluster::Sqlite::open(":memory:")?;
/// store.prepare().await?;
/// assert_eq!(store.create(&[Row::new("k", "remind", b"hi".to_vec(), 1_000, None)]).await?, [None]);
/// let rules = ClaimRules { member: "me".into(), lease_ms: 30_000, max_attempts: 5, grace_ms: None };
/// let ask = ClaimRequest { rules, handlers: vec!["remind".into()], limit: 10, now_ms: 2_000 };
/// let reply = store.claim(&ask).await?;
/// let run = &reply.claimed[0];
/// assert_eq!((run.decision, run.row.attempt, run.row.fence), (Decision::Run, 1, 1));
/// let done = Finish { key: "k".into(), fence: 1, outcome: Outcome::Fired };
/// assert_eq!(store.finish("me", &[done], 2_100).await?, [true]);
/// assert_eq!(store.get("k").await?.unwrap().state, State::Fired);
/// # Ok(()) }
/// ```
///
/// Renewing, cancelling, listing, purging, and finding timers no scheduler here can run:
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), chime::Error> {
/// use chime::durable::machine::{ClaimRules, Row, State};
/// use chime::durable::{ClaimRequest, DurableStore};
///
/// let store = chime::cluster::Sqlite::open(":memory:")?;
/// store.prepare().await?;
/// store.create(&[Row::new("a", "remind", Vec::new(), 0, None), Row::new("b", "bill", Vec::new(), 0, None)]).await?;
/// let rules = ClaimRules { member: "me".into(), lease_ms: 30_000, max_attempts: 5, grace_ms: None };
/// let ask = ClaimRequest { rules, handlers: vec!["remind".into()], limit: 10, now_ms: 10 };
/// let fence = store.claim(&ask).await?.claimed[0].row.fence;
/// assert_eq!(store.renew("me", &[("a".into(), fence)], 30_000, 20).await?, [true]);
/// assert_eq!(store.unknown(&["remind".to_string()], 20).await?, [("bill".to_string(), 1)]);
/// assert!(store.cancel("b", 30).await?);
/// assert_eq!(store.list(State::Cancelled, None, 10).await?[0].key, "b");
/// assert_eq!(store.purge(31, 100).await?, 1, "cancelled before 31: gone");
/// # Ok(()) }
/// ```
pub trait DurableStore: Send + Sync + 'static {
    /// A short name for reports: `sqlite`, `redis`, `postgres`.
    fn backend(&self) -> &'static str;

    /// Creates the tables (or checks the server) once, before first use.
    fn prepare(&self) -> StoreFuture<'_, ()>;

    /// Stores each new row whose key is free, in one transaction; per row `None` (stored) or the
    /// row already stored under its key (nothing changed). Durable once it returns.
    fn create<'a>(&'a self, rows: &'a [Row]) -> StoreFuture<'a, Vec<Option<Row>>>;

    /// The row stored under `key`.
    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Row>>;

    /// Up to `limit` rows in `state`, ordered by `(ready_ms, key)`, after `after` when given.
    fn list<'a>(
        &'a self,
        state: State,
        after: Option<(i64, &'a str)>,
        limit: usize,
    ) -> StoreFuture<'a, Vec<Row>>;

    /// Cancels `key` (see [`machine::cancel`](super::machine::cancel)); `true` when it did.
    fn cancel<'a>(&'a self, key: &'a str, now_ms: i64) -> StoreFuture<'a, bool>;

    /// Claims the earliest claimable timers of the request's handlers (see
    /// [`machine::claim`](super::machine::claim)).
    fn claim<'a>(&'a self, request: &'a ClaimRequest) -> StoreFuture<'a, ClaimReply>;

    /// Extends the leases of `member`'s runs `(key, fence)`; per run, whether it still held.
    fn renew<'a>(
        &'a self,
        member: &'a str,
        runs: &'a [(String, u64)],
        lease_ms: i64,
        now_ms: i64,
    ) -> StoreFuture<'a, Vec<bool>>;

    /// Records how `member`'s runs ended; per run, `true` when recorded (now or by an earlier try),
    /// `false` when the run was stale (its lease ran out and another run took the timer).
    fn finish<'a>(&'a self, member: &'a str, runs: &'a [Finish], now_ms: i64) -> StoreFuture<'a, Vec<bool>>;

    /// Deletes up to `limit` purgeable rows that finished before `before_ms`; how many.
    fn purge(&self, before_ms: i64, limit: usize) -> StoreFuture<'_, usize>;

    /// Handlers not in `known` with claimable timers at `now_ms`, and how many each.
    fn unknown<'a>(&'a self, known: &'a [String], now_ms: i64) -> StoreFuture<'a, Vec<(String, u64)>>;
}

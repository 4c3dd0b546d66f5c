//! The life of one stored timer, free of I/O: what a store does with a timer's row when a scheduler
//! creates, claims, renews, finishes, cancels or purges it. The SQLite store runs these functions
//! inside its transaction; the PostgreSQL statements and the Redis script implement the same rules in
//! their own languages, and the conformance tests hold all of them to this file.
//!
//! ```text
//!            claim (due, lease free)            finish: Ok
//! Pending ─────────────────────────► Running ─────────────────► Fired
//!    ▲                                 │  │ finish: Err, attempts left (ready = now + backoff)
//!    └─────────────────────────────────┘  │ finish: Err, none left / lease ran out on the last ──► Failed
//!    claim of a first run later than its grace ──► Skipped        cancel (Pending, Running, Failed) ──► Cancelled
//! ```
//!
//! - A row is **claimable** when it is `Pending` or `Running` and its `ready_ms` has passed on the
//!   store's clock: `ready_ms` is the due time, then the lease's end while a run holds it, then the
//!   retry time after a failed attempt. A `Running` row whose lease ran out (its scheduler died or
//!   lost the store) is claimable again: the next run has `attempt + 1` and a higher fence. A live
//!   lease blocks every other claim, so runs never overlap.
//! - **Fences** come from one counter per store, taken by each grant: strictly increasing per timer
//!   (and across the store, so a key purged and created again still gets higher fences).
//! - **Renewals and finishes** hold only for the run that the row still names (`Running`, same fence,
//!   same owner): a stale run can neither extend nor end anyone else's.
//! - For finished rows (`Fired`, `Failed`, `Cancelled`, `Skipped`) `ready_ms` is when they finished:
//!   purges remove `Fired`, `Cancelled` and `Skipped` rows older than the retention. `Failed` rows stay
//!   until cancelled (then purged like the others).

/// Where a stored timer stands.
///
/// ```
/// use chime::durable::State;
/// assert_eq!(State::from_code(State::Failed.code()), Some(State::Failed));
/// assert!(State::Running.is_live() && !State::Fired.is_live());
/// assert_eq!(State::Skipped.to_string(), "skipped");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum State {
    /// Waiting for its due time (or for a retry after a failed attempt).
    Pending,
    /// A scheduler runs it under a lease.
    Running,
    /// It ran and its handler returned `Ok`.
    Fired,
    /// Its handler failed on every attempt the retry policy allowed (kept until cancelled).
    Failed,
    /// Cancelled before it ran.
    Cancelled,
    /// Its first run would have started later than its grace allowed, so it did not run.
    Skipped,
}

impl State {
    /// Every state, in code order.
    pub const ALL: [State; 6] =
        [State::Pending, State::Running, State::Fired, State::Failed, State::Cancelled, State::Skipped];

    /// The small integer the SQL stores keep (0 to 5, in [`State::ALL`]'s order).
    pub fn code(self) -> i64 {
        State::ALL.iter().position(|&s| s == self).unwrap_or(0) as i64
    }

    /// The state stored as `code`, if any.
    pub fn from_code(code: i64) -> Option<State> {
        usize::try_from(code).ok().and_then(|i| State::ALL.get(i).copied())
    }

    /// Its lowercase name, as Redis stores it and `Display` prints it.
    pub fn name(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Running => "running",
            State::Fired => "fired",
            State::Failed => "failed",
            State::Cancelled => "cancelled",
            State::Skipped => "skipped",
        }
    }

    /// The state named `name` (see [`name`](Self::name)).
    pub fn from_name(name: &str) -> Option<State> {
        State::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Whether a run is still to come (`Pending` or `Running`).
    pub fn is_live(self) -> bool {
        matches!(self, State::Pending | State::Running)
    }

    /// Whether purges remove it after the retention (`Fired`, `Cancelled`, `Skipped`).
    pub fn is_purgeable(self) -> bool {
        matches!(self, State::Fired | State::Cancelled | State::Skipped)
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One stored timer: what every backend keeps per key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The timer's key, unique per store.
    pub key: String,
    /// The handler that runs it.
    pub handler: String,
    /// The bytes handed to the handler.
    pub payload: Vec<u8>,
    /// When it is due, milliseconds since the Unix epoch.
    pub due_ms: i64,
    /// Its own grace (overrides the scheduler's): a first run later than this after `due_ms` is skipped.
    pub grace_ms: Option<i64>,
    /// Where it stands.
    pub state: State,
    /// Runs started so far.
    pub attempt: u32,
    /// The fence of the latest grant (0 before the first).
    pub fence: u64,
    /// The scheduler whose run holds the lease, while `Running`.
    pub owner: Option<String>,
    /// Live rows: when it may be claimed (due time, lease end, retry time); finished rows: when they
    /// finished. Milliseconds since the Unix epoch, store clock.
    pub ready_ms: i64,
    /// The last error (a failed attempt, a skip, a run whose scheduler died).
    pub error: Option<String>,
}

impl Row {
    /// A new `Pending` row, due at `due_ms`.
    ///
    /// ```
    /// let row = chime::durable::machine::Row::new("k", "remind", b"hi".to_vec(), 1_000, None);
    /// assert_eq!((row.ready_ms, row.attempt, row.fence), (1_000, 0, 0));
    /// ```
    pub fn new(key: &str, handler: &str, payload: Vec<u8>, due_ms: i64, grace_ms: Option<i64>) -> Row {
        Row {
            key: key.to_string(),
            handler: handler.to_string(),
            payload,
            due_ms,
            grace_ms,
            state: State::Pending,
            attempt: 0,
            fence: 0,
            owner: None,
            ready_ms: due_ms,
            error: None,
        }
    }

    /// Whether a claim at store time `now_ms` may take it.
    ///
    /// ```
    /// let row = chime::durable::machine::Row::new("k", "h", Vec::new(), 1_000, None);
    /// assert!(!row.is_claimable(999) && row.is_claimable(1_000));
    /// ```
    pub fn is_claimable(&self, now_ms: i64) -> bool {
        self.state.is_live() && self.ready_ms <= now_ms
    }

    /// Whether the row still is the run `fence` of `member`.
    fn held_by(&self, member: &str, fence: u64) -> bool {
        self.state == State::Running && self.fence == fence && self.owner.as_deref() == Some(member)
    }

    fn finished(&self, state: State, now_ms: i64, error: Option<String>) -> Row {
        Row { state, owner: None, ready_ms: now_ms, error, ..self.clone() }
    }
}

/// What a claiming scheduler brings: who it is, how long its lease lasts, and its policies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRules {
    /// The claiming scheduler's member id.
    pub member: String,
    /// The lease a grant starts with, in milliseconds.
    pub lease_ms: i64,
    /// Runs allowed per timer; a lease that runs out on the last one fails the timer.
    pub max_attempts: u32,
    /// The scheduler's grace for timers without their own (`None`: run however late).
    pub grace_ms: Option<i64>,
}

/// What a claim did with a claimable row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Granted: the claimer runs it now, under the new fence.
    Run,
    /// Its first run came later than its grace: marked `Skipped`, not run.
    Skipped,
    /// Its last allowed attempt never finished (the scheduler died or lost the store): marked
    /// `Failed`, not run.
    Exhausted,
}

/// Claims `row` at store time `now_ms`; `fence` is the store's next fence, used only by a grant.
/// `None` when the row is not claimable; otherwise the decision and the new row.
///
/// ```
/// use chime::durable::machine::{claim, ClaimRules, Decision, Row, State};
/// let rules = ClaimRules { member: "a".into(), lease_ms: 1_000, max_attempts: 3, grace_ms: None };
/// let row = Row::new("k", "remind", Vec::new(), 5_000, None);
/// assert_eq!(claim(&row, &rules, 4_999, 1), None, "never early");
/// let (decision, run) = claim(&row, &rules, 5_000, 1).unwrap();
/// assert_eq!((decision, run.state, run.attempt, run.fence, run.ready_ms), (Decision::Run, State::Running, 1, 1, 6_000));
/// assert_eq!(claim(&run, &rules, 5_999, 2), None, "a live lease blocks other claims");
/// ```
pub fn claim(row: &Row, rules: &ClaimRules, now_ms: i64, fence: u64) -> Option<(Decision, Row)> {
    if !row.is_claimable(now_ms) {
        return None;
    }
    let late_ms = now_ms.saturating_sub(row.due_ms);
    if let Some(grace_ms) = row.grace_ms.or(rules.grace_ms).filter(|&g| row.attempt == 0 && late_ms > g) {
        let why =
            format!("skipped: its first run would have started {late_ms} ms late (grace {grace_ms} ms)");
        return Some((Decision::Skipped, row.finished(State::Skipped, now_ms, Some(why))));
    }
    if row.attempt >= rules.max_attempts {
        let why = format!(
            "attempt {} never finished (its scheduler died or lost the store) and no attempts are left",
            row.attempt
        );
        return Some((Decision::Exhausted, row.finished(State::Failed, now_ms, Some(why))));
    }
    let run = Row {
        state: State::Running,
        attempt: row.attempt.saturating_add(1),
        fence,
        owner: Some(rules.member.clone()),
        ready_ms: now_ms.saturating_add(rules.lease_ms),
        ..row.clone()
    };
    Some((Decision::Run, run))
}

/// Extends run `fence` of `member` to `now_ms + lease_ms`; `None` when the row no longer is that run
/// (another claim took it after the lease ran out, or it was cancelled).
///
/// ```
/// use chime::durable::machine::{claim, renew, ClaimRules, Row};
/// let rules = ClaimRules { member: "a".into(), lease_ms: 1_000, max_attempts: 3, grace_ms: None };
/// let (_, run) = claim(&Row::new("k", "h", Vec::new(), 0, None), &rules, 0, 7).unwrap();
/// assert_eq!(renew(&run, "a", 7, 1_000, 900).unwrap().ready_ms, 1_900);
/// assert_eq!(renew(&run, "b", 7, 1_000, 900), None);
/// assert_eq!(renew(&run, "a", 6, 1_000, 900), None);
/// ```
pub fn renew(row: &Row, member: &str, fence: u64, lease_ms: i64, now_ms: i64) -> Option<Row> {
    row.held_by(member, fence).then(|| Row { ready_ms: now_ms.saturating_add(lease_ms), ..row.clone() })
}

/// How a run ended, as its scheduler reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The handler returned `Ok`.
    Fired,
    /// The handler failed; try again `delay_ms` after now.
    Retry {
        /// Backoff before the next attempt.
        delay_ms: i64,
        /// What the handler said.
        error: String,
    },
    /// The handler failed and the retry policy allows no more attempts.
    Failed {
        /// What the handler said.
        error: String,
    },
    /// The run was handed back unstarted (its claim's reply came too late to trust the lease) or
    /// stopped by a shutdown: claimable again at once, and it does not count as an attempt.
    Released,
}

/// What a finish did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finished {
    /// Recorded: the new row.
    Done(Row),
    /// This run's finish was recorded before (a retry of a finish whose reply was lost), or the timer
    /// was cancelled meanwhile: nothing to change.
    Already,
    /// The row belongs to a later run (this run's lease ran out and another scheduler claimed it):
    /// refused.
    Stale,
}

/// Records how run `fence` of `member` ended, at store time `now_ms`.
///
/// ```
/// use chime::durable::machine::{claim, finish, ClaimRules, Finished, Outcome, Row, State};
/// let rules = ClaimRules { member: "a".into(), lease_ms: 1_000, max_attempts: 3, grace_ms: None };
/// let (_, run) = claim(&Row::new("k", "h", Vec::new(), 0, None), &rules, 0, 1).unwrap();
/// let retry = Outcome::Retry { delay_ms: 500, error: "busy".into() };
/// let Finished::Done(row) = finish(&run, "a", 1, &retry, 100) else { panic!() };
/// assert_eq!((row.state, row.ready_ms, row.error.as_deref()), (State::Pending, 600, Some("busy")));
/// assert_eq!(finish(&row, "a", 1, &retry, 100), Finished::Already, "a repeated finish changes nothing");
/// assert_eq!(finish(&run, "a", 0, &Outcome::Fired, 100), Finished::Stale);
/// ```
pub fn finish(row: &Row, member: &str, fence: u64, outcome: &Outcome, now_ms: i64) -> Finished {
    if !row.held_by(member, fence) {
        return if row.fence == fence && row.state != State::Running {
            Finished::Already
        } else {
            Finished::Stale
        };
    }
    Finished::Done(match outcome {
        Outcome::Fired => row.finished(State::Fired, now_ms, None),
        Outcome::Failed { error } => row.finished(State::Failed, now_ms, Some(error.clone())),
        Outcome::Retry { delay_ms, error } => Row {
            state: State::Pending,
            owner: None,
            ready_ms: now_ms.saturating_add(*delay_ms),
            error: Some(error.clone()),
            ..row.clone()
        },
        Outcome::Released => Row {
            state: State::Pending,
            attempt: row.attempt.saturating_sub(1),
            owner: None,
            ready_ms: now_ms,
            ..row.clone()
        },
    })
}

/// Cancels the timer at `now_ms`: a `Pending`, `Running` or `Failed` row becomes `Cancelled`
/// (a run going on is not interrupted, but can no longer renew or finish). `None` when there was
/// nothing to cancel.
///
/// ```
/// use chime::durable::machine::{cancel, Row, State};
/// let row = cancel(&Row::new("k", "h", Vec::new(), 5_000, None), 10).unwrap();
/// assert_eq!((row.state, row.ready_ms), (State::Cancelled, 10));
/// assert_eq!(cancel(&row, 20), None, "once");
/// ```
pub fn cancel(row: &Row, now_ms: i64) -> Option<Row> {
    matches!(row.state, State::Pending | State::Running | State::Failed)
        .then(|| row.finished(State::Cancelled, now_ms, row.error.clone()))
}

/// Whether a purge at `cutoff_ms` (now minus the retention) removes the row.
///
/// ```
/// use chime::durable::machine::{cancel, is_purged, Row};
/// let row = cancel(&Row::new("k", "h", Vec::new(), 5_000, None), 10).unwrap();
/// assert!(!is_purged(&row, 10) && is_purged(&row, 11));
/// ```
pub fn is_purged(row: &Row, cutoff_ms: i64) -> bool {
    row.state.is_purgeable() && row.ready_ms < cutoff_ms
}

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;

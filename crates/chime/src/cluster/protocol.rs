//! The claim protocol, free of I/O: what a store does with one key's row for a claim, a renewal or a
//! release. The in-process and SQLite coordinators run these functions inside their transaction;
//! the Redis script and the PostgreSQL statement implement the same rules in their own languages,
//! and the tests hold all of them to this file.
//!
//! One row per key: the last tick claimed, the fence of that claim, and who holds the lease until
//! when. A claim of tick `t` is granted when `t` is later than the last tick claimed and no live
//! lease is held (a run still going blocks the next one: runs never overlap across members). A grant
//! increments the fence, so fences are strictly increasing per key.

/// One key's state in a store.
///
/// # Examples
///
/// ```
/// use chime::cluster::protocol::{claim, Claim, Row};
/// let ask = Claim { key: "report".into(), tick: 7, member: "a".into(), lease_ms: 1000, now_ms: 0 };
/// let (_, row) = claim(None, &ask, 0);
/// assert_eq!(row, Some(Row { last_tick: Some(7), fence: 1, owner: Some("a".into()), lease_until_ms: 1000 }));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Row {
    /// The last tick claimed; `None` before the first claim.
    pub last_tick: Option<u64>,
    /// The fence of the last claim (0 before the first).
    pub fence: u64,
    /// The member holding the lease, if any.
    pub owner: Option<String>,
    /// When the lease ends, in the store's clock (milliseconds since the Unix epoch).
    pub lease_until_ms: i64,
}

/// A member asking to run one tick.
///
/// # Examples
///
/// ```
/// use chime::cluster::protocol::{claim, Claim, ClaimOutcome};
/// let ask = Claim { key: "report".into(), tick: 7, member: "a".into(), lease_ms: 1000, now_ms: 0 };
/// assert!(matches!(claim(None, &ask, 0).0, ClaimOutcome::Granted(_)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The timer's key, shared by every member.
    pub key: String,
    /// The tick number, counted from the shared anchor.
    pub tick: u64,
    /// Who asks.
    pub member: String,
    /// How long the lease lasts unless renewed, in milliseconds.
    pub lease_ms: i64,
    /// The member's wall clock (milliseconds since the Unix epoch): the time for stores that have no
    /// clock of their own (in-process, SQLite on the same machine). Redis and PostgreSQL use theirs.
    pub now_ms: i64,
}

/// A granted claim: the right to run one tick, proven by its fence.
///
/// # Examples
///
/// ```
/// use chime::cluster::protocol::{claim, Claim, ClaimOutcome};
/// let ask = Claim { key: "report".into(), tick: 7, member: "a".into(), lease_ms: 1000, now_ms: 0 };
/// let (ClaimOutcome::Granted(lease), _) = claim(None, &ask, 0) else { unreachable!() };
/// assert_eq!((lease.tick, lease.fence, lease.member.as_str(), lease.previous_tick), (7, 1, "a", None));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The timer's key.
    pub key: String,
    /// The tick it runs.
    pub tick: u64,
    /// The fencing token: strictly increasing per key; pass it to whatever the run writes.
    pub fence: u64,
    /// The member holding it.
    pub member: String,
    /// How long a renewal extends it, in milliseconds.
    pub lease_ms: i64,
    /// The tick claimed before this one (by any member), so the run can tell how many were missed.
    pub previous_tick: Option<u64>,
}

impl Lease {
    /// The lease a store grants for `claim`, with the claim's `fence` and the tick claimed before it:
    /// the one construction every backend uses.
    ///
    /// # Examples
    ///
    /// ```
    /// use chime::cluster::{Claim, Lease};
    /// let ask = Claim { key: "report".into(), tick: 7, member: "a".into(), lease_ms: 1000, now_ms: 0 };
    /// let lease = Lease::granted(&ask, 3, Some(6));
    /// assert_eq!((lease.tick, lease.fence, lease.previous_tick), (7, 3, Some(6)));
    /// ```
    pub fn granted(claim: &Claim, fence: u64, previous_tick: Option<u64>) -> Lease {
        Lease {
            key: claim.key.clone(),
            tick: claim.tick,
            fence,
            member: claim.member.clone(),
            lease_ms: claim.lease_ms,
            previous_tick,
        }
    }
}

/// The longest lease a store records, in milliseconds (about 35,000 years): stores compute
/// `now + lease`, which must stay exact in Redis's Lua numbers (doubles, exact to 2^53) and inside
/// PostgreSQL's `bigint`. Members ask for leases of a few intervals; nothing real comes near it.
///
/// # Examples
///
/// ```
/// use chime::cluster::protocol::{claim, Claim, MAX_LEASE_MS};
/// let ask = Claim { key: "k".into(), tick: 1, member: "a".into(), lease_ms: i64::MAX, now_ms: 0 };
/// assert_eq!(claim(None, &ask, 0).1.unwrap().lease_until_ms, MAX_LEASE_MS);
/// ```
pub const MAX_LEASE_MS: i64 = 1 << 50;

/// `lease_ms` as a store records it: at most [`MAX_LEASE_MS`], and not negative.
///
/// # Examples
///
/// ```
/// use chime::cluster::protocol::{MAX_LEASE_MS, stored_lease_ms};
/// assert_eq!(stored_lease_ms(1000), 1000);
/// assert_eq!(stored_lease_ms(i64::MAX), MAX_LEASE_MS);
/// ```
pub fn stored_lease_ms(lease_ms: i64) -> i64 {
    lease_ms.clamp(0, MAX_LEASE_MS)
}

/// What a store answered to a [`Claim`].
///
/// # Examples
///
/// ```
/// use chime::cluster::protocol::{claim, Claim, ClaimOutcome};
/// let ask = Claim { key: "report".into(), tick: 7, member: "a".into(), lease_ms: 1000, now_ms: 0 };
/// let (_, row) = claim(None, &ask, 0);
/// let b = Claim { member: "b".into(), tick: 8, ..ask.clone() };
/// assert_eq!(claim(row.as_ref(), &b, 10).0, ClaimOutcome::Busy { owner: "a".into(), lease_until_ms: 1000 });
/// assert_eq!(claim(row.as_ref(), &ask, 10).0, ClaimOutcome::Taken { last_tick: 7 });
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// The tick is this member's to run.
    Granted(Lease),
    /// That tick (or a later one) was claimed already; `last_tick` is the latest claimed.
    Taken {
        /// The latest tick claimed.
        last_tick: u64,
    },
    /// A run still holds the lease (possibly a crashed member's, until it expires).
    Busy {
        /// Who holds it.
        owner: String,
        /// When it ends, store clock, milliseconds since the Unix epoch.
        lease_until_ms: i64,
    },
}

/// Decides a claim against `row` at store time `now_ms`; returns the outcome and the new row (`None`
/// when the row does not change).
///
/// # Examples
///
/// ```
/// use chime::cluster::protocol::{claim, Claim, ClaimOutcome};
/// let ask = Claim { key: "report".into(), tick: 7, member: "a".into(), lease_ms: 1000, now_ms: 0 };
/// let (granted, row) = claim(None, &ask, 0);
/// assert!(matches!(granted, ClaimOutcome::Granted(ref lease) if lease.fence == 1));
/// let row = row.unwrap();
/// let again = Claim { member: "b".into(), ..ask.clone() };
/// assert_eq!(claim(Some(&row), &again, 10), (ClaimOutcome::Taken { last_tick: 7 }, None));
/// let next = Claim { tick: 8, ..again };
/// assert!(matches!(claim(Some(&row), &next, 10).0, ClaimOutcome::Busy { .. }), "a's lease runs until 1000");
/// assert!(matches!(claim(Some(&row), &next, 1000).0, ClaimOutcome::Granted(ref l) if l.fence == 2));
/// ```
pub fn claim(row: Option<&Row>, claim: &Claim, now_ms: i64) -> (ClaimOutcome, Option<Row>) {
    let current = row.cloned().unwrap_or_default();
    if let Some(last_tick) = current.last_tick.filter(|&last| last >= claim.tick) {
        return (ClaimOutcome::Taken { last_tick }, None);
    }
    if let Some(owner) = current.owner.as_ref().filter(|_| current.lease_until_ms > now_ms) {
        return (ClaimOutcome::Busy { owner: owner.clone(), lease_until_ms: current.lease_until_ms }, None);
    }
    let fence = current.fence + 1;
    let next = Row {
        last_tick: Some(claim.tick),
        fence,
        owner: Some(claim.member.clone()),
        lease_until_ms: now_ms.saturating_add(stored_lease_ms(claim.lease_ms)),
    };
    (ClaimOutcome::Granted(Lease::granted(claim, fence, current.last_tick)), Some(next))
}

/// Whether `row` is still the claim `lease` made (same fence, same owner).
fn holds(row: &Row, lease: &Lease) -> bool {
    row.fence == lease.fence && row.owner.as_deref() == Some(lease.member.as_str())
}

/// Extends `lease` from `now_ms`; `false` (and no change) when it was lost to a later claim.
///
/// # Examples
///
/// ```
/// use chime::cluster::protocol::{claim, renew, Claim, ClaimOutcome};
/// let ask = Claim { key: "report".into(), tick: 7, member: "a".into(), lease_ms: 1000, now_ms: 0 };
/// let (ClaimOutcome::Granted(lease), row) = claim(None, &ask, 0) else { unreachable!() };
/// let (renewed, row) = renew(row.as_ref(), &lease, 500);
/// assert!(renewed);
/// assert_eq!(row.unwrap().lease_until_ms, 1500);
/// assert_eq!(renew(None, &lease, 600), (false, None), "no row: nothing to renew");
/// ```
pub fn renew(row: Option<&Row>, lease: &Lease, now_ms: i64) -> (bool, Option<Row>) {
    match row.filter(|row| holds(row, lease)) {
        Some(row) => (
            true,
            Some(Row {
                lease_until_ms: now_ms.saturating_add(stored_lease_ms(lease.lease_ms)),
                ..row.clone()
            }),
        ),
        None => (false, None),
    }
}

/// Ends `lease` at once, so the next tick need not wait for it to expire. A lease already lost
/// changes nothing.
///
/// # Examples
///
/// ```
/// use chime::cluster::protocol::{claim, release, Claim, ClaimOutcome};
/// let ask = Claim { key: "report".into(), tick: 7, member: "a".into(), lease_ms: 1000, now_ms: 0 };
/// let (ClaimOutcome::Granted(lease), row) = claim(None, &ask, 0) else { unreachable!() };
/// let row = release(row.as_ref(), &lease).unwrap();
/// assert_eq!((row.owner.as_deref(), row.lease_until_ms, row.fence), (None, 0, 1));
/// let next = Claim { tick: 8, member: "b".into(), ..ask };
/// assert!(matches!(claim(Some(&row), &next, 1).0, ClaimOutcome::Granted(_)));
/// ```
pub fn release(row: Option<&Row>, lease: &Lease) -> Option<Row> {
    row.filter(|row| holds(row, lease)).map(|row| Row { owner: None, lease_until_ms: 0, ..row.clone() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(tick: u64, member: &str) -> Claim {
        Claim { key: "k".into(), tick, member: member.into(), lease_ms: 1000, now_ms: 0 }
    }

    fn granted(outcome: ClaimOutcome) -> Lease {
        match outcome {
            ClaimOutcome::Granted(lease) => lease,
            other => panic!("expected a grant, got {other:?}"),
        }
    }

    #[test]
    fn one_claim_per_tick_and_fences_increase() {
        let (a, row) = claim(None, &ask(5, "a"), 0);
        let a = granted(a);
        let row = row.unwrap();
        assert_eq!((a.fence, row.last_tick, a.previous_tick), (1, Some(5), None));
        assert_eq!(claim(Some(&row), &ask(5, "b"), 10).0, ClaimOutcome::Taken { last_tick: 5 });
        assert_eq!(claim(Some(&row), &ask(4, "b"), 10).0, ClaimOutcome::Taken { last_tick: 5 });
        let row = release(Some(&row), &a).unwrap();
        let (b, row) = claim(Some(&row), &ask(6, "b"), 20);
        let b = granted(b);
        assert_eq!((b.fence, b.previous_tick), (2, Some(5)));
        assert_eq!(row.unwrap().owner.as_deref(), Some("b"));
    }

    #[test]
    fn a_live_lease_blocks_the_next_tick_until_it_expires() {
        let (_, row) = claim(None, &ask(1, "a"), 0);
        let row = row.unwrap();
        let busy = claim(Some(&row), &ask(2, "b"), 999).0;
        assert_eq!(busy, ClaimOutcome::Busy { owner: "a".into(), lease_until_ms: 1000 });
        assert!(
            matches!(claim(Some(&row), &ask(2, "a"), 999).0, ClaimOutcome::Busy { .. }),
            "not even its own"
        );
        assert_eq!(granted(claim(Some(&row), &ask(2, "b"), 1000).0).fence, 2, "expired: failover");
    }

    #[test]
    fn a_lost_lease_cannot_be_renewed_or_released() {
        let (a, row) = claim(None, &ask(1, "a"), 0);
        let a = granted(a);
        let (renewed, row) = renew(row.as_ref(), &a, 500);
        assert!(renewed);
        let row = row.unwrap();
        assert_eq!(row.lease_until_ms, 1500);
        let (b, row) = claim(Some(&row), &ask(2, "b"), 2000);
        granted(b);
        let row = row.unwrap();
        assert_eq!(renew(Some(&row), &a, 2100), (false, None));
        assert_eq!(release(Some(&row), &a), None);
    }
}

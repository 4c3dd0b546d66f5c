//! One shard's timers: a [`Wheel`] of callbacks, and beside it the [`Extras`] of the timers that
//! have them. A plain timer's entry is its callback alone (40 bytes in all); a timer with extras is
//! flagged in the wheel, so only such a timer makes anyone look in the side table.
//!
//! Every removal goes through here and takes the extras along, so a slab index handed to a new timer
//! never finds an old timer's extras.

use super::side::Side;
use super::{ExpireFn, Extras, Record};
use crate::wheel::{EntryMut, Key, Removed, Wheel};

#[derive(Default)]
pub(crate) struct Timers {
    wheel: Wheel<ExpireFn>,
    /// The extras of flagged entries, by slab index.
    extras: Side,
}

/// A timer in place: its callback, whether it is armed and, if it has them, its extras.
pub(crate) struct RecordMut<'a> {
    pub(crate) expire: &'a mut ExpireFn,
    pub(crate) armed: bool,
    pub(crate) extras: Option<&'a mut Extras>,
}

impl Timers {
    /// Stores `record`, armed at `deadline`.
    #[inline]
    pub(crate) fn insert(&mut self, deadline: u64, record: Record) -> Key {
        let key = self.wheel.insert(deadline, record.expire);
        if let Some(extras) = record.extras {
            self.attach(key, extras);
        }
        key
    }

    /// Gives `key`, which has none, these extras.
    pub(crate) fn attach(&mut self, key: Key, extras: Box<Extras>) {
        self.wheel.set_flag(key, true);
        // An index's previous occupant took its extras with it when it left (see the module doc).
        let previous = self.extras.insert(key.index(), extras);
        debug_assert!(previous.is_none(), "extras left behind at index {}", key.index());
    }

    /// Removes `key` with its extras, and whether it was armed.
    #[inline]
    pub(crate) fn remove_armed(&mut self, key: Key) -> Option<(Record, bool)> {
        let Removed { value, armed, flag } = self.wheel.remove_flagged(key)?;
        let extras = if flag { self.extras.remove(key.index()) } else { None };
        Some((Record { expire: value, extras }, armed))
    }

    pub(crate) fn remove(&mut self, key: Key) -> Option<Record> {
        self.remove_armed(key).map(|(record, _)| record)
    }

    /// The timer of `key` in place, in one lookup of the wheel (and one of the side table if it has
    /// extras).
    #[inline]
    pub(crate) fn get_mut(&mut self, key: Key) -> Option<RecordMut<'_>> {
        let EntryMut { value: expire, armed, flag, .. } = self.wheel.entry_mut(key)?;
        let extras = if flag { self.extras.get_mut(key.index()) } else { None };
        Some(RecordMut { expire, armed, extras })
    }

    /// A plain timer's callback (no extras, no owned mark), swapped for `stand_in`, with the deadline
    /// it was armed for: the driver's common case, in one lookup. `None` for any other timer.
    #[inline]
    pub(crate) fn lend_plain(&mut self, key: Key, stand_in: ExpireFn) -> Option<(u64, ExpireFn)> {
        let entry = self.wheel.entry_mut(key)?;
        if entry.flag || entry.value.owned() {
            return None;
        }
        Some((entry.scheduled, std::mem::replace(entry.value, stand_in)))
    }

    /// The callback of `key` alone (no look at its extras).
    #[inline]
    pub(crate) fn expire_mut(&mut self, key: Key) -> Option<&mut ExpireFn> {
        self.wheel.get_mut(key)
    }

    /// The extras of `key`, if it has them.
    pub(crate) fn extras(&self, key: Key) -> Option<&Extras> {
        if self.wheel.flag(key)? { self.extras.get(key.index()) } else { None }
    }

    /// The extras of `key`, first made for an owned one-shot that had none (its callback carries the
    /// mark, [`super::Owned`]): what it would have carried had the builder made them, its interval
    /// excepted (the handle keeps that).
    pub(crate) fn extras_mut(&mut self, key: Key) -> Option<&mut Extras> {
        if !self.wheel.flag(key)? {
            if !self.wheel.get(key)?.owned() {
                return None;
            }
            let made = Extras { owned: true, interval_in_handle: true, ..Extras::default() };
            self.attach(key, Box::new(made));
        }
        self.extras.get_mut(key.index())
    }

    // What the driver asks of the wheel itself; removals are only the ones above.

    #[inline]
    pub(crate) fn deadline(&self, key: Key) -> Option<u64> {
        self.wheel.deadline(key)
    }

    pub(crate) fn scheduled(&self, key: Key) -> Option<u64> {
        self.wheel.scheduled(key)
    }

    pub(crate) fn rearm(&mut self, key: Key, deadline: u64) -> bool {
        self.wheel.rearm(key, deadline)
    }

    pub(crate) fn poll(&mut self, now: u64) -> Option<Key> {
        self.wheel.poll(now)
    }

    pub(crate) fn next_deadline(&self) -> Option<u64> {
        self.wheel.next_deadline()
    }

    pub(crate) fn len(&self) -> usize {
        self.wheel.len()
    }

    pub(crate) fn keys(&self) -> impl Iterator<Item = Key> + '_ {
        self.wheel.keys()
    }

    pub(crate) fn contains(&self, key: Key) -> bool {
        self.wheel.get(key).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Fire, Owned};

    fn noop(_: &Fire) {}

    fn with_extras(count: u64) -> Record {
        Record { expire: Box::new(noop), extras: Some(Box::new(Extras { count, ..Extras::default() })) }
    }

    #[test]
    fn extras_leave_with_their_timer_and_never_reach_the_next_one_at_its_index() {
        let mut timers = Timers::default();
        let old = timers.insert(10, with_extras(7));
        assert_eq!(timers.extras(old).map(|e| e.count), Some(7));
        let (record, armed) = timers.remove_armed(old).expect("there");
        assert!(armed);
        assert_eq!(record.extras.map(|e| e.count), Some(7), "the extras leave with the record");
        let new = timers.insert(20, Record { expire: Box::new(noop), extras: None });
        assert_eq!(new.index(), old.index(), "the index is used again");
        assert!(timers.extras(new).is_none(), "a plain timer has no extras, whatever its index had");
        assert!(timers.extras_mut(new).is_none(), "nor does asking make any for an unowned callback");
        assert!(timers.extras(old).is_none());
    }

    #[test]
    fn an_owned_one_shot_gets_its_extras_on_first_need_and_keeps_them() {
        let mut timers = Timers::default();
        let key = timers.insert(10, Record { expire: Box::new(Owned(noop)), extras: None });
        assert!(timers.extras(key).is_none(), "none until something needs them");
        let made = timers.extras_mut(key).expect("made for an owned callback");
        assert!(made.owned && made.interval_in_handle);
        made.count = 3;
        assert_eq!(timers.get_mut(key).and_then(|r| r.extras).map(|e| e.count), Some(3));
        assert_eq!(timers.remove(key).and_then(|r| r.extras).map(|e| e.count), Some(3));
    }

    #[test]
    fn only_a_plain_timer_is_lent_in_one_lookup() {
        let mut timers = Timers::default();
        let plain = timers.insert(10, Record { expire: Box::new(noop), extras: None });
        let owned = timers.insert(10, Record { expire: Box::new(Owned(noop)), extras: None });
        let extra = timers.insert(10, with_extras(1));
        assert!(timers.lend_plain(owned, Box::new(noop)).is_none(), "an owned callback is not plain");
        assert!(timers.lend_plain(extra, Box::new(noop)).is_none(), "nor is a timer with extras");
        let (scheduled, lent) = timers.lend_plain(plain, Box::new(Owned(noop))).expect("plain");
        assert_eq!(scheduled, 10);
        assert!(!lent.owned(), "the timer's own callback was lent");
        assert!(
            timers.get_mut(plain).is_some_and(|r| r.expire.owned() && r.armed),
            "the stand-in is in place"
        );
        timers.remove(plain);
        assert!(timers.lend_plain(plain, Box::new(noop)).is_none(), "a removed timer is not lent");
    }
}

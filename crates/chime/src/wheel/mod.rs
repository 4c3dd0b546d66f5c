//! A hierarchical timing wheel: chime's engine, as a plain data structure that knows nothing of tokio.
//!
//! Deadlines are `u64` nanoseconds from an epoch the caller chooses; the caller says what "now" is
//! by polling. The driver ([`Scheduler`](crate::Scheduler)) owns one wheel per shard and polls it with
//! tokio's clock.
//!
//! # Layout
//!
//! | level | slot width | level span |
//! |------:|-----------:|-----------:|
//! | 0 | 2^20 ns ≈ 1.05 ms | 67 ms |
//! | 1 | 67 ms | 4.3 s |
//! | 2 | 4.3 s | 4.6 min |
//! | 3 | 4.6 min | 4.9 h |
//! | 4 | 4.9 h | 13 days |
//! | 5 | 13 days | 2.3 years |
//! | 6 | 2.3 years | 149 years |
//! | 7 | 149 years | all of `u64` ns (584 years) |
//!
//! A timer is linked into the level of the highest base-64 digit in which its deadline tick differs
//! from the wheel's current tick, at the slot of that digit. When time reaches a slot, its entries move
//! down (each move lowers the level, so a timer moves at most `level` times); when it reaches a level-0
//! slot, its entries are sorted by exact deadline into the *current* list, from which [`Wheel::poll`]
//! hands them out once `now` reaches each one's deadline. Nothing is ever handed out early, and entries
//! with equal deadlines come out in the order they were armed (inserted or re-armed).
//!
//! Storage is a generational slab ([`Key`]) in fixed chunks; each slot's list runs through the
//! entries themselves (every entry knows its neighbours), so insert, re-arm and remove are O(1),
//! nothing is ever copied as the wheel grows, and an entry holding a 24-byte record is 48 bytes in
//! all. The next deadline is found with one bitmap scan per level, and each slot remembers its
//! earliest deadline, so a caller sleeping until [`Wheel::next_deadline`] wakes when something is due.
//!
//! ```
//! use chime::wheel::Wheel;
//!
//! let mut wheel = Wheel::new();
//! let soon = wheel.insert(1_000, "soon");
//! let later = wheel.insert(5_000_000_000, "later");
//! assert_eq!(wheel.poll(999), None, "never early");
//! assert_eq!(wheel.pop(1_000), Some((soon, "soon")));
//! assert_eq!(wheel.remove(later), Some("later"));
//! assert!(wheel.is_empty());
//! ```

mod level;
mod link;
mod list;
mod slab;

pub use slab::Key;

use level::{LEVELS, Level, TICK_SHIFT};
use list::CurrentList;
use slab::{Loc, Slab};

/// A hierarchical timing wheel holding values of type `T` until their deadlines.
///
/// See the [module documentation](self) for the algorithm.
pub struct Wheel<T> {
    slab: Slab<T>,
    levels: Box<[Level; LEVELS]>,
    current: CurrentList,
    /// The wheel's "now" in nanoseconds: the last time it was polled to (never decreases).
    elapsed: u64,
}

impl<T> Default for Wheel<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Wheel<T> {
    /// An empty wheel whose time starts at 0.
    ///
    /// ```
    /// let wheel: chime::wheel::Wheel<()> = chime::wheel::Wheel::new();
    /// assert_eq!(wheel.next_deadline(), None);
    /// ```
    pub fn new() -> Self {
        Self::with_capacity(0)
    }

    /// An empty wheel with room for `capacity` entries before its slab reallocates.
    ///
    /// ```
    /// let wheel: chime::wheel::Wheel<u8> = chime::wheel::Wheel::with_capacity(1024);
    /// assert!(wheel.is_empty());
    /// ```
    pub fn with_capacity(capacity: usize) -> Self {
        Wheel {
            slab: Slab::with_capacity(capacity),
            levels: Box::new(std::array::from_fn(Level::new)),
            current: CurrentList::default(),
            elapsed: 0,
        }
    }

    /// Number of entries, armed or not.
    ///
    /// ```
    /// let mut wheel = chime::wheel::Wheel::new();
    /// wheel.insert(5, ());
    /// wheel.insert_unarmed(());
    /// assert_eq!(wheel.len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        self.slab.len()
    }

    /// Whether the wheel holds no entry.
    ///
    /// ```
    /// assert!(chime::wheel::Wheel::<()>::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.slab.len() == 0
    }

    /// The time the wheel was last polled to.
    ///
    /// ```
    /// let mut wheel = chime::wheel::Wheel::<()>::new();
    /// wheel.poll(42);
    /// assert_eq!(wheel.elapsed(), 42);
    /// ```
    pub fn elapsed(&self) -> u64 {
        self.elapsed
    }

    /// Stores `value` due at `deadline` and returns its key. A deadline in the past is due at once.
    ///
    /// # Panics
    ///
    /// Panics if the wheel already holds `u32::MAX - 1` entries.
    ///
    /// ```
    /// let mut wheel = chime::wheel::Wheel::new();
    /// let key = wheel.insert(100, 'x');
    /// assert_eq!(wheel.deadline(key), Some(100));
    /// ```
    pub fn insert(&mut self, deadline: u64, value: T) -> Key {
        let key = self.slab.insert(deadline, value);
        self.link(key.index);
        key
    }

    /// Stores `value` without a deadline; [`rearm`](Self::rearm) arms it later.
    ///
    /// # Panics
    ///
    /// Panics if the wheel already holds `u32::MAX - 1` entries.
    ///
    /// ```
    /// let mut wheel = chime::wheel::Wheel::new();
    /// let key = wheel.insert_unarmed('x');
    /// assert_eq!(wheel.deadline(key), None);
    /// assert!(wheel.rearm(key, 7));
    /// assert_eq!(wheel.pop(7), Some((key, 'x')));
    /// ```
    pub fn insert_unarmed(&mut self, value: T) -> Key {
        self.slab.insert(0, value)
    }

    /// Arms `key` at `deadline`, whether it was armed or not; it then counts as armed last among equal
    /// deadlines. Returns `false` for a key that is gone.
    ///
    /// ```
    /// let mut wheel = chime::wheel::Wheel::new();
    /// let a = wheel.insert(10, 'a');
    /// let b = wheel.insert(10, 'b');
    /// wheel.rearm(a, 10);
    /// assert_eq!(wheel.pop(10), Some((b, 'b')));
    /// assert_eq!(wheel.pop(10), Some((a, 'a')));
    /// ```
    pub fn rearm(&mut self, key: Key, deadline: u64) -> bool {
        if self.slab.get_entry(key).is_none() {
            return false;
        }
        self.unlink(key.index);
        self.slab.at_mut(key.index).deadline = deadline;
        self.link(key.index);
        true
    }

    /// Takes `key` off the wheel but keeps its value. Returns `false` for a key that is gone.
    ///
    /// ```
    /// let mut wheel = chime::wheel::Wheel::new();
    /// let key = wheel.insert(10, ());
    /// assert!(wheel.disarm(key));
    /// assert_eq!(wheel.poll(10), None);
    /// assert_eq!(wheel.len(), 1);
    /// ```
    pub fn disarm(&mut self, key: Key) -> bool {
        if self.slab.get_entry(key).is_none() {
            return false;
        }
        self.unlink(key.index);
        true
    }

    /// Removes `key` and returns its value; `None` if it is gone (removed, or popped).
    ///
    /// ```
    /// let mut wheel = chime::wheel::Wheel::new();
    /// let key = wheel.insert(10, 'x');
    /// assert_eq!(wheel.remove(key), Some('x'));
    /// assert_eq!(wheel.remove(key), None);
    /// ```
    pub fn remove(&mut self, key: Key) -> Option<T> {
        self.slab.get_entry(key)?;
        self.unlink(key.index);
        self.slab.free(key)
    }

    /// The value of `key`.
    ///
    /// ```
    /// let mut wheel = chime::wheel::Wheel::new();
    /// let key = wheel.insert(10, 'x');
    /// assert_eq!(wheel.get(key), Some(&'x'));
    /// ```
    pub fn get(&self, key: Key) -> Option<&T> {
        self.slab.get_entry(key)?.value.as_ref()
    }

    /// The value of `key`, mutably.
    ///
    /// ```
    /// let mut wheel = chime::wheel::Wheel::new();
    /// let key = wheel.insert(10, 1);
    /// *wheel.get_mut(key).unwrap() += 1;
    /// assert_eq!(wheel.get(key), Some(&2));
    /// ```
    pub fn get_mut(&mut self, key: Key) -> Option<&mut T> {
        self.slab.get_entry_mut(key)?.value.as_mut()
    }

    /// The deadline of `key` if it is armed.
    ///
    /// ```
    /// let mut wheel = chime::wheel::Wheel::new();
    /// let key = wheel.insert(10, ());
    /// assert_eq!(wheel.deadline(key), Some(10));
    /// wheel.poll(10);
    /// assert_eq!(wheel.deadline(key), None, "expired entries are no longer armed");
    /// ```
    pub fn deadline(&self, key: Key) -> Option<u64> {
        let entry = self.slab.get_entry(key)?;
        (entry.loc != Loc::Unlinked).then_some(entry.deadline)
    }

    /// The deadline `key` was last armed for, kept after it expires (so a popped run knows when it was
    /// due). `None` for a key that is gone.
    ///
    /// ```
    /// let mut wheel = chime::wheel::Wheel::new();
    /// let key = wheel.insert(10, ());
    /// wheel.poll(15);
    /// assert_eq!(wheel.scheduled(key), Some(10));
    /// ```
    pub fn scheduled(&self, key: Key) -> Option<u64> {
        Some(self.slab.get_entry(key)?.deadline)
    }

    /// The earliest time at which [`poll`](Self::poll) may hand something out: never later than the
    /// earliest deadline, and equal to it unless entries were removed from the slot that holds it
    /// (each slot keeps the earliest deadline linked into it, so a caller that sleeps until this time
    /// wakes once per due time, not once per level the entry moves through). `None` when nothing is
    /// armed.
    ///
    /// ```
    /// let mut wheel = chime::wheel::Wheel::new();
    /// let far = wheel.insert(1 << 40, ());
    /// wheel.insert(1 << 41, ());
    /// assert_eq!(wheel.next_deadline(), Some(1 << 40));
    /// wheel.remove(far);
    /// assert!(wheel.next_deadline().unwrap() <= 1 << 41, "early after a removal, never late");
    /// ```
    pub fn next_deadline(&self) -> Option<u64> {
        if let Some(deadline) = self.current.front_deadline(&self.slab) {
            return Some(deadline);
        }
        let tick = self.elapsed >> TICK_SHIFT;
        // Lower levels hold earlier entries, so the first occupied slot of the lowest occupied level
        // holds the earliest one.
        self.levels.iter().find_map(|level| {
            level.next_occupied(tick).map(|(slot, start)| (start << TICK_SHIFT).max(level.min_deadline(slot)))
        })
    }

    /// Advances the wheel to `now` and disarms and returns the next entry due at or before `now`, in
    /// deadline order (arming order among equal deadlines). The entry stays in the wheel, unarmed:
    /// [`remove`](Self::remove) it, or [`rearm`](Self::rearm) it for its next run.
    ///
    /// ```
    /// let mut wheel = chime::wheel::Wheel::new();
    /// let key = wheel.insert(10, "x");
    /// assert_eq!(wheel.poll(9), None);
    /// assert_eq!(wheel.poll(10), Some(key));
    /// assert_eq!(wheel.get(key), Some(&"x"));
    /// ```
    pub fn poll(&mut self, now: u64) -> Option<Key> {
        loop {
            if let Some(index) = self.current.pop_due(&mut self.slab, now) {
                return Some(self.slab.key_at(index));
            }
            let tick = self.elapsed >> TICK_SHIFT;
            let next = if self.current.is_empty() {
                self.levels.iter().enumerate().find_map(|(l, level)| {
                    level.next_occupied(tick).map(|(slot, start)| (l, slot, start << TICK_SHIFT))
                })
            } else {
                None
            };
            match next {
                Some((level, slot, start)) if start <= now => {
                    self.elapsed = self.elapsed.max(start);
                    self.expire_slot(level, slot);
                }
                _ => {
                    self.elapsed = self.elapsed.max(now);
                    return None;
                }
            }
        }
    }

    /// [`poll`](Self::poll), then removes the entry.
    ///
    /// ```
    /// let mut wheel = chime::wheel::Wheel::new();
    /// let key = wheel.insert(10, "x");
    /// assert_eq!(wheel.pop(10), Some((key, "x")));
    /// assert!(wheel.is_empty());
    /// ```
    pub fn pop(&mut self, now: u64) -> Option<(Key, T)> {
        let key = self.poll(now)?;
        let value = self.slab.free(key)?;
        Some((key, value))
    }

    /// Keys of every entry, armed or not, in slab order.
    ///
    /// ```
    /// let mut wheel = chime::wheel::Wheel::new();
    /// let a = wheel.insert(10, ());
    /// assert_eq!(wheel.keys().collect::<Vec<_>>(), vec![a]);
    /// ```
    pub fn keys(&self) -> impl Iterator<Item = Key> + '_ {
        self.slab.keys()
    }

    /// Bytes allocated by the wheel itself (slab, slot lists and levels), not by the values' own heap
    /// data. For benchmarks of the engine's memory per timer.
    ///
    /// ```
    /// let mut wheel = chime::wheel::Wheel::new();
    /// wheel.insert(10, ());
    /// assert!(wheel.allocated_bytes() > 0);
    /// ```
    pub fn allocated_bytes(&self) -> usize {
        size_of::<Self>()
            + size_of::<[Level; LEVELS]>()
            + self.slab.allocated_bytes()
            + self.current.allocated_bytes()
    }
}

impl<T> std::fmt::Debug for Wheel<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wheel").field("len", &self.len()).field("elapsed", &self.elapsed).finish()
    }
}

#[cfg(test)]
mod tests;

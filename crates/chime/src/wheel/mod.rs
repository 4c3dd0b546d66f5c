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
//! nothing is ever copied as the wheel grows, and an entry holding a 16-byte record is 40 bytes in
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

mod flag;
mod level;
mod link;
mod list;
mod query;
mod slab;

pub use flag::Removed;
pub use query::EntryMut;
pub use slab::Key;

use level::{LEVELS, Level, TICK_SHIFT};
use list::CurrentList;
use slab::Slab;

/// A hierarchical timing wheel holding values of type `T` until their deadlines.
///
/// See the [module documentation](self) for the algorithm.
///
/// # Examples
///
/// ```
/// use chime::wheel::Wheel;
/// let mut wheel = Wheel::new();
/// wheel.insert(2_000, "second");
/// wheel.insert(1_000, "first");
/// assert_eq!(wheel.pop(5_000).map(|(_, v)| v), Some("first"));
/// assert_eq!(wheel.pop(5_000).map(|(_, v)| v), Some("second"));
/// assert_eq!(wheel.pop(5_000), None);
/// ```
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
    /// # Examples
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
    /// # Examples
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
    /// # Examples
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
    /// # Examples
    ///
    /// ```
    /// assert!(chime::wheel::Wheel::<()>::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.slab.len() == 0
    }

    /// The time the wheel was last polled to.
    ///
    /// # Examples
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
    /// # Examples
    ///
    /// ```
    /// let mut wheel = chime::wheel::Wheel::new();
    /// let key = wheel.insert(100, 'x');
    /// assert_eq!(wheel.deadline(key), Some(100));
    /// ```
    #[inline]
    pub fn insert(&mut self, deadline: u64, value: T) -> Key {
        let key = self.slab.insert(deadline, value);
        self.link_at(key.index, deadline);
        key
    }

    /// Stores `value` without a deadline; [`rearm`](Self::rearm) arms it later.
    ///
    /// # Panics
    ///
    /// Panics if the wheel already holds `u32::MAX - 1` entries.
    ///
    /// # Examples
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
    /// # Examples
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
        self.link_at(key.index, deadline);
        true
    }

    /// Takes `key` off the wheel but keeps its value. Returns `false` for a key that is gone.
    ///
    /// # Examples
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
    /// # Examples
    ///
    /// ```
    /// let mut wheel = chime::wheel::Wheel::new();
    /// let key = wheel.insert(10, 'x');
    /// assert_eq!(wheel.remove(key), Some('x'));
    /// assert_eq!(wheel.remove(key), None);
    /// ```
    #[inline]
    pub fn remove(&mut self, key: Key) -> Option<T> {
        self.remove_armed(key).map(|(value, _)| value)
    }

    /// Removes `key` and returns its value and whether it was armed (in one lookup); `None` if it
    /// is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut wheel = chime::wheel::Wheel::new();
    /// let armed = wheel.insert(10, 'a');
    /// let idle = wheel.insert_unarmed('b');
    /// assert_eq!(wheel.remove_armed(armed), Some(('a', true)));
    /// assert_eq!(wheel.remove_armed(idle), Some(('b', false)));
    /// assert_eq!(wheel.remove_armed(idle), None);
    /// ```
    #[inline]
    pub fn remove_armed(&mut self, key: Key) -> Option<(T, bool)> {
        self.remove_flagged(key).map(|removed| (removed.value, removed.armed))
    }

    /// The earliest time at which [`poll`](Self::poll) may hand something out: never later than the
    /// earliest deadline, and equal to it unless entries were removed from the slot that holds it
    /// (each slot keeps the earliest deadline linked into it, so a caller that sleeps until this time
    /// wakes once per due time, not once per level the entry moves through). `None` when nothing is
    /// armed.
    ///
    /// # Examples
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
    /// # Examples
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
    /// # Examples
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
}

impl<T> std::fmt::Debug for Wheel<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wheel").field("len", &self.len()).field("elapsed", &self.elapsed).finish()
    }
}

#[cfg(test)]
mod tests;

//! Questions a caller asks the wheel about its entries: their values, deadlines, keys, and what the
//! wheel allocates.

use super::Wheel;
use super::level::{LEVELS, Level};
use super::slab::{Key, Loc};

/// An entry seen in one lookup by [`Wheel::entry_mut`]: its value in place, and what the wheel knows
/// of it.
#[derive(Debug)]
pub struct EntryMut<'a, T> {
    /// The entry's value.
    pub value: &'a mut T,
    /// The deadline it was last armed for (see [`Wheel::scheduled`]).
    pub scheduled: u64,
    /// Whether it is armed now (see [`Wheel::deadline`]).
    pub armed: bool,
    /// Its flag (see [`Wheel::set_flag`]).
    pub flag: bool,
}

impl<T> Wheel<T> {
    /// The value of `key`.
    ///
    /// # Examples
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
    /// # Examples
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

    /// The value of `key` in place with its deadline, whether it is armed and its flag, in one lookup
    /// (a hot path asking all of these pays for one).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut wheel = chime::wheel::Wheel::new();
    /// let key = wheel.insert(10, 1);
    /// wheel.poll(10);
    /// let entry = wheel.entry_mut(key).unwrap();
    /// assert_eq!((entry.scheduled, entry.armed, entry.flag), (10, false, false));
    /// *entry.value += 1;
    /// assert_eq!(wheel.get(key), Some(&2));
    /// ```
    #[inline]
    pub fn entry_mut(&mut self, key: Key) -> Option<EntryMut<'_, T>> {
        let entry = self.slab.get_entry_mut(key)?;
        let (scheduled, armed, flag) = (entry.deadline, entry.loc != Loc::Unlinked, entry.flag);
        Some(EntryMut { value: entry.value.as_mut()?, scheduled, armed, flag })
    }

    /// The deadline of `key` if it is armed.
    ///
    /// # Examples
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
    /// # Examples
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

    /// Keys of every entry, armed or not, in slab order.
    ///
    /// # Examples
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
    /// # Examples
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

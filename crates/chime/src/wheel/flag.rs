//! A flag per entry for the caller's own use, kept in the entry's padding (it costs no byte): the
//! driver marks the timers whose options it keeps beside the wheel, so a plain timer never makes it
//! look there.

use super::Wheel;
use super::slab::{Key, Loc};

/// An entry taken out of the wheel by [`Wheel::remove_flagged`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Removed<T> {
    /// The entry's value.
    pub value: T,
    /// Whether it was armed (it had a deadline).
    pub armed: bool,
    /// Its flag.
    pub flag: bool,
}

impl<T> Wheel<T> {
    /// Sets the flag of `key` (every entry starts unflagged). Returns `false` for a key that is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut wheel = chime::wheel::Wheel::new();
    /// let key = wheel.insert(10, 'x');
    /// assert_eq!(wheel.flag(key), Some(false));
    /// assert!(wheel.set_flag(key, true));
    /// assert_eq!(wheel.flag(key), Some(true));
    /// ```
    pub fn set_flag(&mut self, key: Key, flag: bool) -> bool {
        match self.slab.get_entry_mut(key) {
            Some(entry) => {
                entry.flag = flag;
                true
            }
            None => false,
        }
    }

    /// The flag of `key`; `None` for a key that is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut wheel = chime::wheel::Wheel::new();
    /// let key = wheel.insert(10, 'x');
    /// wheel.set_flag(key, true);
    /// wheel.remove(key);
    /// assert_eq!(wheel.flag(key), None);
    /// let next = wheel.insert(10, 'y');
    /// assert_eq!(wheel.flag(next), Some(false), "a new entry starts unflagged, whatever its index held");
    /// ```
    pub fn flag(&self, key: Key) -> Option<bool> {
        Some(self.slab.get_entry(key)?.flag)
    }

    /// Removes `key`, in one lookup, with whether it was armed and its flag; `None` if it is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// use chime::wheel::{Removed, Wheel};
    /// let mut wheel = Wheel::new();
    /// let key = wheel.insert(10, 'a');
    /// wheel.set_flag(key, true);
    /// assert_eq!(wheel.remove_flagged(key), Some(Removed { value: 'a', armed: true, flag: true }));
    /// assert_eq!(wheel.remove_flagged(key), None);
    /// ```
    #[inline]
    pub fn remove_flagged(&mut self, key: Key) -> Option<Removed<T>> {
        let (value, links) = self.slab.vacate(key)?;
        self.close(links);
        Some(Removed { value, armed: links.loc != Loc::Unlinked, flag: links.flag })
    }
}

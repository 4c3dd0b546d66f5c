//! The wheel's storage: a generational slab of entries.
//!
//! Every timer lives in one [`Entry`] for its whole life, addressed by a [`Key`] (index and generation).
//! A freed entry bumps its generation, so a stale key can never reach the entry's next occupant: this is
//! what fixes Knot Resolver's reused event ids. An entry whose generation is exhausted is retired, never
//! handed out again, so the guarantee holds without a wrap-around.

use std::fmt;

/// Marks "no index" in free lists and list positions.
pub(super) const NIL: u32 = u32::MAX;

/// Where an entry is linked; the wheel's lists store indices and each entry knows its place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Loc {
    /// In the slot `slot` of level `level`.
    Slot { level: u8, slot: u8 },
    /// In the sorted list of the tick being expired.
    Current,
    /// Occupied but not linked: expired and handed to the caller, or never armed.
    Unlinked,
    /// Free.
    Vacant,
}

/// A stable, generational handle to one entry of a [`Wheel`](super::Wheel).
///
/// Keys are never reused: once the entry is removed, the key answers `None` forever.
///
/// ```
/// use chime::wheel::Wheel;
///
/// let mut wheel = Wheel::new();
/// let key = wheel.insert(10, "a");
/// assert_eq!(wheel.remove(key), Some("a"));
/// let next = wheel.insert(10, "b");
/// assert_ne!(key, next);
/// assert_eq!(wheel.get(key), None);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub(crate) index: u32,
    pub(crate) generation: u32,
}

impl Key {
    /// The slot index in the slab (shared by the entry's past and future occupants).
    pub fn index(self) -> u32 {
        self.index
    }

    /// The generation that tells this occupant from every other one of the same index.
    pub fn generation(self) -> u32 {
        self.generation
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({}v{})", self.index, self.generation)
    }
}

/// One slab entry: the timer's deadline, where it is linked and the caller's value.
pub(super) struct Entry<T> {
    pub(super) deadline: u64,
    pub(super) generation: u32,
    /// Position in the list named by `loc`, or the next free index while vacant.
    pub(super) pos: u32,
    pub(super) loc: Loc,
    pub(super) value: Option<T>,
}

/// A slab whose keys carry a generation.
pub(super) struct Slab<T> {
    entries: Vec<Entry<T>>,
    free_head: u32,
    len: usize,
}

impl<T> Slab<T> {
    pub(super) fn with_capacity(capacity: usize) -> Self {
        Slab { entries: Vec::with_capacity(capacity), free_head: NIL, len: 0 }
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Stores `value`, unlinked, and returns its key.
    pub(super) fn insert(&mut self, deadline: u64, value: T) -> Key {
        self.len += 1;
        if self.free_head != NIL {
            let index = self.free_head;
            let entry = &mut self.entries[index as usize];
            self.free_head = entry.pos;
            entry.deadline = deadline;
            entry.pos = NIL;
            entry.loc = Loc::Unlinked;
            entry.value = Some(value);
            return Key { index, generation: entry.generation };
        }
        let index = u32::try_from(self.entries.len()).ok().filter(|&i| i != NIL);
        let index = index.expect("a wheel holds at most 2^32 - 1 entries");
        self.entries.push(Entry {
            deadline,
            generation: 0,
            pos: NIL,
            loc: Loc::Unlinked,
            value: Some(value),
        });
        Key { index, generation: 0 }
    }

    /// Frees the entry of `key` (which must be unlinked) and returns its value.
    pub(super) fn free(&mut self, key: Key) -> Option<T> {
        let free_head = self.free_head;
        let entry = self.get_entry_mut(key)?;
        debug_assert!(matches!(entry.loc, Loc::Unlinked), "freeing a linked entry");
        let value = entry.value.take();
        entry.loc = Loc::Vacant;
        if entry.generation == u32::MAX {
            // Retired: handing this index out again would let an old key match a new timer.
            entry.pos = NIL;
        } else {
            entry.generation += 1;
            entry.pos = free_head;
            self.free_head = key.index;
        }
        self.len -= 1;
        value
    }

    pub(super) fn get_entry(&self, key: Key) -> Option<&Entry<T>> {
        let entry = self.entries.get(key.index as usize)?;
        (entry.generation == key.generation && entry.loc != Loc::Vacant).then_some(entry)
    }

    pub(super) fn get_entry_mut(&mut self, key: Key) -> Option<&mut Entry<T>> {
        let entry = self.entries.get_mut(key.index as usize)?;
        (entry.generation == key.generation && entry.loc != Loc::Vacant).then_some(entry)
    }

    /// The entry at `index`, which the wheel's lists know to be occupied.
    pub(super) fn at(&self, index: u32) -> &Entry<T> {
        &self.entries[index as usize]
    }

    pub(super) fn at_mut(&mut self, index: u32) -> &mut Entry<T> {
        &mut self.entries[index as usize]
    }

    pub(super) fn key_at(&self, index: u32) -> Key {
        Key { index, generation: self.entries[index as usize].generation }
    }

    /// Keys of every occupied entry.
    pub(super) fn keys(&self) -> impl Iterator<Item = Key> + '_ {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.loc != Loc::Vacant)
            .map(|(i, e)| Key { index: i as u32, generation: e.generation })
    }

    /// Bytes held by the slab's own array (capacity, not length).
    pub(super) fn allocated_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<Entry<T>>()
    }

    #[cfg(test)]
    pub(super) fn force_generation(&mut self, index: u32, generation: u32) {
        self.entries[index as usize].generation = generation;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freed_keys_never_match_again() {
        let mut slab = Slab::with_capacity(0);
        let a = slab.insert(0, 'a');
        assert_eq!(slab.free(a), Some('a'));
        let b = slab.insert(0, 'b');
        assert_eq!(b.index, a.index, "the index is reused");
        assert!(slab.get_entry(a).is_none(), "but the old key does not reach the new entry");
        assert_eq!(slab.get_entry(b).and_then(|e| e.value), Some('b'));
        assert_eq!(slab.free(a), None);
        assert_eq!(slab.len(), 1);
    }

    #[test]
    fn exhausted_generation_retires_the_index() {
        let mut slab = Slab::with_capacity(0);
        let a = slab.insert(0, 1);
        slab.force_generation(a.index, u32::MAX);
        let a = slab.key_at(a.index);
        assert_eq!(slab.free(a), Some(1));
        let b = slab.insert(0, 2);
        assert_ne!(b.index, a.index, "a retired index is never handed out again");
    }
}

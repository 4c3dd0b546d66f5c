//! The wheel's storage: a generational slab of entries.
//!
//! Every timer lives in one [`Entry`] for its whole life, addressed by a [`Key`] (index and generation).
//! A freed entry bumps its generation, so a stale key can never reach the entry's next occupant: this is
//! what fixes Knot Resolver's reused event ids. An entry whose generation is exhausted is retired, never
//! handed out again, so the guarantee holds without a wrap-around.
//!
//! Entries live in fixed-size chunks that are never reallocated: growing the slab allocates one more
//! chunk instead of copying every entry (a doubling array stalled arming for over a millisecond at a
//! million timers), and no capacity is wasted beyond the last chunk.

use std::fmt;

/// Marks "no index" in free lists and list links.
pub(super) const NIL: u32 = u32::MAX;

/// Where an entry is linked. The wheel's lists run through the entries themselves (`prev`, `next`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Loc {
    /// In slot `slot` of level `level` (the slot of its deadline's digit at that level, kept so that
    /// unlinking need not work it out again; it fits in the entry's padding).
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
/// # Examples
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
    ///
    /// # Examples
    ///
    /// ```
    /// let mut wheel = chime::wheel::Wheel::new();
    /// let first = wheel.insert(10, "a");
    /// wheel.remove(first);
    /// let second = wheel.insert(10, "b");
    /// assert_eq!(second.index(), first.index(), "the freed slot is used again");
    /// assert_ne!(second, first);
    /// ```
    pub fn index(self) -> u32 {
        self.index
    }

    /// The generation that tells this occupant from every other one of the same index.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut wheel = chime::wheel::Wheel::new();
    /// let first = wheel.insert(10, "a");
    /// wheel.remove(first);
    /// let second = wheel.insert(10, "b");
    /// assert_ne!(second.generation(), first.generation());
    /// assert_eq!(wheel.get(first), None, "the old key never reaches the new occupant");
    /// ```
    pub fn generation(self) -> u32 {
        self.generation
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({}v{})", self.index, self.generation)
    }
}

/// One slab entry: the timer's deadline, where it is linked, its neighbours there, the caller's flag
/// and value. With a 16-byte value that has a niche (a boxed callback's pointer is never null), an
/// entry is 40 bytes, and the lists and the flag cost nothing more.
pub(super) struct Entry<T> {
    pub(super) deadline: u64,
    pub(super) generation: u32,
    /// The previous entry of its list (`NIL` at the head).
    pub(super) prev: u32,
    /// The next entry of its list (`NIL` at the tail), or the next free index while vacant.
    pub(super) next: u32,
    pub(super) loc: Loc,
    /// The caller's flag (see [`Wheel::set_flag`](super::Wheel::set_flag)), in the entry's padding.
    pub(super) flag: bool,
    pub(super) value: Option<T>,
}

/// log2 of the entries per chunk: 1024 entries (40 KiB with a 16-byte value). A new chunk is written
/// whole, under a shard's lock, so its size is the longest stall growing the slab can cause: first
/// touching 160 KiB (4096 entries) held an arm for half a millisecond on a virtual machine, and 40 KiB
/// about a quarter of that. Smaller chunks would only lengthen the chunk table.
const CHUNK_BITS: u32 = 10;
const CHUNK: usize = 1 << CHUNK_BITS;

/// A chunk of vacant entries.
fn vacant_chunk<T>() -> Box<[Entry<T>; CHUNK]> {
    let vacant = || Entry {
        deadline: 0,
        generation: 0,
        prev: NIL,
        next: NIL,
        loc: Loc::Vacant,
        flag: false,
        value: None,
    };
    let chunk: Box<[Entry<T>]> = (0..CHUNK).map(|_| vacant()).collect();
    chunk.try_into().unwrap_or_else(|_| unreachable!("exactly CHUNK entries"))
}

/// Where an entry was linked when it left its list: what the list needs to close the gap.
#[derive(Clone, Copy, Debug)]
pub(super) struct Links {
    pub(super) loc: Loc,
    pub(super) flag: bool,
    pub(super) prev: u32,
    pub(super) next: u32,
}

impl<T> Entry<T> {
    /// Where the entry is linked now, and its neighbours there.
    #[inline]
    pub(super) fn links(&self) -> Links {
        Links { loc: self.loc, flag: self.flag, prev: self.prev, next: self.next }
    }
}

/// A slab whose keys carry a generation.
pub(super) struct Slab<T> {
    /// Fixed arrays (an index's offset in its chunk is always in bounds, so reaching an entry costs
    /// one check, not two); entries past `created` are vacant and never handed out.
    chunks: Vec<Box<[Entry<T>; CHUNK]>>,
    /// Entries ever created (occupied, free or retired).
    created: usize,
    free_head: u32,
    len: usize,
}

impl<T> Slab<T> {
    pub(super) fn with_capacity(capacity: usize) -> Self {
        let chunks = (0..capacity.div_ceil(CHUNK)).map(|_| vacant_chunk()).collect();
        Slab { chunks, created: 0, free_head: NIL, len: 0 }
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Stores `value`, unlinked, and returns its key.
    #[inline]
    pub(super) fn insert(&mut self, deadline: u64, value: T) -> Key {
        self.len += 1;
        if self.free_head != NIL {
            let index = self.free_head;
            let entry = self.at_mut(index);
            let next_free = entry.next;
            entry.deadline = deadline;
            entry.prev = NIL;
            entry.next = NIL;
            entry.loc = Loc::Unlinked;
            entry.flag = false;
            entry.value = Some(value);
            let generation = entry.generation;
            self.free_head = next_free;
            return Key { index, generation };
        }
        self.insert_new(deadline, value)
    }

    /// [`insert`](Self::insert) with no free entry: a new one, perhaps in a new chunk. Out of line,
    /// so the common path (a free entry) keeps a small stack frame.
    #[cold]
    #[inline(never)]
    fn insert_new(&mut self, deadline: u64, value: T) -> Key {
        let index = u32::try_from(self.created).ok().filter(|&i| i != NIL);
        let index = index.expect("a wheel holds at most 2^32 - 1 entries");
        let chunk = self.created >> CHUNK_BITS;
        if chunk == self.chunks.len() {
            self.chunks.push(vacant_chunk());
        }
        self.chunks[chunk][self.created & (CHUNK - 1)] = Entry {
            deadline,
            generation: 0,
            prev: NIL,
            next: NIL,
            loc: Loc::Unlinked,
            flag: false,
            value: Some(value),
        };
        self.created += 1;
        Key { index, generation: 0 }
    }

    /// Frees the entry of `key` (which must be unlinked) and returns its value.
    pub(super) fn free(&mut self, key: Key) -> Option<T> {
        let (value, links) = self.vacate(key)?;
        debug_assert!(matches!(links.loc, Loc::Unlinked), "freeing a linked entry");
        Some(value)
    }

    /// Frees the entry of `key`, linked or not, in one lookup: its value, and the links its list must
    /// close over (the caller's job: the slab knows no lists).
    #[inline]
    pub(super) fn vacate(&mut self, key: Key) -> Option<(T, Links)> {
        let free_head = self.free_head;
        let entry = self.get_entry_mut(key)?;
        let links = entry.links();
        let value = entry.value.take()?;
        entry.loc = Loc::Vacant;
        let retired = entry.generation == u32::MAX;
        if retired {
            // Retired: handing this index out again would let an old key match a new timer.
            entry.next = NIL;
        } else {
            entry.generation += 1;
            entry.next = free_head;
            self.free_head = key.index;
        }
        self.len -= 1;
        Some((value, links))
    }

    fn get(&self, index: u32) -> Option<&Entry<T>> {
        self.chunks.get((index >> CHUNK_BITS) as usize).map(|chunk| &chunk[index as usize & (CHUNK - 1)])
    }

    #[inline]
    pub(super) fn get_entry(&self, key: Key) -> Option<&Entry<T>> {
        let entry = self.get(key.index)?;
        (entry.generation == key.generation && entry.loc != Loc::Vacant).then_some(entry)
    }

    #[inline]
    pub(super) fn get_entry_mut(&mut self, key: Key) -> Option<&mut Entry<T>> {
        let chunk = self.chunks.get_mut((key.index >> CHUNK_BITS) as usize)?;
        let entry = &mut chunk[key.index as usize & (CHUNK - 1)];
        (entry.generation == key.generation && entry.loc != Loc::Vacant).then_some(entry)
    }

    /// The entry at `index`, which the wheel's lists know to exist.
    #[inline]
    pub(super) fn at(&self, index: u32) -> &Entry<T> {
        &self.chunks[(index >> CHUNK_BITS) as usize][index as usize & (CHUNK - 1)]
    }

    #[inline]
    pub(super) fn at_mut(&mut self, index: u32) -> &mut Entry<T> {
        &mut self.chunks[(index >> CHUNK_BITS) as usize][index as usize & (CHUNK - 1)]
    }

    pub(super) fn key_at(&self, index: u32) -> Key {
        Key { index, generation: self.at(index).generation }
    }

    /// Keys of every occupied entry.
    pub(super) fn keys(&self) -> impl Iterator<Item = Key> + '_ {
        self.chunks
            .iter()
            .flat_map(|chunk| chunk.iter())
            .take(self.created)
            .enumerate()
            .filter(|(_, e)| e.loc != Loc::Vacant)
            .map(|(i, e)| Key { index: i as u32, generation: e.generation })
    }

    /// Bytes held by the slab's chunks.
    pub(super) fn allocated_bytes(&self) -> usize {
        self.chunks.len() * size_of::<[Entry<T>; CHUNK]>() + self.chunks.capacity() * size_of::<usize>()
    }

    #[cfg(test)]
    pub(super) fn force_generation(&mut self, index: u32, generation: u32) {
        self.at_mut(index).generation = generation;
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
    fn entries_span_chunks_without_moving() {
        let mut slab = Slab::with_capacity(0);
        let keys: Vec<_> = (0..CHUNK * 2 + 5).map(|i| slab.insert(i as u64, i)).collect();
        assert_eq!(slab.chunks.len(), 3, "one more chunk per CHUNK entries, none ever copied");
        for (i, key) in keys.iter().enumerate() {
            assert_eq!(slab.get_entry(*key).and_then(|e| e.value), Some(i));
        }
        assert_eq!(slab.keys().count(), CHUNK * 2 + 5);
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

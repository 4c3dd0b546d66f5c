//! [`Slots`]: the Lua runtime's generational table of things that can call back into Lua (armed
//! timers, parked coroutines' wake-ups, worker relays).
//!
//! A slot's Lua-side value (the callback, or the coroutine to resume) lives in a plain Lua table at
//! the same index, so the garbage collector sees it and no registry reference is leaked; this slab
//! keeps only what Rust needs: the chime [`TimerId`] and the slot's generation. The id handed to Lua
//! packs both (`index + 1 + generation * 2^32`, exact in a double), so a stale id (a timer that
//! fired, was cancelled, or whose index was reused) never reaches another slot. A slot whose
//! generation would leave the 53 bits a Lua number holds exactly is retired, never reused.

use chime::TimerId;

/// The generations a slot may have before it is retired (ids stay below 2^53).
const GENERATIONS: u32 = 1 << 21;

/// What a slot is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// An armed chime timer; it keeps the loop running.
    Timer { tid: TimerId, recurring: bool },
    /// A one-shot whose run was taken by the dispatcher; released when its callback returns (or is
    /// re-armed by it).
    Firing,
    /// A target for messages from async work (worker relays); `counted` ones keep the loop running.
    Target { counted: bool },
}

#[derive(Debug)]
struct Entry {
    generation: u32,
    kind: Option<Kind>,
    next_free: u32,
}

/// The slab. Ids are `u64`s as described in the module docs.
#[derive(Debug, Default)]
pub(crate) struct Slots {
    entries: Vec<Entry>,
    free: Option<u32>,
    counted: usize,
}

const NONE: u32 = u32::MAX;

/// Splits an id into (index, generation); `None` for a number that is no id.
pub(crate) fn split(id: u64) -> Option<(usize, u32)> {
    let low = id & 0xffff_ffff;
    let generation = id >> 32;
    if low == 0 || generation >= u64::from(GENERATIONS) {
        return None;
    }
    Some(((low - 1) as usize, generation as u32))
}

fn join(index: usize, generation: u32) -> u64 {
    index as u64 + 1 + (u64::from(generation) << 32)
}

fn counts(kind: Kind) -> bool {
    matches!(kind, Kind::Timer { .. } | Kind::Target { counted: true })
}

impl Slots {
    /// Takes a slot for `kind`; returns its id and its index (the Lua table's key).
    pub(crate) fn insert(&mut self, kind: Kind) -> (u64, usize) {
        if counts(kind) {
            self.counted += 1;
        }
        if let Some(index) = self.free {
            let entry = &mut self.entries[index as usize];
            self.free = (entry.next_free != NONE).then_some(entry.next_free);
            entry.kind = Some(kind);
            return (join(index as usize, entry.generation), index as usize);
        }
        self.entries.push(Entry { generation: 0, kind: Some(kind), next_free: NONE });
        let index = self.entries.len() - 1;
        (join(index, 0), index)
    }

    /// The live slot with this id.
    pub(crate) fn get(&self, id: u64) -> Option<Kind> {
        let (index, generation) = split(id)?;
        let entry = self.entries.get(index)?;
        if entry.generation == generation { entry.kind } else { None }
    }

    /// Changes a live slot's kind; `false` for a stale id.
    pub(crate) fn set(&mut self, id: u64, kind: Kind) -> bool {
        let Some((index, generation)) = split(id) else { return false };
        let Some(entry) = self.entries.get_mut(index) else { return false };
        match entry.kind {
            Some(old) if entry.generation == generation => {
                self.counted = self.counted + usize::from(counts(kind)) - usize::from(counts(old));
                entry.kind = Some(kind);
                true
            }
            _ => false,
        }
    }

    /// Frees a live slot; returns what it was and its index, `None` for a stale id.
    pub(crate) fn remove(&mut self, id: u64) -> Option<(Kind, usize)> {
        let (index, generation) = split(id)?;
        let entry = self.entries.get_mut(index)?;
        if entry.generation != generation {
            return None;
        }
        let kind = entry.kind.take()?;
        if counts(kind) {
            self.counted -= 1;
        }
        entry.generation += 1;
        if entry.generation < GENERATIONS {
            entry.next_free = self.free.unwrap_or(NONE);
            self.free = Some(index as u32);
        }
        Some((kind, index))
    }

    /// Slots that keep the loop running (armed timers, counted targets).
    pub(crate) fn counted(&self) -> usize {
        self.counted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_never_reused_and_stale_ids_miss() {
        let mut slots = Slots::default();
        let (a, ia) = slots.insert(Kind::Firing);
        assert_eq!((a, ia), (1, 0), "the first id is small");
        assert_eq!(slots.remove(a).map(|(_, i)| i), Some(0));
        let (b, ib) = slots.insert(Kind::Firing);
        assert_eq!(ib, 0, "the index is reused");
        assert_ne!(a, b, "the id is not");
        assert_eq!(slots.get(a), None);
        assert_eq!(slots.remove(a), None);
        assert_eq!(slots.get(b), Some(Kind::Firing));
    }

    #[test]
    fn counts_follow_kinds() {
        let mut slots = Slots::default();
        let (a, _) = slots.insert(Kind::Target { counted: true });
        let (b, _) = slots.insert(Kind::Target { counted: false });
        assert_eq!(slots.counted(), 1);
        assert!(slots.set(b, Kind::Target { counted: true }));
        assert_eq!(slots.counted(), 2);
        slots.remove(a);
        slots.remove(b);
        assert_eq!(slots.counted(), 0);
    }

    #[test]
    fn a_worn_out_slot_is_retired() {
        let mut slots = Slots::default();
        let (mut id, _) = slots.insert(Kind::Firing);
        for _ in 1..GENERATIONS {
            slots.remove(id);
            id = slots.insert(Kind::Firing).0;
        }
        assert_eq!(split(id), Some((0, GENERATIONS - 1)));
        slots.remove(id);
        let (fresh, index) = slots.insert(Kind::Firing);
        assert_eq!((fresh, index), (2, 1), "index 0 is retired");
        assert!(id < (1 << 53), "ids stay exact in a double");
    }

    #[test]
    fn numbers_that_are_no_id_miss() {
        let slots = Slots::default();
        assert_eq!(split(0), None);
        assert_eq!(split(u64::MAX), None);
        assert_eq!(slots.get(12345), None);
    }
}

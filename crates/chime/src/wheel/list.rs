//! The wheel's lists of entry indices: one per slot, and the sorted list of the tick being expired.
//!
//! Both keep their order (it is the arming order the wheel promises for equal deadlines) and remove in
//! O(1) by leaving a hole. Holes at the end are trimmed at once; a list that is more than half holes is
//! compacted, which touches only the entries it moves, so removal stays O(1) amortised. Each entry
//! records its position, so a list never searches.

use super::slab::{Loc, NIL, Slab};

/// A list below which compaction is not worth the pass.
const COMPACT_MIN: usize = 32;

/// The entries of one slot, in the order they were linked.
#[derive(Default)]
pub(super) struct SlotList {
    refs: Vec<u32>,
    holes: usize,
    /// The earliest deadline linked since the list was last empty: exact until an entry is removed,
    /// then possibly early (never late), which is all the driver's wake-up needs.
    min: u64,
}

impl SlotList {
    pub(super) fn is_empty(&self) -> bool {
        self.refs.is_empty()
    }

    /// The earliest deadline in the list, or earlier (see `min`).
    pub(super) fn min_deadline(&self) -> u64 {
        self.min
    }

    pub(super) fn push<T>(&mut self, slab: &mut Slab<T>, index: u32, loc: Loc) {
        let entry = slab.at_mut(index);
        self.min = if self.refs.is_empty() { entry.deadline } else { self.min.min(entry.deadline) };
        entry.pos = self.refs.len() as u32;
        entry.loc = loc;
        self.refs.push(index);
    }

    pub(super) fn remove<T>(&mut self, slab: &mut Slab<T>, pos: u32) {
        self.refs[pos as usize] = NIL;
        self.holes += 1;
        while self.refs.last() == Some(&NIL) {
            self.refs.pop();
            self.holes -= 1;
        }
        if self.holes >= COMPACT_MIN && self.holes * 2 > self.refs.len() {
            self.compact(slab);
        }
    }

    fn compact<T>(&mut self, slab: &mut Slab<T>) {
        self.refs.retain(|&i| i != NIL);
        for (pos, &index) in self.refs.iter().enumerate() {
            slab.at_mut(index).pos = pos as u32;
        }
        self.holes = 0;
    }

    /// Empties the list, returning its live indices in order. Small buffers are kept for reuse.
    pub(super) fn take(&mut self) -> Vec<u32> {
        let mut refs = std::mem::take(&mut self.refs);
        if self.holes > 0 {
            refs.retain(|&i| i != NIL);
        }
        self.holes = 0;
        refs
    }

    /// Gives back a drained buffer so the next fill of this slot does not allocate.
    pub(super) fn recycle(&mut self, mut buffer: Vec<u32>) {
        const KEEP: usize = 256;
        if self.refs.capacity() == 0 && buffer.capacity() <= KEEP {
            buffer.clear();
            self.refs = buffer;
        }
    }

    pub(super) fn allocated_bytes(&self) -> usize {
        self.refs.capacity() * size_of::<u32>()
    }
}

/// The entries due in the current tick, sorted by exact deadline (stable, so ties keep arming order).
#[derive(Default)]
pub(super) struct CurrentList {
    items: Vec<(u64, u32)>,
    head: usize,
    holes: usize,
}

impl CurrentList {
    pub(super) fn is_empty(&self) -> bool {
        self.head == self.items.len()
    }

    /// Links `index` after every entry whose deadline is not later than its own.
    pub(super) fn insert<T>(&mut self, slab: &mut Slab<T>, index: u32) {
        let deadline = slab.at(index).deadline;
        let at = if self.items.last().is_none_or(|&(d, _)| d <= deadline) {
            self.items.len()
        } else {
            self.head + self.items[self.head..].partition_point(|&(d, _)| d <= deadline)
        };
        self.items.insert(at, (deadline, index));
        for pos in at..self.items.len() {
            let index = self.items[pos].1;
            if index != NIL {
                let entry = slab.at_mut(index);
                entry.pos = pos as u32;
                entry.loc = Loc::Current;
            }
        }
    }

    /// Replaces the (empty) list with `indices`, sorted by deadline.
    pub(super) fn fill<T>(&mut self, slab: &mut Slab<T>, indices: &[u32]) {
        debug_assert!(self.is_empty());
        self.items.clear();
        self.head = 0;
        self.holes = 0;
        self.items.extend(indices.iter().map(|&i| (slab.at(i).deadline, i)));
        if !self.items.is_sorted_by_key(|&(d, _)| d) {
            self.items.sort_by_key(|&(d, _)| d);
        }
        for (pos, &(_, index)) in self.items.iter().enumerate() {
            let entry = slab.at_mut(index);
            entry.pos = pos as u32;
            entry.loc = Loc::Current;
        }
    }

    pub(super) fn remove<T>(&mut self, slab: &mut Slab<T>, pos: u32) {
        self.items[pos as usize].1 = NIL;
        self.holes += 1;
        self.skip_holes();
        if self.holes >= COMPACT_MIN && self.holes * 2 > self.items.len() - self.head {
            self.compact(slab);
        }
    }

    /// The earliest live deadline.
    pub(super) fn front_deadline(&self) -> Option<u64> {
        self.items[self.head..].iter().find(|&&(_, i)| i != NIL).map(|&(d, _)| d)
    }

    /// Unlinks and returns the first entry if it is due at `now`.
    pub(super) fn pop_due(&mut self, now: u64) -> Option<u32> {
        self.skip_holes();
        let &(deadline, index) = self.items.get(self.head)?;
        if deadline > now {
            return None;
        }
        self.head += 1;
        self.skip_holes();
        Some(index)
    }

    fn skip_holes(&mut self) {
        while self.items.len() > self.head && self.items.last().is_some_and(|&(_, i)| i == NIL) {
            self.items.pop();
            self.holes -= 1;
        }
        while let Some(&(_, NIL)) = self.items.get(self.head) {
            self.head += 1;
            self.holes -= 1;
        }
        if self.head == self.items.len() {
            self.items.clear();
            self.head = 0;
        }
    }

    fn compact<T>(&mut self, slab: &mut Slab<T>) {
        self.items.drain(..self.head);
        self.items.retain(|&(_, i)| i != NIL);
        self.head = 0;
        self.holes = 0;
        for (pos, &(_, index)) in self.items.iter().enumerate() {
            slab.at_mut(index).pos = pos as u32;
        }
    }

    pub(super) fn allocated_bytes(&self) -> usize {
        self.items.capacity() * size_of::<(u64, u32)>()
    }
}

//! The wheel's lists: one per slot, and the sorted list of the tick being expired. Both run through
//! the entries themselves (each entry knows its neighbours), so linking and unlinking are O(1),
//! touch no memory but the entry and its neighbours, and never allocate or reallocate: filling a
//! wheel to ten million timers never stalls on a list growing.
//!
//! A slot's list keeps link order (the arming order the wheel promises for equal deadlines); the
//! current tick's list is kept sorted by exact deadline, stable among equal ones.

use super::slab::{Loc, NIL, Slab};

/// A doubly linked list of slab entries.
#[derive(Debug, Clone, Copy)]
pub(super) struct List {
    head: u32,
    tail: u32,
}

impl Default for List {
    fn default() -> Self {
        List { head: NIL, tail: NIL }
    }
}

impl List {
    pub(super) fn is_empty(&self) -> bool {
        self.head == NIL
    }

    pub(super) fn head(&self) -> u32 {
        self.head
    }

    /// Links `index` last, marking it as at `loc`.
    #[inline]
    pub(super) fn push_back<T>(&mut self, slab: &mut Slab<T>, index: u32, loc: Loc) {
        let tail = self.tail;
        let entry = slab.at_mut(index);
        entry.prev = tail;
        entry.next = NIL;
        entry.loc = loc;
        match tail {
            NIL => self.head = index,
            tail => slab.at_mut(tail).next = index,
        }
        self.tail = index;
    }

    /// Links `index` right after `after` (at the head for `NIL`), marking it as at `loc`.
    fn insert_after<T>(&mut self, slab: &mut Slab<T>, after: u32, index: u32, loc: Loc) {
        let next = if after == NIL { self.head } else { slab.at(after).next };
        let entry = slab.at_mut(index);
        entry.prev = after;
        entry.next = next;
        entry.loc = loc;
        match after {
            NIL => self.head = index,
            after => slab.at_mut(after).next = index,
        }
        match next {
            NIL => self.tail = index,
            next => slab.at_mut(next).prev = index,
        }
    }

    /// Unlinks `index`, which is in this list, and marks it unlinked.
    pub(super) fn unlink<T>(&mut self, slab: &mut Slab<T>, index: u32) {
        let entry = slab.at_mut(index);
        let (prev, next) = (entry.prev, entry.next);
        entry.loc = Loc::Unlinked;
        self.close(slab, prev, next);
    }

    /// Joins `prev` and `next`, the neighbours of an entry that left the list.
    #[inline]
    pub(super) fn close<T>(&mut self, slab: &mut Slab<T>, prev: u32, next: u32) {
        match prev {
            NIL => self.head = next,
            prev => slab.at_mut(prev).next = next,
        }
        match next {
            NIL => self.tail = prev,
            next => slab.at_mut(next).prev = prev,
        }
    }

    /// Empties the list, returning it whole (its entries keep their links until relinked).
    pub(super) fn take(&mut self) -> List {
        std::mem::take(self)
    }
}

/// A slot: its list, and the earliest deadline linked into it since it was last empty.
#[derive(Debug, Default)]
pub(super) struct SlotList {
    list: List,
    /// Exact until an entry is removed, then possibly early (never late): all the driver's wake-up
    /// needs.
    min: u64,
}

impl SlotList {
    pub(super) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The earliest deadline in the list, or earlier (see `min`).
    pub(super) fn min_deadline(&self) -> u64 {
        self.min
    }

    #[inline]
    pub(super) fn push<T>(&mut self, slab: &mut Slab<T>, index: u32, deadline: u64, loc: Loc) {
        self.min = if self.list.is_empty() { deadline } else { self.min.min(deadline) };
        self.list.push_back(slab, index, loc);
    }

    pub(super) fn close<T>(&mut self, slab: &mut Slab<T>, prev: u32, next: u32) {
        self.list.close(slab, prev, next);
    }

    /// Empties the slot, returning its entries in link order.
    pub(super) fn take(&mut self) -> List {
        self.list.take()
    }
}

/// The entries due in the current tick, sorted by exact deadline (stable, so ties keep arming order).
#[derive(Debug, Default)]
pub(super) struct CurrentList {
    list: List,
    /// Reused to sort a slot's entries as they arrive.
    scratch: Vec<(u64, u32)>,
}

impl CurrentList {
    pub(super) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Links `index` after every entry whose deadline is not later than its own. Entries armed for
    /// the current tick usually come in deadline order, so the walk from the tail is short.
    pub(super) fn insert<T>(&mut self, slab: &mut Slab<T>, index: u32) {
        let deadline = slab.at(index).deadline;
        let mut after = self.list.tail;
        while after != NIL && slab.at(after).deadline > deadline {
            after = slab.at(after).prev;
        }
        self.list.insert_after(slab, after, index, Loc::Current);
    }

    /// Fills the (empty) list with the entries of `from`, sorted by deadline.
    pub(super) fn fill<T>(&mut self, slab: &mut Slab<T>, from: List) {
        debug_assert!(self.is_empty());
        // Timers are mostly armed in deadline order, so a slot's list usually is sorted already: it
        // becomes the current list as it is (one walk, to mark its entries, and no allocation).
        let mut index = from.head();
        let mut last = 0;
        while index != NIL {
            let entry = slab.at_mut(index);
            if entry.deadline < last {
                return self.fill_sorting(slab, from);
            }
            last = entry.deadline;
            entry.loc = Loc::Current;
            index = entry.next;
        }
        self.list = from;
    }

    /// [`fill`](Self::fill) for a slot whose entries came out of deadline order.
    #[cold]
    fn fill_sorting<T>(&mut self, slab: &mut Slab<T>, from: List) {
        self.scratch.clear();
        let mut index = from.head();
        while index != NIL {
            let entry = slab.at(index);
            self.scratch.push((entry.deadline, index));
            index = entry.next;
        }
        self.scratch.sort_by_key(|&(d, _)| d);
        for i in 0..self.scratch.len() {
            let index = self.scratch[i].1;
            self.list.push_back(slab, index, Loc::Current);
        }
        // A storm of expiries may have grown the buffer; give most of it back.
        if self.scratch.capacity() > 4096 {
            self.scratch = Vec::new();
        }
    }

    pub(super) fn close<T>(&mut self, slab: &mut Slab<T>, prev: u32, next: u32) {
        self.list.close(slab, prev, next);
    }

    /// The earliest deadline.
    pub(super) fn front_deadline<T>(&self, slab: &Slab<T>) -> Option<u64> {
        (!self.is_empty()).then(|| slab.at(self.list.head).deadline)
    }

    /// Unlinks and returns the first entry if it is due at `now`.
    pub(super) fn pop_due<T>(&mut self, slab: &mut Slab<T>, now: u64) -> Option<u32> {
        let head = self.list.head;
        if head == NIL || slab.at(head).deadline > now {
            return None;
        }
        self.list.unlink(slab, head);
        Some(head)
    }

    pub(super) fn allocated_bytes(&self) -> usize {
        self.scratch.capacity() * size_of::<(u64, u32)>()
    }
}

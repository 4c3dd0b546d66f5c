//! One level of the wheel: 64 slots and a bitmap of the occupied ones.
//!
//! Level `l` has slots `2^(TICK_SHIFT + 6 l)` nanoseconds wide; its 64 slots together span one slot of
//! level `l + 1`. The bitmap finds the next occupied slot with one rotate and one count of trailing zeros.

use super::list::{List, SlotList};
use super::slab::{Loc, Slab};

/// log2 of the width of a level-0 slot in nanoseconds: 2^20 ns, about 1.05 ms.
pub(super) const TICK_SHIFT: u32 = 20;
/// log2 of the number of slots in a level.
pub(super) const SLOT_BITS: u32 = 6;
pub(super) const SLOTS: usize = 1 << SLOT_BITS;
/// Levels needed so that `u64` nanoseconds (584 years) fit: 20 + 8 * 6 = 68 bits >= 64.
pub(super) const LEVELS: usize = 8;

/// The level an entry due at tick `deadline` belongs to, seen from tick `elapsed`; `None` when it is
/// due in the current tick (or already past).
pub(super) fn level_for(elapsed: u64, deadline: u64) -> Option<usize> {
    if deadline <= elapsed {
        return None;
    }
    let masked = (elapsed ^ deadline) | (SLOTS as u64 - 1);
    let significant = 63 - masked.leading_zeros();
    Some((significant / SLOT_BITS) as usize)
}

/// The slot of tick `deadline` within level `level`.
pub(super) fn slot_for(deadline: u64, level: usize) -> usize {
    ((deadline >> (SLOT_BITS as usize * level)) & (SLOTS as u64 - 1)) as usize
}

pub(super) struct Level {
    level: usize,
    occupied: u64,
    slots: [SlotList; SLOTS],
}

impl Level {
    pub(super) fn new(level: usize) -> Self {
        Level { level, occupied: 0, slots: std::array::from_fn(|_| SlotList::default()) }
    }

    #[inline]
    pub(super) fn push<T>(&mut self, slab: &mut Slab<T>, slot: usize, index: u32, deadline: u64) {
        self.slots[slot].push(slab, index, deadline, Loc::Slot { level: self.level as u8, slot: slot as u8 });
        self.occupied |= 1 << slot;
    }

    /// Closes the gap an entry of `slot` left between `prev` and `next`.
    #[inline]
    pub(super) fn close<T>(&mut self, slab: &mut Slab<T>, slot: usize, prev: u32, next: u32) {
        let list = &mut self.slots[slot];
        list.close(slab, prev, next);
        if list.is_empty() {
            self.occupied &= !(1 << slot);
        }
    }

    /// Empties `slot`, returning its entries in link order.
    pub(super) fn take(&mut self, slot: usize) -> List {
        self.occupied &= !(1 << slot);
        self.slots[slot].take()
    }

    /// The earliest deadline (nanoseconds) in `slot`, or earlier: exact unless entries were removed.
    pub(super) fn min_deadline(&self, slot: usize) -> u64 {
        self.slots[slot].min_deadline()
    }

    /// The next occupied slot at or after tick `elapsed`, with the tick it starts at.
    pub(super) fn next_occupied(&self, elapsed: u64) -> Option<(usize, u64)> {
        if self.occupied == 0 {
            return None;
        }
        let slot_ticks_log = SLOT_BITS as usize * self.level;
        let position = slot_for(elapsed, self.level);
        let slot = (self.occupied.rotate_right(position as u32).trailing_zeros() as usize + position) % SLOTS;
        // Entries sit at or after the current position (the wheel links them so); a level's span is
        // 2^(6 (level + 1)) ticks, so the start of this level's span is `elapsed` with those bits cleared.
        let span_log = slot_ticks_log + SLOT_BITS as usize;
        let level_start = if span_log >= 64 { 0 } else { elapsed & !((1u64 << span_log) - 1) };
        debug_assert!(slot >= position, "level {} slot {slot} behind position {position}", self.level);
        Some((slot, level_start + ((slot as u64) << slot_ticks_log)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_follow_the_highest_differing_digit() {
        assert_eq!(level_for(0, 0), None);
        assert_eq!(level_for(5, 3), None, "past deadlines are due now");
        assert_eq!(level_for(0, 1), Some(0));
        assert_eq!(level_for(0, 63), Some(0));
        assert_eq!(level_for(0, 64), Some(1));
        assert_eq!(level_for(63, 64), Some(1), "crossing a slot boundary of level 1 goes to level 1");
        assert_eq!(level_for(0, 1 << 12), Some(2));
        assert_eq!(level_for(0, u64::MAX >> TICK_SHIFT), Some(LEVELS - 1));
    }

    #[test]
    fn slots_take_the_level_digit() {
        assert_eq!(slot_for(0b101_000011, 0), 3);
        assert_eq!(slot_for(0b101_000011, 1), 5);
    }
}

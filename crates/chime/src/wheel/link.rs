//! Linking: where an armed entry sits (the current tick's sorted list, or a slot of the level of the
//! highest base-64 digit in which its deadline differs from the wheel's time), and how a slot's
//! entries move down when time reaches it.

use super::Wheel;
use super::level::{TICK_SHIFT, level_for, slot_for};
use super::slab::{Loc, NIL};

impl<T> Wheel<T> {
    pub(super) fn link(&mut self, index: u32) {
        let deadline = self.slab.at(index).deadline >> TICK_SHIFT;
        match level_for(self.elapsed >> TICK_SHIFT, deadline) {
            None => self.current.insert(&mut self.slab, index),
            Some(level) => self.levels[level].push(&mut self.slab, slot_for(deadline, level), index),
        }
    }

    pub(super) fn unlink(&mut self, index: u32) {
        let entry = self.slab.at(index);
        match entry.loc {
            Loc::Slot { level } => {
                let slot = slot_for(entry.deadline >> TICK_SHIFT, level as usize);
                self.levels[level as usize].remove(&mut self.slab, slot, index);
            }
            Loc::Current => self.current.remove(&mut self.slab, index),
            Loc::Unlinked | Loc::Vacant => {}
        }
    }

    /// Time has reached `slot` of `level` (and `elapsed` is its start): move its entries down.
    pub(super) fn expire_slot(&mut self, level: usize, slot: usize) {
        let entries = self.levels[level].take(slot);
        if level == 0 {
            self.current.fill(&mut self.slab, entries);
            return;
        }
        let mut index = entries.head();
        while index != NIL {
            let next = self.slab.at(index).next; // linking below overwrites it
            self.link(index);
            index = next;
        }
    }
}

//! Linking: where an armed entry sits (the current tick's sorted list, or a slot of the level of the
//! highest base-64 digit in which its deadline differs from the wheel's time), and how a slot's
//! entries move down when time reaches it.

use super::Wheel;
use super::level::{TICK_SHIFT, level_for, slot_for};
use super::slab::{Links, Loc, NIL};

impl<T> Wheel<T> {
    pub(super) fn link(&mut self, index: u32) {
        let deadline = self.slab.at(index).deadline;
        self.link_at(index, deadline);
    }

    /// Links `index`, whose deadline is `deadline` (the caller has it at hand: one load less on the
    /// arming path's chain of dependent loads).
    #[inline]
    pub(super) fn link_at(&mut self, index: u32, deadline: u64) {
        let tick = deadline >> TICK_SHIFT;
        match level_for(self.elapsed >> TICK_SHIFT, tick) {
            None => self.current.insert(&mut self.slab, index),
            Some(level) => self.levels[level].push(&mut self.slab, slot_for(tick, level), index, deadline),
        }
    }

    pub(super) fn unlink(&mut self, index: u32) {
        let entry = self.slab.at_mut(index);
        let links = entry.links();
        entry.loc = Loc::Unlinked;
        self.close(links);
    }

    /// Closes the gap an entry left in its list (`links`: where it was).
    #[inline]
    pub(super) fn close(&mut self, links: Links) {
        match links.loc {
            Loc::Slot { level, slot } => {
                self.levels[level as usize].close(&mut self.slab, slot as usize, links.prev, links.next);
            }
            Loc::Current => self.current.close(&mut self.slab, links.prev, links.next),
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

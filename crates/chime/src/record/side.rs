//! The side table of [`Extras`]: by the slab index of their timer's wheel entry, in fixed chunks made
//! on first use. Indexing needs no hashing, and the table grows by a chunk at a time, never copying
//! what it holds (a hash map doubling under a shard's lock would stall every arm of the shard for
//! as long as it rehashes).

use super::Extras;

/// log2 of the indexes per chunk.
const CHUNK_BITS: u32 = 12;
const CHUNK: usize = 1 << CHUNK_BITS;

type Chunk = Box<[Option<Box<Extras>>; CHUNK]>;

#[derive(Default)]
pub(super) struct Side {
    /// `None` for a stretch of indexes none of whose timers ever had extras.
    chunks: Vec<Option<Chunk>>,
}

fn split(index: u32) -> (usize, usize) {
    ((index >> CHUNK_BITS) as usize, index as usize & (CHUNK - 1))
}

impl Side {
    pub(super) fn get(&self, index: u32) -> Option<&Extras> {
        let (chunk, at) = split(index);
        self.chunks.get(chunk)?.as_ref()?[at].as_deref()
    }

    pub(super) fn get_mut(&mut self, index: u32) -> Option<&mut Extras> {
        let (chunk, at) = split(index);
        self.chunks.get_mut(chunk)?.as_mut()?[at].as_deref_mut()
    }

    /// Stores `extras` at `index`, handing back what was there.
    pub(super) fn insert(&mut self, index: u32, extras: Box<Extras>) -> Option<Box<Extras>> {
        let (chunk, at) = split(index);
        if self.chunks.len() <= chunk {
            self.chunks.resize_with(chunk + 1, || None);
        }
        let slots = self.chunks[chunk].get_or_insert_with(|| {
            let empty: Box<[Option<Box<Extras>>]> = (0..CHUNK).map(|_| None).collect();
            empty.try_into().unwrap_or_else(|_| unreachable!("exactly CHUNK slots"))
        });
        slots[at].replace(extras)
    }

    pub(super) fn remove(&mut self, index: u32) -> Option<Box<Extras>> {
        let (chunk, at) = split(index);
        self.chunks.get_mut(chunk)?.as_mut()?[at].take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_made_where_extras_go_and_nowhere_else() {
        let mut side = Side::default();
        assert!(side.get(5).is_none());
        assert!(side.insert(3 * CHUNK as u32 + 7, Box::default()).is_none());
        assert_eq!(
            side.chunks.iter().filter(|c| c.is_some()).count(),
            1,
            "one chunk, for index 3 * CHUNK + 7"
        );
        assert!(side.get(3 * CHUNK as u32 + 7).is_some());
        assert!(side.get(3 * CHUNK as u32 + 8).is_none());
        assert!(side.remove(3 * CHUNK as u32 + 7).is_some());
        assert!(side.remove(3 * CHUNK as u32 + 7).is_none());
        assert!(side.remove(u32::MAX).is_none(), "an index past every chunk is simply absent");
    }
}

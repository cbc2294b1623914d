//! Slabs: page runs cut into blocks of one size class.
//!
//! A slab's descriptor lives out of line, in the metadata pool; the page map
//! leads from any block to it. Blocks are carved lazily (a bump index), so a
//! fresh slab costs nothing until its blocks are used, and blocks coming back
//! go on the slab's own free list. The depot of the slab's class owns all of
//! this state and changes it only under its lock; the one exception is the
//! checked-mode `live` bitmap, which is atomic.

use core::ptr;
use core::sync::atomic::AtomicU64;

use bitvec::array::BitArray;

use crate::block::{Block, BlockList};
use crate::size_class::{self, Class, MAX_BLOCKS_PER_SLAB};

const LIVE_WORDS: usize = MAX_BLOCKS_PER_SLAB / 64;

/// Descriptor of one slab. Aligned so that page map entries can carry the
/// class in the low bits of its address.
#[repr(C, align(128))]
pub(crate) struct Slab {
    /// First byte of the slab's pages.
    pub start: usize,
    pub class: Class,
    /// Blocks the slab holds in all.
    pub capacity: u32,
    /// Blocks carved off the bump so far.
    carved: u32,
    /// Blocks available here: on `free` plus not yet carved.
    pub available: u32,
    /// Blocks that came back.
    free: *mut Block,
    /// Links in the depot's list of slabs with available blocks.
    pub prev: *mut Slab,
    pub next: *mut Slab,
    /// Checked mode: a bit per block, set while the block is with the user.
    pub live: BitArray<[AtomicU64; LIVE_WORDS]>,
}

impl Slab {
    /// A descriptor for a fresh slab of `class` at `start`.
    pub fn new(start: usize, class: Class) -> Slab {
        let capacity = size_class::blocks_per_slab(class) as u32;
        Slab {
            start,
            class,
            capacity,
            carved: 0,
            available: capacity,
            free: ptr::null_mut(),
            prev: ptr::null_mut(),
            next: ptr::null_mut(),
            live: BitArray::new([const { AtomicU64::new(0) }; LIVE_WORDS]),
        }
    }

    /// Whether every block is back in the slab.
    pub fn is_empty(&self) -> bool {
        self.available == self.capacity
    }

    /// Moves up to `want` blocks onto `out`; returns how many moved.
    pub fn take(&mut self, want: u32, out: &mut BlockList) -> u32 {
        let size = size_class::size_of(self.class);
        let mut taken = 0;
        while taken < want && !self.free.is_null() {
            let block = self.free;
            // SAFETY: blocks on the slab's free list are free and linked
            // through their first word; `out` takes ownership of them.
            unsafe {
                self.free = (*block).next;
                out.push(block);
            }
            taken += 1;
        }
        while taken < want && self.carved < self.capacity {
            let block = (self.start + self.carved as usize * size) as *mut Block;
            // SAFETY: an uncarved block lies inside the slab's pages and has
            // never been handed out.
            unsafe { out.push(block) };
            self.carved += 1;
            taken += 1;
        }
        self.available -= taken;
        taken
    }

    /// Takes a block back.
    ///
    /// # Safety
    /// `block` is a block of this slab that is out (not already available).
    pub unsafe fn put(&mut self, block: *mut Block) {
        // SAFETY: the caller returns a block of ours; its first word is free.
        unsafe { (*block).next = self.free };
        self.free = block;
        self.available += 1;
    }

    /// Index of the block at `addr`, if `addr` is the start of a block.
    pub fn block_index(&self, addr: usize) -> Option<usize> {
        let size = size_class::size_of(self.class);
        let offset = addr.checked_sub(self.start)?;
        (offset % size == 0 && offset / size < self.capacity as usize).then_some(offset / size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PAGE_SIZE;
    use std::vec::Vec;

    #[test]
    fn carves_every_block_once_and_takes_them_back() {
        let class = size_class::for_size(1000).unwrap();
        let pages = size_class::slab_pages(class);
        let mut memory = std::vec![0u8; (pages + 1) * PAGE_SIZE];
        let start = (memory.as_mut_ptr() as usize).next_multiple_of(PAGE_SIZE);
        let mut slab = Slab::new(start, class);
        let capacity = slab.capacity;

        let mut out = BlockList::EMPTY;
        assert_eq!(slab.take(capacity + 5, &mut out), capacity);
        assert_eq!(slab.available, 0);
        let mut blocks = Vec::new();
        out.drain(|b| blocks.push(b as usize));
        blocks.sort();
        blocks.dedup();
        assert_eq!(blocks.len(), capacity as usize);
        let size = size_class::size_of(class);
        for &b in &blocks {
            assert_eq!(slab.block_index(b), Some((b - start) / size));
        }
        assert_eq!(slab.block_index(blocks[0] + 8), None);

        for &b in &blocks {
            // SAFETY: every block was taken from `slab` above, each put once.
            unsafe { slab.put(b as *mut Block) };
        }
        assert!(slab.is_empty());
        let mut again = BlockList::EMPTY;
        assert_eq!(slab.take(3, &mut again), 3);
        assert_eq!(slab.available, capacity - 3);
    }
}

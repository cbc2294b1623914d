//! Slabs: page runs cut into blocks of one size class.
//!
//! A slab's descriptor lives out of line, in the metadata pool; the page map
//! leads from any block to it. Blocks are carved lazily (a bump index), so a
//! fresh slab costs nothing until its blocks are used, and blocks coming back
//! go on the slab's own free list. The central free list of the slab's class
//! owns this state ([`Guarded`]) and changes it only under its lock. The rest
//! of the descriptor is read by any CPU without that lock (checked mode's
//! verdicts, the page map's lookups): it never changes after the slab is made,
//! except the checked-mode `live` bitmap, which is atomic. No `&mut` may
//! cover it then, so the guarded part sits in an `UnsafeCell` of its own.

use core::cell::UnsafeCell;
use core::ptr;

use crate::checked::LiveBits;
use crate::size_class::{self, Class};

/// A free block in its slab's free list: the link to the next one sits in
/// its first word (every class is at least 16 bytes). Elsewhere free blocks
/// are plain pointers in arrays, and their memory is not touched.
#[repr(C)]
pub(crate) struct Block {
    pub next: *mut Block,
}

/// Descriptor of one slab. Aligned so that page map entries can carry the
/// class in the low bits of its address.
#[repr(C, align(128))]
pub(crate) struct Slab {
    /// First byte of the slab's pages.
    pub start: usize,
    pub class: Class,
    /// Blocks the slab holds in all.
    pub capacity: u32,
    guarded: UnsafeCell<Guarded>,
    /// Checked mode: a bit per block, set while the block is with the user.
    pub live: LiveBits,
}

/// The part of a slab that its central free list changes, under its lock.
pub(crate) struct Guarded {
    /// Blocks carved off the bump so far.
    carved: u32,
    /// Blocks available here: on `free` plus not yet carved.
    pub available: u32,
    /// Blocks that came back.
    free: *mut Block,
    /// Links in the central free list's list of slabs of the same fullness.
    pub prev: *mut Slab,
    pub next: *mut Slab,
}

impl Slab {
    /// A descriptor for a fresh slab of `class` at `start`.
    pub fn new(start: usize, class: Class) -> Slab {
        let capacity = size_class::blocks_per_slab(class) as u32;
        Slab {
            start,
            class,
            capacity,
            guarded: UnsafeCell::new(Guarded {
                carved: 0,
                available: capacity,
                free: ptr::null_mut(),
                prev: ptr::null_mut(),
                next: ptr::null_mut(),
            }),
            live: LiveBits::new(),
        }
    }

    /// The part of the slab its central free list's lock guards: only
    /// reached with that lock held.
    pub fn guarded(&self) -> *mut Guarded {
        self.guarded.get()
    }

    /// Moves up to `out.len()` blocks into `out`; returns how many moved.
    ///
    /// # Safety
    /// The caller holds the lock of the slab's central free list.
    pub unsafe fn take(&self, out: &mut [*mut Block]) -> usize {
        // SAFETY: the caller holds the lock that guards this part.
        let g = unsafe { &mut *self.guarded() };
        let size = size_class::size_of(self.class);
        let mut taken = 0;
        while taken < out.len() && !g.free.is_null() {
            let block = g.free;
            // SAFETY: blocks on the slab's free list are free and linked
            // through their first word; `out` takes ownership of them.
            g.free = unsafe { (*block).next };
            out[taken] = block;
            taken += 1;
        }
        while taken < out.len() && g.carved < self.capacity {
            // An uncarved block lies inside the slab's pages and has never
            // been handed out.
            out[taken] = (self.start + g.carved as usize * size) as *mut Block;
            g.carved += 1;
            taken += 1;
        }
        g.available -= taken as u32;
        taken
    }

    /// Takes a block back.
    ///
    /// # Safety
    /// The caller holds the lock of the slab's central free list, and
    /// `block` is a block of this slab that is out (not already available).
    pub unsafe fn put(&self, block: *mut Block) {
        // SAFETY: the caller holds the lock that guards this part and
        // returns a block of ours, whose first word is free.
        unsafe {
            let g = &mut *self.guarded();
            (*block).next = g.free;
            g.free = block;
            g.available += 1;
        }
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
        let slab = Slab::new(start, class);
        let capacity = slab.capacity;
        // SAFETY: this test is the only user of `slab`: it stands for the lock.
        let available = || unsafe { (*slab.guarded()).available };

        let mut out = std::vec![ptr::null_mut(); capacity as usize + 5];
        // SAFETY: as above.
        assert_eq!(unsafe { slab.take(&mut out) }, capacity as usize);
        assert_eq!(available(), 0);
        let mut blocks: Vec<usize> = out[..capacity as usize]
            .iter()
            .map(|&b| b as usize)
            .collect();
        blocks.sort();
        blocks.dedup();
        assert_eq!(blocks.len(), capacity as usize);
        let size = size_class::size_of(class);
        for &b in &blocks {
            assert_eq!(slab.block_index(b), Some((b - start) / size));
        }
        assert_eq!(slab.block_index(blocks[0] + 8), None);

        for &b in &blocks {
            // SAFETY: every block was taken from `slab` above, each put once;
            // the test stands for the lock.
            unsafe { slab.put(b as *mut Block) };
        }
        assert_eq!(available(), capacity);
        let mut again = [ptr::null_mut(); 3];
        // SAFETY: as above.
        assert_eq!(unsafe { slab.take(&mut again) }, 3);
        assert_eq!(available(), capacity - 3);
    }
}

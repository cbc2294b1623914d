//! Blocks as the workloads hold them, and the checked heap they come from.
//!
//! Every block gets a pattern when it is allocated: one 8-byte word at every 64-byte offset (so
//! every cache line and every page of the block is really written: the allocator's memory is
//! used, as a program would use it) and the block's last 8 bytes (so a block shorter than asked
//! for overlaps its neighbour's pattern). Each word mixes the block's own tag with its offset.
//! The pattern is checked before the block is freed and around every `realloc`, so an allocator
//! that hands out overlapping blocks, too-small blocks or loses data on `realloc` is caught and
//! its run reported as failed: a wrong allocator cannot win.

use std::alloc::{GlobalAlloc, Layout};
use std::ptr::NonNull;

/// A live block: where it is, its layout and the tag its pattern derives from.
pub struct Block {
    ptr: NonNull<u8>,
    layout: Layout,
    tag: u64,
}

// SAFETY: a `Block` owns its allocation exclusively; moving it to another thread moves that
// ownership (the allocators under test are all `Sync` and accept frees from any thread).
unsafe impl Send for Block {}

impl Block {
    pub fn size(&self) -> usize {
        self.layout.size()
    }
}

/// Offsets of the pattern words of a block of `size >= 8` bytes: every 64 bytes, then the last
/// 8 bytes (the strided words stop where they would overlap that last one).
fn offsets(size: usize) -> impl Iterator<Item = usize> {
    (0..size.saturating_sub(15)).step_by(64).chain([size - 8])
}

/// The pattern word at `offset` of a block tagged `tag`.
fn word(tag: u64, offset: usize) -> u64 {
    tag ^ (offset as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Writes the pattern of a `size`-byte block tagged `tag`.
///
/// # Safety
/// `ptr` is valid for writes of `size` bytes.
unsafe fn fill(ptr: *mut u8, size: usize, tag: u64) {
    if size < 8 {
        for i in 0..size {
            // SAFETY: i < size (caller contract).
            unsafe { ptr.add(i).write(word(tag, i) as u8) };
        }
        return;
    }
    for offset in offsets(size) {
        // SAFETY: offset + 8 <= size (caller contract); the block may be only 1-aligned.
        unsafe {
            ptr.add(offset)
                .cast::<u64>()
                .write_unaligned(word(tag, offset))
        };
    }
}

/// Whether the pattern written for a `written`-byte block is still there in its first `kept`
/// bytes (`kept <= written`; after a `realloc`, the bytes the allocator had to preserve).
///
/// # Safety
/// `ptr` is valid for reads of `kept` bytes, which were written by [`fill`] for `written`.
unsafe fn intact(ptr: *const u8, written: usize, kept: usize, tag: u64) -> bool {
    if written < 8 {
        // SAFETY: i < kept (caller contract).
        return (0..kept).all(|i| unsafe { ptr.add(i).read() } == word(tag, i) as u8);
    }
    offsets(written)
        .take_while(|&offset| offset + 8 <= kept)
        .all(|offset| {
            // SAFETY: offset + 8 <= kept, and `fill` wrote this word (caller contract).
            let found = unsafe { ptr.add(offset).cast::<u64>().read_unaligned() };
            found == word(tag, offset)
        })
}

/// What one thread of a workload did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Allocations, frees and reallocations that succeeded.
    pub ops: u64,
    /// Blocks whose pattern was damaged when checked.
    pub corrupt: u64,
    /// Allocations and reallocations that returned null.
    pub failed: u64,
    /// Requested bytes of the blocks this thread holds, and the most it held at once.
    pub live: u64,
    pub live_peak: u64,
}

impl Tally {
    /// Adds another thread's counts (live peaks add up: an upper bound of the joint peak).
    pub fn merge(&mut self, other: &Tally) {
        self.ops += other.ops;
        self.corrupt += other.corrupt;
        self.failed += other.failed;
        self.live += other.live;
        self.live_peak += other.live_peak;
    }

    fn grew(&mut self, bytes: usize) {
        self.live += bytes as u64;
        self.live_peak = self.live_peak.max(self.live);
    }
}

/// The allocator under test as one thread of a workload uses it: it patterns every block it
/// hands out, checks every block it takes back, and counts.
pub struct Heap<'a, A> {
    alloc: &'a A,
    next_tag: u64,
    pub tally: Tally,
}

impl<'a, A: GlobalAlloc> Heap<'a, A> {
    /// A heap over `alloc`; `seed` makes this thread's tags.
    pub fn new(alloc: &'a A, seed: u64) -> Self {
        Heap {
            alloc,
            next_tag: seed.wrapping_mul(0xD1B5_4A32_D192_ED03) | 1,
            tally: Tally::default(),
        }
    }

    /// A patterned block of `size` bytes aligned to `align`; `None` (counted) when the allocator
    /// returns null.
    pub fn alloc(&mut self, size: usize, align: usize) -> Option<Block> {
        let layout =
            Layout::from_size_align(size.max(1), align).expect("workload layouts are valid");
        // SAFETY: the layout has a non-zero size.
        let Some(ptr) = NonNull::new(unsafe { self.alloc.alloc(layout) }) else {
            self.tally.failed += 1;
            return None;
        };
        self.next_tag = self.next_tag.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let tag = self.next_tag;
        // SAFETY: the allocator returned a block of at least `layout.size()` bytes.
        unsafe { fill(ptr.as_ptr(), layout.size(), tag) };
        self.tally.ops += 1;
        self.tally.grew(layout.size());
        Some(Block { ptr, layout, tag })
    }

    /// Checks a block's pattern without freeing it (a read of every cache line of the block).
    pub fn check(&mut self, block: &Block) {
        let size = block.size();
        // SAFETY: the block is live and `fill` patterned all of it.
        if !unsafe { intact(block.ptr.as_ptr(), size, size, block.tag) } {
            self.tally.corrupt += 1;
        }
    }

    /// Checks a block, then frees it.
    ///
    /// # Safety
    /// `block` came from a `Heap` over the same allocator (any thread's).
    pub unsafe fn free(&mut self, block: Block) {
        self.check(&block);
        // SAFETY: the block came from this allocator with this layout (caller contract).
        unsafe { self.alloc.dealloc(block.ptr.as_ptr(), block.layout) };
        self.tally.ops += 1;
        self.tally.live = self.tally.live.saturating_sub(block.size() as u64);
    }

    /// Resizes a block to `new_size` bytes, checking that its contents survived. False (counted,
    /// the block unchanged) when the allocator returns null.
    ///
    /// # Safety
    /// As for [`free`](Self::free).
    pub unsafe fn realloc(&mut self, block: &mut Block, new_size: usize) -> bool {
        let (old_size, new_size) = (block.size(), new_size.max(1));
        self.check(block);
        // SAFETY: a live block of this allocator with this layout (caller contract); the new
        // size is non-zero and, with the old alignment, a valid layout (the workloads ask for
        // at most a few hundred KiB).
        let ptr = unsafe {
            self.alloc
                .realloc(block.ptr.as_ptr(), block.layout, new_size)
        };
        let Some(ptr) = NonNull::new(ptr) else {
            self.tally.failed += 1;
            return false;
        };
        // SAFETY: the new block holds at least min(old, new) bytes, which `realloc` preserved.
        if !unsafe { intact(ptr.as_ptr(), old_size, old_size.min(new_size), block.tag) } {
            self.tally.corrupt += 1;
        }
        // SAFETY: the new block has `new_size` bytes.
        unsafe { fill(ptr.as_ptr(), new_size, block.tag) };
        block.ptr = ptr;
        block.layout = Layout::from_size_align(new_size, block.layout.align())
            .expect("the old alignment with a small size is a valid layout");
        self.tally.ops += 1;
        self.tally.live = self.tally.live.saturating_sub(old_size as u64);
        self.tally.grew(new_size);
        true
    }
}

#[cfg(test)]
mod tests {
    use std::alloc::System;

    use super::*;

    #[test]
    fn a_healthy_block_passes_and_every_damaged_word_is_caught() {
        for size in [1, 7, 8, 9, 15, 16, 63, 64, 65, 75, 79, 80, 200, 4096] {
            let mut heap = Heap::new(&System, 3);
            let block = heap.alloc(size, 8).unwrap();
            heap.check(&block);
            assert_eq!(heap.tally.corrupt, 0, "size {size}");
            let checked = if size < 8 {
                (0..size).collect::<Vec<_>>()
            } else {
                offsets(size).collect()
            };
            for &offset in &checked {
                // SAFETY: offset < size: inside the live block.
                unsafe { *block.ptr.as_ptr().add(offset) ^= 1 };
                heap.check(&block);
                // SAFETY: as above; restores the byte.
                unsafe { *block.ptr.as_ptr().add(offset) ^= 1 };
            }
            assert_eq!(heap.tally.corrupt, checked.len() as u64, "size {size}");
            // SAFETY: allocated from System by this heap.
            unsafe { heap.free(block) };
            assert_eq!(heap.tally.corrupt, checked.len() as u64, "size {size}");
        }
    }

    #[test]
    fn realloc_keeps_the_pattern_both_ways() {
        let mut heap = Heap::new(&System, 9);
        let mut block = heap.alloc(100, 8).unwrap();
        for size in [5000, 12, 3, 300, 64] {
            // SAFETY: the block came from this heap.
            assert!(unsafe { heap.realloc(&mut block, size) });
            heap.check(&block);
        }
        // SAFETY: as above.
        unsafe { heap.free(block) };
        assert_eq!(heap.tally.corrupt, 0);
        assert_eq!(heap.tally.ops, 7);
        assert_eq!(heap.tally.live, 0);
        assert_eq!(heap.tally.live_peak, 5000);
    }

    /// A realloc that loses the old contents: the checks must notice.
    struct Forgetful;

    // SAFETY: delegates to System; `realloc` returns a fresh block (contents not copied).
    unsafe impl GlobalAlloc for Forgetful {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            // SAFETY: forwarded.
            unsafe { System.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: forwarded.
            unsafe { System.dealloc(ptr, layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            // SAFETY: forwarded; a zeroed block of the new size replaces the old one.
            unsafe {
                System.dealloc(ptr, layout);
                System.alloc_zeroed(Layout::from_size_align_unchecked(new_size, layout.align()))
            }
        }
    }

    #[test]
    fn a_realloc_that_loses_data_is_caught() {
        let mut heap = Heap::new(&Forgetful, 1);
        let mut block = heap.alloc(256, 8).unwrap();
        // SAFETY: the block came from this heap.
        unsafe { heap.realloc(&mut block, 512) };
        assert_eq!(heap.tally.corrupt, 1);
        // SAFETY: as above.
        unsafe { heap.free(block) };
    }
}

//! Blocks filled with a pattern derived from a seed, so that any byte another block's owner (or
//! the allocator) overwrites is found when the block is checked.

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::NonNull;

use crate::check;

/// How much of a block is written and checked.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Coverage {
    /// Every byte.
    Full,
    /// The first and the last word only (cheap: for timing allocators, not memory).
    Ends,
}

/// A live block of heap `A` with a pattern in it.
pub struct Patterned<'h, A> {
    heap: &'h A,
    ptr: NonNull<u8>,
    layout: Layout,
    seed: u64,
}

// SAFETY: a `Patterned` owns its block; sending it to another CPU hands the block over, and the
// heap, shared by all CPUs, is `Sync`.
unsafe impl<A: Sync> Send for Patterned<'_, A> {}

fn word(seed: u64, index: usize) -> u64 {
    seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

impl<'h, A: GlobalAlloc> Patterned<'h, A> {
    /// Allocates `layout` (size at least 8) from `heap` and writes the pattern of `seed`; `None`
    /// when the heap returns null.
    pub fn alloc(heap: &'h A, layout: Layout, seed: u64, coverage: Coverage) -> Option<Self> {
        assert!(layout.size() >= 8, "patterned blocks hold at least a word");
        // SAFETY: the layout has a non-zero size (checked above).
        let ptr = NonNull::new(unsafe { heap.alloc(layout) })?;
        let block = Patterned {
            heap,
            ptr,
            layout,
            seed,
        };
        for (offset, len, index) in block.parts(coverage) {
            let bytes = word(seed, index).to_le_bytes();
            // SAFETY: `parts` yields ranges inside the block, which we own.
            unsafe {
                core::ptr::copy_nonoverlapping(bytes.as_ptr(), block.ptr.as_ptr().add(offset), len)
            };
        }
        Some(block)
    }

    /// The block's address.
    pub fn addr(&self) -> usize {
        self.ptr.as_ptr() as usize
    }

    /// The block's layout.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The parts of the block `coverage` touches, none overlapping another: (byte offset, bytes
    /// 1..=8, pattern index). Whole words from the start, then the bytes left over (full
    /// coverage) or one word ending at the last byte (ends only).
    fn parts(&self, coverage: Coverage) -> impl Iterator<Item = (usize, usize, usize)> {
        let size = self.layout.size();
        let (words, tail) = match coverage {
            Coverage::Full => (
                size / 8,
                (!size.is_multiple_of(8)).then_some((size / 8 * 8, size % 8)),
            ),
            Coverage::Ends => (1, (size >= 16).then_some((size - 8, 8))),
        };
        (0..words)
            .map(|index| (index * 8, 8, index))
            .chain(tail.map(|(offset, len)| (offset, len, usize::MAX)))
    }

    /// Whether the pattern is intact; a failed check names the first bad part.
    pub fn verify(&self, coverage: Coverage) -> bool {
        for (offset, len, index) in self.parts(coverage) {
            let mut found = [0; 8];
            // SAFETY: `parts` yields ranges inside the block, which we own.
            unsafe {
                core::ptr::copy_nonoverlapping(
                    self.ptr.as_ptr().add(offset),
                    found.as_mut_ptr(),
                    len,
                )
            };
            let expected = word(self.seed, index).to_le_bytes();
            if !check!(
                found[..len] == expected[..len],
                "block {:#x} ({} bytes) changed at offset {offset}: {:#x}, expected {:#x}",
                self.addr(),
                self.layout.size(),
                u64::from_le_bytes(found),
                word(self.seed, index)
            ) {
                return false;
            }
        }
        true
    }

    /// Checks the pattern, then frees the block; returns whether the pattern was intact.
    pub fn free(self, coverage: Coverage) -> bool {
        let intact = self.verify(coverage);
        // SAFETY: the block came from `self.heap` with this layout, and `self` is consumed, so
        // nothing refers to it any more.
        unsafe { self.heap.dealloc(self.ptr.as_ptr(), self.layout) };
        intact
    }
}

/// Allocates patterned blocks of `layout` into `blocks` until the heap returns null; returns how
/// many it got (all of `blocks` if it never ran out).
pub fn fill<'h, A: GlobalAlloc>(
    blocks: &mut [Option<Patterned<'h, A>>],
    heap: &'h A,
    layout: Layout,
) -> usize {
    for (count, slot) in blocks.iter_mut().enumerate() {
        *slot = Patterned::alloc(heap, layout, count as u64, Coverage::Full);
        if slot.is_none() {
            return count;
        }
    }
    blocks.len()
}

/// Checks and frees every block in `blocks`.
pub fn free_all<A: GlobalAlloc>(blocks: &mut [Option<Patterned<'_, A>>]) {
    for block in blocks.iter_mut().filter_map(Option::take) {
        block.free(Coverage::Full);
    }
}

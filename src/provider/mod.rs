//! Page providers: where the allocator's memory comes from.
//!
//! The core never calls `mmap` or touches page tables itself. It asks a
//! [`PageProvider`] for runs of pages inside one fixed address range (the
//! provider's *span*), which lets the core find the metadata of any pointer
//! with one index into its page map, whatever the size of the span: a
//! 64 KiB region or a 64 GiB reservation.

mod region;
mod runs;
pub use region::{MAX_RANGES, RegionProvider};
pub use runs::PageRuns;

#[cfg(feature = "std")]
mod mmap;
pub use crate::config::DecommitMode;
#[cfg(feature = "std")]
pub use mmap::{MmapProvider, OsCalls};

use core::ptr::NonNull;

/// Size of a page, the provider's unit.
pub const PAGE_SIZE: usize = 4096;

/// A page-aligned address range `[base, base + len)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    /// First byte.
    pub base: usize,
    /// Length in bytes, a multiple of [`PAGE_SIZE`].
    pub len: usize,
}

impl Span {
    /// Number of pages in the span.
    pub fn pages(&self) -> usize {
        self.len / PAGE_SIZE
    }

    /// Whether `addr` lies inside the span.
    #[inline(always)]
    pub fn contains(&self, addr: usize) -> bool {
        addr.wrapping_sub(self.base) < self.len
    }
}

/// Why memory could not join a heap
/// ([`Allocator::add_region`](crate::Allocator::add_region)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddRegionError {
    /// The allocator has no provider yet (before `init`).
    NotInitialized,
    /// The provider takes no memory after it was made (the default).
    Unsupported,
    /// Not one whole page in the range.
    Empty,
    /// The range reaches outside the provider's span, which the page map
    /// covers.
    OutsideSpan,
    /// The range overlaps memory the provider already holds.
    Overlaps,
    /// The provider holds as many separate ranges as it can.
    NoRoom,
}

/// Source of page runs for one allocator.
///
/// # Safety
/// Implementations promise that every run returned by `alloc_pages` lies
/// inside [`span`](Self::span), is readable and writable until it is freed,
/// and does not overlap any other live run; and that `span` never changes.
pub unsafe trait PageProvider {
    /// Whether fresh runs always read as zero (lets the allocator skip
    /// clearing its metadata, so untouched pages stay unbacked).
    const ZEROED: bool = false;

    /// The address range every run comes from.
    fn span(&self) -> Span;

    /// Allocates `pages` contiguous pages aligned to `align` (a power of two,
    /// at least [`PAGE_SIZE`]), committed. `None` when out of memory.
    fn alloc_pages(&mut self, pages: usize, align: usize) -> Option<NonNull<u8>>;

    /// Frees pages returned by `alloc_pages`: a whole run, or any whole-page
    /// part of one (the rest stays live), or adjacent parts freed at once.
    ///
    /// # Safety
    /// Every page of `[ptr, ptr + pages * PAGE_SIZE)` belongs to a live run
    /// of this provider and is no longer used.
    unsafe fn free_pages(&mut self, ptr: NonNull<u8>, pages: usize);

    /// Releases the physical memory behind part of a live run while keeping
    /// the range. Returns `false` where the provider cannot (the default).
    /// The allocator only decommits runs it has freed (it keeps them in its
    /// page heap) and recommits them before reuse.
    ///
    /// # Safety
    /// The range lies in a live run and holds nothing that is still needed.
    unsafe fn decommit(&mut self, _ptr: NonNull<u8>, _pages: usize) -> bool {
        false
    }

    /// Makes a decommitted range usable again. Returns `false` on failure.
    ///
    /// # Safety
    /// The range lies in a live run.
    unsafe fn recommit(&mut self, _ptr: NonNull<u8>, _pages: usize) -> bool {
        true
    }

    /// Takes `[start, start + size)` (trimmed inward to whole pages) as
    /// more memory to hand out runs from; returns the bytes taken. The
    /// default takes none ([`AddRegionError::Unsupported`]).
    ///
    /// # Safety
    /// The memory is valid, writable and used by nothing else for the
    /// provider's lifetime.
    unsafe fn add_memory(
        &mut self,
        _start: *mut u8,
        _size: usize,
    ) -> Result<usize, AddRegionError> {
        Err(AddRegionError::Unsupported)
    }

    /// Grows or shrinks a live run without moving it. Returns `false` (and
    /// changes nothing) where that is impossible (the default).
    ///
    /// # Safety
    /// `ptr` and `old_pages` describe a live run of this provider.
    unsafe fn resize_in_place(
        &mut self,
        _ptr: NonNull<u8>,
        _old_pages: usize,
        _new_pages: usize,
    ) -> bool {
        false
    }
}

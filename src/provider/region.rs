//! Fixed memory regions handed over by a kernel: one at the start
//! (`[start, start + size)`), more later ([`add_region`]), all inside the
//! provider's span.
//!
//! Page runs are carved with `linked_list_allocator`, one `Heap` per
//! separate range: a first-fit free list that keeps its bookkeeping inside
//! the free memory itself, so a range needs no side table, and a range
//! added right after another one extends that one's `Heap`. Run allocation
//! is the allocator's cold path (new slabs and large blocks, and the page
//! heap serves most of those), where a first-fit scan is cheap enough.
//!
//! The span is fixed when the provider is made, since the allocator's page
//! map covers it: a kernel that will find more memory later names the
//! address window it may lie in ([`RegionProvider::with_span`]); the page
//! map and the page heap's table then cost 40 bytes per page of the window,
//! taken from the first region.
//!
//! [`add_region`]: crate::Allocator::add_region

use core::alloc::Layout;
use core::ptr::NonNull;

use linked_list_allocator::Heap;

use super::{AddRegionError, PAGE_SIZE, PageProvider, Span};

/// Most separate ranges one region provider holds (a range added right
/// after another one joins it and takes no slot).
pub const MAX_RANGES: usize = 16;

/// Page provider over fixed regions; it never decommits.
pub struct RegionProvider {
    ranges: [Heap; MAX_RANGES],
    /// Ranges in use: `ranges[..count]`.
    count: usize,
    span: Span,
}

// SAFETY: the provider owns its regions exclusively (constructor and
// `add_memory` contracts); moving it to another thread moves that ownership.
unsafe impl Send for RegionProvider {}

/// `[addr, addr + size)` trimmed inward to whole pages: base and length.
fn whole_pages(addr: usize, size: usize) -> (usize, usize) {
    let base = addr.next_multiple_of(PAGE_SIZE);
    let end = addr.saturating_add(size) & !(PAGE_SIZE - 1);
    (base, end.saturating_sub(base))
}

impl RegionProvider {
    /// Takes over `[start, start + size)`, trimmed inward to whole pages;
    /// the span is that region (no memory can be added later).
    ///
    /// # Safety
    /// The region is valid, writable memory used by nothing else for the
    /// provider's lifetime.
    pub unsafe fn new(start: *mut u8, size: usize) -> Self {
        let (base, len) = whole_pages(start as usize, size);
        let mut provider = RegionProvider {
            ranges: [const { Heap::empty() }; MAX_RANGES],
            count: 0,
            span: Span { base, len },
        };
        // SAFETY: the caller's contract; the trimmed region is the span.
        let _ = unsafe { provider.take(base, len) };
        provider
    }

    /// Takes over `[start, start + size)` (trimmed inward to whole pages)
    /// within a span of `[span_start, span_start + span_size)` (trimmed
    /// likewise), where more regions may be added later. `None` if the
    /// region does not lie inside the span.
    ///
    /// # Safety
    /// As for [`new`](Self::new).
    pub unsafe fn with_span(
        span_start: usize,
        span_size: usize,
        start: *mut u8,
        size: usize,
    ) -> Option<Self> {
        let (base, len) = whole_pages(span_start, span_size);
        let mut provider = RegionProvider {
            ranges: [const { Heap::empty() }; MAX_RANGES],
            count: 0,
            span: Span { base, len },
        };
        // SAFETY: the caller's contract.
        match unsafe { provider.add_memory(start, size) } {
            Ok(_) | Err(AddRegionError::Empty) => Some(provider),
            Err(_) => None,
        }
    }

    /// Bytes not handed out as runs.
    pub fn free_bytes(&self) -> usize {
        self.ranges[..self.count].iter().map(Heap::free).sum()
    }

    /// Separate ranges held.
    pub fn ranges(&self) -> usize {
        self.count
    }

    /// Adds the whole pages `[base, base + len)`, checked to lie in the
    /// span and apart from every range held: it extends the range it
    /// directly follows, else takes a slot of its own.
    ///
    /// # Safety
    /// The memory is valid, writable and used by nothing else for the
    /// provider's lifetime.
    unsafe fn take(&mut self, base: usize, len: usize) -> Result<usize, AddRegionError> {
        if len == 0 {
            return Err(AddRegionError::Empty);
        }
        let end = base + len;
        if !self.span.contains(base) || end > self.span.base + self.span.len {
            return Err(AddRegionError::OutsideSpan);
        }
        let held = &mut self.ranges[..self.count];
        if held
            .iter()
            .any(|r| base < r.top() as usize && (r.bottom() as usize) < end)
        {
            return Err(AddRegionError::Overlaps);
        }
        if let Some(before) = held.iter_mut().find(|r| r.top() as usize == base) {
            // SAFETY: the pages follow the range directly, and the caller
            // hands them over for the provider's life.
            unsafe { before.extend(len) };
            return Ok(len);
        }
        let Some(slot) = self.ranges.get_mut(self.count) else {
            return Err(AddRegionError::NoRoom);
        };
        // SAFETY: as above; the slot is unused (at `count`).
        unsafe { slot.init(base as *mut u8, len) };
        self.count += 1;
        Ok(len)
    }

    fn range_of(&mut self, addr: usize) -> Option<&mut Heap> {
        self.ranges[..self.count]
            .iter_mut()
            .find(|r| (r.bottom() as usize..r.top() as usize).contains(&addr))
    }
}

// SAFETY: runs come from the ranges' `Heap`s, which hand out disjoint
// pieces of disjoint ranges inside the span (all sizes and alignments are
// page multiples, so every run is whole pages).
unsafe impl PageProvider for RegionProvider {
    fn span(&self) -> Span {
        self.span
    }

    fn alloc_pages(&mut self, pages: usize, align: usize) -> Option<NonNull<u8>> {
        let layout =
            Layout::from_size_align(pages.checked_mul(PAGE_SIZE)?, align.max(PAGE_SIZE)).ok()?;
        self.ranges[..self.count]
            .iter_mut()
            .find_map(|r| r.allocate_first_fit(layout).ok())
    }

    unsafe fn free_pages(&mut self, ptr: NonNull<u8>, pages: usize) {
        // Adjacent runs freed at once may come from two ranges (one added
        // just before the other): each range takes back its own part.
        let (mut at, end) = (
            ptr.as_ptr() as usize,
            ptr.as_ptr() as usize + pages * PAGE_SIZE,
        );
        while at < end {
            let range = self
                .range_of(at)
                .expect("a run of this provider lies in its ranges");
            let len = (range.top() as usize).min(end) - at;
            // SAFETY: `[at, at + len)` is whole pages of live runs of this
            // range (the caller's contract), no longer used;
            // `Heap::deallocate` only uses the size.
            unsafe {
                range.deallocate(
                    NonNull::new_unchecked(at as *mut u8),
                    Layout::from_size_align_unchecked(len, PAGE_SIZE),
                )
            }
            at += len;
        }
    }

    unsafe fn add_memory(&mut self, start: *mut u8, size: usize) -> Result<usize, AddRegionError> {
        let (base, len) = whole_pages(start as usize, size);
        // SAFETY: forwarded caller contract.
        unsafe { self.take(base, len) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    #[repr(align(4096))]
    struct Region([u8; 64 * 1024]);

    #[test]
    fn hands_out_aligned_disjoint_runs_and_takes_them_back() {
        let mut region = std::boxed::Box::new(Region([0; 64 * 1024]));
        // SAFETY: the boxed region is used by this provider alone.
        let mut p = unsafe { RegionProvider::new(region.0.as_mut_ptr(), region.0.len()) };
        assert_eq!(p.span().len, 64 * 1024);
        let mut runs = Vec::new();
        while let Some(r) = p.alloc_pages(1, PAGE_SIZE) {
            assert!(p.span().contains(r.as_ptr() as usize));
            assert_eq!(r.as_ptr() as usize % PAGE_SIZE, 0);
            runs.push(r);
        }
        assert_eq!(runs.len(), 16);
        for r in runs {
            // SAFETY: each `r` is a live 1-page run of `p`, freed once.
            unsafe { p.free_pages(r, 1) };
        }
        assert_eq!(p.free_bytes(), 64 * 1024);
        let big = p
            .alloc_pages(4, 16 * 1024)
            .expect("aligned run after frees");
        assert_eq!(big.as_ptr() as usize % (16 * 1024), 0);
    }

    #[test]
    fn trims_an_unaligned_region_to_whole_pages() {
        let mut region = std::boxed::Box::new(Region([0; 64 * 1024]));
        // SAFETY: 100 bytes into the 64 KiB region.
        let start = unsafe { region.0.as_mut_ptr().add(100) };
        // SAFETY: `[start, start + 64 KiB - 100)` lies in the boxed region,
        // used by this provider alone.
        let p = unsafe { RegionProvider::new(start, 64 * 1024 - 100) };
        assert_eq!(p.span().base % PAGE_SIZE, 0);
        assert_eq!(p.span().len, 60 * 1024);
    }
}

//! A fixed memory region handed over by a kernel (`[start, start + size)`).
//!
//! Page runs are carved with `linked_list_allocator`: a first-fit free list
//! that keeps its bookkeeping inside the free memory itself, so the region
//! needs no side table. Run allocation is the allocator's cold path (new
//! slabs and large blocks), where a first-fit scan is cheap enough.

use core::alloc::Layout;
use core::ptr::NonNull;

use linked_list_allocator::Heap;

use super::{PAGE_SIZE, PageProvider, Span};

/// Page provider over a fixed region; it never decommits.
pub struct RegionProvider {
    runs: Heap,
    span: Span,
}

// SAFETY: the provider owns its region exclusively (constructor contract);
// moving it to another thread moves that ownership.
unsafe impl Send for RegionProvider {}

impl RegionProvider {
    /// Takes over `[start, start + size)`, trimmed inward to whole pages.
    ///
    /// # Safety
    /// The region is valid, writable memory used by nothing else for the
    /// provider's lifetime.
    pub unsafe fn new(start: *mut u8, size: usize) -> Self {
        let addr = start as usize;
        let base = addr.next_multiple_of(PAGE_SIZE);
        let end = (addr + size) & !(PAGE_SIZE - 1);
        let len = end.saturating_sub(base);
        let mut runs = Heap::empty();
        if len > 0 {
            // SAFETY: [base, base + len) lies inside the caller's region,
            // which the caller hands over to us exclusively.
            unsafe { runs.init(base as *mut u8, len) };
        }
        RegionProvider {
            runs,
            span: Span { base, len },
        }
    }

    /// Bytes not handed out as runs.
    pub fn free_bytes(&self) -> usize {
        self.runs.free()
    }
}

// SAFETY: runs come from `Heap`, which hands out disjoint pieces of the span
// (all sizes and alignments are page multiples, so every run is whole pages).
unsafe impl PageProvider for RegionProvider {
    fn span(&self) -> Span {
        self.span
    }

    fn alloc_pages(&mut self, pages: usize, align: usize) -> Option<NonNull<u8>> {
        let layout =
            Layout::from_size_align(pages.checked_mul(PAGE_SIZE)?, align.max(PAGE_SIZE)).ok()?;
        self.runs.allocate_first_fit(layout).ok()
    }

    unsafe fn free_pages(&mut self, ptr: NonNull<u8>, pages: usize) {
        // SAFETY: the caller passes a live run, allocated with this size and
        // page alignment; `Heap::deallocate` only uses the size.
        unsafe {
            self.runs.deallocate(
                ptr,
                Layout::from_size_align_unchecked(pages * PAGE_SIZE, PAGE_SIZE),
            )
        }
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

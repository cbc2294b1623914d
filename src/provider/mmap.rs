//! Hosted page provider: one `mmap` reservation, released with `madvise`.
//!
//! The provider reserves its whole span up front (`MAP_NORESERVE`: address
//! space only, physical pages arrive on first touch) so that the core's page
//! map covers every run. Runs are tracked in a page bitmap (first fit, which
//! keeps the heap compact, see [`PageRuns`]); freed and decommitted runs give their physical
//! memory back with `madvise`, and a run grows in place while the pages
//! after it are free, which is what `mremap` would buy us here.

use core::ptr::NonNull;

use super::runs::PageRuns;
use super::{DecommitMode, PAGE_SIZE, PageProvider, Span};

/// Page provider over an anonymous `mmap` reservation.
pub struct MmapProvider {
    span: Span,
    runs: PageRuns,
    mode: DecommitMode,
    calls: OsCalls,
}

/// The system calls an [`MmapProvider`] made on its memory (for
/// benchmarks: how often the allocator talks to the OS). It makes no
/// others: runs grow in place inside the reservation, so it never needs
/// `mremap`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OsCalls {
    /// `mmap`: the reservation and the page bitmap.
    pub mmap: u64,
    /// `munmap`: trimming the reservation to its alignment.
    pub munmap: u64,
    /// `madvise`: every decommit, free and shrink.
    pub madvise: u64,
}

// SAFETY: the provider owns its mappings; nothing in it is tied to a thread.
unsafe impl Send for MmapProvider {}

/// Maps `len` bytes of private anonymous memory, reserved lazily.
fn map_lazy(len: usize) -> Option<NonNull<u8>> {
    // SAFETY: an anonymous private mapping at an address of the kernel's
    // choosing aliases nothing.
    let p = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        None
    } else {
        NonNull::new(p.cast())
    }
}

/// Alignment of the span base: run alignment up to this is honoured.
const SPAN_ALIGN: usize = 1 << 30;

/// Maps `len` bytes starting at a multiple of [`SPAN_ALIGN`], counting
/// the calls in `calls`.
fn reserve_aligned(len: usize, calls: &mut OsCalls) -> Option<NonNull<u8>> {
    calls.mmap += 1;
    let raw = map_lazy(len.checked_add(SPAN_ALIGN)?)?.as_ptr() as usize;
    let base = raw.next_multiple_of(SPAN_ALIGN);
    let (head, tail) = (base - raw, SPAN_ALIGN - (base - raw));
    // SAFETY: both trimmed pieces lie in the mapping just made and outside
    // [base, base + len), which is all we keep.
    unsafe {
        if head > 0 {
            calls.munmap += 1;
            libc::munmap(raw as *mut libc::c_void, head);
        }
        if tail > 0 {
            calls.munmap += 1;
            libc::munmap((base + len) as *mut libc::c_void, tail);
        }
    }
    NonNull::new(base as *mut u8)
}

impl MmapProvider {
    /// Reserves `bytes` (rounded up to whole pages) of address space;
    /// `decommit` then releases pages with the advice `mode` names (the
    /// allocator's `Config::decommit`, so both agree). `None` if the OS
    /// refuses the reservation.
    pub fn new(bytes: usize, mode: DecommitMode) -> Option<Self> {
        let len = bytes.next_multiple_of(PAGE_SIZE);
        let pages = len / PAGE_SIZE;
        let words = PageRuns::words_for(pages);
        let mut calls = OsCalls::default();
        let base = reserve_aligned(len, &mut calls)?;
        calls.mmap += 1;
        let bits = map_lazy(words * size_of::<usize>())?;
        // SAFETY: the bitmap mapping is fresh, zeroed, `words` usizes long,
        // and owned by this provider until `drop` unmaps it.
        let bits = unsafe { core::slice::from_raw_parts_mut(bits.as_ptr().cast(), words) };
        Some(MmapProvider {
            span: Span {
                base: base.as_ptr() as usize,
                len,
            },
            runs: PageRuns::new(bits, pages),
            mode,
            calls,
        })
    }

    /// The system calls made so far (the reservation's included).
    pub fn os_calls(&self) -> OsCalls {
        self.calls
    }

    /// Gives the physical pages of `[page, page + pages)` back to the OS
    /// (`MADV_FREE` or `MADV_DONTNEED`); with `Off`, keeps them and fails.
    fn release(&mut self, page: usize, pages: usize, mode: DecommitMode) -> bool {
        let advice = match mode {
            DecommitMode::Free => libc::MADV_FREE,
            DecommitMode::DontNeed => libc::MADV_DONTNEED,
            DecommitMode::Off => return false,
        };
        let addr = self.span.base + page * PAGE_SIZE;
        self.calls.madvise += 1;
        // SAFETY: the range lies inside our own reservation; dropping its
        // contents is what the caller asked for.
        unsafe { libc::madvise(addr as *mut libc::c_void, pages * PAGE_SIZE, advice) == 0 }
    }

    fn page_of(&self, ptr: NonNull<u8>) -> usize {
        (ptr.as_ptr() as usize - self.span.base) / PAGE_SIZE
    }
}

// SAFETY: runs are disjoint because the bitmap marks every page of a live
// run and `find` only returns clear ranges; all lie inside the reservation.
unsafe impl PageProvider for MmapProvider {
    // Fresh pages are zero-fill-on-demand, and freed ones are dropped with
    // MADV_DONTNEED, after which they read as zero again.
    const ZEROED: bool = true;

    fn span(&self) -> Span {
        self.span
    }

    fn alloc_pages(&mut self, pages: usize, align: usize) -> Option<NonNull<u8>> {
        if align > SPAN_ALIGN {
            return None;
        }
        let at = self.runs.alloc(pages, align.max(PAGE_SIZE) / PAGE_SIZE)?;
        NonNull::new((self.span.base + at * PAGE_SIZE) as *mut u8)
    }

    unsafe fn free_pages(&mut self, ptr: NonNull<u8>, pages: usize) {
        let page = self.page_of(ptr);
        self.release(page, pages, DecommitMode::DontNeed);
        self.runs.free(page, pages);
    }

    unsafe fn decommit(&mut self, ptr: NonNull<u8>, pages: usize) -> bool {
        self.release(self.page_of(ptr), pages, self.mode)
    }

    unsafe fn resize_in_place(
        &mut self,
        ptr: NonNull<u8>,
        old_pages: usize,
        new_pages: usize,
    ) -> bool {
        let page = self.page_of(ptr);
        if new_pages <= old_pages {
            let tail = page + new_pages;
            self.release(tail, old_pages - new_pages, DecommitMode::DontNeed);
            self.runs.free(tail, old_pages - new_pages);
            return true;
        }
        self.runs.grow(page + old_pages, new_pages - old_pages)
    }
}

impl Drop for MmapProvider {
    fn drop(&mut self) {
        let (bits, words) = self.runs.storage();
        // SAFETY: both mappings were made by `new` with these lengths, and
        // the allocator that owned the provider has no live blocks left.
        unsafe {
            libc::munmap(self.span.base as *mut libc::c_void, self.span.len);
            libc::munmap(bits.cast(), words * size_of::<usize>());
        }
    }
}

//! Page provider for kernels with paging: frames from any
//! `FrameAllocator<Size4KiB>`, mapped on demand into a virtual heap range
//! through any `Mapper<Size4KiB>` (the `x86_64` crate's paging traits, as
//! used by kernels written after "Writing an OS in Rust").
//!
//! Pages are mapped when a run first needs them and stay mapped when the run
//! is freed, so reusing a run costs no page-table work and needs no TLB
//! shootdown. `decommit` is what gives frames back: it unmaps the pages,
//! returns the frames to the frame allocator and calls the kernel's flush
//! function, which must invalidate the range on every CPU (Intel SDM Vol. 3A
//! §4.10.5, "Propagation of Paging-Structure Changes to Multiple Processors").
//! Mapping a page that was not present needs no flush (§4.10.4.3).

use core::ptr::NonNull;

use bitvec::slice::BitSlice;
use x86_64::VirtAddr;
use x86_64::structures::paging::{
    FrameAllocator, FrameDeallocator, Mapper, Page, PageTableFlags, Size4KiB,
};

use crate::provider::{PAGE_SIZE, PageProvider, PageRuns, Span};

/// Invalidates the TLB entries of `pages` pages from `start` on every CPU.
pub type TlbFlush = fn(start: VirtAddr, pages: usize);

/// Invalidates the range on the current CPU only (`invlpg`): enough for a
/// kernel that runs on one CPU.
pub fn flush_local(start: VirtAddr, pages: usize) {
    for i in 0..pages as u64 {
        x86_64::instructions::tlb::flush(start + i * PAGE_SIZE as u64);
    }
}

/// Bitmap words a [`FrameProvider`] needs for a heap range of `len` bytes
/// (`const`, to size a `static`).
pub const fn bitmap_words(len: usize) -> usize {
    2 * (len / PAGE_SIZE).div_ceil(usize::BITS as usize)
}

/// Heap pages from a frame allocator, mapped into a virtual range.
pub struct FrameProvider<M, F> {
    mapper: M,
    frames: F,
    span: Span,
    runs: PageRuns,
    /// One bit per page of the span, set while a frame backs the page.
    backed: &'static mut BitSlice<usize>,
    flush: TlbFlush,
}

// SAFETY: the provider owns its virtual range and the frames mapped into it;
// the mapper and frame allocator move with it.
unsafe impl<M: Send, F: Send> Send for FrameProvider<M, F> {}

impl<M: Mapper<Size4KiB>, F: FrameAllocator<Size4KiB> + FrameDeallocator<Size4KiB>>
    FrameProvider<M, F>
{
    /// A provider for the virtual range `[start, start + len)` (page
    /// aligned), with `bitmap` ([`bitmap_words`]
    /// zeroed words) for its bookkeeping and `flush` to invalidate unmapped
    /// pages on every CPU.
    ///
    /// # Safety
    /// The range is canonical, unmapped, and used by nothing else; `mapper`
    /// edits the page tables the kernel runs on; `frames` hands out unused
    /// frames.
    pub unsafe fn new(
        mapper: M,
        frames: F,
        start: VirtAddr,
        len: usize,
        bitmap: &'static mut [usize],
        flush: TlbFlush,
    ) -> Self {
        assert!(start.is_aligned(PAGE_SIZE as u64) && len.is_multiple_of(PAGE_SIZE));
        let pages = len / PAGE_SIZE;
        let (runs, backed) = bitmap.split_at_mut(bitmap.len() / 2);
        FrameProvider {
            mapper,
            frames,
            span: Span {
                base: start.as_u64() as usize,
                len,
            },
            runs: PageRuns::new(runs, pages),
            backed: &mut BitSlice::from_slice_mut(backed)[..pages],
            flush,
        }
    }

    /// The frame allocator (for its statistics).
    pub fn frames(&self) -> &F {
        &self.frames
    }

    /// Pages backed by frames right now.
    pub fn backed_pages(&self) -> usize {
        self.backed.count_ones()
    }

    fn page(&self, index: usize) -> Page<Size4KiB> {
        Page::containing_address(VirtAddr::new((self.span.base + index * PAGE_SIZE) as u64))
    }

    fn index_of(&self, ptr: NonNull<u8>) -> usize {
        (ptr.as_ptr() as usize - self.span.base) / PAGE_SIZE
    }

    /// Backs every page of `[first, first + pages)` with a frame. On
    /// failure, the pages backed so far stay backed, as the pages of any
    /// freed run do: unmapping them here would need a shootdown on every
    /// CPU, and a later run reuses them anyway.
    fn back(&mut self, first: usize, pages: usize) -> bool {
        (first..first + pages).all(|index| self.backed[index] || self.map_one(index))
    }

    fn map_one(&mut self, index: usize) -> bool {
        let Some(frame) = self.frames.allocate_frame() else {
            return false;
        };
        let flags = PageTableFlags::PRESENT | PageTableFlags::WRITABLE;
        let page = self.page(index);
        // SAFETY: the page lies in our unused heap range and the frame is
        // fresh from the frame allocator, so the mapping aliases nothing.
        match unsafe { self.mapper.map_to(page, frame, flags, &mut self.frames) } {
            Ok(new_mapping) => {
                // A not-present entry is never cached: no flush needed.
                new_mapping.ignore();
                self.backed.set(index, true);
                true
            }
            Err(_) => {
                // SAFETY: the frame was never mapped, so it is unused.
                unsafe { self.frames.deallocate_frame(frame) };
                false
            }
        }
    }

    /// Unmaps the backed pages of `[first, first + pages)` and returns their
    /// frames, then flushes the range on every CPU.
    fn unback(&mut self, first: usize, pages: usize) {
        for index in first..first + pages {
            if !self.backed[index] {
                continue;
            }
            if let Ok((frame, unmapped)) = self.mapper.unmap(self.page(index)) {
                // The kernel's flush below covers every CPU, this one included.
                unmapped.ignore();
                // SAFETY: the frame is no longer mapped by the heap; once the
                // flush below is done no CPU can reach it through us.
                unsafe { self.frames.deallocate_frame(frame) };
            }
            self.backed.set(index, false);
        }
        (self.flush)(self.page(first).start_address(), pages);
    }
}

// SAFETY: runs come from `PageRuns`, so they are disjoint and inside the
// span, and `alloc_pages` backs every page of a run before returning it.
unsafe impl<M, F> PageProvider for FrameProvider<M, F>
where
    M: Mapper<Size4KiB>,
    F: FrameAllocator<Size4KiB> + FrameDeallocator<Size4KiB>,
{
    fn span(&self) -> Span {
        self.span
    }

    fn alloc_pages(&mut self, pages: usize, align: usize) -> Option<NonNull<u8>> {
        let base_align = 1 << self.span.base.trailing_zeros();
        if align > base_align {
            return None;
        }
        let first = self.runs.alloc(pages, align.max(PAGE_SIZE) / PAGE_SIZE)?;
        if !self.back(first, pages) {
            self.runs.free(first, pages);
            return None;
        }
        NonNull::new((self.span.base + first * PAGE_SIZE) as *mut u8)
    }

    unsafe fn free_pages(&mut self, ptr: NonNull<u8>, pages: usize) {
        // The frames stay mapped for the next run (module doc).
        self.runs.free(self.index_of(ptr), pages);
    }

    unsafe fn decommit(&mut self, ptr: NonNull<u8>, pages: usize) -> bool {
        self.unback(self.index_of(ptr), pages);
        true
    }

    unsafe fn recommit(&mut self, ptr: NonNull<u8>, pages: usize) -> bool {
        self.back(self.index_of(ptr), pages)
    }

    unsafe fn resize_in_place(
        &mut self,
        ptr: NonNull<u8>,
        old_pages: usize,
        new_pages: usize,
    ) -> bool {
        let first = self.index_of(ptr);
        if new_pages <= old_pages {
            self.runs.free(first + new_pages, old_pages - new_pages);
            return true;
        }
        let extra = new_pages - old_pages;
        if !self.runs.grow(first + old_pages, extra) {
            return false;
        }
        if !self.back(first + old_pages, extra) {
            self.runs.free(first + old_pages, extra);
            return false;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    use std::vec::Vec;
    use x86_64::PhysAddr;
    use x86_64::structures::paging::{OffsetPageTable, PageTable, PhysFrame, Translate};

    /// Physical memory simulated by a heap buffer: physical address `p`
    /// lives at virtual `base + p`, as with a kernel's physical-memory offset.
    struct FakeFrames {
        next: u64,
        end: u64,
        free: Vec<PhysFrame>,
        in_use: usize,
    }

    // SAFETY: every frame handed out is inside the buffer and handed out once.
    unsafe impl FrameAllocator<Size4KiB> for FakeFrames {
        fn allocate_frame(&mut self) -> Option<PhysFrame> {
            let frame = self.free.pop().or_else(|| {
                (self.next < self.end).then(|| {
                    self.next += 4096;
                    PhysFrame::containing_address(PhysAddr::new(self.next - 4096))
                })
            })?;
            self.in_use += 1;
            Some(frame)
        }
    }

    impl FrameDeallocator<Size4KiB> for FakeFrames {
        unsafe fn deallocate_frame(&mut self, frame: PhysFrame) {
            self.in_use -= 1;
            self.free.push(frame);
        }
    }

    static FLUSHED_PAGES: AtomicUsize = AtomicUsize::new(0);

    fn count_flush(_: VirtAddr, pages: usize) {
        FLUSHED_PAGES.fetch_add(pages, Relaxed);
    }

    const HEAP: u64 = 0x4444_4444_0000;

    type Provider = FrameProvider<OffsetPageTable<'static>, FakeFrames>;

    /// A provider over 64 heap pages with fake physical memory, which it
    /// frees when dropped (the provider wants `'static` memory).
    struct Fake {
        provider: core::mem::ManuallyDrop<Provider>,
        memory: *mut [PageTable],
        bitmap: *mut [usize],
    }

    impl core::ops::Deref for Fake {
        type Target = Provider;
        fn deref(&self) -> &Provider {
            &self.provider
        }
    }

    impl core::ops::DerefMut for Fake {
        fn deref_mut(&mut self) -> &mut Provider {
            &mut self.provider
        }
    }

    impl Drop for Fake {
        fn drop(&mut self) {
            // SAFETY: the provider goes first, then the boxes it borrowed,
            // each made by `provider` and freed once.
            unsafe {
                core::mem::ManuallyDrop::drop(&mut self.provider);
                drop(std::boxed::Box::from_raw(self.memory));
                drop(std::boxed::Box::from_raw(self.bitmap));
            }
        }
    }

    /// A provider with `frames` frames of fake memory.
    fn provider(frames: u64) -> Fake {
        let memory: std::boxed::Box<[PageTable]> = (0..=frames).map(|_| PageTable::new()).collect();
        let memory = std::boxed::Box::into_raw(memory);
        // The mapper reaches tables by address (`base + p` cast to a pointer),
        // so the whole buffer's provenance is exposed for it to pick up.
        let base = memory.cast::<PageTable>().expose_provenance() as u64;
        // SAFETY: the buffer holds `frames + 1` empty page tables and lives
        // as long as the provider; frame 0 is the level-4 table, the rest
        // are handed out as frames.
        let level_4 = unsafe { &mut *memory.cast::<PageTable>() };
        // SAFETY: physical address p is at virtual base + p for the whole buffer.
        let mapper = unsafe { OffsetPageTable::new(level_4, VirtAddr::new(base)) };
        let fake = FakeFrames {
            next: 4096,
            end: 4096 * (frames + 1),
            free: Vec::new(),
            in_use: 0,
        };
        let len = 64 * PAGE_SIZE;
        let bitmap = std::boxed::Box::into_raw(std::vec![0; bitmap_words(len)].into_boxed_slice());
        // SAFETY: the heap range is unused in the fake page tables; the
        // bitmap lives as long as the provider.
        let provider = unsafe {
            FrameProvider::new(
                mapper,
                fake,
                VirtAddr::new(HEAP),
                len,
                &mut *bitmap,
                count_flush,
            )
        };
        Fake {
            provider: core::mem::ManuallyDrop::new(provider),
            memory,
            bitmap,
        }
    }

    fn mapped(p: &Provider, addr: usize) -> bool {
        p.mapper
            .translate_addr(VirtAddr::new(addr as u64))
            .is_some()
    }

    #[test]
    fn maps_on_demand_keeps_frames_on_free_and_returns_them_on_decommit() {
        let mut p = provider(64);
        let run = p.alloc_pages(3, PAGE_SIZE).unwrap();
        let addr = run.as_ptr() as usize;
        assert_eq!(addr, HEAP as usize);
        assert!((0..3).all(|i| mapped(&p, addr + i * PAGE_SIZE)));
        assert!(!mapped(&p, addr + 3 * PAGE_SIZE));
        let tables = p.frames().in_use - 3;

        // SAFETY: `run` is a live 3-page run of `p`, never touched.
        unsafe { p.free_pages(run, 3) };
        assert_eq!(p.backed_pages(), 3, "freed runs keep their frames");
        let again = p.alloc_pages(2, PAGE_SIZE).unwrap();
        assert_eq!(p.frames().in_use, tables + 3, "reuse maps nothing new");

        let flushed = FLUSHED_PAGES.load(Relaxed);
        // SAFETY: `again` is a live 2-page run holding nothing.
        assert!(unsafe { p.decommit(again, 2) });
        assert_eq!(p.frames().in_use, tables + 1);
        assert!(!mapped(&p, addr));
        assert!(FLUSHED_PAGES.load(Relaxed) >= flushed + 2);
        // SAFETY: `again` is still a live run of `p`.
        assert!(unsafe { p.recommit(again, 2) });
        assert!(mapped(&p, addr) && mapped(&p, addr + PAGE_SIZE));
    }

    #[test]
    fn grows_in_place_and_fails_cleanly_when_frames_run_out() {
        let mut p = provider(12);
        let run = p.alloc_pages(2, PAGE_SIZE).unwrap();
        // SAFETY: `run` is a live 2-page run of `p`.
        assert!(unsafe { p.resize_in_place(run, 2, 5) });
        assert!(mapped(&p, run.as_ptr() as usize + 4 * PAGE_SIZE));
        let aligned = p.alloc_pages(1, 16 * PAGE_SIZE).unwrap();
        assert_eq!(aligned.as_ptr() as usize % (16 * PAGE_SIZE), 0);
        // SAFETY: `aligned` is a live 1-page run of `p`, never touched.
        unsafe { p.free_pages(aligned, 1) };

        assert!(
            p.alloc_pages(20, PAGE_SIZE).is_none(),
            "only 12 frames in all"
        );
        assert!(
            (0..5).all(|i| mapped(&p, run.as_ptr() as usize + i * PAGE_SIZE)),
            "a failed run unmaps nothing"
        );
        // The failed run's pages stay backed in a free run and serve the next one.
        let (backed, in_use) = (p.backed_pages(), p.frames().in_use);
        assert!(backed > 6, "the failed run backed pages before running dry");
        let reuse = p.alloc_pages(backed - 6, PAGE_SIZE).unwrap();
        assert!(mapped(&p, reuse.as_ptr() as usize));
        assert_eq!(p.frames().in_use, in_use, "backed pages need no new frames");
    }
}

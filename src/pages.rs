//! The page layer: the provider, the page heap, slab descriptors, and the
//! accounting of committed memory. Everything here runs under the
//! allocator's page lock, on cold paths only (new and released slabs,
//! large blocks, purges).
//!
//! Runs freed by the allocator go to the [`PageHeap`] as dirty runs,
//! stamped with the time. They are reused first, and decommitted (purged)
//! only once they have stayed unused for the purge delay, oldest first, in
//! bounded steps: on the slow paths that reach this layer anyway, and from
//! [`purge`](Pages::purge) (the allocator's `maintain`). The provider is
//! asked for fresh pages only when no free run fits, and gets runs back
//! only when memory ran out ([`release_free`](Pages::release_free)). Only
//! free runs are ever decommitted, so no page holding a live block is; and
//! a decommitted run is recommitted before it is handed out again.

use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

use crate::PAGE_SIZE;
use crate::config::DecommitMode;
use crate::page_heap::{PageEntry, PageHeap, RunState};
use crate::provider::PageProvider;
use crate::slab::Slab;

/// Counters the page layer keeps; readable without its lock.
#[derive(Default)]
pub(crate) struct PageCounters {
    pub committed: AtomicUsize,
    /// Metadata bytes not counted in `committed` (page map, page heap
    /// table): address space whose pages are backed only where used.
    pub lazy_page_map: AtomicUsize,
    /// Committed bytes in dirty free runs kept for reuse.
    pub retained: AtomicUsize,
    /// Bytes of free runs kept decommitted (not in `committed`).
    pub decommitted: AtomicUsize,
    /// Bytes of slab-descriptor pool pages (never returned).
    pub descriptors: AtomicUsize,
    pub alloc_calls: AtomicU64,
    pub free_calls: AtomicU64,
    pub resize_calls: AtomicU64,
    pub failed_calls: AtomicU64,
    pub decommit_calls: AtomicU64,
    pub recommit_calls: AtomicU64,
    /// Bytes decommitted since `init`.
    pub decommitted_total: AtomicU64,
    /// Empty slabs given back to the page layer.
    pub slabs_retired: AtomicU64,
    /// Large blocks allocated and freed (small ones are counted per CPU).
    pub large_allocs: AtomicU64,
    pub large_frees: AtomicU64,
    /// How long a dirty run stays unused before it is purged, in
    /// `Platform::now` units (the allocator's purge-delay knob).
    pub purge_delay: AtomicU64,
    /// The stamp of the oldest dirty run (meaningful while `retained` is
    /// not 0): lets `maintain` see that nothing is due without the lock.
    pub oldest_dirty: AtomicU64,
}

impl PageCounters {
    pub const fn new() -> Self {
        PageCounters {
            committed: AtomicUsize::new(0),
            lazy_page_map: AtomicUsize::new(0),
            retained: AtomicUsize::new(0),
            decommitted: AtomicUsize::new(0),
            descriptors: AtomicUsize::new(0),
            alloc_calls: AtomicU64::new(0),
            free_calls: AtomicU64::new(0),
            resize_calls: AtomicU64::new(0),
            failed_calls: AtomicU64::new(0),
            decommit_calls: AtomicU64::new(0),
            recommit_calls: AtomicU64::new(0),
            decommitted_total: AtomicU64::new(0),
            slabs_retired: AtomicU64::new(0),
            large_allocs: AtomicU64::new(0),
            large_frees: AtomicU64::new(0),
            purge_delay: AtomicU64::new(0),
            oldest_dirty: AtomicU64::new(0),
        }
    }
}

/// Most pages one purge step decommits: a long run is purged in steps of
/// this (16 MiB), so that one step's time stays bounded (a `madvise`, or
/// unmapping with a TLB shootdown) while one call still covers a long run.
const PURGE_STEP_PAGES: usize = 4096;

/// Purge steps a slow path of this layer takes on its way (hosted programs
/// that never call `maintain` still return memory this way).
const OPPORTUNISTIC_STEPS: usize = 2;

/// A spare descriptor slot, linked through its first word.
struct Spare {
    next: *mut Spare,
}

/// The provider, the page heap of free runs, and a pool of slab
/// descriptors carved from provider pages.
pub(crate) struct Pages<P> {
    provider: P,
    heap: PageHeap,
    spare: *mut Spare,
    /// Whether free runs are purged: the mode is not `Off` and the
    /// provider has not refused.
    decommit: bool,
    /// Runs freed at or before this stamp count as idle for
    /// [`purge_idle`](Self::purge_idle) (`None`: before its first call,
    /// nothing does).
    idle_before: Option<u64>,
}

// SAFETY: the pool and the heap's table only point into provider memory
// owned by this value.
unsafe impl<P: Send> Send for Pages<P> {}

impl<P: PageProvider> Pages<P> {
    /// Pages over `provider`, purging free runs unless `mode` is off, and
    /// `front` bytes of zeroed metadata for the caller (the page map). Both
    /// and the page heap's side table share one run from the provider (a
    /// small region loses one page to them, not two); `None` if the
    /// provider cannot supply it.
    pub fn new(
        mut provider: P,
        mode: DecommitMode,
        front: usize,
        counters: &PageCounters,
    ) -> Option<(Self, NonNull<u8>)> {
        let span = provider.span();
        let table_at = front.next_multiple_of(align_of::<PageEntry>());
        let bytes = table_at + PageHeap::table_bytes(span.pages());
        let pages = bytes.div_ceil(PAGE_SIZE);
        counters.alloc_calls.fetch_add(1, Relaxed);
        let run = provider.alloc_pages(pages, PAGE_SIZE)?;
        if P::ZEROED {
            // Untouched metadata pages stay unbacked: not counted committed.
            counters.lazy_page_map.fetch_add(pages * PAGE_SIZE, Relaxed);
        } else {
            // SAFETY: the run was just allocated for metadata and is ours.
            unsafe { ptr::write_bytes(run.as_ptr(), 0, pages * PAGE_SIZE) };
            counters.committed.fetch_add(pages * PAGE_SIZE, Relaxed);
        }
        // SAFETY: the table lies inside the zeroed run (`bytes` long), at an
        // offset aligned for `PageEntry` in a page-aligned run, ours for good;
        // `PageHeap::new` checks the span's page count.
        let heap = unsafe {
            PageHeap::new(
                run.as_ptr().add(table_at).cast::<PageEntry>(),
                span.pages(),
                span.base / PAGE_SIZE,
            )
        };
        let pages = Pages {
            provider,
            heap,
            spare: ptr::null_mut(),
            decommit: mode != DecommitMode::Off,
            idle_before: None,
        };
        Some((pages, run))
    }

    pub fn provider(&self) -> &P {
        &self.provider
    }

    /// Gives the provider more memory ([`PageProvider::add_memory`]).
    ///
    /// # Safety
    /// As for [`PageProvider::add_memory`].
    pub unsafe fn add_memory(
        &mut self,
        start: *mut u8,
        size: usize,
    ) -> Result<usize, crate::provider::AddRegionError> {
        // SAFETY: forwarded caller contract.
        unsafe { self.provider.add_memory(start, size) }
    }

    fn page_of(&self, ptr: NonNull<u8>) -> usize {
        (ptr.as_ptr() as usize - self.provider.span().base) / PAGE_SIZE
    }

    fn addr_of(&self, page: usize) -> NonNull<u8> {
        let addr = self.provider.span().base + page * PAGE_SIZE;
        // SAFETY: span addresses are non-null (a span never starts at 0
        // with pages in it: page 0 of the address space is never mapped).
        unsafe { NonNull::new_unchecked(addr as *mut u8) }
    }

    /// Publishes the heap's page counts (and its oldest dirty stamp) to
    /// the counters.
    fn count_heap(&self, counters: &PageCounters) {
        if let Some((_, _, stamp)) = self.heap.oldest_dirty() {
            counters.oldest_dirty.store(stamp, Relaxed);
        }
        counters
            .retained
            .store(self.heap.pages_in(RunState::Dirty) * PAGE_SIZE, Relaxed);
        counters.decommitted.store(
            self.heap.pages_in(RunState::Decommitted) * PAGE_SIZE,
            Relaxed,
        );
    }

    /// Allocates a run: a free one from the heap if one fits (recommitting
    /// it if it was purged), else fresh pages from the provider.
    pub fn alloc(
        &mut self,
        pages: usize,
        align: usize,
        counters: &PageCounters,
    ) -> Option<NonNull<u8>> {
        self.alloc_zero_known(pages, align, counters)
            .map(|(run, _)| run)
    }

    /// [`alloc`](Self::alloc), and whether the run reads as zero: never
    /// used (fresh from the provider, or clean) from a provider whose fresh
    /// runs are zero ([`PageProvider::ZEROED`]). `calloc` need not clear
    /// it then, which leaves its pages untouched.
    pub fn alloc_zero_known(
        &mut self,
        pages: usize,
        align: usize,
        counters: &PageCounters,
    ) -> Option<(NonNull<u8>, bool)> {
        let align_pages = align.max(PAGE_SIZE) / PAGE_SIZE;
        if let Some((page, state)) = self.heap.take(pages, align_pages) {
            let run = self.addr_of(page);
            if self.make_usable(run, pages, state, counters) {
                self.count_heap(counters);
                return Some((run, P::ZEROED && state == RunState::Clean));
            }
            self.heap.insert(page, pages, state, 0);
        }
        counters.alloc_calls.fetch_add(1, Relaxed);
        let run = self.provider.alloc_pages(pages, align);
        match run {
            Some(_) => counters.committed.fetch_add(pages * PAGE_SIZE, Relaxed),
            None => counters.failed_calls.fetch_add(1, Relaxed) as usize,
        };
        run.map(|run| (run, P::ZEROED))
    }

    /// Makes pages just taken from the heap in `state` usable: recommits
    /// decommitted ones, and counts them as committed unless they were dirty.
    fn make_usable(
        &mut self,
        run: NonNull<u8>,
        pages: usize,
        state: RunState,
        counters: &PageCounters,
    ) -> bool {
        match state {
            RunState::Dirty => true,
            RunState::Clean => {
                counters.committed.fetch_add(pages * PAGE_SIZE, Relaxed);
                true
            }
            RunState::Decommitted => {
                counters.recommit_calls.fetch_add(1, Relaxed);
                // SAFETY: the pages are a free run of this provider, ours.
                let done = unsafe { self.provider.recommit(run, pages) };
                if done {
                    counters.committed.fetch_add(pages * PAGE_SIZE, Relaxed);
                } else {
                    counters.failed_calls.fetch_add(1, Relaxed);
                }
                done
            }
        }
    }

    /// Frees a run: it joins the heap as a dirty run stamped `now`, and the
    /// oldest dirty runs that are due are purged on the way.
    ///
    /// # Safety
    /// The run came from [`alloc`](Self::alloc) and is no longer used.
    pub unsafe fn free(
        &mut self,
        start: NonNull<u8>,
        pages: usize,
        now: u64,
        counters: &PageCounters,
    ) {
        let page = self.page_of(start);
        self.heap.insert(page, pages, RunState::Dirty, now);
        // The purge publishes the heap's counts, this run included.
        self.purge(now, OPPORTUNISTIC_STEPS, || true, counters);
    }

    /// Decommits dirty runs that stayed unused for the purge delay, oldest
    /// first, at most `steps` steps of at most [`PURGE_STEP_PAGES`] pages,
    /// while `in_time` says there is time left (checked before each step).
    /// Returns the pages decommitted.
    pub fn purge(
        &mut self,
        now: u64,
        steps: usize,
        in_time: impl Fn() -> bool,
        counters: &PageCounters,
    ) -> usize {
        let delay = counters.purge_delay.load(Relaxed);
        let due = |stamp: u64| now.wrapping_sub(stamp) >= delay;
        let done = self.purge_steps_of(PURGE_STEP_PAGES, steps, &in_time, counters, due);
        self.count_heap(counters);
        done
    }

    /// Decommits every dirty run, whatever its age, oldest first, while
    /// `in_time`; returns the pages decommitted. For a quiet allocator
    /// (`maintain`), whose free runs nobody is about to reuse.
    pub fn purge_all(&mut self, in_time: impl Fn() -> bool, counters: &PageCounters) -> usize {
        let done = self.purge_steps_of(PURGE_STEP_PAGES, usize::MAX, &in_time, counters, |_| true);
        self.count_heap(counters);
        done
    }

    /// Decommits up to `max_pages` pages of dirty runs freed at or before
    /// the previous call (whatever the delay), oldest first, while `in_time`;
    /// returns how many. For a controller that saw memory idle for a whole
    /// interval (ACE's scavenge).
    pub fn purge_idle(
        &mut self,
        max_pages: usize,
        now: u64,
        in_time: impl Fn() -> bool,
        counters: &PageCounters,
    ) -> usize {
        let mut done = 0;
        while let Some(before) = self.idle_before
            && done < max_pages
        {
            let step = (max_pages - done).min(PURGE_STEP_PAGES);
            let pages = self.purge_steps_of(step, 1, &in_time, counters, |stamp| stamp <= before);
            if pages == 0 {
                break;
            }
            done += pages;
        }
        self.idle_before = Some(now);
        self.count_heap(counters);
        done
    }

    /// Up to `steps` purge steps of up to `step_pages` pages each, while
    /// the oldest dirty run is `due` and `in_time` holds.
    fn purge_steps_of(
        &mut self,
        step_pages: usize,
        steps: usize,
        in_time: &impl Fn() -> bool,
        counters: &PageCounters,
        due: impl Fn(u64) -> bool,
    ) -> usize {
        let mut done = 0;
        for _ in 0..steps {
            if !self.decommit {
                break;
            }
            let stamp = match self.heap.oldest_dirty() {
                Some((_, _, stamp)) if due(stamp) && in_time() => stamp,
                _ => break,
            };
            let (page, pages) = self
                .heap
                .take_oldest_dirty(step_pages)
                .expect("the oldest dirty run is there");
            let run = self.addr_of(page);
            // SAFETY: the run was a free run of the heap: unused, of this provider.
            if unsafe { self.provider.decommit(run, pages) } {
                let bytes = pages * PAGE_SIZE;
                counters.decommit_calls.fetch_add(1, Relaxed);
                counters.decommitted_total.fetch_add(bytes as u64, Relaxed);
                counters.committed.fetch_sub(bytes, Relaxed);
                self.heap.insert(page, pages, RunState::Decommitted, 0);
                done += pages;
            } else {
                // A provider that cannot decommit (a fixed region) will not
                // later: its free runs stay dirty, ready for reuse.
                self.decommit = false;
                self.heap.insert(page, pages, RunState::Dirty, stamp);
            }
        }
        done
    }

    /// Decommits every dirty run, whatever its age, then gives every free
    /// run back to the provider (for a trim, or when memory ran out: the
    /// provider can then join them with its own free space). Decommitting
    /// first is what returns a frame provider's frames, whose `free_pages`
    /// keeps them mapped.
    pub fn release_free(&mut self, counters: &PageCounters) {
        self.purge_steps_of(PURGE_STEP_PAGES, usize::MAX, &|| true, counters, |_| true);
        while let Some((page, pages, state)) = self.heap.pop() {
            counters.free_calls.fetch_add(1, Relaxed);
            if state == RunState::Dirty {
                counters.committed.fetch_sub(pages * PAGE_SIZE, Relaxed);
            }
            let run = self.addr_of(page);
            // SAFETY: free runs of the heap are unused runs of this provider.
            unsafe { self.provider.free_pages(run, pages) }
        }
        self.count_heap(counters);
    }

    /// Resizes a live run in place: shrinking frees the tail into the heap;
    /// growing takes the free run that starts where it ends, or asks the
    /// provider.
    ///
    /// # Safety
    /// The run is live and came from [`alloc`](Self::alloc).
    pub unsafe fn resize(
        &mut self,
        run: NonNull<u8>,
        old: usize,
        new: usize,
        now: u64,
        counters: &PageCounters,
    ) -> bool {
        if new < old {
            // SAFETY: the tail is whole pages of the live run, no longer used.
            unsafe {
                let tail = NonNull::new_unchecked(run.as_ptr().add(new * PAGE_SIZE));
                self.free(tail, old - new, now, counters);
            }
            return true;
        }
        let end = self.page_of(run) + old;
        if let Some(state) = self.heap.take_at(end, new - old) {
            if self.make_usable(self.addr_of(end), new - old, state, counters) {
                self.count_heap(counters);
                return true;
            }
            self.heap.insert(end, new - old, state, 0);
            return false;
        }
        counters.resize_calls.fetch_add(1, Relaxed);
        // SAFETY: forwarded caller contract.
        let done = unsafe { self.provider.resize_in_place(run, old, new) };
        if done {
            counters
                .committed
                .fetch_add((new - old) * PAGE_SIZE, Relaxed);
        }
        done
    }

    /// Refills the descriptor pool with one page of slots.
    pub fn grow_descriptors(&mut self, counters: &PageCounters) -> bool {
        let Some(page) = self.alloc(1, PAGE_SIZE, counters) else {
            return false;
        };
        counters.descriptors.fetch_add(PAGE_SIZE, Relaxed);
        for i in 0..PAGE_SIZE / size_of::<Slab>() {
            let slot = page
                .as_ptr()
                .wrapping_add(i * size_of::<Slab>())
                .cast::<Spare>();
            // SAFETY: the slot lies in the fresh page, which the pool owns.
            unsafe { slot.write(Spare { next: self.spare }) };
            self.spare = slot;
        }
        true
    }

    /// Stores `slab` in a descriptor slot.
    pub fn new_descriptor(&mut self, slab: Slab, counters: &PageCounters) -> Option<NonNull<Slab>> {
        if self.spare.is_null() && !self.grow_descriptors(counters) {
            return None;
        }
        let slot = self.spare;
        // SAFETY: a spare slot is a free, 128-aligned, Slab-sized piece of a
        // pool page; once unlinked nothing else refers to it.
        unsafe {
            self.spare = (*slot).next;
            let slab_slot = slot.cast::<Slab>();
            slab_slot.write(slab);
            NonNull::new(slab_slot)
        }
    }

    /// Returns a descriptor slot to the pool.
    ///
    /// # Safety
    /// `slab` came from [`new_descriptor`](Self::new_descriptor) and is no
    /// longer referenced (its pages are unmapped from the page map).
    pub unsafe fn free_descriptor(&mut self, slab: NonNull<Slab>) {
        let slot = slab.as_ptr().cast::<Spare>();
        // SAFETY: per the contract the slot is ours again.
        unsafe { slot.write(Spare { next: self.spare }) };
        self.spare = slot;
    }
}

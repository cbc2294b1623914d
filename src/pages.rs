//! The page layer: the provider, slab descriptors, and the accounting of
//! committed memory. Everything here runs under the allocator's page lock,
//! on cold paths only (new and released slabs, large blocks, scavenging).
//!
//! Freed runs go to the retained pool ([`RetainedRuns`]). Within the
//! profile's budget they stay committed; beyond it the least recently
//! freed are decommitted there (unless the decommit mode is off or the
//! provider cannot, when they go back to the provider instead). Only freed
//! runs are ever decommitted, so no page holding a live block is; and a
//! decommitted run is recommitted before it is handed out again.

use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

use crate::PAGE_SIZE;
use crate::config::DecommitMode;
use crate::provider::PageProvider;
use crate::retained::{RetainedRuns, Run};
use crate::slab::Slab;

/// Counters the page layer keeps; readable without its lock.
#[derive(Default)]
pub(crate) struct PageCounters {
    pub committed: AtomicUsize,
    /// Page map bytes not counted in `committed`: address space whose
    /// pages are backed only where entries are used.
    pub lazy_page_map: AtomicUsize,
    /// Committed bytes in freed runs kept for reuse.
    pub retained: AtomicUsize,
    /// Bytes of freed runs kept decommitted (not in `committed`).
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
        }
    }
}

/// A spare descriptor slot, linked through its first word.
struct Spare {
    next: *mut Spare,
}

/// The provider, the freed runs kept for reuse, and a pool of slab
/// descriptors carved from provider pages.
pub(crate) struct Pages<P> {
    provider: P,
    retained: RetainedRuns,
    spare: *mut Spare,
    /// Whether idle runs are decommitted: the mode is not `Off` and the
    /// provider has not refused.
    decommit: bool,
    /// Runs freed before this stamp count as idle for [`scavenge`](Self::scavenge).
    idle_before: u64,
}

// SAFETY: the pool only points into provider memory owned by this value.
unsafe impl<P: Send> Send for Pages<P> {}

impl<P: PageProvider> Pages<P> {
    /// Pages over `provider`, keeping up to `retain_bytes` of freed runs
    /// committed and decommitting the rest unless `mode` is off.
    pub fn new(provider: P, retain_bytes: usize, mode: DecommitMode) -> Self {
        Pages {
            provider,
            retained: RetainedRuns::new(retain_bytes),
            spare: ptr::null_mut(),
            decommit: mode != DecommitMode::Off,
            idle_before: 0,
        }
    }

    pub fn provider(&self) -> &P {
        &self.provider
    }

    /// Publishes the pool's sizes to the counters.
    fn count_pool(&self, counters: &PageCounters) {
        counters.retained.store(self.retained.bytes(), Relaxed);
        counters
            .decommitted
            .store(self.retained.decommitted_bytes(), Relaxed);
    }

    /// Allocates a run, reusing (and if need be recommitting) a retained
    /// one if it can, and accounts for it.
    pub fn alloc(
        &mut self,
        pages: usize,
        align: usize,
        counters: &PageCounters,
    ) -> Option<NonNull<u8>> {
        if let Some((run, committed)) = self.retained.take(pages, align) {
            if committed || self.recommit(run, counters) {
                self.count_pool(counters);
                return Some(run.start);
            }
            self.keep(run, false, counters);
        }
        counters.alloc_calls.fetch_add(1, Relaxed);
        let run = self.provider.alloc_pages(pages, align);
        match run {
            Some(_) => counters.committed.fetch_add(pages * PAGE_SIZE, Relaxed),
            None => counters.failed_calls.fetch_add(1, Relaxed) as usize,
        };
        run
    }

    /// Makes a decommitted run usable again.
    fn recommit(&mut self, run: Run, counters: &PageCounters) -> bool {
        counters.recommit_calls.fetch_add(1, Relaxed);
        // SAFETY: the run is a freed run of this provider, held by the pool.
        let done = unsafe { self.provider.recommit(run.start, run.pages) };
        if done {
            counters.committed.fetch_add(run.pages * PAGE_SIZE, Relaxed);
        } else {
            counters.failed_calls.fetch_add(1, Relaxed);
        }
        done
    }

    /// Frees a run: keeps it for reuse (committed within the budget, else
    /// decommitted), or gives it back to the provider.
    ///
    /// # Safety
    /// The run came from [`alloc`](Self::alloc) and is no longer used.
    pub unsafe fn free(&mut self, start: NonNull<u8>, pages: usize, counters: &PageCounters) {
        let run = Run { start, pages };
        if !self.decommit && !self.retained.can_hold(pages) {
            // SAFETY: forwarded caller contract.
            unsafe { self.release(run, true, counters) };
            return;
        }
        self.keep(run, true, counters);
        self.enforce_budget(counters);
        self.count_pool(counters);
    }

    /// Puts an unused run into the pool, first giving the oldest run back
    /// to the provider if every slot is taken.
    fn keep(&mut self, run: Run, committed: bool, counters: &PageCounters) {
        if self.retained.is_full() {
            let (old, old_committed) = self.retained.pop_oldest().expect("a full pool holds runs");
            // SAFETY: retained runs are unused runs of this provider.
            unsafe { self.release(old, old_committed, counters) };
        }
        self.retained.push(run, committed);
    }

    /// Decommits (or, failing that, frees) the least recently freed
    /// committed runs until the pool is within its budget. Bounded: each
    /// step turns one slot's committed run into a decommitted one, and the
    /// pool has a fixed number of slots.
    fn enforce_budget(&mut self, counters: &PageCounters) {
        while self.retained.over_budget() {
            let run = self
                .retained
                .oldest_committed(usize::MAX, u64::MAX)
                .expect("committed bytes are in committed runs");
            self.decommit_or_release(run, counters);
        }
    }

    /// Decommits an unused committed run taken from the pool and keeps it,
    /// or gives it back to the provider when decommitting is off or fails.
    fn decommit_or_release(&mut self, run: Run, counters: &PageCounters) {
        // SAFETY: the run was taken from the pool: unused, of this provider.
        if self.decommit && unsafe { self.provider.decommit(run.start, run.pages) } {
            let bytes = run.pages * PAGE_SIZE;
            counters.decommit_calls.fetch_add(1, Relaxed);
            counters.decommitted_total.fetch_add(bytes as u64, Relaxed);
            counters.committed.fetch_sub(bytes, Relaxed);
            self.keep(run, false, counters);
            return;
        }
        // A provider that cannot decommit (a fixed region) will not later.
        self.decommit = false;
        // SAFETY: as above.
        unsafe { self.release(run, true, counters) };
    }

    /// Decommits up to `max_pages` pages of retained runs that have stayed
    /// unused since the previous call, one run at a time while `in_time`
    /// says there is time left; returns how many it decommitted.
    pub fn scavenge(
        &mut self,
        max_pages: usize,
        in_time: impl Fn() -> bool,
        counters: &PageCounters,
    ) -> usize {
        let mut done = 0;
        while done < max_pages && self.decommit && in_time() {
            let Some(run) = self
                .retained
                .oldest_committed(max_pages - done, self.idle_before)
            else {
                break;
            };
            done += run.pages;
            self.decommit_or_release(run, counters);
        }
        self.idle_before = self.retained.now();
        self.count_pool(counters);
        done
    }

    /// Sets the committed budget of the pool, decommitting what is beyond it.
    pub fn set_retained_budget(&mut self, bytes: usize, counters: &PageCounters) {
        self.retained.set_budget(bytes);
        self.enforce_budget(counters);
        self.count_pool(counters);
    }

    /// Gives every retained run back to the provider.
    pub fn release_retained(&mut self, counters: &PageCounters) {
        while let Some((run, committed)) = self.retained.pop_oldest() {
            // SAFETY: retained runs are unused runs of this provider.
            unsafe { self.release(run, committed, counters) };
        }
        self.count_pool(counters);
    }

    /// Gives a run back to the provider.
    ///
    /// # Safety
    /// The run came from the provider and is no longer used.
    unsafe fn release(&mut self, run: Run, committed: bool, counters: &PageCounters) {
        counters.free_calls.fetch_add(1, Relaxed);
        if committed {
            counters.committed.fetch_sub(run.pages * PAGE_SIZE, Relaxed);
        }
        // SAFETY: forwarded caller contract.
        unsafe { self.provider.free_pages(run.start, run.pages) }
    }

    /// Resizes a run in place if the provider can.
    ///
    /// # Safety
    /// The run is live and came from [`alloc`](Self::alloc).
    pub unsafe fn resize(
        &mut self,
        run: NonNull<u8>,
        old: usize,
        new: usize,
        counters: &PageCounters,
    ) -> bool {
        if new > old && self.grow_into_retained(run, old, new - old, counters) {
            return true;
        }
        if new < old {
            // The tail is freed like any run: kept for reuse within the
            // budget instead of going straight back to the OS.
            // SAFETY: the tail is whole pages of the live run, no longer used.
            unsafe {
                let tail = NonNull::new_unchecked(run.as_ptr().add(new * PAGE_SIZE));
                self.free(tail, old - new, counters);
            }
            return true;
        }
        counters.resize_calls.fetch_add(1, Relaxed);
        // SAFETY: forwarded caller contract.
        let done = unsafe { self.provider.resize_in_place(run, old, new) };
        if done {
            counters.committed.fetch_add(new * PAGE_SIZE, Relaxed);
            counters.committed.fetch_sub(old * PAGE_SIZE, Relaxed);
        }
        done
    }

    /// Grows a live run by `extra` pages taken from a retained run that
    /// starts where it ends (the provider frees adjacent parts at once, so
    /// the two become one run). Without this, a run carved from the front
    /// of a retained one could never grow in place.
    fn grow_into_retained(
        &mut self,
        run: NonNull<u8>,
        pages: usize,
        extra: usize,
        counters: &PageCounters,
    ) -> bool {
        let end = run.as_ptr() as usize + pages * PAGE_SIZE;
        let Some((next, committed)) = self.retained.take_at(end, extra) else {
            return false;
        };
        if committed || self.recommit(next, counters) {
            self.count_pool(counters);
            return true;
        }
        self.keep(next, false, counters);
        false
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

//! The page layer: the provider, slab descriptors, and the accounting of
//! committed memory. Everything here runs under the allocator's page lock,
//! on cold paths only (new and released slabs, large blocks).

use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

use crate::PAGE_SIZE;
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
    /// Bytes of slab-descriptor pool pages (never returned).
    pub descriptors: AtomicUsize,
    pub alloc_calls: AtomicU64,
    pub free_calls: AtomicU64,
    pub resize_calls: AtomicU64,
    pub failed_calls: AtomicU64,
}

impl PageCounters {
    pub const fn new() -> Self {
        PageCounters {
            committed: AtomicUsize::new(0),
            lazy_page_map: AtomicUsize::new(0),
            retained: AtomicUsize::new(0),
            descriptors: AtomicUsize::new(0),
            alloc_calls: AtomicU64::new(0),
            free_calls: AtomicU64::new(0),
            resize_calls: AtomicU64::new(0),
            failed_calls: AtomicU64::new(0),
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
}

// SAFETY: the pool only points into provider memory owned by this value.
unsafe impl<P: Send> Send for Pages<P> {}

impl<P: PageProvider> Pages<P> {
    /// Pages over `provider`, keeping up to `retain_bytes` of freed runs.
    pub fn new(provider: P, retain_bytes: usize) -> Self {
        Pages {
            provider,
            retained: RetainedRuns::new(retain_bytes),
            spare: ptr::null_mut(),
        }
    }

    pub fn provider(&self) -> &P {
        &self.provider
    }

    /// Allocates a run, reusing a retained one of the same size if it can,
    /// and accounts for it.
    pub fn alloc(
        &mut self,
        pages: usize,
        align: usize,
        counters: &PageCounters,
    ) -> Option<NonNull<u8>> {
        if let Some(run) = self.retained.take(pages, align) {
            counters.retained.store(self.retained.bytes(), Relaxed);
            return Some(run.start);
        }
        counters.alloc_calls.fetch_add(1, Relaxed);
        let run = self.provider.alloc_pages(pages, align);
        match run {
            Some(_) => counters.committed.fetch_add(pages * PAGE_SIZE, Relaxed),
            None => counters.failed_calls.fetch_add(1, Relaxed) as usize,
        };
        run
    }

    /// Frees a run: keeps it for reuse within the retention budget (giving
    /// the oldest retained runs back to make room), else gives it back.
    ///
    /// # Safety
    /// The run came from [`alloc`](Self::alloc) and is no longer used.
    pub unsafe fn free(&mut self, start: NonNull<u8>, pages: usize, counters: &PageCounters) {
        if self.retained.can_hold(pages) {
            while !self.retained.has_room_for(pages) {
                let old = self.retained.pop_oldest().expect("a full pool holds runs");
                // SAFETY: retained runs are unused runs of this provider.
                unsafe { self.release(old, counters) };
            }
            self.retained.push(Run { start, pages });
            counters.retained.store(self.retained.bytes(), Relaxed);
            return;
        }
        // SAFETY: forwarded caller contract.
        unsafe { self.release(Run { start, pages }, counters) }
    }

    /// Gives every retained run back to the provider.
    pub fn release_retained(&mut self, counters: &PageCounters) {
        while let Some(run) = self.retained.pop_oldest() {
            // SAFETY: retained runs are unused runs of this provider.
            unsafe { self.release(run, counters) };
        }
        counters.retained.store(0, Relaxed);
    }

    /// Gives a run back to the provider.
    ///
    /// # Safety
    /// The run came from the provider and is no longer used.
    unsafe fn release(&mut self, run: Run, counters: &PageCounters) {
        counters.free_calls.fetch_add(1, Relaxed);
        counters.committed.fetch_sub(run.pages * PAGE_SIZE, Relaxed);
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
        counters.resize_calls.fetch_add(1, Relaxed);
        // SAFETY: forwarded caller contract.
        let done = unsafe { self.provider.resize_in_place(run, old, new) };
        if done {
            counters.committed.fetch_add(new * PAGE_SIZE, Relaxed);
            counters.committed.fetch_sub(old * PAGE_SIZE, Relaxed);
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

//! The depot: one per size class, shared by all CPUs, behind a spin lock.
//!
//! It holds two things: a ring of full *bundles* that CPU caches hand in
//! and take out whole (the common case: one lock round trip moves many
//! blocks), and the class's slabs that still have blocks available. When the
//! bundle backlog passes the drain threshold, the oldest bundles go back to
//! their slabs, and slabs that become empty go back to the page layer.
//!
//! Lock order: a depot lock, then the page lock. In kernels the depot is
//! only entered with interrupts masked, so an interrupt handler can never
//! spin on a depot lock held by the code it interrupted.

use core::ops::{Deref, DerefMut};
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

use spin::mutex::{SpinMutex, SpinMutexGuard};

use crate::block::{Block, BlockList};
use crate::slab::Slab;

/// Bundles one depot holds at most; the drain threshold usually bites first.
const RING: usize = 32;

/// A per-class depot.
pub(crate) struct Depot {
    state: SpinMutex<DepotState>,
    /// Lock acquisitions that found the lock taken.
    pub contended: AtomicU64,
    /// Spin iterations spent waiting for the lock.
    pub spins: AtomicU64,
    /// Allocations and frees that bypassed every CPU cache.
    pub direct_allocs: AtomicU64,
    pub direct_frees: AtomicU64,
    /// The backlog as the last lock holder left it: readable without the
    /// lock (ACE's tick sums it instead of trying 72 locks).
    pub backlog_hint: AtomicU64,
}

/// The depot's state while its lock is held; publishes the backlog to
/// [`Depot::backlog_hint`] when the lock is released.
pub(crate) struct DepotGuard<'a> {
    state: SpinMutexGuard<'a, DepotState>,
    backlog_hint: &'a AtomicU64,
}

impl Deref for DepotGuard<'_> {
    type Target = DepotState;
    fn deref(&self) -> &DepotState {
        &self.state
    }
}

impl DerefMut for DepotGuard<'_> {
    fn deref_mut(&mut self) -> &mut DepotState {
        &mut self.state
    }
}

impl Drop for DepotGuard<'_> {
    fn drop(&mut self) {
        self.backlog_hint.store(self.state.backlog as u64, Relaxed);
    }
}

pub(crate) struct DepotState {
    ring: [BlockList; RING],
    /// Index of the oldest bundle.
    first: usize,
    bundles: usize,
    /// Blocks in all bundles.
    pub backlog: usize,
    /// Slabs with available blocks (doubly linked through the descriptors).
    partial: *mut Slab,
    /// Slabs of this class that are completely free, kept as a reserve.
    pub empty_slabs: usize,
    /// Slabs of this class in all.
    pub slabs: usize,
}

// SAFETY: the raw pointers are blocks and descriptors that the depot owns;
// the state is only reached through the lock.
unsafe impl Send for DepotState {}

impl Depot {
    pub const fn new() -> Depot {
        Depot {
            state: SpinMutex::new(DepotState {
                ring: [BlockList::EMPTY; RING],
                first: 0,
                bundles: 0,
                backlog: 0,
                partial: ptr::null_mut(),
                empty_slabs: 0,
                slabs: 0,
            }),
            contended: AtomicU64::new(0),
            spins: AtomicU64::new(0),
            direct_allocs: AtomicU64::new(0),
            direct_frees: AtomicU64::new(0),
            backlog_hint: AtomicU64::new(0),
        }
    }

    fn guard<'a>(&'a self, state: SpinMutexGuard<'a, DepotState>) -> DepotGuard<'a> {
        DepotGuard {
            state,
            backlog_hint: &self.backlog_hint,
        }
    }

    /// Takes the lock, counting contention.
    pub fn lock(&self) -> DepotGuard<'_> {
        if let Some(guard) = self.state.try_lock() {
            return self.guard(guard);
        }
        self.contended.fetch_add(1, Relaxed);
        let mut spins = 0;
        loop {
            core::hint::spin_loop();
            spins += 1;
            if let Some(guard) = self.state.try_lock() {
                self.spins.fetch_add(spins, Relaxed);
                return self.guard(guard);
            }
        }
    }

    /// Releases a lock whose guard was forgotten ([`Allocator::lock_all`]).
    ///
    /// # Safety
    /// The lock is held, and its holder gave it up for this call.
    ///
    /// [`Allocator::lock_all`]: crate::Allocator::lock_all
    pub unsafe fn force_unlock(&self) {
        // SAFETY: the caller's contract.
        unsafe { self.state.force_unlock() }
    }

    /// Takes the lock only if it is free (for interrupt context).
    pub fn try_lock(&self) -> Option<DepotGuard<'_>> {
        self.state.try_lock().map(|state| self.guard(state))
    }
}

impl DepotState {
    /// Takes the newest bundle (its blocks are the most likely to be cached).
    pub fn take_bundle(&mut self) -> Option<BlockList> {
        if self.bundles == 0 {
            return None;
        }
        self.bundles -= 1;
        let bundle = self.ring[(self.first + self.bundles) % RING];
        self.backlog -= bundle.len as usize;
        Some(bundle)
    }

    /// Takes the oldest bundle (the coldest, first to go back to slabs).
    pub fn take_oldest(&mut self) -> Option<BlockList> {
        if self.bundles == 0 {
            return None;
        }
        let bundle = self.ring[self.first];
        self.first = (self.first + 1) % RING;
        self.bundles -= 1;
        self.backlog -= bundle.len as usize;
        Some(bundle)
    }

    /// Adds a bundle. When the ring is full the oldest bundle is returned
    /// for the caller to put back into its slabs.
    pub fn put_bundle(&mut self, bundle: BlockList) -> Option<BlockList> {
        let evicted = if self.bundles == RING {
            self.take_oldest()
        } else {
            None
        };
        self.ring[(self.first + self.bundles) % RING] = bundle;
        self.bundles += 1;
        self.backlog += bundle.len as usize;
        evicted
    }

    /// Moves up to `want` blocks from slabs with available blocks onto `out`.
    /// Returns how many moved; fewer means the class needs a new slab.
    pub fn take_from_slabs(&mut self, want: u32, out: &mut BlockList) -> u32 {
        let mut taken = 0;
        while taken < want && !self.partial.is_null() {
            // SAFETY: slabs on the partial list are live descriptors owned by
            // this depot, reached under its lock.
            let slab = unsafe { &mut *self.partial };
            if slab.is_empty() {
                self.empty_slabs -= 1;
            }
            taken += slab.take(want - taken, out);
            if slab.available == 0 {
                self.unlink(slab);
            }
        }
        taken
    }

    /// Adds a fresh slab (all blocks available) to the class.
    pub fn add_slab(&mut self, slab: NonNull<Slab>) {
        self.slabs += 1;
        self.empty_slabs += 1;
        self.link(slab.as_ptr());
    }

    /// Gives `block` back to `slab`. Returns the slab if that made it empty
    /// and the class already keeps `reserve` empty slabs: the caller then
    /// releases it (after [`forget_slab`](Self::forget_slab)).
    ///
    /// # Safety
    /// `block` is an out block of `slab`, a slab of this depot's class.
    pub unsafe fn return_block(
        &mut self,
        slab: *mut Slab,
        block: *mut Block,
        reserve: usize,
    ) -> Option<*mut Slab> {
        // SAFETY: the caller guarantees the slab is ours and the block is out.
        let s = unsafe { &mut *slab };
        if s.available == 0 {
            self.link(slab);
        }
        // SAFETY: forwarded caller contract.
        unsafe { s.put(block) };
        if !s.is_empty() {
            return None;
        }
        if self.empty_slabs >= reserve {
            return Some(slab);
        }
        self.empty_slabs += 1;
        None
    }

    /// Removes an empty slab from the class so it can be released.
    pub fn forget_slab(&mut self, slab: *mut Slab) {
        self.unlink(slab);
        self.slabs -= 1;
    }

    /// Removes one reserved empty slab, if any, for release.
    pub fn pop_empty_slab(&mut self) -> Option<*mut Slab> {
        let mut slab = self.partial;
        while !slab.is_null() {
            // SAFETY: the partial list holds live descriptors of this depot.
            let s = unsafe { &*slab };
            if s.is_empty() {
                self.empty_slabs -= 1;
                self.forget_slab(slab);
                return Some(slab);
            }
            slab = s.next;
        }
        None
    }

    fn link(&mut self, slab: *mut Slab) {
        // SAFETY: `slab` and the current head are live descriptors of this
        // depot, reached under its lock.
        unsafe {
            (*slab).prev = ptr::null_mut();
            (*slab).next = self.partial;
            if !self.partial.is_null() {
                (*self.partial).prev = slab;
            }
        }
        self.partial = slab;
    }

    fn unlink(&mut self, slab: *mut Slab) {
        // SAFETY: `slab` is on this depot's partial list, whose neighbours
        // are live descriptors of the same depot.
        unsafe {
            let (prev, next) = ((*slab).prev, (*slab).next);
            if prev.is_null() {
                self.partial = next;
            } else {
                (*prev).next = next;
            }
            if !next.is_null() {
                (*next).prev = prev;
            }
            (*slab).prev = ptr::null_mut();
            (*slab).next = ptr::null_mut();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle(len: u32) -> BlockList {
        BlockList {
            head: ptr::null_mut(),
            len,
        }
    }

    #[test]
    fn newest_bundle_out_first_oldest_evicted_when_full() {
        let depot = Depot::new();
        let mut d = depot.lock();
        for i in 0..RING as u32 {
            assert!(d.put_bundle(bundle(i + 1)).is_none());
        }
        assert_eq!(d.backlog, (1..=RING).sum::<usize>());
        let evicted = d.put_bundle(bundle(100)).expect("ring full");
        assert_eq!(evicted.len, 1);
        assert_eq!(d.take_bundle().unwrap().len, 100);
        assert_eq!(d.take_oldest().unwrap().len, 2);
        while d.take_bundle().is_some() {}
        assert_eq!(d.backlog, 0);
        assert!(d.take_oldest().is_none());
    }

    #[test]
    fn the_backlog_is_published_when_the_lock_is_released() {
        let depot = Depot::new();
        let mut d = depot.lock();
        d.put_bundle(bundle(5));
        d.put_bundle(bundle(7));
        assert_eq!(depot.backlog_hint.load(Relaxed), 0, "not while held");
        drop(d);
        assert_eq!(depot.backlog_hint.load(Relaxed), 12);
        depot.try_lock().unwrap().take_bundle();
        assert_eq!(depot.backlog_hint.load(Relaxed), 5);
    }

    #[test]
    fn slabs_hand_out_blocks_and_report_when_empty_beyond_reserve() {
        use crate::{PAGE_SIZE, size_class};
        let class = size_class::for_size(2048).unwrap();
        let mut memory = std::vec![0u8; 8 * PAGE_SIZE];
        let start = (memory.as_mut_ptr() as usize).next_multiple_of(PAGE_SIZE);
        let mut a = std::boxed::Box::new(Slab::new(start, class));
        let mut b = std::boxed::Box::new(Slab::new(start + 2 * PAGE_SIZE, class));
        let depot = Depot::new();
        let mut d = depot.lock();
        d.add_slab(NonNull::from(&mut *a));
        d.add_slab(NonNull::from(&mut *b));
        assert_eq!(d.empty_slabs, 2);
        let capacity = a.capacity + b.capacity;
        let mut out = BlockList::EMPTY;
        assert_eq!(d.take_from_slabs(capacity + 1, &mut out), capacity);
        assert_eq!(d.empty_slabs, 0);
        let mut released = std::vec::Vec::new();
        out.drain(|blk| {
            let slab = if (blk as usize) < b.start {
                &mut *a as *mut Slab
            } else {
                &mut *b as *mut Slab
            };
            // SAFETY: `blk` was taken from `slab` above and is returned once.
            if let Some(s) = unsafe { d.return_block(slab, blk, 1) } {
                released.push(s);
            }
        });
        // One empty slab is kept as the reserve, the other is handed back.
        assert_eq!(released.len(), 1);
        assert_eq!(d.empty_slabs, 1);
        d.forget_slab(released[0]);
        assert_eq!(d.slabs, 1);
        assert!(d.pop_empty_slab().is_some());
        assert_eq!((d.slabs, d.empty_slabs), (0, 0));
    }
}

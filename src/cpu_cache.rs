//! Per-CPU caches: the allocator's fast path.
//!
//! Each CPU keeps, per size class, a bounded array of pointers to free
//! blocks (TCMalloc's per-CPU slabs). `[base, top)` holds the cached blocks;
//! a pop reads the slot under `top`, a push writes the slot at `top`. Neither
//! touches the blocks themselves, and a batch moves in or out with one copy.
//! The slot arrays are sized at `init` within a byte budget
//! ([`SlotBudget`]); the capacity a class may use of its slots is a runtime
//! knob.
//!
//! Context rules (read before touching this module):
//! - A CPU's `top` pointers and slots are used only by code running on that
//!   CPU inside the per-CPU section: interrupts masked on kernels
//!   ([`Platform::EXCLUSIVE_CPU`]), or the cache's own try-lock held on
//!   hosted builds. Nothing else writes `top` or a slot; that is what
//!   makes the slots plain memory. `top` is a relaxed atomic (a plain load
//!   and store): statistics read it from other CPUs.
//! - `limit` bounds pushes at `base + cap`. Anyone may change `cap` (the
//!   capacity knob, an atomic); `limit` follows it when the owner applies
//!   it, on its CPU's next slow path of the class (a refill or a drain), so
//!   the fast path reads `limit` with a plain load. With restartable
//!   sections the owner is not one thread: there `limit` and `begin` (the
//!   floor of restartable pops) are written only under the cache's lock,
//!   by whoever stops, restarts or resizes the cache, and a restart stores
//!   them after `top`, with Release; a section loads them before `top`
//!   (rseq.rs), so it never pairs a restarted bound with a stale `top`.
//! - Capacities and counters are atomics: written by the owner (plain load
//!   and store, no locked instruction on the fast path), read by anyone for
//!   statistics and control.
//! - Slow paths called from inside the section take a transfer-cache lock,
//!   a central-list lock or the page lock, one at a time (the tick's paths
//!   hold the page lock and only try the others: central.rs).
//!
//! [`Platform::EXCLUSIVE_CPU`]: crate::Platform::EXCLUSIVE_CPU

use core::ptr::{self, NonNull};
use core::sync::atomic::{
    AtomicPtr, AtomicU32, AtomicU64, Ordering::Acquire, Ordering::Relaxed, Ordering::Release,
};

use crate::config::Knobs;
use crate::size_class::{self, NUM_CLASSES};
use crate::slab::Block;
use crate::sync::{self, AtomicBool};

/// Most blocks moved between layers at once: the size of the slow paths'
/// stack buffers (1 KiB), and the ceiling of the bundle-width knob.
pub(crate) const MAX_BATCH: usize = 128;

/// Adds one to a counter that only its owner writes.
#[inline(always)]
pub(crate) fn bump(counter: &AtomicU64) {
    counter.store(counter.load(Relaxed) + 1, Relaxed);
}

/// A slot of a per-CPU array: a free block, or garbage above `top`.
pub(crate) type Slot = *mut Block;

/// What `begin` holds while the cache is stopped: no `top` is above it.
const STOPPED: *mut Slot = ptr::without_provenance_mut(usize::MAX);

/// One CPU's cache of one class: what the fast path touches (the CPU's
/// caches share lines only with the same CPU's). The restartable sections
/// (rseq.rs) address `top`, `begin`, `limit`, `allocs` and `frees` by their
/// offsets (checked below).
#[repr(C)]
pub(crate) struct ClassCache {
    /// The next free slot: the cached blocks are `[base, top)`.
    top: sync::AtomicPtr<Slot>,
    /// Restartable pops stop here: `base` (or [`STOPPED`]).
    begin: AtomicPtr<Slot>,
    /// Pushes stop here: `base + cap` as last applied (or null while stopped).
    limit: AtomicPtr<Slot>,
    pub allocs: AtomicU64,
    pub frees: AtomicU64,
    /// The first of this class's slots (fixed at `init`).
    base: *mut Slot,
    /// Slots this class owns (fixed at `init`): the ceiling of `cap`.
    slots: u32,
    /// Most blocks kept before a bundle goes to the transfer cache (a
    /// runtime knob, at most `slots`).
    cap: AtomicU32,
}

/// Counters of one CPU's cache of one class that only slow paths touch.
pub(crate) struct ClassMisses {
    /// Allocations that found the cache empty.
    pub misses: AtomicU64,
    /// Frees that found the cache full and sent a bundle on.
    pub drains: AtomicU64,
    /// The class's operations here when another CPU last looked for
    /// blocks to take back ([`PerCpuCache::idle_since_last_look`]).
    ops_at_look: AtomicU64,
}

impl ClassCache {
    /// Takes the newest cached block, `None` when none is cached. (It
    /// stops at `base`, not `begin`: only restartable sections run on a
    /// cache that another thread may stop.)
    ///
    /// # Safety
    /// The caller is inside the owning CPU's section (module doc).
    #[inline(always)]
    pub unsafe fn pop(&self) -> Option<NonNull<Block>> {
        // Only the section owner (the caller) writes `top`.
        let top = self.top.load(Relaxed);
        if top <= self.base {
            return None;
        }
        // SAFETY: `base < top <= base + slots`, so `top - 1` is a filled
        // slot of this class, which holds a block (never null); the
        // section owner alone reads and moves it.
        unsafe {
            let top = top.sub(1);
            self.top.store(top, Relaxed);
            Some(NonNull::new_unchecked(*top))
        }
    }

    /// Caches `block`; false (nothing done) when the cache is at capacity.
    ///
    /// # Safety
    /// Inside the owning CPU's section; `block` is a free block of this
    /// class that nothing else uses.
    #[inline(always)]
    pub unsafe fn push(&self, block: *mut Block) -> bool {
        // Only the section owner (the caller) writes `top`.
        let top = self.top.load(Relaxed);
        // SAFETY: only the section owner writes `limit` (module doc), so
        // this plain read races with nothing; plain, it folds into the
        // compare (one instruction fewer than an atomic load).
        if top >= unsafe { *self.limit.as_ptr() } {
            return false;
        }
        // SAFETY: `top < limit <= base + slots`: a slot of this class.
        unsafe {
            top.write(block);
            self.top.store(top.add(1), Relaxed);
        }
        true
    }

    /// Moves up to `out.len()` of the newest blocks into `out`; returns how
    /// many moved.
    ///
    /// # Safety
    /// Inside the owning CPU's section.
    pub unsafe fn take(&self, out: &mut [Slot]) -> usize {
        // SAFETY: the section is ours (caller).
        let n = unsafe { self.len() }.min(out.len());
        // SAFETY: `[top - n, top)` are filled slots of this class, disjoint
        // from the caller's buffer.
        unsafe {
            let top = self.top.load(Relaxed).sub(n);
            ptr::copy_nonoverlapping(top, out.as_mut_ptr(), n);
            self.top.store(top, Relaxed);
        }
        n
    }

    /// Caches as many of `blocks` as fit under the capacity; returns how
    /// many (the first ones) it took.
    ///
    /// # Safety
    /// Inside the owning CPU's section; the blocks are free blocks of this
    /// class that nothing else uses.
    pub unsafe fn put(&self, blocks: &[Slot]) -> usize {
        // The section is ours (caller): nothing else moves `top`.
        let top = self.top.load(Relaxed);
        let limit = self.limit.load(Relaxed);
        // Addresses, not `offset_from`: a stopped cache's `limit` is null,
        // and `top` may be past a lowered `limit` (no room then).
        let room = (limit as usize).saturating_sub(top as usize) / size_of::<Slot>();
        let n = room.min(blocks.len());
        // SAFETY: `[top, top + n)` are free slots below `limit`.
        unsafe {
            ptr::copy_nonoverlapping(blocks.as_ptr(), top, n);
            self.top.store(top.add(n), Relaxed);
        }
        n
    }

    /// Blocks cached.
    ///
    /// # Safety
    /// Inside the owning CPU's section.
    pub unsafe fn len(&self) -> usize {
        // SAFETY: `top` and `base` point into the same slot array.
        unsafe { self.top.load(Relaxed).offset_from(self.base) as usize }
    }

    /// Blocks cached, read from anywhere (for statistics and for skipping
    /// empty classes: may be stale).
    pub fn len_hint(&self) -> u32 {
        let top = self.top.load(Relaxed);
        (top as usize - self.base as usize) as u32 / size_of::<Slot>() as u32
    }

    /// The capacity in force.
    pub fn cap(&self) -> u32 {
        self.cap.load(Relaxed)
    }

    /// The slots this class owns: the ceiling of its capacity.
    pub fn slots(&self) -> u32 {
        self.slots
    }

    /// Makes every restartable pop and push fail until
    /// [`restart`](Self::restart), so that another thread can work on the
    /// arrays (rseq.rs says how that is made safe against the owner's
    /// restartable sections).
    ///
    /// # Safety
    /// The caller holds the cache's lock, with restartable sections in use.
    pub unsafe fn stop(&self) {
        // Relaxed: the caller fences before it touches `top` (rseq.rs).
        self.begin.store(STOPPED, Relaxed);
        self.limit.store(ptr::null_mut(), Relaxed);
    }

    /// Undoes [`stop`](Self::stop), with the capacity in force now: with
    /// Release stores, after every store the caller made to `top` (module
    /// doc).
    ///
    /// # Safety
    /// As for [`stop`](Self::stop).
    pub unsafe fn restart(&self) {
        self.begin.store(self.base, Release);
        // SAFETY: forwarded contract.
        unsafe { self.apply_cap() };
    }

    /// Sets the capacity, clamped to `1..=slots`. Safe from any CPU; it
    /// takes effect when [`apply_cap`](Self::apply_cap) runs.
    pub fn set_cap(&self, cap: u32) {
        self.cap.store(cap.clamp(1, self.slots), Relaxed);
    }

    /// Moves `limit` to the capacity in force (a shrunk cache drains on its
    /// next free).
    ///
    /// # Safety
    /// The caller is the section owner (module doc): inside the CPU's
    /// section, or holding the cache's lock with restartable sections.
    pub unsafe fn apply_cap(&self) {
        let cap = self.cap.load(Relaxed) as usize;
        // SAFETY: `cap <= slots`: within this class's slots.
        let limit = unsafe { self.base.add(cap) };
        // Release: after the caller's stores to `top` (module doc).
        self.limit.store(limit, Release);
    }
}

/// Time spent in allocation slow paths (refills, allocations that
/// bypassed the caches), in `Platform::now` units, and how many ran: what
/// ACE's allocation-latency guard watches. Only slow paths touch it.
pub(crate) struct SlowPaths {
    pub time: AtomicU64,
    pub count: AtomicU64,
}

impl SlowPaths {
    pub const fn new() -> SlowPaths {
        SlowPaths {
            time: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    /// Adds one slow path of `elapsed` units, at most `clip`, from the
    /// owner only (a CPU inside its section): plain load and store.
    pub fn add_owned(&self, elapsed: u64, clip: u64) {
        let time = self.time.load(Relaxed).wrapping_add(elapsed.min(clip));
        self.time.store(time, Relaxed);
        bump(&self.count);
    }

    /// Adds one slow path of `elapsed` units, at most `clip`, from any CPU.
    pub fn add_shared(&self, elapsed: u64, clip: u64) {
        self.time.fetch_add(elapsed.min(clip), Relaxed);
        self.count.fetch_add(1, Relaxed);
    }
}

/// How many slots each class gets on every CPU, and each class's transfer
/// cache: what the knobs could ask for, scaled down to a byte budget (a
/// kernel heap of 64 KiB cannot give every class hundreds of slots).
pub(crate) struct SlotBudget {
    /// Slots per class on each CPU.
    pub cache: [u32; NUM_CLASSES],
    /// Slots per class in the transfer cache.
    pub transfer: [u32; NUM_CLASSES],
}

impl SlotBudget {
    /// Slots for `cpus` CPUs and the initial `knobs`, within `bytes` in all
    /// (every class keeps at least one slot of each kind, so a tiny budget
    /// may be exceeded).
    pub fn new(knobs: &Knobs, cpus: usize, bytes: usize) -> SlotBudget {
        // The capacity knob at init or its default, whichever is larger
        // (ACE's ceiling is the default), and the drain threshold likewise
        // in the transfer cache (what does not fit goes to the slabs).
        // Larger values set later are cut to these slots.
        let cache_knob = knobs.cache_capacity.max(Knobs::DEFAULT.cache_capacity);
        let drain_knob = knobs.drain_threshold.max(Knobs::DEFAULT.drain_threshold);
        let mut budget = SlotBudget {
            cache: core::array::from_fn(|c| Knobs::scaled(cache_knob, size_class::size_of(c))),
            transfer: core::array::from_fn(|c| {
                let size = size_class::size_of(c);
                Knobs::scaled(drain_knob, size)
            }),
        };
        // Over budget: cap the biggest counts first (the small classes'),
        // at the largest `most` that fits, so no class is cut below what a
        // fair share allows.
        let fits = |most: u32| {
            let clamp = |n: &[u32; NUM_CLASSES]| n.iter().map(|&n| n.min(most) as usize).sum();
            let (cache, transfer): (usize, usize) = (clamp(&budget.cache), clamp(&budget.transfer));
            (cpus * cache + transfer) * size_of::<Slot>() <= bytes
        };
        if !fits(u32::MAX) {
            let (mut low, mut high) = (1, MAX_BATCH as u32 * 8);
            while low < high {
                let mid = (low + high).div_ceil(2);
                if fits(mid) { low = mid } else { high = mid - 1 }
            }
            for n in budget.cache.iter_mut().chain(budget.transfer.iter_mut()) {
                *n = (*n).min(low);
            }
        }
        budget
    }

    /// Slots on one CPU.
    pub fn per_cpu(&self) -> usize {
        self.cache.iter().map(|&n| n as usize).sum()
    }

    /// Bytes of every slot array together.
    pub fn bytes(&self, cpus: usize) -> usize {
        let transfer: usize = self.transfer.iter().map(|&n| n as usize).sum();
        (cpus * self.per_cpu() + transfer) * size_of::<Slot>()
    }
}

// (loom's atomics are bigger; loom builds have no restartable sections.)
#[cfg(not(loom))]
const _: () = {
    use core::mem::offset_of;
    assert!(offset_of!(ClassCache, top) == 0);
    assert!(offset_of!(ClassCache, begin) == 8);
    assert!(offset_of!(ClassCache, limit) == 16);
    assert!(offset_of!(ClassCache, allocs) == 24);
    assert!(offset_of!(ClassCache, frees) == 32);
    assert!(size_of::<ClassCache>() == 56);
};

/// Everything one CPU caches.
#[repr(C, align(64))]
pub(crate) struct PerCpuCache {
    /// Held while a thread uses the cache (hosted builds only).
    lock: AtomicBool,
    /// The allocator's flush request this cache last honoured.
    pub flushed_at: sync::AtomicU32,
    /// The allocator's prewarm request this cache last honoured.
    pub prewarmed_at: sync::AtomicU32,
    /// Allocations plus frees at the last idle check (`flush_idle_caches`).
    pub ops_seen: AtomicU64,
    /// When `maintain` last checked this cache for idleness.
    pub idle_check_at: AtomicU64,
    /// This CPU's refills.
    pub slow: SlowPaths,
    pub classes: [ClassCache; NUM_CLASSES],
    pub misses: [ClassMisses; NUM_CLASSES],
}

// SAFETY: the tops and slots are only reached under the per-CPU section
// contract; everything else is atomic or fixed at init.
unsafe impl Sync for PerCpuCache {}

impl PerCpuCache {
    /// A cache with every class empty: class `c` owns `slots[c]` slots (at
    /// least one) of the array at `array`, with capacity `cap(c)`.
    ///
    /// # Safety
    /// `array` holds that many slots in all, used by this cache alone for as
    /// long as it lives.
    pub unsafe fn new(
        array: *mut Slot,
        slots: &[u32; NUM_CLASSES],
        cap: impl Fn(usize) -> u32,
    ) -> PerCpuCache {
        let mut next = array;
        let classes = core::array::from_fn(|class| {
            let base = next;
            let n = slots[class].max(1);
            // SAFETY: the slots of classes `0..=class` fit in the array
            // (the caller's contract).
            next = unsafe { next.add(n as usize) };
            let cache = ClassCache {
                top: sync::AtomicPtr::new(base),
                begin: AtomicPtr::new(base),
                limit: AtomicPtr::new(base),
                allocs: AtomicU64::new(0),
                frees: AtomicU64::new(0),
                base,
                slots: n,
                cap: AtomicU32::new(0),
            };
            cache.set_cap(cap(class));
            // SAFETY: the cache is not shared yet.
            unsafe { cache.apply_cap() };
            cache
        });
        PerCpuCache {
            lock: AtomicBool::new(false),
            flushed_at: sync::AtomicU32::new(0),
            prewarmed_at: sync::AtomicU32::new(0),
            ops_seen: AtomicU64::new(0),
            idle_check_at: AtomicU64::new(0),
            slow: SlowPaths::new(),
            classes,
            misses: core::array::from_fn(|_| ClassMisses {
                misses: AtomicU64::new(0),
                drains: AtomicU64::new(0),
                ops_at_look: AtomicU64::new(0),
            }),
        }
    }

    /// The cache of `class`.
    #[inline(always)]
    pub fn class(&self, class: usize) -> &ClassCache {
        debug_assert!(class < NUM_CLASSES);
        // SAFETY: classes come from `size_class`, always below NUM_CLASSES.
        unsafe { self.classes.get_unchecked(class) }
    }

    /// Whether this cache holds blocks of `class` and served no operation
    /// of the class since the previous call for it (from any CPU): a cache
    /// a thread left when it moved, not one a thread keeps using. Taking
    /// from a busy cache stops all its classes and interrupts its CPU, and
    /// the busy cache fills up again at once: a producer on one CPU that
    /// takes back what its consumer frees on another would do that on
    /// every other refill.
    pub fn idle_since_last_look(&self, class: usize) -> bool {
        let (hot, cold) = (self.class(class), &self.misses[class]);
        let ops = hot.allocs.load(Relaxed)
            + hot.frees.load(Relaxed)
            + cold.misses.load(Relaxed)
            + cold.drains.load(Relaxed);
        cold.ops_at_look.swap(ops, Relaxed) == ops && hot.len_hint() > 0
    }

    /// Tries to take the cache's lock (hosted builds).
    #[inline(always)]
    pub fn try_lock(&self) -> bool {
        // A compare-exchange, not a swap: the same instruction cost, and
        // loom's model of repeated failing swaps never lets a waiter in.
        self.lock
            .compare_exchange(false, true, Acquire, Relaxed)
            .is_ok()
    }

    /// Releases the lock taken by [`try_lock`](Self::try_lock).
    #[inline(always)]
    pub fn unlock(&self) {
        self.lock.store(false, Release);
    }

    /// [`ClassCache::stop`] for every class.
    ///
    /// # Safety
    /// As for [`ClassCache::stop`].
    pub unsafe fn stop(&self) {
        // SAFETY: forwarded contract.
        self.classes.iter().for_each(|c| unsafe { c.stop() });
    }

    /// [`ClassCache::restart`] for every class.
    ///
    /// # Safety
    /// As for [`ClassCache::stop`].
    pub unsafe fn restart(&self) {
        // SAFETY: forwarded contract.
        self.classes.iter().for_each(|c| unsafe { c.restart() });
    }
}

/// How a slow path reaches the cache of the CPU it runs on.
#[derive(Clone, Copy)]
pub(crate) enum Section<'a> {
    /// The caller is inside this cache's section: interrupts masked, its
    /// lock held, or the cache stopped by the caller.
    Owned(&'a PerCpuCache),
    /// Restartable sections (rseq.rs) on whichever CPU runs each of them.
    /// `seen` is the cache of the CPU the caller last ran on, for counters.
    Restartable {
        caches: *const PerCpuCache,
        seen: &'a PerCpuCache,
    },
}

impl<'a> Section<'a> {
    /// The cache whose counters this slow path adds to.
    pub fn counters(self) -> &'a PerCpuCache {
        match self {
            Section::Owned(cache) | Section::Restartable { seen: cache, .. } => cache,
        }
    }

    /// Adds one to `counter`, one of [`counters`](Self::counters)': plain
    /// for an owner, atomic for a thread that may share the CPU with
    /// restartable sections of other threads.
    pub fn count(self, counter: &AtomicU64) {
        match self {
            Section::Owned(_) => bump(counter),
            Section::Restartable { .. } => {
                counter.fetch_add(1, Relaxed);
            }
        }
    }

    /// [`ClassCache::take`] on this CPU's cache of `class`.
    ///
    /// # Safety
    /// `Owned`: as for [`ClassCache::take`]. `Restartable`: `caches` are
    /// the allocator's, set up for restartable sections.
    pub unsafe fn take(self, class: usize, out: &mut [Slot]) -> usize {
        match self {
            // SAFETY: forwarded contract.
            Section::Owned(cache) => unsafe { cache.class(class).take(out) },
            // SAFETY: forwarded contract.
            Section::Restartable { caches, .. } => unsafe {
                crate::rseq::take(class0(caches, class), out)
            },
        }
    }

    /// [`ClassCache::put`] on this CPU's cache of `class`.
    ///
    /// # Safety
    /// As for [`take`](Self::take), and the blocks are free blocks of
    /// `class` that nothing else uses.
    pub unsafe fn put(self, class: usize, blocks: &[Slot]) -> usize {
        match self {
            // SAFETY: forwarded contract.
            Section::Owned(cache) => unsafe { cache.class(class).put(blocks) },
            // SAFETY: forwarded contract.
            Section::Restartable { caches, .. } => unsafe {
                crate::rseq::put(class0(caches, class), blocks)
            },
        }
    }

    /// [`ClassCache::push`] on this CPU's cache of `class`.
    ///
    /// # Safety
    /// As for [`put`](Self::put).
    pub unsafe fn push(self, class: usize, block: *mut Block) -> bool {
        match self {
            // SAFETY: forwarded contract.
            Section::Owned(cache) => unsafe { cache.class(class).push(block) },
            // SAFETY: forwarded contract.
            Section::Restartable { caches, .. } => unsafe {
                crate::rseq::push(class0(caches, class), block)
            },
        }
    }

    /// Applies the capacity knob of `class` to an owned cache (restartable
    /// caches get it from [`ClassCache::set_cap`]'s callers, under the lock).
    pub fn apply_cap(self, class: usize) {
        if let Section::Owned(cache) = self {
            // SAFETY: an owned section is the cache's owner.
            unsafe { cache.class(class).apply_cap() };
        }
    }

    /// Whether this CPU's cache of `class` looks empty (exact for an owner).
    pub fn looks_empty(self, class: usize) -> bool {
        self.counters().class(class).len_hint() == 0
    }
}

/// The cache of `class` on CPU 0, where restartable sections start from.
#[inline(always)]
pub(crate) fn class0(caches: *const PerCpuCache, class: usize) -> *const ClassCache {
    // SAFETY: `caches` points at the allocator's live caches (callers'
    // contract); no reference is made, only an address.
    unsafe {
        ptr::addr_of!((*caches).classes)
            .cast::<ClassCache>()
            .add(class)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    #[test]
    fn pops_what_was_pushed_newest_first_within_capacity() {
        let mut slots = [0u32; NUM_CLASSES];
        slots[0] = 8;
        slots[1] = 4;
        let mut array = std::vec![ptr::null_mut(); 8 + 4 + NUM_CLASSES];
        // SAFETY: the array holds every class's slots and outlives the cache.
        let cache = unsafe { PerCpuCache::new(array.as_mut_ptr(), &slots, |_| 3) };
        let (a, b) = (cache.class(0), cache.class(1));
        let blocks: Vec<Slot> = (1..=10).map(|i| (i * 64) as Slot).collect();
        // SAFETY: one test thread is the section owner; the blocks are
        // never dereferenced.
        unsafe {
            let pop = |c: &ClassCache| c.pop().map_or(ptr::null_mut(), NonNull::as_ptr);
            assert!(pop(a).is_null());
            assert!(a.push(blocks[0]) && a.push(blocks[1]) && a.push(blocks[2]));
            assert!(!a.push(blocks[3]), "capacity 3");
            assert!(b.push(blocks[9]), "classes have their own slots");
            assert_eq!((a.len(), a.len_hint()), (3, 3));
            assert_eq!(pop(a), blocks[2]);
            a.set_cap(8);
            assert_eq!(a.put(&blocks[3..9]), 1, "the old capacity until applied");
            a.apply_cap();
            assert_eq!(a.put(&blocks[4..9]), 5);
            let mut out = [ptr::null_mut(); 4];
            assert_eq!(a.take(&mut out), 4);
            assert_eq!(out, [blocks[5], blocks[6], blocks[7], blocks[8]]);
            a.set_cap(1);
            a.apply_cap();
            assert_eq!(a.put(&blocks[..1]), 0, "over a lowered capacity");
            assert!(!a.push(blocks[0]));
            assert_eq!(a.len(), 4);
            a.stop();
            assert!(!a.push(blocks[0]) && a.put(&blocks[..1]) == 0, "stopped");
            a.set_cap(8);
            a.restart();
            assert_eq!(pop(a), blocks[4]);
            assert_eq!(pop(b), blocks[9]);
            assert!(pop(b).is_null());
        }
    }

    #[test]
    fn the_budget_scales_every_class_down_to_fit() {
        let knobs = Knobs::DEFAULT;
        let roomy = SlotBudget::new(&knobs, 2, usize::MAX);
        let class_64 = size_class::for_size(64).unwrap();
        assert_eq!(roomy.cache[class_64], knobs.cache_capacity);
        let tight = SlotBudget::new(&knobs, 4, 32 * 1024);
        assert!(tight.bytes(4) <= 32 * 1024);
        assert!(tight.cache.iter().chain(&tight.transfer).all(|&n| n >= 1));
        // The biggest counts are cut, the smallest kept.
        let largest = size_class::NUM_CLASSES - 1;
        assert!(tight.cache[class_64] < roomy.cache[class_64]);
        assert_eq!(tight.cache[largest], roomy.cache[largest]);
        let tiny = SlotBudget::new(&knobs, 4, 0);
        assert!(tiny.cache.iter().chain(&tiny.transfer).all(|&n| n == 1));
    }
}

/// loom model of the hand-off between threads that share a CPU index on
/// hosted builds: the cache's try-lock passes `top` and the slots from one
/// thread's section to the next (run by `cargo xtask test`'s loom step).
#[cfg(all(test, loom))]
mod loom_models {
    use super::*;
    use loom::sync::Arc;
    use loom::thread;
    use std::vec::Vec;

    /// A cache whose class 0 holds two blocks, with its slot array.
    struct Shared {
        cache: PerCpuCache,
        _slots: Vec<Slot>,
    }

    impl Shared {
        fn new() -> Shared {
            let mut per_class = [1u32; NUM_CLASSES];
            per_class[0] = 2;
            let mut slots = std::vec![ptr::null_mut(); NUM_CLASSES + 1];
            // SAFETY: `slots` holds every class's slots; its buffer does
            // not move with it and lives as long as the cache.
            let cache = unsafe { PerCpuCache::new(slots.as_mut_ptr(), &per_class, |_| 2) };
            Shared {
                cache,
                _slots: slots,
            }
        }

        /// Runs `f` on class 0 inside the cache's section, as a hosted
        /// thread does: the try-lock held, spinning until it is free.
        fn in_section<R>(&self, f: impl FnOnce(&ClassCache) -> R) -> R {
            while !self.cache.try_lock() {
                thread::yield_now();
            }
            let result = f(self.cache.class(0));
            self.cache.unlock();
            result
        }
    }

    /// Two threads on one CPU each cache a block and then take one: no
    /// block is lost or taken twice, whatever the interleaving.
    #[test]
    fn threads_sharing_a_cpu_take_each_cached_block_once() {
        loom::model(|| {
            let shared = Arc::new(Shared::new());
            let threads: Vec<_> = (1..=2)
                .map(|i| {
                    let shared = shared.clone();
                    thread::spawn(move || {
                        let block = (i * 64) as Slot;
                        // SAFETY: inside the section; the blocks are never
                        // dereferenced.
                        assert!(shared.in_section(|c| unsafe { c.push(block) }));
                        // SAFETY: as above.
                        shared.in_section(|c| unsafe { c.pop() })
                    })
                })
                .collect();
            let mut blocks: Vec<usize> = threads
                .into_iter()
                .filter_map(|t| t.join().unwrap())
                .map(|b| b.as_ptr() as usize)
                .collect();
            let mut left = [ptr::null_mut(); 2];
            // SAFETY: as above, after the threads.
            let n = shared.in_section(|c| unsafe { c.take(&mut left) });
            blocks.extend(left[..n].iter().map(|&b| b as usize));
            blocks.sort();
            assert_eq!(blocks, [64, 128], "each block once");
        });
    }
}

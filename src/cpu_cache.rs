//! Per-CPU caches: the allocator's fast path.
//!
//! Context rules (read before touching this module):
//! - A CPU's cache lists are used only by code running on that CPU inside
//!   the per-CPU section: interrupts masked on kernels
//!   ([`Platform::EXCLUSIVE_CPU`]), or the cache's own try-lock held on
//!   hosted builds. Nothing else touches a `list`; that is what makes it a
//!   plain field.
//! - Capacities and counters are atomics: written by the owner (plain load
//!   and store, no locked instruction on the fast path), read by anyone for
//!   statistics and control.
//! - Slow paths called from inside the section take a depot lock, then the
//!   page lock; never the other way round.
//!
//! [`Platform::EXCLUSIVE_CPU`]: crate::Platform::EXCLUSIVE_CPU

use core::cell::UnsafeCell;
use core::sync::atomic::{
    AtomicBool, AtomicU32, AtomicU64, Ordering::Acquire, Ordering::Relaxed, Ordering::Release,
};

use crate::block::BlockList;
use crate::size_class::NUM_CLASSES;

/// Adds one to a counter that only its owner writes.
#[inline(always)]
pub(crate) fn bump(counter: &AtomicU64) {
    counter.store(counter.load(Relaxed) + 1, Relaxed);
}

/// One CPU's cache of one class: what the fast path touches, in one cache
/// line of its own.
#[repr(C, align(64))]
pub(crate) struct ClassCache {
    list: UnsafeCell<BlockList>,
    /// Most blocks kept before a bundle goes to the depot (a runtime knob).
    pub cap: AtomicU32,
    pub allocs: AtomicU64,
    pub frees: AtomicU64,
}

/// Counters of one CPU's cache of one class that only slow paths touch.
pub(crate) struct ClassMisses {
    /// Allocations that found the cache empty.
    pub misses: AtomicU64,
    /// Frees that found the cache full and sent a bundle to the depot.
    pub drains: AtomicU64,
}

impl ClassCache {
    /// The free blocks of this cache.
    ///
    /// # Safety
    /// The caller is inside the owning CPU's section (module doc) and holds
    /// no other reference returned by this method.
    #[inline(always)]
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn list(&self) -> &mut BlockList {
        // SAFETY: exclusivity is the caller's contract.
        unsafe { &mut *self.list.get() }
    }

    /// Blocks held (for statistics: may be stale when read remotely).
    pub fn len_hint(&self) -> u32 {
        // SAFETY: a racy read of a u32 through a raw pointer, used only as
        // a hint; `read_volatile` keeps it a single load.
        unsafe { core::ptr::addr_of!((*self.list.get()).len).read_volatile() }
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

/// Everything one CPU caches.
#[repr(C, align(64))]
pub(crate) struct PerCpuCache {
    /// Held while a thread uses the cache (hosted builds only).
    lock: AtomicBool,
    /// The allocator's flush request this cache last honoured.
    pub flushed_at: AtomicU32,
    /// The allocator's prewarm request this cache last honoured.
    pub prewarmed_at: AtomicU32,
    /// Allocations plus frees at the last idle check (`flush_idle_caches`).
    pub ops_seen: AtomicU64,
    /// When `maintain` last checked this cache for idleness.
    pub idle_check_at: AtomicU64,
    /// This CPU's refills.
    pub slow: SlowPaths,
    pub classes: [ClassCache; NUM_CLASSES],
    pub misses: [ClassMisses; NUM_CLASSES],
}

// SAFETY: the lists are only reached under the per-CPU section contract;
// everything else is atomic.
unsafe impl Sync for PerCpuCache {}

impl PerCpuCache {
    /// A cache with every class empty and capacities from `cap`.
    pub fn new(cap: impl Fn(usize) -> u32) -> PerCpuCache {
        PerCpuCache {
            lock: AtomicBool::new(false),
            flushed_at: AtomicU32::new(0),
            prewarmed_at: AtomicU32::new(0),
            ops_seen: AtomicU64::new(0),
            idle_check_at: AtomicU64::new(0),
            slow: SlowPaths::new(),
            classes: core::array::from_fn(|class| ClassCache {
                list: UnsafeCell::new(BlockList::EMPTY),
                cap: AtomicU32::new(cap(class)),
                allocs: AtomicU64::new(0),
                frees: AtomicU64::new(0),
            }),
            misses: core::array::from_fn(|_| ClassMisses {
                misses: AtomicU64::new(0),
                drains: AtomicU64::new(0),
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

    /// Tries to take the cache's lock (hosted builds).
    #[inline(always)]
    pub fn try_lock(&self) -> bool {
        !self.lock.swap(true, Acquire)
    }

    /// Releases the lock taken by [`try_lock`](Self::try_lock).
    #[inline(always)]
    pub fn unlock(&self) {
        self.lock.store(false, Release);
    }
}

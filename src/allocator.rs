//! The allocator: fast paths first, then the slow paths they fall back to.
//!
//! ```text
//!   alloc ──► per-CPU cache ──empty──► transfer cache ──none──► central list ──► new slab
//!  dealloc ─► per-CPU cache ──full───► transfer cache ──backlog─► central list ──empty──► pages
//!   large ──► page layer (provider), straight
//! ```
//!
//! Per-CPU caches and transfer caches hold pointers to free blocks in
//! arrays: a batch moves between them with one copy under one short
//! critical section, and never touches the blocks' memory.
//!
//! The class of a block is recomputed from the `Layout` on `dealloc`
//! (`GlobalAlloc` passes the allocation's own layout), so the free fast
//! path reads no metadata at all; checked mode verifies the layout against
//! the page map instead of trusting it. A free by address alone (C's
//! `free`) reads the class from the slab the page map names.
//!
//! A C library's `malloc` and `free` inline [`Allocator::alloc_cached`]
//! and [`Allocator::free_cached`]: the restartable sections alone, with no
//! call, so that these entry points need no stack frame; anything else
//! goes to the full paths below.

use core::alloc::{GlobalAlloc, Layout};
use core::marker::PhantomData;
use core::ptr::{self, NonNull};
use core::sync::atomic::{
    AtomicBool, AtomicPtr, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering::Acquire,
    Ordering::Relaxed, Ordering::Release, Ordering::SeqCst,
};

use spin::mutex::SpinMutex;

use crate::ace::Ace;
use crate::central::{CentralFreeList, Slabs};
use crate::config::{Config, Knobs, Profile, ms_to_ticks};
use crate::cpu_cache::{
    MAX_BATCH, PerCpuCache, Section, Slot, SlotBudget, SlowPaths, bump, class0,
};
use crate::page_map::{Entry, PageMap};
use crate::pages::{PageCounters, Pages};
use crate::platform::Platform;
use crate::provider::{AddRegionError, PAGE_SIZE, PageProvider};
use crate::rseq;
use crate::size_class::{self, Class, MIN_ALIGN, NUM_CLASSES};
use crate::slab::{Block, Slab};
use crate::sync;
use crate::transfer::TransferCache;

/// Why [`Allocator::init`] failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitError {
    /// `init` was already called.
    AlreadyInitialized,
    /// The provider could not supply the allocator's metadata.
    OutOfMemory,
}

/// The out-of-memory hook ([`Allocator::set_oom_hook`]): called with the
/// allocator and the bytes of the page run it could not get, before an
/// allocation fails; returns whether it handed over memory (then the
/// allocation tries again).
pub type OomHook<P, Pl> = fn(&Allocator<P, Pl>, usize) -> bool;

/// What `maintain` keeps to see that the allocator went quiet: served no
/// allocation and no free for the quiet delay. Every field is a hint that
/// CPUs calling `maintain` at once may race on: the worst a race does is
/// one check too many or one release pass late.
struct QuietWatch {
    /// The quiet delay in `Platform::now` units ([`NEVER_QUIET`]: none).
    delay: AtomicU64,
    /// Operations counted at the last check, and when that was.
    ops: AtomicU64,
    checked_at: AtomicU64,
    /// When the count last moved.
    active_at: AtomicU64,
    /// Set once a quiet spell's release left nothing to release; cleared
    /// when the allocator serves again.
    released: AtomicBool,
    /// A release asked for ([`Allocator::request_release`]): one pass of
    /// a quiet spell's release by the next `maintain`, whatever the
    /// profile's delay.
    asked: AtomicBool,
}

/// [`QuietWatch::delay`] of a profile that never goes quiet.
const NEVER_QUIET: u64 = u64::MAX;

impl QuietWatch {
    sync::const_but_loom! {
        fn new() -> QuietWatch {
            QuietWatch {
                delay: AtomicU64::new(NEVER_QUIET),
                ops: AtomicU64::new(0),
                checked_at: AtomicU64::new(0),
                active_at: AtomicU64::new(0),
                released: AtomicBool::new(false),
                asked: AtomicBool::new(false),
            }
        }
    }
}

/// The knobs, as the allocator reads them at run time.
pub(crate) struct KnobCells {
    pub cache_capacity: AtomicU32,
    pub bundle_width: AtomicU32,
    pub drain_threshold: AtomicU32,
    pub release_pages: AtomicU32,
}

/// A per-CPU slab allocator over the page provider `P` on platform `Pl`.
///
/// Construct it in a `static` with [`new`](Self::new), hand it memory with
/// [`init`](Self::init), then use it as `#[global_allocator]`. Before
/// `init`, every allocation returns null.
pub struct Allocator<P, Pl> {
    /// The per-CPU caches when the fast paths may use them directly: after
    /// `init`, in unchecked mode. Null sends them to their checked twins.
    fast: AtomicPtr<PerCpuCache>,
    /// `fast` when the per-CPU sections are restartable: the caches of
    /// the call-free fast paths [`alloc_cached`](Self::alloc_cached) and
    /// [`free_cached`](Self::free_cached); null sends them to the full paths.
    rseq_fast: AtomicPtr<PerCpuCache>,
    /// Per-CPU caches, null until `init`.
    caches: AtomicPtr<PerCpuCache>,
    cpus: AtomicUsize,
    map: spin::Once<PageMap>,
    config: spin::Once<Config>,
    pub(crate) transfer: [TransferCache; NUM_CLASSES],
    pub(crate) central: [CentralFreeList; NUM_CLASSES],
    /// Per-class cache capacities set by `set_class_capacity` (0: the
    /// capacity knob's, scaled).
    class_caps: [AtomicU32; NUM_CLASSES],
    pages: SpinMutex<Option<Pages<P>>>,
    pub(crate) counters: PageCounters,
    pub(crate) knobs: KnobCells,
    /// The current profile ([`Profile::index`]).
    profile: AtomicU8,
    /// The purge-delay knob in ms (in clock units: `counters.purge_delay`).
    purge_ms: AtomicU32,
    /// Set when a class's empty-slab reserve may have been lowered (a
    /// profile or knob change): `maintain` or `scavenge` then releases what
    /// is beyond it (`release_lowered_reserves`).
    reserve_lowered: AtomicBool,
    /// Watches for a quiet allocator ([`Profile::quiet_ms`]).
    quiet: QuietWatch,
    /// Bumped when a CPU runs out of memory: every CPU whose cache has not
    /// flushed since flushes it on its next slow path.
    flush_requests: sync::AtomicU32,
    /// Bumped when the profile switches to FAST: every CPU prewarms its
    /// cache on its next slow path (see `prewarm`).
    prewarm_requests: sync::AtomicU32,
    checks: AtomicBool,
    /// Whether the per-CPU sections run as restartable sequences.
    restartable: AtomicBool,
    pub(crate) large_live: AtomicUsize,
    /// Allocations that bypassed every CPU cache, timed.
    pub(crate) direct_slow: SlowPaths,
    /// Most clock units one timed slow path counts (set by ACE).
    pub(crate) slow_clip: AtomicU64,
    /// The ACE engine tuning this allocator, for `ace_stats` (null: none).
    pub(crate) ace: AtomicPtr<Ace>,
    /// The out-of-memory hook, an [`OomHook<P, Pl>`] (null: none).
    oom_hook: AtomicPtr<()>,
    _platform: PhantomData<fn() -> Pl>,
}

// SAFETY: the provider is only reached under the page lock, the per-CPU
// caches under the per-CPU section contract (cpu_cache.rs), the transfer
// caches and central lists under their locks; everything else is atomic or
// set once.
unsafe impl<P: Send, Pl> Sync for Allocator<P, Pl> {}

impl<P: PageProvider + Send, Pl: Platform> Default for Allocator<P, Pl> {
    fn default() -> Self {
        Self::new()
    }
}

impl<P: PageProvider + Send, Pl: Platform> Allocator<P, Pl> {
    sync::const_but_loom! {
        /// An allocator with no memory yet; `const` so it can be a `static`.
        pub fn new() -> Self {
            Allocator {
                fast: AtomicPtr::new(ptr::null_mut()),
                rseq_fast: AtomicPtr::new(ptr::null_mut()),
                caches: AtomicPtr::new(ptr::null_mut()),
                cpus: AtomicUsize::new(0),
                map: spin::Once::new(),
                config: spin::Once::new(),
                transfer: sync::array_but_loom![TransferCache::new(); NUM_CLASSES],
                central: sync::array_but_loom![CentralFreeList::new(); NUM_CLASSES],
                class_caps: [const { AtomicU32::new(0) }; NUM_CLASSES],
                pages: SpinMutex::new(None),
                counters: PageCounters::new(),
                knobs: KnobCells {
                    cache_capacity: AtomicU32::new(Knobs::DEFAULT.cache_capacity),
                    bundle_width: AtomicU32::new(Knobs::DEFAULT.bundle_width),
                    drain_threshold: AtomicU32::new(Knobs::DEFAULT.drain_threshold),
                    release_pages: AtomicU32::new(Knobs::DEFAULT.release_pages),
                },
                profile: AtomicU8::new(Profile::Balanced.index()),
                purge_ms: AtomicU32::new(0),
                reserve_lowered: AtomicBool::new(false),
                quiet: QuietWatch::new(),
                flush_requests: sync::AtomicU32::new(0),
                prewarm_requests: sync::AtomicU32::new(0),
                checks: AtomicBool::new(false),
                restartable: AtomicBool::new(false),
                large_live: AtomicUsize::new(0),
                direct_slow: SlowPaths::new(),
                slow_clip: AtomicU64::new(u64::MAX),
                ace: AtomicPtr::new(ptr::null_mut()),
                oom_hook: AtomicPtr::new(ptr::null_mut()),
                _platform: PhantomData,
            }
        }
    }

    /* ------------------------------------------------------------------ */
    /* Fast paths                                                          */
    /* ------------------------------------------------------------------ */

    /// Allocates a block for `layout`; null when out of memory (never panics).
    #[inline(always)]
    pub fn alloc(&self, layout: Layout) -> *mut u8 {
        match size_class::for_layout(layout) {
            Some(class) => self.alloc_small(class),
            None => self.alloc_large(layout),
        }
    }

    /// [`alloc`](Self::alloc) with the block's bytes zero (C's `calloc`):
    /// cleared unless the block is a large one whose pages were never used
    /// and come from a provider whose fresh pages read as zero (then they
    /// stay untouched, and unbacked until written).
    pub fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let (p, zero) = match size_class::for_layout(layout) {
            Some(class) => (self.alloc_small(class), false),
            None => self.alloc_large_zero_known(layout),
        };
        if !p.is_null() && !zero {
            // SAFETY: a fresh block of at least `layout.size()` bytes.
            unsafe { ptr::write_bytes(p, 0, layout.size()) };
        }
        p
    }

    /// [`alloc`](Self::alloc) of `size` bytes at the alignment every
    /// class's blocks have (16, C's `malloc`'s): the class is the size's,
    /// with no layout to check.
    #[inline(always)]
    pub fn alloc_bytes(&self, size: usize) -> *mut u8 {
        match size_class::for_size(size) {
            Some(class) => self.alloc_small(class),
            None => self.alloc_large_bytes(size),
        }
    }

    /// The restartable fast path of [`alloc_bytes`](Self::alloc_bytes)
    /// alone, which makes no call (for a C library's `malloc`, which then
    /// needs no stack frame): a block from the current CPU's cache, or
    /// null, and then the caller calls `alloc_bytes`. Always null without
    /// restartable sections, in checked mode, before `init` and above
    /// [`MAX_SMALL`](size_class::MAX_SMALL).
    #[inline(always)]
    pub fn alloc_cached(&self, size: usize) -> *mut u8 {
        let caches = self.rseq_fast.load(Acquire);
        match size_class::for_size(size) {
            // SAFETY: `init` set the caches up for restartable sections.
            Some(class) if !caches.is_null() => unsafe { rseq::pop(class0(caches, class)) }.cast(),
            _ => ptr::null_mut(),
        }
    }

    #[cold]
    #[inline(never)]
    fn alloc_large_bytes(&self, size: usize) -> *mut u8 {
        match Layout::from_size_align(size, MIN_ALIGN) {
            Ok(layout) => self.alloc_large(layout),
            Err(_) => ptr::null_mut(),
        }
    }

    #[inline(always)]
    fn alloc_small(&self, class: Class) -> *mut u8 {
        // With restartable sections, one load and test reaches them
        // (`rseq_fast` is set only then, unchecked, after `init`).
        if Pl::RESTARTABLE {
            let caches = self.rseq_fast.load(Acquire);
            if !caches.is_null() {
                return self.alloc_restartable(caches, class).cast();
            }
        }
        let caches = self.fast.load(Acquire);
        if caches.is_null() {
            return self.alloc_small_checked(class);
        }
        self.alloc_from(caches, class).cast()
    }

    /// Allocation when the fast pointer is null: before `init` (null) or in
    /// checked mode (the same path, then the block is marked live).
    #[cold]
    #[inline(never)]
    fn alloc_small_checked(&self, class: Class) -> *mut u8 {
        let caches = self.caches.load(Acquire);
        if caches.is_null() {
            return ptr::null_mut();
        }
        let block = self.alloc_from(caches, class);
        if !block.is_null() {
            self.mark_live(block as usize);
        }
        block.cast()
    }

    /// Pops a block of `class` from the current CPU's cache (or a slow path).
    #[inline(always)]
    fn alloc_from(&self, caches: *mut PerCpuCache, class: Class) -> *mut Block {
        if self.is_restartable() {
            return self.alloc_restartable(caches, class);
        }
        let irq = Pl::irq_save();
        let block = match self.enter(caches) {
            Some(cache) => {
                let slot = cache.class(class);
                // SAFETY: inside this CPU's section.
                let block = match unsafe { slot.pop() } {
                    Some(block) => {
                        bump(&slot.allocs);
                        block.as_ptr()
                    }
                    None => self.refill(Section::Owned(cache), class),
                };
                self.leave(cache);
                block
            }
            None => self.alloc_direct(class),
        };
        Pl::irq_restore(irq);
        block
    }

    /// [`alloc_from`](Self::alloc_from) with restartable sections in use.
    #[inline(always)]
    fn alloc_restartable(&self, caches: *mut PerCpuCache, class: Class) -> *mut Block {
        // SAFETY: `init` set the caches up for restartable sections.
        let block = unsafe { rseq::pop(class0(caches, class)) };
        if block.is_null() {
            return match self.restartable_section(caches) {
                Some(here) => self.refill(here, class),
                None => self.alloc_direct(class),
            };
        }
        block
    }

    /// Frees a block.
    ///
    /// # Safety
    /// `ptr` came from this allocator with `layout` and is not used again.
    /// (In checked mode, violations are reported instead of corrupting.)
    #[inline(always)]
    pub unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let Some(class) = size_class::for_layout(layout) else {
            // SAFETY: forwarded caller contract.
            return unsafe { self.dealloc_large(ptr, layout) };
        };
        if Pl::RESTARTABLE {
            let caches = self.rseq_fast.load(Acquire);
            if !caches.is_null() {
                // SAFETY: forwarded caller contract; restartable sections
                // in use (`rseq_fast` is set).
                return unsafe { self.dealloc_restartable(caches, ptr.cast(), class) };
            }
        }
        let caches = self.fast.load(Acquire);
        if caches.is_null() {
            // SAFETY: forwarded caller contract.
            return unsafe { self.dealloc_small_checked(ptr, layout, class) };
        }
        // SAFETY: forwarded caller contract.
        unsafe { self.dealloc_to(caches, ptr.cast(), class) }
    }

    /// The restartable fast path of [`free`](Self::free) alone, which makes
    /// no call (for a C library's `free`): if the page map shows a slab at
    /// `ptr`, caches the block on this CPU with the class the slab names;
    /// false (nothing done) otherwise, and then the caller calls `free`.
    /// Always false without restartable sections, in checked mode and
    /// before `init`; also for a full cache and anything but a slab block.
    ///
    /// # Safety
    /// As for [`free`](Self::free).
    #[inline(always)]
    pub unsafe fn free_cached(&self, ptr: *mut u8) -> bool {
        let caches = self.rseq_fast.load(Acquire);
        if caches.is_null() {
            return false;
        }
        // SAFETY: `rseq_fast` is published after the map was set (`init`).
        let Some(class) = (unsafe { self.slab_class_at(ptr) }) else {
            return false;
        };
        // SAFETY: `init` set the caches up for restartable sections;
        // unchecked mode trusts the caller that `ptr` is a live block of
        // the slab, so of `class`.
        unsafe { rseq::push(class0(caches, class), ptr.cast()) }
    }

    /// [`free`](Self::free)'s fast path: the block onto this CPU's cache,
    /// with the class its slab names, when the fast paths are unchecked
    /// and the page map shows a slab at `ptr`; false (nothing done) else.
    ///
    /// # Safety
    /// As for [`free`](Self::free).
    #[inline(always)]
    pub(crate) unsafe fn free_to_cache(&self, ptr: *mut u8) -> bool {
        let caches = self.fast.load(Acquire);
        if caches.is_null() {
            return false;
        }
        // SAFETY: `fast` is published after the map was set (`init`).
        let Some(class) = (unsafe { self.slab_class_at(ptr) }) else {
            return false;
        };
        // SAFETY: unchecked mode trusts the caller that `ptr` is a live
        // block of the slab, so of `class`.
        unsafe { self.dealloc_to(caches, ptr.cast(), class) };
        true
    }

    /// The class of the slab the page map shows at `ptr`, if it shows one.
    ///
    /// # Safety
    /// The allocator is initialised (its map is set).
    #[inline(always)]
    unsafe fn slab_class_at(&self, ptr: *mut u8) -> Option<Class> {
        // SAFETY: the caller's contract.
        unsafe { self.map.get_unchecked() }.class_at(ptr as usize)
    }

    /// Free when the fast pointer is null: checked mode (or a pointer that
    /// cannot be ours, before `init`).
    ///
    /// # Safety
    /// As for [`dealloc`](Self::dealloc).
    #[cold]
    #[inline(never)]
    unsafe fn dealloc_small_checked(&self, ptr: *mut u8, layout: Layout, class: Class) {
        let caches = self.caches.load(Acquire);
        if !caches.is_null() && self.verify(ptr, layout, true) {
            // SAFETY: verified to be a live block of `class`.
            unsafe { self.dealloc_to(caches, ptr.cast(), class) }
        }
    }

    /// [`dealloc_to`](Self::dealloc_to) with restartable sections in use.
    ///
    /// # Safety
    /// As for [`dealloc_to`](Self::dealloc_to); `init` set `caches` up for
    /// restartable sections.
    #[inline(always)]
    unsafe fn dealloc_restartable(
        &self,
        caches: *mut PerCpuCache,
        block: *mut Block,
        class: Class,
    ) {
        // SAFETY: the caller's contract: the caches are set up for
        // restartable sections, and `block` is a block of `class`.
        if !unsafe { rseq::push(class0(caches, class), block) } {
            match self.restartable_section(caches) {
                Some(here) => self.drain(here, class, block),
                None => self.dealloc_direct(block, class),
            }
        }
    }

    /// Pushes a block of `class` onto the current CPU's cache.
    ///
    /// # Safety
    /// `block` is a live block of `class` that the caller gives up.
    #[inline(always)]
    unsafe fn dealloc_to(&self, caches: *mut PerCpuCache, block: *mut Block, class: Class) {
        if self.is_restartable() {
            // SAFETY: forwarded caller contract, with the sections in use.
            return unsafe { self.dealloc_restartable(caches, block, class) };
        }
        let irq = Pl::irq_save();
        match self.enter(caches) {
            Some(cache) => {
                let slot = cache.class(class);
                // SAFETY: inside this CPU's section; the caller hands over a
                // block of `class` that nobody uses any more.
                if unsafe { slot.push(block) } {
                    bump(&slot.frees);
                } else {
                    self.drain(Section::Owned(cache), class, block);
                }
                self.leave(cache);
            }
            None => self.dealloc_direct(block, class),
        }
        Pl::irq_restore(irq);
    }

    /// Enters the current CPU's section; `None` when the cache is busy
    /// (hosted: another thread on the same CPU) or, on hosted platforms,
    /// the CPU index is out of range (kernels promise it is not: `Platform`
    /// is an unsafe trait). Interrupts are already masked by the caller.
    #[inline(always)]
    fn enter(&self, caches: *mut PerCpuCache) -> Option<&PerCpuCache> {
        let cpu = Pl::current_cpu();
        if Pl::EXCLUSIVE_CPU {
            debug_assert!(
                cpu < self.cpus.load(Relaxed),
                "Platform::current_cpu out of range"
            );
        } else if cpu >= self.cpus.load(Relaxed) {
            return None;
        }
        // SAFETY: `caches` holds `cpus` initialised caches that live as long
        // as the allocator (published by `init`).
        let cache = unsafe { &*caches.add(cpu) };
        (Pl::EXCLUSIVE_CPU || cache.try_lock()).then_some(cache)
    }

    #[inline(always)]
    fn leave(&self, cache: &PerCpuCache) {
        if !Pl::EXCLUSIVE_CPU {
            cache.unlock();
        }
    }

    /// Whether the per-CPU sections run as restartable sequences (decided
    /// at `init`; constant false unless the platform offers them).
    #[inline(always)]
    fn is_restartable(&self) -> bool {
        Pl::RESTARTABLE && self.restartable.load(Relaxed)
    }

    /// How the per-CPU caches are entered (for `stats`).
    pub(crate) fn per_cpu_path(&self) -> crate::PerCpuPath {
        if Pl::EXCLUSIVE_CPU {
            crate::PerCpuPath::InterruptsMasked
        } else if self.is_restartable() {
            crate::PerCpuPath::Restartable
        } else {
            crate::PerCpuPath::TryLock
        }
    }

    /// The section of a restartable slow path, counting on the cache of
    /// the CPU it runs on now; `None` on a thread whose rseq area is not
    /// registered (its sections always fail: rseq.rs), which bypasses the
    /// caches.
    #[cold]
    fn restartable_section(&self, caches: *mut PerCpuCache) -> Option<Section<'_>> {
        let cpu = rseq::cpu_id()?.min(self.cpus.load(Relaxed) - 1);
        // SAFETY: `caches` holds `cpus` live caches (published by `init`).
        let seen = unsafe { &*caches.add(cpu) };
        Some(Section::Restartable { caches, seen })
    }

    /// Runs `f` on the cache of `cpu`, another CPU's, if no other thread
    /// works on it (its lock is free): on the try-lock path the lock alone
    /// keeps its threads out; with restartable sections the cache is also
    /// stopped and `cpu` fenced (rseq.rs), so none of them can commit.
    fn with_stopped<R>(
        &self,
        cpu: usize,
        cache: &PerCpuCache,
        f: impl FnOnce(Section<'_>) -> R,
    ) -> Option<R> {
        if !cache.try_lock() {
            return None;
        }
        let restartable = self.is_restartable();
        if restartable {
            // SAFETY: the lock is ours, with restartable sections in use.
            unsafe { cache.stop() };
            core::sync::atomic::fence(SeqCst);
            rseq::fence(cpu);
        }
        let result = f(Section::Owned(cache));
        if restartable {
            // SAFETY: as above.
            unsafe { cache.restart() };
        }
        cache.unlock();
        Some(result)
    }

    /// Resizes a block: in place when the new size keeps the block's class,
    /// or for large blocks when the provider can resize the run in place.
    /// Null on failure, with the old block left as it was.
    ///
    /// # Safety
    /// As for [`GlobalAlloc::realloc`].
    pub unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) else {
            return ptr::null_mut();
        };
        // Checked mode verifies before anything moves, so misuse leaves the
        // old block exactly as it was.
        if self.checks.load(Relaxed) && !self.verify(ptr, layout, false) {
            return ptr::null_mut();
        }
        let (old_class, new_class) = (
            size_class::for_layout(layout),
            size_class::for_layout(new_layout),
        );
        if old_class.is_some() && old_class == new_class {
            return ptr;
        }
        if old_class.is_none() && new_class.is_none() {
            // SAFETY: forwarded caller contract: a live large block of `layout`.
            if unsafe { self.resize_large(ptr, layout, new_layout) } {
                return ptr;
            }
        }
        let new = self.alloc(new_layout);
        if !new.is_null() {
            // SAFETY: both blocks are live and distinct; each holds at least
            // the bytes copied.
            unsafe {
                ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        new
    }

    /* ------------------------------------------------------------------ */
    /* Slow paths of small blocks                                          */
    /* ------------------------------------------------------------------ */

    /// The current CPU's cache of `class` is empty: fetch a batch. Timed
    /// (with a new slab when it takes one) for ACE's latency guard.
    #[cold]
    #[inline(never)]
    fn refill(&self, here: Section<'_>, class: Class) -> *mut Block {
        let start = Pl::now();
        here.apply_cap(class);
        let cache = here.counters();
        here.count(&cache.misses[class].misses);
        self.honour_flush_request(here);
        let mut batch = [ptr::null_mut(); MAX_BATCH];
        let want = &mut batch[..self.bundle_width(class)];
        let got = self.fetch_or_grow(class, want, Some(here));
        let block = match batch[..got].split_first() {
            Some((&block, rest)) => {
                // SAFETY: in this CPU's section (our caller's); the blocks
                // are free blocks of `class` that we own.
                let kept = unsafe { here.put(class, rest) };
                self.release_batch(class, &rest[kept..]);
                self.transfer[class].allocs.fetch_add(1, Relaxed);
                block
            }
            None => ptr::null_mut(),
        };
        let clip = self.slow_clip.load(Relaxed);
        let elapsed = Pl::now().wrapping_sub(start);
        match here {
            Section::Owned(_) => cache.slow.add_owned(elapsed, clip),
            Section::Restartable { .. } => cache.slow.add_shared(elapsed, clip),
        }
        // Once per switch to FAST, after the timing: a one-off, not the
        // latency of refills that the guard watches.
        self.honour_prewarm_request(here);
        block
    }

    /// The current CPU's cache of `class` is full: send a batch on, then
    /// cache `block`.
    #[cold]
    #[inline(never)]
    fn drain(&self, here: Section<'_>, class: Class, block: *mut Block) {
        here.apply_cap(class);
        let cache = here.counters();
        let frees = &self.transfer[class].frees;
        here.count(&cache.misses[class].drains);
        // A restartable push counts its own free.
        let push_counts = matches!(here, Section::Restartable { .. });
        if !push_counts {
            frees.fetch_add(1, Relaxed);
        }
        self.honour_flush_request(here);
        let mut batch = [ptr::null_mut(); MAX_BATCH];
        let width = self.bundle_width(class);
        // A capacity lowered far below the cache's length takes more than
        // one batch.
        // SAFETY: in this CPU's section (our caller's); `block` is a free
        // block of `class` that the caller handed over.
        while !unsafe { here.push(class, block) } {
            // SAFETY: as above.
            let n = unsafe { here.take(class, &mut batch[..width]) };
            if n == 0 {
                // Stopped by another thread for a moment: no cache.
                if push_counts {
                    frees.fetch_add(1, Relaxed);
                }
                self.release_batch(class, &[block]);
                return;
            }
            self.release_batch(class, &batch[..n]);
        }
    }

    /// Flushes this CPU's cache if another CPU ran out of memory since the
    /// last flush (see `reclaim`). Called from this CPU's slow paths,
    /// inside its section.
    fn honour_flush_request(&self, here: Section<'_>) {
        if newly_requested(&self.flush_requests, &here.counters().flushed_at) {
            self.flush_cache(here);
        }
    }

    /// Prewarms this CPU's cache if the profile switched to FAST since its
    /// last prewarm. Called from this CPU's slow paths, inside its section.
    fn honour_prewarm_request(&self, here: Section<'_>) {
        if newly_requested(&self.prewarm_requests, &here.counters().prewarmed_at) {
            self.prewarm(here);
        }
    }

    /// Gives every empty class of `cache` up to the profile's prewarm size a
    /// batch, so that the first allocations of those sizes hit. Only the
    /// cache's own CPU may call it, inside its section, or `init` before the
    /// caches are published (when no CPU can enter any). Best effort: a class
    /// the provider has no memory for stays empty.
    fn prewarm(&self, here: Section<'_>) {
        let largest = self.profile().prewarm_size();
        let mut batch = [ptr::null_mut(); MAX_BATCH];
        for class in 0..NUM_CLASSES {
            if size_class::size_of(class) > largest {
                break;
            }
            if here.looks_empty(class) {
                let n = self.fetch(class, &mut batch[..self.bundle_width(class)]);
                // SAFETY: in the cache's section (the caller's contract);
                // the blocks are free blocks of `class` that we own.
                let kept = unsafe { here.put(class, &batch[..n]) };
                self.release_batch(class, &batch[kept..n]);
            }
        }
    }

    /// Allocation without a CPU cache (cache busy or CPU out of range),
    /// timed like a refill.
    #[cold]
    fn alloc_direct(&self, class: Class) -> *mut Block {
        let start = Pl::now();
        let mut one = [ptr::null_mut()];
        self.fetch_or_grow(class, &mut one, None);
        if !one[0].is_null() {
            self.transfer[class].allocs.fetch_add(1, Relaxed);
        }
        let clip = self.slow_clip.load(Relaxed);
        self.direct_slow
            .add_shared(Pl::now().wrapping_sub(start), clip);
        one[0]
    }

    /// Free without a CPU cache: the block goes to the transfer cache.
    #[cold]
    fn dealloc_direct(&self, block: *mut Block, class: Class) {
        self.transfer[class].frees.fetch_add(1, Relaxed);
        self.release_batch(class, &[block]);
    }

    /// Blocks to move per batch for `class`: the knob's, scaled, never
    /// more than a cache of the class holds (its capacity, which the slot
    /// budget may have cut) nor than [`MAX_BATCH`].
    fn bundle_width(&self, class: Class) -> usize {
        let knob = self.knobs.bundle_width.load(Relaxed);
        let width = self.cache_capacity(knob, class);
        let held = self
            .cpu_caches()
            .first()
            .map_or(1, |c| c.class(class).cap());
        (width.min(held) as usize).clamp(1, MAX_BATCH)
    }

    /// Byte ceilings of one class's cache on one CPU and of its transfer
    /// cache: the knobs' ceiling, or the profile's per-class budget split
    /// between the caches of all CPUs and the transfer cache.
    fn class_ceilings(&self) -> (usize, usize) {
        match self.profile().class_budget() {
            None => (Knobs::MAX_BYTES, Knobs::MAX_BYTES),
            Some(budget) => (budget / 2 / self.cpus.load(Relaxed).max(1), budget / 2),
        }
    }

    /// Blocks one CPU caches of `class` for the capacity knob `knob`.
    fn cache_capacity(&self, knob: u32, class: Class) -> u32 {
        Knobs::scaled_within(knob, size_class::size_of(class), self.class_ceilings().0)
    }

    /// The capacity every CPU's cache of `class` gets: the class's own
    /// ([`set_class_capacity`](Self::set_class_capacity)), or the knob's.
    fn class_capacity(&self, class: Class) -> u32 {
        match self.class_caps[class].load(Relaxed) {
            0 => self.cache_capacity(self.knobs.cache_capacity.load(Relaxed), class),
            own => own,
        }
    }

    /// Empty slabs `class` keeps before releasing them: the
    /// `release_pages` knob in whole slabs, scaled by the profile.
    fn slab_reserve(&self, class: Class) -> usize {
        let knobs = Knobs {
            release_pages: self.knobs.release_pages.load(Relaxed),
            ..Knobs::DEFAULT
        };
        knobs.empty_slabs(size_class::slab_pages(class), self.profile())
    }

    /// Whether the profile is LEAN and committed memory is above its target.
    fn over_lean_target(&self) -> bool {
        self.profile() == Profile::Lean
            && self
                .config
                .get()
                .is_some_and(|c| self.counters.committed.load(Relaxed) > c.lean_target)
    }

    /// Fills `out` with free blocks of `class`, as far as it goes: the
    /// newest of the transfer cache, else from the central free list, else
    /// what idle CPU caches hold, else from a new slab. Returns how many; 0
    /// when out of memory. The central lock is not held across the last
    /// two: stealing fences CPUs and a new slab may call the provider, both
    /// system calls (two threads that find the class dry at once may then
    /// both add a slab; the second is used up or kept as the reserve).
    fn fetch(&self, class: Class, out: &mut [Slot]) -> usize {
        let n = self.transfer[class].with_ring::<Pl, _>(|ring| ring.take_newest(out));
        if n > 0 {
            return n;
        }
        let n = self.central[class].slabs.lock::<Pl>().take(out);
        if n > 0 {
            return n;
        }
        let n = self.steal_cached(class, out);
        if n > 0 {
            return n;
        }
        let Some(slab) = self.new_slab(class) else {
            return 0;
        };
        let mut slabs = self.central[class].slabs.lock::<Pl>();
        slabs.add_slab(slab);
        slabs.take(out)
    }

    /// [`fetch`](Self::fetch), and when memory ran out: again after a
    /// [`reclaim`](Self::reclaim) (`own`: the caller's section), then
    /// again for as long as the out-of-memory hook hands over memory.
    fn fetch_or_grow(&self, class: Class, out: &mut [Slot], own: Option<Section<'_>>) -> usize {
        let mut got = self.fetch(class, out);
        if got == 0 && self.reclaim(own) {
            got = self.fetch(class, out);
        }
        while got == 0 && self.more_memory(size_class::slab_pages(class) * PAGE_SIZE) {
            got = self.fetch(class, out);
        }
        got
    }

    /// On hosted builds, the blocks of `class` that another CPU's cache
    /// holds while no thread uses it, into `out`. A thread that moves to
    /// another CPU leaves its blocks in the cache of the one it left;
    /// without this, the class would grow by a slab whenever the cache it
    /// now uses runs dry while the other holds the surplus, and its slabs
    /// would ratchet up migration after migration. Only on the way to a new
    /// slab (rare), only from caches idle since the previous look (the
    /// first look at a cache grows the class instead), and only trying
    /// locks. Kernel CPUs' caches are their own: nothing.
    fn steal_cached(&self, class: Class, out: &mut [Slot]) -> usize {
        if Pl::EXCLUSIVE_CPU {
            return 0;
        }
        for (cpu, cache) in self.cpu_caches().iter().enumerate() {
            if !cache.idle_since_last_look(class) {
                continue;
            }
            // The caller's own cache on the try-lock path is locked (by
            // the caller): skipped.
            // SAFETY: `with_stopped` hands over the cache exclusively.
            let n = self.with_stopped(cpu, cache, |c| unsafe { c.take(class, out) });
            if let Some(n @ 1..) = n {
                return n;
            }
        }
        0
    }

    /// Hands `blocks` to the transfer cache, then returns its oldest
    /// blocks to their slabs while it holds more than the drain threshold
    /// (everything while LEAN is over its committed target). One short
    /// critical section per batch; the slabs are reached after it.
    fn release_batch(&self, class: Class, mut blocks: &[Slot]) {
        let size = size_class::size_of(class);
        let (_, transfer_bytes) = self.class_ceilings();
        let knob = self.knobs.drain_threshold.load(Relaxed);
        let threshold = if self.over_lean_target() {
            0
        } else {
            Knobs::scaled_within(knob, size, transfer_bytes) as usize
        };
        let transfer = &self.transfer[class];
        let mut oldest = [ptr::null_mut(); MAX_BATCH];
        loop {
            let n = transfer.with_ring::<Pl, _>(|ring| {
                blocks = &blocks[ring.put(blocks)..];
                let over = ring.len().saturating_sub(threshold).min(MAX_BATCH);
                ring.take_oldest(&mut oldest[..over])
            });
            if n == 0 {
                // Under the threshold, or a full ring that may not drain:
                // what did not fit goes to the slabs.
                self.return_to_slabs(class, blocks);
                return;
            }
            self.return_to_slabs(class, &oldest[..n]);
        }
    }

    /// Puts every block of `blocks` back into its slab, releasing slabs that
    /// become empty beyond the class's reserve once the central lock is
    /// released (the page layer may call the provider).
    fn return_to_slabs(&self, class: Class, blocks: &[Slot]) {
        for blocks in blocks.chunks(MAX_BATCH) {
            let mut empty = [ptr::null_mut(); MAX_BATCH];
            let mut n = 0;
            let mut slabs = self.central[class].slabs.lock::<Pl>();
            self.return_blocks(class, &mut slabs, blocks, |slab| {
                empty[n] = slab;
                n += 1;
            });
            drop(slabs);
            self.release_slabs(&empty[..n]);
        }
    }

    /// [`return_to_slabs`](Self::return_to_slabs) with the class's
    /// central list locked, handing slabs that must be released to
    /// `release` (which may hold the page lock already).
    fn return_blocks(
        &self,
        class: Class,
        slabs: &mut Slabs,
        blocks: &[Slot],
        mut release: impl FnMut(*mut Slab),
    ) {
        let map = self.map();
        let reserve = self.slab_reserve(class);
        for &block in blocks {
            let Entry::Slab { slab, .. } = map.get(block as usize) else {
                debug_assert!(false, "a cached block outside every slab");
                continue;
            };
            // SAFETY: blocks in a transfer cache or a CPU cache are out
            // blocks of slabs of the class, and `slab` is the one the page
            // map names.
            if let Some(empty) = unsafe { slabs.return_block(slab, block, reserve) } {
                release(empty);
            }
        }
    }

    /// A fresh slab of `class`, entered in the page map.
    fn new_slab(&self, class: Class) -> Option<NonNull<Slab>> {
        let mut guard = self.pages.lock();
        let pages = guard.as_mut()?;
        let n = size_class::slab_pages(class);
        let run = pages.alloc(n, PAGE_SIZE, &self.counters)?;
        let Some(slab) =
            pages.new_descriptor(Slab::new(run.as_ptr() as usize, class), &self.counters)
        else {
            // SAFETY: the run was allocated just above and never used.
            unsafe { pages.free(run, n, Pl::now(), &self.counters) };
            return None;
        };
        self.map().set(
            run.as_ptr() as usize,
            n,
            Entry::Slab {
                slab: slab.as_ptr(),
                class,
            },
        );
        Some(slab)
    }

    /// Gives empty slabs, already off their central lists, back to the
    /// page layer.
    fn release_slabs(&self, slabs: &[*mut Slab]) {
        if slabs.is_empty() {
            return;
        }
        let mut guard = self.pages.lock();
        let pages = guard.as_mut().expect("slabs exist only after init");
        for &slab in slabs {
            self.release_slab_to(pages, slab);
        }
    }

    /// [`release_slabs`](Self::release_slabs) with the page lock held.
    fn release_slab_to(&self, pages: &mut Pages<P>, slab: *mut Slab) {
        // SAFETY: the slab is a live descriptor no central list refers to any more.
        let (start, class) = unsafe { ((*slab).start, (*slab).class) };
        let n = size_class::slab_pages(class);
        self.map().set(start, n, Entry::Unused);
        self.counters.slabs_retired.fetch_add(1, Relaxed);
        // SAFETY: every block of the slab is back (it is empty), so neither
        // its pages nor its descriptor are referenced.
        unsafe {
            pages.free(
                NonNull::new_unchecked(start as *mut u8),
                n,
                Pl::now(),
                &self.counters,
            );
            pages.free_descriptor(NonNull::new_unchecked(slab));
        }
    }

    /// Returns cached memory to the provider: this CPU's cache (`own`,
    /// whose section the caller is in), on hosted builds every other cache
    /// that is not busy (kernel CPUs are asked to flush their own), every
    /// transfer cache, the reserved empty slabs, and the free page runs.
    /// Returns whether any page went back to the provider.
    fn reclaim(&self, own: Option<Section<'_>>) -> bool {
        let before = self.counters.free_calls.load(Relaxed);
        // Kernel CPUs cannot flush each other's caches: ask them to flush
        // their own on their next slow path.
        let request = self.flush_requests.fetch_add(1, Relaxed) + 1;
        if let Some(here) = own {
            here.counters().flushed_at.store(request, Relaxed);
            self.flush_cache(here);
        }
        if !Pl::EXCLUSIVE_CPU {
            for (cpu, cache) in self.cpu_caches().iter().enumerate() {
                self.with_stopped(cpu, cache, |c| self.flush_cache(c));
            }
        }
        let mut batch = [ptr::null_mut(); MAX_BATCH];
        for class in 0..NUM_CLASSES {
            loop {
                let n =
                    self.transfer[class].with_ring::<Pl, _>(|ring| ring.take_oldest(&mut batch));
                if n == 0 {
                    break;
                }
                self.return_to_slabs(class, &batch[..n]);
            }
            loop {
                let (mut empty, mut n) = ([ptr::null_mut(); MAX_BATCH], 0);
                let mut slabs = self.central[class].slabs.lock::<Pl>();
                while n < MAX_BATCH
                    && let Some(slab) = slabs.pop_empty_slab()
                {
                    empty[n] = slab;
                    n += 1;
                }
                drop(slabs);
                if n == 0 {
                    break;
                }
                self.release_slabs(&empty[..n]);
            }
        }
        if let Some(pages) = self.pages.lock().as_mut() {
            pages.release_free(&self.counters);
        }
        self.counters.free_calls.load(Relaxed) != before
    }

    /// Moves every block of the cache of `here` to the transfer caches.
    fn flush_cache(&self, here: Section<'_>) {
        let mut batch = [ptr::null_mut(); MAX_BATCH];
        for class in 0..NUM_CLASSES {
            loop {
                // SAFETY: the caller is in the cache's section.
                let n = unsafe { here.take(class, &mut batch) };
                if n == 0 {
                    break;
                }
                self.release_batch(class, &batch[..n]);
            }
        }
    }

    /* ------------------------------------------------------------------ */
    /* Large blocks: runs straight from the page layer                     */
    /* ------------------------------------------------------------------ */

    fn alloc_large(&self, layout: Layout) -> *mut u8 {
        self.alloc_large_zero_known(layout).0
    }

    /// A large block, and whether it reads as zero (its pages never used:
    /// [`Pages::alloc_zero_known`]).
    fn alloc_large_zero_known(&self, layout: Layout) -> (*mut u8, bool) {
        if self.caches.load(Acquire).is_null() {
            return (ptr::null_mut(), false);
        }
        let pages = large_pages(layout);
        let align = layout.align().max(PAGE_SIZE);
        let irq = Pl::irq_save();
        let mut run = self.large_run(pages, align);
        if run.is_none() && self.reclaim_here() {
            run = self.large_run(pages, align);
        }
        while run.is_none() && self.more_memory(pages * PAGE_SIZE + (align - PAGE_SIZE)) {
            run = self.large_run(pages, align);
        }
        Pl::irq_restore(irq);
        run.map_or((ptr::null_mut(), false), |(run, zero)| (run.as_ptr(), zero))
    }

    fn large_run(&self, pages: usize, align: usize) -> Option<(NonNull<u8>, bool)> {
        let mut guard = self.pages.lock();
        let (run, zero) = guard
            .as_mut()?
            .alloc_zero_known(pages, align, &self.counters)?;
        self.map()
            .set(run.as_ptr() as usize, 1, Entry::Large { pages });
        self.large_live.fetch_add(pages * PAGE_SIZE, Relaxed);
        self.counters.large_allocs.fetch_add(1, Relaxed);
        Some((run, zero))
    }

    /// [`reclaim`](Self::reclaim) from outside any per-CPU section.
    fn reclaim_here(&self) -> bool {
        let caches = self.caches.load(Acquire);
        if self.is_restartable() {
            return self.reclaim(self.restartable_section(caches));
        }
        match self.enter(caches) {
            Some(cache) => {
                let released = self.reclaim(Some(Section::Owned(cache)));
                self.leave(cache);
                released
            }
            None => self.reclaim(None),
        }
    }

    /// # Safety
    /// As for [`dealloc`](Self::dealloc).
    unsafe fn dealloc_large(&self, ptr: *mut u8, layout: Layout) {
        if self.checks.load(Relaxed) && !self.verify(ptr, layout, true) {
            return;
        }
        let pages = large_pages(layout);
        let irq = Pl::irq_save();
        if let Some(p) = self.pages.lock().as_mut() {
            self.map().set(ptr as usize, 1, Entry::FreedLarge);
            self.large_live.fetch_sub(pages * PAGE_SIZE, Relaxed);
            self.counters.large_frees.fetch_add(1, Relaxed);
            // SAFETY: the caller hands back a live large block of `pages` pages.
            unsafe {
                p.free(
                    NonNull::new_unchecked(ptr),
                    pages,
                    Pl::now(),
                    &self.counters,
                )
            };
        }
        Pl::irq_restore(irq);
    }

    /// Resizes a large block in place if the provider can.
    ///
    /// # Safety
    /// `ptr` is a live large block allocated with `old`.
    unsafe fn resize_large(&self, ptr: *mut u8, old: Layout, new: Layout) -> bool {
        let (old_pages, new_pages) = (large_pages(old), large_pages(new));
        if old_pages == new_pages {
            return true;
        }
        let irq = Pl::irq_save();
        let mut guard = self.pages.lock();
        let Some(p) = guard.as_mut() else {
            drop(guard);
            Pl::irq_restore(irq);
            return false;
        };
        // SAFETY: forwarded caller contract: a live large run of `old_pages`.
        let done = unsafe {
            p.resize(
                NonNull::new_unchecked(ptr),
                old_pages,
                new_pages,
                Pl::now(),
                &self.counters,
            )
        };
        if done {
            self.map()
                .set(ptr as usize, 1, Entry::Large { pages: new_pages });
            self.large_live.fetch_add(new_pages * PAGE_SIZE, Relaxed);
            self.large_live.fetch_sub(old_pages * PAGE_SIZE, Relaxed);
        }
        drop(guard);
        Pl::irq_restore(irq);
        done
    }

    /* ------------------------------------------------------------------ */
    /* Set-up and control                                                  */
    /* ------------------------------------------------------------------ */

    /// Hands the allocator its memory and configuration. Call once, before
    /// the first allocation (earlier allocations return null).
    pub fn init(&self, provider: P, config: Config) -> Result<(), InitError> {
        let mut guard = self.pages.lock();
        if guard.is_some() {
            return Err(InitError::AlreadyInitialized);
        }
        let c = &self.counters;
        let span = provider.span();
        let cpus = Pl::cpu_count().max(1);
        let (mut pages, map_memory) =
            Pages::new(provider, config.decommit, PageMap::bytes_for(span), c)
                .ok_or(InitError::OutOfMemory)?;
        // SAFETY: zeroed memory of the right size, kept for the map forever.
        let map = unsafe { PageMap::new(span, map_memory.as_ptr()) };

        // The caches, then their slot arrays and the transfer caches', in
        // one run (the arrays get a thirty-second of the span at most).
        let budget = SlotBudget::new(&config.knobs, cpus, span.len / 32);
        let caches_bytes = cpus * size_of::<PerCpuCache>();
        let run_pages = (caches_bytes + budget.bytes(cpus)).div_ceil(PAGE_SIZE);
        let caches = pages
            .alloc(run_pages, PAGE_SIZE, c)
            .ok_or(InitError::OutOfMemory)?
            .as_ptr();
        // SAFETY: the slots start right after the caches, inside the run.
        let mut slots = unsafe { caches.add(caches_bytes) }.cast::<Slot>();
        let caches = caches.cast::<PerCpuCache>();
        self.profile.store(config.profile.index(), Relaxed);
        self.cpus.store(cpus, Relaxed);
        for cpu in 0..cpus {
            let capacity = |class| self.cache_capacity(config.knobs.cache_capacity, class);
            // SAFETY: the run holds `cpus` page-aligned (so 64-aligned)
            // caches, and the slot run each CPU's `per_cpu` slots then the
            // transfer caches'; each part is used by its owner alone.
            unsafe {
                caches
                    .add(cpu)
                    .write(PerCpuCache::new(slots, &budget.cache, capacity));
                slots = slots.add(budget.per_cpu());
            }
        }
        for (class, transfer) in self.transfer.iter().enumerate() {
            let n = budget.transfer[class] as usize;
            // SAFETY: as above: these slots follow the CPUs'.
            unsafe {
                transfer.ring.lock::<Pl>().attach(slots, n);
                slots = slots.add(n);
            }
        }
        if !pages.grow_descriptors(c) {
            return Err(InitError::OutOfMemory);
        }

        self.map.call_once(|| map);
        self.config.call_once(|| config);
        self.set_purge_delay_ms(
            config
                .purge_delay_ms
                .unwrap_or(config.profile.purge_delay_ms()),
        );
        self.set_quiet_delay(config.profile);
        self.checks.store(config.checks, Relaxed);
        let restartable = Pl::RESTARTABLE && rseq::init(cpus, config.restartable);
        self.restartable.store(restartable, Relaxed);
        *guard = Some(pages);
        drop(guard);
        // The knob values (the caches' capacities are already set from them).
        self.set_knobs(config.knobs);
        // No CPU can enter a cache before `caches` is published, so each
        // may be filled here, whatever the platform.
        for cpu in 0..cpus {
            // SAFETY: initialised above; unpublished, so unshared.
            self.prewarm(Section::Owned(unsafe { &*caches.add(cpu) }));
        }
        self.caches.store(caches, Release);
        if !config.checks {
            self.fast.store(caches, Release);
            if restartable {
                self.rseq_fast.store(caches, Release);
            }
        }
        Ok(())
    }

    /// Hands the allocator more memory: `[start, start + size)`, trimmed
    /// inward to whole pages, joins its provider and serves allocations
    /// from then on; returns the bytes taken. For a kernel that finds
    /// usable memory after `init` (the rest of its memory map), or hands
    /// some over from the [out-of-memory hook](Self::set_oom_hook). A
    /// [`RegionProvider`](crate::RegionProvider) takes memory inside the
    /// span it was made with ([`with_span`](crate::RegionProvider::with_span));
    /// other providers refuse ([`AddRegionError::Unsupported`]).
    ///
    /// Waits for the page lock: call it from ordinary kernel code or from
    /// the hook, never from an interrupt handler that may have interrupted
    /// the allocator.
    ///
    /// # Safety
    /// The memory is valid, writable and used by nothing else for the
    /// allocator's lifetime.
    pub unsafe fn add_region(&self, start: *mut u8, size: usize) -> Result<usize, AddRegionError> {
        let irq = Pl::irq_save();
        let result = match self.pages.lock().as_mut() {
            // SAFETY: forwarded caller contract.
            Some(pages) => unsafe { pages.add_memory(start, size) },
            None => Err(AddRegionError::NotInitialized),
        };
        Pl::irq_restore(irq);
        result
    }

    /// Sets the out-of-memory hook (`None`: none, the default): when the
    /// provider has no run for an allocation, even after the allocator gave
    /// back what it caches, the hook is called with the bytes of the run
    /// needed (a slab for a small block; a large block's pages, plus any
    /// alignment beyond a page). If it returns `true`, having handed memory
    /// over (with [`add_region`](Self::add_region), or to the provider's
    /// own source, such as a kernel's frame allocator), the allocation tries
    /// again, and calls the hook again if it still fails; if it returns
    /// `false`, the allocation returns null.
    ///
    /// The hook runs with no page, central-list or transfer-cache lock
    /// held, so it may call `add_region` and read [`stats`](Self::stats);
    /// on kernels it runs with interrupts masked, inside the current CPU's
    /// cache section. It must not allocate or free through this allocator
    /// (the section it runs in is the one that would serve that), and it
    /// must return `false` once it has nothing more to give, or the
    /// allocation keeps asking.
    pub fn set_oom_hook(&self, hook: Option<OomHook<P, Pl>>) {
        let raw = hook.map_or(ptr::null_mut(), |hook| hook as *mut ());
        self.oom_hook.store(raw, Release);
    }

    /// Asks the out-of-memory hook for memory for a run of `bytes`;
    /// returns whether to try again.
    #[cold]
    fn more_memory(&self, bytes: usize) -> bool {
        let raw = self.oom_hook.load(Acquire);
        if raw.is_null() {
            return false;
        }
        // SAFETY: only `set_oom_hook` stores a non-null value here, and
        // only an `OomHook<P, Pl>` function pointer cast to a raw pointer.
        let hook = unsafe { core::mem::transmute::<*mut (), OomHook<P, Pl>>(raw) };
        hook(self, bytes)
    }

    /// Whether [`init`](Self::init) has succeeded.
    pub fn is_initialized(&self) -> bool {
        !self.caches.load(Acquire).is_null()
    }

    /// The configuration given to `init`.
    pub fn config(&self) -> Option<&Config> {
        self.config.get()
    }

    /// The current knob values.
    pub fn knobs(&self) -> Knobs {
        Knobs {
            cache_capacity: self.knobs.cache_capacity.load(Relaxed),
            bundle_width: self.knobs.bundle_width.load(Relaxed),
            drain_threshold: self.knobs.drain_threshold.load(Relaxed),
            release_pages: self.knobs.release_pages.load(Relaxed),
        }
    }

    /// Changes the knobs; safe while other CPUs allocate (they pick the new
    /// values up on their next slow path of each class, capacities too).
    /// Each is scaled down per class to the profile's ceilings.
    pub fn set_knobs(&self, knobs: Knobs) {
        self.knobs
            .cache_capacity
            .store(knobs.cache_capacity, Relaxed);
        self.knobs.bundle_width.store(knobs.bundle_width, Relaxed);
        self.knobs
            .drain_threshold
            .store(knobs.drain_threshold, Relaxed);
        self.knobs.release_pages.store(knobs.release_pages, Relaxed);
        self.reserve_lowered.store(true, Relaxed);
        for class in 0..NUM_CLASSES {
            self.apply_class_capacity(class, true);
        }
    }

    /// Sets the capacity of every CPU's cache of `class` (in blocks, at
    /// least 1, at most the slots the class was given at `init`), apart
    /// from the capacity knob; 0 goes back to the knob's. Safe while other
    /// CPUs allocate: they apply it on their next slow path of the class.
    pub fn set_class_capacity(&self, class: Class, capacity: u32) {
        self.class_caps[class].store(capacity, Relaxed);
        self.apply_class_capacity(class, true);
    }

    /// [`set_class_capacity`](Self::set_class_capacity) for a timer tick:
    /// with restartable sections, where the capacity is applied under each
    /// cache's lock, the locks are only tried; false if a cache was busy
    /// (call again later).
    pub(crate) fn try_set_class_capacity(&self, class: Class, capacity: u32) -> bool {
        self.class_caps[class].store(capacity, Relaxed);
        self.apply_class_capacity(class, false)
    }

    /// The capacity each CPU's cache of `class` has, and the most it can be
    /// given (its slots); (0, 0) before `init`.
    pub(crate) fn class_capacity_range(&self, class: Class) -> (u32, u32) {
        self.cpu_caches().first().map_or((0, 0), |c| {
            let slots = c.class(class).slots();
            (self.class_capacity(class).min(slots), slots)
        })
    }

    /// Allocations that found `class`'s cache empty plus frees that found
    /// it full, on every CPU, since `init`.
    pub(crate) fn class_pressure(&self, class: Class) -> u64 {
        let cold = self.cpu_caches().iter().map(|c| &c.misses[class]);
        cold.map(|m| m.misses.load(Relaxed) + m.drains.load(Relaxed))
            .sum()
    }

    /// Gives every cache of `class` the capacity in force. With restartable
    /// sections it is applied under each cache's lock: waited for if
    /// `wait`, else only tried; false if a cache was busy.
    fn apply_class_capacity(&self, class: Class, wait: bool) -> bool {
        let capacity = self.class_capacity(class);
        let mut applied = true;
        for cache in self.cpu_caches() {
            let slot = cache.class(class);
            slot.set_cap(capacity);
            if !self.is_restartable() {
                // The owner applies it on its next slow path of the class.
                continue;
            }
            // No owner thread: apply it now, under the cache's lock (a
            // stopped cache stays stopped: whoever stopped it restarts it
            // with the new capacity).
            let locked = if wait {
                let mut spins = 0;
                while !cache.try_lock() {
                    Pl::lock_wait(spins);
                    spins += 1;
                }
                true
            } else {
                cache.try_lock()
            };
            if !locked {
                applied = false;
                continue;
            }
            // SAFETY: the lock is ours, with restartable sections in use.
            unsafe { slot.apply_cap() };
            cache.unlock();
        }
        applied
    }

    /// The current profile.
    pub fn profile(&self) -> Profile {
        Profile::from_index(self.profile.load(Relaxed))
    }

    /// Switches the profile; safe while other CPUs allocate. The empty-slab
    /// reserve and the per-class budgets apply from each CPU's next slow
    /// path (cache capacities at once), the profile's purge delay at once
    /// (unless the `Config` fixed one). Empty slabs beyond a
    /// lowered reserve leave on the next [`scavenge`](Self::scavenge) or
    /// [`trim`](Self::trim). Switching to FAST asks every CPU to prewarm its
    /// cache on its next slow path ([`Profile::prewarm_size`]).
    pub fn set_profile(&self, profile: Profile) {
        let old = Profile::from_index(self.profile.swap(profile.index(), Relaxed));
        if profile.prewarm_size() > old.prewarm_size() {
            self.prewarm_requests.fetch_add(1, Relaxed);
        }
        if !self.is_initialized() {
            return;
        }
        self.set_knobs(self.knobs());
        self.set_quiet_delay(profile);
        if let Some(config) = self.config.get()
            && config.purge_delay_ms.is_none()
        {
            self.set_purge_delay_ms(profile.purge_delay_ms());
        }
    }

    /// Gives `maintain` `profile`'s quiet delay ([`Profile::quiet_ms`]).
    fn set_quiet_delay(&self, profile: Profile) {
        let hz = self
            .config
            .get()
            .map_or(Config::DEFAULT.clock_hz, |c| c.clock_hz);
        let delay = profile
            .quiet_ms()
            .map_or(NEVER_QUIET, |ms| ms_to_ticks(ms, hz));
        self.quiet.delay.store(delay, Relaxed);
    }

    /// How long (ms) a free page run stays committed before it is purged.
    pub fn purge_delay_ms(&self) -> u32 {
        self.purge_ms.load(Relaxed)
    }

    /// Sets the purge delay (ms): free runs that stayed unused this long are
    /// decommitted, by [`maintain`](Self::maintain) and on the page layer's
    /// slow paths. A plain knob, safe at any time (ACE drives it); runs
    /// already free are judged by the new delay from now on. Converted to
    /// clock units with [`Config::clock_hz`].
    pub fn set_purge_delay_ms(&self, ms: u32) {
        let hz = self
            .config
            .get()
            .map_or(Config::DEFAULT.clock_hz, |c| c.clock_hz);
        self.purge_ms.store(ms, Relaxed);
        self.counters
            .purge_delay
            .store(ms_to_ticks(ms, hz), Relaxed);
    }

    /// Decommits idle memory, a bounded amount at a time: first the empty
    /// slabs that classes keep beyond the profile's reserve (after it was
    /// lowered), then up to `max_pages` pages of free runs that stayed
    /// unused since the previous call, whatever the purge delay. Stops early once [`Platform::now`]
    /// reaches `deadline` (`u64::MAX`: no deadline), checked before each
    /// unit of work (one slab released, one run decommitted), so at most
    /// the unit under way when the deadline passes finishes after it.
    /// Returns the pages decommitted.
    ///
    /// Fit for a timer tick, interrupt context included: it allocates
    /// nothing, only *tries* locks (when the page lock is busy it does
    /// nothing and returns 0; a busy central list is skipped), and its work is
    /// bounded by `max_pages`, the number of classes and `deadline`. On
    /// kernels the provider's decommit flushes the TLB, which must then be
    /// callable with interrupts masked.
    pub fn scavenge(&self, max_pages: usize, deadline: u64) -> usize {
        let in_time = || Pl::now() < deadline;
        self.try_with_pages(|pages| {
            self.release_lowered_reserves(pages, &in_time);
            pages.purge_idle(max_pages, Pl::now(), in_time, &self.counters)
        })
    }

    /// Housekeeping, bounded by `deadline` ([`Platform::now`] units;
    /// `u64::MAX`: none): returns what idle CPU caches hold
    /// ([`flush_idle_caches`](Self::flush_idle_caches)), releases empty
    /// slabs beyond the classes' reserves, and purges the free page runs
    /// that stayed unused for the purge delay
    /// ([`set_purge_delay_ms`](Self::set_purge_delay_ms)), oldest first, in
    /// steps of at most 16 MiB. Returns the pages purged.
    ///
    /// Call it from a timer tick (every CPU's, on kernels: each CPU flushes
    /// its own cache), with or without ACE. Fit for interrupt context: it
    /// allocates nothing, only *tries* locks (a busy page lock or depot is
    /// skipped until the next call), and checks the deadline before each
    /// unit of work (one class flushed, one slab released, one purge step),
    /// so at most the unit under way finishes after it. On kernels the
    /// provider's decommit flushes the TLB, which must then be callable
    /// with interrupts masked. Hosted programs that never call it still
    /// return memory: the page layer's slow paths purge due runs on the way.
    pub fn maintain(&self, deadline: u64) -> usize {
        // An asked-for release is one pass (a controller asks again while
        // it still sees idle memory).
        if self.quiet.asked.swap(false, Relaxed) || self.is_quiet() {
            return self.release_while_quiet(deadline);
        }
        let in_time = || Pl::now() < deadline;
        let delay = self.counters.purge_delay.load(Relaxed);
        self.flush_idle(deadline, delay);
        // Cheap when there is nothing to do (every tick of every CPU):
        // two loads, no lock.
        let c = &self.counters;
        let purge_due = c.retained.load(Relaxed) > 0
            && Pl::now().wrapping_sub(c.oldest_dirty.load(Relaxed)) >= delay;
        let reserve = self.reserve_lowered.load(Relaxed);
        if !purge_due && !reserve {
            return 0;
        }
        self.try_with_pages(|pages| {
            self.release_lowered_reserves(pages, &in_time);
            pages.purge(Pl::now(), usize::MAX, in_time, &self.counters)
        })
    }

    /// Asks the next [`maintain`](Self::maintain) for one pass of a quiet
    /// spell's release (idle caches and transfer caches to their slabs,
    /// empty slabs to the pages, every free run purged) whatever the
    /// profile's quiet delay, FAST's none included: for a controller that
    /// saw the allocator idle (ACE's quiet spells, which ask again each
    /// quiet interval while idle memory is left). A plain store, fit for a
    /// timer tick; the work is `maintain`'s, within its deadline.
    pub fn request_release(&self) {
        self.quiet.asked.store(true, Relaxed);
    }

    /// Whether the allocator served no allocation and no free for the
    /// profile's quiet delay ([`Profile::quiet_ms`]) and still holds
    /// something to release. Counting the operations reads every CPU's
    /// counters, so it is done at most twice a quiet delay, by whichever
    /// CPU's `maintain` comes first; the other calls read two atomics.
    fn is_quiet(&self) -> bool {
        let q = &self.quiet;
        let delay = q.delay.load(Relaxed);
        if delay == NEVER_QUIET || !self.is_initialized() {
            return false;
        }
        let now = Pl::now();
        let checked = q.checked_at.load(Relaxed);
        if now.wrapping_sub(checked) >= delay / 2
            && q.checked_at
                .compare_exchange(checked, now, Relaxed, Relaxed)
                .is_ok()
        {
            let ops = self.operations();
            if q.ops.swap(ops, Relaxed) != ops {
                q.active_at.store(now, Relaxed);
                q.released.store(false, Relaxed);
                return false;
            }
        }
        !q.released.load(Relaxed) && now.wrapping_sub(q.active_at.load(Relaxed)) >= delay
    }

    /// Allocations and frees served since `init`, small and large (the
    /// housekeeping's own moves are not counted).
    fn operations(&self) -> u64 {
        let shared: u64 = (self.transfer.iter())
            .map(|t| t.allocs.load(Relaxed) + t.frees.load(Relaxed))
            .sum();
        let cached: u64 = (self.cpu_caches().iter().flat_map(|c| c.classes.iter()))
            .map(|slot| slot.allocs.load(Relaxed) + slot.frees.load(Relaxed))
            .sum();
        let c = &self.counters;
        shared + cached + c.large_allocs.load(Relaxed) + c.large_frees.load(Relaxed)
    }

    /// One pass of a quiet spell's release, until `deadline`: the idle CPU
    /// caches and every transfer cache go back to their slabs, every empty
    /// slab (the reserves too) to the page layer, and every dirty run is
    /// purged. Repeated by each `maintain` of the spell until a pass finds
    /// everything released (busy locks are only tried, and skipped).
    /// Returns the pages purged.
    fn release_while_quiet(&self, deadline: u64) -> usize {
        let in_time = || Pl::now() < deadline;
        let flushed = self.flush_idle(deadline, 0);
        let mut all = true;
        let purged = self.try_with_pages(|pages| {
            let mut batch = [ptr::null_mut(); MAX_BATCH];
            for (class, transfer) in self.transfer.iter().enumerate() {
                if transfer.backlog_hint.load(Relaxed) == 0 {
                    continue;
                }
                let (Some(mut ring), Some(mut slabs)) = (
                    transfer.ring.try_lock(),
                    self.central[class].slabs.try_lock(),
                ) else {
                    all = false;
                    continue;
                };
                loop {
                    let n = ring.take_oldest(&mut batch);
                    if n == 0 || !in_time() {
                        break;
                    }
                    self.return_blocks(class, &mut slabs, &batch[..n], |slab| {
                        self.release_slab_to(pages, slab)
                    });
                }
                transfer.publish(&ring);
            }
            all &= self.release_empty_slabs(pages, &in_time, |_| 0);
            let purged = pages.purge_all(in_time, &self.counters);
            all &= self.counters.retained.load(Relaxed) == 0;
            purged
        });
        let cached = self
            .cpu_caches()
            .iter()
            .any(|c| c.classes.iter().any(|s| s.len_hint() > 0));
        if all && flushed == 0 && !cached && in_time() {
            self.quiet.released.store(true, Relaxed);
        }
        purged
    }

    /// [`release_excess_empty_slabs`](Self::release_excess_empty_slabs)
    /// only when a reserve was lowered since every class was last seen to
    /// the end: otherwise no class holds an empty slab beyond its reserve
    /// (a slab that empties beyond it is released at once), and the tick's
    /// `maintain` and ACE's `scavenge` need not try every central list.
    fn release_lowered_reserves(&self, pages: &mut Pages<P>, in_time: &impl Fn() -> bool) {
        if self.reserve_lowered.load(Relaxed) && self.release_excess_empty_slabs(pages, in_time) {
            self.reserve_lowered.store(false, Relaxed);
        }
    }

    /// Releases the empty slabs that classes keep beyond their reserve
    /// (after it was lowered), while `in_time`; returns whether every class
    /// was seen to the end. Page lock (held), then central-list locks: the
    /// reverse of the usual order, which is safe because they are only tried.
    fn release_excess_empty_slabs(
        &self,
        pages: &mut Pages<P>,
        in_time: &impl Fn() -> bool,
    ) -> bool {
        self.release_empty_slabs(pages, in_time, |class| self.slab_reserve(class))
    }

    /// Releases the empty slabs each class keeps beyond `reserve(class)`,
    /// while `in_time`; returns whether every class was seen to the end.
    /// Lock order as for `release_excess_empty_slabs`.
    fn release_empty_slabs(
        &self,
        pages: &mut Pages<P>,
        in_time: &impl Fn() -> bool,
        reserve: impl Fn(Class) -> usize,
    ) -> bool {
        let mut all = true;
        for (class, central) in self.central.iter().enumerate() {
            let Some(mut d) = central.slabs.try_lock() else {
                all = false;
                continue;
            };
            let reserve = reserve(class);
            while d.empty_slabs > reserve {
                if !in_time() {
                    return false;
                }
                let Some(empty) = d.pop_empty_slab() else {
                    break;
                };
                self.release_slab_to(pages, empty);
            }
        }
        all
    }

    /// Returns the blocks cached by CPUs that did no allocator work since
    /// the previous call straight to their slabs, so that a CPU which went
    /// quiet does not keep memory forever (nothing else empties its cache:
    /// its own slow paths no longer run). Kernels check the current CPU's
    /// cache (call it from every CPU's timer tick); hosted builds check every
    /// cache whose lock is free. Returns the blocks returned.
    ///
    /// Fit for a timer tick, interrupt context included: it allocates
    /// nothing and only *tries* locks (page lock, then central lists, as
    /// [`scavenge`](Self::scavenge) does), and stops once `Platform::now`
    /// reaches `deadline` (`u64::MAX`: none), so at most the class under way
    /// (its slabs that empty, each a decommit in LEAN) finishes after it. A
    /// cache left part-flushed stays idle and is finished at the next call.
    pub fn flush_idle_caches(&self, deadline: u64) -> u64 {
        self.flush_idle(deadline, 0)
    }

    /// [`flush_idle_caches`](Self::flush_idle_caches) for the caches not
    /// checked within the last `interval` clock units (`maintain` checks
    /// each at most once a purge delay, however often it runs: idle means
    /// idle for that long).
    fn flush_idle(&self, deadline: u64, interval: u64) -> u64 {
        let now = Pl::now();
        if now >= deadline {
            return 0;
        }
        let due = |cache: &PerCpuCache| {
            let checked = cache.idle_check_at.load(Relaxed);
            if now.wrapping_sub(checked) < interval {
                return false;
            }
            cache.idle_check_at.store(now, Relaxed);
            true
        };
        let caches = self.cpu_caches();
        if Pl::EXCLUSIVE_CPU {
            // Interrupts masked: this CPU's section is ours.
            let irq = Pl::irq_save();
            let moved = match caches.get(Pl::current_cpu()) {
                Some(own) if due(own) && self.went_idle(own) => self.try_with_pages(|pages| {
                    self.flush_to_slabs(Section::Owned(own), pages, deadline)
                }),
                _ => 0,
            };
            Pl::irq_restore(irq);
            return moved;
        }
        if !caches
            .iter()
            .any(|cache| now.wrapping_sub(cache.idle_check_at.load(Relaxed)) >= interval)
        {
            return 0;
        }
        self.try_with_pages(|pages| {
            let mut returned = 0;
            for (cpu, cache) in caches.iter().enumerate() {
                if Pl::now() >= deadline {
                    break;
                }
                if due(cache) && self.went_idle(cache) {
                    let flushed =
                        self.with_stopped(cpu, cache, |c| self.flush_to_slabs(c, pages, deadline));
                    returned += flushed.unwrap_or(0);
                }
            }
            returned
        })
    }

    /// Runs `f` with the page layer, interrupts masked, if the allocator is
    /// initialised and the page lock is free; otherwise nothing (zero). For
    /// the tick's calls, which must never wait.
    fn try_with_pages<R: Default>(&self, f: impl FnOnce(&mut Pages<P>) -> R) -> R {
        if !self.is_initialized() {
            return R::default();
        }
        let irq = Pl::irq_save();
        let result = match self.pages.try_lock() {
            Some(mut guard) => guard.as_mut().map_or_else(R::default, f),
            None => R::default(),
        };
        Pl::irq_restore(irq);
        result
    }

    /// Whether `cache` served nothing since the previous check and still
    /// holds blocks (then the tick flushes it).
    fn went_idle(&self, cache: &PerCpuCache) -> bool {
        let ops: u64 = (cache.classes.iter().zip(&cache.misses))
            .map(|(slot, cold)| {
                slot.allocs.load(Relaxed)
                    + slot.frees.load(Relaxed)
                    + cold.misses.load(Relaxed)
                    + cold.drains.load(Relaxed)
            })
            .sum();
        cache.ops_seen.swap(ops, Relaxed) == ops && cache.classes.iter().any(|c| c.len_hint() > 0)
    }

    /// Moves every block of the cache of `here` straight to its slabs (the
    /// page lock held: `pages`), until `deadline`; returns how many moved.
    fn flush_to_slabs(&self, here: Section<'_>, pages: &mut Pages<P>, deadline: u64) -> u64 {
        let mut moved = 0;
        let mut batch = [ptr::null_mut(); MAX_BATCH];
        for (class, slot) in here.counters().classes.iter().enumerate() {
            if slot.len_hint() == 0 {
                continue;
            }
            if Pl::now() >= deadline {
                break;
            }
            let Some(mut slabs) = self.central[class].slabs.try_lock() else {
                continue;
            };
            loop {
                // SAFETY: the caller is in the cache's section.
                let n = unsafe { here.take(class, &mut batch) };
                if n == 0 {
                    break;
                }
                moved += n as u64;
                self.return_blocks(class, &mut slabs, &batch[..n], |slab| {
                    self.release_slab_to(pages, slab)
                });
            }
        }
        moved
    }

    /// Returns cached and empty memory to the provider: the current CPU's
    /// cache (on hosted builds every idle cache), the transfer caches'
    /// backlogs and every empty slab. Blocks still cached by other CPUs of a kernel stay
    /// there; each CPU trims its own.
    pub fn trim(&self) {
        if self.is_initialized() {
            let irq = Pl::irq_save();
            self.reclaim_here();
            Pl::irq_restore(irq);
        }
    }

    /// Takes every lock the allocator has, in lock order (each CPU's cache
    /// on hosted builds, the transfer caches and central lists, the page lock) and keeps them until
    /// [`unlock_all`](Self::unlock_all), waiting for each. For `fork`
    /// (`pthread_atfork`'s prepare handler): the child then starts with no
    /// lock held by a thread it does not have. No-op before `init`.
    pub fn lock_all(&self) {
        if !self.is_initialized() {
            return;
        }
        if !Pl::EXCLUSIVE_CPU {
            for cache in self.cpu_caches() {
                while !cache.try_lock() {
                    core::hint::spin_loop();
                }
            }
        }
        for transfer in &self.transfer {
            core::mem::forget(transfer.ring.lock::<Pl>());
        }
        for central in &self.central {
            core::mem::forget(central.slabs.lock::<Pl>());
        }
        core::mem::forget(self.pages.lock());
    }

    /// Releases what [`lock_all`](Self::lock_all) took (`pthread_atfork`'s
    /// parent and child handlers).
    ///
    /// # Safety
    /// The calling thread (or, in a forked child, its parent thread)
    /// called `lock_all` and has not yet called `unlock_all` since.
    pub unsafe fn unlock_all(&self) {
        if !self.is_initialized() {
            return;
        }
        // SAFETY: `lock_all` took these locks and forgot their guards; the
        // caller's contract says they are still held for us.
        unsafe {
            self.pages.force_unlock();
            for transfer in &self.transfer {
                transfer.ring.force_unlock();
            }
            for central in &self.central {
                central.slabs.force_unlock();
            }
        }
        if !Pl::EXCLUSIVE_CPU {
            for cache in self.cpu_caches() {
                cache.unlock();
            }
        }
    }

    /// Whether checked mode is on.
    pub(crate) fn checks_on(&self) -> bool {
        self.checks.load(Relaxed)
    }

    /// Runs `f` with the provider, under the page lock (for statistics that
    /// only the provider knows, such as a region's free bytes).
    pub fn with_provider<R>(&self, f: impl FnOnce(&P) -> R) -> Option<R> {
        let irq = Pl::irq_save();
        let result = self.pages.lock().as_ref().map(|p| f(p.provider()));
        Pl::irq_restore(irq);
        result
    }

    pub(crate) fn map(&self) -> &PageMap {
        self.map.get().expect("the page map exists after init")
    }

    /// What the page map shows at `addr` (`Unused` before `init`): for
    /// entry points that take any pointer, before trusting it.
    pub(crate) fn entry_at(&self, addr: usize) -> Entry {
        self.map.get().map_or(Entry::Unused, |map| map.get(addr))
    }

    pub(crate) fn cpu_caches(&self) -> &[PerCpuCache] {
        let caches = self.caches.load(Acquire);
        if caches.is_null() {
            return &[];
        }
        // SAFETY: `caches` holds `cpus` live caches for the allocator's life.
        unsafe { core::slice::from_raw_parts(caches, self.cpus.load(Relaxed)) }
    }
}

/// Whether the request counter `requests` moved past the request a CPU
/// last honoured (`honoured`, which only that CPU's section writes); if so,
/// records it as honoured.
fn newly_requested(requests: &sync::AtomicU32, honoured: &sync::AtomicU32) -> bool {
    let requested = requests.load(Relaxed);
    if honoured.load(Relaxed) == requested {
        return false;
    }
    honoured.store(requested, Relaxed);
    true
}

/// Pages of the run that serves a large `layout` (at least one).
pub(crate) fn large_pages(layout: Layout) -> usize {
    layout.size().div_ceil(PAGE_SIZE).max(1)
}

// SAFETY: `alloc` returns null or a block of at least `layout.size()` bytes
// aligned to `layout.align()`, disjoint from every other live block (slab
// blocks are carved once and tracked on exactly one free list; large runs
// come from the provider, which guarantees disjointness).
unsafe impl<P: PageProvider + Send, Pl: Platform> GlobalAlloc for Allocator<P, Pl> {
    #[inline(always)]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Allocator::alloc(self, layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Allocator::alloc_zeroed(self, layout)
    }

    #[inline(always)]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded caller contract.
        unsafe { Allocator::dealloc(self, ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded caller contract.
        unsafe { Allocator::realloc(self, ptr, layout, new_size) }
    }
}

/// loom model of the flush and prewarm requests (run by `cargo xtask
/// test`'s loom step). The protocol is relaxed throughout: a request only
/// asks a CPU to give back what it caches, and the blocks then travel
/// under the transfer and central locks, so it needs nothing but the
/// counter's coherence.
#[cfg(all(test, loom))]
mod loom_models {
    use super::newly_requested;
    use crate::sync::AtomicU32;
    use core::sync::atomic::Ordering::Relaxed;
    use loom::sync::Arc;
    use loom::thread;
    use std::vec::Vec;

    /// Two CPUs ask (as `reclaim` does when out of memory) while a third
    /// runs two slow paths. Once the askers are done (their requests
    /// happen before), the next slow path honours what is left: no request
    /// is lost; no count is honoured twice, so at most one flush each.
    #[test]
    fn a_slow_path_after_a_request_honours_it_once() {
        loom::model(|| {
            let requests = Arc::new(AtomicU32::new(0));
            let honoured = AtomicU32::new(0);
            let askers: Vec<_> = (0..2)
                .map(|_| {
                    let requests = requests.clone();
                    thread::spawn(move || requests.fetch_add(1, Relaxed))
                })
                .collect();
            let mut flushes = 0;
            for _ in 0..2 {
                flushes += u32::from(newly_requested(&requests, &honoured));
            }
            for asker in askers {
                asker.join().unwrap();
            }
            flushes += u32::from(newly_requested(&requests, &honoured));
            assert_eq!(honoured.load(Relaxed), 2, "every request honoured");
            assert!((1..=2).contains(&flushes), "{flushes} flushes");
            assert!(!newly_requested(&requests, &honoured), "honoured twice");
        });
    }
}

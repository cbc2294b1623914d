//! The freestanding library, for C kernels (`--no-default-features`, built
//! for `x86_64-unknown-none`).
//!
//! The kernel hands over what differs between kernels in one call,
//! [`acealloc_init`]: its platform as callbacks (CPU count and index,
//! interrupt save and restore, a clock and its rate) and one memory region
//! that the allocator owns from then on (a `RegionProvider`). The platform
//! contract is `acealloc::Platform`'s with `EXCLUSIVE_CPU`: between
//! `irq_save` and `irq_restore` nothing else runs with the caller's CPU
//! index, so the per-CPU caches need no lock and an interrupt handler may
//! allocate.
//!
//! Timer work, all fit for interrupt context (no allocation, try-locks
//! only, bounded): [`acealloc_ace_tick`] ticks ACE once
//! [`acealloc_ace_start`] switched it on; [`acealloc_maintain`] returns
//! idle memory (the allocator's `flush_idle_caches`, then `scavenge`,
//! which takes the header's `max_pages` budget and ignores the purge
//! delay; `Allocator::maintain`, the core's timer entry, has no page
//! budget and waits out the purge delay).

use core::ffi::c_int;
use core::ptr;

use acealloc::ace::{Ace, AceConfig};
use acealloc::{
    Allocator, Config, InitError, Misuse, MisuseKind, Platform, Profile, RegionProvider,
};
use spin::Once;

use crate::CStats;
use crate::c_api;

/// `struct acealloc_platform`: the kernel's platform, as callbacks.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct CPlatform {
    /// CPUs that may call the allocator; `current_cpu` returns less.
    pub cpu_count: u32,
    /// Index of the CPU running the caller.
    pub current_cpu: extern "C" fn() -> u32,
    /// Masks interrupts on this CPU, returning the previous state.
    pub irq_save: extern "C" fn() -> usize,
    /// Restores a state `irq_save` returned.
    pub irq_restore: extern "C" fn(usize),
    /// A monotonic clock (any unit)...
    pub now: extern "C" fn() -> u64,
    /// ...running at this many units per second.
    pub clock_hz: u64,
}

/// `struct acealloc_misuse`: what checked mode found.
#[repr(C)]
pub struct CMisuse {
    /// 1 double free, 2 invalid free, 3 use after free, 4 layout mismatch.
    pub kind: c_int,
    /// The pointer passed in.
    pub addr: usize,
    /// The size and alignment passed in (0 and 0 when none was, as in `free`).
    pub size: usize,
    /// See `size`.
    pub align: usize,
}

/// `struct acealloc_config`.
#[repr(C)]
pub struct CConfig {
    /// 0 FAST, 1 BALANCED, 2 LEAN.
    pub profile: c_int,
    /// Non-zero: checked mode (double, invalid and mismatched frees reported).
    pub checks: c_int,
    /// Called with each misuse found (it may return: the call is dropped);
    /// null: the allocator panics with the report.
    pub misuse: Option<extern "C" fn(*const CMisuse)>,
}

static PLATFORM: Once<CPlatform> = Once::new();
static MISUSE_HOOK: Once<Option<extern "C" fn(*const CMisuse)>> = Once::new();

/// The platform of the kernel that called `acealloc_init`.
pub struct KernelPlatform;

fn platform() -> &'static CPlatform {
    // Nothing reaches the platform before `init` succeeded (the allocator
    // returns null before it), and `init` runs after the platform is set.
    PLATFORM
        .get()
        .expect("acealloc_init sets the platform first")
}

// SAFETY: `acealloc_init`'s contract (the header's) makes the kernel
// promise `EXCLUSIVE_CPU`'s rule for its callbacks.
unsafe impl Platform for KernelPlatform {
    const EXCLUSIVE_CPU: bool = true;

    fn cpu_count() -> usize {
        platform().cpu_count as usize
    }

    #[inline]
    fn current_cpu() -> usize {
        (platform().current_cpu)() as usize
    }

    #[inline]
    fn irq_save() -> usize {
        (platform().irq_save)()
    }

    #[inline]
    fn irq_restore(state: usize) {
        (platform().irq_restore)(state)
    }

    fn now() -> u64 {
        (platform().now)()
    }
}

type KernelAllocator = Allocator<RegionProvider, KernelPlatform>;

static ALLOC: KernelAllocator = Allocator::new();
static ACE: Ace = Ace::new();

fn forward_misuse(misuse: &Misuse) {
    let kind = match misuse.kind {
        MisuseKind::DoubleFree => 1,
        MisuseKind::InvalidFree => 2,
        MisuseKind::UseAfterFree => 3,
        MisuseKind::LayoutMismatch => 4,
    };
    match MISUSE_HOOK.get().copied().flatten() {
        Some(hook) => hook(&CMisuse {
            kind,
            addr: misuse.addr,
            size: misuse.size,
            align: misuse.align,
        }),
        None => panic!("{misuse}"),
    }
}

/// `acealloc_init`: 0 on success, -1 if already initialised, -2 if the
/// region cannot hold the allocator's metadata, -3 for invalid arguments.
///
/// # Safety
/// `platform` and `config` (which may be null: BALANCED, no checks) are
/// valid for reads; `[region, region + len)` is memory that nothing else
/// uses from now on; the callbacks keep the platform contract (module doc).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn acealloc_init(
    platform: *const CPlatform,
    region: *mut u8,
    len: usize,
    config: *const CConfig,
) -> c_int {
    if platform.is_null() || region.is_null() {
        return -3;
    }
    // SAFETY: the caller's contract.
    let given = unsafe { *platform };
    if given.cpu_count == 0 {
        return -3;
    }
    if PLATFORM.is_completed() {
        return -1;
    }
    PLATFORM.call_once(|| given);
    let mut c = Config::DEFAULT;
    // SAFETY: the caller's contract (null or valid).
    if let Some(config) = unsafe { config.as_ref() } {
        c.profile = match config.profile {
            0 => Profile::Fast,
            2 => Profile::Lean,
            _ => Profile::Balanced,
        };
        c.checks = config.checks != 0;
        MISUSE_HOOK.call_once(|| config.misuse);
    }
    c.misuse_hook = Some(forward_misuse);
    // SAFETY: the caller hands the region over for good.
    let provider = unsafe { RegionProvider::new(region, len) };
    match ALLOC.init(provider, c) {
        Ok(()) => 0,
        Err(InitError::AlreadyInitialized) => -1,
        Err(InitError::OutOfMemory) => -2,
    }
}

/// `acealloc_malloc`: null when out of memory (or before `acealloc_init`).
#[unsafe(no_mangle)]
pub extern "C" fn acealloc_malloc(size: usize) -> *mut u8 {
    c_api::malloc(&ALLOC, size).unwrap_or(ptr::null_mut())
}

/// `acealloc_calloc`: zeroed; null when `n * size` overflows.
#[unsafe(no_mangle)]
pub extern "C" fn acealloc_calloc(n: usize, size: usize) -> *mut u8 {
    c_api::calloc(&ALLOC, n, size).unwrap_or(ptr::null_mut())
}

/// `acealloc_aligned_alloc`: null unless `align` is a power of two.
#[unsafe(no_mangle)]
pub extern "C" fn acealloc_aligned_alloc(align: usize, size: usize) -> *mut u8 {
    c_api::aligned_alloc(&ALLOC, align, size).unwrap_or(ptr::null_mut())
}

/// `acealloc_free`: null is a no-op.
///
/// # Safety
/// `p` is null or a live block of this allocator, not used again.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn acealloc_free(p: *mut u8) {
    // SAFETY: forwarded caller contract.
    unsafe { c_api::free(&ALLOC, p) }
}

/// `acealloc_realloc`: as C's `realloc` (`p` null allocates, size 0 frees
/// and gives null, failure leaves the block).
///
/// # Safety
/// As for [`acealloc_free`]; the block stays live when null comes back
/// for a non-zero size.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn acealloc_realloc(p: *mut u8, size: usize) -> *mut u8 {
    // SAFETY: forwarded caller contract.
    unsafe { c_api::realloc(&ALLOC, p, size) }.unwrap_or(ptr::null_mut())
}

/// `acealloc_usable_size`: the block's usable bytes; 0 for null.
///
/// # Safety
/// `p` is null or a live block of this allocator.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn acealloc_usable_size(p: *const u8) -> usize {
    c_api::usable_size(&ALLOC, p)
}

/// `acealloc_stats`: a statistics snapshot.
///
/// # Safety
/// `out` is valid for writing a `struct acealloc_stats`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn acealloc_stats(out: *mut CStats) {
    let stats = CStats::from(&ALLOC.stats());
    // SAFETY: the caller's contract.
    unsafe { out.write(stats) };
}

/// `acealloc_maintain`: returns idle memory, for a timer tick (interrupt
/// context included): the caches of this CPU when it did no allocator work
/// since its previous call, then up to `max_pages` pages of idle runs and
/// the empty slabs beyond the profile's reserve. Stops once the clock
/// reaches `deadline` (`UINT64_MAX`: none). Returns the pages decommitted.
#[unsafe(no_mangle)]
pub extern "C" fn acealloc_maintain(max_pages: usize, deadline: u64) -> usize {
    ALLOC.flush_idle_caches(deadline);
    ALLOC.scavenge(max_pages, deadline)
}

/// `acealloc_ace_start`: switches ACE on (default settings, the platform's
/// clock rate). Not from an interrupt handler.
#[unsafe(no_mangle)]
pub extern "C" fn acealloc_ace_start() {
    if ALLOC.is_initialized() {
        ACE.enable(&ALLOC, AceConfig::DEFAULT, platform().clock_hz);
    }
}

/// `acealloc_ace_tick`: ACE's tick, from every CPU's timer interrupt (a
/// no-op until `acealloc_ace_start`).
#[unsafe(no_mangle)]
pub extern "C" fn acealloc_ace_tick() {
    ACE.tick(&ALLOC, None);
}

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
//! only, bounded): [`acealloc_maintain`] is the core's timer entry
//! (`Allocator::maintain`: idle caches flushed, surplus empty slabs and
//! page runs idle for the purge delay returned); [`acealloc_ace_tick`]
//! ticks ACE once [`acealloc_ace_start`] switched it on.
//!
//! `acealloc_init` runs alone (the header's contract: once at boot, before
//! any other call of this library and concurrent with none); until it
//! succeeds the platform is [`UNSET`], under which every entry point is
//! harmless (null, 0 or nothing done), and a failed `acealloc_init` may be
//! called again.

use core::cell::UnsafeCell;
use core::ffi::c_int;
use core::ptr;

use acealloc::ace::{Ace, AceConfig};
use acealloc::{
    Allocator, Config, InitError, Misuse, MisuseKind, Platform, Profile, RegionProvider,
};
use spin::mutex::SpinMutex;

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

/// What `acealloc_init` was handed last.
struct Setup {
    platform: CPlatform,
    misuse: Option<extern "C" fn(*const CMisuse)>,
}

/// [`Setup`] in a static that `acealloc_init` writes.
struct SetupCell(UnsafeCell<Setup>);

// SAFETY: only `acealloc_init` writes the cell, and it runs alone (module
// doc): no read or write of it runs meanwhile.
unsafe impl Sync for SetupCell {}

/// The platform before `acealloc_init`: one CPU, no masking, a clock that
/// stands still. The allocator reaches it only on paths that find nothing
/// initialised and do nothing (no cache, no page layer).
pub const UNSET: CPlatform = CPlatform {
    cpu_count: 1,
    current_cpu: unset_cpu,
    irq_save: unset_irq_save,
    irq_restore: unset_irq_restore,
    now: unset_now,
    clock_hz: 1,
};

extern "C" fn unset_cpu() -> u32 {
    0
}

extern "C" fn unset_irq_save() -> usize {
    0
}

extern "C" fn unset_irq_restore(_: usize) {}

extern "C" fn unset_now() -> u64 {
    0
}

static SETUP: SetupCell = SetupCell(UnsafeCell::new(Setup {
    platform: UNSET,
    misuse: None,
}));

/// Serialises `acealloc_init` calls with each other.
static INIT: SpinMutex<()> = SpinMutex::new(());

/// What `acealloc_init` was handed (or [`UNSET`] and no hook before).
#[inline(always)]
fn setup() -> &'static Setup {
    // SAFETY: written only by `acealloc_init`, which runs alone (module
    // doc), so no write overlaps this borrow's use.
    unsafe { &*SETUP.0.get() }
}

/// The platform of the kernel that called `acealloc_init`.
pub struct KernelPlatform;

// SAFETY: `acealloc_init`'s contract (the header's) makes the kernel
// promise `EXCLUSIVE_CPU`'s rule for its callbacks; `UNSET` keeps it too
// (no cache exists while it is in force).
unsafe impl Platform for KernelPlatform {
    const EXCLUSIVE_CPU: bool = true;

    fn cpu_count() -> usize {
        setup().platform.cpu_count as usize
    }

    #[inline]
    fn current_cpu() -> usize {
        (setup().platform.current_cpu)() as usize
    }

    #[inline]
    fn irq_save() -> usize {
        (setup().platform.irq_save)()
    }

    #[inline]
    fn irq_restore(state: usize) {
        (setup().platform.irq_restore)(state)
    }

    fn now() -> u64 {
        (setup().platform.now)()
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
    match setup().misuse {
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
/// region cannot hold the allocator's metadata (nothing is kept: call it
/// again with a larger one), -3 for invalid arguments.
///
/// # Safety
/// `platform` and `config` (which may be null: BALANCED, no checks) are
/// valid for reads; `[region, region + len)` is memory that nothing else
/// uses from now on; the callbacks keep the platform contract (module
/// doc); no other call of this library runs meanwhile.
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
    if given.cpu_count == 0 || given.clock_hz == 0 {
        return -3;
    }
    let _serialised = INIT.lock();
    if ALLOC.is_initialized() {
        return -1;
    }
    let mut c = Config {
        clock_hz: given.clock_hz,
        checks: false,
        misuse_hook: Some(forward_misuse),
        ..Config::DEFAULT
    };
    // SAFETY: the caller's contract (null or valid).
    let config = unsafe { config.as_ref() };
    if let Some(config) = config {
        c.profile = match config.profile {
            0 => Profile::Fast,
            2 => Profile::Lean,
            _ => Profile::Balanced,
        };
        c.checks = config.checks != 0;
    }
    // SAFETY: the allocator is not initialised, so nothing reads the setup
    // but this call's `init` below; other calls do not run (the contract).
    unsafe {
        *SETUP.0.get() = Setup {
            platform: given,
            misuse: config.and_then(|config| config.misuse),
        }
    };
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

/// `acealloc_maintain`: the core's timer entry, `Allocator::maintain`,
/// fit for interrupt context: flushes this CPU's cache when it did no
/// allocator work for the purge delay, releases surplus empty slabs and
/// decommits the page runs unused for the purge delay, stopping once the
/// clock reaches `deadline` (`UINT64_MAX`: none). Returns the pages
/// decommitted (0 before `acealloc_init`).
#[unsafe(no_mangle)]
pub extern "C" fn acealloc_maintain(deadline: u64) -> usize {
    ALLOC.maintain(deadline)
}

/// `acealloc_ace_start`: switches ACE on (default settings, the platform's
/// clock rate); 0, or -1 before `acealloc_init`. Not from an interrupt
/// handler.
#[unsafe(no_mangle)]
pub extern "C" fn acealloc_ace_start() -> c_int {
    match ALLOC.config() {
        Some(config) => {
            ACE.enable(&ALLOC, AceConfig::DEFAULT, config.clock_hz);
            0
        }
        None => -1,
    }
}

/// `acealloc_ace_tick`: ACE's tick, from every CPU's timer interrupt (a
/// no-op until `acealloc_ace_start`).
#[unsafe(no_mangle)]
pub extern "C" fn acealloc_ace_tick() {
    ACE.tick(&ALLOC, None);
}

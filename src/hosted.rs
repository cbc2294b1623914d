//! The hosted build: acealloc as the global allocator of a std program.
//!
//! ```no_run
//! #[global_allocator]
//! static A: acealloc::hosted::HostedAlloc = acealloc::hosted::HostedAlloc::new();
//! ```
//!
//! Settings come from the environment, read (without allocating) on the
//! first allocation:
//!
//! | variable | values | default |
//! |---|---|---|
//! | `ACEALLOC_PROFILE` | `fast`, `balanced`, `lean` | `balanced` |
//! | `ACEALLOC_CHECKS` | `0`, `1` | `1` in debug builds |
//! | `ACEALLOC_RSEQ` | `0` (try-locked caches), `1` (restartable sequences where available) | `1` ([`Config::restartable`]) |
//! | `ACEALLOC_DECOMMIT` | `dontneed`, `free`, `off` ([`DecommitMode`]) | `dontneed` |
//! | `ACEALLOC_LEAN_TARGET_MB` | LEAN's committed target ([`Config::lean_target`]) | `8` |
//! | `ACEALLOC_PURGE_MS` | how long free page runs stay committed ([`Config::purge_delay_ms`]) | the profile's |
//! | `ACEALLOC_RESERVE_GB` | address space to reserve | `64` |
//! | `ACEALLOC_CACHE_CAPACITY`, `ACEALLOC_BUNDLE_WIDTH`, `ACEALLOC_DRAIN_THRESHOLD`, `ACEALLOC_RELEASE_PAGES` | knob values | [`Knobs::DEFAULT`](crate::Knobs::DEFAULT) |
//! | `ACEALLOC_HOUSEKEEPING_MS` | period of the background thread's housekeeping ([`Allocator::maintain`]); `0`: no thread unless ACE runs | `10` |
//! | `ACEALLOC_ACE` | `1`: ACE runs from the background thread ([`ace::background`](crate::ace::background); its settings: [`ace::ticker`](crate::ace::ticker)) | off |

use core::alloc::{GlobalAlloc, Layout};
use core::ffi::CStr;
use core::fmt::Write;
use core::sync::atomic::{AtomicBool, Ordering};

use crate::ace::{AceReport, background};
use crate::provider::{DecommitMode, MmapProvider};
use crate::{Allocator, Config, Misuse, Platform, Profile, Stats};

/// Platform of a hosted Linux process: per-CPU sections as restartable
/// sequences where glibc registered them (x86_64), otherwise try-locked
/// caches with the CPU index from glibc's rseq area (or `sched_getcpu`);
/// locks yield after a short spin.
pub struct HostedPlatform;

/// The CPU index from glibc's rseq area where it registered one (one load),
/// else from `sched_getcpu`.
#[inline(always)]
fn current_cpu() -> usize {
    crate::rseq::cpu_id().unwrap_or_else(|| {
        // SAFETY: `sched_getcpu` has no preconditions.
        let cpu = unsafe { libc::sched_getcpu() };
        // -1 only where the kernel cannot say: CPU 0 is as good as any.
        cpu.max(0) as usize
    })
}

// SAFETY: EXCLUSIVE_CPU is false, so the allocator guards every cache with
// its try-lock and relies on nothing else.
unsafe impl Platform for HostedPlatform {
    const EXCLUSIVE_CPU: bool = false;
    const RESTARTABLE: bool = true;

    fn cpu_count() -> usize {
        // SAFETY: `sysconf` has no preconditions.
        let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_CONF) };
        n.max(1) as usize
    }

    #[inline(always)]
    fn current_cpu() -> usize {
        current_cpu()
    }

    #[inline(always)]
    fn irq_save() -> usize {
        0
    }

    #[inline(always)]
    fn irq_restore(_: usize) {}

    /// Spins a little, then yields: the holder may have been preempted,
    /// and spinning on would only burn the time slice it needs.
    #[inline]
    fn lock_wait(spins: u32) {
        if spins < SPINS_BEFORE_YIELD {
            core::hint::spin_loop();
        } else {
            // SAFETY: `sched_yield` has no preconditions.
            unsafe { libc::sched_yield() };
        }
    }

    fn now() -> u64 {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid timespec to write into.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
        ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
    }
}

/// Failed tries of a lock before a waiter yields its CPU: about the time a
/// holder that keeps running needs to copy a batch.
const SPINS_BEFORE_YIELD: u32 = 100;

/// The hosted allocator type: mmap provider, hosted platform.
pub type HostedAllocator = Allocator<MmapProvider, HostedPlatform>;

/// acealloc as a `#[global_allocator]`: initialises itself on first use
/// from the `ACEALLOC_*` environment variables (see the module doc).
pub struct HostedAlloc {
    inner: HostedAllocator,
    setup: spin::Once<()>,
    /// Initialised, and the background thread started if asked for:
    /// the one flag the allocation path reads (cleared in the child of a
    /// fork, whose thread must start again).
    ready: AtomicBool,
}

impl Default for HostedAlloc {
    fn default() -> Self {
        Self::new()
    }
}

impl HostedAlloc {
    /// A hosted allocator; it sets itself up on the first allocation.
    pub const fn new() -> Self {
        HostedAlloc {
            inner: Allocator::new(),
            setup: spin::Once::new(),
            ready: AtomicBool::new(false),
        }
    }

    /// The underlying allocator (for statistics, knobs and `trim`).
    #[inline]
    pub fn allocator(&self) -> &HostedAllocator {
        self.ensure_init();
        &self.inner
    }

    /// A statistics snapshot.
    pub fn stats(&self) -> Stats {
        self.allocator().stats()
    }

    /// ACE's status and decision trace, when an engine is attached (as
    /// the background thread does with `ACEALLOC_ACE=1`).
    pub fn ace_stats(&self) -> Option<AceReport> {
        self.allocator().ace_stats()
    }

    /// Starts the background thread (once; see
    /// [`ace::background`](crate::ace::background)): the housekeeping,
    /// unless `ACEALLOC_HOUSEKEEPING_MS=0`, and ACE with `ACEALLOC_ACE=1`;
    /// returns whether it runs. The global allocator does this itself at
    /// the end of its first allocation; a library whose first allocation
    /// may come before it is ready to start threads (a C library under
    /// `LD_PRELOAD`, called from the dynamic loader) calls it once its own
    /// set-up is done.
    pub fn start_background(&'static self) -> bool {
        self.ensure_init();
        self.inner.is_initialized()
            && background_asked()
            && background::start(&self.inner, &self.ready)
    }

    /// The fast path of C's `malloc`, [`Allocator::alloc_cached`]: null
    /// when it cannot serve, and also before set-up (or in a fork's child
    /// before ACE's thread restarted), when the caller's full path does it.
    #[inline(always)]
    pub fn alloc_cached(&self, size: usize) -> *mut u8 {
        if !self.ready.load(Ordering::Acquire) {
            return core::ptr::null_mut();
        }
        self.inner.alloc_cached(size)
    }

    /// The fast path of C's `free`, [`Allocator::free_cached`] (nothing to
    /// set up: before `init` it does nothing and returns false).
    ///
    /// # Safety
    /// As for [`Allocator::free`].
    #[inline(always)]
    pub unsafe fn free_cached(&self, ptr: *mut u8) -> bool {
        // SAFETY: forwarded caller contract.
        unsafe { self.inner.free_cached(ptr) }
    }

    #[inline(always)]
    fn ensure_init(&self) {
        if !self.ready.load(Ordering::Acquire) {
            self.start_up();
        }
    }

    /// Initialises the allocator (once), then, unless the environment
    /// turns it off and with `self` in static storage (a
    /// `#[global_allocator]`: the background thread keeps a reference for
    /// the life of the process), starts the background thread: after `init`, outside its `Once`, with no lock
    /// held, so the allocations the thread's creation makes find the
    /// allocator ready.
    #[cold]
    fn start_up(&self) {
        self.init_from_env();
        if !self.inner.is_initialized() {
            return;
        }
        self.ready.store(true, Ordering::Release);
        if background_asked() && in_static_storage(self) {
            // SAFETY: `self` lies in a loaded object's data (`dladdr` found
            // it there): static storage, which lives as long as the process.
            let this: &'static HostedAlloc = unsafe { &*core::ptr::from_ref(self) };
            background::start(&this.inner, &this.ready);
        }
    }

    fn init_from_env(&self) {
        self.setup.call_once(|| {
            let config = config_from_env();
            let reserve_gb = env_number("ACEALLOC_RESERVE_GB").unwrap_or(64);
            // On failure the allocator stays uninitialised and returns null.
            if let Some(provider) = MmapProvider::new(reserve_gb << 30, config.decommit) {
                let _ = self.inner.init(provider, config);
            }
        });
    }
}

/// Whether the background thread has work: housekeeping (unless
/// `ACEALLOC_HOUSEKEEPING_MS=0`) or ACE (`ACEALLOC_ACE=1`). Read without
/// allocating.
fn background_asked() -> bool {
    env_number("ACEALLOC_HOUSEKEEPING_MS") != Some(0) || env_number("ACEALLOC_ACE") == Some(1)
}

/// Whether `value` lies in a loaded object's segments (its static data):
/// `dladdr` finds no object for the stack or the heap.
fn in_static_storage<T>(value: &T) -> bool {
    // SAFETY: `dladdr` only reads the loader's tables and writes `info`, a
    // local; it allocates nothing.
    unsafe {
        let mut info: libc::Dl_info = core::mem::zeroed();
        libc::dladdr(core::ptr::from_ref(value).cast(), &mut info) != 0
    }
}

/// The configuration the environment asks for.
fn config_from_env() -> Config {
    let mut config = Config::DEFAULT;
    config.profile = match env("ACEALLOC_PROFILE") {
        Some(b"fast") => Profile::Fast,
        Some(b"lean") => Profile::Lean,
        _ => Profile::Balanced,
    };
    config.decommit = match env("ACEALLOC_DECOMMIT") {
        Some(b"free") => DecommitMode::Free,
        Some(b"off") => DecommitMode::Off,
        _ => DecommitMode::DontNeed,
    };
    if let Some(mb) = env_number("ACEALLOC_LEAN_TARGET_MB") {
        config.lean_target = mb << 20;
    }
    if let Some(ms) = env_number("ACEALLOC_PURGE_MS") {
        config.purge_delay_ms = Some(ms.min(u32::MAX as usize) as u32);
    }
    if let Some(checks) = env_number("ACEALLOC_CHECKS") {
        config.checks = checks != 0;
    }
    if let Some(rseq) = env_number("ACEALLOC_RSEQ") {
        config.restartable = rseq != 0;
    }
    // Each knob keeps its default (`Config::DEFAULT`'s) unless set.
    let knobs = &mut config.knobs;
    for (name, knob) in [
        ("ACEALLOC_CACHE_CAPACITY", &mut knobs.cache_capacity),
        ("ACEALLOC_BUNDLE_WIDTH", &mut knobs.bundle_width),
        ("ACEALLOC_DRAIN_THRESHOLD", &mut knobs.drain_threshold),
        ("ACEALLOC_RELEASE_PAGES", &mut knobs.release_pages),
    ] {
        if let Some(value) = env_number(name) {
            *knob = value as u32;
        }
    }
    config.misuse_hook = Some(report_and_abort);
    config
}

/// An environment variable's bytes, read without allocating.
fn env(name: &str) -> Option<&'static [u8]> {
    let mut buf = [0u8; 64];
    buf.get_mut(..name.len())?.copy_from_slice(name.as_bytes());
    // SAFETY: `buf` is NUL-terminated (name is shorter than the buffer).
    // The environment is not modified while the allocator starts, so the
    // returned string stays valid.
    unsafe {
        let value = libc::getenv(buf.as_ptr().cast());
        (!value.is_null()).then(|| CStr::from_ptr(value).to_bytes())
    }
}

fn env_number(name: &str) -> Option<usize> {
    core::str::from_utf8(env(name)?).ok()?.trim().parse().ok()
}

/// The hosted misuse hook: the report on stderr, then abort.
fn report_and_abort(misuse: &Misuse) {
    let mut line = LineBuf {
        buf: [0; 160],
        len: 0,
    };
    let _ = writeln!(line, "{misuse}");
    // SAFETY: writes initialised bytes of `line` to stderr; `abort` never returns.
    unsafe {
        libc::write(2, line.buf.as_ptr().cast(), line.len);
        libc::abort();
    }
}

/// A fixed buffer to format into without allocating.
struct LineBuf {
    buf: [u8; 160],
    len: usize,
}

impl Write for LineBuf {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

// SAFETY: delegates to `Allocator`, whose `GlobalAlloc` contract holds once
// it is initialised, and which returns null before.
unsafe impl GlobalAlloc for HostedAlloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.ensure_init();
        self.inner.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        self.ensure_init();
        self.inner.alloc_zeroed(layout)
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded caller contract.
        unsafe { self.inner.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded caller contract.
        unsafe { self.inner.realloc(ptr, layout, new_size) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg_attr(miri, ignore = "Miri cannot read glibc's rseq statics")]
    fn cpu_index_matches_the_kernel_and_is_in_range() {
        let cpus = HostedPlatform::cpu_count();
        // The thread may migrate between the two reads: agreement on most
        // tries is what a correct rseq read gives, a wrong offset never does.
        let agree = (0..1000)
            .filter(|_| {
                let ours = HostedPlatform::current_cpu();
                assert!(ours < cpus, "cpu {ours} of {cpus}");
                // SAFETY: `sched_getcpu` has no preconditions.
                ours == unsafe { libc::sched_getcpu() } as usize
            })
            .count();
        assert!(agree > 900, "only {agree} of 1000 reads agreed");
    }

    #[test]
    fn env_values_are_read_and_parsed_as_numbers() {
        // SAFETY: single-threaded test; nothing else reads the environment now.
        unsafe { libc::setenv(c"ACEALLOC_TEST_VALUE".as_ptr(), c" 42 ".as_ptr(), 1) };
        assert_eq!(env("ACEALLOC_TEST_VALUE"), Some(&b" 42 "[..]));
        assert_eq!(env_number("ACEALLOC_TEST_VALUE"), Some(42));
        assert_eq!(env("ACEALLOC_TEST_UNSET"), None);
    }
}

//! Shared by the test binaries: a single-CPU platform, pretend CPUs, heap
//! regions for `RegionProvider`, mmap-backed allocators, per-block byte
//! patterns, and re-running the test binary in a child.

// Each test binary compiles this module and uses a part of it.
#![allow(dead_code)]

use std::alloc::{self, Layout};
use std::cell::Cell;
use std::sync::OnceLock;
use std::time::Instant;

use acealloc::provider::MmapProvider;
use acealloc::{Allocator, Config, DecommitMode, PAGE_SIZE, Platform, Profile, RegionProvider};

/// One CPU, no interrupt masking: the platform of a single-threaded kernel.
///
/// Only valid for an allocator that a single thread uses: each test builds
/// its own allocator and keeps it on its own thread.
pub struct SingleCpu;

// SAFETY: every allocator over this platform is used by exactly one thread
// (see the type's doc), so code between `irq_save` and `irq_restore` is the
// only code touching that allocator's CPU 0 cache, and the index never changes.
unsafe impl Platform for SingleCpu {
    const EXCLUSIVE_CPU: bool = true;

    fn cpu_count() -> usize {
        1
    }

    fn current_cpu() -> usize {
        0
    }

    fn irq_save() -> usize {
        0
    }

    fn irq_restore(_: usize) {}

    fn now() -> u64 {
        elapsed_ns()
    }
}

/// Nanoseconds since the first call: a real monotonic clock for a test
/// platform's `now`.
pub fn elapsed_ns() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

thread_local! {
    /// The CPU index the test thread pretends to run on (per thread, as the
    /// tests run in parallel).
    static CPU: Cell<usize> = const { Cell::new(0) };
    /// The test thread's pretend clock: it stands still unless advanced.
    static CLOCK: Cell<u64> = const { Cell::new(0) };
}

/// `CPUS` CPUs that one test thread plays in turn: it picks the current CPU
/// with [`run_on`](Self::run_on) and moves the clock with
/// [`advance_clock`](Self::advance_clock). With `EXCLUSIVE` the caches are
/// unlocked, like a kernel's; without, they are try-locked, like a hosted
/// thread's. The CPU and clock are per thread, shared by every `CPUS` and
/// `EXCLUSIVE`.
///
/// Only valid for an allocator that a single thread uses, as [`SingleCpu`].
pub struct PretendCpus<const CPUS: usize, const EXCLUSIVE: bool>;

impl<const CPUS: usize, const EXCLUSIVE: bool> PretendCpus<CPUS, EXCLUSIVE> {
    /// From now on the test thread runs on `cpu`; call it between
    /// allocator calls, never inside one.
    pub fn run_on(cpu: usize) {
        assert!(cpu < CPUS, "CPU {cpu} of {CPUS}");
        CPU.set(cpu);
    }

    /// Moves the test thread's clock one unit on.
    pub fn advance_clock() {
        CLOCK.set(CLOCK.get() + 1);
    }
}

// SAFETY: `run_on` keeps the index below `CPUS`. With `EXCLUSIVE`, every
// allocator over this platform is used by exactly one thread (see the
// type's doc), so nothing else runs with its index between `irq_save` and
// `irq_restore`, and the index changes only between allocator calls.
// Without, caches are try-locked and nothing more is promised.
unsafe impl<const CPUS: usize, const EXCLUSIVE: bool> Platform for PretendCpus<CPUS, EXCLUSIVE> {
    const EXCLUSIVE_CPU: bool = EXCLUSIVE;

    fn cpu_count() -> usize {
        CPUS
    }

    fn current_cpu() -> usize {
        CPU.get()
    }

    fn irq_save() -> usize {
        0
    }

    fn irq_restore(_: usize) {}

    fn now() -> u64 {
        CLOCK.get()
    }
}

/// Page-aligned memory from the test's own global allocator, handed to a
/// `RegionProvider`. Declare it before the allocator that uses it, so that
/// the allocator is dropped first.
pub struct Region {
    ptr: *mut u8,
    layout: Layout,
}

impl Region {
    /// `size` bytes aligned to `align` (at least a page).
    pub fn new(size: usize, align: usize) -> Region {
        let layout = Layout::from_size_align(size, align.max(PAGE_SIZE)).unwrap();
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { alloc::alloc(layout) };
        assert!(!ptr.is_null(), "the test's own allocator is out of memory");
        Region { ptr, layout }
    }

    /// A provider over the whole region.
    ///
    /// # Safety
    /// At most one provider of the region may be alive, and it must not
    /// outlive the region.
    pub unsafe fn provider(&self) -> RegionProvider {
        // SAFETY: the memory is ours and valid for `layout.size()` bytes;
        // exclusivity and lifetime are the caller's contract.
        unsafe { RegionProvider::new(self.ptr, self.layout.size()) }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { alloc::dealloc(self.ptr, self.layout) };
    }
}

/// An allocator of `profile` without checks over a 1 GiB mmap reservation.
pub fn mmap_allocator<Pl: Platform>(profile: Profile) -> Box<Allocator<MmapProvider, Pl>> {
    let a = Box::new(Allocator::new());
    let config = Config {
        profile,
        checks: false,
        ..Config::DEFAULT
    };
    a.init(
        MmapProvider::new(1 << 30, DecommitMode::DontNeed).unwrap(),
        config,
    )
    .unwrap();
    a
}

/// Runs this test binary again in a child process with `args` and `envs`,
/// asserts that the child succeeded, and returns its stdout.
pub fn run_child(args: &[&str], envs: &[(&str, &str)]) -> String {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(args)
        .envs(envs.iter().copied())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "child {:?}:\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Byte `i` of the pattern with `seed`.
fn pattern_byte(seed: u64, i: usize) -> u8 {
    let x =
        (seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    (x >> 56) as u8
}

/// Fills `len` bytes at `ptr` with the pattern of `seed`.
///
/// # Safety
/// `ptr` is valid for writes of `len` bytes.
pub unsafe fn fill(ptr: *mut u8, len: usize, seed: u64) {
    // SAFETY: the caller's contract.
    let bytes = unsafe { std::slice::from_raw_parts_mut(ptr, len) };
    for i in pattern_offsets(len) {
        bytes[i] = pattern_byte(seed, i);
    }
}

/// The offsets of a `len`-byte block that carry the pattern: every byte
/// natively; under Miri, which interprets each byte written and checks
/// the block's bounds and provenance whatever it writes, every 61st byte
/// (a prime, so the offsets fall on every word lane). Those of a prefix
/// are those of the block, so a realloc's kept prefix checks as written.
fn pattern_offsets(len: usize) -> impl Iterator<Item = usize> {
    (0..len).step_by(if cfg!(miri) { 61 } else { 1 })
}

/// Panics (naming `what`) unless the first `len` bytes at `ptr` hold the
/// pattern of `seed`.
///
/// # Safety
/// `ptr` is valid for reads of `len` bytes.
pub unsafe fn check(ptr: *const u8, len: usize, seed: u64, what: &str) {
    // SAFETY: the caller's contract.
    let bytes = unsafe { std::slice::from_raw_parts(ptr, len) };
    if let Some(i) = pattern_offsets(len).find(|&i| bytes[i] != pattern_byte(seed, i)) {
        panic!(
            "{what}: block {ptr:p} ({len} bytes) corrupted at offset {i}: {:#04x}, expected {:#04x}",
            bytes[i],
            pattern_byte(seed, i)
        );
    }
}

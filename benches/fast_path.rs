//! Instructions per alloc+free pair of a warm 64 B block, kernel-style.
//!
//! The allocator runs on a platform like a single-CPU kernel's, minus the
//! interrupt masking that user mode cannot do: an exclusive CPU slot, no
//! lock. Run under callgrind to count instructions of `pair`:
//!
//! ```text
//! valgrind --tool=callgrind --toggle-collect='fast_path::*' target/release/deps/fast_path-*
//! ```
//!
//! and read the inclusive counts per call of `const_layout` (layout known
//! at compile time, like `Box<T>`) and `runtime_layout` (size only known at
//! run time, like a `Vec` buffer), minus `baseline` (the same calls and
//! `black_box` traffic with no allocator work).
//!
//! Without valgrind it prints nanoseconds per pair next to glibc's malloc,
//! measured side by side.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::time::Instant;

use acealloc::provider::{DecommitMode, MmapProvider};
use acealloc::{Allocator, Config, Platform};

/// One CPU, nothing to mask: what a kernel's fast path costs without `cli`.
struct NoIrqCpu;

// SAFETY: single-threaded benchmark; index 0 is used by one thread only.
unsafe impl Platform for NoIrqCpu {
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
        0
    }
}

static ACE: Allocator<MmapProvider, NoIrqCpu> = Allocator::new();

const LAYOUT: Layout = match Layout::from_size_align(64, 8) {
    Ok(l) => l,
    Err(_) => panic!(),
};

#[inline(never)]
fn pair(a: &dyn GlobalAlloc) {
    // SAFETY: the block is freed with the layout it was allocated with.
    unsafe {
        let p = a.alloc(black_box(LAYOUT));
        a.dealloc(black_box(p), LAYOUT);
    }
}

/// Size-64 block; the layout is a compile-time constant.
#[inline(never)]
fn const_layout() {
    let p = ACE.alloc(LAYOUT);
    // SAFETY: freed with the layout it was allocated with.
    unsafe { ACE.dealloc(black_box(p), LAYOUT) };
}

/// Size-64 block; the layout is only known at run time.
#[inline(never)]
fn runtime_layout() {
    let layout = black_box(LAYOUT);
    let p = ACE.alloc(layout);
    // SAFETY: freed with the layout it was allocated with.
    unsafe { ACE.dealloc(black_box(p), layout) };
}

/// The calls and `black_box` traffic of `runtime_layout`, with no allocator.
#[inline(never)]
fn baseline() {
    let layout = black_box(LAYOUT);
    black_box((black_box(layout.size() as *mut u8), layout));
}

fn ns_per_pair(f: impl Fn(), n: u32) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        f();
    }
    start.elapsed().as_nanos() as f64 / f64::from(n)
}

fn main() {
    let provider = MmapProvider::new(1 << 30, DecommitMode::Free).expect("reserve 1 GiB");
    let config = Config {
        checks: false,
        ..Config::DEFAULT
    };
    ACE.init(provider, config).expect("init");
    let under_valgrind =
        std::env::var_os("LD_PRELOAD").is_some_and(|v| v.to_string_lossy().contains("valgrind"));
    let n = if under_valgrind { 100_000 } else { 20_000_000 };
    // Warm the cache, then the measured loops.
    for _ in 0..1000 {
        const_layout();
        runtime_layout();
    }
    if under_valgrind {
        for _ in 0..n {
            const_layout();
            runtime_layout();
            baseline();
        }
        println!("ran {n} calls of each: divide callgrind's inclusive counts by {n}");
        return;
    }
    let mut ratios = Vec::new();
    for round in 0..5 {
        let ace = ns_per_pair(runtime_layout, n);
        let glibc = ns_per_pair(|| pair(&System), n);
        ratios.push(glibc / ace);
        println!("round {round}: acealloc {ace:.2} ns/pair, glibc {glibc:.2} ns/pair");
    }
    ratios.sort_by(f64::total_cmp);
    println!(
        "median speed-up over glibc (64 B alloc+free): {:.2}x",
        ratios[2]
    );
}

//! `fast-path`: the cost of a warm alloc+free pair of a 64 B block whose layout is known at
//! compile time (as for `Box<T>`).
//!
//! The driver runs this under `valgrind --tool=callgrind` and reads the inclusive instruction
//! counts of [`measured`] and [`baseline`]: the same loop with and without the allocator calls,
//! so their difference over the pair count is the allocator's instructions per pair, periodic
//! work (a cache refill, a tcache flush) included. Run plainly, the figure is nanoseconds per
//! pair, net of the baseline loop.

use std::alloc::{GlobalAlloc, Layout};
use std::hint::black_box;
use std::time::{Duration, Instant};

use super::{Outcome, Params};
use crate::block::Heap;

const LAYOUT: Layout = match Layout::from_size_align(64, 8) {
    Ok(layout) => layout,
    Err(_) => panic!("64 B, 8-aligned is a valid layout"),
};

/// Runs of each loop when timed plainly: the fastest counts.
const RUNS: u64 = 5;

/// `pairs` alloc+free pairs. The name is what the driver looks for in callgrind's output.
#[inline(never)]
fn measured<A: GlobalAlloc>(alloc: &A, pairs: u64) {
    for _ in 0..pairs {
        // SAFETY: the block is freed with the layout it was allocated with (the warm-up proved
        // the allocator returns blocks for this layout).
        unsafe {
            let p = alloc.alloc(LAYOUT);
            alloc.dealloc(black_box(p), LAYOUT);
        }
    }
}

/// The loop of [`measured`] and its `black_box` traffic, without the allocator.
#[inline(never)]
fn baseline(pairs: u64) {
    for _ in 0..pairs {
        black_box(black_box(LAYOUT.size() as *mut u8));
    }
}

pub fn run<A: GlobalAlloc>(alloc: &A, p: &Params) -> Outcome {
    let pairs = p.scaled(100_000, 1_000_000);
    // Warm-up: the block's class is set up and cached; the data checks prove the pairs work.
    let mut heap = Heap::new(alloc, p.seed);
    for _ in 0..1000 {
        if let Some(block) = heap.alloc(LAYOUT.size(), LAYOUT.align()) {
            // SAFETY: the block came from `heap`.
            unsafe { heap.free(block) };
        }
    }
    // The fastest of a few alternating runs of each loop: one preemption (a loaded machine)
    // would otherwise stretch either, and a stretched baseline gave a figure of 0.
    let (mut base, mut elapsed) = (Duration::MAX, Duration::MAX);
    for _ in 0..RUNS {
        let start = Instant::now();
        baseline(pairs);
        base = base.min(start.elapsed());
        let start = Instant::now();
        measured(alloc, pairs);
        elapsed = elapsed.min(start.elapsed());
    }
    let mut tally = heap.tally;
    // The calls of the run `elapsed` times.
    tally.ops += 2 * pairs;
    Outcome {
        tally,
        elapsed,
        complete: tally.failed == 0,
        figure: Some(elapsed.saturating_sub(base).as_nanos() as f64 / pairs as f64),
        live_peak_exact: true,
        // Callgrind counts every run: the driver divides by all of their pairs.
        detail: format!("pairs:{}", pairs * RUNS),
    }
}

//! `bursts`: a service's day. Bursts of small objects (16–512 B, 32768 slots, about 8 MiB) and
//! bursts of large buffers (32 KiB–1 MiB, 96 slots, about 50 MiB) take turns, each followed by
//! a quiet spell in which nothing is allocated; each step frees a random slot's block if it
//! holds one, else fills it, and a burst's blocks are all freed at its end. An allocator that
//! keeps the freed pages is fast at the next burst and costs their memory through the quiet
//! spell; one that gives them back at once pays system calls and page faults in every burst.
//! The figure is throughput over the busy time; the time-averaged resident set (sampled every
//! 10 ms by `cargo xtask bench`) says what the memory cost.

use std::alloc::GlobalAlloc;
use std::time::Instant;

use super::spells::{Spells, lengths};
use super::{Outcome, Params};
use crate::block::{Block, Heap};
use crate::rng::Rng;

/// The two kinds of burst: smallest and largest block, slots.
const BURSTS: [(usize, usize, usize); 2] = [(16, 512, 32768), (32 << 10, 1 << 20, 96)];

pub fn run<A: GlobalAlloc>(alloc: &A, p: &Params) -> Outcome {
    let (busy, quiet) = lengths(p, 300, 300);
    let mut rng = Rng::new(p.seed);
    let mut heap = Heap::new(alloc, p.seed);
    let mut spells = Spells::new(p, 4, 16);
    let wall = Instant::now();
    while spells.more(p) {
        let (lo, hi, n) = BURSTS[spells.done as usize % BURSTS.len()];
        let mut slots: Vec<Option<Block>> = (0..n).map(|_| None).collect();
        let start = Instant::now();
        while start.elapsed() < busy && heap.tally.failed == 0 {
            for _ in 0..64 {
                let slot = &mut slots[rng.below(n)];
                match slot.take() {
                    // SAFETY: every block in `slots` came from `heap`.
                    Some(block) => unsafe { heap.free(block) },
                    None => *slot = heap.alloc(rng.range(lo, hi), 8),
                }
            }
        }
        for block in slots.into_iter().flatten() {
            // SAFETY: as above.
            unsafe { heap.free(block) };
        }
        spells.busy_then_quiet(start, quiet, p);
    }
    let (elapsed, detail) = spells.busy(wall.elapsed());
    Outcome {
        tally: heap.tally,
        elapsed,
        complete: heap.tally.failed == 0 && p.finished(spells.done, spells.planned),
        figure: None,
        live_peak_exact: true,
        detail,
    }
}

//! `mixed-ws400`: 400 slots; each step picks a random slot and frees its block if it holds one,
//! else fills it with a block of 16–1040 bytes. The reference workload of the design's figures.

use std::alloc::GlobalAlloc;
use std::time::Instant;

use super::{Outcome, Params};
use crate::block::{Block, Heap};
use crate::rng::Rng;

const SLOTS: usize = 400;

pub fn run<A: GlobalAlloc>(alloc: &A, p: &Params) -> Outcome {
    let steps = p.planned(200_000, 10_000_000);
    let mut rng = Rng::new(p.seed);
    let mut heap = Heap::new(alloc, p.seed);
    let mut slots: Vec<Option<Block>> = (0..SLOTS).map(|_| None).collect();
    let start = Instant::now();
    let done = p.repeat(steps, || {
        let slot = &mut slots[rng.below(SLOTS)];
        match slot.take() {
            // SAFETY: every block in `slots` came from `heap`.
            Some(block) => unsafe { heap.free(block) },
            None => *slot = heap.alloc(rng.range(16, 1040), 8),
        }
        heap.tally.failed == 0
    });
    let elapsed = start.elapsed();
    slots.iter().flatten().for_each(|block| heap.check(block));
    Outcome {
        tally: heap.tally,
        elapsed,
        complete: p.finished(done, steps),
        figure: None,
        live_peak_exact: true,
        detail: String::new(),
    }
}

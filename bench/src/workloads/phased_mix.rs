//! `phased-mix`: phases that each hold a working set of a different size mix, one after
//! another: 16–128 B (16384 slots), 512 B–4 KiB (1024 slots), 8–32 KiB (128 slots), each about
//! 1–2.5 MiB; each step frees a random slot's block if it holds one, else fills it. At a phase's
//! end its blocks are all freed, and a quiet spell follows (a service between kinds of
//! request). The caches that served one phase hold memory the next does not use: keeping it
//! is fast when the phase comes back, and costs memory until it does.

use std::alloc::GlobalAlloc;
use std::time::Instant;

use super::spells::{Spells, lengths};
use super::{Outcome, Params};
use crate::block::{Block, Heap};
use crate::rng::Rng;

/// Each phase: smallest and largest block, slots.
const PHASES: [(usize, usize, usize); 3] =
    [(16, 128, 16384), (512, 4096, 1024), (8192, 32768, 128)];

pub fn run<A: GlobalAlloc>(alloc: &A, p: &Params) -> Outcome {
    let (busy, quiet) = lengths(p, 400, 200);
    let mut rng = Rng::new(p.seed);
    let mut heap = Heap::new(alloc, p.seed);
    let mut spells = Spells::new(p, 3, 15);
    let wall = Instant::now();
    while spells.more(p) {
        let (lo, hi, n) = PHASES[spells.done as usize % PHASES.len()];
        let mut slots: Vec<Option<Block>> = (0..n).map(|_| None).collect();
        let start = Instant::now();
        while start.elapsed() < busy && heap.tally.failed == 0 {
            for _ in 0..256 {
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

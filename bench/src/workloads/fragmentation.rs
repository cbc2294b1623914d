//! `fragmentation`: sizes log-uniform in a window of 16 B–64 KiB, a live set of about 64 MiB,
//! and phases that change the window: each phase allocates until the live set is back at its
//! target, then frees a random half of everything live (old phases' blocks included).

use std::alloc::GlobalAlloc;
use std::time::Instant;

use super::{Outcome, Params};
use crate::block::{Block, Heap};
use crate::rng::Rng;

/// Size windows, as binary orders of magnitude (16 B = 2^4 to 64 KiB = 2^16), in phase order.
const WINDOWS: [(u32, u32); 6] = [(4, 16), (4, 8), (10, 16), (6, 12), (8, 14), (4, 10)];

pub fn run<A: GlobalAlloc>(alloc: &A, p: &Params) -> Outcome {
    let target: u64 = p.scaled(8 << 20, 64 << 20);
    let phases = p.planned(3, 12);
    let mut rng = Rng::new(p.seed);
    let mut heap = Heap::new(alloc, p.seed);
    let mut live: Vec<Block> = Vec::with_capacity((target / 16) as usize);
    let start = Instant::now();
    let mut phases_done = 0;
    'phases: for phase in 0..phases {
        let (lo, hi) = WINDOWS[phase as usize % WINDOWS.len()];
        while heap.tally.live < target {
            if p.out_of_time() {
                break 'phases;
            }
            for _ in 0..64 {
                match heap.alloc(rng.log_uniform(1 << lo, 1 << hi), 8) {
                    Some(block) => live.push(block),
                    None => break 'phases,
                }
            }
        }
        for i in 0..live.len() / 2 {
            if i.is_multiple_of(256) && p.out_of_time() {
                break 'phases;
            }
            let block = live.swap_remove(rng.below(live.len()));
            // SAFETY: every block in `live` came from `heap`.
            unsafe { heap.free(block) };
        }
        phases_done += 1;
    }
    let elapsed = start.elapsed();
    live.iter().for_each(|block| heap.check(block));
    Outcome {
        tally: heap.tally,
        elapsed,
        complete: p.finished(phases_done, phases),
        figure: None,
        live_peak_exact: true,
        detail: format!("phases:{phases_done}"),
    }
}

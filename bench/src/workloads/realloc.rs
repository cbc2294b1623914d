//! `realloc`: many buffers, each step growing or shrinking a random one by a random factor
//! between 1/2 and 2 (log-uniform), within 8 B–64 KiB.

use std::alloc::GlobalAlloc;
use std::time::Instant;

use super::{Outcome, Params};
use crate::block::{Block, Heap};
use crate::rng::Rng;

const MIN: usize = 8;
const MAX: usize = 64 << 10;

pub fn run<A: GlobalAlloc>(alloc: &A, p: &Params) -> Outcome {
    let buffers = p.scaled(200, 1000);
    let steps = p.planned(20_000, 1_000_000);
    let mut rng = Rng::new(p.seed);
    let mut heap = Heap::new(alloc, p.seed);
    let start = Instant::now();
    let mut blocks: Vec<Block> = Vec::with_capacity(buffers);
    for _ in 0..buffers {
        match heap.alloc(rng.log_uniform(MIN, MAX), 8) {
            Some(block) => blocks.push(block),
            None => break,
        }
    }
    let done = if blocks.len() == buffers {
        p.repeat(steps, || {
            let block = &mut blocks[rng.below(buffers)];
            let size = block.size();
            let new_size = rng.log_uniform((size / 2).max(MIN), (size * 2).min(MAX));
            // SAFETY: every block in `blocks` came from `heap`.
            unsafe { heap.realloc(block, new_size) }
        })
    } else {
        0
    };
    let elapsed = start.elapsed();
    blocks.iter().for_each(|block| heap.check(block));
    Outcome {
        tally: heap.tally,
        elapsed,
        complete: blocks.len() == buffers && p.finished(done, steps),
        figure: None,
        live_peak_exact: true,
        detail: String::new(),
    }
}

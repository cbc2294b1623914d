//! `large-ws`: hundreds of MiB of 64–512 B blocks, touched at random (cache-miss heavy). The
//! blocks are allocated up to the target, then each step reads one random block through and
//! replaces another random one with a block of a new size.

use std::alloc::GlobalAlloc;
use std::time::Instant;

use super::{Outcome, Params};
use crate::block::{Block, Heap};
use crate::rng::Rng;

pub fn run<A: GlobalAlloc>(alloc: &A, p: &Params) -> Outcome {
    let target: u64 = p.scaled(16 << 20, 256 << 20);
    let steps = p.planned(100_000, 2_000_000);
    let mut rng = Rng::new(p.seed);
    let mut heap = Heap::new(alloc, p.seed);
    let mut blocks: Vec<Block> = Vec::with_capacity((target / 64) as usize);
    let start = Instant::now();
    let mut filled = true;
    while heap.tally.live < target {
        if blocks.len().is_multiple_of(256) && p.out_of_time() {
            filled = false;
            break;
        }
        match heap.alloc(rng.range(64, 512), 8) {
            Some(block) => blocks.push(block),
            None => {
                filled = false;
                break;
            }
        }
    }
    let done = if filled {
        p.repeat(steps, || {
            heap.check(&blocks[rng.below(blocks.len())]);
            let i = rng.below(blocks.len());
            let Some(new) = heap.alloc(rng.range(64, 512), 8) else {
                return false;
            };
            let old = std::mem::replace(&mut blocks[i], new);
            // SAFETY: every block in `blocks` came from `heap`.
            unsafe { heap.free(old) };
            true
        })
    } else {
        0
    };
    let elapsed = start.elapsed();
    blocks.iter().for_each(|block| heap.check(block));
    Outcome {
        tally: heap.tally,
        elapsed,
        complete: filled && p.finished(done, steps),
        figure: None,
        live_peak_exact: true,
        detail: format!("blocks:{}", blocks.len()),
    }
}

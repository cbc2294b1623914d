//! `heap-efficiency`: how much of a fixed 128 MiB region is in use at the first failed
//! allocation, in the shape of talc's heap-efficiency benchmark: 5/10 allocate (sizes leaning
//! small, below 10 000 B), 1/10 free a random block, 4/10 reallocate a random block to 1 B–10×
//! that, until an allocation or reallocation fails. The figure is the requested bytes live at
//! that moment over the region's size, averaged over seeds, each with a fresh region and a
//! fresh allocator. Only allocators that can run over a region take part.

use std::alloc::GlobalAlloc;
use std::time::Instant;

use super::{Outcome, Params};
use crate::allocators::{Alloc, Visit};
use crate::block::{Block, Heap, Tally};
use crate::rng::Rng;

const REGION: usize = 128 << 20;
const MAX_SIZE: usize = 10_000;
const REALLOC_MULTIPLE: usize = 10;

/// One seed's run, up to the first failure.
struct Trial {
    seed: u64,
}

impl Visit for Trial {
    /// The fraction of the region in use at the failure, and the counts.
    type Output = (f64, Tally);

    fn visit<A: GlobalAlloc + Sync>(self, alloc: &A) -> (f64, Tally) {
        let mut rng = Rng::new(self.seed);
        let mut heap = Heap::new(alloc, self.seed);
        let mut blocks: Vec<Block> = Vec::new();
        loop {
            match rng.below(10) {
                0..=4 => {
                    let cap = rng.range(16, MAX_SIZE - 1);
                    let size = rng.range(4, cap - 1);
                    let align = 8 << ((rng.next_u64() as u16).trailing_zeros() / 2);
                    match heap.alloc(size, align) {
                        Some(block) => blocks.push(block),
                        None => break,
                    }
                }
                5 if !blocks.is_empty() => {
                    let block = blocks.swap_remove(rng.below(blocks.len()));
                    // SAFETY: every block in `blocks` came from `heap`.
                    unsafe { heap.free(block) };
                }
                6..=9 if !blocks.is_empty() => {
                    let i = rng.below(blocks.len());
                    let new_size = rng.range(1, MAX_SIZE * REALLOC_MULTIPLE - 1);
                    // SAFETY: as above.
                    if !unsafe { heap.realloc(&mut blocks[i], new_size) } {
                        break;
                    }
                }
                _ => {}
            }
        }
        let in_use: usize = blocks.iter().map(Block::size).sum();
        blocks.iter().for_each(|block| heap.check(block));
        (in_use as f64 / REGION as f64, heap.tally)
    }
}

pub fn run(alloc: Alloc, p: &Params) -> Outcome {
    let seeds = p.scaled(3, 30);
    let start = Instant::now();
    let (mut tally, mut fractions) = (Tally::default(), Vec::new());
    for i in 0..seeds {
        if i > 0 && p.out_of_time() {
            break;
        }
        let trial = Trial {
            seed: p.seed.wrapping_add(i),
        };
        let (fraction, trial_tally) = alloc
            .visit_in_region(REGION, trial)
            .expect("heap-efficiency runs only allocators with a region form");
        fractions.push(fraction);
        tally.merge(&trial_tally);
    }
    let mean = fractions.iter().sum::<f64>() / fractions.len() as f64;
    let min = fractions.iter().copied().fold(f64::INFINITY, f64::min);
    let max = fractions.iter().copied().fold(0.0, f64::max);
    Outcome {
        tally,
        elapsed: start.elapsed(),
        complete: fractions.len() == seeds as usize,
        figure: Some(mean),
        live_peak_exact: false,
        detail: format!("seeds:{};min:{min:.4};max:{max:.4}", fractions.len()),
    }
}

//! `random-actions`: the shape of talc's published random-actions benchmark, so that these
//! figures can be set against its own. For each maximum size (200 B to 30 000 B) every thread
//! takes the same number of actions: 1/7 reallocate a random block to 1 B–3× the maximum,
//! 3/7 allocate (always while a thread holds fewer than 300 blocks), 3/7 free a random block.
//! Sizes lean small (uniform below a cap that is itself uniform below the maximum); alignments
//! are mostly 8 (75%), then 16, 32, ... Threads share the allocator and start each maximum size
//! together; what they hold at the end of a size is freed before the next. Thread `t` is pinned
//! to CPU `t` (modulo the CPU count).

use std::alloc::GlobalAlloc;
use std::fmt::Write;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use super::{Outcome, Params};
use crate::block::{Block, Heap, Tally};
use crate::pin::pin;
use crate::rng::Rng;

const MAX_SIZES: [usize; 5] = [200, 1000, 3000, 10000, 30000];
/// Below this many blocks a thread always allocates.
const MIN_BLOCKS: usize = 300;
/// Reallocations go up to this multiple of the maximum size.
const REALLOC_MULTIPLE: usize = 3;

/// A size in `[4, max)`, leaning small.
fn size(rng: &mut Rng, max: usize) -> usize {
    let cap = rng.range(16, max - 1);
    rng.range(4, cap - 1)
}

/// 8 with probability 3/4, 16 with 3/16, 32 with 3/64, ... (up to 2048).
fn align(rng: &mut Rng) -> usize {
    8 << ((rng.next_u64() as u16).trailing_zeros() / 2)
}

/// One thread's actions at one maximum size; false if they were cut short.
fn actions<A: GlobalAlloc>(
    heap: &mut Heap<'_, A>,
    rng: &mut Rng,
    max: usize,
    count: u64,
    p: &Params,
) -> bool {
    let mut blocks: Vec<Block> = Vec::with_capacity(4 * MIN_BLOCKS);
    let done = p.repeat(count, || {
        let action = rng.below(7);
        if action == 6 {
            if blocks.is_empty() {
                return true;
            }
            let i = rng.below(blocks.len());
            let new_size = rng.range(1, max * REALLOC_MULTIPLE - 1);
            // SAFETY: every block in `blocks` came from `heap`.
            unsafe { heap.realloc(&mut blocks[i], new_size) }
        } else if action < 3 || blocks.len() < MIN_BLOCKS {
            let (size, align) = (size(rng, max), align(rng));
            heap.alloc(size, align).map(|b| blocks.push(b)).is_some()
        } else {
            let block = blocks.swap_remove(rng.below(blocks.len()));
            // SAFETY: as above.
            unsafe { heap.free(block) };
            true
        }
    });
    for block in blocks {
        // SAFETY: as above.
        unsafe { heap.free(block) };
    }
    done == count
}

pub fn run<A: GlobalAlloc + Sync>(alloc: &A, p: &Params) -> Outcome {
    let count = p.scaled(20_000, 1_000_000);
    let barrier = Barrier::new(p.threads);
    type PerSize = Vec<(u64, Duration)>;
    let results: Vec<(Tally, PerSize, bool)> = std::thread::scope(|s| {
        let threads: Vec<_> = (0..p.threads)
            .map(|t| {
                let barrier = &barrier;
                s.spawn(move || {
                    pin(t);
                    let seed = p.thread_seed(t);
                    let (mut rng, mut heap) = (Rng::new(seed), Heap::new(alloc, seed));
                    let (mut per_size, mut complete) = (Vec::new(), true);
                    for max in MAX_SIZES {
                        barrier.wait();
                        let (start, ops) = (Instant::now(), heap.tally.ops);
                        complete &= actions(&mut heap, &mut rng, max, count, p);
                        barrier.wait();
                        per_size.push((heap.tally.ops - ops, start.elapsed()));
                    }
                    (heap.tally, per_size, complete)
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().expect("worker"))
            .collect()
    });
    let mut tally = Tally::default();
    results.iter().for_each(|(t, _, _)| tally.merge(t));
    // Per maximum size: every thread's calls over the slowest thread's time.
    let mut detail = String::new();
    let mut elapsed = Duration::ZERO;
    for (i, max) in MAX_SIZES.into_iter().enumerate() {
        let ops: u64 = results.iter().map(|(_, t, _)| t[i].0).sum();
        let time = results
            .iter()
            .map(|(_, t, _)| t[i].1)
            .max()
            .expect("a thread");
        elapsed += time;
        let sep = if i == 0 { "" } else { ";" };
        let _ = write!(
            detail,
            "{sep}max{max}:{:.0}",
            ops as f64 / time.as_secs_f64()
        );
    }
    Outcome {
        tally,
        elapsed,
        complete: results.iter().all(|(_, _, complete)| *complete),
        figure: None,
        live_peak_exact: p.threads == 1,
        detail,
    }
}

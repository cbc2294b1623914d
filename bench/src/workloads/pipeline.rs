//! `pipeline`: a producer-consumer pipeline that starts and stops. Each job, pairs of threads
//! start; each producer sends blocks of 16–1040 B in batches to its consumer, which checks and
//! frees them (every block freed on another thread, usually another CPU); at the job's end the
//! threads stop and the pipeline is idle until the next job. A pipeline's caches and depots
//! fill while it runs and are dead weight while it is idle.

use std::alloc::GlobalAlloc;
use std::sync::mpsc::sync_channel;
use std::time::Instant;

use super::spells::{Spells, lengths};
use super::{Outcome, Params};
use crate::block::{Block, Heap, Tally};
use crate::rng::Rng;

const BATCH: usize = 64;
/// Batches in flight per pair.
const IN_FLIGHT: usize = 64;

type Batch = [Option<Block>; BATCH];

pub fn run<A: GlobalAlloc + Sync>(alloc: &A, p: &Params) -> Outcome {
    let (busy, quiet) = lengths(p, 300, 300);
    let mut spells = Spells::new(p, 3, 15);
    let mut tally = Tally::default();
    let wall = Instant::now();
    while spells.more(p) {
        let start = Instant::now();
        let job = spells.done;
        std::thread::scope(|s| {
            let mut workers = Vec::new();
            for pair in 0..p.threads / 2 {
                let (tx, rx) = sync_channel::<Batch>(IN_FLIGHT);
                let seed = p.seed ^ (job << 16) ^ pair as u64;
                workers.push(s.spawn(move || {
                    let mut heap = Heap::new(alloc, seed);
                    let mut rng = Rng::new(seed);
                    while start.elapsed() < busy {
                        let mut batch: Batch = [const { None }; BATCH];
                        for slot in &mut batch {
                            *slot = heap.alloc(rng.range(16, 1040), 8);
                        }
                        if tx.send(batch).is_err() {
                            break;
                        }
                    }
                    heap.tally
                }));
                workers.push(s.spawn(move || {
                    let mut heap = Heap::new(alloc, !seed);
                    for block in rx.into_iter().flatten().flatten() {
                        // SAFETY: every block sent came from a heap over `alloc`.
                        unsafe { heap.free(block) };
                    }
                    heap.tally
                }));
            }
            for worker in workers {
                tally.merge(&worker.join().expect("pipeline worker"));
            }
        });
        spells.busy_then_quiet(start, quiet, p);
    }
    let (elapsed, detail) = spells.busy(wall.elapsed());
    Outcome {
        tally,
        elapsed,
        complete: tally.failed == 0 && p.finished(spells.done, spells.planned),
        figure: None,
        live_peak_exact: false,
        detail,
    }
}

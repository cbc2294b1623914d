//! `larson`: a larson-style server. Each thread owns an array of blocks of 8–1000 B and replaces
//! random ones (check and free the old block, allocate and pattern a new one) for a round; then
//! the arrays move on to the next thread, which frees what its predecessor allocated, as a
//! server hands a connection's objects from one worker to the next. Thread `t` is pinned to CPU
//! `t` (modulo the CPU count), so with as many threads as CPUs each has a CPU of its own and every
//! hand-over crosses CPUs.

use std::alloc::GlobalAlloc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Barrier, Mutex};
use std::time::Instant;

use super::handoff::join_all;
use super::{Outcome, Params};
use crate::block::{Block, Heap};
use crate::pin::pin;
use crate::rng::Rng;

const BLOCKS_PER_THREAD: usize = 2000;
const MIN: usize = 8;
const MAX: usize = 1000;

pub fn run<A: GlobalAlloc + Sync>(alloc: &A, p: &Params) -> Outcome {
    let rounds = p.scaled(4, 20);
    let steps = p.scaled(5_000, 100_000);
    let threads = p.threads;
    let arrays: Vec<Mutex<Vec<Block>>> = (0..threads).map(|_| Mutex::new(Vec::new())).collect();
    let (start_line, round_line) = (Barrier::new(threads + 1), Barrier::new(threads));
    // `failed`: an allocation failed somewhere; `stop`: the round leader's verdict for all.
    let (failed, stop) = (AtomicBool::new(false), AtomicBool::new(false));
    let (tally, complete, elapsed) = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let (arrays, start_line, round_line) = (&arrays, &start_line, &round_line);
                let (failed, stop) = (&failed, &stop);
                s.spawn(move || {
                    pin(t);
                    let seed = p.thread_seed(t);
                    let (mut rng, mut heap) = (Rng::new(seed), Heap::new(alloc, seed));
                    start_line.wait();
                    let mut own = arrays[t].lock().expect("array lock");
                    while own.len() < BLOCKS_PER_THREAD {
                        match heap.alloc(rng.range(MIN, MAX), 8) {
                            Some(block) => own.push(block),
                            None => {
                                failed.store(true, Relaxed);
                                break;
                            }
                        }
                    }
                    drop(own);
                    let mut rounds_done = 0;
                    for round in 0..rounds {
                        // Every array is full before the first hand-over; before each round
                        // the leader decides for all whether to go on.
                        if round_line.wait().is_leader() {
                            stop.store(p.out_of_time() || failed.load(Relaxed), Relaxed);
                        }
                        round_line.wait();
                        if stop.load(Relaxed) {
                            break;
                        }
                        let mut array = arrays[(t + round + 1) % threads]
                            .lock()
                            .expect("array lock");
                        let done = p.repeat(steps, || {
                            let Some(new) = heap.alloc(rng.range(MIN, MAX), 8) else {
                                failed.store(true, Relaxed);
                                return false;
                            };
                            let i = rng.below(array.len());
                            let old = std::mem::replace(&mut array[i], new);
                            // SAFETY: every block in the arrays came from a heap over `alloc`.
                            unsafe { heap.free(old) };
                            true
                        });
                        rounds_done += usize::from(done == steps);
                    }
                    (heap.tally, rounds_done == rounds)
                })
            })
            .collect();
        start_line.wait();
        let start = Instant::now();
        let (tally, complete) = join_all(workers, "worker");
        (tally, complete, start.elapsed())
    });
    let mut survivors = Heap::new(alloc, 0);
    for array in &arrays {
        let array = array.lock().expect("array lock");
        array.iter().for_each(|block| survivors.check(block));
    }
    let mut tally = tally;
    tally.corrupt += survivors.tally.corrupt;
    Outcome {
        tally,
        elapsed,
        complete,
        figure: None,
        live_peak_exact: false,
        detail: String::new(),
    }
}

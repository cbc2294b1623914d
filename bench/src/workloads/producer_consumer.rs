//! `producer-consumer`: threads in pairs; each producer allocates blocks of 16–1040 B, patterns
//! them and sends them in batches over a bounded channel to its consumer, which checks and frees
//! them. Every block is freed by another thread than the one that allocated it, on another CPU:
//! the producer of pair `i` is pinned to CPU `2i`, its consumer to CPU `2i + 1` (modulo the CPU
//! count, see `pin.rs`).

use std::alloc::GlobalAlloc;
use std::sync::Barrier;
use std::sync::mpsc::{SyncSender, sync_channel};
use std::time::Instant;

use super::handoff::{self, drain, join_all};
use super::{Outcome, Params};
use crate::block::Heap;
use crate::pin::pin;
use crate::rng::Rng;

const BATCH: usize = 64;
type Batch = handoff::Batch<BATCH>;
/// Batches in flight per pair: the channel's bound.
const IN_FLIGHT: usize = 16;

/// Makes `total` blocks (fewer if time runs out); true when all were made, or when the run
/// lasts a set time and ran to it.
fn produce<A: GlobalAlloc>(
    heap: &mut Heap<'_, A>,
    seed: u64,
    total: u64,
    tx: SyncSender<Batch>,
    p: &Params,
) -> bool {
    let mut rng = Rng::new(seed);
    let mut made = 0;
    while made < total && !p.out_of_time() {
        let mut batch: Batch = [const { None }; BATCH];
        for slot in &mut batch {
            *slot = heap.alloc(rng.range(16, 1040), 8);
            if slot.is_none() {
                return false;
            }
        }
        made += BATCH as u64;
        tx.send(batch).expect("the consumer outlives its producer");
    }
    p.finished(made, total)
}

pub fn run<A: GlobalAlloc + Sync>(alloc: &A, p: &Params) -> Outcome {
    let total = p.planned(100_000, 4_000_000);
    let barrier = Barrier::new(p.threads + 1);
    let (tally, complete, elapsed) = std::thread::scope(|s| {
        let mut producers = Vec::new();
        let mut consumers = Vec::new();
        for pair in 0..p.threads / 2 {
            let (tx, rx) = sync_channel::<Batch>(IN_FLIGHT);
            let barrier = &barrier;
            let seed = p.thread_seed(pair);
            producers.push(s.spawn(move || {
                pin(2 * pair);
                let mut heap = Heap::new(alloc, seed);
                barrier.wait();
                let complete = produce(&mut heap, seed, total, tx, p);
                (heap.tally, complete)
            }));
            consumers.push(s.spawn(move || {
                pin(2 * pair + 1);
                let mut heap = Heap::new(alloc, !seed);
                barrier.wait();
                drain(&mut heap, rx);
                heap.tally
            }));
        }
        barrier.wait();
        let start = Instant::now();
        let (mut tally, complete) = join_all(producers, "producer");
        for consumer in consumers {
            tally.merge(&consumer.join().expect("consumer"));
        }
        (tally, complete, start.elapsed())
    });
    Outcome {
        tally,
        elapsed,
        complete,
        figure: None,
        live_peak_exact: false,
        detail: String::new(),
    }
}

//! `oversubscribed`: four threads per CPU in a ring. Each allocates batches of small blocks
//! (16–256 B), patterns them and passes them to the next thread, and checks and frees the
//! batches it gets from the previous one. With more threads than CPUs, threads are preempted
//! inside the allocator; every block is freed by another thread than the one that made it, on
//! another CPU: member `i` is pinned to CPU `i` modulo the CPU count, so neighbours in the ring
//! sit on different CPUs, and each CPU has exactly four members. The thread count is four per
//! CPU, whatever the cell says.

use std::alloc::GlobalAlloc;
use std::sync::Barrier;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::Instant;

use super::handoff::{self, join_all};
use super::{Outcome, Params};
use crate::block::Heap;
use crate::pin::{cpus, pin};
use crate::rng::Rng;

const BATCH: usize = 32;
type Batch = handoff::Batch<BATCH>;
/// Threads per CPU.
const PER_CPU: usize = 4;

/// One thread of the ring: `rounds` times, make a batch and send it on, then free the batch
/// from the previous thread. True when every round ran.
fn member<A: GlobalAlloc>(
    heap: &mut Heap<'_, A>,
    seed: u64,
    rounds: u64,
    tx: SyncSender<Batch>,
    rx: Receiver<Batch>,
    p: &Params,
) -> bool {
    let mut rng = Rng::new(seed);
    let (mut failed, mut late) = (false, false);
    for _ in 0..rounds {
        // Out of time or memory: keep passing empty batches so that the ring drains.
        let mut batch: Batch = [const { None }; BATCH];
        late |= p.out_of_time();
        if !failed && !late {
            for slot in &mut batch {
                *slot = heap.alloc(rng.range(16, 256), 8);
                failed |= slot.is_none();
            }
        }
        tx.send(batch).expect("the ring outlives its members");
        let got = rx.recv().expect("the previous member sends as often");
        for block in got.into_iter().flatten() {
            // SAFETY: every block sent came from a heap over the same allocator.
            unsafe { heap.free(block) };
        }
    }
    !failed && !late
}

pub fn run<A: GlobalAlloc + Sync>(alloc: &A, p: &Params) -> Outcome {
    let threads = PER_CPU * cpus();
    let rounds = p.scaled(100, 50_000);
    let barrier = Barrier::new(threads + 1);
    let (tally, complete, elapsed) = std::thread::scope(|s| {
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..threads).map(|_| sync_channel::<Batch>(4)).unzip();
        let mut rxs: Vec<Option<Receiver<Batch>>> = rxs.into_iter().map(Some).collect();
        let members: Vec<_> = txs
            .into_iter()
            .enumerate()
            .map(|(i, tx)| {
                // Member `i` sends to `i + 1` and receives from `i - 1`.
                let rx = rxs[(i + threads - 1) % threads].take().unwrap();
                let (barrier, seed) = (&barrier, p.thread_seed(i));
                s.spawn(move || {
                    pin(i);
                    let mut heap = Heap::new(alloc, seed);
                    barrier.wait();
                    let complete = member(&mut heap, seed, rounds, tx, rx, p);
                    (heap.tally, complete)
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let (tally, complete) = join_all(members, "ring member");
        (tally, complete, start.elapsed())
    });
    Outcome {
        tally,
        elapsed,
        complete,
        figure: None,
        live_peak_exact: false,
        detail: format!("threads:{threads}"),
    }
}

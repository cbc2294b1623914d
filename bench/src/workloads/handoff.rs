//! Blocks handed from one thread to another: batches sent over channels, the threads that free
//! them, and the join that adds up the threads' counts.

use std::alloc::GlobalAlloc;
use std::sync::mpsc::{Receiver, sync_channel};
use std::thread::ScopedJoinHandle;
use std::time::{Duration, Instant};

use crate::block::{Block, Heap, Tally};
use crate::pin::pin;
use crate::rng::Rng;

/// Blocks sent together (a fixed array: sending it allocates nothing).
pub type Batch<const N: usize> = [Option<Block>; N];

/// Frees every block it receives, until the sender hangs up.
pub fn drain<A: GlobalAlloc, const N: usize>(heap: &mut Heap<'_, A>, rx: Receiver<Batch<N>>) {
    for block in rx.into_iter().flatten().flatten() {
        // SAFETY: every block sent came from a heap over the same allocator.
        unsafe { heap.free(block) };
    }
}

/// Joins threads that return their counts and whether they did all their work: the counts
/// added up, and whether every thread did.
pub fn join_all<'s>(
    workers: impl IntoIterator<Item = ScopedJoinHandle<'s, (Tally, bool)>>,
    what: &str,
) -> (Tally, bool) {
    let (mut tally, mut complete) = (Tally::default(), true);
    for worker in workers {
        let (t, c) = worker.join().expect(what);
        tally.merge(&t);
        complete &= c;
    }
    (tally, complete)
}

/// One busy spell of `pairs` producer-consumer pairs: until `busy` has passed since `start`,
/// each producer fills batches with blocks of `layout(rng)` (size, alignment) and sends them
/// over a channel holding `in_flight` batches to its consumer, which frees them. Pair `i` is
/// seeded with `seed ^ i`; its producer is pinned to CPU `2i` and its consumer to CPU `2i + 1`
/// (modulo the CPU count), so that every block is freed on another CPU. Returns all the threads' counts together.
pub fn pairs_until<A: GlobalAlloc + Sync, const N: usize>(
    alloc: &A,
    pairs: usize,
    seed: u64,
    (start, busy): (Instant, Duration),
    in_flight: usize,
    layout: impl Fn(&mut Rng) -> (usize, usize) + Copy + Send,
    what: &str,
) -> Tally {
    let mut tally = Tally::default();
    std::thread::scope(|s| {
        let mut workers = Vec::new();
        for pair in 0..pairs {
            let (tx, rx) = sync_channel::<Batch<N>>(in_flight);
            let seed = seed ^ pair as u64;
            workers.push(s.spawn(move || {
                pin(2 * pair);
                let mut heap = Heap::new(alloc, seed);
                let mut rng = Rng::new(seed);
                while start.elapsed() < busy {
                    let mut batch: Batch<N> = [const { None }; N];
                    for slot in &mut batch {
                        let (size, align) = layout(&mut rng);
                        *slot = heap.alloc(size, align);
                    }
                    if tx.send(batch).is_err() {
                        break;
                    }
                }
                heap.tally
            }));
            workers.push(s.spawn(move || {
                pin(2 * pair + 1);
                let mut heap = Heap::new(alloc, !seed);
                drain(&mut heap, rx);
                heap.tally
            }));
        }
        for worker in workers {
            tally.merge(&worker.join().expect(what));
        }
    });
    tally
}

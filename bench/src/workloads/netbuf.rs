//! `netbuf`: kernel-like network buffers. A receive thread allocates 2 KiB buffers (64-byte
//! aligned, as a driver's DMA buffers) and hands them in batches to a transmit thread, which
//! checks and frees them: every buffer is freed on another CPU than the one that allocated it.
//! Traffic comes in bursts, with a deep queue (up to 8192 buffers, 16 MiB, in flight when the
//! transmit side falls behind), and quiet spells between them, when only a trickle flows.

use std::alloc::GlobalAlloc;
use std::time::{Duration, Instant};

use super::handoff::pairs_until;
use super::spells::{Spells, lengths};
use super::{Outcome, Params};
use crate::block::{Heap, Tally};

const BUFFER: usize = 2048;
const BATCH: usize = 32;
/// Batches a burst keeps in flight.
const IN_FLIGHT: usize = 256;

pub fn run<A: GlobalAlloc + Sync>(alloc: &A, p: &Params) -> Outcome {
    let (busy, quiet) = lengths(p, 300, 400);
    let mut spells = Spells::new(p, 3, 12);
    let mut tally = Tally::default();
    let wall = Instant::now();
    while spells.more(p) {
        let start = Instant::now();
        let seed = p.seed ^ (spells.done << 16);
        tally.merge(&pairs_until::<_, BATCH>(
            alloc,
            p.threads / 2,
            seed,
            (start, busy),
            IN_FLIGHT,
            |_| (BUFFER, 64),
            "netbuf worker",
        ));
        spells.busy_then_quiet(start, Duration::ZERO, p);
        trickle(alloc, p.seed, quiet, &mut tally);
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

/// A quiet spell: a buffer a millisecond, received and sent on one thread.
fn trickle<A: GlobalAlloc>(alloc: &A, seed: u64, quiet: Duration, tally: &mut Tally) {
    let mut heap = Heap::new(alloc, seed);
    let end = Instant::now() + quiet;
    while Instant::now() < end {
        if let Some(block) = heap.alloc(BUFFER, 64) {
            // SAFETY: just allocated from `heap`.
            unsafe { heap.free(block) };
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    tally.merge(&heap.tally);
}

//! `pipeline`: a producer-consumer pipeline that starts and stops. Each job, pairs of threads
//! start; each producer sends blocks of 16–1040 B in batches to its consumer, which checks and
//! frees them (every block freed on another thread, usually another CPU); at the job's end the
//! threads stop and the pipeline is idle until the next job. A pipeline's caches and depots
//! fill while it runs and are dead weight while it is idle.

use std::alloc::GlobalAlloc;
use std::time::Instant;

use super::handoff::pairs_until;
use super::spells::{Spells, lengths};
use super::{Outcome, Params};
use crate::block::Tally;

const BATCH: usize = 64;
/// Batches in flight per pair.
const IN_FLIGHT: usize = 64;

pub fn run<A: GlobalAlloc + Sync>(alloc: &A, p: &Params) -> Outcome {
    let (busy, quiet) = lengths(p, 300, 300);
    let mut spells = Spells::new(p, 3, 15);
    let mut tally = Tally::default();
    let wall = Instant::now();
    while spells.more(p) {
        let start = Instant::now();
        tally.merge(&pairs_until::<_, BATCH>(
            alloc,
            p.threads / 2,
            p.seed ^ (spells.done << 16),
            (start, busy),
            IN_FLIGHT,
            |rng| (rng.range(16, 1040), 8),
            "pipeline worker",
        ));
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

//! Busy spells and quiet spells, for the workloads where no static setting is right: the
//! allocator is worked hard for a while, then left alone (a service between requests, a
//! pipeline between jobs). Their figure is throughput over the busy time only, so an allocator
//! that gives memory back in the quiet spells is not charged for the quiet; what the memory
//! costs is the run's time-averaged resident set (sampled by `cargo xtask ace-eval`).

use std::alloc::GlobalAlloc;
use std::time::{Duration, Instant};

use super::{Outcome, Params};
use crate::block::{Block, Heap};
use crate::rng::Rng;

/// The spells' lengths: `(busy, quiet)`, brief in a quick run.
pub fn lengths(p: &Params, busy_ms: u64, quiet_ms: u64) -> (Duration, Duration) {
    let scale = p.scaled(10, 1);
    (
        Duration::from_millis(busy_ms / scale),
        Duration::from_millis(quiet_ms / scale),
    )
}

/// Counts busy time across spells, and the spells done.
pub struct Spells {
    busy: Duration,
    pub done: u64,
    pub planned: u64,
}

impl Spells {
    /// `planned` spells (a quick run's count, else a full run's), or until the deadline.
    pub fn new(p: &Params, quick: u64, full: u64) -> Spells {
        Spells {
            busy: Duration::ZERO,
            done: 0,
            planned: p.planned(quick, full),
        }
    }

    /// Whether another spell is due.
    pub fn more(&self, p: &Params) -> bool {
        self.done < self.planned && !p.out_of_time()
    }

    /// Adds a busy spell that started at `start`; then sleeps for `quiet` (cut short by the
    /// deadline).
    pub fn busy_then_quiet(&mut self, start: Instant, quiet: Duration, p: &Params) {
        self.busy += start.elapsed();
        self.done += 1;
        let left = p.deadline.saturating_duration_since(Instant::now());
        std::thread::sleep(quiet.min(left));
    }

    /// The busy time, and a detail field naming both.
    pub fn busy(&self, wall: Duration) -> (Duration, String) {
        let detail = format!(
            "busy_s:{:.3};wall_s:{:.3};spells:{}",
            self.busy.as_secs_f64(),
            wall.as_secs_f64(),
            self.done
        );
        (self.busy.max(Duration::from_nanos(1)), detail)
    }
}

/// A phased workload (`phased-mix`, `bursts`): spells of `(busy_ms, quiet_ms)`, `(quick, full)`
/// of them, each holding a working set of the next of `kinds` (smallest and largest block,
/// slots) in turn. Each step frees a random slot's block if it holds one, else fills it (the
/// clock is read every `steps_per_check` steps); at a spell's end its blocks are all freed and
/// the quiet spell follows.
pub fn phases<A: GlobalAlloc>(
    alloc: &A,
    p: &Params,
    kinds: &[(usize, usize, usize)],
    (busy_ms, quiet_ms): (u64, u64),
    (quick, full): (u64, u64),
    steps_per_check: usize,
) -> Outcome {
    let (busy, quiet) = lengths(p, busy_ms, quiet_ms);
    let mut rng = Rng::new(p.seed);
    let mut heap = Heap::new(alloc, p.seed);
    let mut spells = Spells::new(p, quick, full);
    let wall = Instant::now();
    while spells.more(p) {
        let (lo, hi, n) = kinds[spells.done as usize % kinds.len()];
        let mut slots: Vec<Option<Block>> = (0..n).map(|_| None).collect();
        let start = Instant::now();
        while start.elapsed() < busy && heap.tally.failed == 0 {
            for _ in 0..steps_per_check {
                let slot = &mut slots[rng.below(n)];
                match slot.take() {
                    // SAFETY: every block in `slots` came from `heap`.
                    Some(block) => unsafe { heap.free(block) },
                    None => *slot = heap.alloc(rng.range(lo, hi), 8),
                }
            }
        }
        for block in slots.into_iter().flatten() {
            // SAFETY: as above.
            unsafe { heap.free(block) };
        }
        spells.busy_then_quiet(start, quiet, p);
    }
    let (elapsed, detail) = spells.busy(wall.elapsed());
    Outcome {
        tally: heap.tally,
        elapsed,
        complete: heap.tally.failed == 0 && p.finished(spells.done, spells.planned),
        figure: None,
        live_peak_exact: true,
        detail,
    }
}

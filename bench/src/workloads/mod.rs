//! The workloads, what each measures, and the standard matrix of (workload, threads) cells.

mod bursts;
mod fast_path;
mod fragmentation;
mod handoff;
mod heap_efficiency;
mod large_ws;
mod larson;
mod mixed;
mod netbuf;
mod oversubscribed;
mod phased_mix;
mod pipeline;
mod producer_consumer;
mod random_actions;
mod realloc;
mod spells;

use std::alloc::GlobalAlloc;
use std::time::{Duration, Instant};

use crate::allocators::{Alloc, Visit};
use crate::block::Tally;

/// A workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    FastPath,
    MixedWs400,
    Fragmentation,
    LargeWs,
    Realloc,
    RandomActions,
    HeapEfficiency,
    ProducerConsumer,
    Larson,
    PhasedMix,
    Pipeline,
    Netbuf,
    Oversubscribed,
    Bursts,
}

/// What a workload's figure is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// Successful allocator calls (allocations, frees, reallocations) per second.
    Throughput,
    /// Fraction of a fixed region in use at the first failed allocation.
    Efficiency,
    /// Time per warm alloc+free pair (instructions when counted under callgrind by the driver).
    PairCost,
}

impl Metric {
    pub fn name(self) -> &'static str {
        match self {
            Metric::Throughput => "throughput",
            Metric::Efficiency => "efficiency",
            Metric::PairCost => "pair-cost",
        }
    }
}

const ALL: [Workload; 14] = [
    Workload::FastPath,
    Workload::MixedWs400,
    Workload::Fragmentation,
    Workload::LargeWs,
    Workload::Realloc,
    Workload::RandomActions,
    Workload::HeapEfficiency,
    Workload::ProducerConsumer,
    Workload::Larson,
    Workload::PhasedMix,
    Workload::Pipeline,
    Workload::Netbuf,
    Workload::Oversubscribed,
    Workload::Bursts,
];

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Workload::FastPath => "fast-path",
            Workload::MixedWs400 => "mixed-ws400",
            Workload::Fragmentation => "fragmentation",
            Workload::LargeWs => "large-ws",
            Workload::Realloc => "realloc",
            Workload::RandomActions => "random-actions",
            Workload::HeapEfficiency => "heap-efficiency",
            Workload::ProducerConsumer => "producer-consumer",
            Workload::Larson => "larson",
            Workload::PhasedMix => "phased-mix",
            Workload::Pipeline => "pipeline",
            Workload::Netbuf => "netbuf",
            Workload::Oversubscribed => "oversubscribed",
            Workload::Bursts => "bursts",
        }
    }

    pub fn from_name(name: &str) -> Option<Workload> {
        ALL.into_iter().find(|w| w.name() == name)
    }

    pub fn metric(self) -> Metric {
        match self {
            Workload::FastPath => Metric::PairCost,
            Workload::HeapEfficiency => Metric::Efficiency,
            _ => Metric::Throughput,
        }
    }

    /// Thread counts the workload runs with: (allowed, the standard matrix's).
    fn threads(self) -> (std::ops::RangeInclusive<usize>, &'static [usize]) {
        match self {
            Workload::RandomActions => (1..=64, &[1, 2]),
            Workload::ProducerConsumer
            | Workload::Larson
            | Workload::Pipeline
            | Workload::Netbuf => (2..=64, &[2]),
            _ => (1..=1, &[1]),
        }
    }

    /// Whether the workload can run for a set time (`run --secs`) instead of its planned count:
    /// the throughput workloads the ACE evaluation uses, which must run long enough for ACE to
    /// act.
    pub fn runs_for_duration(self) -> bool {
        matches!(
            self,
            Workload::MixedWs400
                | Workload::Fragmentation
                | Workload::LargeWs
                | Workload::Realloc
                | Workload::ProducerConsumer
                | Workload::PhasedMix
                | Workload::Bursts
                | Workload::Pipeline
                | Workload::Netbuf
        )
    }

    /// Whether the threads work in pairs (one allocates, the other frees).
    fn in_pairs(self) -> bool {
        matches!(
            self,
            Workload::ProducerConsumer | Workload::Pipeline | Workload::Netbuf
        )
    }

    /// Whether `alloc` can run this workload with `threads` threads.
    pub fn accepts(self, alloc: Alloc, threads: usize) -> bool {
        let threads_ok =
            self.threads().0.contains(&threads) && (!self.in_pairs() || threads.is_multiple_of(2));
        let alloc_ok = match self {
            Workload::FastPath => true,
            Workload::HeapEfficiency => alloc.has_region_form() && alloc != Alloc::AceallocOneCpu,
            _ => alloc != Alloc::AceallocOneCpu,
        };
        threads_ok && alloc_ok
    }

    /// Runs the workload with `alloc`.
    pub fn run(self, alloc: Alloc, params: &Params) -> Outcome {
        assert!(
            self.accepts(alloc, params.threads),
            "{} does not run {} with {} threads",
            self.name(),
            alloc.name(),
            params.threads
        );
        match self {
            Workload::HeapEfficiency => heap_efficiency::run(alloc, params),
            _ => alloc.visit(Run {
                workload: self,
                params,
            }),
        }
    }
}

/// One cell of the standard matrix: a workload, a thread count, and the allocators that run it.
pub struct Cell {
    pub workload: Workload,
    pub threads: usize,
    pub allocs: Vec<Alloc>,
}

/// The standard matrix, in the order the driver runs and reports it.
pub fn matrix() -> Vec<Cell> {
    ALL.into_iter()
        .flat_map(|workload| {
            workload.threads().1.iter().map(move |&threads| Cell {
                workload,
                threads,
                allocs: Alloc::all()
                    .into_iter()
                    .filter(|&alloc| workload.accepts(alloc, threads))
                    .collect(),
            })
        })
        .collect()
}

/// How a workload is to run.
pub struct Params {
    /// A brief run (seconds, for CI) instead of the full one.
    pub quick: bool,
    pub threads: usize,
    pub seed: u64,
    /// When the run stops even if its planned operations are not done.
    pub deadline: Instant,
    /// Run until the deadline instead of for the planned count (`run --secs`; only where
    /// [`Workload::runs_for_duration`]).
    pub for_duration: bool,
}

impl Params {
    /// Whether the time limit has passed.
    pub fn out_of_time(&self) -> bool {
        Instant::now() >= self.deadline
    }

    /// `quick` or `full`, by the run's scale.
    pub fn scaled<T>(&self, quick: T, full: T) -> T {
        if self.quick { quick } else { full }
    }

    /// How many steps (or phases) to plan: `scaled(quick, full)`, or no end when the run lasts
    /// until its deadline.
    pub fn planned(&self, quick: u64, full: u64) -> u64 {
        if self.for_duration {
            u64::MAX
        } else {
            self.scaled(quick, full)
        }
    }

    /// Whether a run that did `done` of `planned` steps is complete: all done, or, when it
    /// runs for a set time, stopped by its deadline (not by a failed allocation).
    pub fn finished(&self, done: u64, planned: u64) -> bool {
        done >= planned || (self.for_duration && self.out_of_time())
    }

    /// Thread `i`'s seed (for its heap's tags and its random choices).
    pub fn thread_seed(&self, i: usize) -> u64 {
        self.seed.wrapping_add(i as u64 * 7919)
    }

    /// Runs `step` up to `total` times, checking the time limit every few hundred steps; stops
    /// early when `step` returns false (an allocation failed). Returns the steps done.
    pub fn repeat(&self, total: u64, mut step: impl FnMut() -> bool) -> u64 {
        const CHUNK: u64 = 256;
        let mut done = 0;
        while done < total && !self.out_of_time() {
            for _ in 0..CHUNK.min(total - done) {
                if !step() {
                    return done;
                }
                done += 1;
            }
        }
        done
    }
}

/// What a run did.
pub struct Outcome {
    /// All threads' counts together.
    pub tally: Tally,
    /// Time of the measured part.
    pub elapsed: Duration,
    /// False when the time limit (or a failed allocation) cut the planned operations short.
    pub complete: bool,
    /// The figure when it is not throughput (efficiency, or nanoseconds per pair).
    pub figure: Option<f64>,
    /// Whether the live-bytes peak is exact (single thread) or not meaningful (blocks move
    /// between threads).
    pub live_peak_exact: bool,
    /// Extra figures, `key:value` separated by `;` (no spaces).
    pub detail: String,
}

impl Outcome {
    /// The run's figure: the workload's own, or successful calls per second.
    pub fn value(&self) -> f64 {
        self.figure
            .unwrap_or(self.tally.ops as f64 / self.elapsed.as_secs_f64())
    }
}

/// A throughput workload, run with one allocator.
struct Run<'a> {
    workload: Workload,
    params: &'a Params,
}

impl Visit for Run<'_> {
    type Output = Outcome;

    fn visit<A: GlobalAlloc + Sync>(self, alloc: &A) -> Outcome {
        let p = self.params;
        match self.workload {
            Workload::FastPath => fast_path::run(alloc, p),
            Workload::MixedWs400 => mixed::run(alloc, p),
            Workload::Fragmentation => fragmentation::run(alloc, p),
            Workload::LargeWs => large_ws::run(alloc, p),
            Workload::Realloc => realloc::run(alloc, p),
            Workload::RandomActions => random_actions::run(alloc, p),
            Workload::ProducerConsumer => producer_consumer::run(alloc, p),
            Workload::Larson => larson::run(alloc, p),
            Workload::PhasedMix => phased_mix::run(alloc, p),
            Workload::Pipeline => pipeline::run(alloc, p),
            Workload::Netbuf => netbuf::run(alloc, p),
            Workload::Oversubscribed => oversubscribed::run(alloc, p),
            Workload::Bursts => bursts::run(alloc, p),
            Workload::HeapEfficiency => unreachable!("heap-efficiency makes its own regions"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every workload, quick, with glibc and with acealloc BALANCED: data intact, work done.
    #[test]
    fn quick_runs_pass_their_checks() {
        for cell in matrix() {
            for alloc in [
                Alloc::Glibc,
                Alloc::from_name("acealloc-balanced").unwrap(),
                Alloc::Talc,
            ] {
                if !cell.workload.accepts(alloc, cell.threads) {
                    continue;
                }
                let params = Params {
                    quick: true,
                    threads: cell.threads,
                    seed: 1,
                    deadline: Instant::now() + Duration::from_secs(60),
                    for_duration: false,
                };
                let outcome = cell.workload.run(alloc, &params);
                let what = format!(
                    "{} {} x{}",
                    cell.workload.name(),
                    alloc.name(),
                    cell.threads
                );
                assert_eq!(outcome.tally.corrupt, 0, "{what}");
                assert!(outcome.complete, "{what}");
                assert!(outcome.tally.ops > 0, "{what}");
                assert!(outcome.value() > 0.0, "{what}");
            }
        }
    }

    /// `--secs`: a run lasts until its deadline, however many steps that takes, and counts as
    /// complete; a planned run stops at its count.
    #[test]
    fn duration_runs_last_until_their_deadline() {
        let alloc = Alloc::from_name("acealloc-balanced").unwrap();
        for workload in ALL.into_iter().filter(|w| w.runs_for_duration()) {
            let threads = workload.threads().1[0];
            // Long enough for large-ws to fill its 16 MiB in a debug build on a loaded machine.
            let secs = 1.5;
            let params = Params {
                quick: true,
                threads,
                seed: 1,
                deadline: Instant::now() + Duration::from_secs_f64(secs),
                for_duration: true,
            };
            let outcome = workload.run(alloc, &params);
            let what = workload.name();
            assert!(outcome.complete, "{what}");
            // It ran to its deadline (its measured part starts after the set-up, so its
            // elapsed time may be shorter than `secs`).
            assert!(Instant::now() >= params.deadline, "{what}");
            assert_eq!(outcome.tally.corrupt + outcome.tally.failed, 0, "{what}");
        }
        let planned = Params {
            quick: true,
            threads: 1,
            seed: 1,
            deadline: Instant::now() + Duration::from_secs(60),
            for_duration: false,
        };
        assert_eq!(planned.planned(3, 12), 3);
        assert!(!planned.finished(2, 3) && planned.finished(3, 3));
    }

    #[test]
    fn the_matrix_names_every_workload_and_region_runs_only_where_possible() {
        let cells = matrix();
        for w in ALL {
            assert!(cells.iter().any(|c| c.workload == w), "{}", w.name());
            assert_eq!(Workload::from_name(w.name()), Some(w));
        }
        let he = cells
            .iter()
            .find(|c| c.workload == Workload::HeapEfficiency)
            .unwrap();
        assert!(!he.allocs.contains(&Alloc::Glibc) && he.allocs.contains(&Alloc::Talc));
        let mixed = cells
            .iter()
            .find(|c| c.workload == Workload::MixedWs400)
            .unwrap();
        assert!(!mixed.allocs.contains(&Alloc::AceallocOneCpu));
    }
}

//! ACE, the adaptive control engine: observes the allocator (and the PMU
//! where there is one) and tunes its knobs while the system runs.
//!
//! ```text
//!  timer IRQ, every CPU ──► Ace::tick ──► add this CPU's PMU counts (per-CPU slot)
//!  (hosted: ticker thread,      │          (hosted: perf_event_open deltas)
//!   perf.rs counters)           │
//!                    fast interval due? ── try-lock the engine (busy: skip)
//!                               │
//!          metrics:   lean totals (atomics only) − previous → the interval
//!          fast loop: backlog ↑ while committed ↑ → drain threshold ↓
//!                     LLC misses ↑ → diet ↓ · contention ↑ → bundles wider
//!          classes:   a class's misses over the floor → its capacity ×1.5,
//!                     from the coldest classes' within one CPU's cache
//!                     bytes at enable × the diet (classes.rs)
//!          quiet spell: idle memory, no work for the purge delay → purge
//!                     (asked of maintain); at a spell's end the delay
//!                     moves toward the one the recurring spells call for
//!                     (purges that hold the break-even time, or none);
//!                     over the memory target → delay ↓; the allocator's
//!                     own purge delay (free page runs) follows, never
//!                     under the profile's (with a memory target: never
//!                     under the break-even)
//!          slow loop: fragmentation or committed ↑ → budgeted scavenge
//!                     fragmentation ↑ → release pages ↓ · provider calls ↑ → ↑
//!                     stable for a while → knobs one step back to defaults
//!          guards:    tick over budget ×3, committed over cap,
//!                     slow-path latency over its baseline ×3 → starting
//!                     knobs for one interval: fast again in two probes
//!                     in a row → ACE off (slow still: the workload's
//!                     doing → new baseline)
//!          trace ring ──► Ace::report ──► Allocator::ace_stats (stats API)
//! ```
//!
//! Interrupt-context rules, kept by construction: the engine is a
//! const-initialised value (a `static`) and allocates nothing; every lock
//! it takes on a tick is only tried (a busy engine or depot is skipped);
//! a deciding tick measures itself with the platform clock against its
//! budget and defers the scavenge rather than overrun; all arithmetic is
//! integer or fixed point (`clippy::float_arithmetic` is denied here).
//!
//! "Up" means an interval's value is above its running average (an
//! exponentially weighted mean, weight 1/4) by a quarter plus a floor, so
//! noise around a steady level fires nothing.
#![deny(clippy::float_arithmetic)]

mod classes;
mod config;
mod fixed;
mod metrics;
mod report;
mod target;
mod trace;

#[cfg(feature = "std")]
pub mod background;
#[cfg(feature = "std")]
pub mod perf;
#[cfg(feature = "std")]
pub mod ticker;

#[cfg(test)]
mod tests;

use core::cmp::Ordering;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use spin::mutex::SpinMutex;

pub use config::AceConfig;
pub use metrics::{HwCounts, Metrics, Totals};
pub use report::AceReport;
pub use target::Tunable;
pub use trace::{Decision, Knob, Reason, TRACE_LEN};

use crate::config::{Knobs, Profile};
use classes::{ClassSizing, Move};
use config::Clocked;
use trace::Trace;

/// CPUs whose hardware counts ACE keeps (higher indices' are dropped).
pub const MAX_CPUS: usize = 64;

/// Candidates of the per-CPU cache capacity, in blocks: the one nearest
/// the capacity found at `enable` is the one the diet works on.
const CAPACITY: [u32; 5] = [4, 8, 16, 32, 64];
/// Candidates of the diet factor on the capacity, in 1/256 (0.5 to 1.0).
const DIET: [u32; 5] = [128, 160, 192, 224, 256];
/// Candidates of the bundle width, in blocks: contention widens it. (A UCB1
/// bandit over these once chose the width; its moves were found worse
/// than the defaults in the A/B evidence, `cargo xtask ace-eval`, on every
/// workload, and it went.) The capacity that serves best was the largest
/// in every workload measured, so it only moves on a diet.
const BUNDLE: [u32; 4] = [16, 32, 64, 128];
/// Candidates of the drain threshold, in blocks.
const DRAIN: [u32; 5] = [32, 64, 128, 256, 512];
/// Bundles a depot can hold before it drains: the backlog rule never takes
/// the drain threshold below this many bundles' worth. Under two, a depot
/// sends every bundle it gets straight back to the slabs and the next
/// refill carves them again: on the fragmentation workload the rule took
/// the threshold to 32 (one bundle) and ran at 0.93x the best static
/// setting (`cargo xtask ace-eval`).
const DEPOT_BUNDLES: u32 = 2;
/// Candidates of the empty-slab pages a class keeps.
const RELEASE: [u32; 4] = [1, 2, 4, 8];
/// Candidates of the purge delay, in quiet fast intervals in a row: a
/// quiet spell that lasts this long has its idle memory purged (asked of
/// the allocator's housekeeping each quiet interval from then on), and the
/// allocator's own purge delay (free page runs, `set_purge_delay_ms`) is
/// set to as long, or to the profile's if that is longer (with a memory
/// target: to the break-even time if that is longer). The start
/// is the rung nearest the allocator's delay at `enable` (the profile's),
/// else the second: one quiet interval is often a pause within a burst.
const PURGE_DELAY: [u32; 6] = [1, 2, 4, 8, 16, 32];
const PURGE_DELAY_START: usize = 1;
/// Quiet spells the purge rule remembers: it plans for the shortest.
const SPELLS: usize = 4;

/// Fewest operations in an interval for per-operation rates to count;
/// an interval with fewer is quiet.
const MIN_OPS: u64 = 1000;
/// Floors of the "up" tests: depot blocks; contended acquisitions and LLC
/// misses per million operations; fragmentation in 1/1024; committed bytes.
const BACKLOG_FLOOR: u64 = 64;
const CONTENTION_FLOOR: u64 = 1000;
const LLC_FLOOR: u64 = 1000;
const FRAGMENTATION_FLOOR: u64 = 128;
/// Fragmentation (in 1/1024) at or above which every slow interval
/// scavenges, rising or not: committed memory three times the live bytes.
const FRAGMENTATION_HIGH: u64 = 3 * 1024;
const COMMITTED_FLOOR: u64 = 1 << 20;
/// Floor of the "up" test on provider calls per million operations.
const PROVIDER_FLOOR: u64 = 100;
/// Deciding ticks over budget in a row that switch ACE off.
const OVER_BUDGET_LIMIT: u32 = 3;
/// Latency probes in a row that must find the starting knobs faster before
/// the guard switches ACE off.
const LATENCY_STRIKES: u32 = 2;
/// Fewest allocation slow paths in an interval for its mean latency to
/// count (toward the baseline or the guard): fewer are noise.
const MIN_SLOW_PATHS: u64 = 32;
/// One slow path counts at most this many times the baseline mean: a
/// thread preempted inside a refill (hosted) or a descheduled vCPU would
/// otherwise add its whole time away, and a handful of those per interval
/// swamp the mean of thousands of sub-microsecond refills.
const SLOW_PATH_CLIP: u64 = 16;

/// One CPU's hardware counts that the rules read (cycles are not kept:
/// none reads them), added by its own ticks.
struct CpuSlot {
    llc_misses: AtomicU64,
    instructions: AtomicU64,
}

/// What ACE is doing: on or off (and why), what its ticks cost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AceStatus {
    /// Whether ACE is on.
    pub enabled: bool,
    /// Why it was last switched off.
    pub off_reason: Option<Reason>,
    /// Decisions recorded in all.
    pub decisions: u64,
    /// Ticks that ran the loops (took the engine and found an interval due).
    pub deciding_ticks: u64,
    /// Clock units the last deciding tick took.
    pub last_tick: u64,
    /// Clock units the longest deciding tick took.
    pub max_tick: u64,
    /// Clock units all deciding ticks took together.
    pub total_tick: u64,
    /// The knobs ACE last set (or found at `enable`).
    pub knobs: Option<Knobs>,
}

/// The adaptive control engine. Put one in a `static` with [`new`](Self::new),
/// [`enable`](Self::enable) it with the allocator, then call
/// [`tick`](Self::tick) from the timer interrupt of every CPU.
pub struct Ace {
    enabled: AtomicBool,
    /// Clock value of the last fast interval (stored holding the engine),
    /// and its length: lets a tick that has nothing to do return after two
    /// loads.
    last_fast: AtomicU64,
    fast: AtomicU64,
    /// The tick budget in clock units: bounds each CPU's own work too.
    budget: AtomicU64,
    cpus: [CpuSlot; MAX_CPUS],
    engine: SpinMutex<Engine>,
}

impl Default for Ace {
    fn default() -> Self {
        Self::new()
    }
}

impl Ace {
    /// An engine that is off; `const` so it can be a `static`.
    pub const fn new() -> Ace {
        Ace {
            enabled: AtomicBool::new(false),
            last_fast: AtomicU64::new(0),
            fast: AtomicU64::new(u64::MAX),
            budget: AtomicU64::new(u64::MAX),
            cpus: [const {
                CpuSlot {
                    llc_misses: AtomicU64::new(0),
                    instructions: AtomicU64::new(0),
                }
            }; MAX_CPUS],
            engine: SpinMutex::new(Engine::new()),
        }
    }

    /// Switches ACE on for `target` with `config`; `clock_hz` is the rate
    /// of the target's clock (`Platform::now`): the TSC frequency from
    /// CPUID (`arch::cpu::tsc_hz`) where the CPU gives it, else a
    /// calibrated value. The knobs in force now are the defaults ACE
    /// returns to. Not from an interrupt handler (it waits for the engine).
    pub fn enable<T: Tunable>(&self, target: &T, config: AceConfig, clock_hz: u64) {
        let mut engine = self.engine.lock();
        let now = target.now();
        engine.start(target, config, Clocked::new(&config, clock_hz), now);
        engine.hw_seen = self.hw_sum();
        engine.record(now, Knob::Engine, 0, 1, Reason::Request, Metrics::default());
        self.fast.store(engine.clocked.fast, Relaxed);
        self.budget.store(engine.clocked.budget, Relaxed);
        self.last_fast.store(now, Relaxed);
        self.enabled.store(true, Relaxed);
    }

    /// Switches ACE off and puts the knobs found at `enable` back. Not from
    /// an interrupt handler (it waits for the engine).
    pub fn disable<T: Tunable>(&self, target: &T) {
        let mut engine = self.engine.lock();
        if self.enabled.load(Relaxed) {
            engine.switch_off(
                self,
                target,
                Reason::Request,
                target.now(),
                Metrics::default(),
            );
        }
    }

    /// Whether ACE is on.
    pub fn is_enabled(&self) -> bool {
        self.enabled.load(Relaxed)
    }

    /// Called by the timer interrupt on every CPU, with the CPU's hardware
    /// counts since its previous tick (`arch::pmu::Counters::sample`; `None`
    /// without a PMU). Adds them to this CPU's slot; then, when the fast
    /// interval is due and no other CPU is deciding, runs the loops.
    ///
    /// From the first `enable` on, every tick runs the allocator's
    /// housekeeping ([`Tunable::maintain`]), also once ACE is off (a guard
    /// or `disable`): the timer keeps ticking one thing either way.
    pub fn tick<T: Tunable>(&self, target: &T, hw: Option<HwCounts>) {
        let budget = self.budget.load(Relaxed);
        if budget == u64::MAX {
            // Never enabled: no budget to bound the housekeeping by.
            return;
        }
        let start = target.now();
        // Every CPU's own housekeeping (idle cache, due purges) is the
        // allocator's, on every tick, within a tick budget of its own: it
        // is not ACE's cost, and a deciding tick neither counts it against
        // ACE's budget nor shares its budget with it. A tick is thus
        // bounded by two budgets.
        target.maintain(start.saturating_add(budget));
        if !self.enabled.load(Relaxed) {
            return;
        }
        let fast = self.fast.load(Relaxed);
        if let Some(slot) = self.cpus.get(target.current_cpu())
            && let Some(hw) = hw
        {
            slot.llc_misses.fetch_add(hw.llc_misses, Relaxed);
            slot.instructions.fetch_add(hw.instructions, Relaxed);
        }
        if start.wrapping_sub(self.last_fast.load(Relaxed)) < fast {
            return;
        }
        let Some(mut engine) = self.engine.try_lock() else {
            return;
        };
        // Another CPU may have decided or switched ACE off meanwhile (it
        // stored `last_fast` holding the engine).
        if !self.enabled.load(Relaxed)
            || start.wrapping_sub(self.last_fast.load(Relaxed)) < engine.clocked.fast
        {
            return;
        }
        self.last_fast.store(start, Relaxed);
        engine.decide(self, target, target.now());
    }

    /// ACE's state. Waits for the engine: not from an interrupt handler.
    pub fn status(&self) -> AceStatus {
        self.status_of(&self.engine.lock())
    }

    /// The status, from the engine the caller holds.
    fn status_of(&self, engine: &Engine) -> AceStatus {
        AceStatus {
            enabled: self.enabled.load(Relaxed),
            off_reason: engine.off_reason,
            decisions: engine.trace.recorded(),
            deciding_ticks: engine.deciding_ticks,
            last_tick: engine.last_tick,
            max_tick: engine.max_tick,
            total_tick: engine.total_tick,
            knobs: engine.started.then_some(engine.applied),
        }
    }

    /// Copies the decisions with `seq > after` that the trace still holds
    /// into `out`, oldest first; returns how many. Pass the last `seq` seen
    /// to follow the trace. Waits for the engine: not from an interrupt
    /// handler.
    pub fn decisions(&self, after: u64, out: &mut [Decision]) -> usize {
        self.engine.lock().trace.copy_after(after, out)
    }

    /// Hardware counts of every CPU, summed (cycles: 0, not kept).
    fn hw_sum(&self) -> HwCounts {
        let mut sum = HwCounts::default();
        for slot in &self.cpus {
            sum.llc_misses = sum.llc_misses.wrapping_add(slot.llc_misses.load(Relaxed));
            sum.instructions = sum
                .instructions
                .wrapping_add(slot.instructions.load(Relaxed));
        }
        sum
    }
}

/// A running average and the "up" test on it.
#[derive(Clone, Copy)]
struct Trend {
    mean: u64,
    primed: bool,
}

impl Trend {
    const NEW: Trend = Trend {
        mean: 0,
        primed: false,
    };

    /// Whether `value` is up on the average (by a quarter plus `floor`).
    /// A rise becomes the new average (so one step change fires once, not
    /// until the average catches up); other values are folded in. The
    /// first value only primes the average.
    fn rose(&mut self, value: u64, floor: u64) -> bool {
        let up = self.primed
            && value
                > self
                    .mean
                    .saturating_add(self.mean / 4)
                    .saturating_add(floor);
        self.mean = if up || !self.primed {
            value
        } else {
            self.mean - self.mean / 4 + value / 4
        };
        self.primed = true;
        up
    }
}

/// Whether a mean slow path of `mean` is over `limit_pct` percent of `base`.
fn over_limit(mean: u64, base: u64, limit_pct: u32) -> bool {
    u128::from(mean) * 100 > u128::from(base) * u128::from(limit_pct)
}

/// What the latency guard makes of an interval.
enum Latency {
    /// Nothing to do: the loops run.
    Fine,
    /// Over the limit long enough: the starting knobs for an interval.
    Probe,
    /// A probe waits for an interval with enough slow paths.
    Probing,
    /// Slow with the starting knobs too: rebased, ACE's knobs back.
    Workload,
    /// Faster with the starting knobs, once: ACE's knobs back on probation.
    Suspect,
    /// Faster with the starting knobs in probes in a row: ACE switches off.
    Off,
}

/// Positions of the knobs ACE moves on their candidate ladders.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Positions {
    diet: usize,
    bundle: usize,
    drain: usize,
    release: usize,
}

/// The index of the candidate nearest `value`.
fn nearest(ladder: &[u32], value: u32) -> usize {
    (0..ladder.len())
        .min_by_key(|&i| ladder[i].abs_diff(value))
        .unwrap_or(0)
}

/// Everything the deciding CPU works with, behind the engine's lock.
struct Engine {
    started: bool,
    config: AceConfig,
    clocked: Clocked,
    /// The knobs found at `enable`, restored when ACE switches off.
    baseline: Knobs,
    /// The knobs ACE last set (the baseline until its first change).
    applied: Knobs,
    /// The cache capacity before the diet: [`CAPACITY`]'s nearest to the
    /// baseline's (only the diet moves the capacity).
    capacity: u32,
    at: Positions,
    defaults: Positions,
    last_slow: u64,
    totals: Totals,
    hw_seen: HwCounts,
    backlog: Trend,
    llc: Trend,
    contention: Trend,
    fragmentation: Trend,
    committed: Trend,
    /// Committed bytes at the end of the previous fast interval.
    committed_before: u64,
    /// Provider calls per million operations over slow intervals.
    provider: Trend,
    /// The totals at the last slow loop (its rates cover the whole slow
    /// interval, not only the last fast one).
    slow_totals: Totals,
    /// Whether a fast-loop rule changed a knob since the last slow loop.
    fired: bool,
    /// Slow intervals in a row with stable signals.
    stable: u32,
    /// A slow-loop scavenge the last tick's budget had no room for.
    scavenge_due: bool,
    /// This interval's quiet spell asks for its idle memory to be purged.
    purge_now: bool,
    /// Quiet fast intervals in a row (fewer than [`MIN_OPS`] operations).
    quiet: u32,
    /// The purge delay: its rung on [`PURGE_DELAY`]. Learned from demand,
    /// so not one of the knobs the slow loop restores.
    purge_delay: usize,
    /// The lengths (quiet intervals) of the last [`SPELLS`] quiet spells,
    /// and how many have ended.
    spells: [u32; SPELLS],
    spells_seen: usize,
    /// The break-even time of a quiet spell's purge, in fast intervals
    /// (at least one): LEAN's purge delay. ACE prices idle memory as LEAN
    /// does, since its job is LEAN's memory at the speed of the fastest
    /// setting: a purge in a quiet spell costs no busy time itself, only
    /// the faults that bring the memory back, and those are paid once
    /// whatever the spell's length.
    break_even: u32,
    /// The allocator's purge delay at `enable`, in fast intervals: the
    /// floor of the one ACE sets it to without a memory target, so that
    /// busy spells free and reuse page runs as the profile would.
    busy_floor: u32,
    /// The target's purge delay (ms) at `enable`, restored at switch-off;
    /// the rung last applied to it.
    purge_baseline: Option<u32>,
    purge_applied: usize,
    over_budget: u32,
    /// Mean slow path with the starting knobs, in clock units (0: not
    /// measured yet): the latency guard's baseline.
    latency_base: u64,
    /// Intervals in a row over the latency limit.
    latency_over: u32,
    /// Probes in a row that found the starting knobs faster.
    latency_strikes: u32,
    /// While a latency probe runs the starting knobs: ACE's knob positions
    /// and the mean slow path the last interval had with them.
    latency_probe: Option<(Positions, u64)>,
    /// Per-class cache capacities within the cache byte budget.
    classes: ClassSizing,
    off_reason: Option<Reason>,
    deciding_ticks: u64,
    last_tick: u64,
    max_tick: u64,
    total_tick: u64,
    trace: Trace,
}

impl Engine {
    const fn new() -> Engine {
        Engine {
            started: false,
            config: AceConfig::DEFAULT,
            clocked: Clocked {
                fast: u64::MAX,
                slow: u64::MAX,
                budget: u64::MAX,
            },
            baseline: Knobs::DEFAULT,
            applied: Knobs::DEFAULT,
            capacity: 0,
            at: Positions {
                diet: 0,
                bundle: 0,
                drain: 0,
                release: 0,
            },
            defaults: Positions {
                diet: 0,
                bundle: 0,
                drain: 0,
                release: 0,
            },
            last_slow: 0,
            totals: Totals::ZERO,
            hw_seen: HwCounts {
                llc_misses: 0,
                cycles: 0,
                instructions: 0,
            },
            backlog: Trend::NEW,
            llc: Trend::NEW,
            contention: Trend::NEW,
            fragmentation: Trend::NEW,
            committed: Trend::NEW,
            committed_before: 0,
            provider: Trend::NEW,
            slow_totals: Totals::ZERO,
            fired: false,
            stable: 0,
            scavenge_due: false,
            purge_now: false,
            quiet: 0,
            purge_delay: PURGE_DELAY_START,
            spells: [0; SPELLS],
            spells_seen: 0,
            break_even: 1,
            busy_floor: 1,
            purge_baseline: None,
            purge_applied: PURGE_DELAY_START,
            over_budget: 0,
            latency_base: 0,
            latency_over: 0,
            latency_strikes: 0,
            latency_probe: None,
            classes: ClassSizing::NEW,
            off_reason: None,
            deciding_ticks: 0,
            last_tick: 0,
            max_tick: 0,
            total_tick: 0,
            trace: Trace::new(),
        }
    }

    /// Resets every loop's state for a fresh start at `now`.
    fn start<T: Tunable>(&mut self, target: &T, config: AceConfig, clocked: Clocked, now: u64) {
        let baseline = target.knobs();
        let defaults = Positions {
            diet: DIET.len() - 1,
            bundle: nearest(&BUNDLE, baseline.bundle_width),
            drain: nearest(&DRAIN, baseline.drain_threshold),
            release: nearest(&RELEASE, baseline.release_pages),
        };
        let trace = core::mem::replace(&mut self.trace, Trace::new());
        let totals = target.totals();
        let purge_baseline = target.purge_delay_ms();
        let baseline_intervals = purge_baseline.map(|ms| {
            let intervals = u64::from(ms) / config.fast_ms.max(1);
            intervals.clamp(1, u64::from(u32::MAX)) as u32
        });
        let purge_delay =
            baseline_intervals.map_or(PURGE_DELAY_START, |n| nearest(&PURGE_DELAY, n));
        let break_even = (u64::from(Profile::Lean.purge_delay_ms()) / config.fast_ms.max(1))
            .clamp(1, u64::from(u32::MAX)) as u32;
        let busy_floor = baseline_intervals.unwrap_or(break_even);
        *self = Engine {
            started: true,
            config,
            clocked,
            baseline,
            applied: baseline,
            capacity: CAPACITY[nearest(&CAPACITY, baseline.cache_capacity)],
            at: defaults,
            defaults,
            last_slow: now,
            totals,
            slow_totals: totals,
            trace,
            purge_baseline,
            purge_delay,
            purge_applied: purge_delay,
            break_even,
            busy_floor,
            classes: ClassSizing::start(target),
            ..Engine::new()
        };
    }

    /// The knobs for the current positions. The drain threshold is never
    /// under [`DEPOT_BUNDLES`] bundles, whatever the width.
    fn knobs(&self) -> Knobs {
        let capacity = self.capacity * DIET[self.at.diet] / 256;
        let bundle = BUNDLE[self.at.bundle];
        Knobs {
            cache_capacity: capacity.max(1),
            bundle_width: bundle,
            drain_threshold: DRAIN[self.at.drain].max(DEPOT_BUNDLES * bundle),
            release_pages: RELEASE[self.at.release],
        }
    }

    fn record(
        &mut self,
        at: u64,
        knob: Knob,
        old: u64,
        new: u64,
        reason: Reason,
        metrics: Metrics,
    ) {
        self.trace.record(Decision {
            seq: 0,
            at,
            knob,
            old,
            new,
            reason,
            metrics,
        });
    }

    /// One deciding tick: the interval's metrics, the guards, the loops.
    fn decide<T: Tunable>(&mut self, ace: &Ace, target: &T, start: u64) {
        let totals = target.totals();
        let hw = ace.hw_sum();
        let delta = HwCounts {
            llc_misses: hw.llc_misses.wrapping_sub(self.hw_seen.llc_misses),
            instructions: hw.instructions.wrapping_sub(self.hw_seen.instructions),
            cycles: 0,
        };
        let m = Metrics::between(&self.totals, &totals, delta);
        (self.totals, self.hw_seen) = (totals, hw);

        if self.config.committed_cap != 0 && m.committed > self.config.committed_cap {
            self.switch_off(ace, target, Reason::CommittedCap, start, m);
            return;
        }
        let before = self.at;
        match self.latency_guard(target, &m) {
            Latency::Off => {
                self.switch_off(ace, target, Reason::AllocLatency, start, m);
                return;
            }
            Latency::Probe => self.record(start, Knob::Engine, 1, 1, Reason::LatencyProbe, m),
            Latency::Workload => self.record(start, Knob::Engine, 1, 1, Reason::WorkloadLatency, m),
            Latency::Suspect => self.record(start, Knob::Engine, 1, 1, Reason::LatencySuspect, m),
            // The loops skip the intervals of a probe: their metrics belong
            // to other knobs than the ones in force.
            Latency::Probing => {}
            Latency::Fine => {
                self.fast_loop(&m, start);
                let trace = &mut self.trace;
                let mut moved = |class: usize, old: u32, new: u32, why: Move| {
                    trace.record(Decision {
                        seq: 0,
                        at: start,
                        knob: Knob::ClassCapacity(class as u8),
                        old: old.into(),
                        new: new.into(),
                        reason: match why {
                            Move::Grow => Reason::ClassMisses,
                            Move::Shrink => Reason::CacheBudget,
                        },
                        metrics: m,
                    })
                };
                self.classes
                    .resize(target, m.operations, DIET[self.at.diet], &mut moved);
                if start.wrapping_sub(self.last_slow) >= self.clocked.slow {
                    self.last_slow = start;
                    self.slow_loop(&m, &totals, start);
                }
            }
        }
        if self.at != before {
            self.applied = self.knobs();
            target.set_knobs(self.applied);
        }
        if self.purge_delay != self.purge_applied && self.purge_baseline.is_some() {
            self.purge_applied = self.purge_delay;
            // Busy spells free and reuse page runs too: their purges keep
            // the profile's wait, however short quiet spells' (a memory
            // target lets them go down to the break-even).
            let floor = if self.config.memory_target == 0 {
                self.busy_floor
            } else {
                self.break_even
            };
            let intervals = PURGE_DELAY[self.purge_delay].max(floor);
            let ms = u64::from(intervals) * self.config.fast_ms;
            target.set_purge_delay_ms(ms.min(u64::from(u32::MAX)) as u32);
        }
        // A quiet spell's purge takes all its idle memory: ACE only asks,
        // and the allocator's housekeeping does the work on the ticks that
        // follow, every CPU's, each within its own deadline (one quiet
        // interval is tens of megabytes to decommit: no single tick's
        // budget holds that). Traced as asked: committed down to live.
        if core::mem::replace(&mut self.purge_now, false) {
            target.request_release();
            self.record(
                start,
                Knob::Scavenge,
                m.committed / 1024,
                m.live / 1024,
                Reason::Quiet,
                m,
            );
        }
        // The slow loop's scavenge is the one piece of work of ACE's own
        // whose cost varies: run it only with half the budget still left,
        // else on a later tick.
        if self.scavenge_due && target.now().wrapping_sub(start) < self.clocked.budget / 2 {
            self.scavenge_due = false;
            // Only scavenges that decommitted something are traced (with
            // decommit off, or nothing idle, they change nothing).
            // It stops where the tick's budget ends.
            let deadline = start.saturating_add(self.clocked.budget);
            let pages = target.scavenge(self.config.scavenge_pages, deadline) as u64;
            if pages > 0 {
                let bytes = pages * crate::PAGE_SIZE as u64;
                let after = m.committed.saturating_sub(bytes);
                self.record(
                    start,
                    Knob::Scavenge,
                    m.committed / 1024,
                    after / 1024,
                    Reason::Fragmentation,
                    m,
                );
            }
        }

        let took = target.now().wrapping_sub(start);
        self.deciding_ticks += 1;
        self.last_tick = took;
        self.max_tick = self.max_tick.max(took);
        self.total_tick = self.total_tick.wrapping_add(took);
        if took > self.clocked.budget {
            self.over_budget += 1;
            if self.over_budget >= OVER_BUDGET_LIMIT {
                self.switch_off(ace, target, Reason::TickBudget, start, m);
            }
        } else {
            self.over_budget = 0;
        }
    }

    /// The allocation-latency guard, on an interval run with the knobs
    /// now in force. With the starting knobs, the interval's mean slow path
    /// updates the baseline (at once when lower, by an eighth of the
    /// difference when higher: the quietest intervals are the truest) and
    /// the per-path clip that follows it. With ACE's own, after
    /// `latency_intervals` intervals in a row over the limit, a probe: the
    /// starting knobs for one interval, to tell ACE's doing from the
    /// workload's, side by side. If ACE's knobs were slower than the
    /// probe by the limit's factor, they were the cause: off. Otherwise the
    /// workload changed (a phase of bigger blocks slows every slow path,
    /// whatever the knobs): the probe's latency becomes the baseline and
    /// ACE's knobs come back. Comparing with the old baseline instead
    /// switched ACE off whenever the probe fell in a lighter phase. One
    /// probe is one interval against another, and some workloads' slow
    /// paths vary threefold between intervals: ACE switches off only when
    /// [`LATENCY_STRIKES`] probes in a row blame its knobs (an interval
    /// under the limit in between clears the count).
    /// Intervals with too few slow paths to mean anything are skipped (a
    /// probe waits for one).
    fn latency_guard<T: Tunable>(&mut self, target: &T, m: &Metrics) -> Latency {
        let counted = m.slow_paths >= MIN_SLOW_PATHS;
        let mean = m.slow_path_mean().max(1);
        if let Some((own, own_mean)) = self.latency_probe {
            if !counted {
                return Latency::Probing;
            }
            self.latency_probe = None;
            if over_limit(own_mean, mean, self.config.latency_limit_pct) {
                self.latency_strikes += 1;
                if self.latency_strikes >= LATENCY_STRIKES {
                    return Latency::Off;
                }
                self.at = own;
                return Latency::Suspect;
            }
            self.latency_strikes = 0;
            self.set_latency_base(target, mean);
            self.at = own;
            return Latency::Workload;
        }
        if !counted {
            return Latency::Fine;
        }
        if self.at == self.defaults {
            let base = self.latency_base;
            let base = if base == 0 || mean <= base {
                mean
            } else {
                base + (mean - base) / 8
            };
            self.set_latency_base(target, base);
            self.latency_over = 0;
            return Latency::Fine;
        }
        if self.config.latency_limit_pct == 0 || self.latency_base == 0 {
            return Latency::Fine;
        }
        if !over_limit(mean, self.latency_base, self.config.latency_limit_pct) {
            (self.latency_over, self.latency_strikes) = (0, 0);
            return Latency::Fine;
        }
        self.latency_over += 1;
        if self.latency_over < self.config.latency_intervals.max(1) {
            return Latency::Fine;
        }
        self.latency_over = 0;
        self.latency_probe = Some((self.at, mean));
        self.at = self.defaults;
        Latency::Probe
    }

    /// Sets the latency baseline and the per-path clip that follows it.
    fn set_latency_base<T: Tunable>(&mut self, target: &T, base: u64) {
        self.latency_base = base;
        target.clip_slow_paths(base.saturating_mul(SLOW_PATH_CLIP));
    }

    /// Moves a knob one step on its ladder (down if `up` is false) unless
    /// it is at the end; records the change. Returns whether it moved.
    fn step(&mut self, knob: Knob, up: bool, reason: Reason, at: u64, m: &Metrics) -> bool {
        let (pos, ladder): (&mut usize, &[u32]) = match knob {
            Knob::Diet => (&mut self.at.diet, &DIET),
            Knob::BundleWidth => (&mut self.at.bundle, &BUNDLE),
            Knob::DrainThreshold => (&mut self.at.drain, &DRAIN),
            Knob::ReleasePages => (&mut self.at.release, &RELEASE),
            Knob::PurgeDelay => (&mut self.purge_delay, &PURGE_DELAY),
            Knob::Scavenge | Knob::Engine | Knob::ClassCapacity(_) => return false,
        };
        let old = *pos;
        let new = if up {
            (old + 1).min(ladder.len() - 1)
        } else {
            old.saturating_sub(1)
        };
        if new == old {
            return false;
        }
        *pos = new;
        let (old, new) = (u64::from(ladder[old]), u64::from(ladder[new]));
        self.record(at, knob, old, new, reason, *m);
        true
    }

    /// The purge rule, an idle timeout learned from the quiet spells (after
    /// TCMalloc's skip-subrelease, and the ski-rental argument behind
    /// timeouts). Idle memory (committed, not live) over
    /// [`COMMITTED_FLOOR`] in a spell quiet for the delay is purged. A
    /// purge pays when its memory then stays purged for the break-even
    /// time (LEAN's delay: its price of idle memory against the faults
    /// that bring the memory back). So at each
    /// spell's end the delay goes to the shortest rung whose
    /// purges the recurring spells (the shortest of the last [`SPELLS`])
    /// would hold for the break-even time, or, if none would, toward the
    /// first longer than those spells: they are not purged at all. Long
    /// spells get their memory back at once; pauses within bursts keep it
    /// (a lengthening is a wasted purge, TCMalloc's word). With a memory
    /// target, committed memory over it when a spell reaches the delay
    /// shortens it, and no spell lengthens it meanwhile.
    fn purge_rule(&mut self, m: &Metrics, at: u64) {
        if m.operations >= MIN_OPS {
            if self.quiet > 0 {
                self.spell_ended(self.quiet, m, at);
            }
            self.quiet = 0;
            return;
        }
        let delay = PURGE_DELAY[self.purge_delay];
        self.quiet = self.quiet.saturating_add(1);
        if self.quiet < delay || m.committed.saturating_sub(m.live) < COMMITTED_FLOOR {
            return;
        }
        self.purge_now = true;
        if self.quiet == delay && self.over_target(m) {
            self.fired |= self.step(Knob::PurgeDelay, false, Reason::OverTarget, at, m);
        }
    }

    /// Whether committed memory is over the memory target (if there is one).
    fn over_target(&self, m: &Metrics) -> bool {
        let target = self.config.memory_target;
        target != 0 && m.committed > target
    }

    /// A quiet spell of `length` intervals ended: the delay goes to the one
    /// the recurring spells call for (see [`purge_rule`](Self::purge_rule)).
    fn spell_ended(&mut self, length: u32, m: &Metrics, at: u64) {
        self.spells[self.spells_seen % SPELLS] = length;
        self.spells_seen += 1;
        let seen = &self.spells[..self.spells_seen.min(SPELLS)];
        let shortest = seen.iter().copied().min().unwrap_or(length);
        let rungs = 0..PURGE_DELAY.len();
        let want = rungs
            .clone()
            .find(|&r| shortest >= PURGE_DELAY[r].saturating_add(self.break_even))
            .or_else(|| rungs.clone().find(|&r| PURGE_DELAY[r] > shortest))
            .unwrap_or(PURGE_DELAY.len() - 1);
        let reason = match want.cmp(&self.purge_delay) {
            Ordering::Less => Reason::PurgeHeld,
            Ordering::Greater if !self.over_target(m) => Reason::WastedPurge,
            _ => return,
        };
        let (old, new) = (PURGE_DELAY[self.purge_delay], PURGE_DELAY[want]);
        self.record(at, Knob::PurgeDelay, old.into(), new.into(), reason, *m);
        self.purge_delay = want;
        self.fired = true;
    }

    /// The fast loop: react to this interval.
    fn fast_loop(&mut self, m: &Metrics, at: u64) {
        self.purge_rule(m, at);
        let busy = m.operations >= MIN_OPS;
        // A backlog costs memory, and only then is draining it sooner worth
        // the extra slab traffic: a backlog that rises while committed
        // memory does not (a pipeline of cross-CPU frees always has one)
        // leaves the threshold alone.
        let growing = m.committed > core::mem::replace(&mut self.committed_before, m.committed);
        let floor = DEPOT_BUNDLES * BUNDLE[self.at.bundle];
        let can_fall = self.at.drain > 0 && DRAIN[self.at.drain - 1] >= floor;
        if self.backlog.rose(m.depot_backlog, BACKLOG_FLOOR) && growing && can_fall {
            self.fired |= self.step(Knob::DrainThreshold, false, Reason::Backlog, at, m);
        }
        if busy && m.instructions > 0 && self.llc.rose(m.llc_misses_per_mop(), LLC_FLOOR) {
            self.fired |= self.step(Knob::Diet, false, Reason::LlcMisses, at, m);
        }
        if busy
            && self
                .contention
                .rose(m.contention_per_mop(), CONTENTION_FLOOR)
        {
            self.fired |= self.step(Knob::BundleWidth, true, Reason::Contention, at, m);
        }
    }

    /// The slow loop: scavenge when fragmentation or committed memory rose,
    /// or fragmentation is high; keep fewer empty slabs when fragmentation
    /// rose, more when provider calls per operation (over the whole slow
    /// interval) rose; after `restore_after` intervals with no rise and no
    /// fast-loop change, one step back toward the defaults.
    fn slow_loop(&mut self, m: &Metrics, totals: &Totals, at: u64) {
        let fragmentation = m.fragmentation_q10();
        let fragmented = self.fragmentation.rose(fragmentation, FRAGMENTATION_FLOOR);
        let grew = self.committed.rose(m.committed, COMMITTED_FLOOR);
        let high = fragmentation >= FRAGMENTATION_HIGH && m.committed >= COMMITTED_FLOOR;
        let ops = totals.operations.wrapping_sub(self.slow_totals.operations);
        let calls = totals
            .provider_calls
            .wrapping_sub(self.slow_totals.provider_calls);
        self.slow_totals = *totals;
        let calling = ops >= MIN_OPS
            && self
                .provider
                .rose(fixed::per_million(calls, ops), PROVIDER_FLOOR);
        let fired = core::mem::replace(&mut self.fired, false);
        if fragmented || grew || high {
            self.scavenge_due = true;
        }
        if fragmented {
            self.step(Knob::ReleasePages, false, Reason::Fragmentation, at, m);
        } else if calling {
            self.step(Knob::ReleasePages, true, Reason::ProviderCalls, at, m);
        }
        if fragmented || grew || calling || fired {
            self.stable = 0;
            return;
        }
        self.stable += 1;
        if self.stable < self.config.restore_after {
            return;
        }
        self.stable = 0;
        let (at_now, home) = (self.at, self.defaults);
        for (knob, pos, default) in [
            (Knob::BundleWidth, at_now.bundle, home.bundle),
            (Knob::DrainThreshold, at_now.drain, home.drain),
            (Knob::Diet, at_now.diet, home.diet),
            (Knob::ReleasePages, at_now.release, home.release),
        ] {
            if pos != default {
                self.step(knob, pos < default, Reason::Restore, at, m);
            }
        }
    }

    /// A guard tripped (or off was asked for): knobs back, ACE off, said so.
    fn switch_off<T: Tunable>(
        &mut self,
        ace: &Ace,
        target: &T,
        reason: Reason,
        at: u64,
        m: Metrics,
    ) {
        ace.enabled.store(false, Relaxed);
        target.set_knobs(self.baseline);
        self.classes.release(target);
        if let Some(ms) = self.purge_baseline {
            target.set_purge_delay_ms(ms);
        }
        self.applied = self.baseline;
        self.at = self.defaults;
        self.off_reason = Some(reason);
        self.record(at, Knob::Engine, 1, 0, reason, m);
    }
}

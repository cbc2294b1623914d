//! ACE driven by scripted metrics and a fake clock.

use core::cell::Cell;
use std::vec::Vec;

use super::*;
use crate::size_class::NUM_CLASSES;

/// Clock units per second of the fake clock (1 unit = 1 µs).
const HZ: u64 = 1_000_000;

/// An allocator that reports what the test scripts. Its clock advances by
/// `cost` on every read, so a tick's duration is under the test's control.
struct Fake {
    totals: Cell<Totals>,
    knobs: Cell<Knobs>,
    clock: Cell<u64>,
    cost: Cell<u64>,
    cpu: Cell<usize>,
    scavenged: Cell<usize>,
    scavenge_calls: Cell<usize>,
    /// Releases asked of the housekeeping (`request_release`).
    purges_asked: Cell<usize>,
    /// The deadline of the last scavenge.
    scavenge_deadline: Cell<u64>,
    maintains: Cell<usize>,
    /// The deadline of the last `maintain`.
    maintain_deadline: Cell<u64>,
    /// Clock units each `maintain` takes.
    maintain_cost: Cell<u64>,
    clip: Cell<u64>,
    /// The purge delay, ms (`None`: the fake has none).
    purge_ms: Cell<Option<u32>>,
    /// Per class: misses plus overflows so far, and the capacity in force.
    pressure: [Cell<u64>; NUM_CLASSES],
    caps: [Cell<u32>; NUM_CLASSES],
    /// The most any class can be given (0: classes cannot be sized).
    max_cap: Cell<u32>,
    /// While set, capacities are stored but a cache is "busy" (the set
    /// reports false) and does not apply them.
    busy: Cell<bool>,
    /// The capacity the caches last applied.
    applied: [Cell<u32>; NUM_CLASSES],
}

impl Fake {
    fn new() -> Fake {
        Fake {
            totals: Cell::new(Totals {
                committed: 4 << 20,
                live: 4 << 20,
                ..Totals::default()
            }),
            knobs: Cell::new(Knobs::DEFAULT),
            clock: Cell::new(1),
            cost: Cell::new(0),
            cpu: Cell::new(0),
            scavenged: Cell::new(0),
            scavenge_calls: Cell::new(0),
            purges_asked: Cell::new(0),
            scavenge_deadline: Cell::new(0),
            maintains: Cell::new(0),
            maintain_deadline: Cell::new(0),
            maintain_cost: Cell::new(0),
            clip: Cell::new(u64::MAX),
            purge_ms: Cell::new(None),
            pressure: core::array::from_fn(|_| Cell::new(0)),
            caps: core::array::from_fn(|_| Cell::new(0)),
            max_cap: Cell::new(0),
            busy: Cell::new(false),
            applied: core::array::from_fn(|_| Cell::new(0)),
        }
    }

    /// A fake whose classes all have capacity `cap`, at most `max`.
    fn with_classes(cap: u32, max: u32) -> Fake {
        let fake = Fake::new();
        fake.max_cap.set(max);
        for c in &fake.caps {
            c.set(cap);
        }
        fake
    }

    /// One CPU's cache bytes at the capacities in force.
    fn cache_bytes(&self) -> u64 {
        (0..NUM_CLASSES)
            .map(|c| u64::from(self.caps[c].get()) * crate::size_class::size_of(c) as u64)
            .sum()
    }

    /// One interval of `ops` operations with `f` adjusting the totals.
    fn interval(&self, ops: u64, f: impl FnOnce(&mut Totals)) {
        let mut t = self.totals.get();
        t.operations += ops;
        f(&mut t);
        self.totals.set(t);
        self.clock.set(self.clock.get() + 500_000);
    }
}

impl Tunable for Fake {
    fn totals(&self) -> Totals {
        self.totals.get()
    }
    fn knobs(&self) -> Knobs {
        self.knobs.get()
    }
    fn set_knobs(&self, knobs: Knobs) {
        self.knobs.set(knobs);
    }
    fn scavenge(&self, max_pages: usize, deadline: u64) -> usize {
        self.scavenge_calls.set(self.scavenge_calls.get() + 1);
        self.scavenge_deadline.set(deadline);
        self.scavenged.set(self.scavenged.get() + max_pages);
        // What it decommits is no longer committed.
        let mut t = self.totals.get();
        t.committed = t
            .committed
            .saturating_sub((max_pages * crate::PAGE_SIZE) as u64);
        self.totals.set(t);
        max_pages
    }
    fn request_release(&self) {
        self.purges_asked.set(self.purges_asked.get() + 1);
        // The housekeeping of the ticks that follow decommits it all.
        let mut t = self.totals.get();
        t.committed = t.live;
        self.totals.set(t);
    }
    fn maintain(&self, deadline: u64) {
        self.maintains.set(self.maintains.get() + 1);
        self.maintain_deadline.set(deadline);
        self.clock.set(self.clock.get() + self.maintain_cost.get());
    }
    fn purge_delay_ms(&self) -> Option<u32> {
        self.purge_ms.get()
    }
    fn set_purge_delay_ms(&self, ms: u32) {
        self.purge_ms.set(Some(ms));
    }
    fn clip_slow_paths(&self, max: u64) {
        self.clip.set(max);
    }
    fn class_pressure(&self, class: usize) -> u64 {
        self.pressure[class].get()
    }
    fn class_capacity(&self, class: usize) -> (u32, u32) {
        (self.caps[class].get(), self.max_cap.get())
    }
    fn set_class_capacity(&self, class: usize, capacity: u32) -> bool {
        self.caps[class].set(capacity);
        if !self.busy.get() {
            self.applied[class].set(capacity);
        }
        !self.busy.get()
    }
    fn now(&self) -> u64 {
        let now = self.clock.get();
        self.clock.set(now + self.cost.get());
        now
    }
    fn current_cpu(&self) -> usize {
        self.cpu.get()
    }
}

fn config() -> AceConfig {
    AceConfig {
        fast_ms: 500,
        slow_s: 2,
        ..AceConfig::DEFAULT
    }
}

/// Every tick of every CPU, any CPU index (none is beyond a limit), hands
/// the allocator its housekeeping with the tick's budget as the deadline;
/// how often that finds work is the allocator's business.
#[test]
fn every_tick_of_every_cpu_runs_the_allocators_housekeeping() {
    let (ace, fake) = started(config());
    ace.tick(&fake, None);
    assert_eq!(fake.maintains.get(), 1);
    let budget = AceConfig::DEFAULT.tick_budget_us;
    assert_eq!(fake.maintain_deadline.get(), fake.clock.get() + budget);
    for cpu in [1, 63, 64, 500] {
        fake.cpu.set(cpu);
        ace.tick(&fake, None);
    }
    assert_eq!(fake.maintains.get(), 5, "CPUs 64 and 500 too");
}

fn started(config: AceConfig) -> (Ace, Fake) {
    let (ace, fake) = (Ace::new(), Fake::new());
    ace.enable(&fake, config, HZ);
    (ace, fake)
}

/// A backlog of `blocks` in the depots while committed memory grows by
/// 64 KiB (a backlog only lowers the drain threshold when memory grows).
fn backlog(t: &mut Totals, blocks: u64) {
    t.depot_backlog = blocks;
    t.committed += 64 << 10;
}

fn trace(ace: &Ace) -> Vec<Decision> {
    let mut out = [Decision::EMPTY; TRACE_LEN];
    let n = ace.decisions(0, &mut out);
    out[..n].to_vec()
}

fn last(ace: &Ace) -> Decision {
    *trace(ace).last().expect("a decision")
}

#[test]
fn a_rising_depot_backlog_lowers_the_drain_threshold() {
    let (ace, fake) = started(config());
    for blocks in [100, 100, 100] {
        fake.interval(100_000, |t| backlog(t, blocks));
        ace.tick(&fake, None);
    }
    assert_eq!(
        fake.knobs().drain_threshold,
        256,
        "steady backlog: no change"
    );
    // A backlog that rises while committed memory stays flat (a pipeline of
    // cross-CPU frees) costs nothing: the threshold stays.
    fake.interval(100_000, |t| t.depot_backlog = 400);
    ace.tick(&fake, None);
    assert_eq!(fake.knobs().drain_threshold, 256, "memory flat: no change");
    fake.interval(100_000, |t| backlog(t, 1000));
    ace.tick(&fake, None);
    assert_eq!(fake.knobs().drain_threshold, 128);
    let d = last(&ace);
    assert_eq!(
        (d.knob, d.old, d.new, d.reason),
        (Knob::DrainThreshold, 256, 128, Reason::Backlog)
    );
    assert_eq!(
        ace.status().knobs,
        Some(fake.knobs()),
        "status shows what ACE set"
    );
    assert_eq!(d.metrics.depot_backlog, 1000);
}

#[test]
fn rising_lock_contention_widens_bundles() {
    let (ace, fake) = started(config());
    for contended in [10, 10, 10, 500] {
        fake.interval(100_000, |t| t.depot_contended += contended);
        ace.tick(&fake, None);
    }
    assert_eq!(fake.knobs().bundle_width, 64);
    let d = last(&ace);
    assert_eq!(
        (d.knob, d.old, d.new, d.reason),
        (Knob::BundleWidth, 32, 64, Reason::Contention)
    );
    assert_eq!(d.metrics.depot_contended, 500);
}

#[test]
fn rising_llc_misses_put_the_caches_on_a_diet() {
    let (ace, fake) = started(config());
    let hw = |llc_misses| HwCounts {
        llc_misses,
        cycles: 1_000_000,
        instructions: 1_000_000,
    };
    for misses in [1000, 1000, 1000] {
        fake.interval(100_000, |_| {});
        ace.tick(&fake, Some(hw(misses)));
    }
    assert_eq!(fake.knobs().cache_capacity, 64);
    // Another CPU's counts add to the interval's.
    fake.cpu.set(1);
    ace.tick(&fake, Some(hw(4000)));
    fake.interval(100_000, |_| {});
    ace.tick(&fake, Some(hw(4000)));
    let d = last(&ace);
    assert_eq!(
        (d.knob, d.old, d.new, d.reason),
        (Knob::Diet, 256, 224, Reason::LlcMisses)
    );
    assert_eq!(d.metrics.llc_misses, 8000);
    assert_eq!(fake.knobs().cache_capacity, 64 * 224 / 256);
}

#[test]
fn the_drain_threshold_never_falls_under_two_bundles() {
    let (ace, fake) = started(config());
    let mut blocks = 100;
    for _ in 0..8 {
        fake.interval(100_000, |t| backlog(t, blocks));
        ace.tick(&fake, None);
        blocks *= 2;
    }
    // 256 -> 128 -> 64, and no further with bundles of 32.
    assert_eq!(fake.knobs().bundle_width, 32);
    assert_eq!(fake.knobs().drain_threshold, 64);
    let steps: Vec<_> = trace(&ace)
        .into_iter()
        .filter(|d| d.knob == Knob::DrainThreshold)
        .map(|d| d.new)
        .collect();
    assert_eq!(steps, [128, 64], "no step the floor undoes");
}

#[test]
fn nothing_happens_between_fast_intervals_or_while_another_cpu_decides() {
    let (ace, fake) = started(config());
    fake.interval(100_000, |t| backlog(t, 100));
    ace.tick(&fake, None);
    let before = ace.status().deciding_ticks;
    fake.totals.set(Totals {
        depot_backlog: 10_000,
        ..fake.totals.get()
    });
    fake.clock.set(fake.clock.get() + 100_000); // 100 ms: not due
    ace.tick(&fake, None);
    assert_eq!(ace.status().deciding_ticks, before);
    fake.clock.set(fake.clock.get() + 400_000);
    let busy = ace.engine.lock();
    ace.tick(&fake, None);
    drop(busy);
    assert_eq!(ace.status().deciding_ticks, before, "skipped, not waited");
    ace.tick(&fake, None);
    assert_eq!(ace.status().deciding_ticks, before + 1);
}

/// The allocator's housekeeping on a tick is its own cost, not ACE's: a
/// `maintain` that takes a whole tick budget on every tick leaves the
/// deciding ticks' time, and so the budget guard, alone.
#[test]
fn housekeeping_time_is_not_counted_against_aces_tick_budget() {
    let (ace, fake) = started(config());
    let budget = AceConfig::DEFAULT.tick_budget_us;
    fake.maintain_cost.set(budget);
    for _ in 0..2 * OVER_BUDGET_LIMIT {
        fake.interval(100_000, |_| {});
        ace.tick(&fake, None);
    }
    let status = ace.status();
    assert!(status.enabled, "switched off: {:?}", status.off_reason);
    assert_eq!(status.deciding_ticks, u64::from(2 * OVER_BUDGET_LIMIT));
    assert!(status.max_tick < budget, "{} clock units", status.max_tick);
}

#[test]
fn ticks_over_budget_switch_ace_off_and_restore_the_knobs() {
    let (ace, fake) = started(config());
    fake.interval(100_000, |t| backlog(t, 100));
    ace.tick(&fake, None);
    fake.interval(100_000, |t| backlog(t, 1000));
    ace.tick(&fake, None);
    assert_eq!(fake.knobs().drain_threshold, 128);
    fake.cost.set(250); // each clock read: 250 µs, so a tick takes > 200 µs
    for _ in 0..OVER_BUDGET_LIMIT {
        assert!(ace.is_enabled());
        fake.interval(100_000, |_| {});
        ace.tick(&fake, None);
    }
    let status = ace.status();
    assert!(!status.enabled);
    assert_eq!(status.off_reason, Some(Reason::TickBudget));
    assert!(status.max_tick > 200);
    assert_eq!(fake.knobs(), Knobs::DEFAULT, "the knobs found at enable");
    assert_eq!(status.knobs, Some(Knobs::DEFAULT));
    let d = last(&ace);
    assert_eq!(
        (d.knob, d.old, d.new, d.reason),
        (Knob::Engine, 1, 0, Reason::TickBudget)
    );
    fake.interval(100_000, |t| backlog(t, 100_000));
    let maintains = fake.maintains.get();
    ace.tick(&fake, None);
    assert_eq!(ace.status().decisions, status.decisions, "off stays off");
    assert_eq!(
        fake.maintains.get(),
        maintains + 1,
        "a tick still runs the housekeeping"
    );
}

/// An engine never enabled has no budget to bound the housekeeping by:
/// its ticks do nothing (a kernel without ACE calls `maintain` itself).
#[test]
fn an_engine_never_enabled_ticks_nothing() {
    let (ace, fake) = (Ace::new(), Fake::new());
    ace.tick(&fake, None);
    assert_eq!(fake.maintains.get(), 0);
}

/// Adds `paths` allocation slow paths of `mean` clock units each.
fn slow_paths(t: &mut Totals, paths: u64, mean: u64) {
    t.slow_paths += paths;
    t.slow_path_time += paths * mean;
}

/// Three intervals with the starting knobs (the latency baseline: slow
/// paths of 100 µs), then a backlog rise that gives ACE knobs of its own.
fn latency_baseline_then_own_knobs() -> (Ace, Fake) {
    let (ace, fake) = started(config());
    for blocks in [100, 100, 1000] {
        fake.interval(100_000, |t| {
            backlog(t, blocks);
            slow_paths(t, 1000, 100);
        });
        ace.tick(&fake, None);
    }
    assert_eq!(fake.knobs().drain_threshold, 128, "ACE's own knobs");
    (ace, fake)
}

/// Slow paths at 4× the baseline (against a limit of 3×) under ACE's
/// knobs until the guard probes: the starting knobs for an interval.
fn slow_until_the_probe(ace: &Ace, fake: &Fake) {
    for _ in 0..AceConfig::DEFAULT.latency_intervals {
        assert_eq!(fake.knobs().drain_threshold, 128, "ACE's knobs");
        fake.interval(100_000, |t| slow_paths(t, 1000, 400));
        ace.tick(fake, None);
    }
    assert!(ace.is_enabled());
    assert_eq!(fake.knobs(), Knobs::DEFAULT, "the probe's starting knobs");
    let d = last(ace);
    assert_eq!((d.knob, d.reason), (Knob::Engine, Reason::LatencyProbe));
}

#[test]
fn slow_allocations_under_ace_s_knobs_switch_it_off_and_restore_the_knobs() {
    let (ace, fake) = latency_baseline_then_own_knobs();
    slow_until_the_probe(&ace, &fake);
    // With the starting knobs, allocation is as fast as at the start: once
    // is a suspicion, and ACE's knobs come back on probation...
    fake.interval(100_000, |t| slow_paths(t, 1000, 110));
    ace.tick(&fake, None);
    assert!(ace.is_enabled());
    assert_eq!(last(&ace).reason, Reason::LatencySuspect);
    // ...slow again with them, and fast again in the second probe: off.
    slow_until_the_probe(&ace, &fake);
    fake.interval(100_000, |t| slow_paths(t, 1000, 110));
    ace.tick(&fake, None);
    let status = ace.status();
    assert!(!status.enabled);
    assert_eq!(status.off_reason, Some(Reason::AllocLatency));
    assert_eq!(fake.knobs(), Knobs::DEFAULT, "the knobs found at enable");
    let d = last(&ace);
    assert_eq!(
        (d.knob, d.old, d.new, d.reason),
        (Knob::Engine, 1, 0, Reason::AllocLatency)
    );
    assert_eq!(d.metrics.slow_path_mean(), 110);
}

#[test]
fn slow_allocations_with_the_starting_knobs_too_are_the_workload_s_doing() {
    let (ace, fake) = latency_baseline_then_own_knobs();
    slow_until_the_probe(&ace, &fake);
    // As slow with the starting knobs: not ACE's doing.
    fake.interval(100_000, |t| slow_paths(t, 1000, 420));
    ace.tick(&fake, None);
    assert!(ace.is_enabled());
    assert_eq!(fake.knobs().drain_threshold, 128, "ACE's knobs are back");
    let d = last(&ace);
    assert_eq!((d.knob, d.reason), (Knob::Engine, Reason::WorkloadLatency));
    assert_eq!(fake.clip.get(), 420 * 16, "the new baseline's clip");
    // The new level is the baseline: no further probe.
    for _ in 0..2 * AceConfig::DEFAULT.latency_intervals {
        fake.interval(100_000, |t| slow_paths(t, 1000, 430));
        ace.tick(&fake, None);
    }
    let guard: Vec<_> = trace(&ace)
        .into_iter()
        .map(|d| d.reason)
        .filter(|r| matches!(r, Reason::LatencyProbe | Reason::WorkloadLatency))
        .collect();
    assert_eq!(guard, [Reason::LatencyProbe, Reason::WorkloadLatency]);
    assert!(ace.is_enabled());
}

#[test]
fn a_probe_in_a_lighter_phase_is_judged_against_ace_s_knobs_not_the_old_baseline() {
    let (ace, fake) = latency_baseline_then_own_knobs();
    // 400 under ACE's knobs (4x the baseline of 100); the probe's interval
    // falls in a lighter phase, 200: over the old baseline's limit (300)
    // it is not, but ACE's knobs were not 3x slower than the starting ones
    // side by side either. The workload's doing: ACE stays on.
    slow_until_the_probe(&ace, &fake);
    fake.interval(100_000, |t| slow_paths(t, 1000, 200));
    ace.tick(&fake, None);
    assert!(ace.is_enabled());
    let d = last(&ace);
    assert_eq!((d.knob, d.reason), (Knob::Engine, Reason::WorkloadLatency));
    assert_eq!(fake.knobs().drain_threshold, 128, "ACE's knobs are back");
}

#[test]
fn an_interval_under_the_limit_between_probes_clears_the_suspicion() {
    let (ace, fake) = latency_baseline_then_own_knobs();
    slow_until_the_probe(&ace, &fake);
    fake.interval(100_000, |t| slow_paths(t, 1000, 110));
    ace.tick(&fake, None);
    assert_eq!(last(&ace).reason, Reason::LatencySuspect);
    // ACE's knobs are fine for an interval: the suspicion lapses, and the
    // next probe that blames them is a first one again.
    fake.interval(100_000, |t| slow_paths(t, 1000, 120));
    ace.tick(&fake, None);
    slow_until_the_probe(&ace, &fake);
    fake.interval(100_000, |t| slow_paths(t, 1000, 110));
    ace.tick(&fake, None);
    assert!(ace.is_enabled());
    assert_eq!(last(&ace).reason, Reason::LatencySuspect);
}

#[test]
fn slow_path_latency_noise_around_the_baseline_trips_nothing() {
    let (ace, fake) = latency_baseline_then_own_knobs();
    // Over the limit only twice in a row; a burst of few slow paths,
    // however slow, is not a mean worth trusting.
    for (paths, mean) in [
        (1000, 250),
        (1000, 350),
        (1000, 320),
        (1000, 90),
        (1000, 310),
        (10, 100_000),
        (1000, 380),
        (1000, 200),
    ] {
        fake.interval(100_000, |t| slow_paths(t, paths, mean));
        ace.tick(&fake, None);
    }
    assert!(ace.is_enabled(), "{:?}", ace.status());
    assert_eq!(fake.knobs().drain_threshold, 128, "ACE's knobs stay");
}

#[test]
fn slow_allocations_with_the_starting_knobs_are_the_baseline_not_a_trip() {
    let (ace, fake) = started(config());
    for mean in [100, 1000, 1000, 1000, 1000] {
        fake.interval(100_000, |t| slow_paths(t, 1000, mean));
        ace.tick(&fake, None);
    }
    assert!(ace.is_enabled(), "switching off would change nothing");
}

#[test]
fn the_latency_baseline_follows_the_quietest_intervals_and_sets_the_clip() {
    let (ace, fake) = started(config());
    let mut seen = Vec::new();
    for mean in [300, 100, 180, 100] {
        fake.interval(100_000, |t| slow_paths(t, 1000, mean));
        ace.tick(&fake, None);
        seen.push(fake.clip.get());
    }
    // Down at once, up by an eighth of the difference; clip 16× that.
    assert_eq!(seen, [300 * 16, 100 * 16, 110 * 16, 100 * 16]);
}

/// A real hosted allocator over a 1 GiB reservation, checks off.
#[cfg(feature = "std")]
fn hosted_heap() -> crate::hosted::HostedAllocator {
    use crate::provider::{DecommitMode, MmapProvider};

    let heap = crate::hosted::HostedAllocator::new();
    let provider = MmapProvider::new(1 << 30, DecommitMode::Free).expect("reserve");
    let config = crate::Config {
        checks: false,
        ..crate::Config::DEFAULT
    };
    heap.init(provider, config).expect("init");
    heap
}

#[cfg(feature = "std")]
#[test]
#[cfg_attr(
    miri,
    ignore = "the hosted heap: Miri cannot make its mmap reservation"
)]
fn the_allocator_clips_each_timed_slow_path() {
    use core::alloc::Layout;

    let heap = hosted_heap();
    Tunable::clip_slow_paths(&heap, 1);
    let layout = Layout::from_size_align(64, 8).unwrap();
    let blocks: Vec<_> = (0..10_000).map(|_| heap.alloc(layout)).collect();
    for block in blocks {
        // SAFETY: allocated just above with `layout`, freed once.
        unsafe { heap.dealloc(block, layout) };
    }
    let stats = heap.stats();
    assert!(stats.slow_paths > 100, "{}", stats.slow_paths);
    assert!(
        stats.slow_path_time <= stats.slow_paths,
        "{} units over {} slow paths clipped at 1",
        stats.slow_path_time,
        stats.slow_paths
    );
}

#[test]
fn committed_memory_over_the_cap_switches_ace_off() {
    let (ace, fake) = started(AceConfig {
        committed_cap: 8 << 20,
        ..config()
    });
    fake.interval(100_000, |_| {});
    ace.tick(&fake, None);
    assert!(ace.is_enabled());
    fake.interval(100_000, |t| t.committed = 9 << 20);
    ace.tick(&fake, None);
    assert_eq!(ace.status().off_reason, Some(Reason::CommittedCap));
    assert!(!ace.is_enabled());
}

#[test]
fn growing_fragmentation_scavenges_within_the_page_budget() {
    let (ace, fake) = started(config());
    // Slow interval: 2 s = 4 fast intervals.
    for _ in 0..4 {
        fake.interval(100_000, |_| {});
        ace.tick(&fake, None);
    }
    assert_eq!(fake.scavenge_calls.get(), 0);
    for _ in 0..4 {
        fake.interval(100_000, |t| t.committed = 12 << 20);
        ace.tick(&fake, None);
    }
    assert_eq!(fake.scavenge_calls.get(), 1);
    assert_eq!(fake.scavenged.get(), AceConfig::DEFAULT.scavenge_pages);
    // The clock stood still during the tick: it may run to the tick's end.
    let budget = AceConfig::DEFAULT.tick_budget_us;
    assert_eq!(fake.scavenge_deadline.get(), fake.clock.get() + budget);
    let d = last(&ace);
    assert_eq!((d.knob, d.reason), (Knob::Scavenge, Reason::Fragmentation));
    assert_eq!((d.old, d.new), (12 << 10, (12 << 10) - 1024));
}

#[test]
fn a_scavenge_waits_when_the_tick_has_used_half_its_budget() {
    let (ace, fake) = started(config());
    for committed in [4, 4, 4, 4, 12, 12, 12] {
        fake.interval(100_000, |t| t.committed = committed << 20);
        ace.tick(&fake, None);
    }
    // The slow loop of this tick wants a scavenge, but by the time it
    // would start, 110 µs of the 200 µs budget are gone.
    fake.interval(100_000, |_| {});
    fake.cost.set(110);
    ace.tick(&fake, None);
    assert_eq!(fake.scavenge_calls.get(), 0, "deferred");
    assert!(
        ace.is_enabled(),
        "one tick over budget is not yet a guard trip"
    );
    fake.cost.set(0);
    fake.interval(100_000, |_| {});
    ace.tick(&fake, None);
    assert_eq!(fake.scavenge_calls.get(), 1, "done on the next tick");
}

#[test]
fn stable_signals_restore_the_knobs_one_step_at_a_time() {
    let (ace, fake) = started(config());
    fake.interval(100_000, |t| backlog(t, 100));
    ace.tick(&fake, None);
    fake.interval(100_000, |t| backlog(t, 1000));
    ace.tick(&fake, None);
    fake.interval(100_000, |t| backlog(t, 10_000));
    ace.tick(&fake, None);
    assert_eq!(fake.knobs().drain_threshold, 64);
    // Backlog back down and flat; the slow loop (2 s) restores after two
    // stable slow intervals (hysteresis), one ladder step each time.
    let mut drains = Vec::new();
    for _ in 0..24 {
        fake.interval(100_000, |t| backlog(t, 10));
        ace.tick(&fake, None);
        drains.push(fake.knobs().drain_threshold);
    }
    assert_eq!(drains.first(), Some(&64));
    assert_eq!(drains.last(), Some(&256));
    let restores: Vec<_> = trace(&ace)
        .into_iter()
        .filter(|d| d.reason == Reason::Restore)
        .map(|d| (d.old, d.new))
        .collect();
    assert_eq!(restores, [(64, 128), (128, 256)]);
}

#[test]
fn rising_provider_calls_keep_more_empty_slabs_until_things_calm_down() {
    let (ace, fake) = started(config());
    let release = |calls: u64, intervals| {
        for _ in 0..intervals {
            fake.interval(100_000, |t| t.provider_calls += calls);
            ace.tick(&fake, None);
        }
        fake.knobs().release_pages
    };
    // Slow loop every 4 fast intervals: 10 calls per 100k operations, then
    // a burst of 1000 early in a slow interval (its whole rate counts, not
    // only the last fast interval's).
    assert_eq!(release(10, 4), 1, "steady: no change");
    assert_eq!(release(1000, 1), 1);
    assert_eq!(release(10, 3), 2);
    let d = last(&ace);
    assert_eq!(
        (d.knob, d.old, d.new, d.reason),
        (Knob::ReleasePages, 1, 2, Reason::ProviderCalls)
    );
    // Calm again: two stable slow intervals, then one step back.
    assert_eq!(release(10, 4), 2, "hysteresis");
    assert_eq!(release(10, 4), 1);
    let d = last(&ace);
    assert_eq!(
        (d.knob, d.old, d.new, d.reason),
        (Knob::ReleasePages, 2, 1, Reason::Restore)
    );
}

#[test]
fn rising_fragmentation_keeps_fewer_empty_slabs() {
    let (ace, fake) = (Ace::new(), Fake::new());
    fake.knobs.set(Knobs {
        release_pages: 4,
        ..Knobs::DEFAULT
    });
    ace.enable(&fake, config(), HZ);
    for committed in [4, 4, 4, 4, 12, 12, 12, 12] {
        fake.interval(100_000, |t| t.committed = committed << 20);
        ace.tick(&fake, None);
    }
    assert_eq!(fake.knobs().release_pages, 2);
    let released: Vec<_> = trace(&ace)
        .into_iter()
        .filter(|d| d.knob == Knob::ReleasePages)
        .map(|d| (d.old, d.new, d.reason))
        .collect();
    assert_eq!(released, [(4, 2, Reason::Fragmentation)]);
}

#[test]
fn without_contention_the_bundle_width_stays_and_after_it_comes_back() {
    let (ace, fake) = started(config());
    // Throughput that differs by width (as the bandit once chased) moves
    // nothing: only contention widens bundles.
    for _ in 0..40 {
        let ops = match fake.knobs().bundle_width {
            64 => 1_000_000,
            _ => 800_000,
        };
        fake.interval(ops, |_| {});
        ace.tick(&fake, None);
    }
    assert_eq!(fake.knobs().bundle_width, 32);
    // Contention rises once: wider; then stable slow intervals bring the
    // default back, as every other knob.
    fake.interval(800_000, |t| t.depot_contended += 1);
    ace.tick(&fake, None);
    fake.interval(800_000, |t| t.depot_contended += 8000);
    ace.tick(&fake, None);
    assert_eq!(fake.knobs().bundle_width, 64);
    for _ in 0..40 {
        fake.interval(800_000, |_| {});
        ace.tick(&fake, None);
    }
    assert_eq!(fake.knobs().bundle_width, 32, "{:?}", trace(&ace));
    assert_eq!(last(&ace).reason, Reason::Restore);
}

#[test]
fn intervals_follow_the_clock_rate() {
    let c = Clocked::new(&AceConfig::DEFAULT, 2_000_000_000);
    assert_eq!(
        (c.fast, c.slow, c.budget),
        (200_000_000, 60_000_000_000, 400_000)
    );
}

#[test]
fn no_floating_point_in_ace_or_the_pmu_code() {
    let sources = [
        include_str!("mod.rs"),
        include_str!("config.rs"),
        include_str!("fixed.rs"),
        include_str!("metrics.rs"),
        include_str!("perf.rs"),
        include_str!("report.rs"),
        include_str!("target.rs"),
        include_str!("trace.rs"),
        include_str!("../../arch/x86_64/pmu.rs"),
        include_str!("../../arch/x86_64/msr.rs"),
    ];
    for source in sources {
        for float in ["f32", "f64"] {
            assert!(!source.contains(float), "{float} in ACE code");
        }
    }
}

/// The hosted ticker on a real allocator: a thread ticks ACE every 10 ms
/// while this one churns blocks through the depots; ACE decides on its
/// ticks and its tick cost is measured (printed with `--nocapture`).
#[cfg(feature = "std")]
#[test]
#[cfg_attr(
    miri,
    ignore = "the hosted heap: Miri cannot make its mmap reservation"
)]
fn the_hosted_ticker_drives_ace_on_a_real_allocator() {
    use core::alloc::Layout;
    use core::sync::atomic::AtomicBool;

    let heap = hosted_heap();
    let ace = Ace::new();
    let ace_config = AceConfig {
        fast_ms: 10,
        slow_s: 1,
        // A descheduled ticker thread is not what this test is about.
        tick_budget_us: 50_000,
        ..AceConfig::DEFAULT
    };
    ace.enable(&heap, ace_config, ticker::HOSTED_CLOCK_HZ);
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| ticker::run(&ace, &heap, ace_config.fast_ms, &stop, false));
        let layout = Layout::from_size_align(64, 8).unwrap();
        let started = std::time::Instant::now();
        let mut round = 0usize;
        while started.elapsed() < std::time::Duration::from_millis(400) {
            // Growing batches, freed at once: the depot backlog climbs.
            let blocks: Vec<_> = (0..1000 + round * 200)
                .map(|_| heap.alloc(layout))
                .collect();
            for block in blocks {
                // SAFETY: allocated just above with `layout`, freed once.
                unsafe { heap.dealloc(block, layout) };
            }
            round += 1;
        }
        stop.store(true, Relaxed);
    });
    let stats = heap.stats();
    assert!(
        stats.slow_paths > 0 && stats.slow_path_time > 0,
        "refills are timed for the latency guard"
    );
    let status = ace.status();
    std::println!(
        "hosted ACE: {} deciding ticks, {} decisions, tick cost mean {} ns, max {} ns",
        status.deciding_ticks,
        status.decisions,
        status.total_tick / status.deciding_ticks.max(1),
        status.max_tick
    );
    assert!(status.deciding_ticks >= 10, "{status:?}");
    assert!(status.enabled, "no guard tripped: {status:?}");
    assert!(
        trace(&ace).iter().any(|d| d.knob != Knob::Engine),
        "ACE changed a knob"
    );
}

/// The allocator's statistics API reports the engine attached to it: its
/// status and the same decisions as `Ace::decisions`, on and after off.
#[cfg(feature = "std")]
#[test]
#[cfg_attr(
    miri,
    ignore = "the hosted heap: Miri cannot make its mmap reservation"
)]
fn the_allocator_s_stats_api_reports_the_attached_engine() {
    use core::alloc::Layout;

    static ACE: Ace = Ace::new();
    let heap = hosted_heap();
    assert!(heap.ace_stats().is_none(), "no engine attached yet");
    let ace_config = AceConfig {
        fast_ms: 1,
        tick_budget_us: 50_000,
        ..AceConfig::DEFAULT
    };
    ACE.enable(&heap, ace_config, ticker::HOSTED_CLOCK_HZ);
    heap.attach_ace(&ACE);
    let layout = Layout::from_size_align(64, 8).unwrap();
    for round in 0..20 {
        let blocks: Vec<_> = (0..1000 + round * 500)
            .map(|_| heap.alloc(layout))
            .collect();
        for block in blocks {
            // SAFETY: allocated just above with `layout`, freed once.
            unsafe { heap.dealloc(block, layout) };
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
        ACE.tick(&heap, None);
    }
    let report = heap.ace_stats().expect("attached");
    assert_eq!(report.status, ACE.status());
    assert!(report.status.deciding_ticks > 0, "{report}");
    assert_eq!(report.decisions(), &trace(&ACE)[..]);
    assert_eq!(report.decisions()[0].reason, Reason::Request, "switched on");
    ACE.disable(&heap);
    let report = heap.ace_stats().expect("attached");
    assert!(!report.status.enabled);
    let off = report.decisions().last().expect("the switch-off");
    assert_eq!(
        (off.knob, off.new, off.reason),
        (Knob::Engine, 0, Reason::Request)
    );
    assert!(
        std::format!("{report}").starts_with("ACE off (Request): "),
        "{report}"
    );
}

/// ACE's lean read sums the same counters as the statistics snapshot,
/// the depots' backlogs included (published when their locks are
/// released), without taking a lock.
#[cfg(feature = "std")]
#[test]
#[cfg_attr(
    miri,
    ignore = "the hosted heap: Miri cannot make its mmap reservation"
)]
fn ace_s_lean_totals_agree_with_the_stats_snapshot() {
    use core::alloc::Layout;

    let heap = hosted_heap();
    let mut kept = Vec::new();
    for (i, size) in [16, 64, 200, 1000, 5000, 40_000].into_iter().enumerate() {
        let layout = Layout::from_size_align(size, 8).unwrap();
        let blocks: Vec<_> = (0..2000 / (i + 1)).map(|_| heap.alloc(layout)).collect();
        for (n, block) in blocks.into_iter().enumerate() {
            if n % 3 == 0 {
                kept.push((block, layout));
            } else {
                // SAFETY: allocated just above with `layout`, freed once.
                unsafe { heap.dealloc(block, layout) };
            }
        }
    }
    let stats = heap.stats();
    let totals = Tunable::totals(&heap);
    let p = &stats.provider;
    let backlog: u64 = stats.classes.iter().map(|c| c.depot_blocks).sum();
    assert!(backlog > 0, "the workload leaves blocks in the depots");
    let expected = Totals {
        operations: stats.classes.iter().map(|c| c.allocs + c.frees).sum(),
        depot_contended: stats.depot_contended,
        provider_calls: p.alloc_calls + p.free_calls + p.resize_calls,
        slow_paths: stats.slow_paths,
        slow_path_time: stats.slow_path_time,
        depot_backlog: backlog,
        committed: stats.committed_bytes as u64,
        live: stats.live_bytes as u64,
    };
    assert_eq!(totals, expected);
    for (block, layout) in kept {
        // SAFETY: allocated above with `layout`, freed once.
        unsafe { heap.dealloc(block, layout) };
    }
}

/// A busy interval with 8 MiB committed and 2 MiB live, then `quiet`
/// quiet ones (no operations), ticking after each (each purge takes 1 MiB
/// off committed memory); returns the scavenges the quiet intervals called.
fn busy_then_quiet(ace: &Ace, fake: &Fake, quiet: usize) -> usize {
    fake.interval(100_000, |t| {
        t.committed = 8 << 20;
        t.live = 2 << 20;
    });
    ace.tick(fake, None);
    let before = fake.purges_asked.get();
    for _ in 0..quiet {
        fake.interval(0, |_| {});
        ace.tick(fake, None);
    }
    fake.purges_asked.get() - before
}

/// The quiet spells' purges traced so far (the slow loop's scavenges,
/// on fragmentation, have their own reason).
fn quiet_purges(ace: &Ace) -> usize {
    trace(ace)
        .iter()
        .filter(|d| d.knob == Knob::Scavenge && d.reason == Reason::Quiet)
        .count()
}

fn purge_delays(ace: &Ace) -> Vec<(u64, u64, Reason)> {
    trace(ace)
        .iter()
        .filter(|d| d.knob == Knob::PurgeDelay)
        .map(|d| (d.old, d.new, d.reason))
        .collect()
}

#[test]
fn a_quiet_spell_as_long_as_the_purge_delay_purges_its_idle_memory() {
    let (ace, fake) = started(config());
    // Warm the trends: the first intervals only prime them.
    busy_then_quiet(&ace, &fake, 0);
    assert_eq!(
        busy_then_quiet(&ace, &fake, 1),
        0,
        "one quiet interval is under the delay (2)"
    );
    assert_eq!(
        busy_then_quiet(&ace, &fake, 3),
        1,
        "at the delay the idle memory goes, all of it, at once"
    );
    // (The slow loop's scavenges, on fragmentation, come in busy intervals.)
    let quiet: Vec<_> = trace(&ace)
        .into_iter()
        .filter(|d| d.knob == Knob::Scavenge && d.metrics.operations == 0)
        .collect();
    assert_eq!(quiet.len(), 1);
    assert_eq!(
        (quiet[0].new, quiet[0].reason),
        (2048, Reason::Quiet),
        "down to the 2 MiB live"
    );
    // More idle memory later in the spell is purged too.
    fake.interval(0, |t| t.committed += 2 << 20);
    ace.tick(&fake, None);
    assert_eq!(last(&ace).reason, Reason::Quiet);
    // No idle memory (all committed memory live): nothing to purge.
    fake.interval(100_000, |t| t.live = t.committed);
    ace.tick(&fake, None);
    let before = fake.purges_asked.get();
    for _ in 0..4 {
        fake.interval(0, |_| {});
        ace.tick(&fake, None);
    }
    assert_eq!(fake.purges_asked.get(), before, "nothing idle to purge");
}

/// The fake has no purge delay of its own: the delay starts at the second
/// rung, two intervals. The break-even time is LEAN's 50 ms, under one
/// fast interval of 500 ms: one interval.
#[test]
fn spells_too_short_for_a_purge_to_pay_lengthen_the_delay() {
    let (ace, fake) = started(config());
    // Long spells bring the delay down to one interval (see below)...
    busy_then_quiet(&ace, &fake, 8);
    busy_then_quiet(&ace, &fake, 8);
    assert_eq!(purge_delays(&ace), [(2, 1, Reason::PurgeHeld)]);
    // ...then a spell of one quiet interval: its purge at one is undone
    // by the next burst at once. At the spell's end, the delay goes past.
    let purges = |spell| {
        let before = quiet_purges(&ace);
        busy_then_quiet(&ace, &fake, spell);
        quiet_purges(&ace) - before
    };
    assert_eq!(purges(1), 1, "purged at one");
    assert_eq!(purge_delays(&ace).len(), 1, "judged when the spell ends");
    assert_eq!(purges(1), 0, "the delay is two");
    assert_eq!(purge_delays(&ace)[1], (1, 2, Reason::WastedPurge));
    for _ in 0..3 {
        assert_eq!(purges(1), 0, "no more purges");
    }
    assert_eq!(purge_delays(&ace).len(), 2, "and no more moves");
}

#[test]
fn recurring_long_spells_bring_the_delay_down_to_the_shortest() {
    let (ace, fake) = started(config());
    // Spells of eight: a purge at one interval holds for seven, over the
    // break-even of one.
    busy_then_quiet(&ace, &fake, 8);
    busy_then_quiet(&ace, &fake, 8);
    assert_eq!(purge_delays(&ace), [(2, 1, Reason::PurgeHeld)]);
    for _ in 0..3 {
        busy_then_quiet(&ace, &fake, 8);
    }
    assert_eq!(purge_delays(&ace).len(), 1, "it stays at the shortest");
    assert_eq!(quiet_purges(&ace), 5, "each spell's idle memory, once");
}

/// Pauses within bursts (a quiet interval here and there) are never
/// purged, and a short spell among long ones holds the delay up: the
/// rule plans for the shortest of the recent spells.
#[test]
fn pauses_within_bursts_keep_their_memory() {
    let (ace, fake) = started(config());
    for _ in 0..4 {
        busy_then_quiet(&ace, &fake, 1);
    }
    assert_eq!(quiet_purges(&ace), 0);
    assert_eq!(purge_delays(&ace), []);
    for _ in 0..3 {
        busy_then_quiet(&ace, &fake, 8);
    }
    assert_eq!(
        purge_delays(&ace),
        [],
        "a pause of one is still among the last four"
    );
    busy_then_quiet(&ace, &fake, 8);
    busy_then_quiet(&ace, &fake, 0);
    assert_eq!(purge_delays(&ace), [(2, 1, Reason::PurgeHeld)]);
}

/// The delay goes where the spells call for in one move, not rung by rung.
#[test]
fn a_spell_s_end_moves_the_delay_all_the_way() {
    let fake = Fake::new();
    fake.purge_ms.set(Some(2000));
    let ace = Ace::new();
    ace.enable(&fake, config(), HZ);
    busy_then_quiet(&ace, &fake, 12);
    busy_then_quiet(&ace, &fake, 0);
    assert_eq!(purge_delays(&ace), [(4, 1, Reason::PurgeHeld)]);
}

/// ACE prices idle memory as LEAN does, whatever the profile: spells of
/// two intervals (1 s), as long as BALANCED's own delay, are purged after
/// one, each time.
#[test]
fn spells_as_long_as_the_profile_s_delay_are_purged() {
    let fake = Fake::new();
    fake.purge_ms.set(Some(1000));
    let ace = Ace::new();
    ace.enable(&fake, config(), HZ);
    for _ in 0..3 {
        busy_then_quiet(&ace, &fake, 2);
    }
    assert_eq!(purge_delays(&ace), [(2, 1, Reason::PurgeHeld)]);
    let before = quiet_purges(&ace);
    for _ in 0..4 {
        busy_then_quiet(&ace, &fake, 2);
    }
    assert_eq!(quiet_purges(&ace) - before, 4, "one purge per spell");
}

/// Without a memory target ACE never sets the allocator's delay for free
/// page runs below the one found at enable (the profile's): busy spells
/// keep their speed; quiet spells' purges are ACE's own.
#[test]
fn the_allocator_s_purge_delay_stays_at_least_the_profile_s() {
    let fake = Fake::new();
    fake.purge_ms.set(Some(1000));
    let ace = Ace::new();
    ace.enable(&fake, config(), HZ);
    for _ in 0..3 {
        busy_then_quiet(&ace, &fake, 8);
    }
    assert_eq!(purge_delays(&ace), [(2, 1, Reason::PurgeHeld)]);
    assert_eq!(fake.purge_ms.get(), Some(1000), "two intervals, not one");
}

#[test]
fn committed_memory_over_the_target_shortens_the_purge_delay() {
    let over = AceConfig {
        memory_target: 4 << 20,
        ..config()
    };
    let (ace, fake) = started(over);
    busy_then_quiet(&ace, &fake, 3);
    assert_eq!(purge_delays(&ace), [(2, 1, Reason::OverTarget)]);
    // Under the target (or with none), the delay stays.
    for target in [16 << 20, 0] {
        let (ace, fake) = started(AceConfig {
            memory_target: target,
            ..config()
        });
        busy_then_quiet(&ace, &fake, 3);
        assert_eq!(purge_delays(&ace), [], "target {target}");
    }
}

#[test]
fn the_allocator_s_purge_delay_follows_ace_s_and_comes_back_at_switch_off() {
    let fake = Fake::new();
    // BALANCED's 1 s is two fast intervals of 500 ms: ACE starts there.
    // With a memory target the allocator's delay may follow ACE's below
    // the profile's, down to the break-even (one interval).
    fake.purge_ms.set(Some(1000));
    let ace = Ace::new();
    let targeted = AceConfig {
        memory_target: 64 << 20,
        ..config()
    };
    ace.enable(&fake, targeted, HZ);
    busy_then_quiet(&ace, &fake, 8);
    busy_then_quiet(&ace, &fake, 0);
    assert_eq!(purge_delays(&ace), [(2, 1, Reason::PurgeHeld)]);
    assert_eq!(fake.purge_ms.get(), Some(500), "one interval of 500 ms");
    ace.disable(&fake);
    assert_eq!(fake.purge_ms.get(), Some(1000), "the delay found at enable");
    // A profile with a longer delay starts ACE's ladder higher.
    fake.purge_ms.set(Some(8000));
    let ace = Ace::new();
    ace.enable(&fake, config(), HZ);
    busy_then_quiet(&ace, &fake, 15);
    assert_eq!(quiet_purges(&ace), 0, "under 16 quiet intervals");
    busy_then_quiet(&ace, &fake, 16);
    assert_eq!(quiet_purges(&ace), 1);
}

/// Classes of 64 and 1024 bytes (their indices).
fn class_of(size: usize) -> usize {
    (0..NUM_CLASSES)
        .find(|&c| crate::size_class::size_of(c) == size)
        .expect("a class of that size")
}

/// A class that misses hard grows by half its capacity each interval,
/// taking the bytes from classes that hardly miss: one CPU's cache bytes
/// never pass what they were at enable. A class under the floor stays.
#[test]
fn a_class_that_misses_grows_within_the_cache_byte_budget() {
    let fake = Fake::with_classes(16, 256);
    let ace = Ace::new();
    ace.enable(&fake, config(), HZ);
    let budget = fake.cache_bytes();
    let (hot, lukewarm) = (class_of(1024), class_of(64));
    let mut caps = std::vec![16];
    for _ in 0..8 {
        fake.pressure[hot].set(fake.pressure[hot].get() + 5_000);
        fake.pressure[lukewarm].set(fake.pressure[lukewarm].get() + 50);
        fake.interval(100_000, |_| {});
        ace.tick(&fake, None);
        assert!(
            fake.cache_bytes() <= budget,
            "{} > {budget}",
            fake.cache_bytes()
        );
        caps.push(fake.caps[hot].get());
    }
    assert_eq!(&caps[..4], [16, 24, 36, 54], "half again each interval");
    assert_eq!(*caps.last().unwrap(), 256, "up to its ceiling");
    assert_eq!(
        fake.caps[lukewarm].get(),
        16,
        "under the floor: neither grows nor gives"
    );
    let d = trace(&ace)
        .into_iter()
        .find(|d| d.reason == Reason::ClassMisses)
        .expect("a class grew");
    assert_eq!(
        (d.knob, d.old, d.new),
        (Knob::ClassCapacity(hot as u8), 16, 24)
    );
    assert!(trace(&ace).iter().any(|d| d.reason == Reason::CacheBudget));
}

/// The diet lowers the byte budget: the coldest classes give capacity
/// back until one CPU's caches fit it.
#[test]
fn the_diet_shrinks_the_cache_byte_budget() {
    let fake = Fake::with_classes(16, 256);
    let ace = Ace::new();
    ace.enable(&fake, config(), HZ);
    let budget = fake.cache_bytes();
    let hw = |llc_misses| HwCounts {
        llc_misses,
        cycles: 1_000_000,
        instructions: 1_000_000,
    };
    // LLC misses per operation rise (as in the diet rule's test): diet 224/256.
    for misses in [1000, 1000, 1000, 8000] {
        fake.interval(100_000, |_| {});
        ace.tick(&fake, Some(hw(misses)));
    }
    assert_eq!(fake.knobs().cache_capacity, 64 * 224 / 256);
    assert!(fake.cache_bytes() <= budget * 224 / 256);
}

/// A busy cache (restartable sections, lock taken) gets the capacity on a
/// later interval; switching ACE off gives every sized class back to the
/// capacity knob.
#[test]
fn busy_caches_are_set_again_and_switch_off_gives_classes_back() {
    let fake = Fake::with_classes(16, 256);
    let ace = Ace::new();
    ace.enable(&fake, config(), HZ);
    let hot = class_of(1024);
    fake.busy.set(true);
    fake.pressure[hot].set(5_000);
    fake.interval(100_000, |_| {});
    ace.tick(&fake, None);
    assert_eq!((fake.caps[hot].get(), fake.applied[hot].get()), (24, 0));
    fake.busy.set(false);
    fake.interval(100_000, |_| {});
    ace.tick(&fake, None);
    assert_eq!(
        fake.applied[hot].get(),
        24,
        "set again once the cache is free"
    );
    ace.disable(&fake);
    assert_eq!(fake.caps[hot].get(), 0, "back to the knob's");
}

/// On a real allocator (LEAN, whose per-class budgets keep caches small):
/// a class worked hard grows past its static capacity, and one CPU's
/// cache bytes stay within what they were at enable.
#[cfg(feature = "std")]
#[test]
#[cfg_attr(
    miri,
    ignore = "the hosted heap: Miri cannot make its mmap reservation"
)]
fn a_real_allocators_hot_class_grows_within_the_budget() {
    use core::alloc::Layout;

    let heap = hosted_heap();
    heap.set_profile(crate::Profile::Lean);
    let class = class_of(1024);
    let bytes = |heap: &crate::hosted::HostedAllocator| -> u64 {
        (0..NUM_CLASSES)
            .map(|c| {
                let (cap, _) = Tunable::class_capacity(heap, c);
                u64::from(cap) * crate::size_class::size_of(c) as u64
            })
            .sum()
    };
    let ace = Ace::new();
    let ace_config = AceConfig {
        fast_ms: 1,
        tick_budget_us: 50_000,
        ..AceConfig::DEFAULT
    };
    ace.enable(&heap, ace_config, ticker::HOSTED_CLOCK_HZ);
    let (before, max) = Tunable::class_capacity(&heap, class);
    let budget = bytes(&heap);
    let layout = Layout::from_size_align(1024, 8).unwrap();
    for _ in 0..8 {
        let blocks: Vec<_> = (0..16 * max).map(|_| heap.alloc(layout)).collect();
        for block in blocks {
            // SAFETY: allocated just above with `layout`, freed once.
            unsafe { heap.dealloc(block, layout) };
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
        ace.tick(&heap, None);
        assert!(bytes(&heap) <= budget, "{} > {budget}", bytes(&heap));
    }
    let (after, _) = Tunable::class_capacity(&heap, class);
    assert!(
        after > before,
        "capacity {before} -> {after} (ceiling {max})"
    );
    ace.disable(&heap);
    assert_eq!(
        Tunable::class_capacity(&heap, class).0,
        before,
        "the knob's again"
    );
}

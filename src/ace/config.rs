//! ACE's settings: intervals in time, converted to clock units once at
//! [`Ace::enable`](super::Ace::enable) with the clock's rate.

/// ACE's runtime configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AceConfig {
    /// Fast loop interval (quiet-spell purges, drain threshold, diet, bundle width), ms.
    pub fast_ms: u64,
    /// Slow loop interval (scavenging, restoring knobs), s.
    pub slow_s: u64,
    /// Longest a deciding tick may take, µs. Three ticks in a row over it
    /// switch ACE off (a guard); work that would exceed it is deferred.
    pub tick_budget_us: u64,
    /// Committed bytes above which ACE switches off (0: no cap).
    pub committed_cap: u64,
    /// Committed bytes ACE aims to stay under in quiet spells (0: none):
    /// over it, the purge delay shortens (see `Ace`'s purge rule).
    pub memory_target: u64,
    /// The allocation-latency guard, in percent of the baseline (0: no
    /// guard). The baseline is the mean time of an allocation slow path
    /// (refill or cache bypass, new slabs included) in the quietest fast
    /// intervals run with the knobs ACE started from; with knobs of its
    /// own, [`latency_intervals`](Self::latency_intervals) intervals in a
    /// row whose mean is above this share of the baseline start a probe:
    /// one interval with the starting knobs. If ACE's knobs were slower
    /// than the probe by this share, they were the cause: ACE switches off
    /// when two probes in a row say so; if not, the workload changed, and
    /// the probe's latency becomes the baseline.
    /// One slow path counts at most 16 times the baseline (a preempted
    /// thread is not a slow allocator). The fast path is not timed (it
    /// would cost more than it measures).
    pub latency_limit_pct: u32,
    /// Intervals in a row over [`latency_limit_pct`](Self::latency_limit_pct)
    /// that trip the latency guard.
    pub latency_intervals: u32,
    /// Most pages one slow-loop scavenge decommits.
    pub scavenge_pages: usize,
    /// Slow intervals with stable signals before knobs step back toward
    /// their defaults (the hysteresis).
    pub restore_after: u32,
}

impl AceConfig {
    /// Fast 100 ms (a deciding tick costs microseconds; a quiet spell of
    /// a few hundred ms must span several intervals for the purge rule to
    /// tell it from a pause), slow 30 s, a 200 µs tick budget,
    /// no committed cap, no memory target, slow paths at three times their baseline latency
    /// for three intervals start a latency probe, 256 pages (1 MiB) per scavenge,
    /// restore after two stable slow intervals.
    pub const DEFAULT: AceConfig = AceConfig {
        fast_ms: 100,
        slow_s: 30,
        tick_budget_us: 200,
        committed_cap: 0,
        memory_target: 0,
        latency_limit_pct: 300,
        latency_intervals: 3,
        scavenge_pages: 256,
        restore_after: 2,
    };
}

impl Default for AceConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The configuration in clock units.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Clocked {
    pub fast: u64,
    pub slow: u64,
    pub budget: u64,
}

impl Clocked {
    /// `config`'s times for a clock running at `hz`.
    pub fn new(config: &AceConfig, hz: u64) -> Clocked {
        let at = |amount: u64, per_second: u64| {
            (u128::from(amount) * u128::from(hz) / u128::from(per_second))
                .clamp(1, u128::from(u64::MAX)) as u64
        };
        Clocked {
            fast: at(config.fast_ms, 1000),
            slow: at(config.slow_s, 1),
            budget: at(config.tick_budget_us, 1_000_000),
        }
    }
}

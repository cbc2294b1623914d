//! The decision trace: a fixed-size ring of ACE's recent decisions, each
//! with the knob, its old and new value, why, and the metrics behind it.
//! Written only by the CPU that holds the engine's lock; no allocation.

use core::fmt;

use super::metrics::Metrics;

/// Decisions the ring keeps; older ones are overwritten.
pub const TRACE_LEN: usize = 64;

/// What a decision changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Knob {
    /// Diet factor on the cache capacity, in 1/256 (256 = none).
    Diet,
    /// Bundle width (blocks per depot exchange).
    BundleWidth,
    /// Depot drain threshold (blocks).
    DrainThreshold,
    /// Empty-slab pages each class keeps (`Knobs::release_pages`).
    ReleasePages,
    /// A budgeted scavenge: old and new are committed KiB.
    Scavenge,
    /// The purge delay, in quiet fast intervals.
    PurgeDelay,
    /// The capacity (blocks) of every CPU's cache of one size class.
    ClassCapacity(u8),
    /// ACE itself: 1 on, 0 off.
    Engine,
}

/// Why a decision was taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// Depot backlog rose.
    Backlog,
    /// Last-level-cache misses per operation rose.
    LlcMisses,
    /// Depot lock contention per operation rose.
    Contention,
    /// Fragmentation or committed memory rose.
    Fragmentation,
    /// A quiet spell lasted the purge delay: its idle memory is purged.
    Quiet,
    /// The recurring quiet spells end too soon after a purge at this delay
    /// for it to pay (its memory is committed again within the break-even
    /// time): the delay lengthens.
    WastedPurge,
    /// The recurring quiet spells outlast a purge at a shorter delay by
    /// the break-even time: the delay shortens.
    PurgeHeld,
    /// Committed memory over the target when a quiet spell reached the delay.
    OverTarget,
    /// Page provider calls per operation rose.
    ProviderCalls,
    /// A size class's caches missed (empty on allocation, full on free)
    /// over the floor: the class grew.
    ClassMisses,
    /// The cache byte budget was full (or the diet lowered it): a class
    /// that hardly missed gave capacity back.
    CacheBudget,
    /// Signals stable long enough: one step back toward the defaults.
    Restore,
    /// Guard: a tick took longer than its budget.
    TickBudget,
    /// Guard: committed memory passed the cap.
    CommittedCap,
    /// Guard: allocation slow paths took too long against their baseline,
    /// and were faster with the starting knobs in two probes in a row.
    AllocLatency,
    /// The latency guard runs the starting knobs for one interval (engine
    /// 1 -> 1) to see whether ACE's knobs slowed allocation down.
    LatencyProbe,
    /// The probe found allocation faster with the starting knobs, but for
    /// the first time in a row: ACE's knobs come back on probation (engine
    /// 1 -> 1); a second such probe switches ACE off.
    LatencySuspect,
    /// The probe found allocation as slow with the starting knobs: the
    /// workload changed, its latency is the new baseline, ACE's knobs
    /// come back (engine 1 -> 1).
    WorkloadLatency,
    /// Switched on or off through the API.
    Request,
}

/// One decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Sequence number, from 1.
    pub seq: u64,
    /// Clock value (`Platform::now`) when taken.
    pub at: u64,
    /// The knob changed.
    pub knob: Knob,
    /// Its value before.
    pub old: u64,
    /// Its value after.
    pub new: u64,
    /// Why.
    pub reason: Reason,
    /// The interval's metrics behind it.
    pub metrics: Metrics,
}

impl Decision {
    /// A placeholder for arrays that [`Ace::decisions`](super::Ace::decisions) fills.
    pub const EMPTY: Decision = Decision {
        seq: 0,
        at: 0,
        knob: Knob::Engine,
        old: 0,
        new: 0,
        reason: Reason::Request,
        metrics: Metrics::ZERO,
    };
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = &self.metrics;
        write!(
            f,
            "#{} {:?} {} -> {} ({:?}): {} ops, backlog {}, contended {}, llc misses {}, slow path mean {}, committed {} KiB, live {} KiB",
            self.seq,
            self.knob,
            self.old,
            self.new,
            self.reason,
            m.operations,
            m.depot_backlog,
            m.depot_contended,
            m.llc_misses,
            m.slow_path_mean(),
            m.committed / 1024,
            m.live / 1024
        )
    }
}

/// The ring.
pub struct Trace {
    ring: [Option<Decision>; TRACE_LEN],
    /// Decisions recorded in all (the last one's `seq`).
    recorded: u64,
}

impl Trace {
    pub const fn new() -> Trace {
        Trace {
            ring: [None; TRACE_LEN],
            recorded: 0,
        }
    }

    /// Records a decision (giving it the next `seq`) and logs it through
    /// the `log` crate when that feature is on.
    pub fn record(&mut self, mut decision: Decision) {
        self.recorded += 1;
        decision.seq = self.recorded;
        self.ring[(self.recorded % TRACE_LEN as u64) as usize] = Some(decision);
        #[cfg(feature = "log")]
        log::info!("acealloc ace: {decision}");
    }

    /// Decisions recorded in all.
    pub fn recorded(&self) -> u64 {
        self.recorded
    }

    /// Copies the kept decisions with `seq > after` into `out`, oldest
    /// first, as many as fit; returns how many.
    pub fn copy_after(&self, after: u64, out: &mut [Decision]) -> usize {
        let first = self
            .recorded
            .saturating_sub(TRACE_LEN as u64 - 1)
            .max(after + 1)
            .max(1);
        let mut n = 0;
        for seq in first..=self.recorded {
            if n == out.len() {
                break;
            }
            if let Some(d) = self.ring[(seq % TRACE_LEN as u64) as usize] {
                out[n] = d;
                n += 1;
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(new: u64) -> Decision {
        Decision {
            seq: 0,
            at: 0,
            knob: Knob::DrainThreshold,
            old: 0,
            new,
            reason: Reason::Backlog,
            metrics: Metrics::default(),
        }
    }

    #[test]
    fn keeps_the_latest_decisions_oldest_first() {
        let mut trace = Trace::new();
        for i in 0..100 {
            trace.record(decision(i));
        }
        let mut out = [decision(0); 100];
        let n = trace.copy_after(0, &mut out);
        assert_eq!(n, TRACE_LEN);
        assert_eq!(out[0].new, 100 - TRACE_LEN as u64);
        assert_eq!(out[n - 1].new, 99);
        assert_eq!(out[n - 1].seq, 100);
        assert_eq!(trace.copy_after(98, &mut out), 2);
        assert_eq!(out[0].seq, 99);
    }
}

//! What ACE observes: cumulative counters read at every decision, turned
//! into one interval's [`Metrics`] by difference. Software counters come
//! from the allocator (always there); hardware counts are added by each
//! CPU's own tick from its PMU, where there is one.

use super::fixed::per_million;

/// Hardware events on one CPU since its previous sample
/// (`arch::pmu::Counters::sample`); zero where not counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HwCounts {
    /// Last-level-cache misses.
    pub llc_misses: u64,
    /// Unhalted core cycles.
    pub cycles: u64,
    /// Instructions retired.
    pub instructions: u64,
}

/// The allocator's software counters at one moment: cumulative counts
/// (differenced per interval) and levels (taken as they are).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Allocations and frees, all CPUs (cumulative).
    pub operations: u64,
    /// Depot lock acquisitions that found the lock taken (cumulative).
    pub depot_contended: u64,
    /// Page provider calls (cumulative).
    pub provider_calls: u64,
    /// Allocation slow paths run (cumulative).
    pub slow_paths: u64,
    /// Clock units spent in them (cumulative).
    pub slow_path_time: u64,
    /// Blocks waiting in all depots (level).
    pub depot_backlog: u64,
    /// Bytes committed from the provider (level).
    pub committed: u64,
    /// Bytes with the user (level).
    pub live: u64,
}

/// One interval's metrics: the software counters' change, the levels at
/// its end and the hardware events of every CPU.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Metrics {
    /// Allocator operations in the interval.
    pub operations: u64,
    /// Contended depot lock acquisitions in the interval.
    pub depot_contended: u64,
    /// Provider calls in the interval.
    pub provider_calls: u64,
    /// Allocation slow paths in the interval.
    pub slow_paths: u64,
    /// Clock units spent in them.
    pub slow_path_time: u64,
    /// Blocks in the depots at the end.
    pub depot_backlog: u64,
    /// Committed bytes at the end.
    pub committed: u64,
    /// Live bytes at the end.
    pub live: u64,
    /// Last-level-cache misses, all CPUs (0 without a PMU).
    pub llc_misses: u64,
    /// Instructions retired, all CPUs (0 without a PMU).
    pub instructions: u64,
}

impl Totals {
    /// All zero.
    pub const ZERO: Totals = Totals {
        operations: 0,
        depot_contended: 0,
        provider_calls: 0,
        slow_paths: 0,
        slow_path_time: 0,
        depot_backlog: 0,
        committed: 0,
        live: 0,
    };
}

impl Metrics {
    /// All zero.
    pub const ZERO: Metrics = Metrics {
        operations: 0,
        depot_contended: 0,
        provider_calls: 0,
        slow_paths: 0,
        slow_path_time: 0,
        depot_backlog: 0,
        committed: 0,
        live: 0,
        llc_misses: 0,
        instructions: 0,
    };

    /// The interval from `before` to `after`, with hardware counts `hw`.
    pub fn between(before: &Totals, after: &Totals, hw: HwCounts) -> Metrics {
        Metrics {
            operations: after.operations.wrapping_sub(before.operations),
            depot_contended: after.depot_contended.wrapping_sub(before.depot_contended),
            provider_calls: after.provider_calls.wrapping_sub(before.provider_calls),
            slow_paths: after.slow_paths.wrapping_sub(before.slow_paths),
            slow_path_time: after.slow_path_time.wrapping_sub(before.slow_path_time),
            depot_backlog: after.depot_backlog,
            committed: after.committed,
            live: after.live,
            llc_misses: hw.llc_misses,
            instructions: hw.instructions,
        }
    }

    /// Committed bytes per live byte, in 1/1024 (1024 = no overhead): the
    /// fragmentation ratio. With nothing live, committed KiB instead.
    pub fn fragmentation_q10(&self) -> u64 {
        (u128::from(self.committed) * 1024 / u128::from(self.live.max(1024)))
            .min(u128::from(u64::MAX)) as u64
    }

    /// Contended depot acquisitions per million operations.
    pub fn contention_per_mop(&self) -> u64 {
        per_million(self.depot_contended, self.operations)
    }

    /// LLC misses per million operations.
    pub fn llc_misses_per_mop(&self) -> u64 {
        per_million(self.llc_misses, self.operations)
    }

    /// Mean clock units of an allocation slow path (0 when none ran).
    pub fn slow_path_mean(&self) -> u64 {
        self.slow_path_time / self.slow_paths.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interval_is_the_difference_of_counts_and_the_last_levels() {
        let before = Totals {
            operations: 100,
            depot_contended: 5,
            committed: 1 << 20,
            ..Totals::default()
        };
        let after = Totals {
            operations: 1100,
            depot_contended: 7,
            committed: 2 << 20,
            live: 1 << 20,
            ..Totals::default()
        };
        let m = Metrics::between(&before, &after, HwCounts::default());
        assert_eq!(m.operations, 1000);
        assert_eq!(m.contention_per_mop(), 2000);
        assert_eq!(m.committed, 2 << 20);
        assert_eq!(m.fragmentation_q10(), 2048);
    }
}

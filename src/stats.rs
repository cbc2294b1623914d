//! Statistics: one snapshot struct, gathered from the allocator's counters
//! without stopping it (figures from other CPUs may be a moment old).

use core::fmt;
use core::ptr;
use core::sync::atomic::Ordering::{Acquire, Relaxed, Release};

use crate::Profile;
use crate::ace::{Ace, AceReport, Totals};
use crate::allocator::Allocator;
use crate::platform::Platform;
use crate::provider::PageProvider;
use crate::size_class::{self, NUM_CLASSES};

/// Counters of one size class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClassStats {
    /// Block size of the class.
    pub size: usize,
    /// Allocations served.
    pub allocs: u64,
    /// Frees taken.
    pub frees: u64,
    /// Allocations that found their CPU's cache empty.
    pub cache_misses: u64,
    /// Frees that found their CPU's cache full.
    pub cache_drains: u64,
    /// Blocks sitting in CPU caches.
    pub cached_blocks: u64,
    /// Blocks waiting in the class's transfer cache.
    pub depot_blocks: u64,
    /// Slabs of the class.
    pub slabs: u64,
}

impl ClassStats {
    /// Blocks with the user.
    pub fn live_blocks(&self) -> u64 {
        self.allocs.saturating_sub(self.frees)
    }
}

/// Calls into the page provider, by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProviderStats {
    /// `alloc_pages` calls (including failed ones).
    pub alloc_calls: u64,
    /// `free_pages` calls.
    pub free_calls: u64,
    /// `resize_in_place` calls.
    pub resize_calls: u64,
    /// `alloc_pages` and `recommit` calls that failed.
    pub failed_calls: u64,
    /// `decommit` calls that succeeded (one per run).
    pub decommit_calls: u64,
    /// `recommit` calls (one per decommitted run reused).
    pub recommit_calls: u64,
}

impl ProviderStats {
    /// Calls of every kind.
    pub fn total(&self) -> u64 {
        self.alloc_calls
            + self.free_calls
            + self.resize_calls
            + self.decommit_calls
            + self.recommit_calls
    }
}

/// Counters of one CPU's cache, all classes together.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuStats {
    /// Allocations served through this CPU's cache.
    pub allocs: u64,
    /// Frees taken into this CPU's cache.
    pub frees: u64,
    /// Allocations that found the cache empty.
    pub misses: u64,
    /// Blocks cached now.
    pub cached_blocks: u64,
}

impl CpuStats {
    /// Share of allocations served without a miss, in per mille.
    pub fn hit_permille(&self) -> u64 {
        (self.allocs - self.misses.min(self.allocs)) * 1000 / self.allocs.max(1)
    }
}

/// How the per-CPU caches keep two users of one CPU apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PerCpuPath {
    /// Interrupts masked (kernels): no lock.
    InterruptsMasked,
    /// Linux restartable sequences (std programs): no lock, no atomic
    /// read-modify-write.
    Restartable,
    /// A try-lock per cache (std programs without rseq).
    TryLock,
}

/// A snapshot of the allocator's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stats {
    /// Bytes currently taken from the provider (slabs, large blocks,
    /// metadata), except a lazily backed page map.
    pub committed_bytes: usize,
    /// Of the committed bytes, freed runs kept for reuse.
    pub retained_bytes: usize,
    /// Freed runs kept decommitted for reuse (not in the committed bytes).
    pub decommitted_bytes: usize,
    /// Bytes decommitted since `init`, in all.
    pub decommitted_total_bytes: u64,
    /// Empty slabs given back to the page layer since `init`.
    pub slabs_retired: u64,
    /// Large blocks allocated and freed since `init`.
    pub large_allocs: u64,
    /// See `large_allocs`.
    pub large_frees: u64,
    /// The profile in force.
    pub profile: Profile,
    /// Of the committed bytes, the slab-descriptor pool (it never shrinks).
    pub descriptor_bytes: usize,
    /// Address space of a page map whose pages are backed only where used
    /// (providers whose fresh pages read as zero); 0 otherwise.
    pub lazy_page_map_bytes: usize,
    /// Bytes with the user (block sizes, large blocks in whole pages).
    pub live_bytes: usize,
    /// Of those, bytes in large blocks.
    pub large_live_bytes: usize,
    /// CPUs with a cache.
    pub cpus: usize,
    /// How the per-CPU caches are entered.
    pub per_cpu_path: PerCpuPath,
    /// Per-class counters.
    pub classes: [ClassStats; NUM_CLASSES],
    /// Acquisitions of the shared layers' locks (transfer caches, central
    /// free lists) that found the lock taken.
    pub depot_contended: u64,
    /// Failed tries spent waiting for those locks.
    pub depot_spins: u64,
    /// Provider calls.
    pub provider: ProviderStats,
    /// Allocation slow paths run (refills and allocations that bypassed
    /// the CPU caches, new slabs included)...
    pub slow_paths: u64,
    /// ...and the `Platform::now` units they took together, each counted
    /// at most the clip an ACE engine set for its latency guard (a
    /// preempted thread's time slice is not allocator latency).
    pub slow_path_time: u64,
}

impl Stats {
    /// Allocations served from a CPU cache without a miss.
    pub fn cache_hits(&self) -> u64 {
        // A failed refill counts a miss but no allocation.
        self.classes
            .iter()
            .map(|c| c.allocs.saturating_sub(c.cache_misses))
            .sum()
    }

    /// Allocations that missed their CPU cache.
    pub fn cache_misses(&self) -> u64 {
        self.classes.iter().map(|c| c.cache_misses).sum()
    }

    /// Small-block allocations served in all.
    pub fn allocs(&self) -> u64 {
        self.classes.iter().map(|c| c.allocs).sum()
    }

    /// Allocator operations: allocations and frees, small and large.
    pub fn operations(&self) -> u64 {
        let small: u64 = self.classes.iter().map(|c| c.allocs + c.frees).sum();
        small + self.large_allocs + self.large_frees
    }

    /// Provider calls of every kind per million operations: the cost of
    /// the page layer as the workload sees it.
    pub fn provider_calls_per_million_ops(&self) -> f64 {
        self.provider.total() as f64 * 1e6 / self.operations().max(1) as f64
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:?}: committed {} KiB (retained {} KiB, decommitted {} KiB), live {} KiB (large {} KiB), {} CPUs",
            self.profile,
            self.committed_bytes / 1024,
            self.retained_bytes / 1024,
            self.decommitted_bytes / 1024,
            self.live_bytes / 1024,
            self.large_live_bytes / 1024,
            self.cpus
        )?;
        writeln!(
            f,
            "per-CPU path {:?}; cache hits {} misses {}; depot contended {} spins {}; slabs retired {}",
            self.per_cpu_path,
            self.cache_hits(),
            self.cache_misses(),
            self.depot_contended,
            self.depot_spins,
            self.slabs_retired
        )?;
        let p = &self.provider;
        writeln!(
            f,
            "provider alloc {} free {} resize {} decommit {} recommit {} failed {} ({:.2} per million ops); {} KiB decommitted in all",
            p.alloc_calls,
            p.free_calls,
            p.resize_calls,
            p.decommit_calls,
            p.recommit_calls,
            p.failed_calls,
            self.provider_calls_per_million_ops(),
            self.decommitted_total_bytes / 1024
        )?;
        for c in self.classes.iter().filter(|c| c.allocs > 0) {
            writeln!(
                f,
                "  {:>6} B: allocs {} live {} misses {} cached {} depot {} slabs {}",
                c.size,
                c.allocs,
                c.live_blocks(),
                c.cache_misses,
                c.cached_blocks,
                c.depot_blocks,
                c.slabs
            )?;
        }
        Ok(())
    }
}

impl<P: PageProvider + Send, Pl: Platform> Allocator<P, Pl> {
    /// Counters of CPU `cpu`'s cache (`None` past the last CPU).
    pub fn cpu_stats(&self, cpu: usize) -> Option<CpuStats> {
        let cache = self.cpu_caches().get(cpu)?;
        let mut s = CpuStats::default();
        for (slot, cold) in cache.classes.iter().zip(&cache.misses) {
            s.allocs += slot.allocs.load(Relaxed);
            s.frees += slot.frees.load(Relaxed);
            s.misses += cold.misses.load(Relaxed);
            s.cached_blocks += u64::from(slot.len_hint());
        }
        Some(s)
    }

    /// Attaches the ACE engine that tunes this allocator, so that
    /// [`ace_stats`](Self::ace_stats) reports it (the hosted ticker does
    /// this itself). Attaching another one replaces it.
    pub fn attach_ace(&self, ace: &'static Ace) {
        self.ace.store(ptr::from_ref(ace).cast_mut(), Release);
    }

    /// The attached ACE engine's status and decision trace (`None` when
    /// none is attached): the statistics of the engine next to
    /// [`stats`](Self::stats)'. Allocation-free, but waits for the engine:
    /// not from an interrupt handler.
    pub fn ace_stats(&self) -> Option<AceReport> {
        // SAFETY: only `attach_ace` stores here, from a `&'static Ace`.
        let ace = unsafe { self.ace.load(Acquire).as_ref() }?;
        Some(ace.report())
    }

    /// What ACE reads on a deciding tick: [`stats`](Self::stats)' counters
    /// it needs, summed from atomics alone (the transfer caches' backlogs as their
    /// last lock holders published them), so a timer tick takes no lock
    /// and builds no `Stats`.
    pub(crate) fn ace_totals(&self) -> Totals {
        let mut t = Totals::ZERO;
        let mut small_live = 0u64;
        let caches = self.cpu_caches();
        for (class, transfer) in self.transfer.iter().enumerate() {
            let (mut allocs, mut frees) =
                (transfer.allocs.load(Relaxed), transfer.frees.load(Relaxed));
            for cache in caches {
                allocs += cache.classes[class].allocs.load(Relaxed);
                frees += cache.classes[class].frees.load(Relaxed);
            }
            t.operations += allocs + frees;
            small_live += allocs.saturating_sub(frees) * size_class::size_of(class) as u64;
            t.depot_contended += self.shared_lock_waits(class).0;
            t.depot_backlog += transfer.backlog_hint.load(Relaxed);
        }
        (t.slow_paths, t.slow_path_time) = self.slow_path_totals();
        let c = &self.counters;
        t.provider_calls =
            c.alloc_calls.load(Relaxed) + c.free_calls.load(Relaxed) + c.resize_calls.load(Relaxed);
        t.committed = c.committed.load(Relaxed) as u64;
        t.live = small_live + self.large_live.load(Relaxed) as u64;
        t
    }

    /// A snapshot of the counters. Takes no lock that an allocation could be
    /// waiting on for long (central-list locks are only tried).
    pub fn stats(&self) -> Stats {
        let mut classes = [ClassStats::default(); NUM_CLASSES];
        let (mut contended, mut spins) = (0, 0);
        for (class, c) in classes.iter_mut().enumerate() {
            let transfer = &self.transfer[class];
            c.size = size_class::size_of(class);
            c.allocs = transfer.allocs.load(Relaxed);
            c.frees = transfer.frees.load(Relaxed);
            c.depot_blocks = transfer.backlog_hint.load(Relaxed);
            if let Some(slabs) = self.central[class].slabs.try_lock() {
                c.slabs = slabs.slabs as u64;
            }
            let (c_contended, c_spins) = self.shared_lock_waits(class);
            contended += c_contended;
            spins += c_spins;
        }
        for cache in self.cpu_caches() {
            for ((c, slot), cold) in classes.iter_mut().zip(&cache.classes).zip(&cache.misses) {
                c.allocs += slot.allocs.load(Relaxed);
                c.frees += slot.frees.load(Relaxed);
                c.cache_misses += cold.misses.load(Relaxed);
                c.cache_drains += cold.drains.load(Relaxed);
                c.cached_blocks += u64::from(slot.len_hint());
            }
        }
        let large_live_bytes = self.large_live.load(Relaxed);
        let small_live: u64 = classes
            .iter()
            .map(|c| c.live_blocks() * c.size as u64)
            .sum();
        let (slow_paths, slow_path_time) = self.slow_path_totals();
        let counters = &self.counters;
        Stats {
            committed_bytes: counters.committed.load(Relaxed),
            lazy_page_map_bytes: counters.lazy_page_map.load(Relaxed),
            retained_bytes: counters.retained.load(Relaxed),
            decommitted_bytes: counters.decommitted.load(Relaxed),
            decommitted_total_bytes: counters.decommitted_total.load(Relaxed),
            slabs_retired: counters.slabs_retired.load(Relaxed),
            large_allocs: counters.large_allocs.load(Relaxed),
            large_frees: counters.large_frees.load(Relaxed),
            profile: self.profile(),
            descriptor_bytes: counters.descriptors.load(Relaxed),
            live_bytes: small_live as usize + large_live_bytes,
            large_live_bytes,
            cpus: self.cpu_caches().len(),
            per_cpu_path: self.per_cpu_path(),
            classes,
            depot_contended: contended,
            depot_spins: spins,
            provider: ProviderStats {
                alloc_calls: counters.alloc_calls.load(Relaxed),
                free_calls: counters.free_calls.load(Relaxed),
                resize_calls: counters.resize_calls.load(Relaxed),
                failed_calls: counters.failed_calls.load(Relaxed),
                decommit_calls: counters.decommit_calls.load(Relaxed),
                recommit_calls: counters.recommit_calls.load(Relaxed),
            },
            slow_paths,
            slow_path_time,
        }
    }

    /// Contended acquisitions and spins of `class`'s transfer-cache and
    /// central-list locks together (what `depot_contended`/`depot_spins`
    /// report: the shared layers below the CPU caches).
    fn shared_lock_waits(&self, class: usize) -> (u64, u64) {
        let (ring, slabs) = (&self.transfer[class].ring, &self.central[class].slabs);
        (
            ring.contended.load(Relaxed) + slabs.contended.load(Relaxed),
            ring.spins.load(Relaxed) + slabs.spins.load(Relaxed),
        )
    }

    /// Allocation slow paths run and the time they took, all CPUs and the
    /// direct path together (see [`Stats::slow_paths`]).
    fn slow_path_totals(&self) -> (u64, u64) {
        let (mut count, mut time) = (
            self.direct_slow.count.load(Relaxed),
            self.direct_slow.time.load(Relaxed),
        );
        for cache in self.cpu_caches() {
            count += cache.slow.count.load(Relaxed);
            time = time.wrapping_add(cache.slow.time.load(Relaxed));
        }
        (count, time)
    }
}

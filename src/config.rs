//! Every tunable in one place: the profile, the cache knobs and the checks.

use crate::misuse::Misuse;

/// What the allocator optimises for. Switchable at run time
/// ([`Allocator::set_profile`](crate::Allocator::set_profile)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// Speed first.
    Fast,
    /// The default: speed with a modest resident reserve.
    Balanced,
    /// Low resident memory.
    Lean,
}

impl Profile {
    /// How many times the [`Knobs::release_pages`] reserve of empty slabs
    /// each class keeps: FAST twice (so two slabs by default), BALANCED
    /// once, LEAN none whatever the knob says.
    pub fn empty_slab_factor(self) -> usize {
        match self {
            Profile::Fast => 2,
            Profile::Balanced => 1,
            Profile::Lean => 0,
        }
    }

    /// How long (ms) a freed page run stays committed and unused before
    /// it is purged (decommitted): reuse within the delay costs nothing,
    /// memory idle for longer goes back. FAST waits longest (jemalloc's
    /// default decay is 10 s), LEAN briefly but not at once (mimalloc's
    /// purge delay is 10 ms): decommitting at once turns every
    /// free-then-reuse of a run into two system calls and page faults.
    pub fn purge_delay_ms(self) -> u32 {
        match self {
            Profile::Fast => 10_000,
            Profile::Balanced => 1_000,
            Profile::Lean => 50,
        }
    }

    /// How long (ms) the allocator must serve no allocation and no free at
    /// all before it treats everything it caches as idle: then
    /// [`maintain`](crate::Allocator::maintain) returns the CPU caches,
    /// transfer caches and empty slabs to the page layer and purges every
    /// free run, whatever the purge delay. A program that stopped
    /// allocating (a service between bursts, a batch job between phases)
    /// gives its memory back within this time, while one that keeps
    /// allocating keeps its free runs for the purge delay. FAST keeps
    /// everything (`None`).
    pub fn quiet_ms(self) -> Option<u32> {
        match self {
            Profile::Fast => None,
            Profile::Balanced => Some(20),
            Profile::Lean => Some(10),
        }
    }

    /// Blocks of classes up to this size (bytes) that each CPU's cache gets
    /// a bundle of before its first allocation (FAST only: it spends a few
    /// pages so that the first allocations of the common sizes hit).
    pub fn prewarm_size(self) -> usize {
        match self {
            Profile::Fast => 256,
            Profile::Balanced | Profile::Lean => 0,
        }
    }

    /// Bytes one size class may keep idle in CPU caches and its depot
    /// together: half for the caches of all CPUs, half for the depot.
    /// FAST and BALANCED only cap each knob at [`Knobs::MAX_BYTES`].
    pub fn class_budget(self) -> Option<usize> {
        match self {
            Profile::Fast | Profile::Balanced => None,
            Profile::Lean => Some(64 * 1024),
        }
    }

    /// The profile as a small integer (for an atomic), and back.
    pub(crate) const fn index(self) -> u8 {
        self as u8
    }

    pub(crate) fn from_index(index: u8) -> Profile {
        match index {
            0 => Profile::Fast,
            1 => Profile::Balanced,
            _ => Profile::Lean,
        }
    }
}

/// What happens to the physical memory of page runs that stayed free for
/// the purge delay ([`Config::purge_delay_ms`]).
///
/// The allocator decides *when* to decommit (whether at all: `Off`); the
/// provider decides *how*. The hosted `MmapProvider` is built with the same
/// mode and maps it to `madvise`; the kernel `FrameProvider` unmaps the
/// pages and frees their frames for either `Free` or `DontNeed`; a
/// `RegionProvider` cannot decommit, so its idle runs are freed instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecommitMode {
    /// Lazily (`MADV_FREE`): the OS takes the pages only under memory
    /// pressure, and until then they still count as resident.
    Free,
    /// At once (`MADV_DONTNEED`): resident memory falls immediately. The
    /// default: a run is purged only after the purge delay, which already
    /// absorbs quick reuse, so what is purged should leave the resident
    /// set that programs and their monitors see (jemalloc's default decay
    /// purges so too).
    DontNeed,
    /// Never decommit: free runs stay committed for reuse (and go back to
    /// the provider only when memory runs out).
    Off,
}

/// Runtime knobs of the per-CPU caches and depots.
///
/// Counts are in blocks for small classes; for a class of size `s` each is
/// scaled down so that it never covers more than [`Knobs::MAX_BYTES`] bytes
/// (at least one block), keeping big blocks from piling up in caches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Knobs {
    /// Most blocks one CPU keeps per class.
    pub cache_capacity: u32,
    /// Blocks moved between a CPU cache and the depot at a time.
    pub bundle_width: u32,
    /// Depot backlog per class (in blocks) above which bundles go back to slabs.
    pub drain_threshold: u32,
    /// Pages of completely free slabs each class keeps before it releases
    /// slabs to the page layer, rounded up to whole slabs (so 1 keeps one
    /// slab of any class), times the profile's
    /// [`empty_slab_factor`](Profile::empty_slab_factor). Keeping them
    /// saves provider calls when a class grows again; releasing them
    /// lowers fragmentation. Not scaled by [`Knobs::MAX_BYTES`]. Slabs
    /// beyond a lowered value leave on the next `scavenge` or `trim`.
    pub release_pages: u32,
}

impl Knobs {
    /// Byte ceiling on each knob for one class (see the type's doc).
    pub const MAX_BYTES: usize = 256 * 1024;

    /// Defaults: tuned on the `mixed-ws400` workload.
    pub const DEFAULT: Knobs = Knobs {
        cache_capacity: 64,
        bundle_width: 32,
        drain_threshold: 256,
        release_pages: 1,
    };

    /// Empty slabs a class whose slabs have `slab_pages` pages keeps
    /// under `profile` (see [`release_pages`](Self::release_pages)).
    pub fn empty_slabs(&self, slab_pages: usize, profile: Profile) -> usize {
        (self.release_pages as usize).div_ceil(slab_pages.max(1)) * profile.empty_slab_factor()
    }

    /// `count` blocks of `size` bytes, scaled down to the byte ceiling.
    pub fn scaled(count: u32, size: usize) -> u32 {
        Self::scaled_within(count, size, Self::MAX_BYTES)
    }

    /// `count` blocks of `size` bytes, scaled down to `max_bytes` (at
    /// least one block).
    pub fn scaled_within(count: u32, size: usize, max_bytes: usize) -> u32 {
        let ceiling = (max_bytes / size).clamp(1, u32::MAX as usize) as u32;
        count.clamp(1, ceiling)
    }
}

/// Called with every detected misuse. After it returns, the operation is
/// dropped: the block is neither freed nor reused.
pub type MisuseHook = fn(&Misuse);

/// Allocator configuration, fixed at `init` except where noted.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Initial profile (see [`Profile`]); switchable at run time.
    pub profile: Profile,
    /// Whether and how idle runs are decommitted (see [`DecommitMode`]).
    pub decommit: DecommitMode,
    /// In LEAN, committed bytes above which every depot hands its backlog
    /// back to the slabs on its next slow path (so that empty slabs leave
    /// at once). A target, not a limit: live blocks are never touched.
    pub lean_target: usize,
    /// Initial knob values.
    pub knobs: Knobs,
    /// The purge delay in ms (see [`Profile::purge_delay_ms`]); `None`:
    /// the profile's. A runtime knob too
    /// ([`Allocator::set_purge_delay_ms`](crate::Allocator::set_purge_delay_ms)).
    pub purge_delay_ms: Option<u32>,
    /// Rate of [`Platform::now`](crate::Platform::now) in ticks per second,
    /// to turn the purge delay into clock units: 10^9 for the hosted clock
    /// (ns); a kernel passes its TSC frequency.
    pub clock_hz: u64,
    /// Checked mode: detect double free, invalid free and layout mismatch.
    /// Decided at `init` because it tracks every block from then on.
    pub checks: bool,
    /// Where misuse reports go; `None` panics with the report.
    pub misuse_hook: Option<MisuseHook>,
    /// Run the per-CPU sections as restartable sequences where the
    /// platform offers them ([`Platform::RESTARTABLE`], std programs on
    /// x86_64 Linux with glibc 2.35+); false keeps the try-locked caches.
    /// On by default: no lock and no atomic read-modify-write on the fast
    /// path (a warm pair costs a third of the try-locked one's time).
    ///
    /// [`Platform::RESTARTABLE`]: crate::Platform::RESTARTABLE
    pub restartable: bool,
}

impl Config {
    /// Balanced profile, `MADV_DONTNEED`-style decommit, an 8 MiB LEAN target,
    /// default knobs, the profile's purge delay on a nanosecond clock,
    /// checks on in debug builds.
    pub const DEFAULT: Config = Config {
        profile: Profile::Balanced,
        decommit: DecommitMode::DontNeed,
        lean_target: 8 << 20,
        knobs: Knobs::DEFAULT,
        purge_delay_ms: None,
        clock_hz: 1_000_000_000,
        checks: cfg!(debug_assertions),
        misuse_hook: None,
        restartable: true,
    };
}

/// `ms` milliseconds in ticks of a clock running at `hz` (saturating).
pub(crate) fn ms_to_ticks(ms: u32, hz: u64) -> u64 {
    let ticks = u128::from(ms) * u128::from(hz) / 1000;
    u64::try_from(ticks).unwrap_or(u64::MAX)
}

impl Default for Config {
    fn default() -> Self {
        Self::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purge_delays_turn_into_clock_ticks_at_the_clock_rate() {
        assert_eq!(ms_to_ticks(1_000, 1_000_000_000), 1_000_000_000);
        assert_eq!(ms_to_ticks(50, 3_000_000_000), 150_000_000, "a 3 GHz TSC");
        assert_eq!(ms_to_ticks(7, 1_000), 7, "a 1 kHz tick");
        assert_eq!(ms_to_ticks(u32::MAX, u64::MAX), u64::MAX, "saturates");
        assert_eq!(ms_to_ticks(0, 1_000_000_000), 0);
    }

    #[test]
    fn release_pages_become_whole_empty_slabs_scaled_by_the_profile() {
        let knobs = |release_pages| Knobs {
            release_pages,
            ..Knobs::DEFAULT
        };
        // The default keeps what the profiles always kept: 2, 1, 0 slabs
        // of any class.
        for slab_pages in 1..=8 {
            let default = Knobs::DEFAULT;
            assert_eq!(default.empty_slabs(slab_pages, Profile::Fast), 2);
            assert_eq!(default.empty_slabs(slab_pages, Profile::Balanced), 1);
            assert_eq!(default.empty_slabs(slab_pages, Profile::Lean), 0);
        }
        assert_eq!(knobs(8).empty_slabs(1, Profile::Balanced), 8);
        assert_eq!(knobs(8).empty_slabs(2, Profile::Balanced), 4);
        assert_eq!(knobs(4).empty_slabs(3, Profile::Balanced), 2);
        assert_eq!(knobs(4).empty_slabs(3, Profile::Fast), 4);
        assert_eq!(knobs(8).empty_slabs(1, Profile::Lean), 0);
    }
}

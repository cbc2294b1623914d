//! Every tunable in one place: the profile, the cache knobs and the checks.

use crate::misuse::Misuse;

/// What the allocator optimises for.
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
    /// Completely free slabs each class keeps instead of releasing them.
    pub fn empty_slab_reserve(self) -> usize {
        match self {
            Profile::Fast => 2,
            Profile::Balanced => 1,
            Profile::Lean => 0,
        }
    }

    /// Bytes of freed page runs kept committed for reuse (each reuse saves
    /// a provider round trip: a system call or page-table work, and faults).
    pub fn retained_bytes(self) -> usize {
        match self {
            Profile::Fast => 64 << 20,
            Profile::Balanced => 8 << 20,
            Profile::Lean => 0,
        }
    }
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
}

impl Knobs {
    /// Byte ceiling on each knob for one class (see the type's doc).
    pub const MAX_BYTES: usize = 256 * 1024;

    /// Defaults: tuned on the `mixed-ws400` workload.
    pub const DEFAULT: Knobs = Knobs {
        cache_capacity: 64,
        bundle_width: 32,
        drain_threshold: 256,
    };

    /// `count` blocks of `size` bytes, scaled down to the byte ceiling.
    pub fn scaled(count: u32, size: usize) -> u32 {
        let ceiling = (Self::MAX_BYTES / size).max(1) as u32;
        count.clamp(1, ceiling)
    }
}

/// Called with every detected misuse. After it returns, the operation is
/// dropped: the block is neither freed nor reused.
pub type MisuseHook = fn(&Misuse);

/// Allocator configuration, fixed at `init` except where noted.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Profile (see [`Profile`]).
    pub profile: Profile,
    /// Initial knob values.
    pub knobs: Knobs,
    /// Checked mode: detect double free, invalid free and layout mismatch.
    /// Decided at `init` because it tracks every block from then on.
    pub checks: bool,
    /// Where misuse reports go; `None` panics with the report.
    pub misuse_hook: Option<MisuseHook>,
}

impl Config {
    /// Balanced profile, default knobs, checks on in debug builds.
    pub const DEFAULT: Config = Config {
        profile: Profile::Balanced,
        knobs: Knobs::DEFAULT,
        checks: cfg!(debug_assertions),
        misuse_hook: None,
    };
}

impl Default for Config {
    fn default() -> Self {
        Self::DEFAULT
    }
}

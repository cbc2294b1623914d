//! acealloc for C programs (`include/acealloc.h`).
//!
//! - Hosted ([`hosted`], the default): `libacealloc.so` replaces the C
//!   library's `malloc` family, in a program linked with it or any program
//!   run under `LD_PRELOAD=libacealloc.so`.
//! - Freestanding (`kernel`, `--no-default-features`, built for
//!   `x86_64-unknown-none`): for C kernels, which hand the allocator their
//!   platform (CPU index, interrupt masking, clock) and a memory region
//!   through `acealloc_init`.
//!
//! The C library's files, `libacealloc.so` and `libacealloc.a`, are this
//! crate built by `capi/libacealloc` (a package of its own: Cargo names a
//! library's files after its crate, and the core crate is `acealloc`).
//!
//! Blocks carry no header: `free` and `malloc_usable_size` find a block's
//! class or run through the page map ([`acealloc::Allocator::free`]).

#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

#[cfg(feature = "hosted")]
extern crate std;

mod c_api;
#[cfg(feature = "hosted")]
pub mod hosted;
#[cfg(not(feature = "hosted"))]
pub mod kernel;

/// The `acealloc_stats` record (`struct acealloc_stats` in the header):
/// a few of [`acealloc::Stats`]'s figures, in a layout C can read.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct CStats {
    /// Bytes with the user (block sizes, large blocks in whole pages).
    pub live_bytes: usize,
    /// Of those, bytes in large blocks.
    pub large_live_bytes: usize,
    /// Bytes taken from the provider (slabs, large blocks, metadata).
    pub committed_bytes: usize,
    /// Of the committed bytes, freed runs kept for reuse.
    pub retained_bytes: usize,
    /// Small-block allocations and frees since `init`.
    pub small_allocs: u64,
    /// See `small_allocs`.
    pub small_frees: u64,
    /// Large-block allocations and frees since `init`.
    pub large_allocs: u64,
    /// See `large_allocs`.
    pub large_frees: u64,
    /// CPUs with a cache.
    pub cpus: usize,
    /// Bytes of free blocks that CPU caches hold (the timer's
    /// `acealloc_maintain` returns an idle CPU's).
    pub cached_bytes: usize,
}

impl From<&acealloc::Stats> for CStats {
    fn from(stats: &acealloc::Stats) -> CStats {
        CStats {
            live_bytes: stats.live_bytes,
            large_live_bytes: stats.large_live_bytes,
            committed_bytes: stats.committed_bytes,
            retained_bytes: stats.retained_bytes,
            small_allocs: stats.classes.iter().map(|c| c.allocs).sum(),
            small_frees: stats.classes.iter().map(|c| c.frees).sum(),
            large_allocs: stats.large_allocs,
            large_frees: stats.large_frees,
            cpus: stats.cpus,
            cached_bytes: stats
                .classes
                .iter()
                .map(|c| c.cached_blocks as usize * c.size)
                .sum(),
        }
    }
}

//! A thread that moves between CPUs leaves its blocks in the cache of the
//! CPU it left. On hosted builds a class takes those back before it grows
//! by a slab, so its slabs do not ratchet up migration after migration.

mod common;

use std::alloc::Layout;

use acealloc::provider::MmapProvider;
use acealloc::{Allocator, Profile};

use common::{PretendCpus, mmap_allocator};

/// Two CPUs with try-locked caches (a hosted platform) whose current CPU
/// the test sets.
type Migrating = PretendCpus<2, false>;

/// Slabs of the 64-byte class.
fn slabs(a: &Allocator<MmapProvider, Migrating>) -> u64 {
    let s = a.stats();
    s.classes.iter().find(|c| c.size == 64).unwrap().slabs
}

#[test]
fn blocks_left_in_another_cpus_cache_are_taken_back_before_a_new_slab() {
    let a = mmap_allocator::<Migrating>(Profile::Balanced);
    let layout = Layout::from_size_align(64, 8).unwrap();
    for round in 0..20 {
        // On CPU 0 the thread takes 64 blocks (a slab's worth)...
        Migrating::run_on(0);
        let blocks: Vec<_> = (0..64).map(|_| a.alloc(layout)).collect();
        assert!(blocks.iter().all(|p| !p.is_null()));
        // ...then moves to CPU 1 and frees them there, where they stay
        // cached (the cache's capacity is 64).
        Migrating::run_on(1);
        for ptr in blocks {
            // SAFETY: allocated above with `layout`.
            unsafe { a.dealloc(ptr, layout) };
        }
        assert_eq!(slabs(&a), 1, "round {round}: {}", a.stats());
    }
}

/// A hosted platform whose CPU index is past the CPUs counted at `init`
/// (a CPU brought online later): such a thread has no cache of its own.
struct HotAddedCpu;

// SAFETY: EXCLUSIVE_CPU is false: caches are try-locked, and an index out
// of range is allowed (the allocator bypasses the caches for it).
unsafe impl acealloc::Platform for HotAddedCpu {
    const EXCLUSIVE_CPU: bool = false;
    fn cpu_count() -> usize {
        2
    }
    fn current_cpu() -> usize {
        2
    }
    fn irq_save() -> usize {
        0
    }
    fn irq_restore(_: usize) {}
    fn now() -> u64 {
        0
    }
}

#[test]
fn a_cpu_index_past_the_caches_is_served_without_a_cache() {
    let a = mmap_allocator::<HotAddedCpu>(Profile::Balanced);
    let layout = Layout::from_size_align(64, 8).unwrap();
    let before = a.stats().slow_paths;
    let blocks: Vec<_> = (0..100).map(|_| a.alloc(layout)).collect();
    assert!(blocks.iter().all(|p| !p.is_null()));
    for ptr in blocks {
        // SAFETY: allocated above with `layout`.
        unsafe { a.dealloc(ptr, layout) };
    }
    // Every one of them went the direct way (timed as a slow path), and no
    // CPU's cache holds the freed blocks.
    let s = a.stats();
    assert_eq!(s.slow_paths - before, 100, "{s}");
    let cached: u64 = (0..2)
        .map(|cpu| a.cpu_stats(cpu).unwrap().cached_blocks)
        .sum();
    assert_eq!(cached, 0, "{s}");
}

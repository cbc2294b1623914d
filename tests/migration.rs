//! A thread that moves between CPUs leaves its blocks in the cache of the
//! CPU it left. On hosted builds a class takes those back, once that cache
//! has stayed idle, before it grows by a slab, so its slabs do not ratchet
//! up migration after migration; a cache still in use keeps its blocks.

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

/// Takes `n` blocks of 64 bytes on `cpu`.
fn take_on(a: &Allocator<MmapProvider, Migrating>, cpu: usize, n: usize) -> Vec<*mut u8> {
    Migrating::run_on(cpu);
    let blocks: Vec<_> = (0..n).map(|_| a.alloc(LAYOUT)).collect();
    assert!(blocks.iter().all(|p| !p.is_null()));
    blocks
}

/// Frees `blocks` (from [`take_on`]) on `cpu`.
fn free_on(a: &Allocator<MmapProvider, Migrating>, cpu: usize, blocks: Vec<*mut u8>) {
    Migrating::run_on(cpu);
    for ptr in blocks {
        // SAFETY: allocated by `take_on` with `LAYOUT`.
        unsafe { a.dealloc(ptr, LAYOUT) };
    }
}

/// Blocks CPU 1's cache holds.
fn cached_on_cpu1(a: &Allocator<MmapProvider, Migrating>) -> u64 {
    a.cpu_stats(1).unwrap().cached_blocks
}

const LAYOUT: Layout = Layout::new::<[u64; 8]>();

#[test]
fn blocks_left_in_an_idle_cpus_cache_are_taken_back_before_the_class_grows_again() {
    let a = mmap_allocator::<Migrating>(Profile::Balanced);
    // A slab's worth taken on CPU 0 and freed on CPU 1, where they stay
    // cached (the cache's capacity is 64)...
    let first = take_on(&a, 0, 64);
    free_on(&a, 1, first);
    assert_eq!(cached_on_cpu1(&a), 64);
    // ...then two slabs' worth more on CPU 0. The first time the class runs
    // dry, CPU 1's cache has been busy since anyone looked: the class grows
    // by a slab. The second time, it has been idle since: its blocks come
    // back instead of a third slab.
    let _held = take_on(&a, 0, 128);
    assert_eq!(slabs(&a), 2, "{}", a.stats());
    assert_eq!(cached_on_cpu1(&a), 0, "{}", a.stats());
}

#[test]
fn a_busy_cpus_cache_keeps_its_blocks() {
    let a = mmap_allocator::<Migrating>(Profile::Balanced);
    let first = take_on(&a, 0, 64);
    free_on(&a, 1, first);
    // The class runs dry on CPU 0 twice, and each time CPU 1 has used its
    // cache since the previous look: taking its blocks would stop it and
    // interrupt it while it fills up again, so the class grows instead.
    let _second = take_on(&a, 0, 64);
    let one = take_on(&a, 1, 1);
    free_on(&a, 1, one);
    let _third = take_on(&a, 0, 64);
    assert_eq!(cached_on_cpu1(&a), 64, "{}", a.stats());
    assert_eq!(slabs(&a), 3, "{}", a.stats());
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
    let layout = LAYOUT;
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

//! FAST prewarms: every CPU's cache starts with a bundle of each class up
//! to 256 B, so the first allocations of those sizes hit; BALANCED and LEAN
//! start empty. A switch to FAST prewarms each CPU on its next slow path.

mod common;

use std::alloc::Layout;

use acealloc::hosted::HostedPlatform;
use acealloc::{Allocator, Config, Platform, Profile, RegionProvider, Stats};

use common::{Region, SingleCpu, check, fill, mmap_allocator};

/// Whether every class up to 256 B has cached blocks.
fn warm(s: &Stats) -> bool {
    s.classes
        .iter()
        .filter(|c| c.size <= 256)
        .all(|c| c.cached_blocks > 0)
}

/// Blocks cached for classes up to 256 B and above it.
fn cached(s: &Stats) -> (u64, u64) {
    let small = s.classes.iter().filter(|c| c.size <= 256);
    let big = s.classes.iter().filter(|c| c.size > 256);
    (
        small.map(|c| c.cached_blocks).sum(),
        big.map(|c| c.cached_blocks).sum(),
    )
}

#[test]
fn fast_prewarms_every_cpu_cache_at_init() {
    let a = mmap_allocator::<HostedPlatform>(Profile::Fast);
    let s = a.stats();
    let cpus = HostedPlatform::cpu_count() as u64;
    for c in s.classes.iter().filter(|c| c.size <= 256) {
        // What a refill takes: up to a bundle (32 blocks by default) per CPU.
        assert!(
            (cpus..=32 * cpus).contains(&c.cached_blocks),
            "class {} B: {s}",
            c.size
        );
        assert_eq!(c.allocs, 0, "prewarmed blocks are not live: {s}");
    }
    assert_eq!(cached(&s).1, 0, "nothing above 256 B: {s}");
    for cpu in 0..cpus as usize {
        let cached = a.cpu_stats(cpu).unwrap().cached_blocks;
        assert!(cached >= 16, "CPU {cpu} caches {cached} blocks: {s}");
    }
}

#[test]
fn fast_first_allocations_hit_the_cache() {
    for (profile, misses) in [(Profile::Fast, 0), (Profile::Balanced, 16)] {
        let a = mmap_allocator::<SingleCpu>(profile);
        let blocks: Vec<_> = (1..=16)
            .map(|i| {
                let layout = Layout::from_size_align(i * 16, 8).unwrap();
                let ptr = a.alloc(layout);
                assert!(!ptr.is_null());
                (ptr, layout)
            })
            .collect();
        let s = a.cpu_stats(0).unwrap();
        assert_eq!(s.misses, misses, "{profile:?}: {}", a.stats());
        for (ptr, layout) in blocks {
            // SAFETY: allocated above with `layout`.
            unsafe { a.dealloc(ptr, layout) };
        }
    }
}

#[test]
fn balanced_and_lean_do_not_prewarm() {
    for profile in [Profile::Balanced, Profile::Lean] {
        let a = mmap_allocator::<HostedPlatform>(profile);
        let s = a.stats();
        assert_eq!(cached(&s), (0, 0), "{profile:?}: {s}");
        assert!(s.classes.iter().all(|c| c.slabs == 0), "{profile:?}: {s}");
    }
}

#[test]
fn switching_to_fast_prewarms_on_the_next_slow_path() {
    let a = mmap_allocator::<SingleCpu>(Profile::Balanced);
    let layout = Layout::from_size_align(1000, 8).unwrap();
    let first = a.alloc(layout);
    assert_eq!(cached(&a.stats()).0, 0, "BALANCED: {}", a.stats());
    a.set_profile(Profile::Fast);
    assert_eq!(cached(&a.stats()).0, 0, "not before a slow path");
    let second = a.alloc(Layout::from_size_align(2000, 8).unwrap()); // a miss: the slow path
    assert!(warm(&a.stats()), "{}", a.stats());
    // SAFETY: allocated above with these layouts.
    unsafe {
        a.dealloc(first, layout);
        a.dealloc(second, Layout::from_size_align(2000, 8).unwrap());
    }
    // Once per switch: after a trim, later slow paths leave the caches be
    // until the profile switches to FAST again.
    a.trim();
    let third = a.alloc(layout);
    assert_eq!(cached(&a.stats()).0, 0, "{}", a.stats());
    a.set_profile(Profile::Lean);
    a.set_profile(Profile::Fast);
    // SAFETY: allocated above with `layout`.
    unsafe { a.dealloc(third, layout) };
    a.trim();
    let fourth = a.alloc(layout);
    assert!(warm(&a.stats()), "{}", a.stats());
    // SAFETY: allocated above with `layout`.
    unsafe { a.dealloc(fourth, layout) };
}

/// Blocks of `size` bytes a fresh allocator of `profile` over a `bytes`-byte
/// region hands out before it runs out, each written and read back.
fn fill_region(profile: Profile, bytes: usize, size: usize) -> usize {
    let region = Region::new(bytes, 4096);
    let a: Box<Allocator<RegionProvider, SingleCpu>> = Box::new(Allocator::new());
    let config = Config {
        profile,
        checks: false,
        ..Config::DEFAULT
    };
    // SAFETY: the region outlives the allocator (declared first) and has no
    // other provider.
    a.init(unsafe { region.provider() }, config).unwrap();
    let layout = Layout::from_size_align(size, 8).unwrap();
    let mut blocks = Vec::new();
    loop {
        let ptr = a.alloc(layout);
        if ptr.is_null() {
            break;
        }
        // SAFETY: a fresh block of `size` bytes.
        unsafe { fill(ptr, size, blocks.len() as u64) };
        blocks.push(ptr);
    }
    let count = blocks.len();
    for (i, ptr) in blocks.into_iter().enumerate() {
        // SAFETY: live, filled with seed `i`.
        unsafe {
            check(ptr, size, i as u64, "block");
            a.dealloc(ptr, layout);
        }
    }
    count
}

/// On a small kernel heap the prewarmed blocks are not lost: running out
/// flushes them back, so FAST fits as many blocks as BALANCED but for the
/// holes the released prewarm slabs may leave (one 2-page slab of 1 KiB
/// blocks on this 256 KiB region).
#[test]
fn prewarm_costs_a_small_heap_at_most_a_hole() {
    for size in [1024, 5000, 64 * 1024] {
        let fast = fill_region(Profile::Fast, 256 * 1024, size);
        let balanced = fill_region(Profile::Balanced, 256 * 1024, size);
        assert!(
            fast > 0 && fast <= balanced,
            "{fast} and {balanced} blocks of {size} B"
        );
        assert!(
            (balanced - fast) * size <= 8 * 1024,
            "FAST fits {fast} blocks of {size} B, BALANCED {balanced}"
        );
    }
}

//! The `release_pages` knob sets how many empty slabs a class keeps
//! before it releases them to the page layer, in pages rounded up to
//! whole slabs, scaled by the profile (FAST twice, LEAN none).

mod common;

use std::alloc::Layout;

use acealloc::{Allocator, Config, Knobs, Profile, RegionProvider};

use common::PretendCpus;

/// One CPU whose cache is try-locked, like a hosted thread's.
type OneCpu = PretendCpus<1, false>;

/// Blocks of 8 KiB: one per slab of two pages.
const BLOCK: usize = 8192;

type Heap = Allocator<RegionProvider, OneCpu>;

/// A heap over a 2 MiB region of its own whose blocks go back to their
/// slabs at once (one cached, none waiting), with the knob at
/// `release_pages`.
fn heap(profile: Profile, release_pages: u32) -> Heap {
    let region = Vec::leak(vec![0u8; (2 << 20) + 4096]);
    let start = region
        .as_mut_ptr()
        .wrapping_add(region.as_ptr().align_offset(4096));
    // SAFETY: the leaked region, page-aligned within it, is used by this
    // allocator alone.
    let provider = unsafe { RegionProvider::new(start, 2 << 20) };
    let heap = Allocator::new();
    let config = Config {
        profile,
        checks: false,
        knobs: Knobs {
            cache_capacity: 1,
            bundle_width: 1,
            drain_threshold: 1,
            release_pages,
        },
        ..Config::DEFAULT
    };
    heap.init(provider, config).unwrap();
    heap
}

/// Allocates 32 blocks of 8 KiB and frees them; returns the empty slabs
/// of the class once the idle cache went back to the slabs.
fn churn(heap: &Heap) -> u64 {
    let layout = Layout::from_size_align(BLOCK, 8).unwrap();
    let blocks: Vec<*mut u8> = (0..32).map(|_| heap.alloc(layout)).collect();
    assert!(blocks.iter().all(|b| !b.is_null()));
    for &b in &blocks {
        // SAFETY: allocated above with `layout`, freed once.
        unsafe { heap.dealloc(b, layout) };
    }
    // An idle cache goes back to the slabs on the second check.
    heap.flush_idle_caches(u64::MAX);
    heap.flush_idle_caches(u64::MAX);
    empty_slabs(heap)
}

/// Slabs of 8 KiB blocks that hold none: each block the depot still
/// holds keeps its own slab.
fn empty_slabs(heap: &Heap) -> u64 {
    let stats = heap.stats();
    let class = stats.classes.iter().find(|c| c.size == BLOCK).unwrap();
    assert_eq!(class.cached_blocks, 0);
    class.slabs - class.depot_blocks
}

#[test]
fn the_knob_sets_the_empty_slabs_each_class_keeps() {
    // Slabs of 8 KiB blocks have two pages.
    let kept = |profile, pages| churn(&heap(profile, pages));
    assert_eq!(kept(Profile::Balanced, 1), 1);
    assert_eq!(kept(Profile::Balanced, 2), 1);
    assert_eq!(kept(Profile::Balanced, 8), 4);
    assert_eq!(kept(Profile::Fast, 1), 2);
    assert_eq!(kept(Profile::Fast, 8), 8);
    assert_eq!(kept(Profile::Lean, 8), 0);
}

#[test]
fn slabs_beyond_a_lowered_knob_leave_on_the_next_scavenge() {
    let heap = heap(Profile::Balanced, 8);
    assert_eq!(churn(&heap), 4);
    heap.set_knobs(Knobs {
        release_pages: 2,
        ..heap.knobs()
    });
    heap.scavenge(0, u64::MAX);
    assert_eq!(empty_slabs(&heap), 1);
}

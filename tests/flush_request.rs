//! A kernel CPU cannot flush another CPU's cache. When one CPU runs out of
//! memory, the others flush their own caches on their next slow path, so
//! blocks stranded there come back.

mod common;

use std::alloc::Layout;

use acealloc::{Allocator, Config, Knobs, Profile, RegionProvider};

use common::PretendCpus;

/// Two CPUs with exclusive caches, like a kernel's; one thread plays both.
type TwoCpus = PretendCpus<2, true>;

#[repr(align(4096))]
struct Region([u8; 256 * 1024]);

/// A LEAN heap over a 256 KiB region of its own, on the two pretend CPUs.
fn lean_heap() -> Allocator<RegionProvider, TwoCpus> {
    let region = Box::leak(Box::new(Region([0; 256 * 1024])));
    // SAFETY: the leaked region is used by this allocator alone.
    let provider = unsafe { RegionProvider::new(region.0.as_mut_ptr(), region.0.len()) };
    let heap = Allocator::new();
    let config = Config {
        profile: Profile::Lean,
        checks: false,
        ..Config::DEFAULT
    };
    heap.init(provider, config).unwrap();
    heap
}

#[test]
fn a_cpu_out_of_memory_gets_back_blocks_stranded_in_another_cpus_cache() {
    let heap = lean_heap();
    heap.set_knobs(Knobs {
        cache_capacity: 16,
        bundle_width: 16,
        drain_threshold: 256,
        ..Knobs::DEFAULT
    });
    let small = Layout::from_size_align(512, 8).unwrap();
    let tiny = Layout::from_size_align(64, 8).unwrap();
    let page = Layout::from_size_align(4096, 4096).unwrap();

    // CPU 0 allocates one slab's worth of 512 B blocks and frees them: all
    // stay in its cache. It also keeps 17 blocks of 64 B for later.
    TwoCpus::run_on(0);
    let blocks: Vec<*mut u8> = (0..16).map(|_| heap.alloc(small)).collect();
    let kept: Vec<*mut u8> = (0..17).map(|_| heap.alloc(tiny)).collect();
    assert!(blocks.iter().chain(&kept).all(|b| !b.is_null()));
    for &b in &blocks {
        // SAFETY: allocated above with `small`.
        unsafe { heap.dealloc(b, small) };
    }
    assert!(class_cached(&heap, 512) > 0, "CPU 0 keeps 512 B blocks");

    // CPU 1 takes every page that is left, and cannot get at CPU 0's cache.
    TwoCpus::run_on(1);
    let mut pages = Vec::new();
    loop {
        let p = heap.alloc(page);
        if p.is_null() {
            break;
        }
        pages.push(p);
    }
    assert!(heap.alloc(page).is_null(), "CPU 1 is out of memory");

    // CPU 0 frees its 64 B blocks: its cache overflows, and that slow path
    // (no shortage on CPU 0) honours CPU 1's request by flushing everything.
    TwoCpus::run_on(0);
    for &b in &kept {
        // SAFETY: allocated above with `tiny`.
        unsafe { heap.dealloc(b, tiny) };
    }
    assert_eq!(class_cached(&heap, 512), 0, "CPU 0 flushed its cache");

    TwoCpus::run_on(1);
    assert!(
        !heap.alloc(page).is_null(),
        "the stranded memory came back to CPU 1"
    );
}

/// Blocks of the class of `size` bytes sitting in CPU caches.
fn class_cached(heap: &Allocator<RegionProvider, TwoCpus>, size: usize) -> u64 {
    let stats = heap.stats();
    stats
        .classes
        .iter()
        .find(|c| c.size == size)
        .unwrap()
        .cached_blocks
}

#[test]
fn an_idle_cpu_gives_its_cached_blocks_back_on_the_tick() {
    let heap = lean_heap();
    let small = Layout::from_size_align(512, 8).unwrap();

    TwoCpus::run_on(0);
    let start = heap.stats();
    let in_use_at_start = start.committed_bytes - start.retained_bytes;
    // Four blocks: what a cache of this 256 KiB heap holds (its slot
    // arrays get a thirty-second of the heap).
    let blocks: Vec<*mut u8> = (0..4).map(|_| heap.alloc(small)).collect();
    for &b in &blocks {
        // SAFETY: allocated above with `small`.
        unsafe { heap.dealloc(b, small) };
    }
    assert!(class_cached(&heap, 512) > 0);

    // Ticks on CPU 0 while it keeps working: never flushed.
    for _ in 0..3 {
        let b = heap.alloc(small);
        // SAFETY: allocated just above with `small`.
        unsafe { heap.dealloc(b, small) };
        assert_eq!(
            heap.flush_idle_caches(u64::MAX),
            0,
            "a busy CPU keeps its cache"
        );
    }
    // A tick on another CPU leaves CPU 0's cache alone.
    TwoCpus::run_on(1);
    heap.flush_idle_caches(u64::MAX);
    heap.flush_idle_caches(u64::MAX);
    assert!(
        class_cached(&heap, 512) > 0,
        "CPU 1's ticks do not touch CPU 0"
    );

    // CPU 0 goes quiet: its next tick finds nothing done since the last,
    // but a tick whose budget is spent (the deadline passed) leaves it...
    TwoCpus::run_on(0);
    assert_eq!(heap.flush_idle_caches(0), 0, "no work past the deadline");
    assert!(class_cached(&heap, 512) > 0);
    // ...to the next one: the cache is still idle.
    let moved = heap.flush_idle_caches(u64::MAX);
    assert!(moved >= 4, "moved {moved} blocks");
    assert_eq!(class_cached(&heap, 512), 0);
    // LEAN gave the emptied slab back to the page heap, where it waits,
    // free, for reuse (a region cannot decommit).
    let s = heap.stats();
    assert_eq!(
        s.committed_bytes - s.retained_bytes,
        in_use_at_start,
        "LEAN gave the emptied slab back: {s}"
    );
}

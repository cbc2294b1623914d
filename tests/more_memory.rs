//! More memory at run time, as a kernel hands it over: `add_region` puts
//! ranges found after `init` into a region heap's span (right after a range
//! it holds, right before one, or apart), and the out-of-memory hook hands
//! memory over before an allocation fails. The hook calls `add_region`,
//! which waits for the page lock: were any lock it needs held while the
//! hook runs, the allocation would never return, which the tests turn into
//! a failure with a time limit.

mod common;

use std::alloc::Layout;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::mpsc;
use std::time::Duration;

use acealloc::{AddRegionError, Allocator, Config, PAGE_SIZE, RegionProvider};

use common::SingleCpu;

type Heap = Allocator<RegionProvider, SingleCpu>;

const KIB: usize = 1024;

/// Page-aligned memory that lives as long as the test binary (the heaps
/// over it are statics, which the hook reaches).
fn leaked(size: usize) -> usize {
    let memory = Vec::leak(vec![0u8; size + PAGE_SIZE]);
    memory.as_ptr() as usize + memory.as_ptr().align_offset(PAGE_SIZE)
}

/// Runs `f` on a thread of its own and fails if it takes longer than 20 s
/// (a spin lock taken twice never returns).
fn within_time_limit(what: &str, f: impl FnOnce() + Send + 'static) {
    let (done, finished) = mpsc::channel();
    let worker = std::thread::spawn(move || {
        f();
        done.send(()).unwrap();
    });
    match finished.recv_timeout(Duration::from_secs(20)) {
        Ok(()) => worker.join().unwrap(),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            // The worker panicked: report its panic.
            worker.join().unwrap();
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("{what} did not return: a lock the hook needs was held (deadlock)")
        }
    }
}

fn layout(size: usize) -> Layout {
    Layout::from_size_align(size, 8).unwrap()
}

/// Allocates `layout` blocks until null; returns them.
fn fill(heap: &Heap, layout: Layout) -> Vec<usize> {
    let mut blocks = Vec::new();
    loop {
        let block = heap.alloc(layout);
        if block.is_null() {
            return blocks;
        }
        // SAFETY: a fresh block of `layout.size()` bytes.
        unsafe { block.write_bytes(0x5a, layout.size()) };
        blocks.push(block as usize);
    }
}

fn free_all(heap: &Heap, blocks: Vec<usize>, layout: Layout) {
    for block in blocks {
        let block = block as *mut u8;
        // SAFETY: each block is live with `layout`, filled by `fill`.
        unsafe {
            assert_eq!(*block.add(layout.size() - 1), 0x5a);
            heap.dealloc(block, layout);
        }
    }
}

/// Ranges found after `init` join the heap: one right after the first
/// range (it extends that range), one right before it and one apart (each
/// a range of its own); allocations then come from them, and a trim gives
/// every page back, including runs of the page heap that span two ranges.
#[test]
fn added_regions_serve_allocations_and_are_given_back() {
    // The window: 1 MiB; the heap starts with [128 KiB, 384 KiB) of it.
    let base = leaked(1024 * KIB);
    let at = |kib: usize| (base + kib * KIB) as *mut u8;
    // SAFETY: the leaked memory is used by this provider alone.
    let provider = unsafe { RegionProvider::with_span(base, 1024 * KIB, at(128), 256 * KIB) }
        .expect("the region lies in its span");
    let heap: Box<Heap> = Box::new(Allocator::new());
    heap.init(provider, Config::DEFAULT).unwrap();
    let init_committed = heap.stats().committed_bytes;
    let large = layout(64 * KIB);
    let small = layout(2 * KIB);
    let first = fill(&heap, large);
    assert!(
        !first.is_empty() && first.len() < 4,
        "{} blocks",
        first.len()
    );
    let small_first = fill(&heap, small);

    // SAFETY (every `add_region` below): the ranges lie in the leaked
    // memory, each handed over once (the refused ones are not taken).
    unsafe {
        assert_eq!(heap.add_region(at(384), 128 * KIB), Ok(128 * KIB));
        assert_eq!(heap.with_provider(|p| p.ranges()), Some(1), "extended");
        assert_eq!(heap.add_region(at(0), 128 * KIB), Ok(128 * KIB));
        assert_eq!(heap.add_region(at(640), 384 * KIB), Ok(384 * KIB));
        assert_eq!(heap.with_provider(|p| p.ranges()), Some(3));
        // The gap between the first range and the last: it extends the
        // first, which then ends where the last starts.
        assert_eq!(heap.add_region(at(512), 128 * KIB), Ok(128 * KIB));
        assert_eq!(heap.with_provider(|p| p.ranges()), Some(3));
        assert_eq!(
            heap.add_region(at(600), 100 * KIB),
            Err(AddRegionError::Overlaps)
        );
        assert_eq!(
            heap.add_region(at(1000), 100 * KIB),
            Err(AddRegionError::OutsideSpan)
        );
        assert_eq!(
            heap.add_region(at(1023).add(1), PAGE_SIZE),
            Err(AddRegionError::Empty),
            "not one whole page"
        );
    }
    let second = fill(&heap, large);
    let inside = |kib: std::ops::Range<usize>| {
        second
            .iter()
            .filter(|&&b| b >= at(kib.start) as usize && b < at(kib.end) as usize)
            .count()
    };
    // 768 KiB added: room for 12 more blocks of 64 KiB (slabs take some).
    assert!(second.len() >= 9, "{} more blocks", second.len());
    assert!(inside(0..128) >= 1 && inside(384..640) >= 3 && inside(640..1024) >= 5);
    free_all(&heap, first, large);
    free_all(&heap, second, large);
    free_all(&heap, small_first, small);
    heap.trim();
    let s = heap.stats();
    assert_eq!(s.committed_bytes, init_committed, "{s}");
    let added = 1024 * KIB;
    assert_eq!(
        heap.with_provider(|p| p.free_bytes()),
        Some(added - init_committed),
        "every page went back to its range"
    );
    // Everything can be had again.
    let again = fill(&heap, large);
    assert!(again.len() >= 12, "{} blocks after the trim", again.len());
    free_all(&heap, again, large);
}

/// `add_region` before `init`, and on a provider without a span to grow in.
#[test]
fn add_region_is_refused_without_room() {
    let base = leaked(256 * KIB);
    let heap: Box<Heap> = Box::new(Allocator::new());
    // SAFETY: nothing is taken: the heap has no provider yet.
    let early = unsafe { heap.add_region(base as *mut u8, 64 * KIB) };
    assert_eq!(early, Err(AddRegionError::NotInitialized));
    // SAFETY: the leaked memory is used by this provider alone.
    let provider = unsafe { RegionProvider::new(base as *mut u8, 128 * KIB) };
    heap.init(provider, Config::DEFAULT).unwrap();
    // SAFETY: refused, so not taken.
    let after = unsafe { heap.add_region((base + 128 * KIB) as *mut u8, 64 * KIB) };
    assert_eq!(
        after,
        Err(AddRegionError::OutsideSpan),
        "the span is the region"
    );
}

/// The hook's state in [`hook_hands_over_a_region`]: the range it may
/// give, its calls, and what it was asked for.
static SPARE: AtomicUsize = AtomicUsize::new(0);
const SPARE_SIZE: usize = 512 * KIB;
static GROW_CALLS: AtomicUsize = AtomicUsize::new(0);
static GROW_ASKED: AtomicUsize = AtomicUsize::new(0);
static GROWING: Heap = Allocator::new();

/// Hands over [`SPARE`] once, with `add_region`; declines after that.
fn hook_hands_over_a_region(heap: &Heap, bytes: usize) -> bool {
    GROW_CALLS.fetch_add(1, Relaxed);
    GROW_ASKED.fetch_max(bytes, Relaxed);
    let spare = SPARE.swap(0, Relaxed);
    if spare == 0 {
        return false;
    }
    // SAFETY: the spare range is leaked memory inside the heap's span,
    // handed over once (swapped out above).
    let added = unsafe { heap.add_region(spare as *mut u8, SPARE_SIZE) };
    assert_eq!(added, Ok(SPARE_SIZE));
    true
}

/// An allocation that finds no memory calls the hook, which adds a region
/// (taking the page lock: a deadlock if the allocator held it); the
/// allocation then succeeds from the new region, small and large blocks
/// alike, and once the hook declines, allocation returns null.
#[test]
fn the_hook_adds_memory_and_the_allocation_succeeds() {
    within_time_limit("an allocation whose hook adds memory", || {
        let base = leaked(1024 * KIB);
        SPARE.store(base + 512 * KIB, Relaxed);
        // SAFETY: the leaked memory is used by this heap alone.
        let provider =
            unsafe { RegionProvider::with_span(base, 1024 * KIB, base as *mut u8, 256 * KIB) }
                .unwrap();
        GROWING.init(provider, Config::DEFAULT).unwrap();
        GROWING.set_oom_hook(Some(hook_hands_over_a_region));
        let heap = &GROWING;
        let large = layout(48 * KIB);
        let mut blocks = Vec::new();
        let in_spare = |b: usize| b >= base + 512 * KIB;
        // Small blocks until the first region is full: the hook is called
        // once and adds the spare range, from which allocation goes on.
        let small = layout(512);
        loop {
            let block = heap.alloc(small);
            assert!(!block.is_null(), "null with a spare region to add");
            blocks.push(block as usize);
            if in_spare(block as usize) {
                break;
            }
        }
        assert_eq!(GROW_CALLS.load(Relaxed), 1);
        assert!(GROW_ASKED.load(Relaxed) >= PAGE_SIZE);
        // Large blocks: the spare range serves them until it is full too;
        // then the hook declines and allocation returns null.
        let mut large_blocks = Vec::new();
        loop {
            let block = heap.alloc(large);
            if block.is_null() {
                break;
            }
            assert!(
                in_spare(block as usize),
                "{block:p} outside the spare range"
            );
            // SAFETY: a fresh block of 48 KiB.
            unsafe { block.write_bytes(0x5a, large.size()) };
            large_blocks.push(block as usize);
        }
        assert!(
            large_blocks.len() >= 4,
            "{} large blocks",
            large_blocks.len()
        );
        assert!(GROW_CALLS.load(Relaxed) >= 2, "the hook declined");
        assert!(GROW_ASKED.load(Relaxed) >= 48 * KIB);
        free_all(heap, large_blocks, large);
        for block in blocks {
            // SAFETY: live with `small`.
            unsafe { heap.dealloc(block as *mut u8, small) };
        }
        assert_eq!(heap.stats().live_bytes, 0);
    });
}

static DECLINED_CALLS: AtomicUsize = AtomicUsize::new(0);
static DECLINING: Heap = Allocator::new();

fn hook_declines(heap: &Heap, bytes: usize) -> bool {
    DECLINED_CALLS.fetch_add(1, Relaxed);
    assert!(bytes >= PAGE_SIZE);
    // Stats take no lock the allocation holds.
    assert!(heap.stats().committed_bytes > 0);
    false
}

/// A hook that declines: the allocation returns null (no panic), once per
/// failed allocation, and what was allocated before stays intact.
#[test]
fn allocation_returns_null_when_the_hook_declines() {
    within_time_limit("an allocation whose hook declines", || {
        let base = leaked(256 * KIB);
        // SAFETY: the leaked memory is used by this heap alone.
        let provider = unsafe { RegionProvider::new(base as *mut u8, 256 * KIB) };
        DECLINING.init(provider, Config::DEFAULT).unwrap();
        DECLINING.set_oom_hook(Some(hook_declines));
        let heap = &DECLINING;
        for size in [64 * KIB, 256] {
            let l = layout(size);
            let before = DECLINED_CALLS.load(Relaxed);
            let blocks = fill(heap, l);
            assert!(!blocks.is_empty());
            assert_eq!(DECLINED_CALLS.load(Relaxed), before + 1, "{size} bytes");
            assert!(heap.alloc(l).is_null());
            assert_eq!(DECLINED_CALLS.load(Relaxed), before + 2);
            free_all(heap, blocks, l);
        }
        heap.set_oom_hook(None);
        let blocks = fill(heap, layout(64 * KIB));
        let calls = DECLINED_CALLS.load(Relaxed);
        assert!(!blocks.is_empty());
        assert_eq!(DECLINED_CALLS.load(Relaxed), calls, "no hook: not called");
        free_all(heap, blocks, layout(64 * KIB));
    });
}

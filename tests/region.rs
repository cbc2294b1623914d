//! The allocator over fixed regions (64 KiB and 100 KiB), as a kernel uses
//! it: a `RegionProvider` and a single CPU without a lock on its cache.

mod common;

use std::alloc::{GlobalAlloc, Layout};
use std::collections::VecDeque;

use acealloc::{Allocator, Config, InitError, Knobs, PAGE_SIZE, PageProvider, RegionProvider};

use common::{Region, SingleCpu, check, fill};

type Heap = Allocator<RegionProvider, SingleCpu>;

const KIB: usize = 1024;

/// Operations of the long runs below: Miri interprets every byte each one
/// writes (about a thousand times slower), so under it they are shorter.
const MANY: u64 = if cfg!(miri) { 100 } else { 100_000 };
const CHURN: u64 = if cfg!(miri) { 80 } else { 50_000 };
/// Length the vector grows to, one `realloc` per element.
const VEC_LEN: usize = if cfg!(miri) { 50 } else { 1000 };
/// Blocks of each round of `knobs_bound_caches_and_depots`: more than the
/// default cache capacity (64), so that the cache drains.
const KNOB_BLOCKS: u64 = if cfg!(miri) { 100 } else { 300 };

/// An initialised heap over `region`, with what `init` left committed and
/// free, to compare with after a trim.
struct Fixture {
    heap: Box<Heap>,
    base: usize,
    len: usize,
    init_committed: usize,
    init_free: usize,
}

impl Fixture {
    fn new(region: &Region) -> Fixture {
        // SAFETY: each test makes one provider per region, and the fixture
        // (which owns it) is declared after the region, so dropped first.
        let provider = unsafe { region.provider() };
        let span = provider.span();
        let heap: Box<Heap> = Box::new(Allocator::new());
        assert!(!heap.is_initialized());
        heap.init(provider, Config::DEFAULT).unwrap();
        assert!(heap.is_initialized());
        let stats = heap.stats();
        // Region memory is not known to read as zero: the page map is
        // cleared at `init` and counted as committed.
        assert_eq!(stats.lazy_page_map_bytes, 0);
        let init_committed = stats.committed_bytes;
        let init_free = heap.with_provider(|p| p.free_bytes()).unwrap();
        assert_eq!(init_committed + init_free, span.len);
        Fixture {
            heap,
            base: span.base,
            len: span.len,
            init_committed,
            init_free,
        }
    }

    /// Allocates and fills a block; null when out of memory.
    fn alloc(&self, layout: Layout, seed: u64) -> *mut u8 {
        let ptr = self.heap.alloc(layout);
        if !ptr.is_null() {
            let addr = ptr as usize;
            assert_eq!(addr % layout.align(), 0, "{layout:?} at {ptr:p}");
            assert!(
                addr >= self.base && addr + layout.size() <= self.base + self.len,
                "{layout:?} at {ptr:p} lies outside the region"
            );
            // SAFETY: a fresh block of `layout.size()` bytes.
            unsafe { fill(ptr, layout.size(), seed) };
        }
        ptr
    }

    /// Checks a block's pattern and frees it.
    ///
    /// # Safety
    /// `ptr` is a live block of the heap, allocated with `layout` and filled
    /// with `seed`.
    unsafe fn free(&self, ptr: *mut u8, layout: Layout, seed: u64) {
        // SAFETY: the caller's contract.
        unsafe {
            check(ptr, layout.size(), seed, "free");
            self.heap.dealloc(ptr, layout);
        }
    }

    /// After everything was freed: a trim gives every page back, exactly.
    fn assert_all_returned(&self) {
        self.heap.trim();
        let s = self.heap.stats();
        assert_eq!(s.live_bytes, 0, "{s}");
        assert_eq!(s.committed_bytes, self.init_committed, "{s}");
        assert_eq!(
            self.heap.with_provider(|p| p.free_bytes()),
            Some(self.init_free)
        );
    }
}

fn layout(size: usize) -> Layout {
    Layout::from_size_align(size, 8).unwrap()
}

/// `MANY` (100 000) allocations of 8-64 bytes, freeing as we go (a window
/// of 50 blocks stays live), in both region sizes.
#[test]
fn many_small_boxes_one_after_another() {
    for size in [64 * KIB, 100 * KIB] {
        let region = Region::new(size, PAGE_SIZE);
        let f = Fixture::new(&region);
        let mut window = VecDeque::new();
        for i in 0..MANY {
            let l = layout(8 + (i as usize * 7) % 57);
            let ptr = f.alloc(l, i);
            assert!(!ptr.is_null(), "allocation {i} of {l:?} failed");
            window.push_back((ptr, l, i));
            if window.len() > 50 {
                let (ptr, l, seed) = window.pop_front().unwrap();
                // SAFETY: allocated above with `l` and filled with `seed`.
                unsafe { f.free(ptr, l, seed) };
            }
        }
        for (ptr, l, seed) in window {
            // SAFETY: as above.
            unsafe { f.free(ptr, l, seed) };
        }
        let s = f.heap.stats();
        assert_eq!(s.allocs(), MANY, "{s}");
        f.assert_all_returned();
    }
}

/// A `Vec<u64>` grown one element at a time to `VEC_LEN` (1000) elements, each push a
/// `realloc` to the exact new length, contents checked after each.
#[test]
fn vec_grown_element_by_element() {
    for size in [64 * KIB, 100 * KIB] {
        let region = Region::new(size, PAGE_SIZE);
        let f = Fixture::new(&region);
        let mut l = Layout::new::<u64>();
        let mut ptr = f.heap.alloc(l).cast::<u64>();
        assert!(!ptr.is_null());
        // SAFETY: room for one u64.
        unsafe { ptr.write(0) };
        for len in 2..=VEC_LEN {
            // SAFETY: `ptr` is live with layout `l`; the new size is non-zero.
            let grown = unsafe { f.heap.realloc(ptr.cast(), l, len * 8) }.cast::<u64>();
            assert!(!grown.is_null(), "realloc to {len} elements failed");
            ptr = grown;
            l = Layout::array::<u64>(len).unwrap();
            // SAFETY: `len` u64s, the first `len - 1` carried over.
            let v = unsafe { std::slice::from_raw_parts_mut(ptr, len) };
            v[len - 1] = (len - 1) as u64 * 3;
            assert!(
                v.iter().enumerate().all(|(i, &x)| x == i as u64 * 3),
                "contents lost when growing to {len}"
            );
        }
        // And back down, halving.
        let mut len = VEC_LEN;
        while len > 1 {
            len /= 2;
            // SAFETY: `ptr` is live with layout `l`.
            ptr = unsafe { f.heap.realloc(ptr.cast(), l, len * 8) }.cast();
            assert!(!ptr.is_null());
            l = Layout::array::<u64>(len).unwrap();
            // SAFETY: `len` u64s carried over.
            let v = unsafe { std::slice::from_raw_parts(ptr, len) };
            assert!(v.iter().enumerate().all(|(i, &x)| x == i as u64 * 3));
        }
        // SAFETY: live with layout `l`.
        unsafe { f.heap.dealloc(ptr.cast(), l) };
        f.assert_all_returned();
    }
}

/// Long-lived blocks (one of them a large block) keep their contents while
/// `CHURN` (50 000) other allocations of many classes come and go around them.
#[test]
fn long_lived_blocks_survive_churn() {
    let region = Region::new(100 * KIB, PAGE_SIZE);
    let f = Fixture::new(&region);
    let mut kept = Vec::new();
    for (i, size) in [16, 100, 1000, 1500, 33 * KIB].into_iter().enumerate() {
        let l = layout(size);
        let ptr = f.alloc(l, 1000 + i as u64);
        assert!(!ptr.is_null(), "long-lived {size}");
        kept.push((ptr, l, 1000 + i as u64));
    }
    let mut churn: VecDeque<(*mut u8, Layout, u64)> = VecDeque::new();
    for i in 0..CHURN {
        let l = layout([24, 48, 200, 512, 2000][i as usize % 5]);
        let ptr = f.alloc(l, i);
        assert!(!ptr.is_null(), "churn allocation {i}");
        churn.push_back((ptr, l, i));
        if churn.len() > 8 {
            let (ptr, l, seed) = churn.pop_front().unwrap();
            // SAFETY: allocated above with `l`, filled with `seed`.
            unsafe { f.free(ptr, l, seed) };
        }
        if i % (CHURN / 10) == 0 {
            f.heap.trim();
            for &(ptr, l, seed) in &kept {
                // SAFETY: the long-lived blocks stay live until the end.
                unsafe { check(ptr, l.size(), seed, "long-lived block") };
            }
        }
    }
    for (ptr, l, seed) in churn.into_iter().chain(kept) {
        // SAFETY: live blocks with their layouts and seeds.
        unsafe { f.free(ptr, l, seed) };
    }
    f.assert_all_returned();
}

/// A CPU cache keeps at most `cache_capacity` blocks of a class and the
/// depot at most `drain_threshold`; lowered knobs apply from the next free.
#[test]
fn knobs_bound_caches_and_depots() {
    let region = Region::new(100 * KIB, PAGE_SIZE);
    let f = Fixture::new(&region);
    let l = layout(16);
    for (knobs, round) in [(Knobs::DEFAULT, 0), (SMALL_KNOBS, 1)] {
        f.heap.set_knobs(knobs);
        assert_eq!(f.heap.knobs(), knobs);
        let blocks: Vec<_> = (0..KNOB_BLOCKS)
            .map(|i| f.alloc(l, round * 1000 + i))
            .collect();
        for (i, &p) in blocks.iter().enumerate() {
            assert!(!p.is_null());
            // SAFETY: allocated just above with `l` and this seed.
            unsafe { f.free(p, l, round * 1000 + i as u64) };
        }
        let c = f.heap.stats().classes[0];
        assert_eq!(c.size, 16);
        assert!(c.cached_blocks > 0);
        assert!(
            c.cached_blocks <= u64::from(knobs.cache_capacity),
            "{c:?} with {knobs:?}"
        );
        assert!(
            c.depot_blocks <= u64::from(knobs.drain_threshold),
            "{c:?} with {knobs:?}"
        );
        assert!(c.cache_drains > 0, "{c:?}");
    }
    f.assert_all_returned();
}

const SMALL_KNOBS: Knobs = Knobs {
    cache_capacity: 4,
    bundle_width: 2,
    drain_threshold: 8,
    ..Knobs::DEFAULT
};

/// Allocates `l` until null (bounded), returning what it got.
fn allocate_until_null(f: &Fixture, l: Layout, seed: u64) -> Vec<*mut u8> {
    let mut got = Vec::new();
    loop {
        let ptr = f.alloc(l, seed);
        if ptr.is_null() {
            return got;
        }
        got.push(ptr);
        assert!(got.len() * l.size() <= f.len, "more memory than the region");
    }
}

#[test]
fn exhaustion_returns_null_then_recovers() {
    // Under Miri, one region of small blocks and one of large ones.
    let cases: &[(usize, usize)] = if cfg!(miri) {
        &[(64 * KIB, 1000), (100 * KIB, 40_000)]
    } else {
        &[(64 * KIB, 1000), (100 * KIB, 1000), (100 * KIB, 40_000)]
    };
    for &(size, block) in cases {
        let region = Region::new(size, PAGE_SIZE);
        let f = Fixture::new(&region);
        let l = layout(block);
        let mut got = allocate_until_null(&f, l, 7);
        assert!(!got.is_empty(), "{block} B in a {size} B region");
        // Null again, and for other sizes too, without a panic.
        assert!(f.heap.alloc(l).is_null());
        assert!(f.heap.alloc(layout(70_000)).is_null());
        for huge in [
            layout(1 << 40),
            Layout::from_size_align(isize::MAX as usize - PAGE_SIZE + 1, PAGE_SIZE).unwrap(),
            Layout::from_size_align(8, 1 << 40).unwrap(),
        ] {
            assert!(f.heap.alloc(huge).is_null(), "{huge:?}");
        }
        let s = f.heap.stats();
        assert!(s.provider.failed_calls > 0, "{s}");

        // Free every other block: the same size fits again.
        let mut freed = 0;
        for ptr in got.iter_mut().step_by(2) {
            // SAFETY: live, allocated with `l`, filled with seed 7.
            unsafe { f.free(*ptr, l, 7) };
            *ptr = std::ptr::null_mut();
            freed += 1;
        }
        got.retain(|p| !p.is_null());
        let again = allocate_until_null(&f, l, 8);
        assert!(
            !again.is_empty(),
            "nothing fits after freeing {freed} blocks"
        );
        assert!(again.len() <= freed);
        for ptr in got {
            // SAFETY: live, allocated with `l`, filled with seed 7.
            unsafe { f.free(ptr, l, 7) };
        }
        for ptr in again {
            // SAFETY: live, allocated with `l`, filled with seed 8.
            unsafe { f.free(ptr, l, 8) };
        }
        f.assert_all_returned();
        // Everything fits again once more, as many as the first time.
        let refill = allocate_until_null(&f, l, 9);
        assert!(!refill.is_empty());
        for ptr in refill {
            // SAFETY: live, allocated with `l`, filled with seed 9.
            unsafe { f.free(ptr, l, 9) };
        }
        f.assert_all_returned();
    }
}

/// Statistics stay consistent when allocations fail: a failed allocation
/// is not a served one, so cache hits can never exceed allocations, and
/// formatting the snapshot must not panic.
#[test]
fn stats_after_failed_allocations() {
    let region = Region::new(64 * KIB, PAGE_SIZE);
    let f = Fixture::new(&region);
    let l = layout(4000);
    let got = allocate_until_null(&f, l, 1);
    // A class never served before: its first allocation misses and fails.
    assert!(f.heap.alloc(layout(16)).is_null());
    let s = f.heap.stats();
    let (hits, misses) = (s.cache_hits(), s.cache_misses());
    assert!(
        hits <= s.allocs(),
        "{hits} hits of {} allocations",
        s.allocs()
    );
    assert!(misses >= 1);
    assert!(format!("{s}").contains("committed"));
    for ptr in got {
        // SAFETY: live, allocated with `l`, filled with seed 1.
        unsafe { f.free(ptr, l, 1) };
    }
    f.assert_all_returned();
}

/// Large blocks (over 32 KiB, or aligned past a page) in a 100 KiB region:
/// realloc grows and shrinks them, keeping contents, and every page comes
/// back.
#[test]
fn large_blocks_and_alignment() {
    // 64 KiB-aligned, so that 16 KiB-aligned runs start right behind the
    // metadata in the first pages. The regrown block fits in the hole that
    // the first one left (first fit): 9 pages, while the small block sits
    // behind it.
    let region = Region::new(100 * KIB, 64 * KIB);
    let f = Fixture::new(&region);
    for align in [8, 64, 4096, 8192, 16 * KIB] {
        let l = Layout::from_size_align(33 * KIB, align).unwrap();
        let ptr = f.alloc(l, align as u64);
        assert!(!ptr.is_null(), "{l:?}");
        // Shrink into a small class, then grow back to a large block.
        // SAFETY: live with `l`.
        let small = unsafe { f.heap.realloc(ptr, l, 100) };
        assert!(!small.is_null());
        assert_eq!(small as usize % align, 0);
        // SAFETY: 100 bytes carried over.
        unsafe { check(small, 100, align as u64, "shrunk block") };
        let sl = Layout::from_size_align(100, align).unwrap();
        // SAFETY: live with `sl`.
        let big = unsafe { f.heap.realloc(small, sl, 36 * KIB) };
        assert!(!big.is_null(), "align {align}: {}", f.heap.stats());
        assert_eq!(big as usize % align, 0);
        // SAFETY: 100 bytes carried over.
        unsafe { check(big, 100, align as u64, "regrown block") };
        let bl = Layout::from_size_align(36 * KIB, align).unwrap();
        // SAFETY: live with `bl`.
        unsafe { f.heap.dealloc(big, bl) };
        // Give the emptied slabs back, so the next alignment finds room.
        f.heap.trim();
    }
    // Small blocks with large alignments come from slabs, aligned.
    let mut small = Vec::new();
    for align in [16, 32, 64, 128, 256, 512, 1024, 2048, 4096] {
        let l = Layout::from_size_align(24, align).unwrap();
        let ptr = f.alloc(l, align as u64);
        assert!(!ptr.is_null(), "{l:?}");
        small.push((ptr, l));
    }
    assert_eq!(f.heap.stats().large_live_bytes, 0);
    for (ptr, l) in small {
        // SAFETY: live with `l`, filled with its alignment as the seed.
        unsafe { f.free(ptr, l, l.align() as u64) };
    }
    f.assert_all_returned();
}

/// Large `realloc` over a region, whose provider cannot resize runs, so
/// only the page heap can: a block grows in place into the free run that
/// follows it, shrinks in place (its tail goes back to the page heap, so it
/// can grow back into it), and moves when the pages after it are live. Its
/// contents survive every step.
#[test]
fn large_realloc_grows_into_a_free_neighbour_and_moves_past_a_live_one() {
    let region = Region::new(1024 * KIB, PAGE_SIZE);
    let f = Fixture::new(&region);
    let l = |kib: usize| layout(kib * KIB);
    // Three runs in a row (first fit from the region's free end).
    let a = f.alloc(l(64), 1);
    let b = f.alloc(l(64), 2);
    let c = f.alloc(l(64), 3);
    assert_eq!(
        (b as usize - a as usize, c as usize - b as usize),
        (64 * KIB, 64 * KIB)
    );
    // SAFETY (each call below): live blocks with the layouts named, filled
    // by `f.alloc` with the seeds named; the first 64 KiB of `a` carry its
    // pattern through every resize.
    unsafe {
        f.free(b, l(64), 2);
        let grown = f.heap.realloc(a, l(64), 100 * KIB);
        assert_eq!(grown, a, "grown into the freed neighbour");
        let grown = f.heap.realloc(a, l(100), 128 * KIB);
        assert_eq!(grown, a, "grown to the end of the neighbour");
        check(a, 64 * KIB, 1, "grown block");
        let retained = f.heap.stats().retained_bytes;
        let moved = f.heap.realloc(a, l(128), 192 * KIB);
        assert_ne!(moved, a, "moved: the pages after it are live");
        check(moved, 64 * KIB, 1, "moved block");
        assert_eq!(
            f.heap.stats().retained_bytes,
            retained + 128 * KIB,
            "the old run is free in the page heap"
        );
        let shrunk = f.heap.realloc(moved, l(192), 64 * KIB);
        assert_eq!(shrunk, moved, "shrunk in place");
        assert_eq!(
            f.heap.stats().retained_bytes,
            retained + 256 * KIB,
            "the tail is free in the page heap"
        );
        let regrown = f.heap.realloc(moved, l(64), 160 * KIB);
        assert_eq!(regrown, moved, "grown back into its own tail");
        check(moved, 64 * KIB, 1, "regrown block");
        assert_eq!(f.heap.stats().large_live_bytes, (160 + 64) * KIB);
        f.heap.dealloc(moved, l(160));
        f.free(c, l(64), 3);
    }
    f.assert_all_returned();
}

/// The kernel-style interface: a `static` heap, used through `GlobalAlloc`.
#[test]
fn global_alloc_interface_on_a_static_heap() {
    static HEAP: Heap = Allocator::new();
    // Before `init` every allocation fails (null), without a panic.
    // SAFETY: a valid layout; null is a valid answer.
    assert!(unsafe { GlobalAlloc::alloc(&HEAP, layout(32)) }.is_null());

    // The region lives as long as the static heap: a static too, as in a
    // kernel (a leaked allocation would be a leak to Miri).
    #[repr(align(4096))]
    struct Memory([u8; 100 * KIB]);
    static mut MEMORY: Memory = Memory([0; 100 * KIB]);
    // SAFETY: this test alone uses MEMORY, through this one provider, which
    // the static heap owns for the rest of the program.
    let provider = unsafe { RegionProvider::new((&raw mut MEMORY.0).cast(), 100 * KIB) };
    HEAP.init(provider, Config::DEFAULT).unwrap();
    let init = HEAP.stats().committed_bytes;

    let l = layout(200);
    // SAFETY: GlobalAlloc calls with valid layouts on live blocks.
    unsafe {
        let a = GlobalAlloc::alloc(&HEAP, l);
        assert!(!a.is_null());
        fill(a, 200, 1);
        let b = GlobalAlloc::realloc(&HEAP, a, l, 5000);
        assert!(!b.is_null());
        check(b, 200, 1, "GlobalAlloc::realloc");
        GlobalAlloc::dealloc(&HEAP, b, layout(5000));

        // alloc_zeroed clears a block that was dirty when freed.
        let dirty = GlobalAlloc::alloc(&HEAP, l);
        dirty.write_bytes(0xff, 200);
        GlobalAlloc::dealloc(&HEAP, dirty, l);
        let z = GlobalAlloc::alloc_zeroed(&HEAP, l);
        assert!(!z.is_null());
        assert!(std::slice::from_raw_parts(z, 200).iter().all(|&b| b == 0));
        GlobalAlloc::dealloc(&HEAP, z, l);
    }
    HEAP.trim();
    assert_eq!(HEAP.stats().committed_bytes, init);
}

#[test]
fn init_errors() {
    // Two pages: too small for the page map, one CPU cache and the first
    // page of slab descriptors together.
    let region = Region::new(2 * PAGE_SIZE, PAGE_SIZE);
    // SAFETY: the only provider of `region`, dropped (with `heap`) before it.
    let provider = unsafe { region.provider() };
    let heap: Box<Heap> = Box::new(Allocator::new());
    assert_eq!(
        heap.init(provider, Config::DEFAULT),
        Err(InitError::OutOfMemory)
    );
    assert!(!heap.is_initialized());
    assert!(heap.alloc(layout(16)).is_null());
    assert!(heap.alloc(layout(100_000)).is_null());

    let region = Region::new(64 * KIB, PAGE_SIZE);
    let f = Fixture::new(&region);
    let other = Region::new(64 * KIB, PAGE_SIZE);
    // SAFETY: the only provider of `other`; `init` refuses it and drops it.
    let second = unsafe { other.provider() };
    assert_eq!(
        f.heap.init(second, Config::DEFAULT),
        Err(InitError::AlreadyInitialized)
    );
    // The first provider is still in use.
    assert_eq!(f.heap.with_provider(|p| p.free_bytes()), Some(f.init_free));
}

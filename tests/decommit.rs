//! Decommit as the allocator uses it, over a provider that makes misuse
//! crash: `Guarded` wraps the mmap provider and turns every page it
//! decommits into `PROT_NONE` until it is recommitted or freed. A
//! decommitted page that the allocator hands out without recommitting it
//! first, or a page holding a live block that it decommits, then faults on
//! the next access (the test process dies: a failure).
//!
//! Also: LEAN keeps committed memory within its target on a phased
//! workload (where FAST does not), and profile switches under load.

mod common;

use std::alloc::Layout;
use std::collections::BTreeSet;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

use acealloc::hosted::HostedPlatform;
use acealloc::provider::MmapProvider;
use acealloc::{
    Allocator, Config, DecommitMode, PAGE_SIZE, PageProvider, Platform, Profile, RegionProvider,
    Span,
};

use common::{PretendCpus, Region, SingleCpu, check, fill};

/// The mmap provider, with decommitted pages made inaccessible.
struct Guarded {
    inner: MmapProvider,
    /// Pages decommitted and not yet recommitted or freed.
    decommitted: BTreeSet<usize>,
}

impl Guarded {
    fn new() -> Guarded {
        Guarded {
            inner: MmapProvider::new(1 << 30, DecommitMode::DontNeed).expect("address space"),
            decommitted: BTreeSet::new(),
        }
    }

    fn pages(ptr: NonNull<u8>, pages: usize) -> impl Iterator<Item = usize> {
        let first = ptr.as_ptr() as usize / PAGE_SIZE;
        first..first + pages
    }

    fn protect(ptr: NonNull<u8>, pages: usize, prot: libc::c_int) {
        // SAFETY: the range lies in the provider's own reservation.
        let r = unsafe { libc::mprotect(ptr.as_ptr().cast(), pages * PAGE_SIZE, prot) };
        assert_eq!(r, 0, "mprotect failed");
    }
}

// SAFETY: every run comes from the inner provider unchanged; pages are only
// inaccessible between `decommit` and `recommit`/`free_pages`, when the
// contract says nothing uses them.
unsafe impl PageProvider for Guarded {
    const ZEROED: bool = true;

    fn span(&self) -> Span {
        self.inner.span()
    }

    fn alloc_pages(&mut self, pages: usize, align: usize) -> Option<NonNull<u8>> {
        let run = self.inner.alloc_pages(pages, align)?;
        assert!(
            Self::pages(run, pages).all(|p| !self.decommitted.contains(&p)),
            "a fresh run overlaps decommitted pages"
        );
        Some(run)
    }

    unsafe fn free_pages(&mut self, ptr: NonNull<u8>, pages: usize) {
        for p in Self::pages(ptr, pages) {
            self.decommitted.remove(&p);
        }
        Self::protect(ptr, pages, libc::PROT_READ | libc::PROT_WRITE);
        // SAFETY: forwarded caller contract.
        unsafe { self.inner.free_pages(ptr, pages) }
    }

    unsafe fn decommit(&mut self, ptr: NonNull<u8>, pages: usize) -> bool {
        Clocked::advance_clock();
        for p in Self::pages(ptr, pages) {
            assert!(self.decommitted.insert(p), "page {p:#x} decommitted twice");
        }
        // SAFETY: forwarded caller contract.
        let done = unsafe { self.inner.decommit(ptr, pages) };
        Self::protect(ptr, pages, libc::PROT_NONE);
        done
    }

    unsafe fn recommit(&mut self, ptr: NonNull<u8>, pages: usize) -> bool {
        for p in Self::pages(ptr, pages) {
            assert!(
                self.decommitted.remove(&p),
                "page {p:#x} recommitted but not decommitted"
            );
        }
        Self::protect(ptr, pages, libc::PROT_READ | libc::PROT_WRITE);
        // SAFETY: forwarded caller contract.
        unsafe { self.inner.recommit(ptr, pages) }
    }

    unsafe fn resize_in_place(&mut self, ptr: NonNull<u8>, old: usize, new: usize) -> bool {
        // SAFETY: forwarded caller contract.
        unsafe { self.inner.resize_in_place(ptr, old, new) }
    }
}

/// One CPU whose clock advances only when a page run is decommitted, so
/// that a deadline is a number of decommits.
type Clocked = PretendCpus<1, true>;

type Guard = Allocator<Guarded, HostedPlatform>;

fn allocator(profile: Profile) -> Box<Guard> {
    allocator_on(profile)
}

fn allocator_on<Pl: Platform>(profile: Profile) -> Box<Allocator<Guarded, Pl>> {
    let a = Box::new(Allocator::new());
    let config = Config {
        profile,
        decommit: DecommitMode::DontNeed,
        checks: false,
        ..Config::DEFAULT
    };
    a.init(Guarded::new(), config).unwrap();
    a
}

/// A live block with its pattern seed.
struct Block {
    ptr: *mut u8,
    layout: Layout,
    seed: u64,
}

/// Sizes from every corner: small classes, the biggest class, large runs.
fn size(i: usize) -> usize {
    [24, 200, 1000, 3000, 9000, 32 * 1024, 40 * 1024, 300 * 1024][i % 8] + i % 7
}

fn alloc_blocks<P: PageProvider + Send, Pl: Platform>(
    a: &Allocator<P, Pl>,
    n: usize,
    seed: u64,
) -> Vec<Block> {
    (0..n)
        .map(|i| {
            let layout = Layout::from_size_align(size(i), 8).unwrap();
            let ptr = a.alloc(layout);
            assert!(!ptr.is_null(), "{layout:?}");
            let seed = seed + i as u64;
            // SAFETY: a fresh block of `layout.size()` bytes.
            unsafe { fill(ptr, layout.size(), seed) };
            Block { ptr, layout, seed }
        })
        .collect()
}

fn check_and_free<P: PageProvider + Send, Pl: Platform>(a: &Allocator<P, Pl>, blocks: Vec<Block>) {
    for b in blocks {
        // SAFETY: a live block of ours, filled with its seed.
        unsafe {
            check(b.ptr, b.layout.size(), b.seed, "block");
            a.dealloc(b.ptr, b.layout);
        }
    }
}

/// With a zero purge delay every freed run is decommitted at once; the next
/// rounds reuse those runs, so every page they touch was recommitted first
/// (or it would fault).
#[test]
fn decommitted_runs_are_recommitted_before_reuse() {
    let a = allocator(Profile::Lean);
    a.set_purge_delay_ms(0);
    for round in 0..6 {
        let blocks = alloc_blocks(&a, 400, round * 1000);
        check_and_free(&a, blocks);
    }
    let s = a.stats();
    assert!(s.provider.decommit_calls > 0, "{s}");
    assert!(s.provider.recommit_calls > 0, "{s}");
    assert_eq!(s.retained_bytes, 0, "a zero delay keeps nothing dirty: {s}");
    assert!(s.decommitted_bytes > 0, "{s}");
    // Reusing decommitted runs spares the provider fresh runs: the later
    // rounds allocated (almost) nothing new.
    assert!(
        s.provider.alloc_calls < 400,
        "{} fresh runs for 6 rounds of 400 blocks: {s}",
        s.provider.alloc_calls
    );
}

/// A provider that cannot decommit (a fixed region) never sees a decommit
/// and scavenging does nothing there: free runs stay in the page heap and
/// are reused (the later rounds ask the provider for nothing), until a trim
/// gives them back.
#[test]
fn without_decommit_free_runs_are_reused_then_given_back() {
    let region = Region::new(16 << 20, PAGE_SIZE);
    let a: Box<Allocator<RegionProvider, SingleCpu>> = Box::new(Allocator::new());
    let config = Config {
        profile: Profile::Lean,
        checks: false,
        ..Config::DEFAULT
    };
    // SAFETY: the region outlives the allocator (declared first) and has no
    // other provider.
    a.init(unsafe { region.provider() }, config).unwrap();
    a.set_purge_delay_ms(0);
    let mut fresh = Vec::new();
    for round in 0..3 {
        let blocks = alloc_blocks(&a, 40, round);
        check_and_free(&a, blocks);
        assert_eq!(a.scavenge(usize::MAX, u64::MAX), 0);
        assert_eq!(a.maintain(u64::MAX), 0);
        fresh.push(a.stats().provider.alloc_calls);
    }
    let s = a.stats();
    assert_eq!(
        (s.provider.decommit_calls, s.decommitted_bytes),
        (0, 0),
        "{s}"
    );
    assert_eq!(s.provider.free_calls, 0, "{s}");
    assert!(s.retained_bytes > 0, "{s}");
    assert_eq!(fresh[1], fresh[2], "round 3 reused round 2's runs: {s}");
    a.trim();
    let s = a.stats();
    assert!(s.provider.free_calls > 0, "{s}");
    assert_eq!(s.retained_bytes, 0, "{s}");
    let free = a.with_provider(|p| p.free_bytes()).unwrap();
    assert!(free + s.committed_bytes >= 16 << 20, "{s}");
}

/// Scavenging decommits idle retained memory, never a page with a live
/// block: every live block reads back intact (a decommitted page would
/// fault), and the memory comes back into use afterwards.
#[test]
fn live_blocks_survive_a_scavenge() {
    let a = allocator(Profile::Balanced);
    let mut blocks = alloc_blocks(&a, 800, 7);
    // Free two blocks of every three: slabs go partly and wholly free,
    // large runs go to the retained pool.
    let mut kept = Vec::new();
    for (i, b) in blocks.drain(..).enumerate() {
        if i % 3 == 0 {
            kept.push(b);
        } else {
            check_and_free(&a, vec![b]);
        }
    }
    let before = a.stats();
    let retained = before.retained_bytes;
    assert!(retained > 0, "{before}");
    assert_eq!(
        a.scavenge(usize::MAX, u64::MAX),
        0,
        "nothing idle before a first pass"
    );
    let done = a.scavenge(usize::MAX, u64::MAX);
    let s = a.stats();
    assert_eq!(done * PAGE_SIZE, retained, "{s}");
    assert_eq!(s.retained_bytes, 0, "{s}");
    assert_eq!(
        s.decommitted_bytes,
        before.decommitted_bytes + retained,
        "{s}"
    );
    check_and_free(&a, kept);
    let again = alloc_blocks(&a, 800, 99);
    assert!(a.stats().provider.recommit_calls > 0);
    check_and_free(&a, again);
}

/// The scavenge bound holds, pass after pass, until nothing is idle.
#[test]
fn scavenge_is_bounded() {
    let a = allocator(Profile::Fast);
    let blocks = alloc_blocks(&a, 200, 1);
    check_and_free(&a, blocks);
    a.scavenge(0, u64::MAX); // marks everything retained so far as idle from now on
    let retained = a.stats().retained_bytes / PAGE_SIZE;
    assert!(retained > 20, "{}", a.stats());
    let mut total = 0;
    loop {
        let done = a.scavenge(7, u64::MAX);
        assert!(done <= 7);
        if done == 0 {
            break;
        }
        total += done;
    }
    assert_eq!(total, retained);
    assert_eq!(a.stats().retained_bytes, 0);
}

/// A scavenge stops at its deadline: with a clock that advances one unit
/// per decommit, a deadline three units away lets exactly three runs be
/// decommitted, a deadline already passed none; live blocks between the
/// idle runs read back intact (a decommitted page would fault).
#[test]
fn scavenge_stops_at_its_deadline() {
    let a = allocator_on::<Clocked>(Profile::Fast);
    const PAGES: usize = 10;
    let layout = Layout::from_size_align(PAGES * PAGE_SIZE, 8).unwrap();
    let mut live = Vec::new();
    for i in 0..40u64 {
        let ptr = a.alloc(layout);
        assert!(!ptr.is_null());
        // SAFETY: a fresh block of `layout.size()` bytes.
        unsafe { fill(ptr, layout.size(), i) };
        live.push(Block {
            ptr,
            layout,
            seed: i,
        });
    }
    // Every other block freed: 20 retained runs that live blocks keep apart.
    let (freed, kept): (Vec<_>, Vec<_>) = live.into_iter().partition(|b| b.seed % 2 == 0);
    check_and_free(&a, freed);
    a.scavenge(0, u64::MAX); // marks them idle
    let calls = || a.stats().provider.decommit_calls;
    let before = calls();
    let start = Clocked::now();
    let done = a.scavenge(usize::MAX, start + 3);
    assert_eq!(calls() - before, 3, "{}", a.stats());
    assert_eq!(done, 3 * PAGES);
    assert_eq!(a.scavenge(usize::MAX, Clocked::now()), 0, "deadline passed");
    assert_eq!(a.scavenge(usize::MAX, u64::MAX), 17 * PAGES);
    check_and_free(&a, kept);
}

/// The same for empty slabs that a lowered reserve lets go: each release
/// is one unit of work. FAST keeps two empty slabs per class; with a zero
/// purge delay each released slab is decommitted at once (one clock unit).
#[test]
fn releasing_reserved_slabs_stops_at_the_deadline() {
    let a = allocator_on::<Clocked>(Profile::Fast);
    for size in [1000, 2000, 3000] {
        let layout = Layout::from_size_align(size, 8).unwrap();
        let ptrs: Vec<_> = (0..1000).map(|_| a.alloc(layout)).collect();
        for ptr in ptrs {
            assert!(!ptr.is_null());
            // SAFETY: allocated above with `layout`, unused.
            unsafe { a.dealloc(ptr, layout) };
        }
    }
    // Purge what FAST's frees left dirty, so that from here on each
    // released slab is the one run decommitted.
    a.set_purge_delay_ms(0);
    a.maintain(u64::MAX);
    a.set_profile(Profile::Lean);
    a.set_purge_delay_ms(0);
    let retired = a.stats().slabs_retired;
    a.scavenge(0, Clocked::now() + 2);
    assert_eq!(a.stats().slabs_retired - retired, 2, "{}", a.stats());
    a.scavenge(0, u64::MAX);
    assert_eq!(
        a.stats().slabs_retired - retired,
        6,
        "two per class: {}",
        a.stats()
    );
}

/// Runs a phased workload: each phase holds about 1 MiB of blocks of its own
/// size, then frees them. Returns the most committed bytes seen, and the
/// most seen at the end of a phase (nothing live) once the purge delay has
/// passed and `maintain` ran.
fn phased(profile: Profile, target: usize) -> (usize, usize) {
    let a: Box<Allocator<MmapProvider, HostedPlatform>> = Box::new(Allocator::new());
    let config = Config {
        profile,
        decommit: DecommitMode::DontNeed,
        lean_target: target,
        checks: false,
        ..Config::DEFAULT
    };
    let provider = MmapProvider::new(1 << 30, DecommitMode::DontNeed).unwrap();
    a.init(provider, config).unwrap();
    let (mut peak, mut settled) = (0, 0);
    for phase in 0..12usize {
        let size = 48 << (phase % 12);
        let layout = Layout::from_size_align(size.min(200 << 10), 8).unwrap();
        let count = (1 << 20) / layout.size();
        let mut blocks = Vec::new();
        for i in 0..count {
            let ptr = a.alloc(layout);
            assert!(!ptr.is_null());
            // SAFETY: a fresh block.
            unsafe { fill(ptr, layout.size(), i as u64) };
            blocks.push(ptr);
            peak = peak.max(a.stats().committed_bytes);
        }
        for (i, ptr) in blocks.into_iter().enumerate() {
            // SAFETY: live with `layout`, filled with seed `i`.
            unsafe {
                check(ptr, layout.size(), i as u64, "phased block");
                a.dealloc(ptr, layout);
            }
            peak = peak.max(a.stats().committed_bytes);
        }
        std::thread::sleep(std::time::Duration::from_millis(
            a.purge_delay_ms().min(100).into(),
        ));
        a.maintain(u64::MAX);
        settled = settled.max(a.stats().committed_bytes);
    }
    (peak, settled)
}

/// LEAN's committed memory stays within its target (2 MiB for 1 MiB live,
/// phase after phase) and between phases, once its purge delay passed,
/// falls back to what the classes' budgets let caches and depots hold
/// (64 KiB for each of 12 classes, at most); FAST (whose delay is far
/// longer than the 100 ms waited) keeps the freed memory committed.
#[test]
fn lean_keeps_committed_memory_within_its_target() {
    const TARGET: usize = 2 << 20;
    let (peak, settled) = phased(Profile::Lean, TARGET);
    assert!(peak <= TARGET, "LEAN peaked at {} KiB", peak >> 10);
    assert!(
        settled <= 1 << 20,
        "LEAN holds {} KiB with nothing live",
        settled >> 10
    );
    let (_, fast_settled) = phased(Profile::Fast, TARGET);
    assert!(
        fast_settled >= 1 << 20,
        "FAST holds only {} KiB with nothing live",
        fast_settled >> 10
    );
}

/// Profiles switch while threads allocate and free patterned blocks; every
/// block reads back intact, and LEAN at the end gives the freed memory up.
#[test]
fn profile_switch_under_concurrent_load() {
    let a = allocator(Profile::Balanced);
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        for t in 0..3u64 {
            let (a, stop) = (&*a, &stop);
            scope.spawn(move || {
                let mut round = 0;
                while !stop.load(Relaxed) {
                    let blocks = alloc_blocks(a, 64, t << 32 | round);
                    check_and_free(a, blocks);
                    round += 1;
                }
            });
        }
        let profiles = [Profile::Fast, Profile::Lean, Profile::Balanced];
        for i in 0..300 {
            a.set_profile(profiles[i % 3]);
            a.scavenge(16, u64::MAX);
            std::thread::sleep(std::time::Duration::from_micros(300));
        }
        stop.store(true, Relaxed);
    });
    a.set_profile(Profile::Lean);
    a.trim();
    let s = a.stats();
    assert_eq!(s.profile, Profile::Lean);
    assert_eq!(s.live_bytes, 0, "{s}");
    assert_eq!(s.retained_bytes, 0, "{s}");
    assert!(s.provider.decommit_calls > 0, "{s}");
}

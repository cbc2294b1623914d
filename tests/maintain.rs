//! `Allocator::maintain`, the housekeeping a kernel calls from its timer
//! (with or without ACE): on a platform of 80 CPUs whose clock moves only
//! when the test says (one unit a millisecond, by `Config::clock_hz`), it
//! gives back the cache of a CPU above 64 once that cache stayed idle for
//! the purge delay, never more often than once a delay however often it
//! runs, and purges free runs once they are due and not before (FAST,
//! which never goes quiet); and once the allocator served nothing for the
//! quiet delay (BALANCED's 20 ms), gives back everything it caches and
//! purges every free run, whatever the purge delay.

mod common;

use std::alloc::Layout;

use acealloc::provider::MmapProvider;
use acealloc::{Allocator, Config, DecommitMode, Profile};

use common::PretendCpus;

type Cpus = PretendCpus<80, true>;

/// `ms` milliseconds of the test clock.
fn wait(ms: u64) {
    for _ in 0..ms {
        Cpus::advance_clock();
    }
}

fn heap(profile: Profile) -> Box<Allocator<MmapProvider, Cpus>> {
    let a = Box::new(Allocator::new());
    let config = Config {
        profile,
        decommit: DecommitMode::DontNeed,
        purge_delay_ms: Some(100),
        clock_hz: 1_000,
        checks: false,
        ..Config::DEFAULT
    };
    let provider = MmapProvider::new(1 << 30, DecommitMode::DontNeed).unwrap();
    a.init(provider, config).unwrap();
    a
}

#[test]
fn maintain_returns_an_idle_cache_of_cpu_70_once_a_purge_delay() {
    let a = heap(Profile::Fast);
    let small = Layout::from_size_align(512, 8).unwrap();
    Cpus::run_on(70);
    let blocks: Vec<_> = (0..16).map(|_| a.alloc(small)).collect();
    for &b in &blocks {
        assert!(!b.is_null());
        // SAFETY: allocated above with `small`.
        unsafe { a.dealloc(b, small) };
    }
    let cached = || a.cpu_stats(70).unwrap().cached_blocks;
    assert!(cached() >= 16);
    // The first check sees work since the start; the next is a delay away.
    wait(100);
    a.maintain(u64::MAX);
    for _ in 0..50 {
        wait(1);
        a.maintain(u64::MAX);
    }
    assert!(cached() >= 16, "checked once a delay, not once a call");
    // Another CPU's housekeeping leaves CPU 70's cache alone (kernel CPUs
    // each flush their own).
    Cpus::run_on(3);
    wait(100);
    a.maintain(u64::MAX);
    assert!(cached() >= 16);
    Cpus::run_on(70);
    assert_eq!(a.maintain(0), 0, "nothing past the deadline");
    assert!(cached() >= 16);
    a.maintain(u64::MAX);
    assert_eq!(cached(), 0, "idle for a whole delay: given back");
}

#[test]
fn maintain_purges_free_runs_once_due_and_not_before() {
    let a = heap(Profile::Fast);
    Cpus::run_on(0);
    let big = Layout::from_size_align(1 << 20, 4096).unwrap();
    let p = a.alloc(big);
    assert!(!p.is_null());
    // SAFETY: a fresh 1 MiB block.
    unsafe { p.write_bytes(7, 1 << 20) };
    // SAFETY: allocated above with `big`.
    unsafe { a.dealloc(p, big) };
    assert_eq!(a.stats().retained_bytes, 1 << 20);
    wait(99);
    assert_eq!(a.maintain(u64::MAX), 0, "99 ms of a 100 ms delay");
    wait(1);
    assert_eq!(a.maintain(u64::MAX), 256, "due: purged in one step");
    let s = a.stats();
    assert_eq!((s.retained_bytes, s.decommitted_bytes), (0, 1 << 20), "{s}");
    assert_eq!(s.provider.decommit_calls, 1, "{s}");
    // Reuse recommits it, without the provider's fresh pages.
    let calls = s.provider.alloc_calls;
    assert_eq!(a.alloc(big), p);
    assert_eq!(a.stats().provider.alloc_calls, calls);
    // SAFETY: allocated just above with `big`.
    unsafe { a.dealloc(p, big) };
}

#[test]
fn a_quiet_allocator_gives_back_its_caches_slabs_and_free_runs() {
    let a = heap(Profile::Balanced);
    Cpus::run_on(0);
    let small = Layout::from_size_align(256, 8).unwrap();
    let big = Layout::from_size_align(1 << 20, 4096).unwrap();
    let blocks: Vec<_> = (0..2000).map(|_| a.alloc(small)).collect();
    let p = a.alloc(big);
    assert!(!p.is_null());
    // SAFETY: a fresh 1 MiB block.
    unsafe { p.write_bytes(7, 1 << 20) };
    // SAFETY: each allocated above with its layout.
    unsafe {
        a.dealloc(p, big);
        for &b in &blocks {
            a.dealloc(b, small);
        }
    }
    let cached = |a: &Allocator<_, _>| {
        let s = a.stats();
        let class = s.classes.iter().find(|c| c.size == 256).unwrap();
        (class.cached_blocks + class.depot_blocks, class.slabs)
    };
    let held = cached(&a);
    assert!(
        held.0 > 0 && held.1 > 0,
        "{held:?}: cached blocks and a reserve slab"
    );
    // Busy: a block every 15 ms keeps it from going quiet (90 ms, within
    // the 100 ms purge delay).
    for _ in 0..6 {
        wait(15);
        a.maintain(u64::MAX);
        // SAFETY: freed at once with its layout.
        unsafe { a.dealloc(a.alloc(small), small) };
    }
    assert!(
        a.stats().retained_bytes >= 1 << 20,
        "kept: not quiet, not due"
    );
    assert_eq!(cached(&a).1, held.1, "slabs kept while busy");
    // Seen quiet within one and a half quiet delays (operations are
    // counted every half delay): everything goes back, over a call or two.
    for _ in 0..4 {
        wait(5);
        a.maintain(u64::MAX);
    }
    assert_eq!(cached(&a), held, "quiet, but not seen quiet for 20 ms yet");
    for _ in 0..4 {
        wait(5);
        a.maintain(u64::MAX);
    }
    let s = a.stats();
    assert_eq!(cached(&a), (0, 0), "{s}");
    assert_eq!(s.retained_bytes, 0, "every free run purged: {s}");
    assert!(s.decommitted_bytes >= 1 << 20, "{s}");
    // Nothing is left to do: the next calls take no lock and purge nothing.
    let calls = s.provider.decommit_calls;
    wait(100);
    assert_eq!(a.maintain(u64::MAX), 0);
    assert_eq!(a.stats().provider.decommit_calls, calls);
}

/// A release asked for (ACE's quiet spells) is a quiet spell's release on
/// the next `maintain`, even in FAST, which never goes quiet by itself and
/// waits 100 ms here before purging a free run; one request, one pass.
#[test]
fn an_asked_for_release_gives_back_at_once_whatever_the_profile() {
    let a = heap(Profile::Fast);
    Cpus::run_on(0);
    let big = Layout::from_size_align(1 << 20, 4096).unwrap();
    let free_one = || {
        let p = a.alloc(big);
        assert!(!p.is_null());
        // SAFETY: a fresh 1 MiB block, then freed with its layout.
        unsafe {
            p.write_bytes(7, 1 << 20);
            a.dealloc(p, big);
        }
    };
    free_one();
    wait(10);
    assert_eq!(a.maintain(u64::MAX), 0, "FAST: 10 ms of a 100 ms delay");
    a.request_release();
    assert_eq!(a.maintain(u64::MAX), 256, "asked: purged at once");
    assert_eq!(a.stats().retained_bytes, 0);
    free_one();
    assert_eq!(a.maintain(u64::MAX), 0, "one request, one pass");
}

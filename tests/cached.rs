//! The call-free fast paths a C library's `malloc` and `free` inline
//! ([`Allocator::alloc_cached`], [`Allocator::free_cached`]): restartable
//! sections on this CPU's cache alone. A block freed through them comes
//! back from them; whatever needs more (a refill, a large run, a pointer
//! that is no slab block, checked mode, the try-lock path) is declined,
//! null or false, with nothing done, for the full path to handle.

use std::ptr;

use acealloc::hosted::{HostedAllocator, HostedPlatform};
use acealloc::provider::MmapProvider;
use acealloc::size_class::MAX_SMALL;
use acealloc::{Allocator, Config, DecommitMode, PAGE_SIZE, PerCpuPath, Platform};

/// An allocator of its own (not the test binary's), on restartable
/// sections if `restartable`, checked if `checks`.
fn heap(restartable: bool, checks: bool) -> Box<HostedAllocator> {
    let heap: Box<HostedAllocator> = Box::new(Allocator::new());
    assert!(heap.alloc_cached(100).is_null(), "before init");
    let provider = MmapProvider::new(1 << 30, DecommitMode::Free).expect("1 GiB of address space");
    let config = Config {
        checks,
        restartable,
        ..Config::DEFAULT
    };
    heap.init(provider, config).unwrap();
    heap
}

/// Keeps the calling thread on the CPU it runs on (so that one CPU's
/// cache sees both calls of a pair).
fn pin_to_this_cpu() {
    let cpu = HostedPlatform::current_cpu();
    // SAFETY: a zeroed cpu_set_t is a valid empty set; the calls only read it.
    let pinned = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set)
    };
    assert_eq!(pinned, 0, "sched_setaffinity");
}

#[test]
fn blocks_freed_through_the_fast_path_come_back_from_it() {
    let heap = heap(true, false);
    assert_eq!(
        heap.stats().per_cpu_path,
        PerCpuPath::Restartable,
        "glibc 2.35+ and Linux 5.10+ offer rseq here"
    );
    let p = heap.alloc_bytes(100);
    assert!(!p.is_null());
    assert_eq!(p as usize % 16, 0);
    assert_eq!(heap.usable_size(p), Some(112));
    pin_to_this_cpu();
    // SAFETY: a live block of the heap, not used until it comes back.
    assert!(unsafe { heap.free_cached(p) });
    // The block just cached is the first out, for any size of its class.
    assert_eq!(heap.alloc_cached(112), p);
    assert!(heap.alloc_cached(MAX_SMALL + 1).is_null());

    let large = heap.alloc_bytes(100_000);
    assert!(!large.is_null());
    let mut local = 0u64;
    // SAFETY: none of these is a slab block: each call must decline it untouched.
    unsafe {
        assert!(!heap.free_cached(large), "a large run");
        assert!(!heap.free_cached(ptr::null_mut()), "null");
        assert!(!heap.free_cached((&raw mut local).cast()), "not the heap's");
    }
    assert_eq!(
        heap.usable_size(large),
        Some(100_000usize.next_multiple_of(PAGE_SIZE))
    );
    // SAFETY: live blocks of the heap, not used again.
    unsafe {
        heap.free(large);
        heap.free(p);
    }
    assert_eq!(heap.stats().live_bytes, 0);
}

/// Checked mode verifies every free, and the try-lock path needs calls:
/// the call-free paths decline both, so they never bypass a check.
#[test]
fn checked_mode_and_the_try_lock_path_are_declined() {
    for (restartable, checks) in [(true, true), (false, false)] {
        let heap = heap(restartable, checks);
        let q = heap.alloc_bytes(64);
        assert!(!q.is_null());
        // SAFETY: a live block of the heap; declined, so still live.
        assert!(!unsafe { heap.free_cached(q) });
        assert_eq!(heap.usable_size(q), Some(64));
        // SAFETY: a live block, not used again; declined, so the full
        // path frees it.
        unsafe { heap.free(q) };
        assert!(heap.alloc_cached(64).is_null());
        assert_eq!(heap.stats().live_bytes, 0);
    }
}

//! The freestanding C API (`kernel.rs`) on the host, with a platform whose clock the test
//! moves by hand: what happens before `acealloc_init`, a refused init followed by a good one,
//! and `acealloc_maintain` flushing an idle CPU's cache after a purge delay in the platform's
//! clock units.
//! `cargo xtask test` runs it with `--no-default-features` (the hosted build has no kernel
//! API); one test, because the library has one allocator for the whole process.
#![cfg(not(feature = "hosted"))]

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use acealloc_capi::CStats;
use acealloc_capi::kernel::*;

/// The platform's clock, in ms (`CLOCK_HZ`).
static NOW: AtomicU64 = AtomicU64::new(0);
const CLOCK_HZ: u64 = 1000;
/// FAST's purge delay, in ms. (FAST, because BALANCED and LEAN flush
/// sooner when the whole allocator goes quiet, as it does here: see
/// `Profile::quiet_ms`.)
const PURGE_DELAY_MS: u64 = 10_000;

extern "C" fn current_cpu() -> u32 {
    0
}

extern "C" fn irq_save() -> usize {
    0
}

extern "C" fn irq_restore(_: usize) {}

extern "C" fn now() -> u64 {
    NOW.load(Relaxed)
}

const PLATFORM: CPlatform = CPlatform {
    cpu_count: 1,
    current_cpu,
    irq_save,
    irq_restore,
    now,
    clock_hz: CLOCK_HZ,
};

#[test]
fn init_retries_and_maintain_flushes_after_the_purge_delay_on_the_platform_clock() {
    // Before init: null, zeros, nothing done (and no panic).
    assert!(acealloc_malloc(64).is_null());
    assert_eq!(acealloc_maintain(u64::MAX), 0);
    assert_eq!(acealloc_ace_start(), -1);
    acealloc_ace_tick();
    assert_eq!(cached_bytes(), 0);

    let region: &'static mut [u8] = vec![0u8; 16 << 20].leak();
    let config = CConfig {
        profile: 0,
        checks: 0,
        misuse: None,
    };
    // SAFETY: a valid platform and config; each region given is not used by anything else
    // (the refused one is not kept, so the whole region may follow).
    unsafe {
        let bad_clock = CPlatform {
            clock_hz: 0,
            ..PLATFORM
        };
        assert_eq!(
            acealloc_init(&bad_clock, region.as_mut_ptr(), region.len(), &config),
            -3
        );
        assert_eq!(
            acealloc_init(&PLATFORM, region.as_mut_ptr(), 4096, &config),
            -2,
            "one page cannot hold the metadata"
        );
        assert_eq!(
            acealloc_init(&PLATFORM, region.as_mut_ptr(), region.len(), &config),
            0,
            "a refused init must not block the next one"
        );
        assert_eq!(
            acealloc_init(&PLATFORM, region.as_mut_ptr(), region.len(), &config),
            -1
        );
    }
    assert_eq!(acealloc_ace_start(), 0);

    // A freed block stays in the CPU's cache until the timer's maintain has seen the CPU
    // idle for a whole purge delay, counted in the platform's units (ms here): the first
    // check, a delay after start-up, finds work done since; the next, a delay later, flushes.
    let p = acealloc_malloc(64);
    assert!(!p.is_null());
    // SAFETY: a live block of this allocator, not used again.
    unsafe { acealloc_free(p) };
    assert!(cached_bytes() >= 64);
    for ms in [0, 1, PURGE_DELAY_MS, 2 * PURGE_DELAY_MS - 1] {
        NOW.store(ms, Relaxed);
        acealloc_maintain(u64::MAX);
        assert!(cached_bytes() >= 64, "flushed at {ms} ms");
    }
    // A deadline already passed: nothing done.
    NOW.store(2 * PURGE_DELAY_MS, Relaxed);
    acealloc_maintain(2 * PURGE_DELAY_MS);
    assert!(cached_bytes() >= 64, "flushed after the deadline");
    acealloc_maintain(u64::MAX);
    assert_eq!(cached_bytes(), 0, "idle for a purge delay, but not flushed");
}

fn cached_bytes() -> usize {
    let mut stats = CStats::default();
    // SAFETY: `stats` is a valid record to write.
    unsafe { acealloc_stats(&mut stats) };
    stats.cached_bytes
}

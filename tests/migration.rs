//! A thread that moves between CPUs leaves its blocks in the cache of the
//! CPU it left. On hosted builds a class takes those back before it grows
//! by a slab, so its slabs do not ratchet up migration after migration.

use std::alloc::Layout;
use std::cell::Cell;

use acealloc::provider::MmapProvider;
use acealloc::{Allocator, Config, DecommitMode, Platform, Profile};

thread_local! {
    /// The CPU the test says its thread runs on.
    static CPU: Cell<usize> = const { Cell::new(0) };
}

/// Two CPUs with try-locked caches (a hosted platform) whose current CPU
/// the test sets.
struct Migrating;

// SAFETY: `current_cpu` is below `cpu_count`; caches are try-locked
// (EXCLUSIVE_CPU is false), so nothing else is promised.
unsafe impl Platform for Migrating {
    const EXCLUSIVE_CPU: bool = false;

    fn cpu_count() -> usize {
        2
    }

    fn current_cpu() -> usize {
        CPU.get()
    }

    fn irq_save() -> usize {
        0
    }

    fn irq_restore(_: usize) {}

    fn now() -> u64 {
        0
    }
}

/// Slabs of the 64-byte class.
fn slabs(a: &Allocator<MmapProvider, Migrating>) -> u64 {
    let s = a.stats();
    s.classes.iter().find(|c| c.size == 64).unwrap().slabs
}

#[test]
fn blocks_left_in_another_cpus_cache_are_taken_back_before_a_new_slab() {
    let a: Box<Allocator<MmapProvider, Migrating>> = Box::new(Allocator::new());
    let config = Config {
        profile: Profile::Balanced,
        checks: false,
        ..Config::DEFAULT
    };
    a.init(
        MmapProvider::new(1 << 30, DecommitMode::DontNeed).unwrap(),
        config,
    )
    .unwrap();
    let layout = Layout::from_size_align(64, 8).unwrap();
    for round in 0..20 {
        // On CPU 0 the thread takes 64 blocks (a slab's worth)...
        CPU.set(0);
        let blocks: Vec<_> = (0..64).map(|_| a.alloc(layout)).collect();
        assert!(blocks.iter().all(|p| !p.is_null()));
        // ...then moves to CPU 1 and frees them there, where they stay
        // cached (the cache's capacity is 64).
        CPU.set(1);
        for ptr in blocks {
            // SAFETY: allocated above with `layout`.
            unsafe { a.dealloc(ptr, layout) };
        }
        assert_eq!(slabs(&a), 1, "round {round}: {}", a.stats());
    }
}

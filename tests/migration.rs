//! A thread that moves between CPUs leaves its blocks in the cache of the
//! CPU it left. On hosted builds a class takes those back before it grows
//! by a slab, so its slabs do not ratchet up migration after migration.

mod common;

use std::alloc::Layout;

use acealloc::provider::MmapProvider;
use acealloc::{Allocator, Profile};

use common::{PretendCpus, mmap_allocator};

/// Two CPUs with try-locked caches (a hosted platform) whose current CPU
/// the test sets.
type Migrating = PretendCpus<2, false>;

/// Slabs of the 64-byte class.
fn slabs(a: &Allocator<MmapProvider, Migrating>) -> u64 {
    let s = a.stats();
    s.classes.iter().find(|c| c.size == 64).unwrap().slabs
}

#[test]
fn blocks_left_in_another_cpus_cache_are_taken_back_before_a_new_slab() {
    let a = mmap_allocator::<Migrating>(Profile::Balanced);
    let layout = Layout::from_size_align(64, 8).unwrap();
    for round in 0..20 {
        // On CPU 0 the thread takes 64 blocks (a slab's worth)...
        Migrating::run_on(0);
        let blocks: Vec<_> = (0..64).map(|_| a.alloc(layout)).collect();
        assert!(blocks.iter().all(|p| !p.is_null()));
        // ...then moves to CPU 1 and frees them there, where they stay
        // cached (the cache's capacity is 64).
        Migrating::run_on(1);
        for ptr in blocks {
            // SAFETY: allocated above with `layout`.
            unsafe { a.dealloc(ptr, layout) };
        }
        assert_eq!(slabs(&a), 1, "round {round}: {}", a.stats());
    }
}

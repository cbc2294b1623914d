//! Transfer caches: one per size class, between the per-CPU caches and the
//! central free lists (TCMalloc's `transfer_cache`).
//!
//! A transfer cache is a ring of pointers to free blocks. A CPU whose cache
//! is full hands a batch in; a CPU whose cache is empty takes the newest
//! batch out; each is one short critical section that copies pointers and
//! never touches the blocks. Cross-CPU traffic (one CPU frees what another
//! allocated) thus moves whole batches. When the ring holds more than the
//! drain threshold, its oldest blocks go back to the central free list.
//!
//! Lock rules: the lock is a leaf. It is never held while taking another
//! lock: the callers copy batches out and then go to the central list.

use core::ptr;
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::cpu_cache::Slot;
use crate::lock::Lock;
use crate::platform::Platform;
use crate::sync;

/// A per-class transfer cache.
pub(crate) struct TransferCache {
    pub ring: Lock<Ring>,
    /// The ring's length as the last lock holder left it: readable without
    /// the lock (ACE's tick sums it instead of trying 72 locks).
    pub backlog_hint: AtomicU64,
    /// Allocations and frees that no CPU cache counted: those that
    /// bypassed every CPU cache, and those that the caches' slow paths
    /// served (a refill that returned a block, a drain that cached one).
    /// Kept apart from the caches' own counters, which restartable sections
    /// add to without an atomic read-modify-write (an atomic add to those
    /// could be lost).
    pub allocs: AtomicU64,
    pub frees: AtomicU64,
}

/// The blocks of a transfer cache: `len` slots from `head`, wrapping.
pub(crate) struct Ring {
    slots: *mut Slot,
    capacity: usize,
    head: usize,
    len: usize,
}

// SAFETY: the slots array is the ring's alone, reached under its lock.
unsafe impl Send for Ring {}

impl TransferCache {
    sync::const_but_loom! {
        pub fn new() -> TransferCache {
            TransferCache {
                ring: Lock::new(Ring {
                    slots: ptr::null_mut(),
                    capacity: 0,
                    head: 0,
                    len: 0,
                }),
                backlog_hint: AtomicU64::new(0),
                allocs: AtomicU64::new(0),
                frees: AtomicU64::new(0),
            }
        }
    }

    /// Runs `f` on the ring under its lock (waiting as `Pl` waits), and
    /// publishes the length it leaves before releasing the lock.
    pub fn with_ring<Pl: Platform, R>(&self, f: impl FnOnce(&mut Ring) -> R) -> R {
        let mut ring = self.ring.lock::<Pl>();
        let result = f(&mut ring);
        self.publish(&ring);
        result
    }

    /// Publishes `ring`'s length (call before releasing its lock).
    pub fn publish(&self, ring: &Ring) {
        self.backlog_hint.store(ring.len as u64, Relaxed);
    }
}

impl Ring {
    /// Gives the ring its slots (at `init`, while empty).
    ///
    /// # Safety
    /// `slots` holds `capacity` slots that only this ring uses, for as long
    /// as it lives.
    pub unsafe fn attach(&mut self, slots: *mut Slot, capacity: usize) {
        debug_assert_eq!(self.len, 0);
        *self = Ring {
            slots,
            capacity,
            head: 0,
            len: 0,
        };
    }

    /// Blocks held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Appends as many of `blocks` as fit; returns how many (the first ones).
    pub fn put(&mut self, blocks: &[Slot]) -> usize {
        let n = blocks.len().min(self.capacity - self.len);
        if n == 0 {
            return 0;
        }
        let tail = (self.head + self.len) % self.capacity.max(1);
        let first = n.min(self.capacity - tail);
        // SAFETY: `[tail, tail + first)` and `[0, n - first)` are free slots
        // of the ring (`n` fits in the free room), disjoint from `blocks`.
        unsafe {
            ptr::copy_nonoverlapping(blocks.as_ptr(), self.slots.add(tail), first);
            ptr::copy_nonoverlapping(blocks.as_ptr().add(first), self.slots, n - first);
        }
        self.len += n;
        n
    }

    /// Moves up to `out.len()` of the newest blocks into `out` (the most
    /// likely still in some cache); returns how many.
    pub fn take_newest(&mut self, out: &mut [Slot]) -> usize {
        let n = out.len().min(self.len);
        self.len -= n;
        let start = (self.head + self.len) % self.capacity.max(1);
        self.copy_out(start, &mut out[..n]);
        n
    }

    /// Moves up to `out.len()` of the oldest blocks into `out`; returns how
    /// many.
    pub fn take_oldest(&mut self, out: &mut [Slot]) -> usize {
        let n = out.len().min(self.len);
        self.copy_out(self.head, &mut out[..n]);
        self.head = (self.head + n) % self.capacity.max(1);
        self.len -= n;
        n
    }

    /// Copies `out.len()` slots from `start` (wrapping) into `out`.
    fn copy_out(&self, start: usize, out: &mut [Slot]) {
        let n = out.len();
        if n == 0 {
            return;
        }
        let first = n.min(self.capacity - start.min(self.capacity));
        // SAFETY: the `n` slots from `start`, wrapping, are filled slots of
        // the ring (the callers take at most `len` of them).
        unsafe {
            ptr::copy_nonoverlapping(self.slots.add(start), out.as_mut_ptr(), first);
            ptr::copy_nonoverlapping(self.slots, out.as_mut_ptr().add(first), n - first);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::tests::Spinning;

    fn blocks(range: core::ops::Range<usize>) -> std::vec::Vec<Slot> {
        range.map(|i| (i * 16) as Slot).collect()
    }

    #[test]
    fn newest_out_first_oldest_drained_and_wrapping_keeps_order() {
        let mut array = std::vec![ptr::null_mut(); 8];
        let cache = TransferCache::new();
        let mut ring = cache.ring.lock::<Spinning>();
        // SAFETY: the array outlives the ring's use in this test.
        unsafe { ring.attach(array.as_mut_ptr(), 8) };
        assert_eq!(ring.put(&blocks(1..7)), 6);
        let mut out = [ptr::null_mut(); 4];
        assert_eq!(ring.take_oldest(&mut out[..3]), 3);
        assert_eq!(out[..3], blocks(1..4)[..]);
        // 3 left; 5 more wrap around the end.
        assert_eq!(ring.put(&blocks(7..20)), 5);
        assert_eq!(ring.len(), 8);
        assert_eq!(ring.take_newest(&mut out), 4);
        assert_eq!(out[..], blocks(8..12)[..]);
        assert_eq!(ring.take_oldest(&mut out), 4);
        assert_eq!(out[..], blocks(4..8)[..]);
        assert_eq!(ring.take_newest(&mut out), 0);
        cache.publish(&ring);
        drop(ring);
        assert_eq!(cache.backlog_hint.load(Relaxed), 0);
    }
}

/// loom model of cross-CPU batches (run by `cargo xtask test`'s loom step):
/// CPUs that free hand whole batches in and drain the oldest beyond the
/// threshold, as `release_batch` does; a CPU that allocates takes the
/// newest batch out, as `fetch` does; each in one critical section of the
/// real lock and ring (`--cfg loom` builds the lock on loom's atomic and
/// cell, src/sync.rs).
#[cfg(all(test, loom))]
mod loom_models {
    use super::*;
    use crate::slab::Block;
    use loom::cell::UnsafeCell;
    use loom::sync::Arc;
    use loom::thread;
    use std::vec::Vec;

    /// Ring capacity and drain threshold: small enough that a batch of two
    /// after an older block crosses the threshold and pushes it out.
    const CAPACITY: usize = 3;
    const THRESHOLD: usize = 2;

    /// Lock waiters let loom run another thread (a spinning waiter would
    /// exhaust its branch bound).
    struct Yielding;

    // SAFETY: the model's threads never use the per-CPU section.
    unsafe impl Platform for Yielding {
        const EXCLUSIVE_CPU: bool = false;
        fn cpu_count() -> usize {
            1
        }
        fn current_cpu() -> usize {
            0
        }
        fn irq_save() -> usize {
            0
        }
        fn irq_restore(_: usize) {}
        fn now() -> u64 {
            0
        }
        fn lock_wait(_: u32) {
            thread::yield_now();
        }
    }

    /// A transfer cache with its slots, and three blocks whose memory loom
    /// tracks: a block's word is what its last owner wrote (a free list
    /// link, the user's data), which the next owner must see.
    struct Shared {
        cache: TransferCache,
        _slots: Vec<Slot>,
        blocks: Vec<UnsafeCell<usize>>,
    }

    impl Shared {
        fn new() -> Shared {
            let mut slots = std::vec![ptr::null_mut(); CAPACITY];
            let cache = TransferCache::new();
            // SAFETY: the slots' buffer does not move with the vector and
            // lives as long as the cache.
            unsafe {
                cache
                    .ring
                    .lock::<Yielding>()
                    .attach(slots.as_mut_ptr(), CAPACITY)
            };
            let blocks = (0..3).map(|_| UnsafeCell::new(usize::MAX)).collect();
            Shared {
                cache,
                _slots: slots,
                blocks,
            }
        }

        fn slot(&self, id: usize) -> Slot {
            ptr::from_ref(&self.blocks[id]).cast_mut().cast::<Block>()
        }

        fn id(&self, slot: Slot) -> usize {
            let id = (0..self.blocks.len()).find(|&id| self.slot(id) == slot);
            id.expect("a block of the model")
        }

        /// Frees blocks `ids` as one batch: writes each block (as a free
        /// writes its link), then hands the batch in, draining the oldest
        /// over the threshold, until nothing moves. Returns the blocks that
        /// went back to their slabs.
        fn free_batch(&self, ids: &[usize]) -> Vec<usize> {
            for &id in ids {
                // SAFETY: a block this thread owns until it hands it in.
                self.blocks[id].with_mut(|word| unsafe { *word = id });
            }
            let batch: Vec<Slot> = ids.iter().map(|&id| self.slot(id)).collect();
            let mut blocks = &batch[..];
            let mut to_slabs = Vec::new();
            loop {
                let mut oldest = [ptr::null_mut(); 2];
                let n = self.cache.with_ring::<Yielding, _>(|ring| {
                    blocks = &blocks[ring.put(blocks)..];
                    let over = ring.len().saturating_sub(THRESHOLD).min(2);
                    ring.take_oldest(&mut oldest[..over])
                });
                if n == 0 {
                    to_slabs.extend(blocks.iter().map(|&b| self.id(b)));
                    return to_slabs;
                }
                to_slabs.extend(oldest[..n].iter().map(|&b| self.id(b)));
            }
        }

        /// Takes the newest batch (as a refill does) and uses each block:
        /// it must hold what its freeing CPU wrote. Returns the blocks.
        fn alloc_batch(&self) -> Vec<usize> {
            let mut out = [ptr::null_mut(); 2];
            let n = self
                .cache
                .with_ring::<Yielding, _>(|ring| ring.take_newest(&mut out));
            out[..n]
                .iter()
                .map(|&b| {
                    let id = self.id(b);
                    // SAFETY: the block is this thread's since it took it.
                    let word = self.blocks[id].with(|word| unsafe { *word });
                    assert_eq!(word, id, "the freeing CPU's write");
                    // SAFETY: as above.
                    self.blocks[id].with_mut(|word| unsafe { *word = usize::MAX });
                    id
                })
                .collect()
        }
    }

    /// One CPU frees a batch of two into a ring that holds an older
    /// block, which pushes the oldest out to its slab, while another CPU
    /// takes a batch: every block ends in exactly one place (taken, back in
    /// its slab, or still in the ring), the taker sees what the freeing CPU
    /// wrote, and the published backlog is the ring's length.
    #[test]
    fn batches_cross_cpus_whole_and_each_block_once() {
        loom::model(|| {
            let shared = Arc::new(Shared::new());
            // An older block, freed before the threads start.
            assert!(shared.free_batch(&[0]).is_empty());
            let producer = {
                let shared = shared.clone();
                thread::spawn(move || shared.free_batch(&[1, 2]))
            };
            let mut ids = shared.alloc_batch();
            ids.extend(producer.join().unwrap());
            let mut left = [ptr::null_mut(); CAPACITY];
            let cache = &shared.cache;
            let n = cache.with_ring::<Yielding, _>(|ring| {
                assert_eq!(cache.backlog_hint.load(Relaxed), ring.len() as u64);
                ring.take_oldest(&mut left)
            });
            ids.extend(left[..n].iter().map(|&b| shared.id(b)));
            ids.sort();
            assert_eq!(ids, [0, 1, 2], "each block once");
        });
    }
}

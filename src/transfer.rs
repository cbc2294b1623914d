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
    pub const fn new() -> TransferCache {
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

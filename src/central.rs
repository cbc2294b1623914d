//! Central free lists: one per size class, the slabs of the class
//! (TCMalloc's `central_freelist`).
//!
//! Every slab keeps its own free list ([`Slab`]). Slabs with blocks
//! available sit in one of [`BUCKETS`] lists by fullness, and allocation
//! takes from the fullest first: nearly empty slabs are left alone, so that
//! their last blocks can come back and the slab can leave. Completely free
//! slabs sit in a list of their own, a reserve kept for the class to grow
//! into again; beyond the reserve they go back to the page layer.
//!
//! Lock scope: a central-list lock covers list work only. A new slab is
//! made, and empty slabs are released, with it dropped, so neither the
//! page lock nor a system call (a new slab, stealing from other CPUs'
//! caches) ever waits inside it; only the tick's paths, which hold the
//! page lock, try central-list locks. In kernels it is only taken with
//! interrupts masked.

use core::ptr::{self, NonNull};

use crate::lock::Lock;
use crate::slab::{Block, Slab};
use crate::sync;

/// Fullness lists of partly used slabs.
pub(crate) const BUCKETS: usize = 8;

/// A per-class central free list.
pub(crate) struct CentralFreeList {
    pub slabs: Lock<Slabs>,
}

/// The slabs of one class.
pub(crate) struct Slabs {
    /// Partly used slabs, doubly linked through their descriptors; list `i`
    /// holds those with `i`/[`BUCKETS`] to (`i`+1)/[`BUCKETS`] of their
    /// blocks available (list 0: the fullest).
    partial: [*mut Slab; BUCKETS],
    /// Completely free slabs.
    empty: *mut Slab,
    /// Completely free slabs kept as a reserve (the length of `empty`).
    pub empty_slabs: usize,
    /// Slabs of this class in all.
    pub slabs: usize,
}

// SAFETY: the raw pointers are descriptors that the list owns; the state is
// only reached through the lock.
unsafe impl Send for Slabs {}

/// Where a slab belongs, by how many of its blocks are available.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    /// Every block is out: on no list.
    Full,
    Partial(usize),
    Empty,
}

/// # Safety
/// The caller holds the lock of `slab`'s central free list.
unsafe fn place(slab: &Slab) -> Place {
    // SAFETY: the caller holds the lock that guards `available`.
    let (available, capacity) = (unsafe { (*slab.guarded()).available }, slab.capacity);
    if available == 0 {
        Place::Full
    } else if available == capacity {
        Place::Empty
    } else {
        Place::Partial((available - 1) as usize * BUCKETS / capacity as usize)
    }
}

impl CentralFreeList {
    sync::const_but_loom! {
        pub fn new() -> CentralFreeList {
            CentralFreeList {
                slabs: Lock::new(Slabs {
                    partial: [ptr::null_mut(); BUCKETS],
                    empty: ptr::null_mut(),
                    empty_slabs: 0,
                    slabs: 0,
                }),
            }
        }
    }
}

impl Slabs {
    /// Moves up to `out.len()` blocks into `out`, fullest slabs first, then
    /// the reserve. Returns how many moved; fewer means the class needs a
    /// new slab.
    pub fn take(&mut self, out: &mut [*mut Block]) -> usize {
        let mut taken = 0;
        while taken < out.len() {
            let slab = match self.partial.iter().find(|s| !s.is_null()) {
                Some(&slab) => slab,
                None if !self.empty.is_null() => self.empty,
                None => break,
            };
            // SAFETY: listed slabs are live descriptors owned by this list,
            // reached under its lock.
            let (before, after) = unsafe {
                let before = place(&*slab);
                taken += (*slab).take(&mut out[taken..]);
                (before, place(&*slab))
            };
            self.replace(slab, before, after);
        }
        taken
    }

    /// Adds a fresh slab (all blocks available) to the class.
    pub fn add_slab(&mut self, slab: NonNull<Slab>) {
        self.slabs += 1;
        self.link(slab.as_ptr(), Place::Empty);
    }

    /// Gives `block` back to `slab`. Returns the slab if that made it empty
    /// and the class already keeps `reserve` empty slabs: it is off the
    /// lists then, and the caller releases it to the page layer.
    ///
    /// # Safety
    /// `block` is an out block of `slab`, a slab of this list's class.
    pub unsafe fn return_block(
        &mut self,
        slab: *mut Slab,
        block: *mut Block,
        reserve: usize,
    ) -> Option<*mut Slab> {
        // SAFETY: the caller guarantees the slab is ours and the block is
        // out; we hold the list's lock.
        let (before, after) = unsafe {
            let before = place(&*slab);
            (*slab).put(block);
            (before, place(&*slab))
        };
        if after == Place::Empty && self.empty_slabs >= reserve {
            self.unlink(slab, before);
            self.slabs -= 1;
            return Some(slab);
        }
        self.replace(slab, before, after);
        None
    }

    /// Removes one reserved empty slab, if any, for release.
    pub fn pop_empty_slab(&mut self) -> Option<*mut Slab> {
        let slab = self.empty;
        if slab.is_null() {
            return None;
        }
        self.unlink(slab, Place::Empty);
        self.slabs -= 1;
        Some(slab)
    }

    /// Moves `slab` from the list for `before` to the one for `after`.
    fn replace(&mut self, slab: *mut Slab, before: Place, after: Place) {
        if before != after {
            self.unlink(slab, before);
            self.link(slab, after);
        }
    }

    fn head(&mut self, place: Place) -> Option<&mut *mut Slab> {
        match place {
            Place::Full => None,
            Place::Partial(i) => Some(&mut self.partial[i]),
            Place::Empty => Some(&mut self.empty),
        }
    }

    fn link(&mut self, slab: *mut Slab, place: Place) {
        if place == Place::Empty {
            self.empty_slabs += 1;
        }
        let Some(head) = self.head(place) else {
            return;
        };
        // SAFETY: `slab` and the list's head are live descriptors of this
        // list, reached under its lock.
        unsafe {
            let g = (*slab).guarded();
            (*g).prev = ptr::null_mut();
            (*g).next = *head;
            if !head.is_null() {
                (*(**head).guarded()).prev = slab;
            }
        }
        *head = slab;
    }

    fn unlink(&mut self, slab: *mut Slab, place: Place) {
        if place == Place::Empty {
            self.empty_slabs -= 1;
        }
        let Some(head) = self.head(place) else {
            return;
        };
        // SAFETY: `slab` is on this list, whose neighbours are live
        // descriptors of the same class.
        unsafe {
            let g = (*slab).guarded();
            let (prev, next) = ((*g).prev, (*g).next);
            if prev.is_null() {
                *head = next;
            } else {
                (*(*prev).guarded()).next = next;
            }
            if !next.is_null() {
                (*(*next).guarded()).prev = prev;
            }
            (*g).prev = ptr::null_mut();
            (*g).next = ptr::null_mut();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::tests::Spinning;
    use crate::{PAGE_SIZE, size_class};
    use std::boxed::Box;
    use std::vec::Vec;

    #[test]
    fn the_fullest_slab_serves_first_and_empty_ones_leave_beyond_the_reserve() {
        let class = size_class::for_size(2048).unwrap();
        let pages = size_class::slab_pages(class);
        let mut memory = std::vec![0u8; 3 * pages * PAGE_SIZE + PAGE_SIZE];
        let start = (memory.as_mut_ptr() as usize).next_multiple_of(PAGE_SIZE);
        let slabs: Vec<*mut Slab> = (0..3)
            .map(|i| Box::into_raw(Box::new(Slab::new(start + i * pages * PAGE_SIZE, class))))
            .collect();
        let owner = |b: *mut Block| slabs[(b as usize - start) / (pages * PAGE_SIZE)];
        let list = CentralFreeList::new();
        let mut s = list.slabs.lock::<Spinning>();
        // SAFETY: the descriptors live until the end of the test.
        let capacity = unsafe { (*slabs[0]).capacity } as usize;
        for &slab in &slabs {
            s.add_slab(NonNull::new(slab).unwrap());
        }
        assert_eq!((s.slabs, s.empty_slabs), (3, 3));
        let mut out = std::vec![ptr::null_mut(); 3 * capacity];
        assert_eq!(s.take(&mut out), 3 * capacity);
        assert_eq!(s.empty_slabs, 0);
        // Back: all of one slab but a block, half of another.
        let (a, b) = (&out[..capacity], &out[capacity..2 * capacity]);
        for &blk in a[1..].iter().chain(&b[capacity / 2..]) {
            // SAFETY: each block was taken above and is returned once.
            assert!(unsafe { s.return_block(owner(blk), blk, 1) }.is_none());
        }
        // The fullest (half-used) slab serves before the nearly empty one.
        let mut one = [ptr::null_mut(); 1];
        assert_eq!(s.take(&mut one), 1);
        assert_eq!(owner(one[0]), owner(b[0]));
        // The last block of the nearly empty slab empties it: the reserve.
        // SAFETY: as above.
        assert!(unsafe { s.return_block(owner(a[0]), a[0], 1) }.is_none());
        assert_eq!(s.empty_slabs, 1);
        // A second empty slab is beyond a reserve of one: released.
        let rest = out[2 * capacity..]
            .iter()
            .chain(&b[1..capacity / 2])
            .chain(&one);
        let released: Vec<_> = rest
            // SAFETY: as above.
            .filter_map(|&blk| unsafe { s.return_block(owner(blk), blk, 1) })
            .collect();
        assert_eq!(released.len(), 1);
        assert_eq!(s.slabs, 2);
        // SAFETY: as above; `b[0]` is the last block still out.
        let last = unsafe { s.return_block(owner(b[0]), b[0], 1) };
        assert_eq!(last, Some(owner(b[0])));
        assert_eq!((s.slabs, s.empty_slabs), (1, 1));
        assert!(s.pop_empty_slab().is_some());
        assert_eq!((s.slabs, s.empty_slabs), (0, 0));
        assert!(s.pop_empty_slab().is_none());
        drop(s);
        for slab in slabs {
            // SAFETY: made by `Box::into_raw` above, no longer listed.
            drop(unsafe { Box::from_raw(slab) });
        }
    }
}

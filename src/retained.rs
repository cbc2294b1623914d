//! Freed page runs kept committed for reuse.
//!
//! Slabs of a class come and go as a workload breathes, and large blocks
//! are freed in bursts; every round trip through the provider costs a
//! system call (`madvise`) or page-table work, plus page faults on reuse.
//! The page layer therefore keeps freed runs, up to a byte budget set by
//! the profile: adjacent runs merge, a request takes the best-fitting run
//! (splitting off the rest), and when the budget or the slots run out the
//! least recently freed runs go back to the provider first.

use core::ptr::NonNull;

use crate::PAGE_SIZE;

/// Runs the pool can hold, whatever their size.
const SLOTS: usize = 128;

/// A run of `pages` pages at `start`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Run {
    pub start: NonNull<u8>,
    pub pages: usize,
}

impl Run {
    fn addr(&self) -> usize {
        self.start.as_ptr() as usize
    }

    fn end(&self) -> usize {
        self.addr() + self.pages * PAGE_SIZE
    }
}

/// A kept run and when it was last freed into the pool.
#[derive(Clone, Copy)]
struct Kept {
    run: Run,
    stamp: u64,
}

/// The pool: an unordered set of disjoint runs within a byte budget.
pub(crate) struct RetainedRuns {
    kept: [Option<Kept>; SLOTS],
    len: usize,
    bytes: usize,
    budget: usize,
    clock: u64,
}

impl RetainedRuns {
    pub const fn new(budget: usize) -> Self {
        RetainedRuns {
            kept: [None; SLOTS],
            len: 0,
            bytes: 0,
            budget,
            clock: 0,
        }
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    fn slots(&self) -> impl Iterator<Item = (usize, Kept)> + '_ {
        self.kept[..self.len]
            .iter()
            .enumerate()
            .filter_map(|(i, k)| k.map(|k| (i, k)))
    }

    /// Removes slot `i`, moving the last slot into its place.
    fn remove(&mut self, i: usize) -> Run {
        let kept = self.kept[i].take().expect("occupied slot");
        self.len -= 1;
        self.kept[i] = self.kept[self.len].take();
        self.bytes -= kept.run.pages * PAGE_SIZE;
        kept.run
    }

    /// Takes `pages` pages aligned to `align` from the smallest run that
    /// holds them at its start; the rest of that run stays in the pool.
    pub fn take(&mut self, pages: usize, align: usize) -> Option<Run> {
        let (i, _) = self
            .slots()
            .filter(|(_, k)| k.run.pages >= pages && k.run.addr().is_multiple_of(align))
            .min_by_key(|(_, k)| k.run.pages)?;
        let kept = self.kept[i].as_mut().expect("occupied slot");
        let run = Run {
            start: kept.run.start,
            pages,
        };
        if kept.run.pages == pages {
            self.remove(i);
        } else {
            kept.run.pages -= pages;
            // SAFETY: the remainder starts inside the kept run, which is
            // non-null memory of the provider.
            kept.run.start =
                unsafe { NonNull::new_unchecked(kept.run.start.as_ptr().add(pages * PAGE_SIZE)) };
            self.bytes -= pages * PAGE_SIZE;
        }
        Some(run)
    }

    /// Whether `pages` more pages fit in the budget and a slot.
    pub fn has_room_for(&self, pages: usize) -> bool {
        self.len < SLOTS && self.bytes + pages * PAGE_SIZE <= self.budget
    }

    /// Whether a run of `pages` pages could ever be kept.
    pub fn can_hold(&self, pages: usize) -> bool {
        pages * PAGE_SIZE <= self.budget
    }

    /// Adds a run, merging it with kept runs it touches; the caller has made
    /// room with [`pop_oldest`](Self::pop_oldest).
    pub fn push(&mut self, mut run: Run) {
        debug_assert!(self.has_room_for(run.pages));
        self.bytes += run.pages * PAGE_SIZE;
        loop {
            let touching = self
                .slots()
                .find(|(_, k)| k.run.end() == run.addr() || run.end() == k.run.addr());
            let Some((i, kept)) = touching else { break };
            // The merged run carries the neighbour's bytes, so they stay counted.
            self.remove(i);
            self.bytes += kept.run.pages * PAGE_SIZE;
            run = Run {
                start: if kept.run.addr() < run.addr() {
                    kept.run.start
                } else {
                    run.start
                },
                pages: run.pages + kept.run.pages,
            };
        }
        self.clock += 1;
        self.kept[self.len] = Some(Kept {
            run,
            stamp: self.clock,
        });
        self.len += 1;
    }

    /// Removes the least recently freed run.
    pub fn pop_oldest(&mut self) -> Option<Run> {
        let (i, _) = self.slots().min_by_key(|(_, k)| k.stamp)?;
        Some(self.remove(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(addr: usize, pages: usize) -> Run {
        Run {
            start: NonNull::new(addr as *mut u8).unwrap(),
            pages,
        }
    }

    #[test]
    fn best_fit_splits_and_honours_alignment() {
        let mut pool = RetainedRuns::new(1 << 20);
        pool.push(run(0x10_0000, 8));
        pool.push(run(0x20_1000, 2));
        assert_eq!(
            pool.take(2, PAGE_SIZE),
            Some(run(0x20_1000, 2)),
            "exact fit first"
        );
        assert_eq!(pool.take(3, 0x10_0000), Some(run(0x10_0000, 3)));
        assert_eq!(
            pool.bytes(),
            5 * PAGE_SIZE,
            "the rest of the split run stays"
        );
        assert_eq!(pool.take(5, PAGE_SIZE), Some(run(0x10_3000, 5)));
        assert_eq!(pool.take(1, PAGE_SIZE), None);
        assert_eq!(pool.bytes(), 0);
    }

    #[test]
    fn neighbours_merge_and_the_oldest_leaves_first() {
        let mut pool = RetainedRuns::new(1 << 20);
        pool.push(run(0x40_0000, 1));
        pool.push(run(0x10_2000, 2));
        pool.push(run(0x10_0000, 2)); // touches the run after it
        pool.push(run(0x10_4000, 1)); // and the merged run before it
        assert_eq!(pool.bytes(), 6 * PAGE_SIZE);
        assert_eq!(pool.take(5, PAGE_SIZE), Some(run(0x10_0000, 5)));
        assert_eq!(pool.pop_oldest(), Some(run(0x40_0000, 1)));
        assert_eq!(pool.pop_oldest(), None);
    }

    #[test]
    fn budget_and_slots_bound_what_is_kept() {
        let mut pool = RetainedRuns::new(4 * PAGE_SIZE);
        assert!(!pool.can_hold(5));
        pool.push(run(0x1000, 3));
        assert!(!pool.has_room_for(2));
        assert!(pool.has_room_for(1));
        let mut roomy = RetainedRuns::new(usize::MAX / 2);
        for i in 0..SLOTS {
            roomy.push(run(0x2000 * (i + 1), 1)); // gaps between: no merging
        }
        assert!(!roomy.has_room_for(1));
        assert_eq!(roomy.pop_oldest(), Some(run(0x2000, 1)));
        assert!(roomy.has_room_for(1));
    }
}

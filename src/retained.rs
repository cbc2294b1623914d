//! Freed page runs kept for reuse, committed or decommitted.
//!
//! Slabs of a class come and go as a workload breathes, and large blocks
//! are freed in bursts; every round trip through the provider costs a
//! system call (`madvise`) or page-table work, plus page faults on reuse.
//! The page layer therefore keeps freed runs: up to a byte budget set by
//! the profile they stay committed; beyond it the least recently freed ones
//! are decommitted but stay here, holding their address range, so that a
//! later request can recommit them instead of asking the provider for a
//! fresh run. Adjacent runs in the same state merge; a request takes the
//! best-fitting run (committed ones first), splitting off the rest; when
//! the slots run out the least recently freed runs go back to the provider.

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

    fn bytes(&self) -> usize {
        self.pages * PAGE_SIZE
    }

    /// The run from page `pages` on (the caller keeps `pages` below the length).
    fn after(&self, pages: usize) -> Run {
        Run {
            // SAFETY: the address lies inside the run, which is non-null
            // memory of the provider.
            start: unsafe { NonNull::new_unchecked(self.start.as_ptr().add(pages * PAGE_SIZE)) },
            pages: self.pages - pages,
        }
    }
}

/// A kept run, when it was last freed into the pool, and whether its pages
/// are committed.
#[derive(Clone, Copy)]
struct Kept {
    run: Run,
    stamp: u64,
    committed: bool,
}

/// The pool: an unordered set of disjoint runs.
pub(crate) struct RetainedRuns {
    kept: [Option<Kept>; SLOTS],
    len: usize,
    /// Bytes of committed runs.
    bytes: usize,
    /// Bytes of decommitted runs.
    decommitted: usize,
    /// Most bytes kept committed.
    budget: usize,
    clock: u64,
}

impl RetainedRuns {
    pub const fn new(budget: usize) -> Self {
        RetainedRuns {
            kept: [None; SLOTS],
            len: 0,
            bytes: 0,
            decommitted: 0,
            budget,
            clock: 0,
        }
    }

    /// Bytes held committed.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Bytes held decommitted.
    pub fn decommitted_bytes(&self) -> usize {
        self.decommitted
    }

    /// Changes the committed budget; the caller then brings the pool within
    /// it with [`oldest_committed`](Self::oldest_committed).
    pub fn set_budget(&mut self, budget: usize) {
        self.budget = budget;
    }

    /// Whether more bytes are committed than the budget allows.
    pub fn over_budget(&self) -> bool {
        self.bytes > self.budget
    }

    /// Whether a run of `pages` pages could be kept committed at all.
    pub fn can_hold(&self, pages: usize) -> bool {
        pages * PAGE_SIZE <= self.budget
    }

    /// Whether every slot is taken.
    pub fn is_full(&self) -> bool {
        self.len == SLOTS
    }

    /// The stamp the next pushed run gets: runs with a lower one were freed
    /// before now.
    pub fn now(&self) -> u64 {
        self.clock + 1
    }

    fn slots(&self) -> impl Iterator<Item = (usize, Kept)> + '_ {
        self.kept[..self.len]
            .iter()
            .enumerate()
            .filter_map(|(i, k)| k.map(|k| (i, k)))
    }

    fn count(&mut self, run: Run, committed: bool, add: bool) {
        let total = if committed {
            &mut self.bytes
        } else {
            &mut self.decommitted
        };
        if add {
            *total += run.bytes();
        } else {
            *total -= run.bytes();
        }
    }

    /// Removes slot `i`, moving the last slot into its place.
    fn remove(&mut self, i: usize) -> Kept {
        let kept = self.kept[i].take().expect("occupied slot");
        self.len -= 1;
        self.kept[i] = self.kept[self.len].take();
        self.count(kept.run, kept.committed, false);
        kept
    }

    /// Takes the first `pages` pages of slot `i`; the rest stays there.
    fn take_front(&mut self, i: usize, pages: usize) -> (Run, bool) {
        let kept = self.kept[i].as_mut().expect("occupied slot");
        let (run, committed) = (kept.run, kept.committed);
        if run.pages == pages {
            self.remove(i);
            return (run, committed);
        }
        kept.run = run.after(pages);
        let front = Run {
            start: run.start,
            pages,
        };
        self.count(front, committed, false);
        (front, committed)
    }

    /// Takes `pages` pages aligned to `align` from the smallest run that
    /// holds them at its start, committed runs first; the rest of that run
    /// stays in the pool. Also says whether the pages are committed.
    pub fn take(&mut self, pages: usize, align: usize) -> Option<(Run, bool)> {
        let (i, _) = self
            .slots()
            .filter(|(_, k)| k.run.pages >= pages && k.run.addr().is_multiple_of(align))
            .min_by_key(|(_, k)| (!k.committed, k.run.pages))?;
        Some(self.take_front(i, pages))
    }

    /// Takes the first `pages` pages of the kept run that starts at `addr`,
    /// if it has that many.
    pub fn take_at(&mut self, addr: usize, pages: usize) -> Option<(Run, bool)> {
        let (i, _) = self
            .slots()
            .find(|(_, k)| k.run.addr() == addr && k.run.pages >= pages)?;
        Some(self.take_front(i, pages))
    }

    /// Takes up to `most` pages from the front of the least recently freed
    /// committed run that was freed before stamp `before`.
    pub fn oldest_committed(&mut self, most: usize, before: u64) -> Option<Run> {
        let (i, kept) = self
            .slots()
            .filter(|(_, k)| k.committed && k.stamp < before)
            .min_by_key(|(_, k)| k.stamp)?;
        Some(self.take_front(i, kept.run.pages.min(most)).0)
    }

    /// Adds a run, merging it with kept runs in the same state that it
    /// touches; the caller has made room with
    /// [`pop_oldest`](Self::pop_oldest) if the pool was full.
    pub fn push(&mut self, mut run: Run, committed: bool) {
        debug_assert!(!self.is_full());
        self.count(run, committed, true);
        loop {
            let touching = self.slots().find(|(_, k)| {
                k.committed == committed && (k.run.end() == run.addr() || run.end() == k.run.addr())
            });
            let Some((i, kept)) = touching else { break };
            // The merged run carries the neighbour's bytes, so they stay counted.
            self.remove(i);
            self.count(kept.run, committed, true);
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
            committed,
        });
        self.len += 1;
    }

    /// Removes the least recently freed run; says whether it is committed.
    pub fn pop_oldest(&mut self) -> Option<(Run, bool)> {
        let (i, _) = self.slots().min_by_key(|(_, k)| k.stamp)?;
        let kept = self.remove(i);
        Some((kept.run, kept.committed))
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
        pool.push(run(0x10_0000, 8), true);
        pool.push(run(0x20_1000, 2), true);
        assert_eq!(
            pool.take(2, PAGE_SIZE),
            Some((run(0x20_1000, 2), true)),
            "exact fit first"
        );
        assert_eq!(pool.take(3, 0x10_0000), Some((run(0x10_0000, 3), true)));
        assert_eq!(
            pool.bytes(),
            5 * PAGE_SIZE,
            "the rest of the split run stays"
        );
        assert_eq!(pool.take(5, PAGE_SIZE), Some((run(0x10_3000, 5), true)));
        assert_eq!(pool.take(1, PAGE_SIZE), None);
        assert_eq!(pool.bytes(), 0);
    }

    #[test]
    fn neighbours_merge_and_the_oldest_leaves_first() {
        let mut pool = RetainedRuns::new(1 << 20);
        pool.push(run(0x40_0000, 1), true);
        pool.push(run(0x10_2000, 2), true);
        pool.push(run(0x10_0000, 2), true); // touches the run after it
        pool.push(run(0x10_4000, 1), true); // and the merged run before it
        assert_eq!(pool.bytes(), 6 * PAGE_SIZE);
        assert_eq!(pool.take(5, PAGE_SIZE), Some((run(0x10_0000, 5), true)));
        assert_eq!(pool.pop_oldest(), Some((run(0x40_0000, 1), true)));
        assert_eq!(pool.pop_oldest(), None);
    }

    #[test]
    fn committed_and_decommitted_runs_stay_apart() {
        let mut pool = RetainedRuns::new(1 << 20);
        pool.push(run(0x10_0000, 2), false);
        pool.push(run(0x10_2000, 2), true); // touches, but in another state
        assert_eq!((pool.bytes(), pool.decommitted_bytes()), (8192, 8192));
        assert_eq!(
            pool.take(2, PAGE_SIZE),
            Some((run(0x10_2000, 2), true)),
            "committed first"
        );
        assert_eq!(pool.take(1, PAGE_SIZE), Some((run(0x10_0000, 1), false)));
        assert_eq!(pool.decommitted_bytes(), PAGE_SIZE);
        assert_eq!(pool.take_at(0x10_0000, 1), None, "no run starts there now");
        assert_eq!(pool.take_at(0x10_1000, 2), None, "too short");
        assert_eq!(pool.take_at(0x10_1000, 1), Some((run(0x10_1000, 1), false)));
    }

    #[test]
    fn budget_and_slots_bound_what_is_kept_and_idle_runs_come_out_oldest_first() {
        let mut pool = RetainedRuns::new(4 * PAGE_SIZE);
        assert!(!pool.can_hold(5));
        pool.push(run(0x1000, 3), true);
        let mark = pool.now();
        pool.push(run(0x10_0000, 2), true);
        assert!(pool.over_budget());
        assert_eq!(pool.oldest_committed(2, mark), Some(run(0x1000, 2)));
        assert_eq!(pool.oldest_committed(2, mark), Some(run(0x3000, 1)));
        assert_eq!(pool.oldest_committed(2, mark), None, "freed after the mark");
        assert!(!pool.over_budget());
        let mut roomy = RetainedRuns::new(usize::MAX / 2);
        for i in 0..SLOTS {
            roomy.push(run(0x2000 * (i + 1), 1), true); // gaps between: no merging
        }
        assert!(roomy.is_full());
        assert_eq!(roomy.pop_oldest(), Some((run(0x2000, 1), true)));
        assert!(!roomy.is_full());
    }
}

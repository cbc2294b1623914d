//! Page runs inside a span, tracked in a bitmap (one bit per page, set
//! while the page is in a live run). Shared by the providers that manage an
//! address range of their own: the hosted `mmap` reservation and the
//! kernel's virtual heap range. First fit from the lowest free page keeps
//! the heap compact; the search skips whole words of busy pages at a time.

use bitvec::slice::BitSlice;

/// Free and used pages of a span.
pub struct PageRuns {
    used: &'static mut BitSlice<usize>,
    /// No free page lies below this index.
    low: usize,
}

impl PageRuns {
    /// Words of bitmap storage needed for `pages` pages.
    pub fn words_for(pages: usize) -> usize {
        pages.div_ceil(usize::BITS as usize)
    }

    /// Tracks `pages` pages in `bits` (at least [`words_for`](Self::words_for)
    /// words, all zero: every page free).
    pub fn new(bits: &'static mut [usize], pages: usize) -> PageRuns {
        PageRuns {
            used: &mut BitSlice::from_slice_mut(bits)[..pages],
            low: 0,
        }
    }

    /// The bitmap storage: its address and length in words.
    pub fn storage(&mut self) -> (*mut usize, usize) {
        let words = Self::words_for(self.used.len());
        (self.used.as_mut_bitptr().pointer(), words)
    }

    /// Pages tracked.
    pub fn pages(&self) -> usize {
        self.used.len()
    }

    /// Pages in live runs.
    pub fn used_pages(&self) -> usize {
        self.used.count_ones()
    }

    /// Takes the first `pages` free pages starting at a multiple of
    /// `align_pages`; returns the first page's index.
    pub fn alloc(&mut self, pages: usize, align_pages: usize) -> Option<usize> {
        let total = self.used.len();
        let mut at = self.low;
        let found = loop {
            at += self.used[at..].first_zero()?;
            at = at.next_multiple_of(align_pages);
            let end = at.checked_add(pages).filter(|&e| e <= total)?;
            match self.used[at..end].last_one() {
                None => break at,
                Some(busy) => at += busy + 1,
            }
        };
        self.used[found..found + pages].fill(true);
        if found == self.low {
            self.low = found + pages;
        }
        Some(found)
    }

    /// Marks `[page, page + pages)` free.
    pub fn free(&mut self, page: usize, pages: usize) {
        self.used[page..page + pages].fill(false);
        self.low = self.low.min(page);
    }

    /// Extends the run ending at `end` by `extra` pages if they are free.
    pub fn grow(&mut self, end: usize, extra: usize) -> bool {
        let to = end + extra;
        if to > self.used.len() || self.used[end..to].any() {
            return false;
        }
        self.used[end..to].fill(true);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Page runs over a bitmap it frees when dropped (`PageRuns` wants
    /// `'static` storage).
    struct Runs(core::mem::ManuallyDrop<PageRuns>, *mut [usize]);

    impl core::ops::Deref for Runs {
        type Target = PageRuns;
        fn deref(&self) -> &PageRuns {
            &self.0
        }
    }

    impl core::ops::DerefMut for Runs {
        fn deref_mut(&mut self) -> &mut PageRuns {
            &mut self.0
        }
    }

    impl Drop for Runs {
        fn drop(&mut self) {
            // SAFETY: the runs go first, then the box they borrowed, made by
            // `runs` and freed once.
            unsafe {
                core::mem::ManuallyDrop::drop(&mut self.0);
                drop(std::boxed::Box::from_raw(self.1));
            }
        }
    }

    fn runs(pages: usize) -> Runs {
        let bits = std::vec![0usize; PageRuns::words_for(pages)].into_boxed_slice();
        let bits = std::boxed::Box::into_raw(bits);
        // SAFETY: the box lives until `Runs` drops, after the `PageRuns`.
        let runs = PageRuns::new(unsafe { &mut *bits }, pages);
        Runs(core::mem::ManuallyDrop::new(runs), bits)
    }

    #[test]
    fn first_fit_reuses_freed_holes_and_honours_alignment() {
        let mut r = runs(200);
        assert_eq!(r.alloc(3, 1), Some(0));
        assert_eq!(r.alloc(2, 1), Some(3));
        assert_eq!(r.alloc(4, 8), Some(8));
        r.free(0, 3);
        assert_eq!(r.alloc(2, 1), Some(0));
        assert_eq!(r.alloc(2, 1), Some(5), "skips the busy page 3..5");
        assert_eq!(r.used_pages(), 2 + 2 + 4 + 2);
        assert_eq!(r.alloc(64, 64), Some(64));
        assert_eq!(r.alloc(100, 1), None, "no 100 free pages in a row remain");
    }

    #[test]
    fn grows_only_into_free_pages() {
        let mut r = runs(16);
        assert_eq!(r.alloc(2, 1), Some(0));
        assert_eq!(r.alloc(1, 1), Some(2));
        assert!(!r.grow(2, 1), "page 2 is taken");
        r.free(2, 1);
        assert!(r.grow(2, 3));
        assert_eq!(r.used_pages(), 5);
        assert!(!r.grow(5, 12), "past the end");
    }
}

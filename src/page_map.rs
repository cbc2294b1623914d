//! The page map: one word per page of the provider's span, leading from
//! any address to what owns it in O(1) (one subtraction, one load).
//!
//! ```text
//!   entry                    meaning
//!   0                        not ours (metadata, never used, or released)
//!   slab address | 3 + class a page of that slab, of that size class
//!                            (descriptors are 128-aligned)
//!   pages << 7 | 1           first page of a live large block of `pages` pages
//!   2                        first page of a freed large block (until reused)
//! ```
//!
//! The class beside the slab's address spares C's `free` a load from the
//! descriptor: one load of the map gives the class ([`PageMap::class_at`]).
//!
//! Entries are written under the lock that owns the page (a depot for slab
//! pages, the page layer for large blocks) before any block on the page is
//! handed out, and read without a lock.

use core::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use crate::PAGE_SIZE;
use crate::provider::Span;
use crate::size_class::{Class, NUM_CLASSES};
use crate::slab::Slab;

const TAG_MASK: usize = 127;
const LARGE: usize = 1;
const FREED_LARGE: usize = 2;
/// A slab page's tag: this plus the slab's class.
const SLAB: usize = 3;
const _: () = assert!(SLAB + NUM_CLASSES - 1 <= TAG_MASK, "a class fits in a tag");

/// What the page map says about a page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Entry {
    Unused,
    Slab { slab: *mut Slab, class: Class },
    Large { pages: usize },
    FreedLarge,
}

impl Entry {
    fn encode(self) -> usize {
        match self {
            Entry::Unused => 0,
            Entry::Slab { slab, class } => slab as usize | (SLAB + class),
            Entry::Large { pages } => (pages << 7) | LARGE,
            Entry::FreedLarge => FREED_LARGE,
        }
    }

    #[inline(always)]
    fn decode(word: usize) -> Entry {
        match word & TAG_MASK {
            0 => Entry::Unused,
            LARGE => Entry::Large { pages: word >> 7 },
            FREED_LARGE => Entry::FreedLarge,
            tag => Entry::Slab {
                slab: (word & !TAG_MASK) as *mut Slab,
                class: tag - SLAB,
            },
        }
    }
}

/// A view of the page map (the array itself lives in provider memory).
#[derive(Clone, Copy)]
pub(crate) struct PageMap {
    span: Span,
    entries: *const AtomicUsize,
}

// SAFETY: the entries are atomics and the array lives as long as the
// allocator; the view is only an address and a length.
unsafe impl Send for PageMap {}
// SAFETY: as above; all access goes through atomic loads and stores.
unsafe impl Sync for PageMap {}

impl PageMap {
    /// Bytes of map needed for `span`.
    pub fn bytes_for(span: Span) -> usize {
        span.pages() * size_of::<AtomicUsize>()
    }

    /// A map over `span` stored at `entries`.
    ///
    /// # Safety
    /// `entries` points to [`bytes_for`](Self::bytes_for)`(span)` bytes of
    /// zeroed memory that live as long as the map and serve nothing else.
    pub unsafe fn new(span: Span, entries: *mut u8) -> PageMap {
        PageMap {
            span,
            entries: entries.cast(),
        }
    }

    #[inline(always)]
    fn slot(&self, page: usize) -> &AtomicUsize {
        debug_assert!(page < self.span.pages());
        // SAFETY: `page` is inside the span, so inside the array (`new`).
        unsafe { &*self.entries.add(page) }
    }

    /// The entry for the page holding `addr`.
    #[inline(always)]
    pub fn get(&self, addr: usize) -> Entry {
        if !self.span.contains(addr) {
            return Entry::Unused;
        }
        Entry::decode(self.slot((addr - self.span.base) / PAGE_SIZE).load(Relaxed))
    }

    /// The size class of the slab holding `addr`, if a slab does (one
    /// load: the fast path of a free by address).
    #[inline(always)]
    pub fn class_at(&self, addr: usize) -> Option<Class> {
        if !self.span.contains(addr) {
            return None;
        }
        let word = self.slot((addr - self.span.base) / PAGE_SIZE).load(Relaxed);
        (word & TAG_MASK).checked_sub(SLAB)
    }

    /// Sets the entries of `pages` pages starting at page-aligned `addr`.
    pub fn set(&self, addr: usize, pages: usize, entry: Entry) {
        let first = (addr - self.span.base) / PAGE_SIZE;
        let word = entry.encode();
        for page in first..first + pages {
            self.slot(page).store(word, Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_addresses_outside_are_unused() {
        let span = Span {
            base: 0x10_0000,
            len: 16 * PAGE_SIZE,
        };
        let mut words = [0usize; 16];
        // SAFETY: `words` is zeroed, one word per page of `span`, and
        // outlives `map`.
        let map = unsafe { PageMap::new(span, words.as_mut_ptr().cast()) };
        let slab = 0x7f00_0080 as *mut Slab;
        let class = NUM_CLASSES - 1;
        map.set(span.base + PAGE_SIZE, 2, Entry::Slab { slab, class });
        map.set(span.base + 3 * PAGE_SIZE, 1, Entry::Slab { slab, class: 0 });
        map.set(span.base + 4 * PAGE_SIZE, 1, Entry::Large { pages: 9 });
        map.set(span.base + 5 * PAGE_SIZE, 1, Entry::FreedLarge);
        assert_eq!(
            map.get(span.base + PAGE_SIZE + 100),
            Entry::Slab { slab, class }
        );
        assert_eq!(
            map.get(span.base + 3 * PAGE_SIZE - 1),
            Entry::Slab { slab, class }
        );
        assert_eq!(map.class_at(span.base + PAGE_SIZE + 100), Some(class));
        assert_eq!(map.class_at(span.base + 3 * PAGE_SIZE), Some(0));
        for not_a_slab in [
            span.base,
            span.base + 4 * PAGE_SIZE,
            span.base + 5 * PAGE_SIZE,
        ] {
            assert_eq!(map.class_at(not_a_slab), None);
        }
        assert_eq!(map.class_at(span.base - 1), None);
        assert_eq!(
            map.get(span.base + 4 * PAGE_SIZE),
            Entry::Large { pages: 9 }
        );
        assert_eq!(map.get(span.base + 5 * PAGE_SIZE), Entry::FreedLarge);
        assert_eq!(map.get(span.base), Entry::Unused);
        assert_eq!(map.get(span.base - 1), Entry::Unused);
        assert_eq!(map.get(span.base + span.len), Entry::Unused);
    }
}

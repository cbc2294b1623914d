//! The page map: one word per page of the provider's span, leading from
//! any address to what owns it in O(1) (one subtraction, one load).
//!
//! ```text
//!   entry            meaning
//!   0                not ours (metadata, never used, or released)
//!   slab address     a page of that slab (descriptors are 128-aligned)
//!   pages << 7 | 1   first page of a live large block of `pages` pages
//!   2                first page of a freed large block (until reused)
//! ```
//!
//! Entries are written under the lock that owns the page (a depot for slab
//! pages, the page layer for large blocks) before any block on the page is
//! handed out, and read without a lock.

use core::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use crate::PAGE_SIZE;
use crate::provider::Span;
use crate::slab::Slab;

const TAG_MASK: usize = 127;
const LARGE: usize = 1;
const FREED_LARGE: usize = 2;

/// What the page map says about a page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Entry {
    Unused,
    Slab(*mut Slab),
    Large { pages: usize },
    FreedLarge,
}

impl Entry {
    fn encode(self) -> usize {
        match self {
            Entry::Unused => 0,
            Entry::Slab(slab) => slab as usize,
            Entry::Large { pages } => (pages << 7) | LARGE,
            Entry::FreedLarge => FREED_LARGE,
        }
    }

    #[inline(always)]
    fn decode(word: usize) -> Entry {
        match word & TAG_MASK {
            0 if word == 0 => Entry::Unused,
            0 => Entry::Slab(word as *mut Slab),
            LARGE => Entry::Large { pages: word >> 7 },
            _ => Entry::FreedLarge,
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
        map.set(span.base + PAGE_SIZE, 2, Entry::Slab(slab));
        map.set(span.base + 4 * PAGE_SIZE, 1, Entry::Large { pages: 9 });
        map.set(span.base + 5 * PAGE_SIZE, 1, Entry::FreedLarge);
        assert_eq!(map.get(span.base + PAGE_SIZE + 100), Entry::Slab(slab));
        assert_eq!(map.get(span.base + 3 * PAGE_SIZE - 1), Entry::Slab(slab));
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

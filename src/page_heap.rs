//! The page heap: every free run of pages the allocator holds, indexed by
//! size and by state, found in O(1) and coalesced with its neighbours.
//!
//! ```text
//!   span pages   ─ live ─┬─ free, dirty ──┬─ live ─┬─ free, decommitted ─┬─ ...
//!   side table      …    H(len, stamp) …  T(head)   …   H(len)  …  T(head)
//!   bins[state]   TLSF-style: a bin per length class, a bitmap of non-empty bins
//!   age list      dirty runs only, oldest first (what the purge looks at)
//! ```
//!
//! A free run has one [`RunState`]:
//! - **dirty**: freed, still committed, stamped with the time it was freed;
//! - **decommitted**: its physical memory went back (a purge), its range stays;
//! - **clean**: committed but never used since the provider handed it over.
//!
//! The side table has one [`PageEntry`] per page of the span, carved from
//! provider memory (never a heap allocation). Only the first page (head)
//! and last page (tail) of a free run carry a tag, so freeing a run finds
//! a free neighbour of the same state by looking at the page just before
//! it (a tail) and just after it (a head): adjacent free runs of one state
//! never stay apart. Runs of different states stay apart, so a purge that
//! decommits a dirty run joins it to its decommitted neighbours and one
//! later recommit covers the whole range.
//!
//! Lengths map to bins as TLSF does: exact bins below 16 pages, then eight
//! bins per power of two. A request searches the first non-empty bin whose
//! smallest length fits it (one bitmap scan over four words), so any run
//! found fits without walking a list. Everything here is page indices and
//! integer math: no pointers into the pages themselves (decommitted ones
//! must not be touched), no allocation, bounded time.
//!
//! Page indices are `u32`: a span holds fewer than 2^32 pages (16 TiB).

/// "No page": the end of a list.
const NONE: u32 = u32::MAX;

/// States of a free run, in the order reuse prefers them: dirty pages cost
/// nothing to reuse, decommitted ones a recommit (and faults), clean ones
/// untouched memory (faults, and the heap would grow).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RunState {
    /// Freed, still committed.
    Dirty = 0,
    /// Freed and decommitted.
    Decommitted = 1,
    /// Committed, never used.
    Clean = 2,
}

const STATES: usize = 3;
const REUSE_ORDER: [RunState; STATES] = [RunState::Dirty, RunState::Decommitted, RunState::Clean];

impl RunState {
    fn from_bits(bits: u32) -> RunState {
        match bits {
            0 => RunState::Dirty,
            1 => RunState::Decommitted,
            _ => RunState::Clean,
        }
    }
}

/// Tag bits of a [`PageEntry`].
const HEAD: u32 = 1;
const TAIL: u32 = 2;
const STATE_SHIFT: u32 = 2;

/// One page's entry in the side table. Meaningful only at the head and tail
/// of a free run (a one-page run is both); zero everywhere else.
#[derive(Clone, Copy, Default)]
#[repr(C)]
pub(crate) struct PageEntry {
    /// `HEAD | TAIL | state << STATE_SHIFT`; 0: not a free run's boundary.
    tag: u32,
    /// At a head: the run's length in pages. At a tail (not also a head):
    /// the head's page index.
    len_or_head: u32,
    /// Neighbours in the run's bin (heads only).
    prev: u32,
    next: u32,
    /// Neighbours in the age list (heads of dirty runs only).
    older: u32,
    newer: u32,
    /// When a dirty run was freed (`Platform::now` units).
    stamp: u64,
}

/// Bins: exact lengths 1..16, then 8 per power of two up to 2^32 pages.
const BINS: usize = 256;
const EXACT: usize = 16;
const SUB_BITS: u32 = 3;

/// The bin holding runs of `len` pages (`len >= 1`).
fn bin_of(len: usize) -> usize {
    if len < EXACT {
        return len;
    }
    let log = usize::BITS - 1 - len.leading_zeros();
    let sub = (len >> (log - SUB_BITS)) & ((1 << SUB_BITS) - 1);
    EXACT + (log as usize - 4) * (1 << SUB_BITS) + sub
}

/// The smallest length in `bin`.
fn bin_floor(bin: usize) -> usize {
    if bin < EXACT {
        return bin;
    }
    let log = (bin - EXACT) / (1 << SUB_BITS) + 4;
    let sub = (bin - EXACT) % (1 << SUB_BITS);
    ((1 << SUB_BITS) + sub) << (log - SUB_BITS as usize)
}

/// The page-weighted mean of two stamps (clock values that may wrap: the
/// mean is taken of their distances from the later one).
fn mean_stamp(a: u64, a_len: usize, b: u64, b_len: usize) -> u64 {
    let (late, early, early_len) = if b.wrapping_sub(a) as i64 >= 0 {
        (b, a, a_len)
    } else {
        (a, b, b_len)
    };
    let gap = u128::from(late.wrapping_sub(early));
    let back = gap * early_len as u128 / (a_len + b_len) as u128;
    late.wrapping_sub(back as u64)
}

/// The free runs of one state, by bin.
struct FreeSet {
    heads: [u32; BINS],
    nonempty: [u64; BINS / 64],
}

impl FreeSet {
    const fn new() -> FreeSet {
        FreeSet {
            heads: [NONE; BINS],
            nonempty: [0; BINS / 64],
        }
    }

    /// The first non-empty bin at or above `bin`.
    fn first_from(&self, bin: usize) -> Option<usize> {
        let mut word = bin / 64;
        let mut bits = self.nonempty.get(word)? & (!0u64 << (bin % 64));
        loop {
            if bits != 0 {
                return Some(word * 64 + bits.trailing_zeros() as usize);
            }
            word += 1;
            bits = *self.nonempty.get(word)?;
        }
    }

    fn set(&mut self, bin: usize, nonempty: bool) {
        let bit = 1u64 << (bin % 64);
        if nonempty {
            self.nonempty[bin / 64] |= bit;
        } else {
            self.nonempty[bin / 64] &= !bit;
        }
    }
}

/// Free runs of the span; see the module doc.
pub(crate) struct PageHeap {
    entries: *mut PageEntry,
    pages: usize,
    /// The span's first page as a page number of the address space, so
    /// that alignment is of addresses, not of indices.
    base_page: usize,
    sets: [FreeSet; STATES],
    /// The age list of dirty runs: oldest and newest heads.
    oldest: u32,
    newest: u32,
    /// Free pages held, per state.
    held: [usize; STATES],
}

// SAFETY: the table is owned by the heap (constructor contract); nothing
// in it is tied to a thread.
unsafe impl Send for PageHeap {}

impl PageHeap {
    /// Bytes of side table for `pages` pages.
    pub fn table_bytes(pages: usize) -> usize {
        pages * size_of::<PageEntry>()
    }

    /// An empty heap over `pages` pages whose first is page number
    /// `base_page` of the address space, its side table at `entries`.
    ///
    /// # Safety
    /// `entries` points to [`table_bytes`](Self::table_bytes)`(pages)` bytes
    /// of zeroed memory, aligned for `PageEntry`, that serve nothing else
    /// for the heap's life; `pages < u32::MAX`.
    pub unsafe fn new(entries: *mut PageEntry, pages: usize, base_page: usize) -> PageHeap {
        assert!(pages < NONE as usize, "a span of 2^32 pages or more");
        PageHeap {
            entries,
            pages,
            base_page,
            sets: [const { FreeSet::new() }; STATES],
            oldest: NONE,
            newest: NONE,
            held: [0; STATES],
        }
    }

    /// Free pages held in `state`.
    pub fn pages_in(&self, state: RunState) -> usize {
        self.held[state as usize]
    }

    fn at(&mut self, page: u32) -> &mut PageEntry {
        assert!((page as usize) < self.pages, "page {page} outside the span");
        // SAFETY: the page is inside the table (checked), which the heap
        // owns; the reference lives as long as `&mut self`.
        unsafe { &mut *self.entries.add(page as usize) }
    }

    fn get(&self, page: u32) -> PageEntry {
        assert!((page as usize) < self.pages, "page {page} outside the span");
        // SAFETY: as in `at`; a copy is read.
        unsafe { self.entries.add(page as usize).read() }
    }

    fn state_of(tag: u32) -> RunState {
        RunState::from_bits(tag >> STATE_SHIFT)
    }

    /// Head, length, state and stamp of the free run whose tail is the page
    /// before `page`, if any.
    fn run_ending_before(&self, page: u32) -> Option<(u32, usize, RunState, u64)> {
        let before = page.checked_sub(1)?;
        let tail = self.get(before);
        if tail.tag & TAIL == 0 {
            return None;
        }
        let head = if tail.tag & HEAD != 0 {
            before
        } else {
            tail.len_or_head
        };
        let h = self.get(head);
        Some((head, h.len_or_head as usize, Self::state_of(h.tag), h.stamp))
    }

    /// Length, state and stamp of the free run whose head is `page`, if any.
    fn run_at(&self, page: u32) -> Option<(usize, RunState, u64)> {
        if page as usize >= self.pages {
            return None;
        }
        let h = self.get(page);
        (h.tag & HEAD != 0).then(|| (h.len_or_head as usize, Self::state_of(h.tag), h.stamp))
    }

    /// Writes the boundary entries of a run and links it into its bin (and
    /// the age list's newest end, when dirty).
    fn link(&mut self, head: u32, len: usize, state: RunState, stamp: u64) {
        let tail = head + len as u32 - 1;
        let tag = (state as u32) << STATE_SHIFT;
        let bin = bin_of(len);
        let set = &mut self.sets[state as usize];
        let next = set.heads[bin];
        set.heads[bin] = head;
        set.set(bin, true);
        let newest = self.newest;
        *self.at(head) = PageEntry {
            tag: tag | HEAD | if len == 1 { TAIL } else { 0 },
            len_or_head: len as u32,
            prev: NONE,
            next,
            older: if state == RunState::Dirty {
                newest
            } else {
                NONE
            },
            newer: NONE,
            stamp,
        };
        if next != NONE {
            self.at(next).prev = head;
        }
        if len > 1 {
            *self.at(tail) = PageEntry {
                tag: tag | TAIL,
                len_or_head: head,
                ..PageEntry::default()
            };
        }
        if state == RunState::Dirty {
            match newest {
                NONE => self.oldest = head,
                n => self.at(n).newer = head,
            }
            self.newest = head;
        }
        self.held[state as usize] += len;
    }

    /// Unlinks the run at `head` from its bin (and the age list) and clears
    /// its boundary entries; returns its length, state and stamp.
    fn unlink(&mut self, head: u32) -> (usize, RunState, u64) {
        let h = self.get(head);
        debug_assert!(h.tag & HEAD != 0, "page {head} is no free run's head");
        let (len, state) = (h.len_or_head as usize, Self::state_of(h.tag));
        let set = &mut self.sets[state as usize];
        let bin = bin_of(len);
        match h.prev {
            NONE => {
                set.heads[bin] = h.next;
                if h.next == NONE {
                    set.set(bin, false);
                }
            }
            p => self.at(p).next = h.next,
        }
        if h.next != NONE {
            self.at(h.next).prev = h.prev;
        }
        if state == RunState::Dirty {
            match h.older {
                NONE => self.oldest = h.newer,
                o => self.at(o).newer = h.newer,
            }
            match h.newer {
                NONE => self.newest = h.older,
                n => self.at(n).older = h.older,
            }
        }
        *self.at(head) = PageEntry::default();
        *self.at(head + len as u32 - 1) = PageEntry::default();
        self.held[state as usize] -= len;
        (len, state, h.stamp)
    }

    /// Adds the free run `[page, page + len)` in `state`, merging it with
    /// free neighbours in the same state. A merged dirty run is stamped with
    /// the mean free time of its pages: a small young neighbour neither
    /// keeps a long idle run from its purge (as the newest stamp would) nor
    /// has a long young run purged at once (as the oldest would). Returns
    /// the merged run's head and length.
    pub fn insert(
        &mut self,
        page: usize,
        len: usize,
        state: RunState,
        stamp: u64,
    ) -> (usize, usize) {
        debug_assert!(len > 0 && page + len <= self.pages);
        let (mut head, mut len, mut stamp) = (page as u32, len, stamp);
        if let Some((left, _, s, _)) = self.run_ending_before(head)
            && s == state
        {
            let (left_len, _, left_stamp) = self.unlink(left);
            stamp = mean_stamp(stamp, len, left_stamp, left_len);
            head = left;
            len += left_len;
        }
        let end = head + len as u32;
        if let Some((_, s, _)) = self.run_at(end)
            && s == state
        {
            let (right_len, _, right_stamp) = self.unlink(end);
            stamp = mean_stamp(stamp, len, right_stamp, right_len);
            len += right_len;
        }
        self.link(head, len, state, stamp);
        (head as usize, len)
    }

    /// Takes `len` pages whose address is a multiple of `align` pages (a
    /// power of two) from a free run, preferring dirty runs, then decommitted,
    /// then clean ones; the rest of that run stays free. Returns the first
    /// page and the state the pages were in.
    pub fn take(&mut self, len: usize, align: usize) -> Option<(usize, RunState)> {
        let want = len.checked_add(align - 1)?;
        for state in REUSE_ORDER {
            if let Some(head) = self.find(state, want) {
                let first = self.base_page + head as usize;
                let start = first.next_multiple_of(align) - self.base_page;
                self.carve(head, start, len);
                return Some((start, state));
            }
        }
        None
    }

    /// The head of a run in `state` of at least `len` pages: from the first
    /// non-empty bin whose every run fits, else a fitting run in the bin of
    /// `len` itself (whose runs may be shorter; looked at first-come).
    fn find(&self, state: RunState, len: usize) -> Option<u32> {
        let set = &self.sets[state as usize];
        let own = bin_of(len);
        if own >= BINS {
            return None;
        }
        let sure = if bin_floor(own) == len { own } else { own + 1 };
        if let Some(bin) = set.first_from(sure) {
            return Some(set.heads[bin]);
        }
        let mut at = set.heads[own];
        // Bounded: a handful of candidates, then the caller asks elsewhere.
        for _ in 0..8 {
            if at == NONE {
                break;
            }
            let e = self.get(at);
            if e.len_or_head as usize >= len {
                return Some(at);
            }
            at = e.next;
        }
        None
    }

    /// Removes `[start, start + len)` from the free run at `head` (which
    /// holds it) and puts back what lies before and after it, in the run's
    /// state and with its stamp. A dirty remainder after the taken pages
    /// keeps the run's place in the age list.
    fn carve(&mut self, head: u32, start: usize, len: usize) {
        let older = self.get(head).older;
        let (run_len, state, stamp) = self.unlink(head);
        let (head, end, run_end) = (head as usize, start + len, head as usize + run_len);
        debug_assert!(head <= start && end <= run_end);
        if start > head {
            self.link(head as u32, start - head, state, stamp);
        }
        if end < run_end {
            self.link(end as u32, run_end - end, state, stamp);
            if state == RunState::Dirty && start == head {
                self.move_after(end as u32, older);
            }
        }
    }

    /// Moves the dirty run at `head` (the newest) to just after `older` in
    /// the age list (`NONE`: to the oldest end).
    fn move_after(&mut self, head: u32, older: u32) {
        debug_assert_eq!(self.newest, head);
        if older == self.newest || self.get(head).older == older {
            return;
        }
        // Off the newest end...
        let prev = self.get(head).older;
        self.newest = prev;
        if prev != NONE {
            self.at(prev).newer = NONE;
        }
        // ...and in after `older`.
        let newer = match older {
            NONE => core::mem::replace(&mut self.oldest, head),
            o => core::mem::replace(&mut self.at(o).newer, head),
        };
        let e = self.at(head);
        e.older = older;
        e.newer = newer;
        match newer {
            NONE => self.newest = head,
            n => self.at(n).older = head,
        }
    }

    /// Takes the first `len` pages of the free run that starts at `page`,
    /// if there is one that long (to grow a live run that ends there in
    /// place). Returns the state they were in.
    pub fn take_at(&mut self, page: usize, len: usize) -> Option<RunState> {
        let (run_len, state, _) = self.run_at(u32::try_from(page).ok()?)?;
        if run_len < len {
            return None;
        }
        self.carve(page as u32, page, len);
        Some(state)
    }

    /// The oldest dirty run: head, length and stamp.
    pub fn oldest_dirty(&self) -> Option<(usize, usize, u64)> {
        if self.oldest == NONE {
            return None;
        }
        let e = self.get(self.oldest);
        Some((self.oldest as usize, e.len_or_head as usize, e.stamp))
    }

    /// Takes up to `most` pages from the front of the oldest dirty run (the
    /// rest stays oldest); returns the first page and how many.
    pub fn take_oldest_dirty(&mut self, most: usize) -> Option<(usize, usize)> {
        let (head, len, _) = self.oldest_dirty()?;
        let len = len.min(most);
        self.carve(head as u32, head, len);
        Some((head, len))
    }

    /// Takes any whole free run: its head, length and state.
    pub fn pop(&mut self) -> Option<(usize, usize, RunState)> {
        for state in REUSE_ORDER {
            if let Some(bin) = self.sets[state as usize].first_from(0) {
                let head = self.sets[state as usize].heads[bin];
                let (len, state, _) = self.unlink(head);
                return Some((head as usize, len, state));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    /// A heap over `pages` pages with a real, zeroed side table.
    struct Fixture {
        heap: PageHeap,
        _table: Vec<PageEntry>,
    }

    fn heap(pages: usize) -> Fixture {
        let mut table = std::vec![PageEntry::default(); pages];
        // SAFETY: the table is zeroed, `pages` entries long, and lives in
        // the fixture next to the heap that uses it.
        let heap = unsafe { PageHeap::new(table.as_mut_ptr(), pages, 0) };
        Fixture {
            heap,
            _table: table,
        }
    }

    use RunState::{Clean, Decommitted, Dirty};

    #[test]
    fn bins_cover_every_length_and_their_floors_fit() {
        let mut last = 0;
        for len in 1..5000usize {
            let bin = bin_of(len);
            assert!(bin >= last && bin < BINS, "bins grow with length");
            assert!(bin_floor(bin) <= len && len < bin_floor(bin + 1), "{len}");
            last = bin;
        }
        for log in 4..32 {
            let len = 1usize << log;
            assert_eq!(bin_floor(bin_of(len)), len);
            assert!(bin_of((len << 1) - 1) < BINS);
        }
    }

    #[test]
    fn merged_stamps_are_the_mean_of_their_pages_even_across_a_wrap() {
        assert_eq!(mean_stamp(100, 3, 200, 1), 125);
        assert_eq!(mean_stamp(200, 1, 100, 3), 125);
        assert_eq!(
            mean_stamp(u64::MAX - 9, 1, 10, 1),
            0,
            "20 apart, across the wrap"
        );
        assert_eq!(mean_stamp(7, 5, 7, 9), 7);
    }

    #[test]
    fn reuse_prefers_dirty_then_decommitted_then_clean_and_splits() {
        let mut f = heap(64);
        let h = &mut f.heap;
        h.insert(0, 4, Clean, 0);
        h.insert(10, 4, Decommitted, 0);
        h.insert(20, 4, Dirty, 7);
        assert_eq!(h.take(2, 1), Some((20, Dirty)));
        assert_eq!(h.take(2, 1), Some((22, Dirty)));
        assert_eq!(h.take(3, 1), Some((10, Decommitted)));
        assert_eq!(
            h.take(2, 1),
            Some((0, Clean)),
            "the 1-page rest is too short"
        );
        assert_eq!(h.pages_in(Decommitted), 1);
        assert_eq!(h.pages_in(Clean), 2);
        assert_eq!(h.take(3, 1), None);
    }

    #[test]
    fn neighbours_in_one_state_coalesce_and_others_stay_apart() {
        let mut f = heap(64);
        let h = &mut f.heap;
        h.insert(4, 2, Dirty, 0);
        h.insert(8, 2, Dirty, 3);
        assert_eq!(h.insert(6, 2, Dirty, 6), (4, 6), "joins both sides");
        assert_eq!(h.oldest_dirty(), Some((4, 6, 3)), "the pages' mean stamp");
        assert_eq!(h.insert(10, 2, Decommitted, 0), (10, 2), "other state");
        assert_eq!(h.insert(2, 2, Clean, 0), (2, 2));
        assert_eq!(h.take(8, 1), None, "no state holds 8 pages in a row");
        assert_eq!(h.take(6, 1), Some((4, Dirty)));
        assert_eq!(h.insert(4, 6, Decommitted, 0), (4, 8), "joins 10..12");
        assert_eq!(h.take(8, 1), Some((4, Decommitted)));
    }

    #[test]
    fn aligned_takes_put_back_the_pieces_around_them() {
        let mut f = heap(128);
        let h = &mut f.heap;
        h.insert(3, 40, Dirty, 5);
        assert_eq!(h.take(4, 16), Some((16, Dirty)));
        assert_eq!(h.pages_in(Dirty), 36);
        assert_eq!(h.take(13, 1), Some((3, Dirty)), "the front piece");
        assert_eq!(h.take(23, 1), Some((20, Dirty)), "the back piece");
        assert_eq!(h.pop(), None);
    }

    #[test]
    fn alignment_is_of_addresses_when_the_span_starts_unaligned() {
        let mut table = std::vec![PageEntry::default(); 64];
        // SAFETY: as in `heap`; the span starts at page 3 of the address space.
        let mut h = unsafe { PageHeap::new(table.as_mut_ptr(), 64, 3) };
        h.insert(0, 64, Dirty, 0);
        assert_eq!(h.take(2, 8), Some((5, Dirty)), "page 3 + 5 = 8");
        assert_eq!(h.take(1, 4), Some((1, Dirty)), "page 3 + 1 = 4");
    }

    #[test]
    fn the_age_list_keeps_free_order_across_purges_and_growth() {
        let mut f = heap(64);
        let h = &mut f.heap;
        h.insert(0, 8, Dirty, 1);
        h.insert(20, 2, Dirty, 2);
        h.insert(30, 1, Dirty, 3);
        assert_eq!(h.take_oldest_dirty(3), Some((0, 3)));
        assert_eq!(h.oldest_dirty(), Some((3, 5, 1)), "the rest stays oldest");
        assert_eq!(h.take_oldest_dirty(99), Some((3, 5)));
        assert_eq!(h.take_at(20, 1), Some(Dirty), "grow into it");
        assert_eq!(h.oldest_dirty(), Some((21, 1, 2)));
        assert_eq!(h.take_at(30, 2), None, "too short");
        assert_eq!(h.take_at(31, 1), None, "no run starts there");
        h.unlink(21);
        assert_eq!(h.oldest_dirty(), Some((30, 1, 3)));
        h.unlink(30);
        assert_eq!(h.oldest_dirty(), None);
    }

    #[test]
    fn long_runs_are_found_from_their_bins() {
        let mut f = heap(1 << 16);
        let h = &mut f.heap;
        h.insert(0, 1000, Dirty, 0);
        h.insert(2000, 1 << 15, Dirty, 0);
        assert_eq!(h.take(1001, 1), Some((2000, Dirty)), "1000 is too short");
        // The rest of the long run is in a bin that surely fits: first.
        assert_eq!(h.take(999, 1), Some((3001, Dirty)));
        assert_eq!(h.take((1 << 15) - 2000, 1), Some((4000, Dirty)));
        // 1000 shares its bin with 960..1023: found by the bounded walk.
        assert_eq!(h.take(999, 1), Some((0, Dirty)));
        assert_eq!(h.take(1 << 15, 1), None);
    }

    /// Random inserts and takes against a page-by-page model: runs never
    /// overlap, counts agree, and no two free neighbours share a state.
    #[test]
    fn random_operations_agree_with_a_page_model() {
        const PAGES: usize = 256;
        let mut f = heap(PAGES);
        let h = &mut f.heap;
        let mut model: [Option<RunState>; PAGES] = [Some(Clean); PAGES];
        let mut live: Vec<(usize, usize)> = Vec::new();
        h.insert(0, PAGES, Clean, 0);
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        let rounds = if cfg!(miri) { 40 } else { 5000 };
        for round in 0..rounds {
            if next(2) == 0 || live.is_empty() {
                let len = 1 + next(12) as usize;
                let align = 1 << next(3);
                if let Some((page, state)) = h.take(len, align) {
                    assert_eq!(page % align, 0);
                    for (p, m) in model.iter_mut().enumerate().skip(page).take(len) {
                        assert_eq!(*m, Some(state), "round {round}: page {p}");
                        *m = None;
                    }
                    live.push((page, len));
                }
            } else {
                let (page, len) = live.swap_remove(next(live.len() as u64) as usize);
                let state = [Dirty, Decommitted][next(2) as usize];
                h.insert(page, len, state, round);
                model[page..page + len].fill(Some(state));
            }
            for state in REUSE_ORDER {
                let n = model.iter().filter(|m| **m == Some(state)).count();
                assert_eq!(h.pages_in(state), n, "round {round}");
            }
        }
        // Drain: every run is maximal (no two adjacent ones share a state)
        // and runs cover exactly the model's free pages.
        let mut runs = Vec::new();
        while let Some(run) = h.pop() {
            runs.push(run);
        }
        runs.sort_by_key(|r| r.0);
        for pair in runs.windows(2) {
            let ((a, alen, astate), (b, _, bstate)) = (pair[0], pair[1]);
            assert!(a + alen <= b);
            assert!(a + alen < b || astate != bstate, "{:?} not coalesced", pair);
        }
        for (page, len, state) in runs {
            assert!(model[page..page + len].iter().all(|m| *m == Some(state)));
            model[page..page + len].fill(None);
        }
        assert!(model.iter().all(Option::is_none));
    }
}

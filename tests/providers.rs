//! Page providers on their own: `MmapProvider` (runs, decommit in both
//! modes, in-place resize, alignment, exhaustion) and `RegionProvider`, plus
//! what the allocator over an mmap provider gives back to the OS.
//!
//! Residency is read with `mincore`, page by page, for the exact range under
//! test, so other tests running meanwhile do not disturb it.

use std::alloc::Layout;
use std::ptr::NonNull;

use acealloc::hosted::HostedPlatform;
use acealloc::provider::{DecommitMode, MmapProvider};
use acealloc::{Allocator, Config, PAGE_SIZE, PageProvider, Profile, RegionProvider};

const MODES: [DecommitMode; 2] = [DecommitMode::Free, DecommitMode::DontNeed];

/// How many of the `pages` pages at `ptr` are resident.
fn resident(ptr: NonNull<u8>, pages: usize) -> usize {
    let mut vec = vec![0u8; pages];
    // SAFETY: `ptr` is page-aligned and the range lies in a live mapping
    // (the provider's reservation); `vec` holds one byte per page.
    let r = unsafe { libc::mincore(ptr.as_ptr().cast(), pages * PAGE_SIZE, vec.as_mut_ptr()) };
    assert_eq!(r, 0, "mincore failed");
    vec.iter().filter(|&&b| b & 1 != 0).count()
}

/// The bytes of `pages` pages at `ptr`.
///
/// # Safety
/// The range is readable (a live run) and not written meanwhile.
unsafe fn bytes<'a>(ptr: NonNull<u8>, pages: usize) -> &'a mut [u8] {
    // SAFETY: the caller's contract.
    unsafe { std::slice::from_raw_parts_mut(ptr.as_ptr(), pages * PAGE_SIZE) }
}

fn page(ptr: NonNull<u8>, n: usize) -> NonNull<u8> {
    // SAFETY: callers stay inside the provider's reservation.
    unsafe { ptr.add(n * PAGE_SIZE) }
}

fn provider(bytes: usize, mode: DecommitMode) -> MmapProvider {
    MmapProvider::new(bytes, mode).expect("address space for the reservation")
}

#[test]
fn mmap_runs_are_disjoint_inside_the_span_and_reused_first_fit() {
    for mode in MODES {
        let mut p = provider(64 << 20, mode);
        let span = p.span();
        assert_eq!(span.len, 64 << 20);
        assert_eq!(span.base % PAGE_SIZE, 0);
        let a = p.alloc_pages(4, PAGE_SIZE).unwrap();
        let b = p.alloc_pages(4, PAGE_SIZE).unwrap();
        let c = p.alloc_pages(1, PAGE_SIZE).unwrap();
        let runs = [(a, 4), (b, 4), (c, 1)];
        for (i, &(r, n)) in runs.iter().enumerate() {
            let addr = r.as_ptr() as usize;
            assert!(span.contains(addr) && span.contains(addr + n * PAGE_SIZE - 1));
            assert_eq!(addr % PAGE_SIZE, 0);
            // SAFETY: a live run of `n` pages, written by this test only.
            unsafe { bytes(r, n) }.fill(i as u8 + 1);
            for &(o, m) in &runs[..i] {
                let other = o.as_ptr() as usize;
                assert!(addr >= other + m * PAGE_SIZE || other >= addr + n * PAGE_SIZE);
            }
        }
        for (i, &(r, n)) in runs.iter().enumerate() {
            // SAFETY: as above.
            assert!(unsafe { bytes(r, n) }.iter().all(|&x| x == i as u8 + 1));
        }
        // SAFETY: `a` is a live run of 4 pages, no longer used.
        unsafe { p.free_pages(a, 4) };
        assert_eq!(p.alloc_pages(4, PAGE_SIZE), Some(a), "lowest hole first");
        // SAFETY: live runs of these sizes, no longer used.
        unsafe {
            p.free_pages(a, 4);
            p.free_pages(b, 4);
            p.free_pages(c, 1);
        }
        assert_eq!(p.alloc_pages(9, PAGE_SIZE), Some(a));
    }
}

#[test]
fn mmap_free_gives_pages_back_and_fresh_runs_read_zero() {
    const { assert!(<MmapProvider as PageProvider>::ZEROED) };
    for mode in MODES {
        let mut p = provider(64 << 20, mode);
        let r = p.alloc_pages(64, PAGE_SIZE).unwrap();
        // SAFETY: a live run of 64 pages.
        unsafe { bytes(r, 64) }.fill(0xab);
        assert_eq!(resident(r, 64), 64);
        // SAFETY: live, no longer used.
        unsafe { p.free_pages(r, 64) };
        assert_eq!(resident(r, 64), 0, "{mode:?}: freed pages still resident");
        // The provider promises zeroed runs: the same pages come back clean.
        let again = p.alloc_pages(64, PAGE_SIZE).unwrap();
        assert_eq!(again, r);
        // SAFETY: a live run of 64 pages.
        assert!(unsafe { bytes(again, 64) }.iter().all(|&b| b == 0));
    }
}

#[test]
fn mmap_dontneed_decommit_drops_pages_at_once() {
    let mut p = provider(64 << 20, DecommitMode::DontNeed);
    let r = p.alloc_pages(64, PAGE_SIZE).unwrap();
    // SAFETY: a live run of 64 pages.
    unsafe { bytes(r, 64) }.fill(0xcd);
    assert_eq!(resident(r, 64), 64);

    // A part in the middle: those pages go, the others keep their contents.
    // SAFETY: pages 16..32 of a live run, holding nothing needed.
    assert!(unsafe { p.decommit(page(r, 16), 16) });
    assert_eq!(resident(r, 64), 48);
    assert_eq!(resident(page(r, 16), 16), 0);
    // SAFETY: the run is live.
    let all = unsafe { bytes(r, 64) };
    assert!(all[..16 * PAGE_SIZE].iter().all(|&b| b == 0xcd));
    assert!(all[16 * PAGE_SIZE..32 * PAGE_SIZE].iter().all(|&b| b == 0));
    assert!(all[32 * PAGE_SIZE..].iter().all(|&b| b == 0xcd));

    // The whole run, then usable again after recommit.
    // SAFETY: the whole live run, holding nothing needed.
    assert!(unsafe { p.decommit(r, 64) });
    assert_eq!(resident(r, 64), 0);
    // SAFETY: the run is live.
    assert!(unsafe { p.recommit(r, 64) });
    // SAFETY: the run is live.
    let all = unsafe { bytes(r, 64) };
    assert!(all.iter().all(|&b| b == 0), "decommitted pages read zero");
    all.fill(0x11);
    assert!(all.iter().all(|&b| b == 0x11));
    // SAFETY: live, no longer used.
    unsafe { p.free_pages(r, 64) };
}

#[test]
fn mmap_free_mode_decommit_keeps_the_range_usable() {
    let mut p = provider(64 << 20, DecommitMode::Free);
    let r = p.alloc_pages(16, PAGE_SIZE).unwrap();
    // SAFETY: a live run of 16 pages.
    unsafe { bytes(r, 16) }.fill(0x5a);
    // SAFETY: the whole live run, holding nothing needed.
    assert!(unsafe { p.decommit(r, 16) });
    // MADV_FREE: the kernel may take each page lazily; until then it keeps
    // its contents, afterwards it reads zero. Nothing else is allowed.
    for n in 0..16 {
        // SAFETY: page `n` of the live run.
        let pg = unsafe { bytes(page(r, n), 1) };
        assert!(pg.iter().all(|&b| b == 0x5a) || pg.iter().all(|&b| b == 0));
    }
    // SAFETY: the run is live.
    assert!(unsafe { p.recommit(r, 16) });
    // SAFETY: the run is live.
    let all = unsafe { bytes(r, 16) };
    all.fill(0x77);
    assert!(all.iter().all(|&b| b == 0x77));
    assert_eq!(resident(r, 16), 16);
    // SAFETY: live, no longer used.
    unsafe { p.free_pages(r, 16) };
    assert_eq!(resident(r, 16), 0);
}

/// The provider counts the system calls it makes: two maps (the
/// reservation and its bitmap) and the trims of the reservation at
/// `new`, then one `madvise` per free, decommit and shrink, none for
/// allocating or growing inside the reservation, nor for decommitting with
/// decommit off.
#[test]
fn mmap_counts_its_system_calls() {
    let mut p = provider(64 << 20, DecommitMode::DontNeed);
    let start = p.os_calls();
    assert_eq!(start.mmap, 2);
    assert!((1..=2).contains(&start.munmap), "{start:?}");
    assert_eq!(start.madvise, 0);
    let a = p.alloc_pages(8, PAGE_SIZE).unwrap();
    let b = p.alloc_pages(8, PAGE_SIZE).unwrap();
    // SAFETY: live runs of this provider, of these sizes; none is used.
    unsafe {
        assert!(p.decommit(a, 2));
        assert!(p.resize_in_place(a, 8, 4));
        p.free_pages(b, 8);
        assert!(p.resize_in_place(a, 4, 12));
        p.free_pages(a, 12);
    }
    let end = p.os_calls();
    assert_eq!((end.mmap, end.munmap), (start.mmap, start.munmap));
    assert_eq!(end.madvise, 4, "decommit, shrink, two frees");
    let mut off = provider(1 << 20, DecommitMode::Off);
    let c = off.alloc_pages(1, PAGE_SIZE).unwrap();
    // SAFETY: a live run, unused.
    assert!(!unsafe { off.decommit(c, 1) });
    assert_eq!(off.os_calls().madvise, 0);
}

#[test]
fn mmap_resize_in_place() {
    for mode in MODES {
        let mut p = provider(64 << 20, mode);
        let a = p.alloc_pages(4, PAGE_SIZE).unwrap();
        let b = p.alloc_pages(4, PAGE_SIZE).unwrap();
        assert_eq!(b, page(a, 4), "first fit puts b right after a");
        // SAFETY: a live run of 4 pages.
        unsafe { bytes(a, 4) }.fill(1);

        // Blocked by b.
        // SAFETY: `a` is a live run of 4 pages.
        assert!(!unsafe { p.resize_in_place(a, 4, 6) });
        // SAFETY: as above.
        assert!(unsafe { bytes(a, 4) }.iter().all(|&x| x == 1));

        // Free b: now a grows over it, and the new pages read zero.
        // SAFETY: `b` is live and no longer used.
        unsafe { p.free_pages(b, 4) };
        // SAFETY: `a` is a live run of 4 pages.
        assert!(unsafe { p.resize_in_place(a, 4, 8) });
        // SAFETY: `a` is now a live run of 8 pages.
        let all = unsafe { bytes(a, 8) };
        assert!(all[..4 * PAGE_SIZE].iter().all(|&x| x == 1));
        assert!(all[4 * PAGE_SIZE..].iter().all(|&x| x == 0));
        all.fill(2);
        // The grown pages are taken: the next run lies after them.
        let c = p.alloc_pages(1, PAGE_SIZE).unwrap();
        assert_eq!(c, page(a, 8));

        // Shrink: the tail goes back (unbacked) and is the next hole.
        // SAFETY: `a` is a live run of 8 pages.
        assert!(unsafe { p.resize_in_place(a, 8, 2) });
        assert_eq!(resident(page(a, 2), 6), 0);
        // SAFETY: `a` is a live run of 2 pages.
        assert!(unsafe { bytes(a, 2) }.iter().all(|&x| x == 2));
        let d = p.alloc_pages(6, PAGE_SIZE).unwrap();
        assert_eq!(d, page(a, 2));
        // SAFETY: a fresh run of 6 pages.
        assert!(unsafe { bytes(d, 6) }.iter().all(|&x| x == 0));

        // Blocked by c (and d) again; and never past the span's end.
        // SAFETY: `a` is a live run of 2 pages.
        assert!(!unsafe { p.resize_in_place(a, 2, 3) });
        let span = p.span();
        let last = NonNull::new((span.base + span.len - PAGE_SIZE) as *mut u8).unwrap();
        let tail = p.alloc_pages(span.pages() - 9, PAGE_SIZE).unwrap();
        assert_eq!(page(tail, span.pages() - 10), last);
        // SAFETY: `tail` is a live run ending at the span's end.
        assert!(!unsafe { p.resize_in_place(tail, span.pages() - 9, span.pages() - 8) });
        // SAFETY: live runs of these sizes, no longer used.
        unsafe {
            p.free_pages(a, 2);
            p.free_pages(c, 1);
            p.free_pages(d, 6);
            p.free_pages(tail, span.pages() - 9);
        }
    }
}

#[test]
fn mmap_alignment_up_to_2_mib() {
    let mut p = provider(64 << 20, DecommitMode::DontNeed);
    // One page first, so that the span's own alignment does not help.
    let first = p.alloc_pages(1, PAGE_SIZE).unwrap();
    let mut runs = Vec::new();
    for log2 in 12..=21 {
        let align = 1usize << log2;
        let r = p.alloc_pages(3, align).unwrap();
        assert_eq!(r.as_ptr() as usize % align, 0, "alignment {align}");
        runs.push(r);
    }
    // SAFETY: live runs of these sizes, no longer used.
    unsafe {
        p.free_pages(first, 1);
        for r in runs {
            p.free_pages(r, 3);
        }
    }
    // Alignments that cannot be met in a 64 MiB span fail without a panic.
    let _ = p.alloc_pages(1, PAGE_SIZE).unwrap();
    assert_eq!(p.alloc_pages(1, 1 << 30), None);
    assert_eq!(p.alloc_pages(1, 1 << 33), None);
}

#[test]
fn mmap_exhaustion_returns_none() {
    let mut p = provider(1 << 20, DecommitMode::DontNeed);
    assert_eq!(p.span().pages(), 256);
    let all = p.alloc_pages(256, PAGE_SIZE).unwrap();
    assert_eq!(p.alloc_pages(1, PAGE_SIZE), None);
    // SAFETY: live, no longer used.
    unsafe { p.free_pages(all, 256) };
    assert_eq!(p.alloc_pages(257, PAGE_SIZE), None);
    assert_eq!(p.alloc_pages(usize::MAX / PAGE_SIZE, PAGE_SIZE), None);

    let pages: Vec<_> = (0..256)
        .map(|_| p.alloc_pages(1, PAGE_SIZE).unwrap())
        .collect();
    assert_eq!(p.alloc_pages(1, PAGE_SIZE), None);
    // Every other page free: 128 pages, but no two in a row.
    for &pg in pages.iter().step_by(2) {
        // SAFETY: live single pages, no longer used.
        unsafe { p.free_pages(pg, 1) };
    }
    assert_eq!(p.alloc_pages(2, PAGE_SIZE), None);
    assert_eq!(p.alloc_pages(1, 2 * PAGE_SIZE), Some(pages[0]));
}

#[repr(align(4096))]
struct Pages([u8; 16 * PAGE_SIZE]);

#[test]
fn region_provider_trims_hands_out_and_takes_back() {
    let mut memory = Box::new(Pages([0; 16 * PAGE_SIZE]));
    // Unaligned at both ends: trimmed inward to 14 whole pages.
    // SAFETY: the memory outlives the provider and nothing else uses it.
    let mut p = unsafe { RegionProvider::new(memory.0.as_mut_ptr().add(100), 15 * PAGE_SIZE) };
    let span = p.span();
    assert_eq!(span.base, memory.0.as_ptr() as usize + PAGE_SIZE);
    assert_eq!(span.len, 14 * PAGE_SIZE);
    assert_eq!(p.free_bytes(), span.len);
    const { assert!(!<RegionProvider as PageProvider>::ZEROED) };

    let a = p.alloc_pages(3, PAGE_SIZE).unwrap();
    let b = p.alloc_pages(2, 4 * PAGE_SIZE).unwrap();
    assert_eq!(b.as_ptr() as usize % (4 * PAGE_SIZE), 0);
    assert_eq!(p.free_bytes(), span.len - 5 * PAGE_SIZE);
    // It can neither decommit nor resize.
    // SAFETY: `a` is a live run of 3 pages.
    unsafe {
        assert!(!p.decommit(a, 3));
        assert!(!p.resize_in_place(a, 3, 4));
        assert!(!p.resize_in_place(a, 3, 2));
    }
    assert_eq!(p.alloc_pages(span.pages(), PAGE_SIZE), None);
    // SAFETY: live runs of these sizes, no longer used.
    unsafe {
        p.free_pages(a, 3);
        p.free_pages(b, 2);
    }
    assert_eq!(p.free_bytes(), span.len);
    assert!(p.alloc_pages(span.pages(), PAGE_SIZE).is_some());
}

#[test]
fn region_provider_of_less_than_a_page_is_empty() {
    let mut memory = Box::new(Pages([0; 16 * PAGE_SIZE]));
    // Trimmed to whole pages, nothing is left.
    // SAFETY: the memory outlives the provider and nothing else uses it.
    let mut empty = unsafe { RegionProvider::new(memory.0.as_mut_ptr().add(1), PAGE_SIZE) };
    assert_eq!(empty.span().len, 0);
    assert_eq!(empty.free_bytes(), 0);
    assert_eq!(empty.alloc_pages(1, PAGE_SIZE), None);
}

/// Requests no provider can meet fail with null, without a panic, and a
/// realloc to such a size leaves the block as it was.
#[test]
fn allocator_refuses_impossible_requests() {
    let a: Box<Allocator<MmapProvider, HostedPlatform>> = Box::new(Allocator::new());
    a.init(provider(1 << 30, DecommitMode::DontNeed), Config::DEFAULT)
        .unwrap();
    let huge = [
        Layout::from_size_align(2 << 30, 8).unwrap(),
        Layout::from_size_align(isize::MAX as usize - PAGE_SIZE + 1, PAGE_SIZE).unwrap(),
        Layout::from_size_align(8, 1 << 30).unwrap(),
        Layout::from_size_align(8, 1 << 40).unwrap(),
    ];
    for l in huge {
        assert!(a.alloc(l).is_null(), "{l:?}");
    }
    let l = Layout::from_size_align(100, 8).unwrap();
    let p = a.alloc(l);
    // SAFETY: a fresh block of 100 bytes.
    unsafe { p.write_bytes(0x99, 100) };
    for new_size in [2 << 30, isize::MAX as usize - 7, usize::MAX - 7] {
        // SAFETY: `p` is live with `l`; an impossible size must fail cleanly.
        let q = unsafe { a.realloc(p, l, new_size) };
        assert!(q.is_null(), "realloc to {new_size}");
    }
    // SAFETY: still live with `l`, untouched.
    unsafe {
        assert!(
            std::slice::from_raw_parts(p, 100)
                .iter()
                .all(|&b| b == 0x99)
        );
        a.dealloc(p, l);
    }
    let s = a.stats();
    assert_eq!(s.live_bytes, 0, "{s}");
    assert!(s.provider.failed_calls >= 4, "{s}");
}

/// The allocator over an mmap provider with a zero purge delay: a freed
/// large block's pages leave memory at once (decommitted with
/// `MADV_DONTNEED`; `MADV_FREE` leaves them to the kernel's reclaim, so
/// there they are only counted as decommitted; with decommit off they stay
/// committed in the page heap), and large blocks grow and shrink in place.
#[test]
fn allocator_returns_large_blocks_to_the_os_and_resizes_in_place() {
    for mode in [
        DecommitMode::Free,
        DecommitMode::DontNeed,
        DecommitMode::Off,
    ] {
        let a: Box<Allocator<MmapProvider, HostedPlatform>> = Box::new(Allocator::new());
        let lean = Config {
            profile: Profile::Lean,
            decommit: mode,
            ..Config::DEFAULT
        };
        a.init(provider(1 << 30, mode), lean).unwrap();
        a.set_purge_delay_ms(0);
        // Fresh mmap pages read as zero: the page map (a word per page of
        // the span) is left unbacked and reported apart from committed memory.
        let s = a.stats();
        assert!(s.lazy_page_map_bytes >= (1 << 30) / PAGE_SIZE * size_of::<usize>());
        assert!(s.committed_bytes < s.lazy_page_map_bytes, "{s}");

        let l = Layout::from_size_align(1 << 20, PAGE_SIZE).unwrap();
        let big = NonNull::new(a.alloc(l)).unwrap();
        // SAFETY: a fresh block of 1 MiB.
        unsafe { bytes(big, 256) }.fill(0x3c);
        assert_eq!(resident(big, 256), 256);
        // SAFETY: live with `l`.
        unsafe { a.dealloc(big.as_ptr(), l) };
        let s = a.stats();
        if mode == DecommitMode::Off {
            assert_eq!(s.retained_bytes, 1 << 20, "{s}");
            assert_eq!(resident(big, 256), 256, "Off never decommits");
        } else {
            assert_eq!(s.retained_bytes, 0, "{mode:?}: {s}");
        }
        if mode == DecommitMode::Free {
            assert_eq!(s.decommitted_bytes, 1 << 20, "{s}");
        } else if mode == DecommitMode::DontNeed {
            assert_eq!(
                resident(big, 256),
                0,
                "{mode:?}: freed block still resident"
            );
        }

        let l = Layout::from_size_align(100 << 10, 8).unwrap();
        let p = a.alloc(l);
        assert!(!p.is_null());
        // SAFETY: a fresh block of 100 KiB.
        unsafe { p.write_bytes(0x42, 100 << 10) };
        let resizes = a.stats().provider.resize_calls;
        // SAFETY: live with `l`; what follows it is free or retained.
        let grown = unsafe { a.realloc(p, l, 400 << 10) };
        assert_eq!(grown, p, "grown in place");
        // The freed 1 MiB run is in the page heap: the block was carved
        // from its front and grew into the rest, without the provider.
        assert_eq!(a.stats().provider.resize_calls, resizes);
        let l = Layout::from_size_align(400 << 10, 8).unwrap();
        // SAFETY: live with `l`.
        let shrunk = unsafe { a.realloc(grown, l, 40 << 10) };
        assert_eq!(shrunk, p, "shrunk in place");
        assert!(a.stats().provider.resize_calls <= resizes + 2);
        assert_eq!(a.stats().large_live_bytes, 40 << 10);
        // The tail is freed like any run: LEAN decommits it in the chosen
        // mode, and MADV_FREE lets the kernel take the pages back lazily.
        let tail = NonNull::new(p.wrapping_add(40 << 10)).unwrap();
        if mode == DecommitMode::DontNeed {
            assert_eq!(
                resident(tail, 60),
                0,
                "{mode:?}: shrunk tail still resident"
            );
        }
        // SAFETY: 40 KiB carried over from the first fill.
        let kept = unsafe { std::slice::from_raw_parts(p, 40 << 10) };
        assert!(kept.iter().all(|&b| b == 0x42));
        // SAFETY: live with the shrunk layout.
        unsafe { a.dealloc(p, Layout::from_size_align(40 << 10, 8).unwrap()) };
        assert_eq!(a.stats().large_live_bytes, 0);
    }
}

/// BALANCED keeps a freed large block committed for reuse (for its purge
/// delay), hands the same pages out again, and `trim` gives them back.
#[test]
fn balanced_retains_freed_runs_until_trim() {
    let a: Box<Allocator<MmapProvider, HostedPlatform>> = Box::new(Allocator::new());
    a.init(provider(1 << 30, DecommitMode::DontNeed), Config::DEFAULT)
        .unwrap();
    let l = Layout::from_size_align(1 << 20, PAGE_SIZE).unwrap();
    let big = NonNull::new(a.alloc(l)).unwrap();
    // SAFETY: a fresh block of 1 MiB.
    unsafe { bytes(big, 256) }.fill(0x3c);
    // SAFETY: live with `l`.
    unsafe { a.dealloc(big.as_ptr(), l) };
    assert_eq!(resident(big, 256), 256, "kept committed");
    assert_eq!(a.stats().retained_bytes, 1 << 20);
    let calls = a.stats().provider.alloc_calls;
    assert_eq!(a.alloc(l), big.as_ptr(), "the same run again");
    assert_eq!(
        a.stats().provider.alloc_calls,
        calls,
        "without the provider"
    );
    // SAFETY: live with `l`.
    unsafe { a.dealloc(big.as_ptr(), l) };
    a.trim();
    assert_eq!(a.stats().retained_bytes, 0);
    assert_eq!(resident(big, 256), 0, "trim gave it back");
}

/// A freed run stays committed for the purge delay and is purged once it is
/// due: by `maintain`, or, in a program that never calls it, on the way
/// through a later free. Before the delay neither purges it.
#[test]
fn freed_runs_are_purged_once_the_delay_has_passed() {
    let a: Box<Allocator<MmapProvider, HostedPlatform>> = Box::new(Allocator::new());
    a.init(provider(1 << 30, DecommitMode::DontNeed), Config::DEFAULT)
        .unwrap();
    a.set_purge_delay_ms(200);
    assert_eq!(a.purge_delay_ms(), 200);
    let l = Layout::from_size_align(1 << 20, PAGE_SIZE).unwrap();
    let small = Layout::from_size_align(64 << 10, PAGE_SIZE).unwrap();
    for opportunistic in [false, true] {
        let big = NonNull::new(a.alloc(l)).unwrap();
        let other = a.alloc(small);
        // SAFETY: a fresh block of 1 MiB.
        unsafe { bytes(big, 256) }.fill(0x3c);
        // SAFETY: live with `l`.
        unsafe { a.dealloc(big.as_ptr(), l) };
        assert_eq!(a.maintain(u64::MAX), 0, "not due yet");
        assert_eq!(resident(big, 256), 256, "kept committed within the delay");
        std::thread::sleep(std::time::Duration::from_millis(250));
        if opportunistic {
            // SAFETY: live with `small`.
            unsafe { a.dealloc(other, small) };
        } else {
            assert!(a.maintain(u64::MAX) >= 256);
            // SAFETY: live with `small`.
            unsafe { a.dealloc(other, small) };
        }
        assert_eq!(resident(big, 256), 0, "purged once due ({opportunistic})");
        // The new free stays dirty, unless it joined the old run, whose
        // pages' mean age is past the delay too: then both went.
        assert!(a.stats().retained_bytes <= 64 << 10, "{}", a.stats());
        a.trim();
    }
}

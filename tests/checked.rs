//! Checked mode: double free, invalid free and layout mismatch are reported
//! through the misuse hook with the right kind and address, the operation
//! is dropped, and the allocator goes on working without corruption.
//!
//! Each scenario runs on an mmap-backed allocator of the hosted platform and
//! on a region-backed one of a single CPU. The hook records into a
//! thread-local list (each test owns its allocator and thread).
//!
//! The binary's own global allocator is `HostedAlloc`, so that
//! `hosted_aborts_on_misuse` can run it again as a child with
//! `ACEALLOC_CHECKS=1` and watch it abort on a double free.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::RefCell;
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::process::Command;

use acealloc::hosted::{HostedAlloc, HostedPlatform};
use acealloc::provider::{DecommitMode, MmapProvider};
use acealloc::{Allocator, Config, Misuse, MisuseKind, PAGE_SIZE, PageProvider, Platform};

use common::{Region, SingleCpu, check, fill};

#[global_allocator]
static GLOBAL: HostedAlloc = HostedAlloc::new();

thread_local! {
    static REPORTS: RefCell<Vec<Misuse>> = const { RefCell::new(Vec::new()) };
}

fn record(misuse: &Misuse) {
    REPORTS.with(|r| r.borrow_mut().push(*misuse));
}

fn take_reports() -> Vec<Misuse> {
    REPORTS.with(|r| r.take())
}

fn config() -> Config {
    Config {
        checks: true,
        misuse_hook: Some(record),
        ..Config::DEFAULT
    }
}

/// Asserts that exactly one misuse was reported since the last call: `kind`
/// at `addr`, with the layout passed in.
fn expect_report(kind: MisuseKind, addr: usize, layout: Layout) {
    let reports = take_reports();
    let expected = Misuse {
        kind,
        addr,
        size: layout.size(),
        align: layout.align(),
    };
    assert_eq!(reports, [expected], "expected exactly one report");
}

fn expect_no_report() {
    let reports = take_reports();
    assert!(reports.is_empty(), "unexpected reports: {reports:?}");
}

fn layout(size: usize) -> Layout {
    Layout::from_size_align(size, 8).unwrap()
}

/// Runs `scenario` on an mmap-backed allocator of the hosted platform.
fn on_mmap(scenario: impl FnOnce(&Allocator<MmapProvider, HostedPlatform>)) {
    let a: Box<Allocator<MmapProvider, HostedPlatform>> = Box::new(Allocator::new());
    let provider = MmapProvider::new(1 << 30, DecommitMode::DontNeed).unwrap();
    a.init(provider, config()).unwrap();
    scenario(&a);
    expect_no_report();
}

/// Runs `scenario` on a 2 MiB region-backed allocator of one CPU.
fn on_region(scenario: impl FnOnce(&Allocator<acealloc::RegionProvider, SingleCpu>)) {
    let region = Region::new(2 << 20, PAGE_SIZE);
    // SAFETY: the only provider of `region`; `a`, which owns it, is
    // declared after the region and so dropped before it.
    let provider = unsafe { region.provider() };
    let a: Box<Allocator<_, SingleCpu>> = Box::new(Allocator::new());
    a.init(provider, config()).unwrap();
    scenario(&a);
    expect_no_report();
}

/// Generates a module per scenario with one test per allocator.
macro_rules! on_both {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[test]
            fn mmap() {
                super::on_mmap(|a| super::$scenario(a));
            }

            #[test]
            fn region() {
                super::on_region(|a| super::$scenario(a));
            }
        }
    )*};
}

on_both!(
    double_free_small,
    double_free_large,
    invalid_free_inside_a_small_block,
    invalid_free_inside_a_large_block,
    invalid_free_of_foreign_pointers,
    layout_mismatch_small_class,
    layout_mismatch_large_block,
    layout_mismatch_between_small_and_large,
    realloc_with_a_wrong_layout_in_the_same_class,
    realloc_with_a_wrong_layout_to_another_class,
    realloc_of_a_large_block_with_a_wrong_layout,
    realloc_of_a_freed_block,
    no_report_for_valid_edge_layouts,
    sizeless_free_and_usable_size,
    sizeless_misuse,
);

/// Blocks allocated before a misuse and checked after it.
struct Witnesses(Vec<(usize, Layout, u64)>);

impl Witnesses {
    fn new<P: PageProvider + Send, Pl: Platform>(a: &Allocator<P, Pl>) -> Witnesses {
        let sizes = [16, 48, 100, 1000, 5000, 40_000, 100_000];
        Witnesses(
            sizes
                .into_iter()
                .enumerate()
                .map(|(i, size)| {
                    let l = layout(size);
                    let p = a.alloc(l);
                    assert!(!p.is_null());
                    // SAFETY: a fresh block of `size` bytes.
                    unsafe { fill(p, size, 100 + i as u64) };
                    (p as usize, l, 100 + i as u64)
                })
                .collect(),
        )
    }
}

/// After a reported (and dropped) misuse: the witnesses are intact, and
/// blocks of `misused` and of other layouts come out distinct and hold
/// their contents (a block accepted twice into a free list would be handed
/// out twice); then everything is freed without a report.
fn still_works<P: PageProvider + Send, Pl: Platform>(
    a: &Allocator<P, Pl>,
    witnesses: Witnesses,
    misused: Layout,
) {
    for &(p, l, seed) in &witnesses.0 {
        // SAFETY: the witnesses are live blocks of their layouts.
        unsafe { check(p as *const u8, l.size(), seed, "witness after misuse") };
    }
    let mut blocks = Vec::new();
    for l in [misused, layout(16), layout(700), layout(50_000)] {
        let count = (200).min((512 << 10) / l.size().max(1));
        for _ in 0..count {
            let p = a.alloc(l);
            assert!(!p.is_null(), "{l:?} after misuse");
            assert_eq!(p as usize % l.align(), 0);
            let seed = blocks.len() as u64;
            // SAFETY: a fresh block of `l.size()` bytes.
            unsafe { fill(p, l.size(), seed) };
            blocks.push((p as usize, l, seed));
        }
    }
    let mut sorted = blocks.clone();
    sorted.sort_by_key(|b| b.0);
    for pair in sorted.windows(2) {
        let ((a0, l0, _), (a1, l1, _)) = (pair[0], pair[1]);
        assert!(
            a0 + l0.size().max(1) <= a1,
            "{a0:#x} ({l0:?}) and {a1:#x} ({l1:?}) overlap after misuse"
        );
    }
    for (p, l, seed) in blocks.into_iter().chain(witnesses.0) {
        // SAFETY: live blocks of their layouts, filled with `seed`.
        unsafe {
            check(p as *const u8, l.size(), seed, "block after misuse");
            a.dealloc(p as *mut u8, l);
        }
    }
    expect_no_report();
}

fn double_free_small<P: PageProvider + Send, Pl: Platform>(a: &Allocator<P, Pl>) {
    double_free(a, 48);
}

fn double_free_large<P: PageProvider + Send, Pl: Platform>(a: &Allocator<P, Pl>) {
    double_free(a, 100_000);
}

/// A block of `size` bytes freed twice: the second free is reported.
fn double_free<P: PageProvider + Send, Pl: Platform>(a: &Allocator<P, Pl>, size: usize) {
    let w = Witnesses::new(a);
    let l = layout(size);
    let p = a.alloc(l);
    // SAFETY: the first free is valid; the second is the misuse under test,
    // which checked mode reports and drops.
    unsafe {
        a.dealloc(p, l);
        expect_no_report();
        a.dealloc(p, l);
    }
    expect_report(MisuseKind::DoubleFree, p as usize, l);
    still_works(a, w, l);
}

fn invalid_free_inside_a_small_block<P: PageProvider + Send, Pl: Platform>(a: &Allocator<P, Pl>) {
    let l = layout(64);
    misfrees_are_dropped(a, l, MisuseKind::InvalidFree, |p| {
        [8, 16, 63].map(|offset| (p.wrapping_add(offset), l))
    });
}

fn invalid_free_inside_a_large_block<P: PageProvider + Send, Pl: Platform>(a: &Allocator<P, Pl>) {
    let l = layout(100_000);
    misfrees_are_dropped(a, l, MisuseKind::InvalidFree, |p| {
        [8, PAGE_SIZE, 3 * PAGE_SIZE, 24 * PAGE_SIZE].map(|offset| (p.wrapping_add(offset), l))
    });
}

/// A live block of `l` freed as each `(pointer, layout)` that `misfrees`
/// makes of it: each is reported as `kind` and dropped, the block stays
/// intact and then frees without a report.
fn misfrees_are_dropped<P: PageProvider + Send, Pl: Platform, const N: usize>(
    a: &Allocator<P, Pl>,
    l: Layout,
    kind: MisuseKind,
    misfrees: impl FnOnce(*mut u8) -> [(*mut u8, Layout); N],
) {
    let w = Witnesses::new(a);
    let p = a.alloc(l);
    // SAFETY: a fresh block of `l.size()` bytes.
    unsafe { fill(p, l.size(), 1) };
    for (q, wrong) in misfrees(p) {
        // SAFETY: a misuse, reported and dropped.
        unsafe { a.dealloc(q, wrong) };
        expect_report(kind, q as usize, wrong);
    }
    // SAFETY: the block is still live and untouched; now freed for real.
    unsafe {
        check(p, l.size(), 1, &format!("block after {kind:?} misfrees"));
        a.dealloc(p, l);
    }
    expect_no_report();
    still_works(a, w, l);
}

fn invalid_free_of_foreign_pointers<P: PageProvider + Send, Pl: Platform>(a: &Allocator<P, Pl>) {
    let w = Witnesses::new(a);
    let mut on_stack = [0u64; 8];
    let stack = on_stack.as_mut_ptr().cast::<u8>();
    let small = layout(64);
    let large = layout(100_000);
    // SAFETY: valid layouts for the System allocator.
    let (sys_small, sys_large) = unsafe { (System.alloc(small), System.alloc(large)) };
    assert!(!sys_small.is_null() && !sys_large.is_null());
    // Inside the allocator's own memory but never a block: its page map.
    let span = a.with_provider(|p| p.span()).unwrap();
    let metadata = (span.base + 64) as *mut u8;
    for p in [stack, sys_small, sys_large, metadata] {
        for l in [small, large] {
            // SAFETY: invalid frees, reported and dropped.
            unsafe { a.dealloc(p, l) };
            expect_report(MisuseKind::InvalidFree, p as usize, l);
        }
    }
    assert_eq!(on_stack, [0; 8]);
    // SAFETY: System blocks of these layouts, still live.
    unsafe {
        System.dealloc(sys_small, small);
        System.dealloc(sys_large, large);
    }
    still_works(a, w, small);
}

fn layout_mismatch_small_class<P: PageProvider + Send, Pl: Platform>(a: &Allocator<P, Pl>) {
    // Another size class, and the same size with an alignment that moves
    // it to another class.
    misfrees_are_dropped(a, layout(24), MisuseKind::LayoutMismatch, |p| {
        [
            layout(100),
            layout(2000),
            Layout::from_size_align(24, 64).unwrap(),
        ]
        .map(|wrong| (p, wrong))
    });
}

fn layout_mismatch_large_block<P: PageProvider + Send, Pl: Platform>(a: &Allocator<P, Pl>) {
    let l = Layout::from_size_align(100_000, PAGE_SIZE).unwrap();
    // An alignment the block does not have, and sizes of other page counts.
    misfrees_are_dropped(a, l, MisuseKind::LayoutMismatch, |p| {
        let unmet_align = 1usize << ((p as usize).trailing_zeros() + 1);
        [
            Layout::from_size_align(100_000, unmet_align).unwrap(),
            layout(50_000),
            layout(200_000),
        ]
        .map(|wrong| (p, wrong))
    });
}

fn layout_mismatch_between_small_and_large<P: PageProvider + Send, Pl: Platform>(
    a: &Allocator<P, Pl>,
) {
    let w = Witnesses::new(a);
    let small = layout(64);
    let large = layout(100_000);
    let s = a.alloc(small);
    let b = a.alloc(large);
    // SAFETY: fresh blocks of these sizes.
    unsafe {
        fill(s, 64, 5);
        fill(b, 100_000, 6);
    }
    let cases = [
        (s, layout(64 * 1024)),
        (s, Layout::from_size_align(64, 2 * PAGE_SIZE).unwrap()),
        (b, layout(64)),
        (b, layout(32 * 1024)),
    ];
    for (p, wrong) in cases {
        // SAFETY: a mismatched free, reported and dropped.
        unsafe { a.dealloc(p, wrong) };
        expect_report(MisuseKind::LayoutMismatch, p as usize, wrong);
    }
    // SAFETY: both still live and untouched.
    unsafe {
        check(s, 64, 5, "small block after mismatched frees");
        check(b, 100_000, 6, "large block after mismatched frees");
        a.dealloc(s, small);
        a.dealloc(b, large);
    }
    expect_no_report();
    still_works(a, w, small);
}

/// `realloc` of a live block with a wrong old layout: reported, null, the
/// block still live and untouched.
fn realloc_misuse<P: PageProvider + Send, Pl: Platform>(
    a: &Allocator<P, Pl>,
    size: usize,
    wrong: Layout,
    new_size: usize,
) {
    let w = Witnesses::new(a);
    let l = layout(size);
    let p = a.alloc(l);
    // A neighbour as big as the wrong layout, allocated right after the
    // block: an allocator that trusted `wrong` and copied `wrong.size()`
    // bytes would read into it rather than into a fresh block (which the
    // standard library's debug checks turn into an abort of the binary).
    let neighbour = a.alloc(wrong);
    // SAFETY: a fresh block of `size` bytes.
    unsafe { fill(p, size, 7) };
    // SAFETY: a mismatched realloc, which checked mode must refuse.
    let q = unsafe { a.realloc(p, wrong, new_size) };
    // SAFETY: allocated above with `wrong`, unused.
    unsafe { a.dealloc(neighbour, wrong) };
    let reports = take_reports();
    assert_eq!(
        reports,
        [Misuse {
            kind: MisuseKind::LayoutMismatch,
            addr: p as usize,
            size: wrong.size(),
            align: wrong.align(),
        }],
        "realloc({p:p}, {wrong:?}, {new_size}) of a {size}-byte block returned {q:p}"
    );
    assert!(q.is_null(), "a refused realloc returned {q:p}");
    // SAFETY: the block is still live with `l`.
    unsafe {
        check(p, size, 7, "block after a refused realloc");
        a.dealloc(p, l);
    }
    expect_no_report();
    still_works(a, w, l);
}

fn realloc_with_a_wrong_layout_in_the_same_class<P: PageProvider + Send, Pl: Platform>(
    a: &Allocator<P, Pl>,
) {
    // A 100-byte block (class 112) claimed to be 40 bytes (class 48),
    // resized within that class.
    realloc_misuse(a, 100, layout(40), 45);
}

fn realloc_with_a_wrong_layout_to_another_class<P: PageProvider + Send, Pl: Platform>(
    a: &Allocator<P, Pl>,
) {
    // A 100-byte block claimed to be 200 bytes, grown to 300: the
    // allocator must not copy 200 bytes out of a 112-byte block.
    realloc_misuse(a, 100, layout(200), 300);
}

fn realloc_of_a_large_block_with_a_wrong_layout<P: PageProvider + Send, Pl: Platform>(
    a: &Allocator<P, Pl>,
) {
    // 10 pages claimed to be 20, grown to 25.
    realloc_misuse(a, 40_000, layout(80_000), 100_000);
}

fn realloc_of_a_freed_block<P: PageProvider + Send, Pl: Platform>(a: &Allocator<P, Pl>) {
    let w = Witnesses::new(a);
    let l = layout(100);
    for new_size in [110, 300] {
        let p = a.alloc(l);
        // SAFETY: a valid free, then a realloc of the freed block: the
        // misuse under test, which must be refused.
        let q = unsafe {
            a.dealloc(p, l);
            a.realloc(p, l, new_size)
        };
        let reports = take_reports();
        assert_eq!(
            reports,
            [Misuse {
                kind: MisuseKind::UseAfterFree,
                addr: p as usize,
                size: 100,
                align: 8,
            }],
            "realloc of a freed block to {new_size} returned {q:p}"
        );
        assert!(q.is_null(), "realloc of a freed block returned {q:p}");
    }
    still_works(a, w, l);
}

/// Valid uses at the edges of the layout rules raise no report: zero-sized
/// blocks (small, and large through an alignment above a page), sizes at
/// class and page boundaries, and reallocs between them in both directions.
fn no_report_for_valid_edge_layouts<P: PageProvider + Send, Pl: Platform>(a: &Allocator<P, Pl>) {
    let w = Witnesses::new(a);
    let sizes = [0, 1, 16, 17, 4096, 4097, 32 * 1024, 32 * 1024 + 1];
    for align in [1, 16, 4096, 2 * PAGE_SIZE, 4 * PAGE_SIZE] {
        for &size in &sizes {
            let l = Layout::from_size_align(size, align).unwrap();
            let p = a.alloc(l);
            assert!(!p.is_null(), "{l:?}");
            assert_eq!(p as usize % align, 0);
            // SAFETY: a fresh block of `size` bytes.
            unsafe { fill(p, size, 11) };
            let mut cur = (p, l);
            for &new_size in sizes.iter().rev().filter(|&&s| s > 0) {
                // SAFETY: `cur` is live with its layout; `new_size` > 0.
                let q = unsafe { a.realloc(cur.0, cur.1, new_size) };
                assert!(!q.is_null(), "realloc of {:?} to {new_size}", cur.1);
                assert_eq!(q as usize % align, 0);
                let kept = cur.1.size().min(new_size).min(size);
                // SAFETY: `kept` bytes carried over from the first fill.
                unsafe { check(q, kept, 11, "edge realloc") };
                cur = (q, Layout::from_size_align(new_size, align).unwrap());
            }
            // SAFETY: live with its layout.
            unsafe { a.dealloc(cur.0, cur.1) };
            expect_no_report();
        }
    }
    still_works(a, w, layout(0));
}

/// Child mode, selected by this variable: the misuse to commit.
const CHILD: &str = "ACEALLOC_TEST_CHILD";

/// In a normal run, does nothing. In a child started by
/// `hosted_aborts_on_misuse`, commits the misuse named by `CHILD` through
/// the global allocator, which must abort before this returns.
#[test]
fn hosted_child() {
    let Ok(mode) = std::env::var(CHILD) else {
        return;
    };
    let (l, wrong) = match mode.as_str() {
        "double-free-small" => (layout(48), layout(48)),
        "double-free-large" => (layout(100_000), layout(100_000)),
        "layout-mismatch" => (layout(48), layout(1000)),
        other => panic!("unknown child mode {other}"),
    };
    // SAFETY: a valid layout.
    let p = unsafe { std::alloc::alloc(l) };
    assert!(!p.is_null());
    let mut err = std::io::stderr();
    writeln!(err, "child block {:#x}", p as usize).unwrap();
    err.flush().unwrap();
    // SAFETY: for "double-free-*", a valid free then the misuse; for
    // "layout-mismatch", only the misuse. Checked mode aborts at the misuse.
    unsafe {
        if mode.starts_with("double-free") {
            std::alloc::dealloc(p, l);
        }
        std::alloc::dealloc(p, wrong);
    }
    writeln!(err, "child survived").unwrap();
    std::process::exit(0);
}

/// `HostedAlloc` with `ACEALLOC_CHECKS=1` reports misuse on stderr in the
/// documented format and aborts.
#[test]
fn hosted_aborts_on_misuse() {
    let exe = std::env::current_exe().unwrap();
    let cases = [
        ("double-free-small", "double free", 48, 8),
        ("double-free-large", "double free", 100_000, 8),
        ("layout-mismatch", "layout mismatch", 1000, 8),
    ];
    for (mode, kind, size, align) in cases {
        let out = Command::new(&exe)
            .args(["hosted_child", "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD, mode)
            .env("ACEALLOC_CHECKS", "1")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGABRT),
            "{mode}: child {:?}, stderr:\n{stderr}",
            out.status
        );
        let addr = stderr
            .lines()
            .find_map(|l| l.strip_prefix("child block "))
            .unwrap_or_else(|| panic!("{mode}: no block address in:\n{stderr}"));
        let report = format!("acealloc: {kind} of {addr} (size {size}, align {align})");
        assert!(
            stderr.lines().any(|l| l == report),
            "{mode}: no line {report:?} in:\n{stderr}"
        );
        assert!(!stderr.contains("child survived"));
    }
}

/// Asserts one report since the last call: `kind` at `addr`, from a call
/// that passed no layout (C's `free`, `realloc`, `malloc_usable_size`).
fn expect_unsized_report(kind: MisuseKind, addr: usize) {
    let reports = take_reports();
    let expected = Misuse {
        kind,
        addr,
        size: 0,
        align: 0,
    };
    assert_eq!(reports, [expected], "expected exactly one report");
}

/// C's entry points: the page map gives each block's usable size and
/// layout (over-aligned large runs of a few pages included), `free` and
/// `realloc_unsized` need no layout, and nothing is reported for valid use.
fn sizeless_free_and_usable_size<P: PageProvider + Send, Pl: Platform>(a: &Allocator<P, Pl>) {
    let w = Witnesses::new(a);
    let layouts = [
        layout(0),
        layout(1),
        layout(100),
        layout(4096),
        layout(32 * 1024),
        layout(32 * 1024 + 1),
        layout(300_000),
        Layout::from_size_align(100, 64).unwrap(),
        Layout::from_size_align(64, 2 * PAGE_SIZE).unwrap(),
        Layout::from_size_align(3 * PAGE_SIZE, 4 * PAGE_SIZE).unwrap(),
    ];
    for (i, l) in layouts.into_iter().enumerate() {
        let p = a.alloc(l);
        assert!(!p.is_null(), "{l:?}");
        let usable = a.usable_size(p).expect("a live block has a usable size");
        assert!(usable >= l.size(), "{l:?}: usable {usable}");
        let found = a.layout_of(p).unwrap();
        assert_eq!(found.size(), usable, "{l:?}");
        // SAFETY: every usable byte is the block's.
        unsafe { fill(p, usable, i as u64) };
        // SAFETY: a live block, resized without its layout.
        let q = unsafe { a.realloc_unsized(p, usable + 1) };
        assert!(!q.is_null());
        // SAFETY: `q` holds the first `usable` bytes of the old block.
        unsafe { check(q, usable, i as u64, "contents after realloc_unsized") };
        // SAFETY: a live block, freed once without its layout.
        unsafe { a.free(q) };
        expect_no_report();
    }
    still_works(a, w, layout(100));
}

/// Misuse through the layout-less entry points: reported with its kind and
/// address, dropped, and the allocator goes on working.
fn sizeless_misuse<P: PageProvider + Send, Pl: Platform>(a: &Allocator<P, Pl>) {
    let w = Witnesses::new(a);
    let small = a.alloc(layout(64));
    let large = a.alloc(layout(100_000));
    // SAFETY: misuses, each reported and dropped.
    unsafe {
        for p in [small.wrapping_add(16), small.wrapping_add(1)] {
            a.free(p);
            expect_unsized_report(MisuseKind::InvalidFree, p as usize);
        }
        for p in [large.wrapping_add(64), large.wrapping_add(2 * PAGE_SIZE)] {
            a.free(p);
            expect_unsized_report(MisuseKind::InvalidFree, p as usize);
            assert_eq!(a.usable_size(p), None);
            expect_unsized_report(MisuseKind::InvalidFree, p as usize);
        }
        for p in [small, large] {
            a.free(p);
            expect_no_report();
            a.free(p);
            expect_unsized_report(MisuseKind::DoubleFree, p as usize);
            assert_eq!(a.usable_size(p), None);
            expect_unsized_report(MisuseKind::UseAfterFree, p as usize);
            assert!(a.realloc_unsized(p, 10).is_null());
            expect_unsized_report(MisuseKind::UseAfterFree, p as usize);
        }
    }
    still_works(a, w, layout(64));
}

/// `lock_all` (before `fork`) holds every allocation back until
/// `unlock_all`: a thread that allocates meanwhile waits, then proceeds.
#[test]
fn lock_all_holds_allocations_until_unlock_all() {
    let a: Box<Allocator<MmapProvider, HostedPlatform>> = Box::new(Allocator::new());
    let provider = MmapProvider::new(1 << 30, DecommitMode::DontNeed).unwrap();
    a.init(provider, Config::DEFAULT).unwrap();
    let done = std::sync::atomic::AtomicUsize::new(0);
    a.lock_all();
    std::thread::scope(|s| {
        s.spawn(|| {
            for l in [layout(48), layout(100_000)] {
                let p = a.alloc(l);
                assert!(!p.is_null());
                // SAFETY: allocated just above with `l`.
                unsafe { a.dealloc(p, l) };
                done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        });
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert_eq!(
            done.load(std::sync::atomic::Ordering::SeqCst),
            0,
            "an allocation went through while every lock was held"
        );
        // SAFETY: this thread called `lock_all` above.
        unsafe { a.unlock_all() };
    });
    assert_eq!(done.load(std::sync::atomic::Ordering::SeqCst), 2);
}

//! Checked mode against misuse: valid operations mixed with double frees,
//! interior and foreign pointers, frees and reallocs with the wrong layout,
//! on a region heap or the hosted heap. Every misuse must be reported (once,
//! naming the pointer) and change nothing: no valid operation is reported,
//! a misused realloc returns null, and every live block keeps its contents.
#![no_main]

use std::alloc::Layout;
use std::cell::RefCell;

use acealloc::hosted::HostedPlatform;
use acealloc::provider::MmapProvider;
use acealloc::{Allocator, Misuse, PAGE_SIZE, PageProvider, Platform, RegionProvider, size_class};
use acealloc_fuzz::{Op, PretendCpus, Region, Shadow, check, config, may_fail, size};
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Clone, Copy, Debug)]
enum Step {
    Valid(Op),
    /// Frees a block freed before (and not handed out again since).
    DoubleFree {
        pick: u16,
    },
    /// Frees a live block at `offset` bytes past its start.
    Interior {
        pick: u16,
        offset: u16,
    },
    /// Frees a live block with another size.
    WrongLayout {
        pick: u16,
        size: u16,
    },
    /// Reallocs a block freed before.
    ReallocFreed {
        pick: u16,
        size: u16,
    },
    /// Reallocs a live block, passing another size as its old one.
    ReallocWrongLayout {
        pick: u16,
        size: u16,
        new_size: u16,
    },
    /// Frees an address `offset` bytes into the heap's span that is no
    /// live block, or memory the heap never owned.
    Foreign {
        offset: u32,
        outside: bool,
    },
}

#[derive(Arbitrary, Debug)]
struct Input {
    hosted: bool,
    profile: u8,
    steps: Vec<Step>,
}

thread_local! {
    static REPORTS: RefCell<Vec<Misuse>> = const { RefCell::new(Vec::new()) };
}

fn record(misuse: &Misuse) {
    REPORTS.with_borrow_mut(|r| r.push(*misuse));
}

fn reports() -> Vec<Misuse> {
    REPORTS.with_borrow_mut(std::mem::take)
}

/// Pages of a large block of `layout` (the allocator's own rule).
fn large_pages(layout: Layout) -> usize {
    layout.size().div_ceil(PAGE_SIZE).max(1)
}

/// Whether checked mode can tell `wrong` from `right`, the layout a block
/// was allocated with: a different size class, a different large-block
/// page count, or small against large. Same-class sizes are the same
/// block to the allocator and are not misuse it promises to catch.
fn detectable(right: Layout, wrong: Layout) -> bool {
    match (size_class::for_layout(right), size_class::for_layout(wrong)) {
        (Some(a), Some(b)) => a != b,
        (None, None) => large_pages(right) != large_pages(wrong),
        _ => true,
    }
}

struct Fuzz<'h, P: PageProvider + Send, Pl: Platform> {
    heap: &'h Allocator<P, Pl>,
    model: Shadow,
    /// Blocks freed and not handed out again since.
    freed: Vec<(usize, Layout)>,
    bounds: (usize, usize),
    exhaustible: bool,
    /// Memory the heap never owned.
    outside: Box<[u64; 64]>,
}

impl<P: PageProvider + Send, Pl: Platform> Fuzz<'_, P, Pl> {
    /// # Safety
    /// `ptr` is a block the heap just returned for `layout`.
    unsafe fn add(&mut self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract.
        unsafe { self.model.add(ptr, layout, self.bounds) };
        self.freed.retain(|&(addr, _)| addr != ptr as usize);
    }

    /// Runs a valid operation; nothing may be reported.
    fn valid(&mut self, op: Op) {
        match op {
            Op::Alloc { size: s, align: a } => {
                let Ok(layout) = Layout::from_size_align(size(s), acealloc_fuzz::align(a)) else {
                    return;
                };
                let ptr = self.heap.alloc(layout);
                if ptr.is_null() {
                    assert!(may_fail(layout, self.exhaustible), "null for {layout:?}");
                } else {
                    // SAFETY: just returned for `layout`.
                    unsafe { self.add(ptr, layout) };
                }
            }
            Op::Realloc { pick, size: s } => {
                let Some((addr, live)) = self.model.pick(pick) else {
                    return;
                };
                let new_layout = Layout::from_size_align(size(s), live.layout.align()).unwrap();
                // SAFETY: a live block allocated with `live.layout`.
                let ptr = unsafe { self.heap.realloc(addr as *mut u8, live.layout, size(s)) };
                if ptr.is_null() {
                    assert!(
                        may_fail(new_layout, self.exhaustible),
                        "null for {new_layout:?}"
                    );
                    return;
                }
                let kept = live.layout.size().min(new_layout.size());
                // SAFETY: realloc preserved the first `kept` bytes.
                unsafe { check(ptr, kept, live.seed, "realloc") };
                self.model.live.remove(&addr);
                if ptr as usize != addr {
                    self.freed.push((addr, live.layout));
                }
                // SAFETY: just returned for `new_layout`.
                unsafe { self.add(ptr, new_layout) };
            }
            Op::Free { pick } => {
                let Some((addr, live)) = self.model.pick(pick) else {
                    return;
                };
                // SAFETY: a live block of the model.
                unsafe { check(addr as *const u8, live.layout.size(), live.seed, "free") };
                self.model.live.remove(&addr);
                // SAFETY: a live block allocated with `live.layout`.
                unsafe { self.heap.dealloc(addr as *mut u8, live.layout) };
                self.freed.push((addr, live.layout));
                if self.freed.len() > 64 {
                    self.freed.remove(0);
                }
            }
            Op::SwitchCpu { cpu } => PretendCpus::<2>::switch(cpu),
            Op::Trim => self.heap.trim(),
        }
        let got = reports();
        assert!(got.is_empty(), "{op:?} reported as misuse: {got:?}");
    }

    /// Frees `addr` with `layout`, which must be reported.
    fn bad_free(&mut self, addr: usize, layout: Layout, what: &str) {
        // SAFETY: not sound in general, but checked mode verifies the
        // pointer against the page map and the live bits before it touches
        // anything, which is what this target tests.
        unsafe { self.heap.dealloc(addr as *mut u8, layout) };
        self.expect_report(addr, what);
    }

    fn expect_report(&mut self, addr: usize, what: &str) {
        let got = reports();
        assert!(
            got.len() == 1 && got[0].addr == addr,
            "{what} of {addr:#x}: reports {got:?}"
        );
        self.model.check_all(what);
    }

    fn step(&mut self, step: Step) {
        match step {
            Step::Valid(op) => self.valid(op),
            Step::DoubleFree { pick } => {
                if self.freed.is_empty() {
                    return;
                }
                let (addr, layout) = self.freed[usize::from(pick) % self.freed.len()];
                self.bad_free(addr, layout, "double free");
            }
            Step::Interior { pick, offset } => {
                let Some((addr, live)) = self.model.pick(pick) else {
                    return;
                };
                if live.layout.size() < 2 {
                    return;
                }
                let offset = 1 + usize::from(offset) % (live.layout.size() - 1);
                self.bad_free(addr + offset, live.layout, "interior free");
            }
            Step::WrongLayout { pick, size: s } => {
                let Some((addr, live)) = self.model.pick(pick) else {
                    return;
                };
                let Ok(wrong) = Layout::from_size_align(size(s), live.layout.align()) else {
                    return;
                };
                if detectable(live.layout, wrong) {
                    self.bad_free(addr, wrong, "free with a wrong layout");
                }
            }
            Step::ReallocFreed { pick, size: s } => {
                if self.freed.is_empty() {
                    return;
                }
                let (addr, layout) = self.freed[usize::from(pick) % self.freed.len()];
                // SAFETY: as in `bad_free`: checked mode verifies first.
                let ptr = unsafe { self.heap.realloc(addr as *mut u8, layout, size(s)) };
                assert!(ptr.is_null(), "realloc of freed {addr:#x} returned {ptr:p}");
                self.expect_report(addr, "realloc of a freed block");
            }
            Step::ReallocWrongLayout {
                pick,
                size: s,
                new_size,
            } => {
                let Some((addr, live)) = self.model.pick(pick) else {
                    return;
                };
                let Ok(wrong) = Layout::from_size_align(size(s), live.layout.align()) else {
                    return;
                };
                if !detectable(live.layout, wrong) {
                    return;
                }
                // SAFETY: as in `bad_free`: checked mode verifies first.
                let ptr = unsafe { self.heap.realloc(addr as *mut u8, wrong, size(new_size)) };
                assert!(
                    ptr.is_null(),
                    "realloc with {wrong:?} of {addr:#x} returned {ptr:p}"
                );
                self.expect_report(addr, "realloc with a wrong layout");
            }
            Step::Foreign { offset, outside } => {
                let addr = if outside {
                    self.outside.as_ptr() as usize + offset as usize % 512
                } else {
                    self.bounds.0 + offset as usize % (self.bounds.1 - self.bounds.0)
                };
                if self.model.live.contains_key(&addr) {
                    return;
                }
                self.bad_free(
                    addr,
                    Layout::from_size_align(16, 8).unwrap(),
                    "foreign free",
                );
            }
        }
    }
}

fn fuzz<P: PageProvider + Send, Pl: Platform>(
    heap: &Allocator<P, Pl>,
    steps: &[Step],
    bounds: (usize, usize),
    exhaustible: bool,
) {
    let mut f = Fuzz {
        heap,
        model: Shadow::default(),
        freed: Vec::new(),
        bounds,
        exhaustible,
        outside: Box::new([0; 64]),
    };
    for &step in steps {
        f.step(step);
    }
    f.model.check_all("end");
    for (addr, live) in std::mem::take(&mut f.model.live) {
        // SAFETY: a live block allocated with `live.layout`.
        unsafe { heap.dealloc(addr as *mut u8, live.layout) };
    }
    assert!(reports().is_empty());
    let stats = heap.stats();
    assert_eq!(stats.live_bytes, 0, "blocks left live: {stats}");
}

fuzz_target!(|input: Input| {
    reports();
    let mut config = config(input.profile, true);
    config.misuse_hook = Some(record);
    if input.hosted {
        let provider = MmapProvider::new(1 << 30, config.decommit).expect("reserve 1 GiB");
        let span = provider.span();
        let heap: Box<Allocator<MmapProvider, HostedPlatform>> = Box::new(Allocator::new());
        heap.init(provider, config).expect("init");
        fuzz(
            &heap,
            &input.steps,
            (span.base, span.base + span.len),
            false,
        );
    } else {
        let region = Region::new(256 * PAGE_SIZE, PAGE_SIZE);
        PretendCpus::<2>::switch(0);
        // SAFETY: the only provider of the region, and the heap (which
        // owns it) is dropped before the region.
        let provider = unsafe { region.provider() };
        let span = provider.span();
        let heap: Box<Allocator<RegionProvider, PretendCpus<2>>> = Box::new(Allocator::new());
        heap.init(provider, config).expect("init");
        fuzz(&heap, &input.steps, (span.base, span.base + span.len), true);
        drop(heap);
    }
});

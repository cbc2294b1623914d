//! Model-based test: random sequences of alloc, realloc, free, trim,
//! scavenge and profile switches, checked against a shadow model of the
//! live blocks.
//!
//! Every live block holds a pattern of its own, written at alloc/realloc and
//! checked at free (and after realloc, over the preserved prefix), so any
//! overlap or stray write by the allocator shows up; overlap and alignment
//! are also asserted directly against the model.

mod common;

use std::alloc::Layout;
use std::collections::BTreeMap;

use acealloc::hosted::HostedPlatform;
use acealloc::provider::{DecommitMode, MmapProvider};
use acealloc::size_class;
use acealloc::{Allocator, Config, Knobs, PAGE_SIZE, PageProvider, Platform, Profile};
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;

use common::{Region, SingleCpu, check, fill};

/// Address space reserved by the mmap-backed allocators: never exhausted.
const RESERVATION: usize = 4 << 30;
/// Size of the region-backed allocator's region.
const REGION: usize = 1 << 20;

/// One step; `pick` chooses a live block (modulo their number).
#[derive(Clone, Debug)]
enum Op {
    Alloc { size: usize, align: usize },
    Realloc { pick: usize, new_size: usize },
    Free { pick: usize },
    Trim,
    Scavenge { max_pages: usize },
    SetProfile(Profile),
}

/// A live block in the model.
#[derive(Clone, Copy, Debug)]
struct Live {
    layout: Layout,
    seed: u64,
}

impl Live {
    /// Bytes the block covers for overlap checks (a zero-sized request still
    /// gets an address of its own).
    fn extent(&self) -> usize {
        self.layout.size().max(1)
    }
}

/// Sizes on the edges of the size classes, pages and the large-block path.
const EDGES: [usize; 16] = [
    0, 1, 15, 16, 17, 128, 129, 4095, 4096, 4097, 8192, 32_767, 32_768, 32_769, 65_536, 65_537,
];

/// Sizes biased to small ones; the largest take the large-block path.
fn size(large_weight: u32) -> impl Strategy<Value = usize> {
    prop_oneof![
        2 => prop::sample::select(&EDGES[..]),
        8 => 0usize..=256,
        4 => 257usize..=4096,
        2 => 4097usize..=32 * 1024,
        large_weight => 32 * 1024 + 1..=70_000usize,
    ]
}

/// Alignments 1..=4096, and now and then up to `2^max_log2`.
fn align(max_log2: u32) -> impl Strategy<Value = usize> {
    prop_oneof![
        12 => 0u32..=4,
        4 => 5u32..=12,
        1 => 13u32..=max_log2,
    ]
    .prop_map(|log2| 1usize << log2)
}

/// Sequences of up to 100 steps; `free_weight` against 10 for alloc.
fn ops(large_weight: u32, free_weight: u32, max_align_log2: u32) -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        10 => (size(large_weight), align(max_align_log2))
            .prop_map(|(size, align)| Op::Alloc { size, align }),
        4 => (any::<usize>(), size(large_weight).prop_map(|s| s.max(1)))
            .prop_map(|(pick, new_size)| Op::Realloc { pick, new_size }),
        free_weight => any::<usize>().prop_map(|pick| Op::Free { pick }),
        1 => Just(Op::Trim),
        1 => (0usize..=64).prop_map(|max_pages| Op::Scavenge { max_pages }),
        1 => profile().prop_map(Op::SetProfile),
    ];
    prop::collection::vec(op, 1..=MAX_OPS)
}

/// Longest sequence drawn (Miri interprets every byte each step writes).
const MAX_OPS: usize = if cfg!(miri) { 20 } else { 100 };

fn profile() -> impl Strategy<Value = Profile> {
    prop_oneof![
        Just(Profile::Fast),
        Just(Profile::Balanced),
        Just(Profile::Lean)
    ]
}

/// Profiles, decommit modes and knobs, small ones included, so that short
/// sequences already go through drains, refills, depot eviction, slab
/// release, decommit and recommit.
fn config(checks: bool) -> impl Strategy<Value = Config> {
    let decommit = prop_oneof![
        Just(DecommitMode::Free),
        Just(DecommitMode::DontNeed),
        Just(DecommitMode::Off)
    ];
    // Mostly bundles no wider than the capacity (the sane setting), with
    // small capacities common so that short sequences reach them.
    let capacity = prop_oneof![1u32..=4, 1u32..=64];
    let custom = (capacity, 0u32..=4, 1u32..=256).prop_flat_map(|(c, wide, d)| {
        let widths = if wide == 0 { c + 1..=32 + c } else { 1..=c };
        widths.prop_map(move |b| Knobs {
            cache_capacity: c,
            bundle_width: b,
            drain_threshold: d,
            ..Knobs::DEFAULT
        })
    });
    let knobs = prop_oneof![1 => Just(Knobs::DEFAULT), 3 => custom];
    // A zero purge delay decommits every freed run at once; the profile's
    // keeps them dirty for reuse.
    let purge = prop_oneof![Just(None), Just(Some(0))];
    (profile(), decommit, knobs, purge).prop_map(move |(profile, decommit, knobs, purge)| Config {
        profile,
        decommit,
        lean_target: 1 << 20,
        knobs,
        purge_delay_ms: purge,
        clock_hz: Config::DEFAULT.clock_hz,
        checks,
        misuse_hook: None,
        restartable: true,
    })
}

/// The model and the allocator under test.
struct Model<'a, P, Pl> {
    a: &'a Allocator<P, Pl>,
    live: BTreeMap<usize, Live>,
    next_seed: u64,
    /// Whether the provider can run out (then null is allowed, see `on_null`).
    exhaustible: bool,
    /// Where every block must lie.
    bounds: (usize, usize),
}

impl<P: PageProvider + Send, Pl: Platform> Model<'_, P, Pl> {
    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Alloc { size, align } => {
                let layout = Layout::from_size_align(size, align).unwrap();
                let ptr = self.a.alloc(layout);
                if ptr.is_null() {
                    self.on_null(layout);
                } else {
                    self.add(ptr, layout);
                }
            }
            Op::Realloc { pick, new_size } => {
                if self.live.is_empty() {
                    return;
                }
                let (&addr, &old) = self.live.iter().nth(pick % self.live.len()).unwrap();
                let new_layout = Layout::from_size_align(new_size, old.layout.align()).unwrap();
                // SAFETY: `addr` is a live block of this allocator, allocated
                // with `old.layout`; `new_size` is non-zero and, rounded up to
                // the alignment, far below isize::MAX.
                let ptr = unsafe { self.a.realloc(addr as *mut u8, old.layout, new_size) };
                if ptr.is_null() {
                    // SAFETY: on failure the old block stays live and as it was.
                    unsafe {
                        check(
                            addr as *const u8,
                            old.layout.size(),
                            old.seed,
                            "failed realloc",
                        )
                    };
                    self.on_null(new_layout);
                    return;
                }
                self.live.remove(&addr);
                let kept = old.layout.size().min(new_size);
                // SAFETY: the new block holds `new_size >= kept` bytes.
                unsafe { check(ptr, kept, old.seed, "prefix after realloc") };
                self.add(ptr, new_layout);
            }
            Op::Free { pick } => {
                if self.live.is_empty() {
                    return;
                }
                let addr = *self.live.keys().nth(pick % self.live.len()).unwrap();
                self.free(addr);
            }
            Op::Trim => {
                self.a.trim();
                self.check_all("after trim");
            }
            Op::Scavenge { max_pages } => {
                let done = self.a.scavenge(max_pages, u64::MAX);
                assert!(done <= max_pages, "{done} pages for a bound of {max_pages}");
                self.check_all("after scavenge");
            }
            Op::SetProfile(profile) => {
                self.a.set_profile(profile);
                assert_eq!(self.a.stats().profile, profile);
            }
        }
        self.check_stats();
    }

    /// The statistics agree with the model: live bytes exactly (block
    /// sizes, large blocks in whole pages), and caches and depots within
    /// their knobs.
    fn check_stats(&self) {
        let s = self.a.stats();
        let expected: usize = self
            .live
            .values()
            .map(|b| match size_class::for_layout(b.layout) {
                Some(class) => size_class::size_of(class),
                None => b.layout.size().div_ceil(PAGE_SIZE).max(1) * PAGE_SIZE,
            })
            .sum();
        assert_eq!(s.live_bytes, expected, "live bytes: {s}");
        let knobs = self.a.knobs();
        for c in &s.classes {
            // At most the capacity per CPU, or a bundle less the block
            // taken where bundles are wider than the capacity (a refill
            // brings a whole bundle).
            let cap = Knobs::scaled(knobs.cache_capacity, c.size);
            let bundle = Knobs::scaled(knobs.bundle_width, c.size);
            let most = u64::from(cap.max(bundle - 1)) * s.cpus as u64;
            assert!(
                c.cached_blocks <= most,
                "class {} B caches {} blocks, knobs {knobs:?}",
                c.size,
                c.cached_blocks
            );
            let threshold = Knobs::scaled(knobs.drain_threshold, c.size);
            assert!(
                c.depot_blocks <= u64::from(threshold),
                "class {} B: depot holds {} blocks, knobs {knobs:?}",
                c.size,
                c.depot_blocks
            );
        }
    }

    /// Checks a new block against the model, then fills it and records it.
    fn add(&mut self, ptr: *mut u8, layout: Layout) {
        let addr = ptr as usize;
        let block = Live {
            layout,
            seed: self.next_seed,
        };
        self.next_seed += 1;
        assert_eq!(addr % layout.align(), 0, "{layout:?} got {ptr:p}");
        assert!(
            addr >= self.bounds.0 && addr + block.extent() <= self.bounds.1,
            "{layout:?} got {ptr:p}, outside the provider's memory"
        );
        if let Some((&prev, p)) = self.live.range(..=addr).next_back() {
            assert!(
                prev + p.extent() <= addr,
                "{ptr:p} ({layout:?}) overlaps live {prev:#x} ({:?})",
                p.layout
            );
        }
        if let Some((&next, n)) = self.live.range(addr + 1..).next() {
            assert!(
                addr + block.extent() <= next,
                "{ptr:p} ({layout:?}) overlaps live {next:#x} ({:?})",
                n.layout
            );
        }
        // SAFETY: a fresh block of at least `layout.size()` bytes.
        unsafe { fill(ptr, layout.size(), block.seed) };
        self.live.insert(addr, block);
    }

    fn free(&mut self, addr: usize) {
        let block = self.live.remove(&addr).unwrap();
        // SAFETY: a live block of `block.layout.size()` bytes, allocated with
        // `block.layout` and forgotten by the model from here on.
        unsafe {
            check(addr as *const u8, block.layout.size(), block.seed, "free");
            self.a.dealloc(addr as *mut u8, block.layout);
        }
    }

    fn free_all(&mut self) {
        while let Some((&addr, _)) = self.live.iter().next() {
            self.free(addr);
        }
    }

    fn check_all(&self, what: &str) {
        for (&addr, block) in &self.live {
            // SAFETY: every block in the model is live with this size.
            unsafe { check(addr as *const u8, block.layout.size(), block.seed, what) };
        }
    }

    /// The allocator returned null for `layout`. Only an exhaustible
    /// provider may do that, and only because memory is really in use: once
    /// everything is freed and trimmed, the same request must succeed.
    fn on_null(&mut self, layout: Layout) {
        assert!(
            self.exhaustible,
            "null for {layout:?} although the provider has plenty of memory"
        );
        self.free_all();
        self.a.trim();
        let ptr = self.a.alloc(layout);
        assert!(
            !ptr.is_null(),
            "still null for {layout:?} after freeing everything and trim: {}",
            self.a.stats()
        );
        // SAFETY: just allocated with `layout`, not used.
        unsafe { self.a.dealloc(ptr, layout) };
    }
}

/// Runs `ops` on a freshly initialised allocator, then frees everything,
/// trims, and checks that all memory except descriptor pages went back.
fn run<P: PageProvider + Send, Pl: Platform>(
    a: &Allocator<P, Pl>,
    ops: &[Op],
    exhaustible: bool,
    bounds: (usize, usize),
) {
    // The baseline is the allocator's metadata: a FAST allocator's prewarmed
    // blocks go back first.
    a.trim();
    let init = a.stats();
    let mut model = Model {
        a,
        live: BTreeMap::new(),
        next_seed: 1,
        exhaustible,
        bounds,
    };
    for op in ops {
        model.apply(op);
    }
    model.free_all();
    a.trim();

    let end = a.stats();
    assert_eq!(end.live_bytes, 0, "{end}");
    assert_eq!(end.large_live_bytes, 0, "{end}");
    for c in &end.classes {
        assert_eq!(c.allocs, c.frees, "class {} B: {end}", c.size);
        assert_eq!(
            (c.cached_blocks, c.depot_blocks, c.slabs),
            (0, 0, 0),
            "class {} B keeps memory after trim: {end}",
            c.size
        );
    }
    // Every run went back except new pages of the slab descriptor pool,
    // which is never shrunk.
    let new_descriptors = end.descriptor_bytes - init.descriptor_bytes;
    assert_eq!(end.retained_bytes, 0, "after trim: {end}");
    assert_eq!(
        end.committed_bytes - init.committed_bytes,
        new_descriptors,
        "after trim: {end}"
    );
    assert!(
        new_descriptors <= 8 * PAGE_SIZE,
        "{new_descriptors} B of descriptors: {end}"
    );
}

fn run_mmap(ops: &[Op], config: Config) {
    let provider = MmapProvider::new(RESERVATION, config.decommit).unwrap();
    let span = provider.span();
    let a: Box<Allocator<MmapProvider, HostedPlatform>> = Box::new(Allocator::new());
    a.init(provider, config).unwrap();
    run(&a, ops, false, (span.base, span.base + span.len));
}

fn run_region(ops: &[Op], config: Config) {
    // 2 MiB-aligned, so the page map and caches take its first pages.
    let region = Region::new(REGION, 2 << 20);
    // SAFETY: the only provider of `region`, dropped with `a` before it.
    let provider = unsafe { region.provider() };
    let span = provider.span();
    let init_free = provider.free_bytes();
    let a: Box<Allocator<_, SingleCpu>> = Box::new(Allocator::new());
    a.init(provider, config).unwrap();
    run(&a, ops, true, (span.base, span.base + span.len));
    let free = a.with_provider(|p| p.free_bytes()).unwrap();
    assert_eq!(free + a.stats().committed_bytes, init_free);
    assert_eq!(init_free, span.len);
}

proptest! {
    #![proptest_config(ProptestConfig {
        // Miri interprets every step (about a thousand times slower), so
        // it samples a few cases; natively the full run.
        cases: if cfg!(miri) { 2 } else { 192 },
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    #[cfg_attr(miri, ignore = "Miri cannot make the mmap reservation")]
    fn mmap_hosted_unchecked(ops in ops(1, 6, 21), config in config(false)) {
        run_mmap(&ops, config);
    }

    #[test]
    #[cfg_attr(miri, ignore = "Miri cannot make the mmap reservation")]
    fn mmap_hosted_checked(ops in ops(1, 6, 21), config in config(true)) {
        run_mmap(&ops, config);
    }

    /// A 1 MiB region runs out. Alignments stop at 16 KiB, which keeps the
    /// retry in `on_null` always satisfiable: after a trim only the
    /// metadata at the region's start (a few pages) and at most 8 more
    /// descriptor pages (one per 32 slabs, and 256 pages hold at most 256
    /// slabs) stay, so the largest free run is at least (256 - 4 - 8) / 9
    /// > 27 pages, enough for 18 pages (70 000 bytes) at a 4-page alignment
    /// (21 pages at worst).
    #[test]
    fn region_single_cpu(ops in ops(12, 2, 14), config in config(true)) {
        run_region(&ops, config);
    }
}

/// A fixed sequence that always exhausts the 1 MiB region, so the null
/// path of the model is exercised whatever proptest draws.
#[test]
fn region_exhaustion_sequence() {
    let mut ops: Vec<Op> = (0..20)
        .map(|_| Op::Alloc {
            size: 70_000,
            align: 8,
        })
        .collect();
    ops.push(Op::Alloc { size: 40, align: 8 });
    ops.push(Op::Free { pick: 1 });
    run_region(&ops, Config::DEFAULT);
}

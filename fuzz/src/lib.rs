//! What the fuzz targets share: the operations a fuzz input decodes to, a
//! shadow model of the live blocks that every allocator answer is checked
//! against, and the platforms the heaps run on.
//!
//! Every live block holds a byte pattern of its own (written at alloc and
//! realloc, checked at free and realloc), so a block handed out twice, an
//! overlap or a stray write by the allocator shows up as a changed byte;
//! alignment, bounds and overlap are also asserted directly.

use std::alloc::Layout;
use std::cell::Cell;
use std::collections::BTreeMap;

use acealloc::{Allocator, Config, DecommitMode, PageProvider, Platform, Profile};
use arbitrary::Arbitrary;

/// One step of a fuzz input. `pick` chooses a live block (modulo their
/// number), `size` and `align` are mapped by [`size`] and [`align`].
#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum Op {
    Alloc {
        size: u16,
        align: u8,
    },
    Realloc {
        pick: u16,
        size: u16,
    },
    Free {
        pick: u16,
    },
    /// From now on the single thread plays CPU `cpu` (modulo the count).
    SwitchCpu {
        cpu: u8,
    },
    Trim,
}

/// A request size from a fuzz word: mostly small, often on a class or page
/// edge, now and then large (up to 256 KiB, the large-block path).
pub fn size(word: u16) -> usize {
    const EDGES: [usize; 16] = [
        0, 1, 8, 15, 16, 17, 128, 129, 1024, 4095, 4096, 4097, 8192, 32_768, 32_769, 65_537,
    ];
    let low = usize::from(word & 0x0fff);
    match word >> 12 {
        0..=7 => low % 256,
        8..=10 => low % 4096,
        11 | 12 => EDGES[low % EDGES.len()],
        13 | 14 => low * 16,
        _ => low * 64,
    }
}

/// An alignment from a fuzz byte: mostly at most 16, up to 64 KiB.
pub fn align(byte: u8) -> usize {
    match byte {
        0..=191 => 1 << (byte % 5),
        192..=247 => 1 << (byte % 13),
        _ => 1 << (12 + byte % 5),
    }
}

/// The integration tests' byte patterns and test region, shared so that a
/// pattern or region fix lands in one place. Included by path, not depended
/// on: this crate sits outside the workspace, and `tests/common` is no
/// library.
#[path = "../../tests/common/mod.rs"]
mod common;

pub use common::{Region, check, fill};

/// A live block in the model.
#[derive(Clone, Copy, Debug)]
pub struct Live {
    pub layout: Layout,
    pub seed: u64,
}

/// The shadow model: live blocks by address, and the seeds to come.
#[derive(Default)]
pub struct Shadow {
    pub live: BTreeMap<usize, Live>,
    next_seed: u64,
}

impl Shadow {
    /// The `pick`-th live block (modulo their number).
    pub fn pick(&self, pick: u16) -> Option<(usize, Live)> {
        let n = self.live.len();
        (n > 0).then(|| {
            let (&addr, &live) = self.live.iter().nth(usize::from(pick) % n).unwrap();
            (addr, live)
        })
    }

    /// Records a block the allocator just returned for `layout`, after
    /// checking it is aligned, inside `bounds` and disjoint from every live
    /// block; fills it with a fresh pattern.
    ///
    /// # Safety
    /// `ptr` is a block the allocator just returned for `layout`.
    pub unsafe fn add(&mut self, ptr: *mut u8, layout: Layout, bounds: (usize, usize)) {
        let addr = ptr as usize;
        let extent = layout.size().max(1);
        assert_eq!(addr % layout.align(), 0, "{layout:?} at {ptr:p} misaligned");
        assert!(
            addr >= bounds.0 && addr + extent <= bounds.1,
            "{layout:?} at {ptr:p} outside the heap {bounds:x?}"
        );
        if let Some((&prev, p)) = self.live.range(..=addr).next_back() {
            assert!(
                prev + p.layout.size().max(1) <= addr,
                "{layout:?} at {ptr:p} overlaps {prev:#x} ({:?})",
                p.layout
            );
        }
        if let Some((&next, n)) = self.live.range(addr + 1..).next() {
            assert!(
                addr + extent <= next,
                "{layout:?} at {ptr:p} overlaps {next:#x} ({:?})",
                n.layout
            );
        }
        self.next_seed += 1;
        let seed = self.next_seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        // SAFETY: the caller's contract: `layout.size()` bytes of ours.
        unsafe { fill(ptr, layout.size(), seed) };
        self.live.insert(addr, Live { layout, seed });
    }

    /// Checks every live block's pattern.
    pub fn check_all(&self, what: &str) {
        for (&addr, live) in &self.live {
            // SAFETY: a live block of the model, `layout.size()` bytes.
            unsafe { check(addr as *const u8, live.layout.size(), live.seed, what) };
        }
    }
}

/// A configuration from two fuzz bytes: profile, decommit mode, checks.
pub fn config(profile: u8, checks: bool) -> Config {
    Config {
        profile: [Profile::Fast, Profile::Balanced, Profile::Lean][usize::from(profile % 3)],
        decommit: [
            DecommitMode::Free,
            DecommitMode::DontNeed,
            DecommitMode::Off,
        ][usize::from(profile / 3 % 3)],
        checks,
        ..Config::DEFAULT
    }
}

/// Whether null is an acceptable answer to a request: always for a heap
/// that can run out (a region), and for requests no heap could serve.
pub fn may_fail(layout: Layout, exhaustible: bool) -> bool {
    exhaustible || layout.size() > 1 << 30
}

/// Runs `ops` on `heap`, checked against the model; then frees everything
/// and checks that nothing stayed live. `bounds` is the heap's span;
/// `exhaustible` says whether null answers are allowed.
pub fn run<P: PageProvider + Send, Pl: Platform>(
    heap: &Allocator<P, Pl>,
    ops: &[Op],
    bounds: (usize, usize),
    exhaustible: bool,
    switch_cpu: impl Fn(u8),
) {
    let mut model = Shadow::default();
    for op in ops {
        match *op {
            Op::Alloc { size: s, align: a } => {
                let Ok(layout) = Layout::from_size_align(size(s), align(a)) else {
                    continue;
                };
                let ptr = heap.alloc(layout);
                if ptr.is_null() {
                    assert!(may_fail(layout, exhaustible), "null for {layout:?}");
                } else {
                    // SAFETY: just returned for `layout`.
                    unsafe { model.add(ptr, layout, bounds) };
                }
            }
            Op::Realloc { pick, size: s } => {
                let Some((addr, live)) = model.pick(pick) else {
                    continue;
                };
                let new_size = size(s);
                // SAFETY: a live block of `heap`, allocated with `live.layout`.
                let ptr = unsafe { heap.realloc(addr as *mut u8, live.layout, new_size) };
                let new_layout = Layout::from_size_align(new_size, live.layout.align()).unwrap();
                if ptr.is_null() {
                    assert!(may_fail(new_layout, exhaustible), "null for {new_layout:?}");
                    // SAFETY: a failed realloc leaves the block as it was.
                    unsafe {
                        check(
                            addr as *const u8,
                            live.layout.size(),
                            live.seed,
                            "failed realloc",
                        )
                    };
                    continue;
                }
                let kept = live.layout.size().min(new_size);
                // SAFETY: realloc preserved the first `kept` bytes.
                unsafe { check(ptr, kept, live.seed, "realloc") };
                model.live.remove(&addr);
                // SAFETY: just returned for `new_layout`.
                unsafe { model.add(ptr, new_layout, bounds) };
            }
            Op::Free { pick } => {
                let Some((addr, live)) = model.pick(pick) else {
                    continue;
                };
                // SAFETY: a live block of the model.
                unsafe { check(addr as *const u8, live.layout.size(), live.seed, "free") };
                model.live.remove(&addr);
                // SAFETY: a live block of `heap`, allocated with `live.layout`.
                unsafe { heap.dealloc(addr as *mut u8, live.layout) };
            }
            Op::SwitchCpu { cpu } => switch_cpu(cpu),
            Op::Trim => heap.trim(),
        }
    }
    model.check_all("end");
    for (addr, live) in std::mem::take(&mut model.live) {
        // SAFETY: a live block of `heap`, allocated with `live.layout`.
        unsafe { heap.dealloc(addr as *mut u8, live.layout) };
    }
    let stats = heap.stats();
    assert_eq!(stats.live_bytes, 0, "blocks left live: {stats}");
}

thread_local! {
    static CPU: Cell<usize> = const { Cell::new(0) };
    static CLOCK: Cell<u64> = const { Cell::new(0) };
}

/// `CPUS` CPUs that the fuzzing thread plays in turn (`SwitchCpu`), with
/// unlocked caches as in a kernel: only one thread ever uses the heap.
pub struct PretendCpus<const CPUS: usize>;

impl<const CPUS: usize> PretendCpus<CPUS> {
    /// From the next allocator call on, the thread runs on `cpu % CPUS`.
    pub fn switch(cpu: u8) {
        CPU.set(usize::from(cpu) % CPUS);
    }
}

// SAFETY: one thread uses each heap over this platform, and the index
// changes only between allocator calls, so nothing else runs with it
// between `irq_save` and `irq_restore`.
unsafe impl<const CPUS: usize> Platform for PretendCpus<CPUS> {
    const EXCLUSIVE_CPU: bool = true;

    fn cpu_count() -> usize {
        CPUS
    }

    fn current_cpu() -> usize {
        CPU.get()
    }

    fn irq_save() -> usize {
        0
    }

    fn irq_restore(_: usize) {}

    /// A clock that moves one tick per reading.
    fn now() -> u64 {
        let now = CLOCK.get() + 1;
        CLOCK.set(now);
        now
    }
}

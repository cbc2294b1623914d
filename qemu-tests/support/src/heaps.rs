//! The two heaps the kernels test: a fixed region (`RegionProvider` over 100 KiB of `.bss`) and a
//! paging heap (acealloc's `FrameProvider`, mapping frames from [`PhysicalFrames`] on demand into
//! a 64 MiB virtual range through the kernel's page tables).

use acealloc::arch::frames::{FrameProvider, bitmap_words};
use acealloc::{Allocator, Config, InitError, RegionProvider};
use acealloc_kernel_rt::tlb;
use x86_64::VirtAddr;
use x86_64::structures::paging::OffsetPageTable;

use crate::clock;
use crate::frames::PhysicalFrames;
use crate::paging::kernel_page_table;
use crate::platform::KernelPlatform;
use crate::static_memory::{PageAligned, StaticMut};

/// The page provider of the paging heap.
pub type Frames = FrameProvider<OffsetPageTable<'static>, PhysicalFrames>;
/// acealloc over a fixed region.
pub type RegionHeap = Allocator<RegionProvider, KernelPlatform>;
/// acealloc over frames mapped on demand.
pub type FrameHeap = Allocator<Frames, KernelPlatform>;

/// Bytes of the fixed-region heap.
pub const FIXED_REGION_SIZE: usize = 100 * 1024;
/// First address of the paging heap's virtual range (PML4 slot 136, far from the identity map).
pub const FRAME_HEAP_START: u64 = 0x4444_4444_0000;
/// Bytes of the paging heap's virtual range.
pub const FRAME_HEAP_SIZE: usize = 64 << 20;

/// The kernels' configuration: the defaults without checked mode (which the release profile's
/// debug assertions would turn on), so the fast paths under test are the ones kernels ship.
/// Decommit stays on (the default): on the paging heap it unmaps pages, which the runtime's TLB
/// shootdown makes safe on any number of CPUs (see [`init_frame_heap`]).
pub const CONFIG: Config = Config {
    checks: false,
    ..Config::DEFAULT
};

static FIXED_REGION: StaticMut<PageAligned<FIXED_REGION_SIZE>> = StaticMut::new(PageAligned::ZERO);

static FRAME_HEAP_BITMAP: StaticMut<[usize; bitmap_words(FRAME_HEAP_SIZE)]> =
    StaticMut::new([0; bitmap_words(FRAME_HEAP_SIZE)]);

/// Gives `heap` the 100 KiB fixed region. Call once.
pub fn init_fixed_region_heap(heap: &RegionHeap, config: Config) -> Result<(), InitError> {
    init_region_heap(heap, &mut FIXED_REGION.take().0, config)
}

/// Gives `heap` the region `memory`, for good.
pub fn init_region_heap(
    heap: &RegionHeap,
    memory: &'static mut [u8],
    config: Config,
) -> Result<(), InitError> {
    // SAFETY: `memory` is a `&'static mut`, so nothing else uses it, ever.
    let region = unsafe { RegionProvider::new(memory.as_mut_ptr(), memory.len()) };
    heap.init(region, with_clock(config))
}

/// Gives `heap` the paging heap: [`FRAME_HEAP_SIZE`] bytes of address space from
/// [`FRAME_HEAP_START`], backed by `frames` as pages are first used. Call once.
///
/// The provider is handed the runtime's [`tlb::shootdown`] as its TLB flush: it unmaps pages in
/// `decommit`, possibly while other CPUs still cache them from an earlier run, and frees their
/// frames, so the flush must invalidate on every CPU and wait until each one has (a local
/// `invlpg` would let another CPU write through a stale entry into a frame the heap handed out
/// again). The shootdown works with interrupts masked and the heap's page lock held, as
/// `decommit` is called.
pub fn init_frame_heap(
    heap: &FrameHeap,
    frames: PhysicalFrames,
    config: Config,
) -> Result<(), InitError> {
    // SAFETY: the range is canonical (below the lower half's end), mapped by nothing (PML4 slot
    // 136 is empty: the runtime maps only the identity range and the local APIC), and used by
    // this heap alone; the mapper edits the active tables; `frames` hands out unused RAM.
    let provider = unsafe {
        Frames::new(
            kernel_page_table(),
            frames,
            VirtAddr::new(FRAME_HEAP_START),
            FRAME_HEAP_SIZE,
            FRAME_HEAP_BITMAP.take(),
            tlb::shootdown,
        )
    };
    heap.init(provider, with_clock(config))
}

/// `config` with the TSC's rate as the clock rate (`Platform::now` is the TSC here), once
/// [`clock::calibrate`] has measured it; the purge delay is converted with it.
fn with_clock(config: Config) -> Config {
    Config {
        clock_hz: clock::calibrated_hz().unwrap_or(config.clock_hz),
        ..config
    }
}

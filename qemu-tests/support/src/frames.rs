//! Physical memory: the RAM of the PVH memory map, one bit per 4 KiB frame.
//!
//! [`PhysicalFrames`] hands frames out to the `x86_64` crate's paging code (page tables) and to
//! acealloc's `FrameProvider` (heap pages) through `FrameAllocator<Size4KiB>` and
//! `FrameDeallocator<Size4KiB>`. The bitmap is one for the whole machine, behind a spin lock that
//! is only taken with interrupts masked, so any CPU may allocate frames, in any context.
//!
//! Only RAM the runtime reports as usable is managed: above the kernel image and inside the
//! identity map (1 GiB), so every frame is reachable at its physical address.

use core::sync::atomic::{AtomicBool, Ordering};

use acealloc::arch::irq;
use acealloc_kernel_rt::BootInfo;
use bitvec::array::BitArray;
use spin::mutex::SpinMutex;
use x86_64::PhysAddr;
use x86_64::structures::paging::{FrameAllocator, FrameDeallocator, PhysFrame, Size4KiB};

const FRAME_SIZE: u64 = 4096;
/// Frames below the end of the identity map.
const MAX_FRAMES: usize = (1 << 30) / FRAME_SIZE as usize;

/// The machine's frames: a bit per frame, set while the frame is free.
struct FrameBitmap {
    free: BitArray<[usize; MAX_FRAMES / usize::BITS as usize]>,
    /// No free frame lies below this index.
    low: usize,
    /// Frames managed (usable RAM).
    total: usize,
    in_use: usize,
    /// Most frames handed out at once, to make a kernel run out on purpose.
    limit: usize,
}

static BITMAP: SpinMutex<FrameBitmap> = SpinMutex::new(FrameBitmap {
    free: BitArray::ZERO,
    low: 0,
    total: 0,
    in_use: 0,
    limit: usize::MAX,
});

static INITIALIZED: AtomicBool = AtomicBool::new(false);

/// Runs `f` on the bitmap with interrupts masked, so that an interrupt handler that needs frames
/// cannot spin on a lock held by the code it interrupted.
fn with_bitmap<R>(f: impl FnOnce(&mut FrameBitmap) -> R) -> R {
    let irq = irq::save_and_disable();
    let result = f(&mut BITMAP.lock());
    irq::restore(irq);
    result
}

/// The machine's physical frames. A handle: every copy refers to the same bitmap.
#[derive(Clone, Copy)]
pub struct PhysicalFrames {
    _initialized: (),
}

impl PhysicalFrames {
    /// Takes over the usable RAM of `boot`. Call once; panics on a second call.
    pub fn init(boot: &BootInfo) -> PhysicalFrames {
        assert!(
            !INITIALIZED.swap(true, Ordering::AcqRel),
            "the frame allocator is initialised once"
        );
        with_bitmap(|bitmap| {
            for range in boot.usable_ram() {
                let first = (range.start / FRAME_SIZE) as usize;
                let end = (range.end / FRAME_SIZE) as usize;
                bitmap.free[first..end].fill(true);
                bitmap.total += end - first;
            }
            bitmap.low = bitmap.free.first_one().unwrap_or(MAX_FRAMES);
        });
        PhysicalFrames { _initialized: () }
    }

    /// Frames handed out and not yet given back.
    pub fn in_use(&self) -> usize {
        with_bitmap(|bitmap| bitmap.in_use)
    }

    /// Frames managed in all.
    pub fn total(&self) -> usize {
        with_bitmap(|bitmap| bitmap.total)
    }

    /// Lets at most `limit` frames be in use at once (`None`: all of them); allocation fails
    /// beyond it, as if memory had run out.
    pub fn set_limit(&self, limit: Option<usize>) {
        with_bitmap(|bitmap| bitmap.limit = limit.unwrap_or(usize::MAX));
    }
}

// SAFETY: a frame is handed out only while its bit says free, and its bit is cleared under the
// same lock, so no frame is handed out twice before it is given back. Every managed frame is
// RAM that nothing else uses (`usable_ram`).
unsafe impl FrameAllocator<Size4KiB> for PhysicalFrames {
    fn allocate_frame(&mut self) -> Option<PhysFrame<Size4KiB>> {
        with_bitmap(|bitmap| {
            if bitmap.in_use >= bitmap.limit {
                return None;
            }
            let index = bitmap.low + bitmap.free[bitmap.low..].first_one()?;
            bitmap.free.set(index, false);
            bitmap.low = index + 1;
            bitmap.in_use += 1;
            Some(PhysFrame::containing_address(PhysAddr::new(
                index as u64 * FRAME_SIZE,
            )))
        })
    }
}

impl FrameDeallocator<Size4KiB> for PhysicalFrames {
    unsafe fn deallocate_frame(&mut self, frame: PhysFrame<Size4KiB>) {
        let index = (frame.start_address().as_u64() / FRAME_SIZE) as usize;
        with_bitmap(|bitmap| {
            assert!(
                index < MAX_FRAMES && !bitmap.free[index],
                "frame {:#x} given back but not in use",
                frame.start_address().as_u64()
            );
            bitmap.free.set(index, true);
            bitmap.low = bitmap.low.min(index);
            bitmap.in_use -= 1;
        });
    }
}

//! Dense CPU indices, read through the GS segment base.
//!
//! Implements Intel SDM Vol. 3A, "Segment Loading Instructions in IA-32e Mode" (FS and GS bases
//! set through the IA32_GS_BASE MSR, 0xC000_0101): each CPU points its GS base at its own entry
//! of [`CPU_INDICES`], so [`cpu_index`] is a single `mov rax, gs:[0]` in any context.
//!
//! The runtime owns GS: kernels must not change the GS base.

use core::arch::asm;
use core::sync::atomic::{AtomicUsize, Ordering};

use x86_64::VirtAddr;
use x86_64::registers::model_specific::GsBase;

/// Most CPUs the runtime starts; further CPUs in the MADT are left halted.
pub const MAX_CPUS: usize = 16;

/// `CPU_INDICES[i] == i`: the word each CPU's GS base points at.
static CPU_INDICES: [usize; MAX_CPUS] = {
    let mut indices = [0; MAX_CPUS];
    let mut i = 0;
    while i < MAX_CPUS {
        indices[i] = i;
        i += 1;
    }
    indices
};

/// CPUs running (the boot CPU plus started application processors).
static CPU_COUNT: AtomicUsize = AtomicUsize::new(1);

/// Points this CPU's GS base at its index. The first thing each CPU does in Rust.
pub(crate) fn init_current(index: usize) {
    GsBase::write(VirtAddr::from_ptr(&CPU_INDICES[index]));
}

/// Records that `count` CPUs are running (called by the boot CPU once SMP start-up is done).
pub(crate) fn set_cpu_count(count: usize) {
    CPU_COUNT.store(count, Ordering::Release);
}

/// This CPU's dense index, `0..cpu_count()`; the boot CPU is 0.
///
/// One memory load; usable from interrupt and exception handlers.
#[inline]
pub fn cpu_index() -> usize {
    let index: usize;
    // SAFETY: every CPU sets its GS base to an entry of `CPU_INDICES` (`init_current`) before any
    // other Rust code runs on it, so `gs:[0]` is a valid, immutable `usize`.
    unsafe {
        asm!("mov {}, gs:[0]", out(reg) index, options(pure, readonly, nostack, preserves_flags));
    }
    index
}

/// Number of CPUs running, fixed once the kernel's entry has been called.
pub fn cpu_count() -> usize {
    CPU_COUNT.load(Ordering::Acquire)
}

//! x86_64 pieces, laid out like the hardware: interrupt masking (`irq`),
//! CPU identification and time stamps (`cpu`), a page provider over the
//! `x86_64` crate's paging traits (`frames`), model-specific registers
//! (`msr`), PMU detection and counting (`pmu`), and a ready-made platform
//! for single-CPU kernels (`SingleCpu`).

pub mod cpu;
pub mod frames;
pub mod irq;
pub mod msr;
pub mod pmu;

use crate::Platform;

/// Platform for a kernel running on one CPU: index 0, interrupts masked
/// around the allocator's per-CPU section, TSC as the clock. Kernels with
/// several CPUs implement [`Platform`] with their own CPU index.
pub struct SingleCpu;

// SAFETY: with one CPU and interrupts masked, nothing else runs with index 0
// until `irq_restore`.
unsafe impl Platform for SingleCpu {
    const EXCLUSIVE_CPU: bool = true;

    fn cpu_count() -> usize {
        1
    }

    #[inline(always)]
    fn current_cpu() -> usize {
        0
    }

    #[inline(always)]
    fn irq_save() -> usize {
        irq::save_and_disable()
    }

    #[inline(always)]
    fn irq_restore(state: usize) {
        irq::restore(state)
    }

    fn now() -> u64 {
        cpu::rdtsc()
    }
}

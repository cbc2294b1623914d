//! acealloc's [`Platform`] for the test kernels: the runtime's dense CPU index (one GS-relative
//! load), interrupt masking through `acealloc::arch::irq`, the TSC as the clock.

use acealloc::Platform;
use acealloc::arch::{cpu, irq};

/// The test kernels' platform: every CPU the runtime started, interrupts masked around the
/// allocator's per-CPU section.
pub struct KernelPlatform;

// SAFETY: the runtime gives each CPU its own index, fixed for the whole run (GS base set once at
// start-up, no migration: kernel code runs where it is), below `cpu_count()`, which is fixed
// before any kernel code runs. The kernels run no scheduler, so with interrupts masked nothing
// else can run on the CPU until `irq_restore`.
unsafe impl Platform for KernelPlatform {
    const EXCLUSIVE_CPU: bool = true;

    fn cpu_count() -> usize {
        acealloc_kernel_rt::cpu_count()
    }

    #[inline(always)]
    fn current_cpu() -> usize {
        acealloc_kernel_rt::cpu_index()
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

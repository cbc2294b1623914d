//! The boot CPU's start-up sequence, from the 64-bit entry in `boot` to the kernel's entry.
//!
//! Order matters: the CPU index comes first (the console lock uses it), then the console and the
//! IDT (so failures are reported), then the loader's data is copied before the SMP trampoline
//! overwrites low memory.

use crate::pvh::{self, BootInfo};
use crate::{apic, idt, percpu, pic, serial, smp, timer};

unsafe extern "Rust" {
    /// The kernel's entry, defined by [`entry!`](crate::entry).
    fn acealloc_kernel_rt_main(boot: &'static BootInfo) -> !;
}

/// First Rust code on the boot CPU, with interrupts disabled, on CPU 0's stack.
pub(crate) extern "C" fn bsp_main() -> ! {
    percpu::init_current(0);
    serial::init();
    idt::load();
    pic::mask_all();
    let boot = pvh::read_start_info();
    apic::init_current();
    timer::calibrate();
    smp::start_aps(boot);
    // SAFETY: `entry!` defines `acealloc_kernel_rt_main` with exactly this signature; a kernel
    // without it fails to link.
    unsafe { acealloc_kernel_rt_main(boot) }
}

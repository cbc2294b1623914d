//! Boot runtime for acealloc's bare-metal test kernels on x86_64 under QEMU.
//!
//! A test kernel is a `#![no_std]`, `#![no_main]` binary for `x86_64-unknown-none` that names its
//! entry function with [`entry!`] and passes the linker script `targets/kernel.ld` from its build
//! script (the path arrives as `DEP_ACEALLOC_KERNEL_RT_LINKER_SCRIPT`). QEMU loads it with
//! `-kernel` through the PVH boot protocol. Before the kernel's entry runs, the runtime has
//!
//! - switched to 64-bit long mode with the first 1 GiB identity-mapped (2 MiB pages) and the local
//!   APIC page mapped uncached (module `boot`),
//! - copied the PVH memory map and command line into a [`BootInfo`] (`pvh`),
//! - set up the COM1 console behind [`println!`] (`serial`), the IDT with fatal exception
//!   handlers (`idt`, `exceptions`) and a panic handler that fails the test (`panic`),
//! - masked the 8259 PICs, enabled the local APIC and calibrated its timer (`pic`, `apic`,
//!   [`timer`]),
//! - routed the NMI to the TLB shootdown handler, so [`tlb::shootdown`] reaches every CPU
//!   (`tlb`),
//! - started every CPU listed in the ACPI MADT (`acpi`, `smp`); CPUs other than the boot CPU
//!   wait for work from [`run_on_all_cpus`].
//!
//! The entry runs on CPU 0 with interrupts disabled and ends the test with [`exit`].
//!
//! ```ignore
//! #![no_std]
//! #![no_main]
//! use acealloc_kernel_rt::{BootInfo, ExitCode, entry, exit, println};
//!
//! entry!(main);
//!
//! fn main(boot: &'static BootInfo) -> ! {
//!     println!("{} CPUs, command line {:?}", acealloc_kernel_rt::cpu_count(), boot.cmdline());
//!     acealloc_kernel_rt::run_on_all_cpus(&|cpu| println!("hello from cpu {cpu}"));
//!     exit(ExitCode::Success)
//! }
//! ```
//!
//! Contexts: everything here may be called from any CPU once the entry runs, except
//! [`run_on_all_cpus`] (CPU 0 only); [`println!`] and [`cpu_index`] may also be called from
//! interrupt and exception handlers. The runtime owns the GS base (it holds the CPU index).
#![no_std]

mod acpi;
mod apic;
mod boot;
mod exceptions;
mod idt;
mod panic;
mod percpu;
mod pic;
mod pit;
mod pvh;
mod qemu;
mod serial;
mod smp;
mod start;
pub mod timer;
pub mod tlb;

pub use percpu::{MAX_CPUS, cpu_count, cpu_index};
pub use pvh::{BootInfo, MemoryKind, MemoryRegion};
pub use qemu::{ExitCode, exit};
pub use smp::run_on_all_cpus;

#[doc(hidden)]
pub use serial::print_fmt as __print_fmt;

/// Enabling, disabling and waiting for interrupts on the current CPU.
pub mod interrupts {
    pub use x86_64::instructions::interrupts::{
        are_enabled, disable, enable, enable_and_hlt, without_interrupts,
    };
}

/// Names the kernel's entry function, `fn(&'static BootInfo) -> !`.
///
/// The runtime calls it on CPU 0, with interrupts disabled, once every CPU is up.
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        #[unsafe(export_name = "acealloc_kernel_rt_main")]
        fn __acealloc_kernel_rt_main(boot: &'static $crate::BootInfo) -> ! {
            let main: fn(&'static $crate::BootInfo) -> ! = $main;
            main(boot)
        }
    };
}

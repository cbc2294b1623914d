//! Panic handler: a panic on any CPU reports itself on the console and fails the test.

use core::panic::PanicInfo;

use crate::percpu::cpu_index;
use crate::qemu::{ExitCode, exit};

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    crate::println!("PANIC on cpu {}: {}", cpu_index(), info);
    exit(ExitCode::Failure)
}

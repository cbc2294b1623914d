//! Ending the test: QEMU's `isa-debug-exit` device.
//!
//! Implements QEMU's `hw/misc/debugexit.c` interface: with
//! `-device isa-debug-exit,iobase=0xf4,iosize=0x04`, writing `v` to port 0xF4 makes QEMU exit with
//! status `(v << 1) | 1`. The runner maps those statuses back to outcomes:
//!
//! | outcome                 | value written | QEMU exit status |
//! |-------------------------|---------------|------------------|
//! | [`ExitCode::Success`]   | 0x10          | 33               |
//! | [`ExitCode::Failure`]   | 0x11          | 35               |
//! | [`ExitCode::Exception`] | 0x12          | 37               |
//!
//! QEMU itself exits with 0 on a normal shutdown (or a triple fault with `-no-reboot`) and 1 when
//! it cannot start the guest; neither can be produced through the device.

use x86_64::instructions::port::Port;
use x86_64::instructions::{hlt, interrupts};

const DEBUG_EXIT_PORT: u16 = 0xF4;

/// How a test kernel ends. The runner reads it from QEMU's exit status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum ExitCode {
    /// The test passed (QEMU exit status 33).
    Success = 0x10,
    /// The test failed or panicked (QEMU exit status 35).
    Failure = 0x11,
    /// A CPU exception the kernel did not expect (QEMU exit status 37).
    Exception = 0x12,
}

/// Exits QEMU with `code`. Callable from any CPU and any context.
pub fn exit(code: ExitCode) -> ! {
    // SAFETY: port 0xF4 is the debug-exit device the runner configures; writing it ends the
    // virtual machine and touches no memory.
    unsafe { Port::<u32>::new(DEBUG_EXIT_PORT).write(code as u32) };
    // Without the device (QEMU started by hand), park this CPU instead.
    interrupts::disable();
    loop {
        hlt();
    }
}

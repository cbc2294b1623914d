//! CPU exceptions (vectors 0–31): every one is fatal. The handler prints the vector, error code,
//! RIP (and CR2 for a page fault) and exits QEMU with [`ExitCode::Exception`]. The NMI (vector 2)
//! is the exception: `idt` routes it to the TLB shootdown handler (`tlb`), not to its stub here.
//!
//! Implements Intel SDM Vol. 3A, chapter "Interrupt and Exception Handling": "Exception and
//! Interrupt Vectors" (which vectors push an error code: 8, 10–14, 17, 21, 29, 30) and "Exception
//! and Interrupt Reference" (CR2 holds the faulting address of a #PF).
//!
//! Each stub pushes a zero error code where the CPU pushes none, then its vector, so the common
//! path always sees the same frame: vector, error code, RIP, CS, RFLAGS, RSP, SS.

use core::arch::global_asm;
use core::fmt;

use x86_64::registers::control::Cr2;

use crate::percpu::cpu_index;
use crate::qemu::{ExitCode, exit};

global_asm!(
    r#"
    .section .text.acealloc_rt_exceptions, "ax"
    .irp vector, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    .p2align 4
acealloc_rt_exception_stub_\vector:
    .if (\vector == 8) || (\vector == 10) || (\vector == 11) || (\vector == 12) || (\vector == 13) || (\vector == 14) || (\vector == 17) || (\vector == 21) || (\vector == 29) || (\vector == 30)
    .else
    push 0
    .endif
    push \vector
    jmp acealloc_rt_exception_common
    .endr

acealloc_rt_exception_common:
    mov rdi, rsp
    and rsp, -16
    call {dispatch}
    ud2

    .section .rodata.acealloc_rt_exceptions, "a"
    .p2align 3
    .global acealloc_rt_exception_stubs
acealloc_rt_exception_stubs:
    .irp vector, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    .quad acealloc_rt_exception_stub_\vector
    .endr
    "#,
    dispatch = sym report_exception,
);

unsafe extern "C" {
    /// Addresses of the 32 stubs above, by vector.
    safe static acealloc_rt_exception_stubs: [usize; 32];
}

/// Addresses of the entry stubs for vectors 0–31, in order.
pub(crate) fn stubs() -> impl Iterator<Item = usize> {
    acealloc_rt_exception_stubs.iter().copied()
}

/// The stack as the common stub leaves it.
#[repr(C)]
struct ExceptionFrame {
    vector: u64,
    error_code: u64,
    rip: u64,
    cs: u64,
    rflags: u64,
    rsp: u64,
    ss: u64,
}

const NAMES: [&str; 32] = [
    "#DE divide error",
    "#DB debug",
    "NMI",
    "#BP breakpoint",
    "#OF overflow",
    "#BR bound range exceeded",
    "#UD invalid opcode",
    "#NM device not available",
    "#DF double fault",
    "coprocessor segment overrun",
    "#TS invalid TSS",
    "#NP segment not present",
    "#SS stack-segment fault",
    "#GP general protection",
    "#PF page fault",
    "reserved",
    "#MF x87 floating-point error",
    "#AC alignment check",
    "#MC machine check",
    "#XM SIMD floating-point",
    "#VE virtualization",
    "#CP control protection",
    "reserved",
    "reserved",
    "reserved",
    "reserved",
    "reserved",
    "reserved",
    "#HV hypervisor injection",
    "#VC VMM communication",
    "#SX security",
    "reserved",
];

const PAGE_FAULT: u64 = 14;

/// Formats as `, cr2 0x...` for a page fault and as nothing otherwise.
struct FaultAddress(Option<u64>);

impl fmt::Display for FaultAddress {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self.0 {
            Some(address) => write!(f, ", cr2 {address:#x}"),
            None => Ok(()),
        }
    }
}

extern "C" fn report_exception(frame: &ExceptionFrame) -> ! {
    let name = NAMES[frame.vector as usize % NAMES.len()];
    let cr2 = FaultAddress((frame.vector == PAGE_FAULT).then(Cr2::read_raw));
    crate::println!(
        "EXCEPTION on cpu {}: vector {} ({name}), error code {:#x}, rip {:#x}{cr2}, rsp {:#x}, \
         rflags {:#x}, cs {:#x}, ss {:#x}",
        cpu_index(),
        frame.vector,
        frame.error_code,
        frame.rip,
        frame.rsp,
        frame.rflags,
        frame.cs,
        frame.ss,
    );
    exit(ExitCode::Exception)
}

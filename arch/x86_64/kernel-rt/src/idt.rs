//! The interrupt descriptor table shared by all CPUs, and the entry stub for device and
//! inter-processor interrupts.
//!
//! Implements Intel SDM Vol. 3A, chapter "Interrupt and Exception Handling": "Interrupt
//! Descriptor Table (IDT)" and "64-Bit Mode IDT" (16-byte interrupt gates), and "Stack Frame in
//! 64-Bit Mode" (the CPU aligns RSP to 16 bytes before pushing SS, RSP, RFLAGS, CS and RIP).
//!
//! Vector map: 0–31 CPU exceptions (`exceptions`) but for the NMI (2), which carries TLB
//! shootdown requests (`tlb`), [`timer::VECTOR`](crate::timer) the local APIC
//! timer, `smp::WAKEUP_VECTOR` the wake-up IPI, [`apic::SPURIOUS_VECTOR`] the APIC's spurious
//! interrupt. Any other vector is absent: it raises #GP, which is reported as an exception.

use spin::Once;
use x86_64::VirtAddr;
use x86_64::instructions::tables::lidt;
use x86_64::structures::DescriptorTablePointer;

use crate::{apic, boot, exceptions, smp, timer, tlb};

/// Defines `$name`, an interrupt entry stub for the IDT that saves the caller-saved registers,
/// calls `$handler` (an `extern "C" fn()`) and returns with `iretq`.
///
/// The stub is an `extern "C" fn()` only so that its address can be taken: it must never be
/// called. The target is soft-float with no red zone, so there is no SSE state to save and the
/// interrupted code keeps nothing below its RSP.
macro_rules! interrupt_entry {
    ($(#[$attr:meta])* $name:ident => $handler:path) => {
        $(#[$attr])*
        #[unsafe(naked)]
        pub(crate) extern "C" fn $name() {
            // The CPU pushed 5 words onto a 16-byte aligned stack; 9 more pushes leave RSP
            // 16-byte aligned for the call, as the System V ABI requires.
            core::arch::naked_asm!(
                "push rax",
                "push rcx",
                "push rdx",
                "push rsi",
                "push rdi",
                "push r8",
                "push r9",
                "push r10",
                "push r11",
                "cld",
                "call {handler}",
                "pop r11",
                "pop r10",
                "pop r9",
                "pop r8",
                "pop rdi",
                "pop rsi",
                "pop rdx",
                "pop rcx",
                "pop rax",
                "iretq",
                handler = sym $handler,
            )
        }
    };
}
pub(crate) use interrupt_entry;

/// Entry for the APIC's spurious interrupt, which needs no EOI and no work.
#[unsafe(naked)]
extern "C" fn spurious_entry() {
    core::arch::naked_asm!("iretq")
}

/// The vector of non-maskable interrupts, fixed by the architecture.
const NMI_VECTOR: u8 = 2;

/// A 64-bit mode interrupt gate.
#[derive(Clone, Copy)]
#[repr(C)]
struct Gate {
    offset_low: u16,
    selector: u16,
    ist: u8,
    type_attributes: u8,
    offset_middle: u16,
    offset_high: u32,
    reserved: u32,
}

/// Present, DPL 0, type 0xE (interrupt gate: interrupts stay masked in the handler).
const INTERRUPT_GATE: u8 = 0x8E;

impl Gate {
    const ABSENT: Gate = Gate {
        offset_low: 0,
        selector: 0,
        ist: 0,
        type_attributes: 0,
        offset_middle: 0,
        offset_high: 0,
        reserved: 0,
    };

    /// A gate to one of the `interrupt_entry!` stubs.
    fn to_entry(entry: extern "C" fn()) -> Gate {
        Gate::interrupt(entry as *const () as usize)
    }

    fn interrupt(handler: usize) -> Gate {
        Gate {
            offset_low: handler as u16,
            selector: boot::KERNEL_CODE_SELECTOR,
            ist: 0,
            type_attributes: INTERRUPT_GATE,
            offset_middle: (handler >> 16) as u16,
            offset_high: (handler >> 32) as u32,
            reserved: 0,
        }
    }
}

#[repr(C, align(16))]
struct Table([Gate; 256]);

static IDT: Once<Table> = Once::new();

/// Loads the IDT on this CPU, building it on first use.
pub(crate) fn load() {
    let table = IDT.call_once(|| {
        let mut gates = [Gate::ABSENT; 256];
        for (gate, stub) in gates.iter_mut().zip(exceptions::stubs()) {
            *gate = Gate::interrupt(stub);
        }
        gates[usize::from(NMI_VECTOR)] = Gate::to_entry(tlb::nmi_entry);
        gates[usize::from(timer::VECTOR)] = Gate::to_entry(timer::interrupt_entry);
        gates[usize::from(smp::WAKEUP_VECTOR)] = Gate::to_entry(smp::wakeup_entry);
        gates[usize::from(apic::SPURIOUS_VECTOR)] = Gate::to_entry(spurious_entry);
        Table(gates)
    });
    let pointer = DescriptorTablePointer {
        limit: (size_of::<Table>() - 1) as u16,
        base: VirtAddr::from_ptr(table),
    };
    // SAFETY: the table lives in a static for the rest of the run, and every present gate points
    // at a stub that ends in `iretq` (or never returns) with the kernel code selector.
    unsafe { lidt(&pointer) };
}

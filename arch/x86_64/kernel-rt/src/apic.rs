//! The local APIC in xAPIC mode: registers, end of interrupt, inter-processor interrupts and the
//! timer's registers.
//!
//! Implements Intel SDM Vol. 3A, chapter "Advanced Programmable Interrupt Controller (APIC)":
//! "Local APIC Status and Location" (IA32_APIC_BASE), "Local APIC Register Address Map",
//! "Issuing Interprocessor Interrupts" (ICR: fixed, NMI, INIT and STARTUP delivery), "Spurious
//! Interrupt" (SVR), "End-of-Interrupt" and "APIC Timer". Registers are 32-bit MMIO at
//! 0xFEE0_0000, which `boot` maps uncached. QEMU's TCG has no x2APIC, so MSR access is not used.

use core::ptr;

use x86_64::registers::model_specific::Msr;

/// Physical (and, identity-mapped, virtual) address of every CPU's local APIC registers.
pub(crate) const APIC_BASE: u64 = 0xFEE0_0000;
/// Vector of the APIC's spurious interrupt; its handler must not send an EOI.
pub(crate) const SPURIOUS_VECTOR: u8 = 0xFF;

const IA32_APIC_BASE_MSR: u32 = 0x1B;
const APIC_GLOBAL_ENABLE: u64 = 1 << 11;

const ID: usize = 0x20;
const TPR: usize = 0x80;
const EOI: usize = 0xB0;
const SVR: usize = 0xF0;
const ICR_LOW: usize = 0x300;
const ICR_HIGH: usize = 0x310;
const LVT_TIMER: usize = 0x320;
const TIMER_INITIAL_COUNT: usize = 0x380;
const TIMER_CURRENT_COUNT: usize = 0x390;
const TIMER_DIVIDE: usize = 0x3E0;

const SVR_APIC_ENABLE: u32 = 1 << 8;
const ICR_DELIVERY_PENDING: u32 = 1 << 12;
const ICR_ASSERT: u32 = 1 << 14;
const ICR_INIT: u32 = 0b101 << 8;
const ICR_STARTUP: u32 = 0b110 << 8;
const ICR_NMI: u32 = 0b100 << 8;
const ICR_ALL_EXCLUDING_SELF: u32 = 0b11 << 18;
const LVT_MASKED: u32 = 1 << 16;
const LVT_TIMER_PERIODIC: u32 = 1 << 17;
const TIMER_DIVIDE_BY_16: u32 = 0b0011;

/// Divisor between the APIC bus clock and the timer's count, fixed by this runtime.
pub(crate) const TIMER_DIVISOR: u64 = 16;

fn read(register: usize) -> u32 {
    // SAFETY: `init_current` checked that the APIC registers are at `APIC_BASE`, which is mapped
    // uncached; `register` is one of the 16-byte aligned register offsets above.
    unsafe { ptr::read_volatile((APIC_BASE as usize + register) as *const u32) }
}

fn write(register: usize, value: u32) {
    // SAFETY: as in `read`; the callers write values the SDM defines for each register.
    unsafe { ptr::write_volatile((APIC_BASE as usize + register) as *mut u32, value) }
}

/// Enables this CPU's local APIC: accept all priorities, spurious vector [`SPURIOUS_VECTOR`],
/// timer masked.
pub(crate) fn init_current() {
    // SAFETY: IA32_APIC_BASE exists on every x86_64 CPU; reading it has no side effects.
    let base = unsafe { Msr::new(IA32_APIC_BASE_MSR).read() };
    assert!(
        base & APIC_GLOBAL_ENABLE != 0 && base & !0xFFF & 0xF_FFFF_FFFF == APIC_BASE,
        "local APIC disabled or moved: IA32_APIC_BASE = {base:#x}"
    );
    write(TPR, 0);
    write(LVT_TIMER, LVT_MASKED);
    write(SVR, SVR_APIC_ENABLE | u32::from(SPURIOUS_VECTOR));
}

/// This CPU's local APIC ID.
pub(crate) fn id() -> u32 {
    read(ID) >> 24
}

/// Signals the end of the interrupt being handled on this CPU.
pub(crate) fn end_of_interrupt() {
    write(EOI, 0);
}

fn send_ipi(destination: u32, command: u32) {
    while read(ICR_LOW) & ICR_DELIVERY_PENDING != 0 {
        core::hint::spin_loop();
    }
    write(ICR_HIGH, destination << 24);
    // Writing the low half sends the interrupt.
    write(ICR_LOW, command);
    while read(ICR_LOW) & ICR_DELIVERY_PENDING != 0 {
        core::hint::spin_loop();
    }
}

/// Sends INIT to the CPU whose APIC ID is `apic_id`.
pub(crate) fn send_init(apic_id: u32) {
    send_ipi(apic_id, ICR_INIT | ICR_ASSERT);
}

/// Sends STARTUP to `apic_id`: it starts in real mode at `page_number * 4096`.
pub(crate) fn send_startup(apic_id: u32, page_number: u8) {
    send_ipi(apic_id, ICR_STARTUP | ICR_ASSERT | u32::from(page_number));
}

/// Sends a fixed interrupt with `vector` to every CPU but this one.
pub(crate) fn send_to_others(vector: u8) {
    send_ipi(0, ICR_ALL_EXCLUDING_SELF | ICR_ASSERT | u32::from(vector));
}

/// Sends an NMI to every CPU but this one (the vector field is ignored: NMIs use vector 2).
pub(crate) fn send_nmi_to_others() {
    send_ipi(0, ICR_ALL_EXCLUDING_SELF | ICR_ASSERT | ICR_NMI);
}

/// How [`start_timer`] runs the timer.
pub(crate) enum TimerMode {
    /// Count down once without interrupting (for calibration).
    OneShotSilent,
    /// Reload at zero and raise the vector each time.
    Periodic(u8),
}

/// Starts this CPU's timer at `initial_count`, counting at bus clock / [`TIMER_DIVISOR`].
pub(crate) fn start_timer(mode: TimerMode, initial_count: u32) {
    let lvt = match mode {
        TimerMode::OneShotSilent => LVT_MASKED,
        TimerMode::Periodic(vector) => LVT_TIMER_PERIODIC | u32::from(vector),
    };
    write(TIMER_DIVIDE, TIMER_DIVIDE_BY_16);
    write(LVT_TIMER, lvt);
    write(TIMER_INITIAL_COUNT, initial_count);
}

/// Stops and masks this CPU's timer.
pub(crate) fn stop_timer() {
    write(LVT_TIMER, LVT_MASKED);
    write(TIMER_INITIAL_COUNT, 0);
}

/// The timer's current count.
pub(crate) fn timer_current_count() -> u32 {
    read(TIMER_CURRENT_COUNT)
}

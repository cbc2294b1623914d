//! Periodic timer interrupts from each CPU's local APIC timer, delivered to one kernel handler.
//!
//! Implements Intel SDM Vol. 3A, "APIC Timer" (divide configuration register, LVT timer register
//! in periodic mode, initial and current count registers). The timer's rate is not architectural,
//! so the boot CPU measures it once against 10 ms of PIT channel 2 (`pit`); all CPUs share the
//! bus clock and use the same figure.
//!
//! Context: the handler runs in interrupt context on the CPU whose timer fired, with interrupts
//! disabled; the runtime sends the EOI after it returns.

use core::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

use crate::apic::{self, TIMER_DIVISOR, TimerMode};
use crate::idt::interrupt_entry;
use crate::percpu::cpu_index;
use crate::pit;

/// The interrupt vector of the timer.
pub(crate) const VECTOR: u8 = 0x20;

const CALIBRATION_US: u64 = 10_000;

/// Timer counts per second (at [`TIMER_DIVISOR`]), measured by [`calibrate`].
static COUNTS_PER_SECOND: AtomicU64 = AtomicU64::new(0);

/// The kernel's handler, a `fn(usize)` cast to a pointer; null when none is set.
static HANDLER: AtomicPtr<()> = AtomicPtr::new(core::ptr::null_mut());

/// Measures the timer's rate against the PIT. Boot CPU, start-up, interrupts disabled.
pub(crate) fn calibrate() {
    apic::start_timer(TimerMode::OneShotSilent, u32::MAX);
    pit::sleep_us(CALIBRATION_US);
    let elapsed = u32::MAX - apic::timer_current_count();
    apic::stop_timer();
    let per_second = u64::from(elapsed) * 1_000_000 / CALIBRATION_US;
    assert!(per_second > 0, "the local APIC timer does not count");
    COUNTS_PER_SECOND.store(per_second, Ordering::Relaxed);
}

/// The local APIC bus clock in Hz, as measured at start-up.
pub fn bus_frequency() -> u64 {
    COUNTS_PER_SECOND.load(Ordering::Relaxed) * TIMER_DIVISOR
}

/// Makes `handler` the function every CPU's timer interrupt calls, with that CPU's index.
///
/// It runs with interrupts disabled and must not block on anything the interrupted code may
/// hold (printing is fine).
pub fn set_handler(handler: fn(cpu: usize)) {
    HANDLER.store(handler as *mut (), Ordering::Release);
}

/// Starts this CPU's timer, interrupting `hz` times per second until [`stop`].
///
/// Ticks arrive only while interrupts are enabled on this CPU. Panics if the rate is zero or
/// beyond what the timer can count.
pub fn start(hz: u32) {
    assert!(hz > 0, "timer rate must be positive");
    let count = COUNTS_PER_SECOND.load(Ordering::Relaxed) / u64::from(hz);
    let count = u32::try_from(count)
        .ok()
        .filter(|&count| count > 0)
        .unwrap_or_else(|| panic!("timer rate {hz} Hz is out of range"));
    apic::start_timer(TimerMode::Periodic(VECTOR), count);
}

/// Stops this CPU's timer.
pub fn stop() {
    apic::stop_timer();
}

interrupt_entry!(
    /// IDT entry of [`VECTOR`].
    interrupt_entry => on_interrupt
);

extern "C" fn on_interrupt() {
    let handler = HANDLER.load(Ordering::Acquire);
    if !handler.is_null() {
        // SAFETY: `HANDLER` only ever holds null or a `fn(usize)` stored by `set_handler`, and
        // function and data pointers have the same size and representation on x86_64.
        let handler: fn(usize) = unsafe { core::mem::transmute(handler) };
        handler(cpu_index());
    }
    apic::end_of_interrupt();
}

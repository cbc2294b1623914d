//! Interrupt masking (Intel SDM Vol. 3A §6.8.1, "Masking Maskable Hardware
//! Interrupts": RFLAGS.IF, `cli`/`sti`).
//!
//! Only for ring 0: in user mode `cli` faults.

use x86_64::instructions::interrupts;

/// Masks maskable interrupts; returns 1 if they were enabled before.
#[inline(always)]
pub fn save_and_disable() -> usize {
    let was_enabled = interrupts::are_enabled();
    if was_enabled {
        interrupts::disable();
    }
    was_enabled as usize
}

/// Undoes [`save_and_disable`]: re-enables interrupts if they were enabled.
#[inline(always)]
pub fn restore(state: usize) {
    if state != 0 {
        interrupts::enable();
    }
}

//! Silencing the legacy 8259A interrupt controllers.
//!
//! Implements the Intel 8259A datasheet's operation command word 1 (interrupt mask register):
//! writing 0xFF to the data ports of the master (0x21) and slave (0xA1) PIC masks all 16 lines, so
//! the firmware's PIT interrupt cannot arrive on vector 8 once interrupts are enabled. All
//! interrupts then come through the local APIC.

use x86_64::instructions::port::Port;

/// Masks every line of both PICs.
pub(crate) fn mask_all() {
    for port in [0x21, 0xA1] {
        // SAFETY: writing the interrupt mask register only stops the PICs from raising
        // interrupts; nothing in this runtime uses them.
        unsafe { Port::<u8>::new(port).write(0xFF) };
    }
}

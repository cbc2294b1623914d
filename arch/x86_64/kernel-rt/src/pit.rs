//! Busy-wait delays from channel 2 of the 8254 programmable interval timer.
//!
//! Implements the Intel 8254 datasheet's mode 0 ("interrupt on terminal count") on channel 2,
//! whose gate and output are wired to bits 0 and 5 of the PC's system control port 0x61. The
//! channel counts at 1.193182 MHz whatever the CPU speed, so it is the reference for calibrating
//! the local APIC timer and for the INIT/STARTUP delays of SMP start-up.
//!
//! Only the boot CPU uses it, during start-up, before other CPUs run.

use x86_64::instructions::port::Port;

const PIT_HZ: u64 = 1_193_182;
const CHANNEL2_DATA: u16 = 0x42;
const COMMAND: u16 = 0x43;
const SYSTEM_CONTROL: u16 = 0x61;
const GATE2: u8 = 1 << 0;
const SPEAKER: u8 = 1 << 1;
const OUT2: u8 = 1 << 5;
/// Channel 2, low then high byte, mode 0, binary.
const CHANNEL2_MODE0: u8 = 0b1011_0000;

/// Waits at least `us` microseconds.
pub(crate) fn sleep_us(us: u64) {
    let mut ticks = us * PIT_HZ / 1_000_000;
    while ticks > 0 {
        let count = ticks.min(u64::from(u16::MAX));
        count_down(count as u16);
        ticks -= count;
    }
}

/// Runs channel 2 from `count` (at least 1) down to zero.
fn count_down(count: u16) {
    let [low, high] = count.to_le_bytes();
    // SAFETY: channel 2 and port 0x61 are used by nobody else (the speaker stays off); these
    // writes only reprogram the counter.
    unsafe {
        let mut control = Port::<u8>::new(SYSTEM_CONTROL);
        let gated = (control.read() & !SPEAKER) | GATE2;
        control.write(gated);
        Port::<u8>::new(COMMAND).write(CHANNEL2_MODE0);
        let mut data = Port::<u8>::new(CHANNEL2_DATA);
        data.write(low);
        data.write(high);
    }
    // SAFETY: reading port 0x61 has no side effects; OUT2 goes high when the count reaches zero.
    while unsafe { Port::<u8>::new(SYSTEM_CONTROL).read() } & OUT2 == 0 {
        core::hint::spin_loop();
    }
}

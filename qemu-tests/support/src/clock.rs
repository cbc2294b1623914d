//! Guest time from the TSC, calibrated against the local APIC timer (itself calibrated by the
//! runtime against the PIT). Under QEMU TCG, CPUID gives no TSC frequency.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use acealloc::arch::cpu::rdtsc;
use acealloc_kernel_rt::{interrupts, timer};

const CALIBRATION_HZ: u32 = 1000;
const CALIBRATION_TICKS: u32 = 50;

static TSC_HZ: AtomicU64 = AtomicU64::new(0);
static TICKS: AtomicU32 = AtomicU32::new(0);

fn count_tick(cpu: usize) {
    if cpu == 0 {
        TICKS.fetch_add(1, Ordering::Relaxed);
    }
}

fn wait_for_tick(tick: u32) -> u64 {
    while TICKS.load(Ordering::Relaxed) < tick {
        interrupts::enable_and_hlt();
    }
    rdtsc()
}

/// Measures the TSC rate over [`CALIBRATION_TICKS`] ticks of a 1 kHz timer (50 ms), once.
///
/// CPU 0, before the kernel installs its own timer handler (this one replaces it); leaves
/// interrupts disabled and the timer stopped.
pub fn calibrate() {
    if TSC_HZ.load(Ordering::Relaxed) != 0 {
        return;
    }
    timer::set_handler(count_tick);
    timer::start(CALIBRATION_HZ);
    // Tick 1 starts the measurement, so both ends sit right after a tick.
    let start = wait_for_tick(1);
    let end = wait_for_tick(1 + CALIBRATION_TICKS);
    timer::stop();
    interrupts::disable();
    let hz = (end - start) * u64::from(CALIBRATION_HZ) / u64::from(CALIBRATION_TICKS);
    TSC_HZ.store(hz.max(1), Ordering::Relaxed);
}

/// TSC ticks per second if [`calibrate`] has run.
pub fn calibrated_hz() -> Option<u64> {
    Some(TSC_HZ.load(Ordering::Relaxed)).filter(|&hz| hz != 0)
}

/// TSC ticks per second ([`calibrate`] first).
pub fn tsc_hz() -> u64 {
    let hz = TSC_HZ.load(Ordering::Relaxed);
    assert!(hz != 0, "clock::calibrate() has not run");
    hz
}

/// A point in guest time, for measuring what follows it.
#[derive(Clone, Copy)]
pub struct Stopwatch {
    start: u64,
}

impl Stopwatch {
    /// Starts measuring now.
    pub fn start() -> Stopwatch {
        Stopwatch { start: rdtsc() }
    }

    /// TSC cycles since the start.
    pub fn cycles(&self) -> u64 {
        rdtsc().saturating_sub(self.start)
    }

    /// Microseconds since the start.
    pub fn micros(&self) -> u64 {
        (u128::from(self.cycles()) * 1_000_000 / u128::from(tsc_hz())) as u64
    }

    /// Milliseconds since the start.
    pub fn millis(&self) -> u64 {
        self.micros() / 1000
    }
}

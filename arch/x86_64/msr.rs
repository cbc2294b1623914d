//! Model-specific registers (Intel SDM Vol. 4, "Model-Specific Registers";
//! AMD APM Vol. 2 §13.2.1 for the core performance counters): the PMU MSR
//! numbers acealloc uses and one small trait to read and write them, so the
//! counter programming in [`pmu`](super::pmu) runs unchanged against the
//! hardware (`rdmsr`/`wrmsr`) and against a model in the tests.
#![deny(clippy::float_arithmetic)]

use x86_64::registers::model_specific::Msr;

/// Intel general-purpose counter 0 (`IA32_PMC0`); counter `n` is `0xC1 + n`.
pub const IA32_PMC0: u32 = 0xC1;
/// Intel event select of counter 0 (`IA32_PERFEVTSEL0`); counter `n` at `0x186 + n`.
pub const IA32_PERFEVTSEL0: u32 = 0x186;
/// Intel fixed counter 0: instructions retired (`IA32_FIXED_CTR0`).
pub const IA32_FIXED_CTR0: u32 = 0x309;
/// Intel fixed counter 1: unhalted core cycles (`IA32_FIXED_CTR1`).
pub const IA32_FIXED_CTR1: u32 = 0x30A;
/// Intel fixed-counter control: 4 bits per fixed counter (`IA32_FIXED_CTR_CTRL`).
pub const IA32_FIXED_CTR_CTRL: u32 = 0x38D;
/// Intel global enable of every counter, perfmon version 2 and later
/// (`IA32_PERF_GLOBAL_CTRL`): bit `n` for PMC`n`, bit `32 + n` for fixed counter `n`.
pub const IA32_PERF_GLOBAL_CTRL: u32 = 0x38F;
/// AMD `PerfEvtSel0` with the core counter extension; select `n` at `0xC001_0200 + 2n`.
pub const AMD_PERF_CTL0: u32 = 0xC001_0200;
/// AMD `PerfCtr0` with the core counter extension; counter `n` at `0xC001_0201 + 2n`.
pub const AMD_PERF_CTR0: u32 = 0xC001_0201;

/// Reads and writes model-specific registers of the running CPU.
pub trait MsrAccess {
    /// Reads MSR `msr`.
    ///
    /// # Safety
    /// `msr` exists on this CPU (reading one that does not raises #GP), and
    /// the caller runs where the access is allowed (for [`Rdmsr`]: ring 0).
    unsafe fn read(&self, msr: u32) -> u64;

    /// Writes `value` to MSR `msr`.
    ///
    /// # Safety
    /// As for [`read`](Self::read); in addition `value` is valid for the
    /// register (reserved bits clear) and nothing else on this CPU relies on
    /// the register's old value.
    unsafe fn write(&self, msr: u32, value: u64);
}

/// The hardware: `rdmsr` and `wrmsr` on the running CPU (Intel SDM Vol. 2B).
///
/// Only usable in ring 0: both instructions raise #GP elsewhere. Under an
/// emulator that does not implement a PMU (QEMU TCG), PMU MSRs read as zero
/// and ignore writes, so whether to use them is decided from CPUID
/// ([`Pmu::detect`](super::pmu::Pmu::detect)), never from a read that did
/// not fault.
#[derive(Clone, Copy, Debug, Default)]
pub struct Rdmsr;

impl MsrAccess for Rdmsr {
    unsafe fn read(&self, msr: u32) -> u64 {
        // SAFETY: the caller guarantees ring 0 and that the MSR exists.
        unsafe { Msr::new(msr).read() }
    }

    unsafe fn write(&self, msr: u32, value: u64) {
        // SAFETY: the caller guarantees ring 0, that the MSR exists and that
        // `value` is valid for it with nobody relying on the old value.
        unsafe { Msr::new(msr).write(value) }
    }
}

//! CPU identification and time stamps (Intel SDM Vol. 2A `CPUID`, Vol. 3B
//! §18.17 "Time-Stamp Counter"; leaves 0x15/0x16 give the TSC frequency).

use raw_cpuid::CpuId;

/// Reads the time-stamp counter.
#[inline(always)]
pub fn rdtsc() -> u64 {
    // SAFETY: `rdtsc` has no side effects and is available on every x86_64.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// TSC frequency in Hz as CPUID reports it (leaf 0x15, else the nominal
/// frequency of leaf 0x16), or `None` where the CPU does not say (e.g.
/// under QEMU TCG): calibrate against a timer then.
pub fn tsc_hz() -> Option<u64> {
    let cpuid = CpuId::new();
    if let Some(hz) = cpuid.get_tsc_info().and_then(|t| t.tsc_frequency()) {
        return Some(hz);
    }
    let mhz = cpuid
        .get_processor_frequency_info()?
        .processor_base_frequency();
    (mhz > 0).then_some(u64::from(mhz) * 1_000_000)
}

/// Initial local APIC id of the running CPU (CPUID leaf 1, bits 31:24 of EBX).
/// `cpuid` is slow (and traps under virtualisation): read it once per CPU.
pub fn initial_apic_id() -> u8 {
    CpuId::new()
        .get_feature_info()
        .map_or(0, |f| f.initial_local_apic_id())
}

//! Hardware performance counters: what the CPU offers, decided from CPUID
//! alone. (Under emulators such as QEMU TCG the PMU MSRs read as zero
//! without faulting, so "the read did not fault" proves nothing.)
//!
//! - Intel architectural performance monitoring: CPUID leaf 0xA gives the
//!   version, the number and width of general-purpose counters and the
//!   fixed counters (Intel SDM Vol. 3B §20.2, "Architectural Performance
//!   Monitoring").
//! - AMD core performance counter extensions: CPUID Fn8000_0001 ECX[23]
//!   (PerfCtrExtCore) gives six counters at MSRs 0xC001_0200.. (AMD APM
//!   Vol. 2 §13.2, "Performance Counters").

use raw_cpuid::{CpuId, CpuIdReader, CpuIdReaderNative};

/// The PMU the CPU reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pmu {
    /// No usable counters (e.g. QEMU TCG): use software signals only.
    None,
    /// Intel architectural performance monitoring.
    IntelArch {
        /// Architectural perfmon version (leaf 0xA EAX[7:0]).
        version: u8,
        /// General-purpose counters per logical CPU.
        counters: u8,
        /// Width of the general-purpose counters in bits.
        width: u8,
        /// Fixed-function counters (version 2 and later).
        fixed: u8,
    },
    /// AMD core performance counters (PerfCtl/PerfCtr pairs at 0xC001_0200).
    AmdCore {
        /// General-purpose counters (six with the core extension).
        counters: u8,
    },
}

impl Pmu {
    /// Detects the running CPU's PMU.
    pub fn detect() -> Pmu {
        Self::detect_with(CpuId::<CpuIdReaderNative>::new())
    }

    /// Detects from any CPUID source (tests pass a modelled one).
    pub fn detect_with<R: CpuIdReader>(cpuid: CpuId<R>) -> Pmu {
        if let Some(info) = cpuid.get_performance_monitoring_info()
            && info.version_id() > 0
            && info.number_of_counters() > 0
        {
            return Pmu::IntelArch {
                version: info.version_id(),
                counters: info.number_of_counters(),
                width: info.counter_bit_width(),
                fixed: if info.version_id() >= 2 {
                    info.fixed_function_counters()
                } else {
                    0
                },
            };
        }
        let is_amd = cpuid
            .get_vendor_info()
            .is_some_and(|v| v.as_str() == "AuthenticAMD");
        let amd_core = cpuid
            .get_extended_processor_and_feature_identifiers()
            .is_some_and(|f| f.has_perf_cntr_extensions());
        if is_amd && amd_core {
            return Pmu::AmdCore { counters: 6 };
        }
        Pmu::None
    }

    /// Whether any hardware counter is available.
    pub fn is_available(&self) -> bool {
        *self != Pmu::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raw_cpuid::CpuIdResult;

    const fn regs(eax: u32, ebx: u32, ecx: u32, edx: u32) -> CpuIdResult {
        CpuIdResult { eax, ebx, ecx, edx }
    }

    /// Vendor leaf registers (EBX, EDX, ECX order spells the name).
    fn vendor(name: &[u8; 12], max_leaf: u32) -> CpuIdResult {
        let word = |i: usize| u32::from_le_bytes([name[i], name[i + 1], name[i + 2], name[i + 3]]);
        regs(max_leaf, word(0), word(8), word(4))
    }

    #[test]
    fn intel_arch_perfmon_reports_counters_and_width() {
        let cpuid = CpuId::with_cpuid_reader(|leaf: u32, _sub: u32| match leaf {
            0 => vendor(b"GenuineIntel", 0xA),
            // version 4, 8 counters, 48 bits wide; 3 fixed counters.
            0xA => regs(0x0730_0804, 0, 0, 0x0603),
            _ => regs(0, 0, 0, 0),
        });
        assert_eq!(
            Pmu::detect_with(cpuid),
            Pmu::IntelArch {
                version: 4,
                counters: 8,
                width: 48,
                fixed: 3
            }
        );
    }

    #[test]
    fn a_zero_leaf_0xa_means_no_pmu_as_under_qemu_tcg() {
        let cpuid = CpuId::with_cpuid_reader(|leaf: u32, _sub: u32| match leaf {
            0 => vendor(b"GenuineIntel", 0xD),
            _ => regs(0, 0, 0, 0),
        });
        assert_eq!(Pmu::detect_with(cpuid), Pmu::None);
    }

    #[test]
    fn amd_needs_the_core_counter_extension() {
        let amd = |ecx: u32| {
            move |leaf: u32, _sub: u32| match leaf {
                0 => vendor(b"AuthenticAMD", 0x10),
                0x8000_0000 => regs(0x8000_0008, 0, 0, 0),
                0x8000_0001 => regs(0, 0, ecx, 0),
                _ => regs(0, 0, 0, 0),
            }
        };
        let with = CpuId::with_cpuid_reader(amd(1 << 23));
        assert_eq!(Pmu::detect_with(with), Pmu::AmdCore { counters: 6 });
        let without = CpuId::with_cpuid_reader(amd(0));
        assert_eq!(Pmu::detect_with(without), Pmu::None);
    }
}

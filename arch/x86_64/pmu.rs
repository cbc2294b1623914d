//! Hardware performance counters: what the CPU offers, decided from CPUID
//! alone. (Under emulators such as QEMU TCG the PMU MSRs read as zero
//! without faulting, so "the read did not fault" proves nothing.)
//!
//! - Intel architectural performance monitoring: CPUID leaf 0xA gives the
//!   version, the number and width of general-purpose counters and the
//!   fixed counters (Intel SDM Vol. 3B §20.2, "Architectural Performance
//!   Monitoring").
//! - AMD core performance counter extensions: CPUID Fn8000_0001 ECX\[23\]
//!   (PerfCtrExtCore) gives six counters at MSRs 0xC001_0200.. (AMD APM
//!   Vol. 2 §13.2, "Performance Counters").
//!
//! [`Counters`] then programs one CPU's counters for the adaptive control
//! engine (last-level-cache misses, cycles, instructions) through
//! [`MsrAccess`] and reads them as width-correct deltas.
#![deny(clippy::float_arithmetic)]

use raw_cpuid::{CpuId, CpuIdReader, CpuIdReaderNative};

use super::msr::{
    AMD_PERF_CTL0, AMD_PERF_CTR0, IA32_FIXED_CTR_CTRL, IA32_FIXED_CTR0, IA32_FIXED_CTR1,
    IA32_PERF_GLOBAL_CTRL, IA32_PERFEVTSEL0, IA32_PMC0, MsrAccess,
};
use crate::ace::HwCounts;

/// The PMU the CPU reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pmu {
    /// No usable counters (e.g. QEMU TCG): use software signals only.
    None,
    /// Intel architectural performance monitoring.
    IntelArch {
        /// Architectural perfmon version (leaf 0xA EAX\[7:0\]).
        version: u8,
        /// General-purpose counters per logical CPU.
        counters: u8,
        /// Width of the general-purpose counters in bits.
        width: u8,
        /// Fixed-function counters (version 2 and later).
        fixed: u8,
        /// Width of the fixed-function counters in bits (leaf 0xA EDX\[12:5\]).
        fixed_width: u8,
        /// Whether the architectural "LLC Misses" event is available: EBX
        /// bit 4 clear and within the EBX length of EAX\[31:24\].
        llc_misses: bool,
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
                fixed_width: info.fixed_function_counters_bit_width(),
                llc_misses: info.ebx_length() > 4 && !info.is_ll_cache_miss_ev_unavailable(),
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
}

/* ---------------------------------------------------------------------- */
/* Counting                                                                */
/* ---------------------------------------------------------------------- */

/// Event-select bits common to Intel `IA32_PERFEVTSELx` (SDM Vol. 3B
/// §20.2.1.1, Figure 20-6) and AMD `PerfEvtSeln` (APM Vol. 2 §13.2.1.1,
/// Figure 13-7): count in user mode, in kernel mode, enable.
const SEL_USR: u64 = 1 << 16;
const SEL_OS: u64 = 1 << 17;
const SEL_EN: u64 = 1 << 22;

/// An event select value: `event` (AMD: 12 bits, the top four at 35:32)
/// and `umask`, counted in both modes, enabled.
const fn select(event: u16, umask: u8) -> u64 {
    let event = event as u64;
    (event & 0xFF) | (event >> 8) << 32 | (umask as u64) << 8 | SEL_USR | SEL_OS | SEL_EN
}

/// Intel architectural event "LLC Misses" (event 2EH, umask 41H; SDM Vol. 3B
/// Table 20-1): demand references that missed the last-level cache.
const INTEL_LLC_MISSES: u64 = select(0x2E, 0x41);
/// Intel architectural "UnHalted Core Cycles" (3CH, umask 00H), for CPUs
/// without fixed counters.
const INTEL_CYCLES: u64 = select(0x3C, 0x00);
/// Intel architectural "Instructions Retired" (C0H, umask 00H).
const INTEL_INSTRUCTIONS: u64 = select(0xC0, 0x00);
/// AMD PMCx043 "Demand Data Cache Fills by Data Source" with unit mask 58H:
/// fills from local DRAM or I/O (bit 3), from another CCX's or node's cache
/// (bit 4) and from remote DRAM (bit 6), i.e. the core's view of a miss in
/// its own L3 (AMD PPR for Family 17h/19h, core PMC events; the L3's own
/// counters at 0xC001_0230 are shared per CCX and left alone).
const AMD_LLC_MISSES: u64 = select(0x43, 0x58);
/// AMD PMCx076 "Cycles not in Halt".
const AMD_CYCLES: u64 = select(0x76, 0x00);
/// AMD PMCx0C0 "Retired Instructions".
const AMD_INSTRUCTIONS: u64 = select(0xC0, 0x00);
/// AMD core counters are 48 bits wide (APM Vol. 2 §13.2.1).
const AMD_WIDTH: u8 = 48;
/// `IA32_FIXED_CTR_CTRL` value enabling fixed counters 0 and 1 in both
/// modes (bits 1:0 and 5:4; SDM Vol. 3B §20.2.2, Figure 20-2).
const FIXED_0_1_BOTH_MODES: u64 = 0b11 | 0b11 << 4;

/// The counter `n`-th delta the engine wants, in [`HwCounts`] order.
const LLC: usize = 0;
const CYCLES: usize = 1;
const INSTRUCTIONS: usize = 2;

/// A counter to program and read: its MSR and, for a general-purpose
/// counter, its event-select MSR and value (fixed counters have none).
#[derive(Clone, Copy)]
struct Planned {
    counter: u32,
    select: Option<(u32, u64)>,
}

impl Planned {
    const fn general(counter: u32, select: u32, value: u64) -> Option<Planned> {
        Some(Planned {
            counter,
            select: Some((select, value)),
        })
    }

    const fn fixed(counter: u32) -> Option<Planned> {
        Some(Planned {
            counter,
            select: None,
        })
    }
}

/// One CPU's counters, programmed by [`Counters::start`] on that CPU:
/// last-level-cache misses on general-purpose counter 0, and cycles and
/// instructions on the fixed counters (Intel, version 2 and later) or on
/// general-purpose counters 1 and 2 where there are enough of them.
pub struct Counters<M: MsrAccess> {
    msr: M,
    /// The counter MSR of each [`HwCounts`] field, if counted.
    counter: [Option<u32>; 3],
    /// Each counter's width in bits, for deltas across a wrap.
    width: [u8; 3],
    /// The value each counter had at the previous [`sample`](Self::sample).
    last: [u64; 3],
}

impl<M: MsrAccess> Counters<M> {
    /// Programs the running CPU's counters as `pmu` allows; `None` with no
    /// PMU (QEMU TCG), when nothing is programmed at all.
    ///
    /// # Safety
    /// Ring 0 on the CPU `pmu` was detected on (or one like it), with `msr`
    /// reaching that CPU's registers, and nothing else on this CPU using
    /// general-purpose counters 0–2, the fixed counters 0–1 or the global
    /// control (they are overwritten; the global control keeps only these).
    pub unsafe fn start(pmu: Pmu, msr: M) -> Option<Self> {
        let mut plan: [Option<Planned>; 3] = [None; 3];
        let width: [u8; 3];
        match pmu {
            Pmu::None => return None,
            Pmu::IntelArch {
                version,
                counters,
                width: w,
                fixed,
                fixed_width,
                llc_misses,
            } => {
                let gp = |n: u32, sel| Planned::general(IA32_PMC0 + n, IA32_PERFEVTSEL0 + n, sel);
                if llc_misses {
                    plan[LLC] = gp(0, INTEL_LLC_MISSES);
                }
                let on_fixed = version >= 2 && fixed >= 2;
                if on_fixed {
                    plan[INSTRUCTIONS] = Planned::fixed(IA32_FIXED_CTR0);
                    plan[CYCLES] = Planned::fixed(IA32_FIXED_CTR1);
                } else if counters >= 3 {
                    plan[CYCLES] = gp(1, INTEL_CYCLES);
                    plan[INSTRUCTIONS] = gp(2, INTEL_INSTRUCTIONS);
                }
                width = if on_fixed {
                    [w, fixed_width, fixed_width]
                } else {
                    [w; 3]
                };
                let global = version >= 2;
                // SAFETY: ring 0 on this CPU and the registers are ours (the
                // caller's contract); perfmon version 2 has the global
                // control and, with `fixed >= 2`, fixed counters 0 and 1.
                unsafe {
                    if global {
                        msr.write(IA32_PERF_GLOBAL_CTRL, 0);
                    }
                    Self::program(&msr, &plan);
                    if on_fixed {
                        msr.write(IA32_FIXED_CTR_CTRL, FIXED_0_1_BOTH_MODES);
                    }
                    if global {
                        let mut enable = 0;
                        for p in plan.iter().flatten() {
                            enable |= match p.select {
                                Some(_) => 1 << (p.counter - IA32_PMC0),
                                None => 1 << (32 + p.counter - IA32_FIXED_CTR0),
                            };
                        }
                        msr.write(IA32_PERF_GLOBAL_CTRL, enable);
                    }
                }
            }
            Pmu::AmdCore { .. } => {
                width = [AMD_WIDTH; 3];
                let gp = |n: u32, sel| {
                    Planned::general(AMD_PERF_CTR0 + 2 * n, AMD_PERF_CTL0 + 2 * n, sel)
                };
                plan[LLC] = gp(0, AMD_LLC_MISSES);
                plan[CYCLES] = gp(1, AMD_CYCLES);
                plan[INSTRUCTIONS] = gp(2, AMD_INSTRUCTIONS);
                // SAFETY: as above; the core extension has six counter pairs.
                unsafe { Self::program(&msr, &plan) };
            }
        }
        Some(Counters {
            msr,
            counter: plan.map(|p| p.map(|p| p.counter)),
            width,
            last: [0; 3],
        })
    }

    /// Zeroes every planned counter and writes the event selects.
    ///
    /// # Safety
    /// As for [`start`](Self::start): every MSR in `plan` exists.
    unsafe fn program(msr: &M, plan: &[Option<Planned>; 3]) {
        for p in plan.iter().flatten() {
            // SAFETY: forwarded contract: the MSRs exist and are ours.
            unsafe {
                if let Some((select, _)) = p.select {
                    msr.write(select, 0);
                }
                msr.write(p.counter, 0);
                if let Some((select, value)) = p.select {
                    msr.write(select, value);
                }
            }
        }
    }

    /// Events since the previous sample (since [`start`](Self::start) the
    /// first time); fields the CPU cannot count read 0. Correct across one
    /// wrap of the counter width; samples must come often enough that a
    /// counter cannot wrap twice (at 48 bits, days at any clock rate).
    ///
    /// # Safety
    /// On the CPU that [`start`](Self::start) programmed, in ring 0.
    pub unsafe fn sample(&mut self) -> HwCounts {
        let mut delta = [0; 3];
        for (i, counter) in self.counter.iter().enumerate() {
            if let Some(counter) = *counter {
                // SAFETY: `start` found this counter on this CPU.
                let now = unsafe { self.msr.read(counter) };
                delta[i] = wrapping_delta(self.last[i], now, self.width[i]);
                self.last[i] = now;
            }
        }
        HwCounts {
            llc_misses: delta[LLC],
            cycles: delta[CYCLES],
            instructions: delta[INSTRUCTIONS],
        }
    }
}

/// `now - prev` for a counter `width` bits wide that may have wrapped once.
fn wrapping_delta(prev: u64, now: u64, width: u8) -> u64 {
    let mask = if width >= 64 {
        u64::MAX
    } else {
        (1 << width) - 1
    };
    now.wrapping_sub(prev) & mask
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
                fixed: 3,
                fixed_width: 48,
                llc_misses: true,
            }
        );
        // EBX bit 4 set: the LLC Misses event is not available.
        let cpuid = CpuId::with_cpuid_reader(|leaf: u32, _sub: u32| match leaf {
            0 => vendor(b"GenuineIntel", 0xA),
            0xA => regs(0x0730_0804, 1 << 4, 0, 0x0603),
            _ => regs(0, 0, 0, 0),
        });
        let Pmu::IntelArch { llc_misses, .. } = Pmu::detect_with(cpuid) else {
            panic!("an Intel PMU");
        };
        assert!(!llc_misses);
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

    /* The modelled MSR backend */

    use std::cell::RefCell;
    use std::collections::BTreeMap;

    /// A PMU made of MSRs: accessing an MSR the modelled CPU lacks panics
    /// (the hardware raises #GP); counters count injected events only when
    /// their select matches and every enable bit the real PMU needs is set,
    /// and wrap at their width.
    struct ModelPmu {
        pmu: Pmu,
        regs: RefCell<BTreeMap<u32, u64>>,
    }

    impl ModelPmu {
        fn new(pmu: Pmu) -> Self {
            ModelPmu {
                pmu,
                regs: RefCell::new(BTreeMap::new()),
            }
        }

        /// The width of counter MSR `msr`.
        fn width(&self, msr: u32) -> u8 {
            match self.pmu {
                Pmu::IntelArch { fixed_width, .. }
                    if (IA32_FIXED_CTR0..=IA32_FIXED_CTR1).contains(&msr) =>
                {
                    fixed_width
                }
                Pmu::IntelArch { width, .. } => width,
                _ => 48,
            }
        }

        /// General-purpose (select, counter) pairs of the modelled CPU.
        fn gp(&self) -> std::vec::Vec<(u32, u32)> {
            match self.pmu {
                Pmu::IntelArch { counters, .. } => (0..u32::from(counters))
                    .map(|n| (IA32_PERFEVTSEL0 + n, IA32_PMC0 + n))
                    .collect(),
                Pmu::AmdCore { counters } => (0..u32::from(counters))
                    .map(|n| (AMD_PERF_CTL0 + 2 * n, AMD_PERF_CTR0 + 2 * n))
                    .collect(),
                Pmu::None => std::vec::Vec::new(),
            }
        }

        fn version_fixed(&self) -> (u8, u8) {
            match self.pmu {
                Pmu::IntelArch { version, fixed, .. } => (version, fixed),
                _ => (0, 0),
            }
        }

        fn exists(&self, msr: u32) -> bool {
            let (version, fixed) = self.version_fixed();
            self.gp().iter().any(|&(sel, ctr)| msr == sel || msr == ctr)
                || version >= 2
                    && (msr == IA32_PERF_GLOBAL_CTRL
                        || msr == IA32_FIXED_CTR_CTRL
                        || (IA32_FIXED_CTR0..IA32_FIXED_CTR0 + u32::from(fixed)).contains(&msr))
        }

        fn get(&self, msr: u32) -> u64 {
            *self.regs.borrow().get(&msr).unwrap_or(&0)
        }

        fn add(&self, msr: u32, n: u64) {
            let mask = wrapping_delta(0, u64::MAX, self.width(msr));
            let value = self.get(msr).wrapping_add(n) & mask;
            self.regs.borrow_mut().insert(msr, value);
        }

        /// `n` occurrences of `event`/`umask`; `fixed` is the fixed counter
        /// that also counts it (Intel), if any.
        fn inject(&self, event: u16, umask: u8, n: u64, fixed: Option<u32>) {
            let (version, _) = self.version_fixed();
            let global = self.get(IA32_PERF_GLOBAL_CTRL);
            for (i, (sel, ctr)) in self.gp().into_iter().enumerate() {
                let s = self.get(sel);
                let code = (s & 0xFF) | (s >> 32 & 0xF) << 8;
                let on = s & SEL_EN != 0
                    && s & (SEL_USR | SEL_OS) != 0
                    && (version < 2 || global >> i & 1 == 1);
                if on && code == u64::from(event) && (s >> 8 & 0xFF) as u8 == umask {
                    self.add(ctr, n);
                }
            }
            if let Some(ctr) = fixed
                && self.exists(ctr)
            {
                let i = ctr - IA32_FIXED_CTR0;
                let enabled = self.get(IA32_FIXED_CTR_CTRL) >> (4 * i) & 0b11 != 0;
                if enabled && global >> (32 + i) & 1 == 1 {
                    self.add(ctr, n);
                }
            }
        }

        fn llc_misses(&self, n: u64) {
            match self.pmu {
                Pmu::AmdCore { .. } => self.inject(0x43, 0x58, n, None),
                _ => self.inject(0x2E, 0x41, n, None),
            }
        }

        fn cycles(&self, n: u64) {
            match self.pmu {
                Pmu::AmdCore { .. } => self.inject(0x76, 0, n, None),
                _ => self.inject(0x3C, 0, n, Some(IA32_FIXED_CTR1)),
            }
        }

        fn instructions(&self, n: u64) {
            self.inject(0xC0, 0, n, Some(IA32_FIXED_CTR0));
        }
    }

    impl MsrAccess for &ModelPmu {
        unsafe fn read(&self, msr: u32) -> u64 {
            assert!(self.exists(msr), "#GP: rdmsr {msr:#x}");
            self.get(msr)
        }

        unsafe fn write(&self, msr: u32, value: u64) {
            assert!(self.exists(msr), "#GP: wrmsr {msr:#x}");
            let counter = self.gp().iter().any(|&(_, ctr)| ctr == msr)
                || (IA32_FIXED_CTR0..=IA32_FIXED_CTR1).contains(&msr);
            let value = if counter {
                value & wrapping_delta(0, u64::MAX, self.width(msr))
            } else {
                value
            };
            self.regs.borrow_mut().insert(msr, value);
        }
    }

    const INTEL_V4: Pmu = Pmu::IntelArch {
        version: 4,
        counters: 8,
        width: 48,
        fixed: 3,
        fixed_width: 40,
        llc_misses: true,
    };

    fn start(model: &ModelPmu) -> Counters<&ModelPmu> {
        // SAFETY: the model stands in for the hardware; nothing else uses it.
        unsafe { Counters::start(model.pmu, model) }.expect("a PMU to program")
    }

    fn sample(counters: &mut Counters<&ModelPmu>) -> HwCounts {
        // SAFETY: as in `start`.
        unsafe { counters.sample() }
    }

    fn counts(llc_misses: u64, cycles: u64, instructions: u64) -> HwCounts {
        HwCounts {
            llc_misses,
            cycles,
            instructions,
        }
    }

    #[test]
    fn intel_v2_and_later_count_llc_misses_on_pmc0_and_the_rest_on_fixed_counters() {
        let model = ModelPmu::new(INTEL_V4);
        let mut counters = start(&model);
        assert_eq!(model.get(IA32_PERFEVTSEL0), 0x43_412E);
        assert_eq!(model.get(IA32_FIXED_CTR_CTRL), 0x33);
        assert_eq!(model.get(IA32_PERF_GLOBAL_CTRL), 1 | 0b11 << 32);
        model.llc_misses(1000);
        model.cycles(5000);
        model.instructions(7000);
        model.inject(0x2E, 0x4F, 99, None); // LLC references: not counted
        assert_eq!(sample(&mut counters), counts(1000, 5000, 7000));
        model.llc_misses(3);
        assert_eq!(sample(&mut counters), counts(3, 0, 0));
    }

    #[test]
    fn deltas_stay_right_across_a_counter_wrap() {
        let model = ModelPmu::new(INTEL_V4);
        let mut counters = start(&model);
        let near_top = (1 << 48) - 10;
        model.llc_misses(near_top);
        assert_eq!(sample(&mut counters).llc_misses, near_top);
        model.llc_misses(25);
        assert_eq!(model.get(IA32_PMC0), 15, "the modelled counter wrapped");
        assert_eq!(sample(&mut counters).llc_misses, 25);
        // Fixed counters wrap at their own width (40 bits here).
        model.cycles((1 << 40) - 1);
        assert_eq!(sample(&mut counters).cycles, (1 << 40) - 1);
        model.cycles(2);
        assert_eq!(model.get(IA32_FIXED_CTR1), 1, "the fixed counter wrapped");
        assert_eq!(sample(&mut counters).cycles, 2);
        assert_eq!(wrapping_delta(u64::MAX - 1, 3, 64), 5);
    }

    #[test]
    fn intel_v1_uses_general_purpose_counters_and_never_touches_v2_registers() {
        // Version 1 has neither fixed counters nor the global control: the
        // model raises #GP if either is touched.
        let model = ModelPmu::new(Pmu::IntelArch {
            version: 1,
            counters: 4,
            width: 40,
            fixed: 0,
            fixed_width: 0,
            llc_misses: true,
        });
        let mut counters = start(&model);
        model.llc_misses(7);
        model.cycles(11);
        model.instructions(13);
        assert_eq!(sample(&mut counters), counts(7, 11, 13));

        let two = ModelPmu::new(Pmu::IntelArch {
            version: 1,
            counters: 2,
            width: 40,
            fixed: 0,
            fixed_width: 0,
            llc_misses: true,
        });
        let mut counters = start(&two);
        two.llc_misses(7);
        two.cycles(11);
        assert_eq!(
            sample(&mut counters),
            counts(7, 0, 0),
            "no counter for cycles"
        );
    }

    #[test]
    fn an_unavailable_llc_miss_event_is_not_programmed() {
        let model = ModelPmu::new(Pmu::IntelArch {
            version: 4,
            counters: 8,
            width: 48,
            fixed: 3,
            fixed_width: 48,
            llc_misses: false,
        });
        let mut counters = start(&model);
        assert_eq!(model.get(IA32_PERFEVTSEL0), 0);
        assert_eq!(model.get(IA32_PERF_GLOBAL_CTRL), 0b11 << 32);
        model.llc_misses(5);
        model.cycles(6);
        model.instructions(7);
        assert_eq!(sample(&mut counters), counts(0, 6, 7));
    }

    #[test]
    fn amd_core_counters_use_the_c001_0200_pairs() {
        let model = ModelPmu::new(Pmu::AmdCore { counters: 6 });
        let mut counters = start(&model);
        assert_eq!(model.get(AMD_PERF_CTL0), 0x43_5843);
        assert_eq!(model.get(AMD_PERF_CTL0 + 2), 0x43_0076);
        assert_eq!(model.get(AMD_PERF_CTL0 + 4), 0x43_00C0);
        model.llc_misses(40);
        model.cycles(50);
        model.instructions(60);
        assert_eq!(sample(&mut counters), counts(40, 50, 60));
        model.llc_misses((1 << 48) + 2);
        assert_eq!(sample(&mut counters).llc_misses, 2, "48-bit counters wrap");
    }

    #[test]
    fn no_pmu_programs_nothing() {
        let model = ModelPmu::new(Pmu::None);
        // SAFETY: the model stands in for the hardware.
        assert!(unsafe { Counters::start(Pmu::None, &model) }.is_none());
        assert!(model.regs.borrow().is_empty());
    }
}

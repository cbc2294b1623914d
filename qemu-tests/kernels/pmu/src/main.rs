//! `acealloc::arch::pmu::Pmu::detect()` on every CPU. QEMU's TCG reports no performance
//! counters in CPUID (leaf 0xA is zero, no AMD core counter extension), so detection must say
//! `Pmu::None`, and must get there without faulting: a fault would end the run as an exception.
#![no_std]
#![no_main]

use acealloc::arch::pmu::Pmu;
use acealloc_kernel_rt::{BootInfo, MAX_CPUS, cpu_count, entry, println, run_on_all_cpus};
use kernel_support::check;
use kernel_support::suite::Suite;
use spin::Once;

entry!(main);

fn main(_boot: &'static BootInfo) -> ! {
    let mut suite = Suite::start("pmu");
    suite.test("no PMU under TCG, on every CPU", || {
        let found: [Once<Pmu>; MAX_CPUS] = [const { Once::new() }; MAX_CPUS];
        run_on_all_cpus(&|cpu| {
            found[cpu].call_once(Pmu::detect);
        });
        for (cpu, pmu) in found.iter().take(cpu_count()).enumerate() {
            let pmu = *pmu.get().expect("every CPU ran the detection");
            println!("    cpu {cpu}: {pmu:?}");
            check!(pmu == Pmu::None, "cpu {cpu} detected {pmu:?} under TCG");
        }
    });
    suite.finish()
}

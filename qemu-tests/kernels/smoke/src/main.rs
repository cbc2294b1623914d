//! Smoke test of the kernel runtime: boot, memory map, every CPU up, timer ticks on each CPU.
//!
//! Command line words: `timer-hz=N` (default 1000) and `ticks=N` (default 20) set the timer test;
//! `fault` makes a deliberate page fault instead (the run must end with the exception code) and
//! `hang` spins forever with interrupts disabled (the runner's timeout must end it).
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU32, Ordering};

use acealloc_kernel_rt::{
    BootInfo, ExitCode, MAX_CPUS, MemoryKind, cpu_count, entry, exit, interrupts, println,
    run_on_all_cpus, timer,
};

entry!(main);

/// Timer ticks taken by each CPU.
static TICKS: [AtomicU32; MAX_CPUS] = [const { AtomicU32::new(0) }; MAX_CPUS];

fn count_tick(cpu: usize) {
    TICKS[cpu].fetch_add(1, Ordering::Relaxed);
}

fn main(boot: &'static BootInfo) -> ! {
    report_memory(boot);
    if boot.cmdline_flag("fault") {
        page_fault();
    }
    if boot.cmdline_flag("hang") {
        println!("smoke: hanging with interrupts disabled");
        loop {
            core::hint::spin_loop();
        }
    }
    let hz = number_arg(boot, "timer-hz", 1000);
    let ticks = number_arg(boot, "ticks", 20);
    println!(
        "smoke: {} CPUs, APIC bus clock {} MHz, {ticks} ticks at {hz} Hz on each",
        cpu_count(),
        timer::bus_frequency() / 1_000_000,
    );

    timer::set_handler(count_tick);
    run_on_all_cpus(&|cpu| {
        timer::start(hz);
        while TICKS[cpu].load(Ordering::Relaxed) < ticks {
            interrupts::enable_and_hlt();
        }
        timer::stop();
        interrupts::disable();
        println!(
            "smoke: cpu {cpu} took {} ticks",
            TICKS[cpu].load(Ordering::Relaxed)
        );
    });

    for (cpu, count) in TICKS.iter().enumerate() {
        let count = count.load(Ordering::Relaxed);
        let expected = if cpu < cpu_count() {
            ticks..=u32::MAX
        } else {
            0..=0
        };
        if !expected.contains(&count) {
            println!("smoke: FAILED: cpu {cpu} took {count} ticks, expected {expected:?}");
            exit(ExitCode::Failure);
        }
    }
    println!("smoke: passed");
    exit(ExitCode::Success)
}

fn report_memory(boot: &BootInfo) {
    println!("smoke: command line {:?}", boot.cmdline());
    for region in boot.memory_map() {
        println!(
            "smoke: memory {:#012x}..{:#012x} {:?}",
            region.start,
            region.end(),
            region.kind
        );
    }
    let ram: u64 = boot
        .memory_map()
        .iter()
        .filter(|region| region.kind == MemoryKind::Ram)
        .map(|region| region.len)
        .sum();
    let usable: u64 = boot.usable_ram().map(|range| range.end - range.start).sum();
    println!(
        "smoke: {} MiB RAM, {} MiB usable above the kernel",
        ram >> 20,
        usable >> 20
    );
}

/// The number given as `key=N` on the command line, or `default`.
fn number_arg(boot: &BootInfo, key: &str, default: u32) -> u32 {
    boot.cmdline_value(key).map_or(default, |value| {
        value
            .parse()
            .unwrap_or_else(|_| panic!("{key}={value} is not a number"))
    })
}

/// Reads an unmapped address; the runtime reports the page fault and exits with the exception
/// code.
fn page_fault() -> ! {
    // Above the 1 GiB identity map and below the local APIC: not mapped.
    let unmapped = 0x8000_0000 as *const u8;
    println!("smoke: reading {unmapped:p} to force a page fault");
    // SAFETY: deliberately invalid. The read faults before producing a value, and the runtime's
    // exception handler ends the machine, so execution never continues past it.
    let value = unsafe { core::ptr::read_volatile(unmapped) };
    println!("smoke: FAILED: the read returned {value} instead of faulting");
    exit(ExitCode::Failure)
}

//! Every CPU allocates and frees at the same time on one acealloc heap (frame provider, 64 MiB
//! range), blocks of 16 B–64 KiB with checked contents, half of them freed by another CPU
//! (through per-CPU mailboxes), while the per-CPU caches serve them. Then `mixed-ws400` on every
//! CPU, then trimming. With the command line word `checks` the heap runs in checked mode and
//! any misuse it reports fails the run.
#![no_std]
#![no_main]

use acealloc::{Allocator, Config, Misuse};
use acealloc_kernel_rt::{BootInfo, MAX_CPUS, cpu_count, entry, println, run_on_all_cpus};
use kernel_support::check;
use kernel_support::frames::PhysicalFrames;
use kernel_support::heaps::{self, CONFIG, FrameHeap};
use kernel_support::pattern::Coverage;
use kernel_support::suite::Suite;
use kernel_support::workload::{CrossCpuReport, Mailboxes, Mixed};
use spin::mutex::SpinMutex;

entry!(main);

static HEAP: FrameHeap = Allocator::new();

/// Steps of the cross-CPU workload on each CPU.
const CROSS_STEPS: u64 = 10_000;
/// Steps of `mixed-ws400` on each CPU.
const MIXED_STEPS: u64 = 200_000;

fn report_misuse(misuse: &Misuse) {
    check!(false, "acealloc reports misuse: {misuse:?}");
}

fn main(boot: &'static BootInfo) -> ! {
    let mut suite = Suite::start("concurrent");
    let config = if boot.cmdline_flag("checks") {
        Config {
            checks: true,
            misuse_hook: Some(report_misuse),
            ..CONFIG
        }
    } else {
        CONFIG
    };
    suite.test("init over the frame provider", || {
        let result = heaps::init_frame_heap(&HEAP, PhysicalFrames::init(boot), config);
        check!(result.is_ok(), "init failed: {result:?}");
        println!("    checked mode: {}", config.checks);
    });
    suite.test("all CPUs allocate, free each other's blocks", cross_cpu);
    suite.test("mixed-ws400 on all CPUs", mixed);
    suite.test("each CPU trims its cache", trim);
    suite.finish()
}

fn cross_cpu() {
    let cpus = cpu_count();
    let mailboxes = Mailboxes::new();
    let reports: [SpinMutex<CrossCpuReport>; MAX_CPUS] = Default::default();
    let before: [_; MAX_CPUS] = core::array::from_fn(|cpu| HEAP.cpu_stats(cpu).unwrap_or_default());
    run_on_all_cpus(&|cpu| {
        *reports[cpu].lock() = mailboxes.run(&HEAP, cpu, cpus, CROSS_STEPS, Coverage::Full);
    });
    let left = mailboxes.drain(Coverage::Full);
    let mut received = left;
    let mut sent = 0;
    for cpu in 0..cpus {
        let report = *reports[cpu].lock();
        let stats = HEAP.cpu_stats(cpu).unwrap_or_default();
        let allocs = stats.allocs - before[cpu].allocs;
        let hits = allocs.saturating_sub(stats.misses - before[cpu].misses);
        println!(
            "    cpu {cpu}: {} allocated, {} sent, {} received; cache: {allocs} allocations, {hits} hits",
            report.allocated, report.sent, report.received
        );
        check!(
            report.allocated == CROSS_STEPS,
            "cpu {cpu} stopped after {} of {CROSS_STEPS} steps",
            report.allocated
        );
        check!(
            report.sent > 0 && report.received > 0,
            "cpu {cpu} exchanged no blocks"
        );
        check!(
            hits > 0,
            "cpu {cpu}'s cache served no allocation from its own blocks"
        );
        sent += report.sent;
        received += report.received;
    }
    check!(
        sent == received,
        "{sent} blocks sent, {received} received or left in mailboxes ({left})"
    );
    let live = HEAP.stats().live_bytes;
    check!(live == 0, "{live} bytes live after every block was freed");
}

fn mixed() {
    let operations: [SpinMutex<u64>; MAX_CPUS] = Default::default();
    run_on_all_cpus(&|cpu| {
        let mut workload = Mixed::new(&HEAP, cpu as u64, Coverage::Full);
        workload.run(MIXED_STEPS);
        workload.release();
        *operations[cpu].lock() = workload.operations();
    });
    for (cpu, operations) in operations.iter().take(cpu_count()).enumerate() {
        let operations = *operations.lock();
        check!(
            operations == MIXED_STEPS,
            "cpu {cpu} stopped after {operations} of {MIXED_STEPS} steps"
        );
    }
    let stats = HEAP.stats();
    check!(
        stats.live_bytes == 0,
        "{} bytes live after every block was freed",
        stats.live_bytes
    );
    println!(
        "    {} allocations in all, {} cache hits; depot lock contended {} times",
        stats.allocs(),
        stats.cache_hits(),
        stats.depot_contended
    );
}

fn trim() {
    let before = HEAP.stats().committed_bytes;
    run_on_all_cpus(&|_| HEAP.trim());
    let after = HEAP.stats().committed_bytes;
    for cpu in 0..cpu_count() {
        let cached = HEAP.cpu_stats(cpu).unwrap_or_default().cached_blocks;
        check!(cached == 0, "cpu {cpu} still caches {cached} blocks");
    }
    check!(
        after < before,
        "committed {before} bytes before trimming, {after} after"
    );
    println!(
        "    committed {} KiB before, {} KiB after",
        before / 1024,
        after / 1024
    );
}

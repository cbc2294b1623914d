//! A kernel whose allocating code is C: `c/heap.c`, compiled with `gcc -ffreestanding` and
//! linked in, sets acealloc up and allocates through `acealloc.h`'s freestanding API (the
//! `acealloc-capi` crate, as `libacealloc.a` would give a C kernel). This Rust side is only the
//! kernel's platform: it hands C the CPU index, interrupt masking and the TSC as callbacks and a
//! 16 MiB region of `.bss`, starts the timers, and reports.
//!
//! On 4 CPUs, each CPU's worker (C) mallocs, callocs, aligned-allocs and reallocs patterned
//! blocks, interrupts on, while its timer interrupt (`timer-hz`) runs the C tick, which ticks
//! ACE, allocates and frees, keeps blocks across ticks and calls `acealloc_maintain`. Checked
//! mode is on: a double free and an interior free must reach the C misuse hook with kind and
//! address. At the end every block must be back.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

use acealloc::arch::{cpu, irq};
use acealloc_capi::kernel::CPlatform;
use acealloc_kernel_rt::{
    BootInfo, MAX_CPUS, cpu_count, cpu_index, entry, interrupts, println, run_on_all_cpus, timer,
};
use kernel_support::static_memory::{PageAligned, StaticMut};
use kernel_support::suite::Suite;
use kernel_support::{args, check, clock};

entry!(main);

const REGION_SIZE: usize = 16 << 20;
static REGION: StaticMut<PageAligned<REGION_SIZE>> = StaticMut::new(PageAligned([0; REGION_SIZE]));

unsafe extern "C" {
    fn c_heap_init_too_small(platform: *const CPlatform, region: *mut u8) -> i32;
    fn c_heap_init(platform: *const CPlatform, region: *mut u8, len: usize) -> i32;
    fn c_heap_misuse_reports() -> i32;
    fn c_heap_worker(cpu: u32, seed: u64, steps: u64) -> u64;
    fn c_heap_tick(cpu: u32);
    fn c_heap_ticks(cpu: u32) -> u64;
    fn c_heap_tick_errors(cpu: u32) -> u64;
    fn c_heap_ticks_inside(cpu: u32) -> u64;
    fn c_heap_finish(cpus: u32) -> u64;
}

extern "C" fn current_cpu() -> u32 {
    cpu_index() as u32
}

extern "C" fn irq_save() -> usize {
    irq::save_and_disable()
}

extern "C" fn irq_restore(state: usize) {
    irq::restore(state)
}

extern "C" fn now() -> u64 {
    cpu::rdtsc()
}

/// Errors each CPU's worker found.
static WORKER_ERRORS: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

fn on_tick(cpu: usize) {
    // SAFETY: the C tick only uses its own CPU's state and the allocator's interrupt-safe API.
    unsafe { c_heap_tick(cpu as u32) };
}

fn main(boot: &'static BootInfo) -> ! {
    let hz = args::number(boot, "timer-hz", 2000) as u32;
    let steps = args::number(boot, "steps", 4000);
    let mut suite = Suite::start("c-heap");
    clock::calibrate();
    let cpus = cpu_count();
    suite.test(
        "acealloc_init from C: a region too small refused, then the kernel's region taken",
        || {
            let platform = CPlatform {
                cpu_count: cpus as u32,
                current_cpu,
                irq_save,
                irq_restore,
                now,
                clock_hz: clock::tsc_hz(),
            };
            let region = &mut REGION.take().0;
            // SAFETY: the region is ours for good (`take`); the callbacks keep the platform
            // contract: the runtime's fixed CPU index, interrupts masked, no scheduler. A
            // refused region is not kept, so the whole of it can go to the second call.
            let small = unsafe { c_heap_init_too_small(&platform, region.as_mut_ptr()) };
            check!(
                small == -2,
                "acealloc_init on one page returned {small}, not -2"
            );
            // SAFETY: as above.
            let result = unsafe { c_heap_init(&platform, region.as_mut_ptr(), region.len()) };
            check!(
                result == 0,
                "acealloc_init after a refused region returned {result}"
            );
        },
    );
    suite.test(
        "checked mode: misuse reaches the C hook with kind and address",
        || {
            // SAFETY: C code on the initialised allocator.
            let errors = unsafe { c_heap_misuse_reports() };
            check!(errors == 0, "{errors} wrong misuse reports");
        },
    );
    suite.test(
        "C workers on every CPU while C timer ticks allocate",
        || {
            timer::set_handler(on_tick);
            run_on_all_cpus(&|cpu| {
                timer::start(hz);
                interrupts::enable();
                // SAFETY: C code on the initialised allocator; each CPU uses its own state.
                let errors = unsafe { c_heap_worker(cpu as u32, 0x5EED + cpu as u64, steps) };
                interrupts::disable();
                timer::stop();
                WORKER_ERRORS[cpu].store(errors, Relaxed);
            });
            for (cpu, worker_errors) in WORKER_ERRORS.iter().enumerate().take(cpus) {
                // SAFETY: plain reads of the C side's counters; the timers are stopped.
                let (ticks, inside, tick_errors) = unsafe {
                    let cpu = cpu as u32;
                    (
                        c_heap_ticks(cpu),
                        c_heap_ticks_inside(cpu),
                        c_heap_tick_errors(cpu),
                    )
                };
                let errors = worker_errors.load(Relaxed);
                println!(
                    "    cpu {cpu}: {steps} worker steps, {errors} errors; {ticks} ticks \
                 ({inside} inside an allocator call), {tick_errors} errors"
                );
                check!(errors == 0, "cpu {cpu}: the worker found {errors} errors");
                check!(
                    tick_errors == 0,
                    "cpu {cpu}: the ticks found {tick_errors} errors"
                );
                check!(
                    inside > 0,
                    "cpu {cpu}: no tick landed inside an allocator call"
                );
            }
        },
    );
    suite.test("every block back at the end (acealloc_stats)", || {
        // SAFETY: C code; the timers are stopped, nothing else allocates.
        let errors = unsafe { c_heap_finish(cpus as u32) };
        check!(errors == 0, "{errors} wrong statistics at the end");
    });
    suite.finish()
}

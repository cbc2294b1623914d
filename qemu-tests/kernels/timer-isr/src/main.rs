//! The timer interrupt handler allocates and frees on every tick while the code it interrupts is
//! in a tight allocate/free loop on the same CPU: the case that deadlocks a spin-locked heap. The
//! local APIC timer runs at `timer-hz` (10 kHz) on all CPUs for `seconds` of guest time, on one
//! acealloc heap (frame provider). Every block carries a checked pattern; the handler also keeps
//! blocks across ticks, so corruption of either side by the other shows. A deadlock shows as the
//! runner's timeout.
//!
//! TCG delivers only the ticks the host has time to emulate (with 4 busy CPUs on 2 host cores,
//! a sixth of them or, on a loaded host, far fewer), so the run goes on past `seconds` until
//! every CPU has handled [`MIN_TICKS`] ticks, one of them during an allocator call, for at most
//! [`MAX_SECONDS`].
//!
//! With `ace=1` (the `timer-isr-ace` run) every tick also drives ACE, the adaptive control
//! engine, from the same handler on every CPU, and the run prints ACE's decision trace and
//! what its ticks cost. Decommit is on, so ACE's scavenge unmaps idle runs from the handler:
//! each is a TLB shootdown to every other CPU from interrupt context, interrupts masked (see
//! `kernel_support::heaps::init_frame_heap`).
#![no_std]
#![no_main]

use core::alloc::{GlobalAlloc, Layout};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use acealloc::Allocator;
use acealloc::ace::{Ace, AceConfig, Knob, Tunable};
use acealloc::arch::msr::Rdmsr;
use acealloc::arch::pmu::{Counters, Pmu};
use acealloc_kernel_rt::{
    BootInfo, MAX_CPUS, cpu_count, cpu_index, entry, interrupts, println, run_on_all_cpus, timer,
};
use kernel_support::clock::{self, Stopwatch};
use kernel_support::frames::PhysicalFrames;
use kernel_support::heaps::{self, CONFIG, FrameHeap};
use kernel_support::pattern::{Coverage, Patterned};
use kernel_support::rng::Rng;
use kernel_support::suite::Suite;
use kernel_support::{args, check};
use spin::mutex::SpinMutex;

entry!(main);

static HEAP: FrameHeap = Allocator::new();

/// Block sizes the handler allocates and frees on every tick.
const TICK_SIZES: [usize; 3] = [24, 200, 1500];
/// Every this many ticks the handler also takes a large-path block.
const LARGE_EVERY: u64 = 64;
const LARGE: usize = 40 * 1024;
/// Blocks the handler keeps from one tick to the next.
const KEPT_BY_HANDLER: usize = 8;
/// Blocks the interrupted loop keeps.
const KEPT_BY_LOOP: usize = 32;
/// Ticks every CPU must handle.
const MIN_TICKS: u64 = 1000;
/// Longest run, in seconds of guest time.
const MAX_SECONDS: u64 = 20;

/// What one CPU's timer handler keeps between ticks. Only that CPU's handler locks it while the
/// timers run (interrupt gates keep handlers from nesting), so the lock is never contended.
struct HandlerState {
    kept: [Option<Patterned<'static, FrameHeap>>; KEPT_BY_HANDLER],
    allocations: u64,
}

static HANDLERS: [SpinMutex<HandlerState>; MAX_CPUS] = [const {
    SpinMutex::new(HandlerState {
        kept: [const { None }; KEPT_BY_HANDLER],
        allocations: 0,
    })
}; MAX_CPUS];

/// Ticks each CPU's handler took.
static TICKS: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
/// Ticks that arrived while the interrupted loop was inside an allocator call.
static TICKS_INSIDE_ALLOCATOR: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
/// Set while the interrupted loop of a CPU is inside `alloc` or `dealloc`.
static IN_ALLOCATOR: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];
/// Operations (allocations plus frees) of each CPU's interrupted loop.
static LOOP_OPERATIONS: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
static STOP: AtomicBool = AtomicBool::new(false);

/// [`HEAP`] as the interrupted loop uses it: marks the CPU as inside an allocator call.
struct MarkedHeap;

// SAFETY: forwards to `HEAP`, which upholds the `GlobalAlloc` contract.
unsafe impl GlobalAlloc for MarkedHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let inside = &IN_ALLOCATOR[cpu_index()];
        inside.store(true, Relaxed);
        let block = HEAP.alloc(layout);
        inside.store(false, Relaxed);
        block
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let inside = &IN_ALLOCATOR[cpu_index()];
        inside.store(true, Relaxed);
        // SAFETY: forwarded caller contract.
        unsafe { HEAP.dealloc(ptr, layout) };
        inside.store(false, Relaxed);
    }
}

static MARKED: MarkedHeap = MarkedHeap;

/// ACE, on in the `ace=1` run: every CPU's timer handler ticks it.
static ACE: Ace = Ace::new();

/// Each CPU's PMU counters, where its CPU has a PMU (none under QEMU TCG). Only that CPU's
/// handler samples them, so the lock is never contended.
static PMU: [SpinMutex<Option<Counters<Rdmsr>>>; MAX_CPUS] =
    [const { SpinMutex::new(None) }; MAX_CPUS];

fn layout(size: usize) -> Layout {
    Layout::from_size_align(size, 8).expect("valid layout")
}

/// The timer handler: allocates, checks and frees blocks of every [`TICK_SIZES`] size, replaces
/// one kept block, and now and then takes a large block.
fn on_tick(cpu: usize) {
    if ACE.is_enabled() {
        let hw = PMU[cpu].try_lock().and_then(|mut counters| {
            // SAFETY: this CPU's counters, started on this CPU; the handler runs in ring 0.
            counters.as_mut().map(|c| unsafe { c.sample() })
        });
        ACE.tick(&HEAP, hw);
    }
    let Some(mut state) = HANDLERS[cpu].try_lock() else {
        check!(
            false,
            "the timer handler's state is busy: handler re-entered"
        );
        return;
    };
    let ticks = TICKS[cpu].fetch_add(1, Relaxed) + 1;
    if IN_ALLOCATOR[cpu].load(Relaxed) {
        TICKS_INSIDE_ALLOCATOR[cpu].fetch_add(1, Relaxed);
    }
    let seed = ticks << 8 | cpu as u64;
    let large = ticks
        .is_multiple_of(LARGE_EVERY)
        .then_some((LARGE, Coverage::Ends));
    let sizes = TICK_SIZES.map(|size| (size, Coverage::Full));
    for (size, coverage) in sizes.into_iter().chain(large) {
        let Some(block) = Patterned::alloc(&HEAP, layout(size), seed, coverage) else {
            check!(false, "the handler got no {size}-byte block");
            return;
        };
        state.allocations += 1;
        block.free(coverage);
    }
    let slot = (ticks % KEPT_BY_HANDLER as u64) as usize;
    let size = TICK_SIZES[slot % TICK_SIZES.len()];
    let block = Patterned::alloc(&HEAP, layout(size), seed, Coverage::Full);
    if !check!(block.is_some(), "the handler got no {size}-byte block") {
        return;
    }
    state.allocations += 1;
    if let Some(old) = core::mem::replace(&mut state.kept[slot], block) {
        old.free(Coverage::Full);
    }
}

/// Whether every CPU has handled enough ticks, one of them during an allocator call.
fn enough_ticks() -> bool {
    (0..cpu_count()).all(|cpu| {
        TICKS[cpu].load(Relaxed) >= MIN_TICKS && TICKS_INSIDE_ALLOCATOR[cpu].load(Relaxed) > 0
    })
}

/// The interrupted code: allocates 16–2048 bytes (now and then 40 KiB), keeps the block in a
/// random slot and frees the one it replaces, until [`STOP`]. CPU 0 sets `STOP` once `millis`
/// have passed and every CPU has [`enough_ticks`], or after [`MAX_SECONDS`]. Returns the time
/// the run took.
fn allocate_until_stopped(cpu: usize, hz: u32, millis: u64) -> u64 {
    let mut rng = Rng::new(cpu as u64 + 1);
    let mut kept: [Option<Patterned<'static, MarkedHeap>>; KEPT_BY_LOOP] =
        [const { None }; KEPT_BY_LOOP];
    let stopwatch = Stopwatch::start();
    let mut operations = 0;
    timer::start(hz);
    interrupts::enable();
    'run: while !STOP.load(Relaxed) {
        for _ in 0..64 {
            let r = rng.next_u64();
            let size = if r.is_multiple_of(256) {
                LARGE
            } else {
                16 + (r >> 8) as usize % 2033
            };
            let Some(block) = Patterned::alloc(&MARKED, layout(size), r, Coverage::Full) else {
                check!(false, "the loop got no {size}-byte block");
                break 'run;
            };
            operations += 1;
            if let Some(old) = kept[(r >> 32) as usize % KEPT_BY_LOOP].replace(block) {
                if !old.free(Coverage::Full) {
                    break 'run;
                }
                operations += 1;
            }
        }
        if cpu == 0 {
            let elapsed = stopwatch.millis();
            if elapsed >= millis && enough_ticks() || elapsed >= MAX_SECONDS * 1000 {
                STOP.store(true, Relaxed);
            }
        }
    }
    timer::stop();
    interrupts::disable();
    for block in kept.iter_mut().filter_map(Option::take) {
        block.free(Coverage::Full);
        operations += 1;
    }
    LOOP_OPERATIONS[cpu].store(operations, Relaxed);
    stopwatch.millis()
}

fn main(boot: &'static BootInfo) -> ! {
    let hz = args::number(boot, "timer-hz", 10_000) as u32;
    let seconds = args::number(boot, "seconds", 3);
    let ace = args::number(boot, "ace", 0) != 0;
    let mut suite = Suite::start("timer-isr");
    suite.test("init over the frame provider", || {
        let result = heaps::init_frame_heap(&HEAP, PhysicalFrames::init(boot), CONFIG);
        check!(result.is_ok(), "init failed: {result:?}");
    });
    if ace {
        suite.test("ACE on, with the PMU counters every CPU has", || {
            start_ace(boot)
        });
    }
    suite.test(
        "handler allocates on every tick, loop allocates meanwhile",
        || {
            timer::set_handler(on_tick);
            let elapsed = AtomicU64::new(0);
            run_on_all_cpus(&|cpu| {
                let millis = allocate_until_stopped(cpu, hz, seconds * 1000);
                if cpu == 0 {
                    elapsed.store(millis, Relaxed);
                }
            });
            report(hz, elapsed.load(Relaxed));
        },
    );
    if ace {
        suite.test("ACE ticked on every CPU and acted", report_ace);
    }
    suite.finish()
}

/// Prints and checks what each CPU did in `millis` of guest time, then frees the handlers' kept
/// blocks.
fn report(hz: u32, millis: u64) {
    let due = u64::from(hz) * millis / 1000;
    println!("    {millis} ms at {hz} Hz: {due} ticks due on each CPU");
    let (mut ticks, mut allocations) = (0, 0);
    for cpu in 0..cpu_count() {
        let mut state = HANDLERS[cpu].lock();
        let handled = TICKS[cpu].load(Relaxed);
        let inside = TICKS_INSIDE_ALLOCATOR[cpu].load(Relaxed);
        let operations = LOOP_OPERATIONS[cpu].load(Relaxed);
        println!(
            "    cpu {cpu}: {handled} ticks ({}% of those due), {} allocations in the handler, {inside} ticks inside an allocator call; {operations} operations in the loop",
            handled * 100 / due.max(1),
            state.allocations,
        );
        check!(
            handled >= MIN_TICKS,
            "cpu {cpu} handled {handled} ticks, fewer than {MIN_TICKS}"
        );
        check!(
            inside > 0,
            "no tick on cpu {cpu} arrived during an allocator call"
        );
        check!(operations > 0, "cpu {cpu}'s loop did nothing");
        ticks += handled;
        allocations += state.allocations;
        for block in state.kept.iter_mut().filter_map(Option::take) {
            block.free(Coverage::Full);
        }
    }
    let live = HEAP.stats().live_bytes;
    check!(live == 0, "{live} bytes live after every block was freed");
    println!("    {ticks} ticks handled, {allocations} allocations in the handler, in all");
}

/// Starts each CPU's PMU counters (none under TCG: detection says so from CPUID) and switches
/// ACE on with the fast and slow intervals of the command line (`ace-fast-ms`, `ace-slow-s`).
fn start_ace(boot: &BootInfo) {
    run_on_all_cpus(&|cpu| {
        let pmu = Pmu::detect();
        // SAFETY: ring 0, on the CPU `pmu` was detected on; nothing else in this kernel uses
        // the performance counters.
        *PMU[cpu].lock() = unsafe { Counters::start(pmu, Rdmsr) };
        if cpu == 0 {
            println!("    PMU: {pmu:?}");
        }
    });
    let config = AceConfig {
        fast_ms: args::number(boot, "ace-fast-ms", 100),
        slow_s: args::number(boot, "ace-slow-s", 1),
        tick_budget_us: args::number(boot, "ace-budget-us", AceConfig::DEFAULT.tick_budget_us),
        ..AceConfig::DEFAULT
    };
    let hz = acealloc::arch::cpu::tsc_hz().unwrap_or_else(clock::tsc_hz);
    println!(
        "    ACE: fast {} ms, slow {} s, tick budget {} us; clock {} MHz",
        config.fast_ms,
        config.slow_s,
        config.tick_budget_us,
        hz / 1_000_000
    );
    ACE.enable(&HEAP, config, hz);
    HEAP.attach_ace(&ACE);
}

/// TSC cycles of the fastest of 32 calls of `f` (a descheduled vCPU only slows the others).
fn fastest_of_32(f: impl Fn()) -> u64 {
    (0..32)
        .map(|_| {
            let start = acealloc::arch::cpu::rdtsc();
            f();
            acealloc::arch::cpu::rdtsc().wrapping_sub(start)
        })
        .min()
        .unwrap_or(0)
}

/// Prints ACE's decision trace and tick cost, read through the allocator's statistics API;
/// checks that it decided on ticks, and, if a guard switched it off, says which.
fn report_ace() {
    let Some(report) = HEAP.ace_stats() else {
        check!(false, "ACE is not attached to the heap");
        return;
    };
    let status = report.status;
    for decision in report.decisions() {
        println!("    {decision}");
    }
    let hz = acealloc::arch::cpu::tsc_hz().unwrap_or_else(clock::tsc_hz);
    let ns = |cycles: u64| (u128::from(cycles) * 1_000_000_000 / u128::from(hz)) as u64;
    let mean = status.total_tick / status.deciding_ticks.max(1);
    println!(
        "    ACE: {} deciding ticks, {} decisions; tick cost mean {} cycles ({} ns), max {} cycles ({} ns); on: {}, switched off by: {:?}",
        status.deciding_ticks,
        status.decisions,
        mean,
        ns(mean),
        status.max_tick,
        ns(status.max_tick),
        status.enabled,
        status.off_reason,
    );
    // What a deciding tick reads: the lean totals, against the full snapshot it replaced.
    let (stats, totals) = (
        fastest_of_32(|| {
            core::hint::black_box(HEAP.stats());
        }),
        fastest_of_32(|| {
            core::hint::black_box(Tunable::totals(&HEAP));
        }),
    );
    println!(
        "    ACE reads: full stats() {} cycles ({} ns), lean totals {} cycles ({} ns); fastest of 32",
        stats,
        ns(stats),
        totals,
        ns(totals)
    );
    // A steady workload gives ACE no reason to move a knob (its bandit, which moved them
    // whatever the signals, is gone); that it decides on the ticks is what this run checks.
    // The demo kernel's quiet spells make it act.
    check!(status.deciding_ticks > 0, "ACE never decided on a tick");
    let acted = report.decisions().iter().any(|d| d.knob != Knob::Engine);
    println!("    ACE changed a knob: {acted}");
    ACE.disable(&HEAP);
}

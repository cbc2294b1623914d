//! The demo kernel, run by `cargo xtask demo`: acealloc as the heap of a kernel on 4 CPUs. Every
//! CPU runs `mixed-ws400` (400 slots of 16–1040 bytes) with a 48 KiB block now and then, and
//! once a second of guest time CPU 0 prints a row: each CPU's operations in that second, each
//! CPU's cache hit rate, committed and live memory, and the knob values. Halfway through, the
//! knobs change to small caches, to show what they do. Then a summary, and the run passes if
//! every block came back intact.
//!
//! With `ace=1` (`cargo xtask demo --ace`, and the `demo-ace` test run) ACE tunes the knobs
//! instead: a 1 kHz timer on every CPU ticks it, the knob columns show its moves, and its
//! decision trace closes the run. Its scavenge decommits idle runs from the timer handler, each
//! with a TLB shootdown to every CPU, as in `timer-isr-ace`.
#![no_std]
#![no_main]

use core::alloc::Layout;
use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};

use acealloc::ace::{Ace, AceConfig, Knob};
use acealloc::{Allocator, CpuStats, Knobs};
use acealloc_kernel_rt::{
    BootInfo, ExitCode, MAX_CPUS, cpu_count, entry, exit, interrupts, println, run_on_all_cpus,
    timer,
};
use kernel_support::clock::{self, Stopwatch};
use kernel_support::frames::PhysicalFrames;
use kernel_support::heaps::{self, CONFIG, FRAME_HEAP_START, FrameHeap};
use kernel_support::pattern::{Coverage, Patterned};
use kernel_support::workload::Mixed;
use kernel_support::{args, check, suite};

entry!(main);

static HEAP: FrameHeap = Allocator::new();

/// Mixed steps between two looks at the clock (and between two large blocks).
const BATCH: u64 = 1024;
const LARGE: usize = 48 * 1024;
/// The knobs of the second half: small caches and bundles.
const SMALL_CACHES: Knobs = Knobs {
    cache_capacity: 8,
    bundle_width: 4,
    drain_threshold: 32,
    ..Knobs::DEFAULT
};

/// Operations (allocations plus frees) of each CPU so far.
static OPERATIONS: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
static STOP: AtomicBool = AtomicBool::new(false);
/// Most bytes committed at the end of any second.
static PEAK_COMMITTED: AtomicUsize = AtomicUsize::new(0);

/// ACE, on with `ace=1`, ticked by every CPU's timer.
static ACE: Ace = Ace::new();
/// Timer rate of the `ace=1` run.
const ACE_TIMER_HZ: u32 = 1000;

fn tick_ace(_cpu: usize) {
    ACE.tick(&HEAP, None);
}

fn main(boot: &'static BootInfo) -> ! {
    let seconds = args::number(boot, "seconds", 5);
    let ace = args::number(boot, "ace", 0) != 0;
    clock::calibrate();
    if let Err(error) = heaps::init_frame_heap(&HEAP, PhysicalFrames::init(boot), CONFIG) {
        println!("demo: heap init failed: {error:?}");
        exit(ExitCode::Failure);
    }
    let cpus = cpu_count();
    println!(
        "demo: acealloc on {cpus} CPUs, heap of frames mapped on demand at {FRAME_HEAP_START:#x}"
    );
    println!(
        "demo: every CPU runs mixed-ws400 (400 slots, 16-1040 B) plus a {} KiB block every {BATCH} steps",
        LARGE / 1024
    );
    if ace {
        // TCG runs a deciding tick about a hundred times slower than hardware: a 20 ms budget.
        let config = AceConfig {
            fast_ms: 250,
            slow_s: 2,
            tick_budget_us: 20_000,
            ..AceConfig::DEFAULT
        };
        println!(
            "demo: ACE tunes the knobs (fast loop {} ms, slow loop {} s), ticked by a {ACE_TIMER_HZ} Hz timer on every CPU",
            config.fast_ms, config.slow_s
        );
        ACE.enable(&HEAP, config, clock::tsc_hz());
        HEAP.attach_ace(&ACE);
        timer::set_handler(tick_ace);
    } else {
        println!("demo: the knobs shrink after {} s", seconds / 2);
    }
    println!("{}", Header(cpus));
    let stopwatch = Stopwatch::start();
    run_on_all_cpus(&|cpu| {
        let mut workload = Mixed::new(&HEAP, cpu as u64, Coverage::Full);
        let large = Layout::from_size_align(LARGE, 8).expect("valid layout");
        let mut large_operations = 0;
        let mut table = (cpu == 0).then(|| Table::new(cpus, seconds, !ace));
        if ace {
            timer::start(ACE_TIMER_HZ);
            interrupts::enable();
        }
        while !STOP.load(Relaxed) {
            let mixed_intact = workload.run(BATCH);
            let large_intact = Patterned::alloc(&HEAP, large, cpu as u64, Coverage::Ends)
                .is_some_and(|block| block.free(Coverage::Ends));
            large_operations += 2;
            OPERATIONS[cpu].store(workload.operations() + large_operations, Relaxed);
            let failed = !(mixed_intact && check!(large_intact, "no intact {LARGE}-byte block"));
            let done = table.as_mut().is_some_and(Table::tick);
            if failed || done {
                STOP.store(true, Relaxed);
            }
        }
        if ace {
            timer::stop();
            interrupts::disable();
        }
        workload.release();
    });
    summary(stopwatch.millis());
    if ace {
        ace_summary();
    }
    exit(if suite::failed_checks() == 0 {
        ExitCode::Success
    } else {
        ExitCode::Failure
    })
}

/// The table's column titles.
struct Header(usize);

impl fmt::Display for Header {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "demo: sec")?;
        for cpu in 0..self.0 {
            write!(f, "  cpu{cpu} ops/s")?;
        }
        for cpu in 0..self.0 {
            write!(f, "  hit% {cpu}")?;
        }
        write!(f, "   committed        live   cap bundle drain")
    }
}

/// CPU 0's view of the run: prints a row each second.
struct Table {
    cpus: usize,
    seconds: u64,
    stopwatch: Stopwatch,
    /// Seconds reported so far.
    reported: u64,
    operations: [u64; MAX_CPUS],
    cache: [CpuStats; MAX_CPUS],
    /// Whether to shrink the knobs halfway (not while ACE tunes them).
    shrink: bool,
}

impl Table {
    fn new(cpus: usize, seconds: u64, shrink: bool) -> Table {
        Table {
            cpus,
            seconds,
            shrink,
            stopwatch: Stopwatch::start(),
            reported: 0,
            operations: [0; MAX_CPUS],
            cache: [CpuStats::default(); MAX_CPUS],
        }
    }

    /// Prints a row if another second has passed (and changes the knobs halfway); true once
    /// every second has been reported.
    fn tick(&mut self) -> bool {
        if self.stopwatch.millis() < (self.reported + 1) * 1000 {
            return false;
        }
        self.reported += 1;
        let row = Row::take(self);
        println!("{row}");
        if self.shrink && self.reported == self.seconds / 2 {
            HEAP.set_knobs(SMALL_CACHES);
        }
        self.reported >= self.seconds
    }
}

/// One second of the table.
struct Row {
    second: u64,
    cpus: usize,
    operations: [u64; MAX_CPUS],
    /// Cache hit rates in per mille.
    hits: [u64; MAX_CPUS],
    committed: usize,
    live: usize,
    knobs: Knobs,
}

impl Row {
    /// The row for the second that just ended; moves the table's baselines on.
    fn take(table: &mut Table) -> Row {
        let mut row = Row {
            second: table.reported,
            cpus: table.cpus,
            operations: [0; MAX_CPUS],
            hits: [0; MAX_CPUS],
            committed: 0,
            live: 0,
            knobs: HEAP.knobs(),
        };
        for (cpu, operations) in OPERATIONS.iter().enumerate().take(table.cpus) {
            let operations = operations.load(Relaxed);
            row.operations[cpu] = operations - table.operations[cpu];
            table.operations[cpu] = operations;
            let cache = HEAP.cpu_stats(cpu).unwrap_or_default();
            let second = CpuStats {
                allocs: cache.allocs - table.cache[cpu].allocs,
                misses: cache.misses - table.cache[cpu].misses,
                ..cache
            };
            row.hits[cpu] = second.hit_permille();
            table.cache[cpu] = cache;
        }
        let stats = HEAP.stats();
        row.committed = stats.committed_bytes;
        row.live = stats.live_bytes;
        PEAK_COMMITTED.fetch_max(row.committed, Relaxed);
        row
    }
}

impl fmt::Display for Row {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "demo: {:>3}", self.second)?;
        for operations in &self.operations[..self.cpus] {
            write!(f, " {operations:>11}")?;
        }
        for hits in &self.hits[..self.cpus] {
            write!(f, "  {:>4}.{}", hits / 10, hits % 10)?;
        }
        let knobs = &self.knobs;
        write!(
            f,
            " {:>7} KiB {:>7} KiB {:>5} {:>6} {:>5}",
            self.committed / 1024,
            self.live / 1024,
            knobs.cache_capacity,
            knobs.bundle_width,
            knobs.drain_threshold
        )
    }
}

/// The closing line: totals of the run, then memory once everything is freed and trimmed.
fn summary(millis: u64) {
    let operations: u64 = OPERATIONS.iter().map(|o| o.load(Relaxed)).sum();
    let stats = HEAP.stats();
    let hits = stats.cache_hits() * 1000 / stats.allocs().max(1);
    let peak = PEAK_COMMITTED.load(Relaxed);
    run_on_all_cpus(&|_| HEAP.trim());
    let trimmed = HEAP.stats();
    check!(
        trimmed.live_bytes == 0,
        "{} bytes live after every block was freed",
        trimmed.live_bytes
    );
    println!(
        "demo: {operations} operations in {}.{:03} s ({} per second), cache hit rate {}.{}%, peak committed {} KiB; after freeing all and trimming: {} KiB live, {} KiB committed",
        millis / 1000,
        millis % 1000,
        operations * 1000 / millis.max(1),
        hits / 10,
        hits % 10,
        peak / 1024,
        trimmed.live_bytes / 1024,
        trimmed.committed_bytes / 1024
    );
}

/// ACE's closing lines, read through the allocator's statistics API: what its ticks cost and
/// its decision trace. Fails the run if it never decided or changed no knob. (A guard that
/// switched it off is reported, not failed: under TCG a host that deschedules the vCPUs can
/// stretch ticks past any budget.)
fn ace_summary() {
    let Some(report) = HEAP.ace_stats() else {
        check!(false, "ACE is not attached to the heap");
        return;
    };
    let status = &report.status;
    let hz = u128::from(clock::tsc_hz());
    let micros = |cycles: u64| (u128::from(cycles) * 1_000_000 / hz) as u64;
    println!(
        "demo: ACE made {} decisions in {} deciding ticks (mean {} us, max {} us of TCG time); on: {}",
        status.decisions,
        status.deciding_ticks,
        micros(status.total_tick / status.deciding_ticks.max(1)),
        micros(status.max_tick),
        status.enabled
    );
    for decision in report.decisions() {
        println!("demo:   {decision}");
    }
    check!(status.deciding_ticks > 0, "ACE never decided on a tick");
    let acted = report.decisions().iter().any(|d| d.knob != Knob::Engine);
    check!(acted, "ACE changed no knob");
    if let Some(reason) = status.off_reason {
        println!("demo: a guard switched ACE off: {reason:?}");
    }
    ACE.disable(&HEAP);
}

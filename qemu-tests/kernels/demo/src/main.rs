//! The demo kernel, run by `cargo xtask demo`: acealloc as the heap of a kernel on 4 CPUs, under
//! a phased workload: busy spells, in which every CPU runs `mixed-ws400` (400 slots of 16–1040
//! bytes) and holds 16 buffers of 48 KiB, alternate with quiet spells, in which every block is
//! freed and the CPUs halt until the next timer tick. Once a second of guest time CPU 0 prints
//! a row: the phase, each CPU's operations in that second, each CPU's cache hit rate, committed
//! and live memory, and the knob values; and ACE's decisions as it takes them. The run closes
//! with a `demo: result` line (operations per second of busy time, mean committed memory in the
//! quiet spells) that `cargo xtask demo` sets against the static profiles' runs. The run passes
//! if every block came back intact (and, with ACE, if it decided something).
//!
//! ACE is on unless `ace=0` (`cargo xtask demo --no-ace`, and the `demo-no-ace`, `demo-fast`
//! and `demo-lean` runs); `profile=fast|balanced|lean` picks the profile (BALANCED unless
//! given). A 1 kHz timer on every CPU ticks ACE, which runs the allocator's housekeeping on
//! every tick; with ACE off the timer calls `Allocator::maintain` itself, as any kernel's tick
//! should, so that the runs differ only in ACE. Purges decommit idle runs from the timer
//! handler, each with a TLB shootdown to every CPU, as in `timer-isr-ace`.
#![no_std]
#![no_main]

use core::alloc::Layout;
use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};

use acealloc::ace::Decision;
use acealloc::ace::{Ace, AceConfig, Knob};
use acealloc::arch::cpu::rdtsc;
use acealloc::{Allocator, Config, CpuStats, Knobs, Profile};
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
/// Large buffers each CPU holds through a busy spell.
const HELD: usize = 16;
/// Length of a busy spell and of a quiet spell, ms of guest time.
const SPELL_MS: u64 = 2000;
/// How often CPU 0 samples committed memory, ms.
const SAMPLE_MS: u64 = 50;

/// Operations (allocations plus frees) of each CPU so far.
static OPERATIONS: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
static STOP: AtomicBool = AtomicBool::new(false);
/// Most bytes committed at the end of any second.
static PEAK_COMMITTED: AtomicUsize = AtomicUsize::new(0);
/// Operations done in busy spells, and their guest time in ms (CPU 0's view).
static BUSY_MS: AtomicU64 = AtomicU64::new(0);

/// ACE, on with `ace=1`, ticked by every CPU's timer.
static ACE: Ace = Ace::new();
static ACE_ON: AtomicBool = AtomicBool::new(false);
/// Timer rate of every run.
const TIMER_HZ: u32 = 1000;
/// The tick budget: TCG runs a deciding tick about a hundred times slower than hardware.
const TICK_BUDGET_US: u64 = 20_000;
/// [`TICK_BUDGET_US`] in TSC cycles, set once the clock is calibrated.
static TICK_BUDGET: AtomicU64 = AtomicU64::new(0);

/// Every CPU's timer: ACE's tick (which runs the allocator's housekeeping), or with ACE off the
/// housekeeping alone, within the same budget.
fn tick(_cpu: usize) {
    if ACE_ON.load(Relaxed) {
        ACE.tick(&HEAP, None);
    } else {
        HEAP.maintain(rdtsc().saturating_add(TICK_BUDGET.load(Relaxed)));
    }
}

/// The profile `profile=` names on the command line (BALANCED unless given).
fn profile(boot: &BootInfo) -> Profile {
    match boot.cmdline_value("profile") {
        None | Some("balanced") => Profile::Balanced,
        Some("fast") => Profile::Fast,
        Some("lean") => Profile::Lean,
        Some(other) => panic!("profile={other}: not fast, balanced or lean"),
    }
}

/// Whether the spell under way at `millis` is a busy one: the run starts with a short busy
/// spell, so that the rows, printed on the second, fall within spells, not on their edges.
fn busy_at(millis: u64) -> bool {
    ((millis + SPELL_MS / 4) / SPELL_MS).is_multiple_of(2)
}

fn main(boot: &'static BootInfo) -> ! {
    let seconds = args::number(boot, "seconds", 8);
    let ace = args::number(boot, "ace", 1) != 0;
    let profile = profile(boot);
    clock::calibrate();
    TICK_BUDGET.store(clock::tsc_hz() / 1_000_000 * TICK_BUDGET_US, Relaxed);
    let config = Config { profile, ..CONFIG };
    if let Err(error) = heaps::init_frame_heap(&HEAP, PhysicalFrames::init(boot), config) {
        println!("demo: heap init failed: {error:?}");
        exit(ExitCode::Failure);
    }
    let cpus = cpu_count();
    println!(
        "demo: acealloc ({profile:?}) on {cpus} CPUs, heap of frames mapped on demand at {FRAME_HEAP_START:#x}"
    );
    println!(
        "demo: busy spells of {} s (every CPU runs mixed-ws400: 400 slots, 16-1040 B, holds {HELD} blocks of {} KiB \
         and frees another every {BATCH} steps), then quiet spells of {} s (everything freed, CPUs halted)",
        SPELL_MS / 1000,
        LARGE / 1024,
        SPELL_MS / 1000
    );
    if ace {
        let config = AceConfig {
            fast_ms: 250,
            slow_s: 2,
            tick_budget_us: TICK_BUDGET_US,
            ..AceConfig::DEFAULT
        };
        println!(
            "demo: ACE tunes the knobs (fast loop {} ms, slow loop {} s), ticked by a {TIMER_HZ} Hz timer on every CPU",
            config.fast_ms, config.slow_s
        );
        ACE.enable(&HEAP, config, clock::tsc_hz());
        HEAP.attach_ace(&ACE);
        ACE_ON.store(true, Relaxed);
    } else {
        println!(
            "demo: ACE off ({profile:?}'s static settings); a {TIMER_HZ} Hz timer on every CPU runs the allocator's housekeeping"
        );
    }
    timer::set_handler(tick);
    println!("{}", Header(cpus));
    let stopwatch = Stopwatch::start();
    run_on_all_cpus(&|cpu| {
        let mut workload = Mixed::new(&HEAP, cpu as u64, Coverage::Full);
        let large = Layout::from_size_align(LARGE, 8).expect("valid layout");
        let mut held = [const { None }; HELD];
        let mut large_operations = 0;
        let mut table = (cpu == 0).then(|| Table::new(cpus, seconds));
        timer::start(TIMER_HZ);
        interrupts::enable();
        while !STOP.load(Relaxed) {
            let mut intact = true;
            if busy_at(stopwatch.millis()) {
                for slot in held.iter_mut().filter(|slot| slot.is_none()) {
                    *slot = Patterned::alloc(&HEAP, large, cpu as u64, Coverage::Ends);
                    intact &= check!(slot.is_some(), "no {LARGE}-byte block to hold");
                    large_operations += 1;
                }
                intact &= workload.run(BATCH);
                intact &= check!(
                    Patterned::alloc(&HEAP, large, cpu as u64, Coverage::Ends)
                        .is_some_and(|block| block.free(Coverage::Ends)),
                    "no intact {LARGE}-byte block"
                );
                large_operations += 2;
            } else {
                // A quiet spell: give everything back once, then sleep to the next tick.
                for block in held.iter_mut().filter_map(Option::take) {
                    intact &= block.free(Coverage::Ends);
                    large_operations += 1;
                }
                intact &= workload.release();
                interrupts::enable_and_hlt();
            }
            OPERATIONS[cpu].store(workload.operations() + large_operations, Relaxed);
            let done = table.as_mut().is_some_and(Table::tick);
            if !intact || done {
                STOP.store(true, Relaxed);
            }
        }
        timer::stop();
        interrupts::disable();
        for block in held.iter_mut().filter_map(Option::take) {
            block.free(Coverage::Ends);
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
        write!(f, "demo: sec phase")?;
        for cpu in 0..self.0 {
            write!(f, "  cpu{cpu} ops/s")?;
        }
        for cpu in 0..self.0 {
            write!(f, "  hit% {cpu}")?;
        }
        write!(f, "   committed        live   cap bundle drain")
    }
}

/// CPU 0's view of the run: prints a row each second, and ACE's new decisions; samples
/// committed memory in the quiet spells.
struct Table {
    cpus: usize,
    seconds: u64,
    stopwatch: Stopwatch,
    /// Seconds reported so far.
    reported: u64,
    operations: [u64; MAX_CPUS],
    cache: [CpuStats; MAX_CPUS],
    /// The last decision printed.
    seen: u64,
    /// Committed bytes summed over the quiet spells' samples, and the samples.
    quiet_committed: u64,
    quiet_samples: u64,
    sampled_at: u64,
    /// Operations at the start of the spell under way, and the busy spells' total.
    spell_start_ops: u64,
    busy_ops: u64,
    was_busy: bool,
    busy_since: u64,
}

impl Table {
    fn new(cpus: usize, seconds: u64) -> Table {
        Table {
            cpus,
            seconds,
            stopwatch: Stopwatch::start(),
            reported: 0,
            operations: [0; MAX_CPUS],
            cache: [CpuStats::default(); MAX_CPUS],
            seen: 0,
            quiet_committed: 0,
            quiet_samples: 0,
            sampled_at: 0,
            spell_start_ops: 0,
            busy_ops: 0,
            was_busy: true,
            busy_since: 0,
        }
    }

    /// Every CPU's operations so far.
    fn operations() -> u64 {
        OPERATIONS.iter().map(|o| o.load(Relaxed)).sum()
    }

    /// Samples, prints a row if another second has passed; true once every second has been
    /// reported.
    fn tick(&mut self) -> bool {
        let now = self.stopwatch.millis();
        let busy = busy_at(now);
        if busy != self.was_busy {
            let ops = Table::operations();
            if self.was_busy {
                self.busy_ops += ops - self.spell_start_ops;
                BUSY_MS.fetch_add(now - self.busy_since, Relaxed);
            } else {
                self.busy_since = now;
            }
            (self.spell_start_ops, self.was_busy) = (ops, busy);
        }
        if !busy && now >= self.sampled_at + SAMPLE_MS {
            self.sampled_at = now;
            self.quiet_committed += HEAP.stats().committed_bytes as u64;
            self.quiet_samples += 1;
        }
        if now < (self.reported + 1) * 1000 {
            return false;
        }
        self.reported += 1;
        let row = Row::take(self, busy);
        println!("{row}");
        let mut new = [Decision::EMPTY; 8];
        let n = ACE.decisions(self.seen, &mut new);
        for decision in &new[..n] {
            println!("demo:       ACE {decision}");
            self.seen = decision.seq;
        }
        let done = self.reported >= self.seconds;
        if done && self.was_busy {
            self.busy_ops += Table::operations() - self.spell_start_ops;
            BUSY_MS.fetch_add(now - self.busy_since, Relaxed);
        }
        if done {
            let busy_ms = BUSY_MS.load(Relaxed).max(1);
            println!(
                "demo: result busy_ops_per_s={} quiet_committed_kib={} ace={}",
                self.busy_ops * 1000 / busy_ms,
                self.quiet_committed / self.quiet_samples.max(1) / 1024,
                u8::from(ACE.is_enabled())
            );
        }
        done
    }
}

/// One second of the table.
struct Row {
    second: u64,
    busy: bool,
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
    fn take(table: &mut Table, busy: bool) -> Row {
        let mut row = Row {
            second: table.reported,
            busy,
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
        let phase = if self.busy { "busy " } else { "quiet" };
        write!(f, "demo: {:>3} {phase}", self.second)?;
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

//! The timer interrupt of every CPU calls only `Allocator::maintain` (no ACE), as any kernel's
//! tick should, on the paging heap (frames mapped on demand) in BALANCED on 4 CPUs. Each CPU
//! allocates a burst of small and large blocks and frees it. The memory stays committed at
//! first (a free run reused within the purge delay costs nothing); then, with the CPUs halted
//! between ticks, the allocator goes quiet (no allocation, no free: BALANCED's quiet delay,
//! `Profile::quiet_ms`), and the ticks alone flush each CPU's cache, release the slabs that
//! empties and purge the free runs, which on this provider unmaps their pages and gives the
//! frames back to the frame allocator. Checked: the frames come back, not at once and not
//! before the quiet delay, and the blocks each CPU kept live through the idle time are intact
//! (a purge never touches a live page).
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;
use core::alloc::Layout;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};

use acealloc::arch::cpu::rdtsc;
use acealloc::{Allocator, Config};
use acealloc_kernel_rt::{
    BootInfo, MAX_CPUS, cpu_count, entry, interrupts, println, run_on_all_cpus, timer,
};
use kernel_support::check;
use kernel_support::clock::{self, Stopwatch};
use kernel_support::frames::PhysicalFrames;
use kernel_support::heaps::{self, CONFIG, FrameHeap};
use kernel_support::pattern::{Coverage, Patterned, free_all};
use kernel_support::suite::Suite;
use spin::Once;

entry!(main);

#[global_allocator]
static HEAP: FrameHeap = Allocator::new();

static FRAMES: Once<PhysicalFrames> = Once::new();

/// The purge delay: BALANCED's policy with a delay short enough for a test, and long enough
/// for a burst to be allocated and freed well within it on a loaded host (so that nothing is
/// due before the idle time starts). Every wait below is in purge delays.
const PURGE_DELAY_MS: u64 = 200;
/// Timer rate on every CPU.
const TIMER_HZ: u32 = 1000;
/// Longest wait for the frames to come back, ms of guest time.
const MAX_WAIT_MS: u64 = 20 * PURGE_DELAY_MS;
/// The frames count as settled once they stopped falling for this long, ms.
const SETTLED_MS: u64 = 3 * PURGE_DELAY_MS;
/// Per CPU and burst: small blocks (sizes cycling through [`SMALL`]) and, every
/// [`LARGE_EVERY`]th, a large one.
const BURST: usize = 1024;
const SMALL: [usize; 4] = [64, 200, 1024, 3000];
const LARGE: usize = 48 * 1024;
const LARGE_EVERY: usize = 32;
/// Blocks each CPU keeps live through the idle time: one of each small size and a large one.
const KEPT: usize = SMALL.len() + 1;

/// A tick's budget in TSC cycles (1 ms: a tick's period), set once the clock is calibrated.
static TICK_BUDGET: AtomicU64 = AtomicU64::new(0);
static TICKS: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
/// Pages the ticks' `maintain` calls purged, in all.
static PURGED: AtomicUsize = AtomicUsize::new(0);
/// Set by CPU 0 when the idle wait is over: every CPU stops halting.
static AWAKE: AtomicBool = AtomicBool::new(false);
/// When the first CPU started freeing its burst (TSC): no frame of it may come back before
/// the purge delay has passed since.
static FREES_START: AtomicU64 = AtomicU64::new(u64::MAX);

/// Every CPU's timer handler: the allocator's housekeeping, and nothing else.
fn tick(cpu: usize) {
    let purged = HEAP.maintain(rdtsc().saturating_add(TICK_BUDGET.load(Relaxed)));
    PURGED.fetch_add(purged, Relaxed);
    TICKS[cpu].fetch_add(1, Relaxed);
}

fn frames() -> &'static PhysicalFrames {
    FRAMES.get().expect("frames are set up first")
}

fn layout(size: usize) -> Layout {
    Layout::from_size_align(size, 8).expect("valid layout")
}

/// The burst's `i`th block's layout.
fn burst_layout(i: usize) -> Layout {
    if i.is_multiple_of(LARGE_EVERY) {
        layout(LARGE)
    } else {
        layout(SMALL[i % SMALL.len()])
    }
}

fn main(boot: &'static BootInfo) -> ! {
    let mut suite = Suite::start("maintain-tick");
    TICK_BUDGET.store(clock::tsc_hz() / 1000, Relaxed);
    suite.test("init over the frame provider, BALANCED", || {
        let frames = FRAMES.call_once(|| PhysicalFrames::init(boot));
        let config = Config {
            purge_delay_ms: Some(PURGE_DELAY_MS as u32),
            ..CONFIG
        };
        let result = heaps::init_frame_heap(&HEAP, *frames, config);
        check!(result.is_ok(), "init failed: {result:?}");
    });
    timer::set_handler(tick);
    suite.test("a warm-up burst (page tables and descriptors stay)", || {
        idle_return(false);
    });
    suite.test(
        "idle memory goes back from the timer's maintain alone",
        || {
            idle_return(true);
        },
    );
    suite.finish()
}

/// Every CPU allocates its burst (keeping [`KEPT`] blocks), frees the rest, then halts between
/// ticks while CPU 0 watches the frames in use until they have stopped falling for
/// [`SETTLED_MS`] (or for [`MAX_WAIT_MS`]); then every CPU checks and frees its kept blocks. With
/// `checked`, asserts what the module doc says: the burst's frames come back but for a tenth
/// (the warm-up burst leaves in place what BALANCED keeps on purpose: each class's reserve of
/// empty slabs and its transfer cache's blocks, which `maintain` leaves alone, the slab
/// descriptors and the range's page tables).
fn idle_return(checked: bool) {
    AWAKE.store(false, Relaxed);
    let frames = frames();
    let before = frames.in_use();
    let purged_before = PURGED.load(Relaxed);
    let decommits_before = HEAP.stats().provider.decommit_calls;
    let peak = AtomicUsize::new(0);
    let after_free = AtomicUsize::new(0);
    let returned_at = AtomicU64::new(u64::MAX);
    FREES_START.store(u64::MAX, Relaxed);
    let idle_end = AtomicUsize::new(0);
    run_on_all_cpus(&|cpu| {
        timer::start(TIMER_HZ);
        interrupts::enable();
        let mut kept: Vec<Option<Patterned<'static, FrameHeap>>> = Vec::with_capacity(KEPT);
        let mut burst = Vec::with_capacity(BURST);
        for i in 0..BURST {
            let block = Patterned::alloc(
                &HEAP,
                burst_layout(i),
                (cpu << 32 | i) as u64,
                Coverage::Full,
            );
            if !check!(block.is_some(), "cpu {cpu}: block {i} of the burst") {
                break;
            }
            burst.push(block);
        }
        // Keep the first of each size live through the idle time.
        for size in SMALL.iter().chain([&LARGE]) {
            if let Some(at) = burst
                .iter()
                .position(|b| b.as_ref().is_some_and(|b| b.layout().size() == *size))
            {
                kept.push(burst[at].take());
            }
        }
        peak.fetch_max(frames.in_use(), Relaxed);
        FREES_START.fetch_min(rdtsc(), Relaxed);
        free_all(&mut burst);
        drop(burst);
        after_free.fetch_max(frames.in_use(), Relaxed);
        if cpu == 0 {
            let stopwatch = Stopwatch::start();
            let target = before + (peak.load(Relaxed) - before) / 10;
            let (mut lowest, mut last_drop) = (usize::MAX, 0);
            while stopwatch.millis() < MAX_WAIT_MS && stopwatch.millis() - last_drop < SETTLED_MS {
                let now = frames.in_use();
                if now <= target && returned_at.load(Relaxed) == u64::MAX {
                    returned_at.store(rdtsc(), Relaxed);
                }
                if now < lowest {
                    (lowest, last_drop) = (now, stopwatch.millis());
                }
                interrupts::enable_and_hlt();
            }
            idle_end.store(lowest, Relaxed);
            AWAKE.store(true, Relaxed);
        } else {
            while !AWAKE.load(Relaxed) {
                interrupts::enable_and_hlt();
            }
        }
        timer::stop();
        interrupts::disable();
        for block in kept.iter_mut().filter_map(Option::take) {
            check!(
                block.verify(Coverage::Full),
                "cpu {cpu}: a block kept live through the idle time was damaged"
            );
            block.free(Coverage::Full);
        }
    });
    let (peak, after_free, idle_end) = (
        peak.load(Relaxed),
        after_free.load(Relaxed),
        idle_end.load(Relaxed),
    );
    let returned_ms = match returned_at.load(Relaxed) {
        u64::MAX => u64::MAX,
        at => at.saturating_sub(FREES_START.load(Relaxed)) * 1000 / clock::tsc_hz(),
    };
    let purged = PURGED.load(Relaxed) - purged_before;
    let decommits = HEAP.stats().provider.decommit_calls - decommits_before;
    let ticks: u64 = (0..cpu_count()).map(|cpu| TICKS[cpu].load(Relaxed)).sum();
    println!(
        "    frames in use: {before} before the burst, {peak} at its peak, {after_free} once it was freed, {idle_end} once they stopped falling ({}); the ticks purged {purged} pages in {decommits} decommits; {ticks} ticks so far",
        if returned_ms == u64::MAX {
            "never back within a tenth of the burst".into()
        } else {
            alloc::format!(
                "back within a tenth of the burst {returned_ms} ms after the frees began"
            )
        }
    );
    if !checked {
        return;
    }
    let burst = peak - before;
    check!(burst >= 256, "the burst took only {burst} frames");
    check!(
        after_free >= before + burst / 2,
        "{after_free} frames in use right after the frees, {before} before a burst of {burst}: \
         BALANCED gave memory back at once instead of after the purge delay"
    );
    check!(
        returned_ms != u64::MAX,
        "the frames did not come back within {MAX_WAIT_MS} ms: {idle_end} in use at the least, \
         {before} before the burst of {burst}"
    );
    let quiet_ms = u64::from(acealloc::Profile::Balanced.quiet_ms().unwrap_or(0));
    check!(
        returned_ms >= quiet_ms,
        "the frames came back {returned_ms} ms after the frees began, before the quiet delay of {quiet_ms} ms"
    );
    check!(
        purged > 0 && decommits > 0,
        "{purged} pages purged by the ticks"
    );
    let s = HEAP.stats();
    check!(s.live_bytes == 0, "{} bytes live at the end", s.live_bytes);
    check!(
        idle_end <= before + burst / 10,
        "{idle_end} frames in use at the least after the idle time, {before} before the burst of \
         {burst}: {s}"
    );
}

//! acealloc as the kernel's `#[global_allocator]` over its frame provider: a 64 MiB virtual range
//! at 0x4444_4444_0000, backed on demand by frames from the boot memory map, on 4 CPUs. The usual
//! heap tests through `Box` and `Vec`, then exhaustion of the frame allocator (limited on
//! purpose): `alloc` returns null, and frees make allocation possible again.
//!
//! With the command line word `failed-run` (run `heap-frames-failed-run`) it checks instead that
//! a run the provider fails to back leaves the frames of earlier runs mapped.
//!
//! With `lean` (run `heap-frames-lean`, on 4 CPUs) the heap runs in the LEAN profile with a zero
//! purge delay, which decommits every freed run at once: the kernel checks that a burst of allocations, once freed,
//! gives its frames back to the frame allocator, then has all CPUs allocate, pass each other and
//! free blocks at the same time, so that several CPUs decommit (unmap pages, free frames, shoot
//! the TLB down) concurrently while the others use pages of the same range. A shootdown that
//! missed a CPU would let it write through a stale entry into a frame handed out again, which
//! the blocks' checked patterns catch.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;
use core::alloc::Layout;

use acealloc::{Allocator, Config, PAGE_SIZE, Profile};
use acealloc_kernel_rt::{BootInfo, MAX_CPUS, cpu_count, entry, println, run_on_all_cpus, tlb};
use kernel_support::check;
use kernel_support::frames::PhysicalFrames;
use kernel_support::heaps::{self, CONFIG, FRAME_HEAP_SIZE, FRAME_HEAP_START, FrameHeap};
use kernel_support::pattern::{Coverage, Patterned, fill, free_all};
use kernel_support::suite::Suite;
use kernel_support::workload::Mailboxes;
use spin::Once;

entry!(main);

#[global_allocator]
static HEAP: FrameHeap = Allocator::new();

static FRAMES: Once<PhysicalFrames> = Once::new();

/// Most blocks the exhaustion tests hold.
const MAX_BLOCKS: usize = 256;
/// A large-path block of 12 pages.
const LARGE: usize = 48 * 1024;
const SMALL: usize = 1024;
/// Frames the exhaustion tests allow beyond those in use.
const SPARE_FRAMES: usize = 40;

fn frames() -> &'static PhysicalFrames {
    FRAMES.get().expect("frames are set up first")
}

/// Heap pages backed by a frame.
fn backed_pages() -> usize {
    HEAP.with_provider(|provider| provider.backed_pages())
        .unwrap_or(0)
}

fn main(boot: &'static BootInfo) -> ! {
    let mut suite = Suite::start("heap-frames");
    let lean = boot.cmdline_flag("lean");
    let config = if lean {
        // A zero purge delay: every freed run is decommitted at once, the most
        // unmapping and shootdown traffic (the `maintain-tick` kernel shows the delay).
        Config {
            profile: Profile::Lean,
            purge_delay_ms: Some(0),
            ..CONFIG
        }
    } else {
        CONFIG
    };
    suite.test("init over the frame provider", || {
        let frames = FRAMES.call_once(|| PhysicalFrames::init(boot));
        let before = frames.in_use();
        let result = heaps::init_frame_heap(&HEAP, *frames, config);
        check!(result.is_ok(), "init failed: {result:?}");
        println!(
            "    {} MiB of RAM in frames; {} MiB of heap range at {FRAME_HEAP_START:#x}; init mapped {} pages in {} frames (page tables included)",
            (frames.total() * PAGE_SIZE) >> 20,
            FRAME_HEAP_SIZE >> 20,
            backed_pages(),
            frames.in_use() - before
        );
    });
    if lean {
        suite.test(
            "LEAN gives a freed burst's frames back",
            lean_returns_frames,
        );
        suite.test(
            "LEAN: all CPUs decommit at once, shootdowns reach every CPU",
            concurrent_decommit,
        );
        suite.finish()
    }
    if boot.cmdline_flag("failed-run") {
        suite.test(
            "a failed run leaves earlier runs' frames mapped",
            failed_run_keeps_frames,
        );
        suite.finish()
    }
    heap_tests::run(&mut suite);
    suite.test("pages are backed on demand", on_demand);
    suite.test("exhaustion: small blocks until frames run out", || {
        exhaust(Layout::from_size_align(SMALL, 8).expect("valid layout"))
    });
    suite.test("exhaustion: large blocks until frames run out", || {
        exhaust(Layout::from_size_align(LARGE, 8).expect("valid layout"))
    });
    suite.finish()
}

fn on_demand() {
    let (backed, in_use) = (backed_pages(), frames().in_use());
    let committed = HEAP.stats().committed_bytes / PAGE_SIZE;
    check!(
        backed >= committed && backed < FRAME_HEAP_SIZE / PAGE_SIZE / 16,
        "{backed} pages backed for {committed} committed, of {} in the range",
        FRAME_HEAP_SIZE / PAGE_SIZE
    );
    check!(
        in_use > backed,
        "{in_use} frames in use for {backed} backed pages and their page tables"
    );
    println!("    {backed} pages backed, {committed} committed, {in_use} frames in use");
}

/// Whether allocating `layout` returns null (a block it returns is freed again).
fn allocation_fails(layout: Layout) -> bool {
    let block = HEAP.alloc(layout);
    if !block.is_null() {
        // SAFETY: the block was just allocated with `layout` and is not used.
        unsafe { HEAP.dealloc(block, layout) };
    }
    block.is_null()
}

/// Limits the frame allocator to [`SPARE_FRAMES`] more frames, fills the heap with `layout`
/// blocks until null, frees them, fills again, then lifts the limit.
fn exhaust(layout: Layout) {
    let mut blocks = [const { None }; MAX_BLOCKS];
    let frames = frames();
    frames.set_limit(Some(frames.in_use() + SPARE_FRAMES));
    let first = fill(&mut blocks, &HEAP, layout);
    check!(
        first > 0 && first < MAX_BLOCKS,
        "{first} blocks of {} bytes with {SPARE_FRAMES} spare frames",
        layout.size()
    );
    check!(
        allocation_fails(layout),
        "an allocation succeeded after one failed, with nothing freed"
    );
    free_all(&mut blocks);
    let second = fill(&mut blocks, &HEAP, layout);
    check!(
        second >= first,
        "{second} blocks after the frees, {first} the first time"
    );
    free_all(&mut blocks);
    frames.set_limit(None);
    let after = Patterned::alloc(&HEAP, layout, 1, Coverage::Full);
    check!(after.is_some(), "no block once the limit is lifted");
    if let Some(block) = after {
        block.free(Coverage::Full);
    }
    let live = HEAP.stats().live_bytes;
    check!(live == 0, "{live} bytes live at the end");
    println!(
        "    {first} blocks of {} bytes until null, {second} again after freeing them",
        layout.size()
    );
}

/// A run that fails part-way (frames ran out) must give back only the frames it mapped itself:
/// pages of earlier, freed runs stay backed, so a failed allocation unmaps nothing and costs no
/// TLB shootdown (see `FrameProvider::back`).
///
/// The run asked for is longer than all backed pages together, so it fits only past the last
/// page in use: it starts on backed pages of freed runs (the large blocks freed just before, at
/// least), then needs more frames than the limit allows.
fn failed_run_keeps_frames() {
    let frames = frames();
    let layout = Layout::from_size_align(LARGE, 8).expect("valid layout");
    let mut blocks = [const { None }; 4];
    let got = fill(&mut blocks, &HEAP, layout);
    check!(got == blocks.len(), "{got} large blocks with no limit");
    free_all(&mut blocks);
    let backed = backed_pages();
    let pages = backed + 32;
    frames.set_limit(Some(frames.in_use() + 8));
    let failed =
        allocation_fails(Layout::from_size_align(pages * PAGE_SIZE, 8).expect("valid layout"));
    frames.set_limit(None);
    check!(
        failed,
        "a run of {pages} pages with {backed} backed and 8 spare frames"
    );
    let after = backed_pages();
    // The pages the failed call itself backed stay backed too, in the free run.
    check!(
        after >= backed,
        "{backed} pages backed before the failed run of {pages} pages, {after} after: pages of earlier runs were unmapped"
    );
}

/// Blocks of the burst: 1 KiB ones (2 MiB in slabs) and, every 64th, a 48 KiB large block.
const BURST: usize = 2048;

/// Allocates the burst, checks it took frames, frees it; returns the frames in use at its peak.
fn burst(blocks: &mut Vec<Option<Patterned<'static, FrameHeap>>>) -> usize {
    for i in 0..BURST {
        let size = if i % 64 == 0 { LARGE } else { SMALL };
        let layout = Layout::from_size_align(size, 8).expect("valid layout");
        let block = Patterned::alloc(&HEAP, layout, i as u64, Coverage::Full);
        check!(block.is_some(), "block {i} of the burst");
        blocks.push(block);
    }
    let peak = frames().in_use();
    free_all(blocks);
    blocks.clear();
    peak
}

/// LEAN keeps no freed run committed and decommits it at once, which on this provider unmaps
/// its pages and frees their frames: after the burst, frames in use fall back to the level
/// before it, but for what the per-class budgets let caches and depots hold (64 KiB per class)
/// and the slab descriptors, which are never returned.
fn lean_returns_frames() {
    let mut blocks = Vec::with_capacity(BURST);
    burst(&mut blocks); // page tables of the range and descriptors exist from now on
    let before = frames().in_use();
    let peak = burst(&mut blocks);
    let after = frames().in_use();
    let s = HEAP.stats();
    check!(
        peak >= before + 512,
        "the burst took {} frames",
        peak - before
    );
    check!(
        after <= before + 40,
        "{after} frames in use after the burst, {before} before (peak {peak})"
    );
    check!(
        s.provider.decommit_calls > 0 && s.committed_bytes < 1 << 20,
        "{s}"
    );
    println!(
        "    frames in use: {before} before the burst, {peak} at its peak, {after} after; {} decommits, {} KiB decommitted in all",
        s.provider.decommit_calls,
        s.decommitted_total_bytes / 1024
    );
}

/// Rounds of [`concurrent_decommit`] on each CPU: a burst of its own, then cross-CPU traffic.
const CONCURRENT_ROUNDS: usize = 2;
/// Blocks of each CPU's own burst in a round: 1 KiB ones and, every 16th, a 48 KiB large block.
const CONCURRENT_BURST: usize = 256;
/// Steps of the cross-CPU workload (16 B–64 KiB blocks, most freed by another CPU) per round.
const CROSS_STEPS: u64 = 400;

/// Every CPU, [`CONCURRENT_ROUNDS`] times: allocates a patterned burst with large blocks, frees
/// it (LEAN decommits the large blocks' runs and emptied slabs at once), then runs the cross-CPU
/// workload, whose blocks are freed, and so decommitted, on CPUs other than the one that wrote
/// them. Checks every pattern, that several CPUs shot the TLB down, and that each shootdown was
/// answered by every other CPU.
fn concurrent_decommit() {
    let cpus = cpu_count();
    check!(cpus >= 2, "{cpus} CPU: nothing to shoot down");
    let before: [tlb::Counts; MAX_CPUS] = core::array::from_fn(tlb::counts);
    let decommits_before = HEAP.stats().provider.decommit_calls;
    let mailboxes = Mailboxes::new();
    run_on_all_cpus(&|cpu| {
        let mut blocks = Vec::with_capacity(CONCURRENT_BURST);
        for round in 0..CONCURRENT_ROUNDS {
            for i in 0..CONCURRENT_BURST {
                let size = if i % 16 == 0 { LARGE } else { SMALL };
                let layout = Layout::from_size_align(size, 8).expect("valid layout");
                let seed = (cpu << 32 | round << 16 | i) as u64;
                let block = Patterned::alloc(&HEAP, layout, seed, Coverage::Full);
                if !check!(block.is_some(), "block {i} of cpu {cpu}'s burst") {
                    return;
                }
                blocks.push(block);
            }
            free_all(&mut blocks);
            blocks.clear();
            mailboxes.run(&HEAP, cpu, cpus, CROSS_STEPS, Coverage::Full);
        }
    });
    mailboxes.drain(Coverage::Full);
    let delta: [tlb::Counts; MAX_CPUS] = core::array::from_fn(|cpu| {
        let now = tlb::counts(cpu);
        tlb::Counts {
            sent: now.sent - before[cpu].sent,
            answered: now.answered - before[cpu].answered,
        }
    });
    let sent: u64 = delta.iter().map(|counts| counts.sent).sum();
    let answered: u64 = delta.iter().map(|counts| counts.answered).sum();
    let senders = delta.iter().filter(|counts| counts.sent > 0).count();
    let decommits = HEAP.stats().provider.decommit_calls - decommits_before;
    check!(
        senders >= 2,
        "only {senders} CPU shot the TLB down ({sent} shootdowns, {decommits} decommits)"
    );
    check!(
        answered == sent * (cpus as u64 - 1),
        "{sent} shootdowns to {} other CPUs each, {answered} answers",
        cpus - 1
    );
    let live = HEAP.stats().live_bytes;
    check!(live == 0, "{live} bytes live at the end");
    println!(
        "    {decommits} decommits, {sent} shootdowns, {answered} answers; by cpu (sent/answered):"
    );
    for (cpu, counts) in delta.iter().enumerate().take(cpus) {
        println!("      cpu {cpu}: {}/{}", counts.sent, counts.answered);
    }
}

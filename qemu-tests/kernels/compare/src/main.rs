//! The same workloads, in the same guest run, on acealloc, on `linked_list_allocator`'s
//! `LockedHeap` (its usual spin-locked configuration, the heap hobby kernels start with) and on
//! talc's `TalcLock` over a spin lock (the best-regarded `no_std` heap), each over its own
//! 32 MiB region of `.bss`, timed with the TSC (best of 3 alternating runs). The ratios (how
//! many times as long the other heap takes) are figures, not checks; the tests fail only if a
//! workload does (null from a heap, a broken pattern, memory left live in acealloc or
//! `linked_list_allocator`).
//!
//! - `mixed-ws400` on CPU 0 alone, then on every CPU at once;
//! - the cross-CPU workload on every CPU (blocks of 16 B–64 KiB, most freed by another CPU).
//!
//! Only the first and last word of each block are patterned, so the time is mostly the
//! allocators'.
#![no_std]
#![no_main]

use core::alloc::GlobalAlloc;

use acealloc::Allocator;
use acealloc_kernel_rt::{BootInfo, cpu_count, entry, println, run_on_all_cpus};
use kernel_support::check;
use kernel_support::clock::{Stopwatch, tsc_hz};
use kernel_support::heaps::{self, CONFIG, RegionHeap};
use kernel_support::pattern::Coverage;
use kernel_support::static_memory::{PageAligned, StaticMut};
use kernel_support::suite::Suite;
use kernel_support::workload::{Mailboxes, Mixed};
use linked_list_allocator::LockedHeap;
use talc::source::Manual;

/// talc as a kernel would use it: one spin lock around the heap.
type Talc = talc::TalcLock<spin::mutex::SpinMutex<()>, Manual>;

entry!(main);

const REGION_SIZE: usize = 32 << 20;
const MIXED_STEPS: u64 = 100_000;
/// Runs of each workload on each allocator.
const ROUNDS: usize = 3;
const CROSS_STEPS: u64 = 20_000;

/// Also the global allocator: talc links `alloc`, which wants one (nothing here uses it).
#[global_allocator]
static ACEALLOC: RegionHeap = Allocator::new();
static LINKED_LIST: LockedHeap = LockedHeap::empty();
static TALC: Talc = Talc::new(Manual);
static ACEALLOC_REGION: StaticMut<PageAligned<REGION_SIZE>> = StaticMut::new(PageAligned::ZERO);
static LINKED_LIST_REGION: StaticMut<PageAligned<REGION_SIZE>> = StaticMut::new(PageAligned::ZERO);
static TALC_REGION: StaticMut<PageAligned<REGION_SIZE>> = StaticMut::new(PageAligned::ZERO);

fn main(_boot: &'static BootInfo) -> ! {
    let mut suite = Suite::start("compare");
    suite.test("init the three heaps over 32 MiB each", || {
        let result = heaps::init_region_heap(&ACEALLOC, &mut ACEALLOC_REGION.take().0, CONFIG);
        check!(result.is_ok(), "acealloc init failed: {result:?}");
        let region = &mut LINKED_LIST_REGION.take().0;
        // SAFETY: the region is a `&'static mut`, so nothing else uses it, ever.
        unsafe { LINKED_LIST.lock().init(region.as_mut_ptr(), region.len()) };
        let region = &mut TALC_REGION.take().0;
        // SAFETY: as above.
        let claimed = unsafe { TALC.lock().claim(region.as_mut_ptr(), region.len()) };
        check!(claimed.is_some(), "talc could not claim its region");
    });
    suite.test("mixed-ws400, 1 CPU", || {
        compare("mixed-ws400, 1 CPU", MIXED_STEPS, |heap| mixed(heap, 1))
    });
    let cpus = cpu_count();
    suite.test("mixed-ws400, all CPUs", || {
        compare("mixed-ws400, all CPUs", MIXED_STEPS * cpus as u64, |heap| {
            mixed(heap, cpus)
        })
    });
    suite.test("cross-CPU frees, all CPUs", || {
        compare(
            "cross-CPU, all CPUs",
            2 * CROSS_STEPS * cpus as u64,
            cross_cpu,
        )
    });
    suite.finish()
}

/// Any of the heaps, for workloads that run on each.
#[derive(Clone, Copy)]
enum Heap {
    Acealloc,
    LinkedList,
    Talc,
}

/// Runs `workload` on acealloc, on `linked_list_allocator` and on talc in turn, [`ROUNDS`]
/// times, and prints the best time of each (total and per operation, `operations` being the
/// allocations plus frees of one run) and the ratios. Taking the best of alternating rounds
/// keeps other load on the host from landing on one allocator only.
fn compare(name: &str, operations: u64, workload: impl Fn(Heap) -> u64) {
    let (mut acealloc, mut linked_list, mut talc) = (u64::MAX, u64::MAX, u64::MAX);
    let before = ACEALLOC.stats().provider;
    for _ in 0..ROUNDS {
        acealloc = acealloc.min(workload(Heap::Acealloc));
        let live = ACEALLOC.stats().live_bytes;
        check!(live == 0, "acealloc: {live} bytes live after the workload");
        linked_list = linked_list.min(workload(Heap::LinkedList));
        let used = LINKED_LIST.lock().used();
        check!(
            used == 0,
            "linked_list_allocator: {used} bytes used after the workload"
        );
        // (talc counts its bytes only with its `counters` feature, which would slow it: the
        // workloads free what they allocated, as the two checks above show.)
        talc = talc.min(workload(Heap::Talc));
    }
    let stats = ACEALLOC.stats();
    println!(
        "    acealloc: {} KiB committed after the workload; provider calls: {} alloc, {} failed, {} free",
        stats.committed_bytes / 1024,
        stats.provider.alloc_calls - before.alloc_calls,
        stats.provider.failed_calls - before.failed_calls,
        stats.provider.free_calls - before.free_calls
    );
    let nanos = |cycles: u64| (u128::from(cycles) * 1_000_000_000 / u128::from(tsc_hz())) as u64;
    let timing = |cycles: u64| {
        let ns = nanos(cycles);
        (ns / 1_000_000, ns / operations)
    };
    let ratio = |other: u64| {
        let r = other * 100 / acealloc.max(1);
        (r / 100, r % 100)
    };
    let ((ace_ms, ace_op), (ll_ms, ll_op), (talc_ms, talc_op)) =
        (timing(acealloc), timing(linked_list), timing(talc));
    let ((ll_x, ll_c), (talc_x, talc_c)) = (ratio(linked_list), ratio(talc));
    println!(
        "    {name}, best of {ROUNDS}: acealloc {ace_ms} ms ({ace_op} ns/op), linked_list_allocator {ll_ms} ms ({ll_op} ns/op): ratio {ll_x}.{ll_c:02}; talc {talc_ms} ms ({talc_op} ns/op): ratio {talc_x}.{talc_c:02}"
    );
}

/// TSC cycles `mixed-ws400` takes on `cpus` CPUs (CPU 0 alone, or every CPU at once).
fn mixed(heap: Heap, cpus: usize) -> u64 {
    fn run(heap: &(impl GlobalAlloc + Sync), cpus: usize) -> u64 {
        let work = |cpu: usize| {
            let mut workload = Mixed::new(heap, cpu as u64, Coverage::Ends);
            workload.run(MIXED_STEPS);
            workload.release();
        };
        let stopwatch = Stopwatch::start();
        if cpus == 1 {
            work(0);
        } else {
            run_on_all_cpus(&work);
        }
        stopwatch.cycles()
    }
    match heap {
        Heap::Acealloc => run(&ACEALLOC, cpus),
        Heap::LinkedList => run(&LINKED_LIST, cpus),
        Heap::Talc => run(&TALC, cpus),
    }
}

/// TSC cycles the cross-CPU workload takes on every CPU at once.
fn cross_cpu(heap: Heap) -> u64 {
    fn run<A: GlobalAlloc + Sync>(heap: &A) -> u64 {
        let cpus = cpu_count();
        let mailboxes = Mailboxes::new();
        let stopwatch = Stopwatch::start();
        run_on_all_cpus(&|cpu| {
            mailboxes.run(heap, cpu, cpus, CROSS_STEPS, Coverage::Ends);
        });
        mailboxes.drain(Coverage::Ends);
        stopwatch.cycles()
    }
    match heap {
        Heap::Acealloc => run(&ACEALLOC),
        Heap::LinkedList => run(&LINKED_LIST),
        Heap::Talc => run(&TALC),
    }
}

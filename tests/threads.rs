//! Three threads on two CPUs over one region heap, in checked mode: each
//! allocates blocks of its own pattern, hands half of them to the next
//! thread, keeps the others for a while, and checks and frees what it is
//! handed. Two threads share a CPU
//! index, so its cache's try-lock is contended; blocks freed on another CPU
//! travel back through the depots; every live bit is set and cleared by
//! different threads. Small enough for Miri (the `miri threads` step of
//! `cargo xtask test`), which checks every access and every data race.

mod common;

use std::alloc::Layout;
use std::cell::Cell;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread;

use acealloc::{Allocator, Config, Platform, RegionProvider};

use common::{Region, check, elapsed_ns, fill};

const THREADS: usize = 3;
const CPUS: usize = 2;
/// Blocks each thread allocates (Miri interprets every byte written).
const BLOCKS: usize = if cfg!(miri) { 48 } else { 2000 };
const SIZES: [usize; 6] = [8, 24, 100, 512, 3000, 20_000];
/// Blocks each thread keeps live at most; the oldest go first.
const KEPT: usize = 16;
/// The region: room for every thread's kept blocks and all blocks in
/// flight, however the threads are scheduled.
const REGION: usize = if cfg!(miri) { 4 << 20 } else { 32 << 20 };

thread_local! {
    static CPU: Cell<usize> = const { Cell::new(0) };
}

/// `CPUS` CPU indices for the threads of this test, set by each thread as
/// it starts; several threads share an index, as threads of a hosted
/// process do.
struct ThreadCpus;

// SAFETY: EXCLUSIVE_CPU is false, so the allocator try-locks every cache
// and needs nothing from the index but that it stays below `cpu_count`.
unsafe impl Platform for ThreadCpus {
    const EXCLUSIVE_CPU: bool = false;

    fn cpu_count() -> usize {
        CPUS
    }

    fn current_cpu() -> usize {
        CPU.get()
    }

    fn irq_save() -> usize {
        0
    }

    fn irq_restore(_: usize) {}

    fn now() -> u64 {
        elapsed_ns()
    }
}

type Heap = Allocator<RegionProvider, ThreadCpus>;

/// A block in flight: its address (as an integer, to cross threads), size
/// and pattern seed.
type Handed = (usize, usize, u64);

fn layout(size: usize) -> Layout {
    Layout::from_size_align(size, 8).unwrap()
}

fn worker(heap: &Heap, me: usize, to_next: Sender<Handed>, from_prev: Receiver<Handed>) {
    CPU.set(me % CPUS);
    let mut kept = std::collections::VecDeque::new();
    for i in 0..BLOCKS {
        let size = SIZES[(i * 7 + me) % SIZES.len()];
        let seed = ((me as u64) << 32) | i as u64;
        let ptr = heap.alloc(layout(size));
        assert!(!ptr.is_null(), "thread {me}: block {i} of {size} bytes");
        // SAFETY: a fresh block of `size` bytes.
        unsafe { fill(ptr, size, seed) };
        if i % 2 == 0 {
            to_next.send((ptr as usize, size, seed)).unwrap();
        } else {
            kept.push_back((ptr, size, seed));
        }
        if kept.len() > KEPT {
            let (ptr, size, seed) = kept.pop_front().unwrap();
            // SAFETY: our own live block, filled with `seed`, freed once.
            unsafe { check_and_free(heap, ptr, size, seed) };
        }
        // Free what the previous thread handed over so far.
        while let Ok((addr, size, seed)) = from_prev.try_recv() {
            // SAFETY: the previous thread filled this live block with `seed`
            // and handed it over; nothing else frees it.
            unsafe { check_and_free(heap, addr as *mut u8, size, seed) };
        }
    }
    drop(to_next);
    for (ptr, size, seed) in kept {
        // SAFETY: our own live block, filled with `seed`, freed once.
        unsafe { check_and_free(heap, ptr, size, seed) };
    }
    for (addr, size, seed) in from_prev {
        // SAFETY: as above, for the blocks handed over after our loop.
        unsafe { check_and_free(heap, addr as *mut u8, size, seed) };
    }
}

/// # Safety
/// `ptr` is a live block of `heap` of `size` bytes, filled with `seed`.
unsafe fn check_and_free(heap: &Heap, ptr: *mut u8, size: usize, seed: u64) {
    // SAFETY: the caller's contract.
    unsafe {
        check(ptr, size, seed, "handed-over block");
        heap.dealloc(ptr, layout(size));
    }
}

#[test]
fn threads_on_shared_cpus_free_each_others_blocks() {
    let region = Region::new(REGION, 2 << 20);
    // SAFETY: the only provider of `region`, dropped with `heap` before it.
    let provider = unsafe { region.provider() };
    let heap: Box<Heap> = Box::new(Allocator::new());
    let config = Config {
        checks: true,
        ..Config::DEFAULT
    };
    heap.init(provider, config).unwrap();

    // Channel `k` carries blocks to thread `k`, from thread `k - 1`.
    let (mut senders, receivers): (Vec<_>, Vec<_>) = (0..THREADS).map(|_| channel()).unzip();
    senders.rotate_left(1);
    thread::scope(|s| {
        for (me, (to_next, from_prev)) in senders.into_iter().zip(receivers).enumerate() {
            let heap = &*heap;
            s.spawn(move || worker(heap, me, to_next, from_prev));
        }
    });

    let stats = heap.stats();
    assert_eq!(stats.live_bytes, 0, "every block came back: {stats}");
}

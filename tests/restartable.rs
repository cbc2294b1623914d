//! The std fast path under what restartable sequences must survive: threads
//! re-pinned between CPUs while they allocate, signals that abort their
//! critical sections, and more threads than CPUs freeing each other's
//! blocks. acealloc is the global allocator of this test binary; every block
//! carries a pattern naming its owner, checked before it is freed, so a
//! block handed out twice or a lost commit shows up as a wrong pattern.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::sync_channel;
use std::sync::{Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use acealloc::hosted::HostedAlloc;
use acealloc::{Knobs, PerCpuPath, size_class};

#[global_allocator]
static A: HostedAlloc = HostedAlloc::new();

/// One test at a time: each wants the CPUs to itself.
static SERIAL: Mutex<()> = Mutex::new(());

/// Each test runs until its counter reaches its goal, at least this long
/// and at most [`GIVE_UP`] (the machine may be busy with other work).
const RUN: Duration = Duration::from_millis(1500);
const GIVE_UP: Duration = Duration::from_secs(30);

/// Sleeps until `counter` reaches `goal` (and `RUN` has passed), or until
/// [`GIVE_UP`]; returns the count.
fn wait_for(counter: &AtomicU64, goal: u64) -> u64 {
    let start = Instant::now();
    while (counter.load(Relaxed) < goal || start.elapsed() < RUN) && start.elapsed() < GIVE_UP {
        thread::sleep(Duration::from_millis(10));
    }
    counter.load(Relaxed)
}

fn cpus() -> usize {
    thread::available_parallelism().map_or(1, |n| n.get())
}

/// The fast path this machine gives std programs: restartable sequences
/// where the kernel and glibc offer them (then these tests exercise them),
/// unless `ACEALLOC_RSEQ=0`.
fn path() -> PerCpuPath {
    A.stats().per_cpu_path
}

/// A block of `words` u64s filled with `tag`, as a raw allocation.
fn make(tag: u64, words: usize) -> Box<[u64]> {
    vec![tag; words].into_boxed_slice()
}

/// Panics unless every word of `block` is `tag`.
fn check(block: &[u64], tag: u64, what: &str) {
    if let Some(i) = block.iter().position(|&w| w != tag) {
        panic!("{what}: word {i} is {:#x}, not {tag:#x}", block[i]);
    }
}

/// Pins the calling thread to `cpu`.
fn pin(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; the calls only read it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set);
    }
}

/// A thread's work: keep a window of patterned blocks of varied sizes,
/// replacing one per step, checking each before it goes; `between` runs
/// every 64 steps. Returns the steps done.
fn churn(me: u64, stop: &AtomicBool, mut between: impl FnMut(u64)) -> u64 {
    let mut window: Vec<(Box<[u64]>, u64)> = Vec::new();
    let mut step = 0u64;
    while !stop.load(Relaxed) {
        let tag = me << 40 | step;
        let words = 2 + (step as usize * 7 + me as usize) % 60;
        if window.len() >= 256 {
            let (old, old_tag) = window.swap_remove((step as usize * 31) % 256);
            check(&old, old_tag, "a block kept by its thread");
        }
        window.push((make(tag, words), tag));
        step += 1;
        if step.is_multiple_of(64) {
            between(step);
        }
    }
    for (block, tag) in window {
        check(&block, tag, "a block kept by its thread");
    }
    step
}

/// Threads move between CPUs (`sched_setaffinity`) every 64 steps while
/// they allocate and free: a section that commits on a CPU it no longer
/// runs on, or a slow path that mixes two CPUs' arrays, corrupts patterns.
#[test]
fn threads_repinned_between_cpus_keep_their_blocks() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let cpus = cpus();
    let stop = AtomicBool::new(false);
    let moves = AtomicU64::new(0);
    let before = A.stats().cpus;
    thread::scope(|s| {
        for me in 0..2 * cpus as u64 {
            let (stop, moves) = (&stop, &moves);
            s.spawn(move || {
                churn(me, stop, |step| {
                    pin((me as usize + (step / 64) as usize) % cpus);
                    moves.fetch_add(1, Relaxed);
                })
            });
        }
        wait_for(&moves, 5_000);
        stop.store(true, Relaxed);
    });
    assert!(before >= cpus);
    assert!(
        moves.load(Relaxed) >= 5_000,
        "{} moves",
        moves.load(Relaxed)
    );
    eprintln!("per-CPU path {:?}, {} moves", path(), moves.load(Relaxed));
}

/// Words of the signal handler's blocks: a class no worker uses (workers
/// stay under 512 B), so the handler never waits for a lock the thread it
/// interrupted holds.
const HANDLER_WORDS: usize = 256;

static HANDLED: AtomicU64 = AtomicU64::new(0);

/// Allocates, checks and frees a block: inside a restartable section it
/// interrupted, this changes the very arrays the section was working on,
/// which is only safe because the kernel aborts the section.
extern "C" fn on_signal(_: libc::c_int) {
    let tag = 0xdead << 48 | HANDLED.fetch_add(1, Relaxed);
    check(
        &make(tag, HANDLER_WORDS),
        tag,
        "a block of the signal handler",
    );
}

/// Another thread sends SIGUSR1 to the allocating threads every 20 µs, and
/// the handler allocates: each signal delivered inside a critical section
/// aborts it, and the section must start over rather than commit over what
/// the handler did.
#[test]
fn signals_abort_sections_without_losing_blocks() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // The handler must never wait for a lock that the thread it interrupted
    // holds: its class only has locks of its own, except the page lock for
    // a new slab or a released one. So its slabs stay (a reserve far above
    // what it uses), its caches hold 2 blocks each, and it gets 64 blocks
    // to spare up front: its slabs always have free blocks.
    let heap = A.allocator();
    let knobs = heap.knobs();
    heap.set_knobs(Knobs {
        release_pages: 1024,
        ..knobs
    });
    let handler_class = size_class::for_size(8 * HANDLER_WORDS).unwrap();
    heap.set_class_capacity(handler_class, 2);
    drop((0..64).map(|i| make(i, HANDLER_WORDS)).collect::<Vec<_>>());
    // SAFETY: installs a handler whose allocator calls are restartable or
    // take only its own class's locks (see above).
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
        action.sa_flags = libc::SA_RESTART;
        libc::sigaction(libc::SIGUSR1, &action, std::ptr::null_mut());
    }
    let stop = AtomicBool::new(false);
    let sent = AtomicU64::new(0);
    let threads = 2 * cpus();
    let ids = Mutex::new(Vec::new());
    let ready = Barrier::new(threads + 1);
    thread::scope(|s| {
        for me in 0..threads as u64 {
            let (stop, ids, ready) = (&stop, &ids, &ready);
            s.spawn(move || {
                // SAFETY: `pthread_self` has no preconditions.
                ids.lock()
                    .unwrap()
                    .push(unsafe { libc::pthread_self() } as usize);
                ready.wait();
                churn(me, stop, |_| {})
            });
        }
        ready.wait();
        let ids = ids.lock().unwrap().clone();
        let start = Instant::now();
        let goal_met = || HANDLED.load(Relaxed) >= 5_000 && start.elapsed() >= RUN;
        while !goal_met() && start.elapsed() < GIVE_UP {
            for &id in &ids {
                // SAFETY: the thread is alive until `stop` is set (below).
                unsafe { libc::pthread_kill(id as libc::pthread_t, libc::SIGUSR1) };
                sent.fetch_add(1, Relaxed);
            }
            thread::sleep(Duration::from_micros(20));
        }
        stop.store(true, Relaxed);
    });
    heap.set_class_capacity(handler_class, 0);
    heap.set_knobs(knobs);
    let handled = HANDLED.load(Relaxed);
    assert!(
        handled >= 5_000,
        "{handled} of {} signals handled",
        sent.load(Relaxed)
    );
    eprintln!("per-CPU path {:?}, {handled} signals handled", path());
}

/// Four threads per CPU in a ring, each freeing the blocks of the one before
/// it: threads are preempted inside the allocator all the time, and
/// allocation must keep its pace (no thread waits out another's time
/// slice on a lock) while every block stays intact.
#[test]
fn more_threads_than_cpus_free_each_others_blocks() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let threads = 4 * cpus();
    let stop = AtomicBool::new(false);
    let freed = AtomicU64::new(0);
    thread::scope(|s| {
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..threads)
            .map(|_| sync_channel::<Vec<(Box<[u64]>, u64)>>(4))
            .unzip();
        let mut rxs: Vec<_> = rxs.into_iter().map(Some).collect();
        for (me, tx) in txs.into_iter().enumerate() {
            let rx = rxs[(me + threads - 1) % threads].take().unwrap();
            let (stop, freed) = (&stop, &freed);
            s.spawn(move || {
                let mut round = 0u64;
                loop {
                    let done = stop.load(Relaxed);
                    let batch: Vec<_> = (0..if done { 0 } else { 32 })
                        .map(|i| {
                            let tag = (me as u64) << 40 | round << 8 | i;
                            (make(tag, 2 + (i as usize % 30)), tag)
                        })
                        .collect();
                    // The ring stops together: a member that saw `stop` sends
                    // one empty batch, and stops once it gets one.
                    if tx.send(batch).is_err() {
                        return;
                    }
                    let got = rx.recv().unwrap_or_default();
                    let empty = got.is_empty();
                    for (block, tag) in got {
                        check(&block, tag, "a block from the previous thread");
                        freed.fetch_add(1, Relaxed);
                    }
                    if done && empty {
                        return;
                    }
                    round += 1;
                }
            });
        }
        wait_for(&freed, 100_000);
        stop.store(true, Relaxed);
    });
    assert!(
        freed.load(Relaxed) >= 100_000,
        "{} freed",
        freed.load(Relaxed)
    );
    eprintln!(
        "per-CPU path {:?}, {} freed across threads",
        path(),
        freed.load(Relaxed)
    );
}

/// The path these tests ran on: restartable sequences unless the
/// environment asks for the try-locked caches (`ACEALLOC_RSEQ=0`, as the
/// child below does).
#[test]
fn std_programs_use_the_path_the_environment_asks_for() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    drop(make(1, 4));
    let expected = if std::env::var_os("ACEALLOC_RSEQ").is_some_and(|v| v == "0") {
        PerCpuPath::TryLock
    } else {
        PerCpuPath::Restartable
    };
    assert_eq!(
        path(),
        expected,
        "glibc 2.35+ and Linux 5.10+ offer rseq here"
    );
}

/// The same tests again in a child on the try-locked caches (the path of
/// std programs without rseq; see `Config::restartable`).
#[test]
fn the_tests_pass_on_try_locked_caches_in_a_child() {
    if std::env::var_os("ACEALLOC_RSEQ").is_some() {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let stdout = common::run_child(
        &["--test-threads=1", "--skip", "in_a_child"],
        &[("ACEALLOC_RSEQ", "0")],
    );
    assert!(stdout.contains("4 passed"), "{stdout}");
}

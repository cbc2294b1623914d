//! acealloc as the global allocator of this whole test binary (std's own
//! allocations included), under threads that allocate, check and free each
//! other's blocks, and under a collections-heavy workload.
//!
//! The tests take turns (`SERIAL`), so that each one's statistics before and
//! after describe its own work.

mod common;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;

use acealloc::Knobs;
use acealloc::hosted::HostedAlloc;
use acealloc::size_class::MAX_SMALL;

#[global_allocator]
static A: HostedAlloc = HostedAlloc::new();

static SERIAL: Mutex<()> = Mutex::new(());

/// Live bytes the test harness itself may allocate or free meanwhile.
const SLACK: usize = 256 * 1024;

/// xorshift64: a fast reproducible random source.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// 8 B .. 64 KiB, about as many in each power of two.
    fn size(&mut self) -> usize {
        let base = 8usize << (self.next() % 13);
        (base + self.next() as usize % base).min(64 * 1024)
    }
}

/// A block stamped by its allocating thread: every word derives from the
/// thread, the block's sequence number and the word's index.
struct Stamped {
    data: Box<[u64]>,
    thread: u32,
    seq: u32,
}

fn word(thread: u32, seq: u32, i: usize) -> u64 {
    ((u64::from(thread) << 32) | u64::from(seq)) ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

impl Stamped {
    /// A block of `size` bytes (rounded up to whole words).
    fn new(size: usize, thread: u32, seq: u32) -> Stamped {
        let data = (0..size.div_ceil(8))
            .map(|i| word(thread, seq, i))
            .collect();
        Stamped { data, thread, seq }
    }

    fn bytes(&self) -> usize {
        self.data.len() * 8
    }

    /// Panics unless the block still holds its stamp.
    fn check(&self, checker: u32) {
        for (i, &w) in self.data.iter().enumerate() {
            assert_eq!(
                w,
                word(self.thread, self.seq, i),
                "thread {checker}: block {} of thread {} ({} bytes) corrupted at word {i}",
                self.seq,
                self.thread,
                self.bytes()
            );
        }
    }
}

const THREADS: usize = 6;
const ITERATIONS: u32 = 12_000;
const WINDOW: usize = 128;

/// What one worker did.
#[derive(Default)]
struct Tally {
    /// Blocks that took the small-block path.
    small: u64,
    sent: u64,
    received: u64,
}

fn worker(
    me: u32,
    peers: Vec<Sender<Stamped>>,
    inbox: Receiver<Stamped>,
    barrier: Arc<Barrier>,
    window_bytes: Arc<AtomicUsize>,
) -> Tally {
    let mut rng = Rng(0x2545_F491_4F6C_DD1D ^ ((u64::from(me) + 1) * 0x1234_5678_9ABC_DEF1));
    let mut tally = Tally::default();
    let mut window = VecDeque::new();
    for seq in 0..ITERATIONS {
        let block = Stamped::new(rng.size(), me, seq);
        tally.small += u64::from(block.bytes() <= MAX_SMALL);
        if rng.next().is_multiple_of(2) {
            let to = rng.next() as usize % peers.len();
            peers[to].send(block).unwrap();
            tally.sent += 1;
        } else {
            window.push_back(block);
            if window.len() > WINDOW {
                window.pop_front().unwrap().check(me);
            }
        }
        while let Ok(block) = inbox.try_recv() {
            block.check(me);
            tally.received += 1;
        }
        if seq == ITERATIONS / 2 {
            // Hold still (window full) while the main thread reads stats.
            let held: usize = window.iter().map(Stamped::bytes).sum();
            window_bytes.fetch_add(held, Relaxed);
            barrier.wait();
            barrier.wait();
        }
    }
    drop(peers);
    for block in window {
        block.check(me);
    }
    // Every peer drops its senders when done, which ends this loop.
    for block in inbox {
        block.check(me);
        tally.received += 1;
    }
    tally
}

/// Threads allocate mixed sizes, send about half of their blocks to random
/// other threads, which check and free them; meanwhile another thread trims
/// and changes the knobs. Afterwards live bytes are back where they were.
#[test]
fn threads_free_each_others_blocks() {
    let _turn = SERIAL.lock().unwrap();
    if let Ok(checks) = std::env::var(EXPECT_CHECKS) {
        let config = A.allocator().config().copied().unwrap();
        assert_eq!(config.checks, checks == "1", "{config:?}");
    }
    let before = A.stats();

    let (senders, inboxes): (Vec<_>, Vec<_>) = (0..THREADS).map(|_| mpsc::channel()).unzip();
    let barrier = Arc::new(Barrier::new(THREADS + 1));
    let window_bytes = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let trims = Arc::new(AtomicU64::new(0));

    let trimmer = {
        let (stop, trims) = (stop.clone(), trims.clone());
        thread::spawn(move || {
            let small = Knobs {
                cache_capacity: 4,
                bundle_width: 2,
                drain_threshold: 8,
                ..Knobs::DEFAULT
            };
            let mut n = 0u64;
            while !stop.load(Relaxed) {
                A.allocator().trim();
                A.allocator().set_knobs(if n.is_multiple_of(2) {
                    small
                } else {
                    Knobs::DEFAULT
                });
                let _ = A.stats();
                n += 1;
                thread::yield_now();
            }
            A.allocator().set_knobs(Knobs::DEFAULT);
            trims.store(n, Relaxed);
        })
    };

    let workers: Vec<_> = inboxes
        .into_iter()
        .enumerate()
        .map(|(me, inbox)| {
            let peers = (0..THREADS)
                .filter(|&p| p != me)
                .map(|p| senders[p].clone())
                .collect();
            let (barrier, window_bytes) = (barrier.clone(), window_bytes.clone());
            thread::spawn(move || worker(me as u32, peers, inbox, barrier, window_bytes))
        })
        .collect();
    drop(senders);

    // Mid-run, every worker holds a full window and waits: live bytes
    // cover at least those windows.
    barrier.wait();
    let mid = A.stats();
    let held = window_bytes.load(Relaxed);
    barrier.wait();
    assert!(
        mid.live_bytes + SLACK >= before.live_bytes + held,
        "live {} B mid-run, {} B before, {held} B held by the workers",
        mid.live_bytes,
        before.live_bytes
    );

    let tallies: Vec<Tally> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    stop.store(true, Relaxed);
    trimmer.join().unwrap();

    let sent: u64 = tallies.iter().map(|t| t.sent).sum();
    let received: u64 = tallies.iter().map(|t| t.received).sum();
    assert_eq!(sent, received, "blocks lost in transit");
    assert!(
        sent > u64::from(ITERATIONS) * THREADS as u64 / 3,
        "{sent} sent"
    );
    let small: u64 = tallies.iter().map(|t| t.small).sum();
    assert!(trims.load(Relaxed) > 0);

    let after = A.stats();
    assert!(
        after.allocs() - before.allocs() >= small,
        "{} small allocations counted, {small} made",
        after.allocs() - before.allocs()
    );
    for c in &after.classes {
        assert!(c.allocs >= c.frees, "class {} B: {after}", c.size);
    }
    assert!(
        after.live_bytes <= before.live_bytes + SLACK,
        "live bytes did not fall back: {} B before, {} B after\n{after}",
        before.live_bytes,
        after.live_bytes
    );
    assert!(after.large_live_bytes <= before.large_live_bytes + SLACK);

    A.allocator().trim();
    let trimmed = A.stats();
    assert!(
        trimmed.committed_bytes < mid.committed_bytes,
        "trim kept {} B committed (mid-run {} B)",
        trimmed.committed_bytes,
        mid.committed_bytes
    );
    assert!(trimmed.committed_bytes >= trimmed.live_bytes);
}

/// One thread's share of the collections workload; every map it builds goes
/// to `out`. Returns the sum of all values put into those maps.
fn collections(me: u64, out: &Sender<HashMap<String, Vec<u64>>>) -> u64 {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (me + 1));
    let mut expected = 0u64;
    let mut map: HashMap<String, Vec<u64>> = HashMap::new();
    let mut tree: BTreeMap<u64, String> = BTreeMap::new();
    for i in 0..20_000u64 {
        let key = format!("key-{}-{}", me, rng.next() % 2000);
        let v = rng.next() % 1000;
        map.entry(key.clone()).or_default().push(v);
        expected = expected.wrapping_add(v);
        tree.insert(rng.next() % 5000, key.repeat(1 + (i % 7) as usize));
        if i % 1000 == 999 {
            // Hand a map over to be dropped by another thread.
            out.send(std::mem::take(&mut map)).unwrap();
        }
        if i % 3 == 0 {
            let k = rng.next() % 5000;
            tree.remove(&k);
        }
    }
    // A vector grown to 4 MiB byte by byte (reallocations through every
    // class and then large blocks), and a string built piece by piece.
    let mut bytes = Vec::new();
    for i in 0..4 << 20 {
        bytes.push(i as u8);
    }
    assert!(bytes.iter().enumerate().all(|(i, &b)| b == i as u8));
    bytes.truncate(1000);
    bytes.shrink_to_fit();
    assert_eq!(bytes.len(), 1000);
    let mut text = String::new();
    for (k, v) in &tree {
        text.push_str(&format!("{k}={v};"));
    }
    assert_eq!(text.matches(';').count(), tree.len());
    let mut sorted: Vec<String> = tree.into_values().collect();
    sorted.sort();
    sorted.dedup();
    assert!(sorted.windows(2).all(|w| w[0] < w[1]));
    out.send(map).unwrap();
    expected
}

/// Vec, String, HashMap and BTreeMap churn on four threads, with maps
/// dropped by a thread other than the one that built them.
#[test]
fn collections_workload() {
    let _turn = SERIAL.lock().unwrap();
    let before = A.stats();
    let (tx, rx) = mpsc::channel::<HashMap<String, Vec<u64>>>();
    let dropper = thread::spawn(move || {
        let mut sum = 0u64;
        for map in rx {
            sum = map.values().flatten().fold(sum, |a, &v| a.wrapping_add(v));
        }
        sum
    });
    let workers: Vec<_> = (0..4)
        .map(|me| {
            let tx = tx.clone();
            thread::spawn(move || collections(me, &tx))
        })
        .collect();
    drop(tx);
    let mut expected = 0u64;
    for w in workers {
        expected = expected.wrapping_add(w.join().unwrap());
    }
    // Every value pushed reached the dropper in exactly one map.
    assert_eq!(dropper.join().unwrap(), expected);

    let after = A.stats();
    assert!(after.allocs() > before.allocs() + 100_000);
    assert!(
        after.live_bytes <= before.live_bytes + SLACK,
        "live bytes did not fall back: {} B before, {} B after\n{after}",
        before.live_bytes,
        after.live_bytes
    );
}

/// Set in a child started by `unchecked_and_lean_in_a_child`: whether the
/// child's allocator must run checked.
const EXPECT_CHECKS: &str = "ACEALLOC_TEST_EXPECT_CHECKS";

/// The cross-thread test again in a child process whose allocator runs
/// without checks (the fast path of release builds) in the lean profile,
/// starting with small caches: more depot and slab traffic.
#[test]
fn unchecked_and_lean_in_a_child() {
    if std::env::var_os(EXPECT_CHECKS).is_some() {
        return;
    }
    let _turn = SERIAL.lock().unwrap();
    let stdout = common::run_child(
        &[
            "threads_free_each_others_blocks",
            "--exact",
            "--test-threads=1",
        ],
        &[
            (EXPECT_CHECKS, "0"),
            ("ACEALLOC_CHECKS", "0"),
            ("ACEALLOC_PROFILE", "lean"),
            ("ACEALLOC_CACHE_CAPACITY", "8"),
            ("ACEALLOC_BUNDLE_WIDTH", "4"),
            ("ACEALLOC_DRAIN_THRESHOLD", "16"),
        ],
    );
    assert!(stdout.contains("1 passed"), "{stdout}");
}

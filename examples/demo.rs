//! Hosted demo: acealloc as the global allocator of a program whose threads
//! run the `mixed-ws400` workload (400 slots; each step frees a random slot
//! if it is taken, else fills it with 16-1040 bytes, checked on free), with
//! a table of the allocator's state once a second.
//!
//! `cargo run --release --features std --example demo [seconds] [threads]`
//!
//! With `ACEALLOC_ACE=1` the adaptive control engine runs from the
//! background thread the global allocator starts itself (`ACEALLOC_ACE_FAST_MS`, `ACEALLOC_ACE_SLOW_S`; `ACEALLOC_ACE_LOG=1`
//! prints decisions as they happen): the knob columns show its moves, and its
//! status and decision trace, read through the statistics API
//! (`HostedAlloc::ace_stats`), are printed at the end.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

use acealloc::hosted::HostedAlloc;

#[global_allocator]
static A: HostedAlloc = HostedAlloc::new();

static STOP: AtomicBool = AtomicBool::new(false);

/// xorshift64: a fast reproducible random source.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Runs mixed-ws400 until told to stop; returns the steps taken.
fn mixed_ws400(seed: u64) -> u64 {
    let mut rng = Rng(seed | 1);
    let mut slots: Vec<Option<Vec<u8>>> = (0..400).map(|_| None).collect();
    let mut steps = 0u64;
    while !STOP.load(Relaxed) {
        for _ in 0..1024 {
            let r = rng.next();
            let slot = &mut slots[(r % 400) as usize];
            match slot.take() {
                Some(block) => {
                    let tag = block.len() as u8;
                    assert!(block.iter().all(|&b| b == tag), "block contents changed");
                }
                None => {
                    let size = 16 + (r >> 32) as usize % 1025;
                    *slot = Some(vec![size as u8; size]);
                }
            }
        }
        steps += 1024;
    }
    steps
}

fn main() {
    let mut args = std::env::args()
        .skip(1)
        .map(|a| a.parse::<u64>().expect("numbers"));
    let seconds = args.next().unwrap_or(5);
    let threads = args.next().unwrap_or(4);
    let workers: Vec<_> = (0..threads)
        .map(|t| std::thread::spawn(move || mixed_ws400(0x9E37_79B9_7F4A_7C15 * (t + 1))))
        .collect();

    let cpus = A.stats().cpus;
    print!("  t  ");
    for cpu in 0..cpus {
        print!("  cpu{cpu} Mops  hit%");
    }
    println!("   committed      live   cap bundle drain");
    let start = Instant::now();
    let mut last = vec![0u64; cpus];
    for second in 1..=seconds {
        std::thread::sleep(Duration::from_secs(1));
        print!("{second:>3}s ");
        for (cpu, previous) in last.iter_mut().enumerate() {
            let c = A.allocator().cpu_stats(cpu).expect("cpu in range");
            let ops = c.allocs + c.frees;
            print!(
                "  {:>9.2} {:>5.1}",
                (ops - *previous) as f64 / 1e6,
                c.hit_permille() as f64 / 10.0
            );
            *previous = ops;
        }
        let s = A.stats();
        let k = A.allocator().knobs();
        println!(
            "  {:>7} KiB {:>5} KiB {:>5} {:>6} {:>5}",
            s.committed_bytes / 1024,
            s.live_bytes / 1024,
            k.cache_capacity,
            k.bundle_width,
            k.drain_threshold
        );
    }
    STOP.store(true, Relaxed);
    let steps: u64 = workers.into_iter().map(|w| w.join().expect("worker")).sum();
    let elapsed = start.elapsed().as_secs_f64();
    let s = A.stats();
    println!(
        "\n{threads} threads, {:.1} M steps in {elapsed:.1} s ({:.1} M steps/s); cache hit rate {:.1}%; \
         depot contention {}; provider calls {} alloc, {} free",
        steps as f64 / 1e6,
        steps as f64 / elapsed / 1e6,
        s.cache_hits() as f64 * 100.0 / s.allocs().max(1) as f64,
        s.depot_contended,
        s.provider.alloc_calls,
        s.provider.free_calls
    );
    if let Some(report) = A.ace_stats() {
        let status = &report.status;
        println!(
            "\nACE (from the stats API): on {}, off reason {:?}; {} deciding ticks (mean {} ns, max {} ns), {} decisions:",
            status.enabled,
            status.off_reason,
            status.deciding_ticks,
            status.total_tick / status.deciding_ticks.max(1),
            status.max_tick,
            status.decisions
        );
        for decision in report.decisions() {
            println!("  {decision}");
        }
    }
}

//! `acealloc-bench soak PROFILE [--epochs N] [--epoch-secs S] [--decommit MODE] [--phased] [--ace]`:
//! `mixed-ws400` on hosted acealloc in one process for a long time, one line per epoch.
//!
//! Each epoch runs the workload for `S` seconds (default 5) and prints `EPOCH` with `key=value`
//! fields, so that a drift in resident memory can be traced to where it is:
//! - `secs`, `cpu_secs` (the workload thread's CPU time: on a shared machine the difference is
//!   time it waited for a core), `ops`, `load1` (the machine's one-minute load average);
//! - `rss_kib` (`VmRSS`), split into `span_rss_kib` (resident pages of the allocator's own
//!   reservation, `lazyfree_kib` of them freed with `MADV_FREE` but not yet taken by the kernel)
//!   and `outside_kib` (everything else: the program, glibc's heap, thread stacks);
//! - the allocator's view: `committed_kib`, `live_kib`, `retained_kib`, `decommitted_kib`,
//!   `slabs`, `cached_blocks` and `depot_blocks` (the span's resident pages beyond
//!   `committed_kib` are the page map's, which are backed only where used);
//! - provider calls of the epoch: `provider_calls` (all), `alloc_calls`, `free_calls`,
//!   `decommit_calls`, `recommit_calls`.
//!
//! The slots carry over from epoch to epoch, so the live set stays the workload's steady state;
//! what changes with time is only what the allocator keeps. With `--phased` the block sizes
//! change every two epochs (16–1040 B, 1–8 KiB, 16–256 B in turn), so classes empty out and fill
//! again. `cargo xtask soak` drives this and reports drift and spread.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Instant;

use acealloc::ace::{Ace, AceConfig, ticker};
use acealloc::hosted::HostedPlatform;
use acealloc::provider::MmapProvider;
use acealloc::{Allocator, Config, DecommitMode, PageProvider, Profile, Span, Stats};

use crate::block::{Block, Heap};
use crate::report::status_kib;
use crate::rng::Rng;

const SLOTS: usize = 400;
/// Steps between looks at the clock.
const BATCH: usize = 4096;

/// Options of `soak`.
struct Options {
    profile: Profile,
    epochs: usize,
    epoch_secs: f64,
    decommit: DecommitMode,
    phased: bool,
    /// Run ACE from a ticker thread (its tick also returns idle CPU caches).
    ace: bool,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let [profile, rest @ ..] = args else {
        return Err("soak needs a profile: fast, balanced or lean".into());
    };
    let profile = match profile.as_str() {
        "fast" => Profile::Fast,
        "balanced" => Profile::Balanced,
        "lean" => Profile::Lean,
        other => return Err(format!("unknown profile {other}")),
    };
    let mut options = Options {
        profile,
        epochs: 12,
        epoch_secs: 5.0,
        decommit: DecommitMode::DontNeed,
        phased: false,
        ace: false,
    };
    let mut rest = rest.iter();
    while let Some(option) = rest.next() {
        let mut value = |name: &str| rest.next().ok_or(format!("{name} needs a value"));
        match option.as_str() {
            "--epochs" => options.epochs = number(value("--epochs")?)?,
            "--epoch-secs" => options.epoch_secs = number(value("--epoch-secs")?)?,
            "--decommit" => {
                options.decommit = match value("--decommit")?.as_str() {
                    "free" => DecommitMode::Free,
                    "dontneed" => DecommitMode::DontNeed,
                    "off" => DecommitMode::Off,
                    other => return Err(format!("unknown decommit mode {other}")),
                }
            }
            "--phased" => options.phased = true,
            "--ace" => options.ace = true,
            other => return Err(format!("unknown soak option {other}")),
        }
    }
    Ok(options)
}

fn number<T: std::str::FromStr>(text: &str) -> Result<T, String> {
    text.parse().map_err(|_| format!("{text}: not a number"))
}

/// Block sizes of an epoch: `mixed-ws400`'s, or with `--phased` one of three ranges.
fn sizes(phased: bool, epoch: usize) -> (usize, usize) {
    const PHASES: [(usize, usize); 3] = [(16, 1040), (1024, 8192), (16, 256)];
    if phased {
        PHASES[(epoch / 2) % PHASES.len()]
    } else {
        PHASES[0]
    }
}

/// Runs the soak; true when every block read back intact.
pub fn run(args: &[String]) -> Result<bool, String> {
    let options = parse(args)?;
    let ace = Box::new(Allocator::<MmapProvider, HostedPlatform>::new());
    let provider = MmapProvider::new(8 << 30, options.decommit).ok_or("reserve address space")?;
    let config = Config {
        profile: options.profile,
        decommit: options.decommit,
        checks: false,
        ..Config::DEFAULT
    };
    ace.init(provider, config)
        .map_err(|e| format!("init: {e:?}"))?;
    if !options.ace {
        return Ok(epochs(&ace, &options));
    }
    let engine = Ace::new();
    let config = AceConfig::DEFAULT;
    engine.enable(&*ace, config, ticker::HOSTED_CLOCK_HZ);
    let stop = AtomicBool::new(false);
    Ok(std::thread::scope(|s| {
        s.spawn(|| ticker::run(&engine, &*ace, config.fast_ms, &stop, false));
        let intact = epochs(&ace, &options);
        stop.store(true, Relaxed);
        intact
    }))
}

/// The soak's epochs on `ace`; true when every block read back intact.
fn epochs(ace: &Allocator<MmapProvider, HostedPlatform>, options: &Options) -> bool {
    let mut rng = Rng::new(1);
    let mut heap = Heap::new(ace, 1);
    let mut slots: Vec<Option<Block>> = (0..SLOTS).map(|_| None).collect();
    let mut before = ace.stats();
    for epoch in 0..options.epochs {
        let (lo, hi) = sizes(options.phased, epoch);
        let ops_before = heap.tally.ops;
        let cpu_before = thread_cpu_secs();
        let start = Instant::now();
        while start.elapsed().as_secs_f64() < options.epoch_secs {
            for _ in 0..BATCH {
                let slot = &mut slots[rng.below(SLOTS)];
                match slot.take() {
                    // SAFETY: every block in `slots` came from `heap`.
                    Some(block) => unsafe { heap.free(block) },
                    None => *slot = heap.alloc(rng.range(lo, hi), 8),
                }
            }
        }
        let secs = start.elapsed().as_secs_f64();
        let s = ace.stats();
        let span = ace.with_provider(|p| p.span()).expect("initialised");
        let (span_rss, lazyfree) = span_resident_kib(span);
        let rss = status_kib("VmRSS");
        println!(
            "EPOCH index={epoch} secs={secs:.3} cpu_secs={:.3} ops={} load1={} rss_kib={rss} span_rss_kib={span_rss} lazyfree_kib={lazyfree} outside_kib={} {}",
            thread_cpu_secs() - cpu_before,
            heap.tally.ops - ops_before,
            load1(),
            rss.saturating_sub(span_rss),
            allocator_fields(&s, &before),
        );
        before = s;
    }
    for block in slots.into_iter().flatten() {
        // SAFETY: every block in `slots` came from `heap`.
        unsafe { heap.free(block) };
    }
    println!("{}", ace.stats());
    heap.tally.corrupt == 0 && heap.tally.failed == 0
}

/// The allocator's side of an epoch line: its memory now, and its provider calls since `before`.
fn allocator_fields(s: &Stats, before: &Stats) -> String {
    let (p, b) = (&s.provider, &before.provider);
    let sum = |f: fn(&acealloc::ClassStats) -> u64| s.classes.iter().map(f).sum::<u64>();
    format!(
        "committed_kib={} live_kib={} retained_kib={} decommitted_kib={} slabs={} cached_blocks={} depot_blocks={} provider_calls={} alloc_calls={} free_calls={} decommit_calls={} recommit_calls={}",
        s.committed_bytes / 1024,
        s.live_bytes / 1024,
        s.retained_bytes / 1024,
        s.decommitted_bytes / 1024,
        sum(|c| c.slabs),
        sum(|c| c.cached_blocks),
        sum(|c| c.depot_blocks),
        p.total() - b.total(),
        p.alloc_calls - b.alloc_calls,
        p.free_calls - b.free_calls,
        p.decommit_calls - b.decommit_calls,
        p.recommit_calls - b.recommit_calls,
    )
}

/// Resident KiB of the mappings that overlap `span` (the allocator's reservation), and how
/// many of those are lazily freed (`MADV_FREE`), from `/proc/self/smaps`.
fn span_resident_kib(span: Span) -> (u64, u64) {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap_or_default();
    let (mut rss, mut lazyfree, mut inside) = (0, 0, false);
    for line in smaps.lines() {
        let range = line
            .split_whitespace()
            .next()
            .and_then(|r| r.split_once('-'));
        if let Some((Ok(start), Ok(end))) =
            range.map(|(a, b)| (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16)))
        {
            inside = start < span.base + span.len && span.base < end;
            continue;
        }
        let kib = |field: &str| {
            line.strip_prefix(field).and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
        };
        if inside {
            rss += kib("Rss:").unwrap_or(0);
            lazyfree += kib("LazyFree:").unwrap_or(0);
        }
    }
    (rss, lazyfree)
}

/// CPU seconds the calling thread has run.
fn thread_cpu_secs() -> f64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid timespec to write into.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
}

/// The one-minute load average, as `/proc/loadavg` gives it.
fn load1() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace().next().unwrap_or("0").to_string()
}

//! The hosted ticker: a std program has no timer interrupt, so a
//! thread calls [`Ace::tick`] every [`TICK_MS`] (the program's own, with
//! [`run`]; or, with `ACEALLOC_ACE=1` and `HostedAlloc` as the global
//! allocator, the [`background`](super::background) thread it starts), with the
//! process's hardware counts since the previous tick where the kernel
//! offers them through `perf_event_open` ([`perf`](super::perf): LLC
//! misses, cycles, instructions). Where it does not (this project's build
//! machine, a VM without a PMU), the ticker says why once (on stderr with
//! `ACEALLOC_ACE_LOG=1`) and ACE runs on software metrics.
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `ACEALLOC_ACE` | `1` switches ACE on | off |
//! | `ACEALLOC_ACE_FAST_MS` | fast loop interval, ms | 100 |
//! | `ACEALLOC_ACE_SLOW_S` | slow loop interval, s | 30 |
//! | `ACEALLOC_ACE_TARGET_MB` | memory target ([`AceConfig::memory_target`]), MiB | none |
//! | `ACEALLOC_ACE_LOG` | `1` prints every decision to stderr | off |

use core::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::thread;
use std::time::Duration;

use super::perf::PerfCounters;
use super::{Ace, AceConfig, Decision, Tunable};

/// Clock rate of the hosted platform's `now` (`CLOCK_MONOTONIC` in ns).
pub const HOSTED_CLOCK_HZ: u64 = 1_000_000_000;

/// The hosted timer's period, ms (or the fast interval, if shorter): 100
/// Hz, as a kernel's timer interrupt ticks. Every tick runs the allocator's
/// housekeeping, which does the purges ACE asks for within each tick's
/// deadline; ACE itself decides once a fast interval. Ticking only every
/// fast interval left a quiet spell's purge one tick's budget a fast
/// interval: a few MiB where tens were idle.
pub const TICK_MS: u64 = 10;

/// The ticker's sleep between ticks for a fast interval of `fast_ms`.
pub(super) fn tick_period(fast_ms: u64) -> Duration {
    Duration::from_millis(fast_ms.clamp(1, TICK_MS))
}

/// ACE's settings from the environment: `None` unless `ACEALLOC_ACE=1`.
pub fn config_from_env() -> Option<AceConfig> {
    let number = |name| std::env::var(name).ok()?.trim().parse::<u64>().ok();
    if number("ACEALLOC_ACE") != Some(1) {
        return None;
    }
    let defaults = AceConfig::DEFAULT;
    Some(AceConfig {
        fast_ms: number("ACEALLOC_ACE_FAST_MS").unwrap_or(defaults.fast_ms),
        slow_s: number("ACEALLOC_ACE_SLOW_S").unwrap_or(defaults.slow_s),
        memory_target: number("ACEALLOC_ACE_TARGET_MB")
            .map_or(defaults.memory_target, |mb| mb << 20),
        ..defaults
    })
}

/// Whether `ACEALLOC_ACE_LOG=1`.
pub fn log_from_env() -> bool {
    std::env::var("ACEALLOC_ACE_LOG").is_ok_and(|v| v.trim() == "1")
}

/// Ticks `ace` for `target` every [`TICK_MS`] (ACE deciding every
/// `fast_ms`) until `stop` is set or ACE is
/// switched off, with the hardware counts of the process where the kernel
/// offers them; with `log`, prints each new decision to stderr (and, once,
/// why there are no hardware counts). Run it on a thread of its own
/// (`std::thread::scope` for a target that is not `'static`). The
/// counters open when it starts: threads the main thread starts after that
/// count (see [`perf`](super::perf)).
pub fn run<T: Tunable>(ace: &Ace, target: &T, fast_ms: u64, stop: &AtomicBool, log: bool) {
    let mut ticks = Ticks::open(log);
    while !stop.load(Relaxed) && ace.is_enabled() {
        thread::sleep(tick_period(fast_ms));
        ticks.tick(ace, target);
    }
    ticks.print(ace);
}

/// What a ticking thread keeps between ticks: the process's hardware
/// counters (where the kernel offers them) and, when it logs, the last
/// decision it printed. Shared by [`run`] and the background thread.
pub(super) struct Ticks {
    hw: Option<PerfCounters>,
    log: bool,
    seen: u64,
}

impl Ticks {
    /// Opens the counters; with `log`, says once why there are none.
    pub(super) fn open(log: bool) -> Ticks {
        let hw = match PerfCounters::open() {
            Ok(counters) => Some(counters),
            Err(why) => {
                if log {
                    std::eprintln!(
                        "acealloc ace: no hardware counts ({why}): software metrics only"
                    );
                }
                None
            }
        };
        Ticks { hw, log, seen: 0 }
    }

    /// One tick with the counts since the previous one; then, when
    /// logging, prints the decisions it brought.
    pub(super) fn tick<T: Tunable>(&mut self, ace: &Ace, target: &T) {
        ace.tick(target, self.hw.as_mut().map(PerfCounters::sample));
        self.print(ace);
    }

    /// When logging, prints the decisions not printed yet to stderr.
    fn print(&mut self, ace: &Ace) {
        if !self.log {
            return;
        }
        let mut batch = [Decision::EMPTY; 16];
        loop {
            let n = ace.decisions(self.seen, &mut batch);
            for decision in &batch[..n] {
                std::eprintln!("acealloc ace: {decision}");
                self.seen = decision.seq;
            }
            if n < batch.len() {
                return;
            }
        }
    }
}

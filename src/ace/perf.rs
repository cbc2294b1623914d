//! Hardware counters for the hosted ticker, through `perf_event_open(2)`:
//! last-level-cache misses (`PERF_COUNT_HW_CACHE_MISSES`), cycles and
//! instructions, read each tick as deltas and handed to
//! [`Ace::tick`](super::Ace::tick) as [`HwCounts`], as a kernel's timer
//! handler hands over its PMU's.
//!
//! Which threads count: the counters follow the process's main thread
//! (`pid` = the process id, `cpu` = -1: on whichever CPU it runs) and,
//! through `inherit`, every thread it starts after the open (the kernel
//! adds the inherited counts on each read). Open them before the worker
//! threads start: `ticker::run` does when it starts, and the background
//! thread when the first allocation starts it.
//!
//! What the kernel must offer: a PMU it exposes (virtual machines often
//! have none: the open fails with `ENOENT`, `ENODEV` or `EOPNOTSUPP`), and
//! `kernel.perf_event_paranoid` at 2 or below: the counters exclude the
//! kernel and the hypervisor, which is all 2 (the usual default) allows
//! an unprivileged process; above 2 (a distribution patch) needs
//! `CAP_PERFMON`, else `EACCES`. Without them, the ticker says why once
//! and ACE runs on software metrics.

use core::fmt;

use super::HwCounts;

/// `perf_event_attr.type` of the generalised hardware events.
const PERF_TYPE_HARDWARE: u32 = 0;
/// The events, in the order of [`HwCounts`]' fields, with their names.
const EVENTS: [(u64, &str); 3] = [
    (3, "PERF_COUNT_HW_CACHE_MISSES"),
    (0, "PERF_COUNT_HW_CPU_CYCLES"),
    (1, "PERF_COUNT_HW_INSTRUCTIONS"),
];
/// `perf_event_attr` flag bits (linux/perf_event.h): children inherit the
/// counter; kernel and hypervisor execution is not counted.
const INHERIT: u64 = 1 << 1;
const EXCLUDE_KERNEL: u64 = 1 << 5;
const EXCLUDE_HV: u64 = 1 << 6;
/// `perf_event_open` flag: close the descriptor on `exec`.
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 1 << 3;

/// The first version of `struct perf_event_attr` (`PERF_ATTR_SIZE_VER0`,
/// 64 bytes), which every kernel since 2.6.31 accepts: newer fields are
/// then zero.
#[repr(C)]
struct PerfEventAttr {
    kind: u32,
    size: u32,
    config: u64,
    sample_period: u64,
    sample_type: u64,
    read_format: u64,
    flags: u64,
    wakeup_events: u32,
    bp_type: u32,
    config1: u64,
}

const _: () = assert!(size_of::<PerfEventAttr>() == 64);

/// Why the counters could not be opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unavailable {
    /// The event whose open failed.
    pub event: &'static str,
    /// The `errno` of the failed `perf_event_open`.
    pub errno: i32,
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "perf_event_open({}) failed with errno {}: {}",
            self.event,
            self.errno,
            std::io::Error::from_raw_os_error(self.errno)
        )
    }
}

/// The three counters, open, and their values at the previous sample.
pub struct PerfCounters {
    fds: [libc::c_int; 3],
    last: [u64; 3],
}

impl PerfCounters {
    /// Opens the three counters for the process (see the module doc).
    pub fn open() -> Result<PerfCounters, Unavailable> {
        let mut counters = PerfCounters {
            fds: [-1; 3],
            last: [0; 3],
        };
        // SAFETY: `getpid` has no preconditions.
        let pid = unsafe { libc::getpid() };
        for (fd, (config, event)) in counters.fds.iter_mut().zip(EVENTS) {
            *fd = open_event(config, pid).map_err(|errno| Unavailable { event, errno })?;
        }
        counters.last = counters.read();
        Ok(counters)
    }

    /// The events since the previous sample (or the open).
    pub fn sample(&mut self) -> HwCounts {
        let now = self.read();
        deltas(&mut self.last, now)
    }

    /// The counters' current values (a failed read keeps the last value).
    fn read(&self) -> [u64; 3] {
        let mut values = self.last;
        for (value, &fd) in values.iter_mut().zip(&self.fds) {
            let mut count = 0u64;
            // SAFETY: `fd` is an open perf event, and `count` has room for
            // the 8 bytes it returns (read_format 0).
            let n = unsafe { libc::read(fd, (&raw mut count).cast(), 8) };
            if n == 8 {
                *value = count;
            }
        }
        values
    }
}

impl Drop for PerfCounters {
    fn drop(&mut self) {
        for &fd in self.fds.iter().filter(|&&fd| fd >= 0) {
            // SAFETY: `fd` was opened by `open` and is closed once, here.
            unsafe { libc::close(fd) };
        }
    }
}

/// Opens one hardware counter of `pid`'s threads; `Err(errno)` on failure.
fn open_event(config: u64, pid: libc::pid_t) -> Result<libc::c_int, i32> {
    let attr = PerfEventAttr {
        kind: PERF_TYPE_HARDWARE,
        size: size_of::<PerfEventAttr>() as u32,
        config,
        sample_period: 0,
        sample_type: 0,
        read_format: 0,
        flags: INHERIT | EXCLUDE_KERNEL | EXCLUDE_HV,
        wakeup_events: 0,
        bp_type: 0,
        config1: 0,
    };
    // SAFETY: `attr` is a valid `perf_event_attr` of the size it states,
    // alive for the call; the other arguments are plain integers.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            &raw const attr,
            pid,
            -1 as libc::c_int,
            -1 as libc::c_int,
            PERF_FLAG_FD_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0));
    }
    Ok(fd as libc::c_int)
}

/// The change of each counter from `last` to `now` (counters wrap at 64
/// bits), in [`HwCounts`]' order; `now` becomes `last`.
fn deltas(last: &mut [u64; 3], now: [u64; 3]) -> HwCounts {
    let delta = |i: usize| now[i].wrapping_sub(last[i]);
    let counts = HwCounts {
        llc_misses: delta(0),
        cycles: delta(1),
        instructions: delta(2),
    };
    *last = now;
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_are_per_counter_and_survive_a_wrap() {
        let mut last = [10, u64::MAX - 4, 1000];
        let counts = deltas(&mut last, [15, 5, 1000]);
        assert_eq!(
            counts,
            HwCounts {
                llc_misses: 5,
                cycles: 10,
                instructions: 0,
            }
        );
        assert_eq!(last, [15, 5, 1000]);
        assert_eq!(deltas(&mut last, [16, 7, 1003]).instructions, 3);
    }

    /// Where the kernel offers no hardware counters (this project's build
    /// machine: a VM without a PMU, ENOENT), the open says why with the
    /// errno; where it does, they count this process's instructions.
    #[test]
    #[cfg_attr(miri, ignore = "Miri has no perf_event_open")]
    fn the_open_counts_or_says_why_not() {
        match PerfCounters::open() {
            Err(why) => {
                std::println!("{why}");
                assert!(
                    [libc::ENOENT, libc::ENODEV, libc::EACCES, libc::EOPNOTSUPP]
                        .contains(&why.errno),
                    "{why}"
                );
                assert_eq!(why.event, "PERF_COUNT_HW_CACHE_MISSES", "the first event");
            }
            Ok(mut counters) => {
                let work: u64 = (0..100_000u64).map(core::hint::black_box).sum();
                core::hint::black_box(work);
                assert!(counters.sample().instructions > 0);
            }
        }
    }
}

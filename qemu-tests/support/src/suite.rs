//! Test reporting: [`check!`](crate::check) records a failed check from any CPU or interrupt
//! handler; a [`Suite`] runs tests one after another, prints a line for each and a summary, and
//! ends the run with the matching exit code.
//!
//! A test fails when any check failed while it ran (checks made on other CPUs for it included).

use core::fmt;
use core::sync::atomic::{AtomicUsize, Ordering};

use acealloc_kernel_rt::{ExitCode, cpu_count, cpu_index, exit, println};

use crate::clock::{self, Stopwatch};

/// Failure messages printed at most; later failures are only counted.
const MAX_REPORTS: usize = 20;

static FAILED_CHECKS: AtomicUsize = AtomicUsize::new(0);

/// Checks a condition; on failure prints the message with the CPU and place, and fails the
/// running test. Evaluates to the condition, so loops can stop at the first failure. The message
/// is only formatted on failure.
#[macro_export]
macro_rules! check {
    ($condition:expr, $($message:tt)+) => {
        if $condition {
            true
        } else {
            $crate::suite::record_failure(file!(), line!(), format_args!($($message)+));
            false
        }
    };
}

/// Counts and reports a failed check (use [`check!`](crate::check)).
pub fn record_failure(file: &str, line: u32, message: fmt::Arguments) {
    let failures = FAILED_CHECKS.fetch_add(1, Ordering::Relaxed);
    if failures < MAX_REPORTS {
        println!(
            "    check failed on cpu {} at {file}:{line}: {message}",
            cpu_index()
        );
    } else if failures == MAX_REPORTS {
        println!("    (further failed checks are counted, not printed)");
    }
}

/// Checks failed so far in this run.
pub fn failed_checks() -> usize {
    FAILED_CHECKS.load(Ordering::Relaxed)
}

/// The tests of one kernel.
pub struct Suite {
    kernel: &'static str,
    passed: usize,
    failed: usize,
}

impl Suite {
    /// Starts the suite of `kernel` (CPU 0, interrupts disabled, before any timer handler is
    /// set: it calibrates the clock).
    pub fn start(kernel: &'static str) -> Suite {
        clock::calibrate();
        println!(
            "{kernel}: {} CPUs, TSC {} MHz",
            cpu_count(),
            clock::tsc_hz() / 1_000_000
        );
        Suite {
            kernel,
            passed: 0,
            failed: 0,
        }
    }

    /// Runs one test and prints `<kernel>: <name> ... ok (<time>)` or `... FAILED`.
    pub fn test(&mut self, name: &str, test: impl FnOnce()) {
        let before = failed_checks();
        let stopwatch = Stopwatch::start();
        test();
        let millis = stopwatch.millis();
        let kernel = self.kernel;
        if failed_checks() == before {
            self.passed += 1;
            println!("{kernel}: {name} ... ok ({millis} ms)");
        } else {
            self.failed += 1;
            println!("{kernel}: {name} ... FAILED ({millis} ms)");
        }
    }

    /// Prints the summary and ends the run: success only if every test passed.
    pub fn finish(self) -> ! {
        let total = self.passed + self.failed;
        if self.failed == 0 {
            println!("{}: {total} of {total} tests passed", self.kernel);
            exit(ExitCode::Success)
        } else {
            println!("{}: {} of {total} tests FAILED", self.kernel, self.failed);
            exit(ExitCode::Failure)
        }
    }
}

//! `acealloc-bench`: runs ONE (allocator, workload) per process and prints one result line, so
//! that each run's peak RSS (`VmHWM`) is its own. `cargo xtask bench` runs the matrix.
//!
//! ```text
//! acealloc-bench list
//! acealloc-bench run WORKLOAD ALLOC [--threads N] [--quick] [--seed N] [--time-limit SECS]
//!                    [--secs S] [--knobs CAP,BUNDLE,DRAIN[,RELEASE]]
//! acealloc-bench soak PROFILE [--epochs N] [--epoch-secs S] [--decommit MODE] [--phased]
//! ```
//!
//! `list` prints the standard matrix, one `CELL workload=… threads=… metric=… allocs=a,b,…` line
//! per cell. `run` prints `RESULT key=value …` (see `report.rs`) and exits 0 when the data
//! checks passed, 1 when they did not, 2 on a usage error. `--secs` runs the workload for that
//! long instead of its planned count, and `--knobs` starts an acealloc variant with those knobs
//! instead of the defaults (both for `cargo xtask ace-eval`). A variant that runs ACE also
//! prints an `ACE key=value …` line (what ACE did) before the result line.
//!
//! # Which allocator serves what
//! The allocator under test is not the process's global allocator: the workloads call it
//! explicitly, through a generic parameter (so its calls are as direct as a global allocator's,
//! and inlined where its crate allows), and everything else (argument parsing, the workloads'
//! slot arrays, thread spawning, channels) uses the default global allocator, glibc's `malloc`.
//! One binary then serves every allocator, and every run of a workload carries the same
//! bookkeeping: the process's start-up (`rss_base_kib`, the resident set just before the
//! workload starts) and the workload's records of its live blocks (32 bytes each, in arrays
//! sized before the measured part where the workload knows the count), which follow the same
//! sequence of requests whatever the allocator. So the peak RSS of two allocators on one
//! workload differs only by what the allocators themselves made resident.
//! The region-based allocators' regions are reserved lazily (`region.rs`), so they count only
//! what those allocators touch.

mod allocators;
mod block;
mod pin;
mod region;
mod report;
mod rng;
mod soak;
mod workloads;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use acealloc::Knobs;
use allocators::Alloc;
use workloads::{Params, Workload};

const USAGE: &str = "usage: acealloc-bench list
       acealloc-bench run WORKLOAD ALLOC [--threads N] [--quick] [--seed N] [--time-limit SECS]
                          [--secs S] [--knobs CAP,BUNDLE,DRAIN[,RELEASE]]
       acealloc-bench soak PROFILE [--epochs N] [--epoch-secs S] [--decommit MODE] [--phased]";

/// Time limit of a run unless `--time-limit` says otherwise.
const DEFAULT_TIME_LIMIT_SECS: f64 = 30.0;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("list") if args.len() == 1 => {
            list();
            Ok(true)
        }
        Some("run") => run(&args[1..]),
        Some("soak") => soak::run(&args[1..]),
        _ => Err(USAGE.to_string()),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(message) => {
            eprintln!("acealloc-bench: {message}");
            ExitCode::from(2)
        }
    }
}

fn list() {
    for cell in workloads::matrix() {
        let allocs: Vec<&str> = cell.allocs.iter().map(|a| a.name()).collect();
        println!(
            "CELL workload={} threads={} metric={} allocs={}",
            cell.workload.name(),
            cell.threads,
            cell.workload.metric().name(),
            allocs.join(",")
        );
    }
}

/// Parses `run`'s arguments, runs, prints the result line; true when the checks passed.
fn run(args: &[String]) -> Result<bool, String> {
    let [workload, alloc, options @ ..] = args else {
        return Err(USAGE.to_string());
    };
    let workload = Workload::from_name(workload).ok_or(format!("unknown workload {workload}"))?;
    let mut alloc = Alloc::from_name(alloc).ok_or(format!(
        "unknown allocator {alloc} (this build has: {})",
        Alloc::all()
            .iter()
            .map(|a| a.name())
            .collect::<Vec<_>>()
            .join(", ")
    ))?;
    let (mut threads, mut quick, mut seed, mut limit) = (1, false, 1, DEFAULT_TIME_LIMIT_SECS);
    let mut secs: Option<f64> = None;
    let mut options = options.iter();
    while let Some(option) = options.next() {
        let mut value = |name: &str| {
            options
                .next()
                .ok_or(format!("{name} needs a value"))
                .cloned()
        };
        match option.as_str() {
            "--quick" => quick = true,
            "--threads" => threads = number(&value("--threads")?)?,
            "--seed" => seed = number(&value("--seed")?)?,
            "--time-limit" => limit = number(&value("--time-limit")?)?,
            "--secs" => secs = Some(number(&value("--secs")?)?),
            "--knobs" => {
                let knobs = knobs(&value("--knobs")?)?;
                alloc = alloc
                    .with_knobs(knobs)
                    .ok_or(format!("--knobs: {} has no knobs", alloc.name()))?;
            }
            other => return Err(format!("unknown option {other}\n{USAGE}")),
        }
    }
    if !workload.accepts(alloc, threads) {
        return Err(format!(
            "{} does not run {} with {threads} thread(s)",
            workload.name(),
            alloc.name()
        ));
    }
    if secs.is_some() && !workload.runs_for_duration() {
        return Err(format!(
            "--secs: {} runs its planned count only",
            workload.name()
        ));
    }
    let rss_base_kib = report::status_kib("VmRSS");
    let params = Params {
        quick,
        threads,
        seed,
        deadline: Instant::now() + Duration::from_secs_f64(secs.unwrap_or(limit).min(limit)),
        for_duration: secs.is_some(),
    };
    let outcome = workload.run(alloc, &params);
    println!(
        "{}",
        report::line(workload, alloc, &params, &outcome, rss_base_kib)
    );
    Ok(report::checks_passed(workload, &outcome))
}

fn number<T: std::str::FromStr>(text: &str) -> Result<T, String> {
    text.parse().map_err(|_| format!("{text}: not a number"))
}

/// `CAP,BUNDLE,DRAIN[,RELEASE]` as knobs (`release_pages` the default's unless given).
fn knobs(text: &str) -> Result<Knobs, String> {
    let values = text
        .split(',')
        .map(|v| number::<u32>(v).ok().filter(|&n| n > 0))
        .collect::<Option<Vec<u32>>>();
    let (cache_capacity, bundle_width, drain_threshold, release_pages) = match values.as_deref() {
        Some(&[c, b, d]) => (c, b, d, Knobs::DEFAULT.release_pages),
        Some(&[c, b, d, r]) => (c, b, d, r),
        _ => {
            return Err(format!(
                "--knobs {text}: want positive numbers CAP,BUNDLE,DRAIN[,RELEASE]"
            ));
        }
    };
    Ok(Knobs {
        cache_capacity,
        bundle_width,
        drain_threshold,
        release_pages,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knobs_parse_with_and_without_release_pages() {
        let three = knobs("16,64,128").unwrap();
        assert_eq!(
            (
                three.cache_capacity,
                three.bundle_width,
                three.drain_threshold
            ),
            (16, 64, 128)
        );
        assert_eq!(three.release_pages, Knobs::DEFAULT.release_pages);
        assert_eq!(knobs("4,16,32,8").unwrap().release_pages, 8);
        for bad in ["", "1,2", "1,2,3,4,5", "0,32,256", "a,b,c"] {
            assert!(knobs(bad).is_err(), "{bad}");
        }
    }
}

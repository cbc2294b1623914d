//! The one line a run prints, and the process's resident-memory figures it carries.

use std::fmt::Write;

use crate::allocators::Alloc;
use crate::workloads::{Metric, Outcome, Params, Workload};

/// A field of `/proc/self/status` in KiB (`VmHWM`: peak resident set; `VmRSS`: current).
pub fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Whether the run's data checks passed: no damaged block, and no failed allocation except
/// where failing is the workload's end (`heap-efficiency`).
pub fn checks_passed(workload: Workload, outcome: &Outcome) -> bool {
    outcome.tally.corrupt == 0
        && (outcome.tally.failed == 0 || workload.metric() == Metric::Efficiency)
}

/// The result line: `RESULT` then `key=value` fields separated by spaces (no value has one).
pub fn line(
    workload: Workload,
    alloc: Alloc,
    params: &Params,
    outcome: &Outcome,
    rss_base_kib: u64,
) -> String {
    let t = &outcome.tally;
    let mut line = String::from("RESULT");
    let mut field = |key: &str, value: &dyn std::fmt::Display| {
        let _ = write!(line, " {key}={value}");
    };
    field("workload", &workload.name());
    field("alloc", &alloc.name());
    field("threads", &params.threads);
    if let Some(k) = alloc.knobs() {
        field(
            "knobs",
            &format_args!(
                "{},{},{},{}",
                k.cache_capacity, k.bundle_width, k.drain_threshold, k.release_pages
            ),
        );
    }
    field("quick", &u8::from(params.quick));
    field("metric", &workload.metric().name());
    field("value", &format_args!("{:.6e}", outcome.value()));
    field("ops", &t.ops);
    field(
        "secs",
        &format_args!("{:.4}", outcome.elapsed.as_secs_f64()),
    );
    field("rss_peak_kib", &status_kib("VmHWM"));
    field("rss_base_kib", &rss_base_kib);
    // The hosted acealloc's provider counts its system calls (it has no `mremap` to count).
    match (alloc, crate::allocators::provider_os_calls()) {
        (Alloc::Acealloc(_), Some(calls)) => {
            field("os_mmap", &calls.mmap);
            field("os_munmap", &calls.munmap);
            field("os_madvise", &calls.madvise);
            field("os_source", &"provider");
        }
        _ => field("os_source", &"-"),
    }
    if outcome.live_peak_exact {
        field("live_peak_bytes", &t.live_peak);
    } else {
        field("live_peak_bytes", &"-");
    }
    field("complete", &u8::from(outcome.complete));
    field("corrupt", &t.corrupt);
    field("failed", &t.failed);
    field("ok", &u8::from(checks_passed(workload, outcome)));
    field(
        "detail",
        &if outcome.detail.is_empty() {
            "-"
        } else {
            &outcome.detail
        },
    );
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_a_resident_set() {
        assert!(status_kib("VmHWM") > 0);
        assert!(status_kib("VmRSS") > 0);
        assert_eq!(status_kib("NoSuchField"), 0);
    }
}

//! acealloc's targets (issue 5), judged from one run's summaries.

use super::matrix::{Cell, REFERENCE};
use super::results::{Stat, Summary};

/// The kernel-style build whose fast path the instruction target is about.
const KERNEL_STYLE: &str = "acealloc-balanced-1cpu";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Met,
    NotMet,
    NotMeasured,
}

impl Verdict {
    pub fn text(self) -> &'static str {
        match self {
            Verdict::Met => "met",
            Verdict::NotMet => "**not met**",
            Verdict::NotMeasured => "not measured",
        }
    }
}

/// One target and where acealloc BALANCED stands.
pub struct Target {
    pub goal: String,
    pub verdict: Verdict,
    pub measured: String,
}

/// The summaries of one run, looked up by workload, threads and allocator.
struct Lookup<'a> {
    cells: &'a [Cell],
    summaries: &'a [Vec<Summary>],
}

impl Lookup<'_> {
    fn get(&self, workload: &str, threads: u32, alloc: &str) -> Option<&Summary> {
        let i = self
            .cells
            .iter()
            .position(|c| c.workload == workload && c.threads == threads)?;
        let j = self.cells[i].allocs.iter().position(|a| a == alloc)?;
        Some(&self.summaries[i][j])
    }
}

/// How BALANCED stands against `peer` in a throughput cell, as a target that wants BALANCED
/// at least `factor` times as fast.
fn faster_than(l: &Lookup, workload: &str, threads: u32, peer: &str, factor: f64) -> Target {
    let label = if threads == 1 {
        workload.to_string()
    } else {
        format!("{workload} ×{threads}")
    };
    let goal = if factor == 1.0 {
        format!("{label}: at least as fast as {peer}")
    } else {
        format!("{label}: at least {factor}× {peer}")
    };
    // The peer's paired ratio is peer / BALANCED; BALANCED / peer is its inverse.
    let Some(ratio) = l.get(workload, threads, peer).and_then(|s| s.ratio) else {
        return not_measured(goal);
    };
    let speedup = |r: f64| 1.0 / r;
    let (median, low, high) = (
        speedup(ratio.median),
        speedup(ratio.max),
        speedup(ratio.min),
    );
    let mut measured = format!("BALANCED = {median:.2}× {peer}");
    if ratio.n > 1 {
        measured += &format!(" (rounds {low:.2}–{high:.2})");
    }
    let cut_short = l
        .get(workload, threads, peer)
        .is_some_and(|s| s.incomplete > 0);
    if cut_short {
        measured += &format!("; {peer} hit the time limit (figure over the calls it made)");
    }
    let verdict = if median >= factor {
        Verdict::Met
    } else {
        Verdict::NotMet
    };
    if ratio.n > 1 && (low < factor) != (high < factor) {
        measured += "; within the run-to-run spread";
    }
    Target {
        goal,
        verdict,
        measured,
    }
}

fn not_measured(goal: String) -> Target {
    Target {
        goal,
        verdict: Verdict::NotMeasured,
        measured: "not in this run".into(),
    }
}

/// Every target, in the order.
pub fn judge(cells: &[Cell], summaries: &[Vec<Summary>]) -> Vec<Target> {
    let l = Lookup { cells, summaries };
    let mut targets = Vec::new();

    let goal = "fast-path: at most 20 instructions per warm 64 B alloc+free pair".to_string();
    targets.push(
        match l.get("fast-path", 1, KERNEL_STYLE).and_then(|s| s.value) {
            Some(Stat { median, .. }) => {
                let mut measured = format!("{median:.1} (kernel-style: exclusive CPU, no lock)");
                if let Some(hosted) = l.get("fast-path", 1, REFERENCE).and_then(|s| s.value) {
                    measured += &format!("; hosted BALANCED {:.1}", hosted.median);
                    if let Some(g) = l
                        .get("fast-path", 1, REFERENCE)
                        .and_then(|s| s.getcpu_per_pair)
                    {
                        measured +=
                            &format!(" ({g:.0} of them in sched_getcpu: valgrind has no rseq)");
                    }
                }
                let verdict = if median <= 20.0 {
                    Verdict::Met
                } else {
                    Verdict::NotMet
                };
                Target {
                    goal,
                    verdict,
                    measured,
                }
            }
            None => not_measured(goal),
        },
    );

    for workload in ["mixed-ws400", "random-actions"] {
        targets.push(faster_than(&l, workload, 1, "mimalloc", 1.0));
    }
    for cell in cells.iter().filter(|c| c.threads > 1) {
        for (peer, factor) in [("mimalloc", 1.0), ("talc", 5.0), ("linked-list", 20.0)] {
            targets.push(faster_than(&l, &cell.workload, cell.threads, peer, factor));
        }
    }

    let goal =
        "heap-efficiency: at least 92% of the region in use at the first failure".to_string();
    targets.push(
        match l.get("heap-efficiency", 1, REFERENCE).and_then(|s| s.value) {
            Some(Stat { median, .. }) => Target {
                goal,
                verdict: if median >= 0.92 {
                    Verdict::Met
                } else {
                    Verdict::NotMet
                },
                measured: format!("{:.1}%", median * 100.0),
            },
            None => not_measured(goal),
        },
    );

    let goal = "mixed-ws400: peak RSS no more than mimalloc's".to_string();
    let rss = |alloc| l.get("mixed-ws400", 1, alloc).and_then(|s| s.rss_kib);
    targets.push(match (rss(REFERENCE), rss("mimalloc")) {
        (Some(ace), Some(mi)) => Target {
            goal,
            verdict: if ace.median <= mi.median {
                Verdict::Met
            } else {
                Verdict::NotMet
            },
            measured: format!(
                "BALANCED {:.1} MiB, mimalloc {:.1} MiB (whole process, medians)",
                ace.median / 1024.0,
                mi.median / 1024.0
            ),
        },
        _ => not_measured(goal),
    });
    targets
}

#[cfg(test)]
mod tests {
    use super::super::matrix::Metric;
    use super::*;

    fn stat(median: f64, min: f64, max: f64) -> Option<Stat> {
        Some(Stat {
            median,
            min,
            max,
            n: 3,
        })
    }

    #[test]
    fn ratios_are_read_from_balanceds_side() {
        let cells = vec![Cell {
            workload: "larson".into(),
            threads: 2,
            metric: Metric::Throughput,
            allocs: vec![REFERENCE.into(), "mimalloc".into(), "talc".into()],
        }];
        let reference = Summary {
            ratio: stat(1.0, 1.0, 1.0),
            ..Summary::default()
        };
        // mimalloc at 0.5× BALANCED; talc at 0.25× BALANCED (BALANCED only 4× talc).
        let mimalloc = Summary {
            ratio: stat(0.5, 0.45, 0.55),
            ..Summary::default()
        };
        let talc = Summary {
            ratio: stat(0.25, 0.19, 0.26),
            ..Summary::default()
        };
        let summaries = vec![vec![reference, mimalloc, talc]];
        let targets = judge(&cells, &summaries);
        let find = |goal: &str| targets.iter().find(|t| t.goal.starts_with(goal)).unwrap();
        let vs_mimalloc = find("larson ×2: at least as fast as mimalloc");
        assert_eq!(vs_mimalloc.verdict, Verdict::Met);
        assert!(
            vs_mimalloc
                .measured
                .starts_with("BALANCED = 2.00× mimalloc")
        );
        let vs_talc = find("larson ×2: at least 5× talc");
        assert_eq!(vs_talc.verdict, Verdict::NotMet);
        assert!(vs_talc.measured.contains("within the run-to-run spread"));
        assert_eq!(
            find("larson ×2: at least 20×").verdict,
            Verdict::NotMeasured
        );
        assert_eq!(find("mixed-ws400: at least").verdict, Verdict::NotMeasured);
        assert_eq!(find("fast-path").verdict, Verdict::NotMeasured);
    }
}

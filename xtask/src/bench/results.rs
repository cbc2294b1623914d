//! The runs' records, their statistics, and the CSV file that keeps every run.

use std::fmt::Write;

use super::matrix::{Cell, Metric, REFERENCE};
use super::runner::Outcome;

/// One process's result, or why it gave none.
pub struct Record {
    pub cell: usize,
    pub alloc: String,
    pub round: u32,
    pub result: Result<Outcome, String>,
}

/// Median and range of some runs' figures.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stat {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub n: usize,
}

impl Stat {
    pub fn of(mut values: Vec<f64>) -> Option<Stat> {
        values.retain(|v| v.is_finite());
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        let n = values.len();
        let median = if n % 2 == 1 {
            values[n / 2]
        } else {
            (values[n / 2 - 1] + values[n / 2]) / 2.0
        };
        Some(Stat {
            median,
            min: values[0],
            max: values[n - 1],
            n,
        })
    }

    /// Half the range as a fraction of the median (0 for one run).
    pub fn spread(&self) -> f64 {
        if self.median == 0.0 {
            0.0
        } else {
            (self.max - self.min) / 2.0 / self.median.abs()
        }
    }
}

/// What the runs of one allocator in one cell add up to.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Runs that reported nothing (crashed, killed).
    pub errors: Vec<String>,
    /// Runs whose data checks failed.
    pub bad_checks: usize,
    /// Runs the time limit cut short.
    pub incomplete: usize,
    pub value: Option<Stat>,
    pub rss_kib: Option<Stat>,
    /// Resident set sampled every 10 ms over the run, averaged.
    pub rss_avg_kib: Option<Stat>,
    /// `mmap`, `munmap`, `madvise` and `mremap` calls together, where counted.
    pub os_calls: Option<Stat>,
    /// Per round: this allocator's figure over the reference's in the same round.
    pub ratio: Option<Stat>,
    /// Per round: this allocator's peak RSS over the reference's.
    pub rss_ratio: Option<Stat>,
    pub getcpu_per_pair: Option<f64>,
    /// The first good run's `detail` field.
    pub detail: Option<String>,
}

/// Summaries indexed like the cells and their allocators.
pub fn summarize(cells: &[Cell], records: &[Record]) -> Vec<Vec<Summary>> {
    cells
        .iter()
        .enumerate()
        .map(|(i, cell)| {
            let of = |alloc: &str| -> Vec<&Record> {
                records
                    .iter()
                    .filter(|r| r.cell == i && r.alloc == alloc)
                    .collect()
            };
            let reference = of(REFERENCE);
            cell.allocs
                .iter()
                .map(|alloc| summary(&of(alloc), &reference))
                .collect()
        })
        .collect()
}

fn summary(runs: &[&Record], reference: &[&Record]) -> Summary {
    let good: Vec<(u32, &Outcome)> = runs
        .iter()
        .filter_map(|r| Some((r.round, r.result.as_ref().ok()?)))
        .collect();
    let paired = |figure: fn(&Outcome) -> f64| -> Option<Stat> {
        let ratios = good
            .iter()
            .filter_map(|(round, o)| {
                let base = reference
                    .iter()
                    .find(|r| r.round == *round)?
                    .result
                    .as_ref()
                    .ok()?;
                Some(figure(o) / figure(base))
            })
            .collect();
        Stat::of(ratios)
    };
    Summary {
        errors: runs
            .iter()
            .filter_map(|r| r.result.as_ref().err().cloned())
            .collect(),
        bad_checks: good.iter().filter(|(_, o)| !o.ok).count(),
        incomplete: good.iter().filter(|(_, o)| !o.complete).count(),
        value: Stat::of(good.iter().map(|(_, o)| o.value).collect()),
        rss_kib: Stat::of(good.iter().map(|(_, o)| o.rss_peak_kib as f64).collect()),
        rss_avg_kib: Stat::of(
            good.iter()
                .filter_map(|(_, o)| o.field("rss_avg_kib")?.parse().ok())
                .collect(),
        ),
        os_calls: Stat::of(good.iter().filter_map(|(_, o)| os_calls(o)).collect()),

        ratio: paired(|o| o.value),
        rss_ratio: paired(|o| o.rss_peak_kib as f64),
        getcpu_per_pair: good.iter().find_map(|(_, o)| o.getcpu_per_pair),
        detail: good
            .first()
            .and_then(|(_, o)| o.field("detail"))
            .map(str::to_string),
    }
}

/// The run's memory system calls together (`os_*` fields), if anyone counted them.
fn os_calls(o: &Outcome) -> Option<f64> {
    let counts: Vec<f64> = super::runner::OS_CALLS
        .iter()
        .filter_map(|call| o.field(&format!("os_{call}"))?.parse().ok())
        .collect();
    (!counts.is_empty()).then(|| counts.iter().sum())
}

/// Every run as a CSV row.
pub fn csv(cells: &[Cell], records: &[Record]) -> String {
    const FIELDS: [&str; 14] = [
        "ops",
        "secs",
        "rss_avg_kib",
        "os_mmap",
        "os_munmap",
        "os_madvise",
        "os_mremap",
        "os_source",
        "rss_base_kib",
        "live_peak_bytes",
        "corrupt",
        "failed",
        "detail",
        "quick",
    ];
    let mut out = String::from(
        "workload,threads,metric,alloc,round,value,rss_peak_kib,complete,checks_ok,\
         getcpu_per_pair,error",
    );
    for field in FIELDS {
        let _ = write!(out, ",{field}");
    }
    out.push('\n');
    for record in records {
        let cell = &cells[record.cell];
        let metric = match cell.metric {
            Metric::Throughput => "calls_per_sec",
            Metric::Efficiency => "fraction_in_use",
            Metric::PairCost => "instructions_per_pair",
        };
        let _ = write!(
            out,
            "{},{},{metric},{},{}",
            cell.workload, cell.threads, record.alloc, record.round
        );
        match &record.result {
            Ok(o) => {
                let getcpu = o.getcpu_per_pair.map_or(String::new(), |g| g.to_string());
                let _ = write!(
                    out,
                    ",{},{},{},{},{getcpu},",
                    o.value,
                    o.rss_peak_kib,
                    u8::from(o.complete),
                    u8::from(o.ok)
                );
                for field in FIELDS {
                    let _ = write!(out, ",{}", quoted(o.field(field).unwrap_or("")));
                }
            }
            Err(error) => {
                let _ = write!(out, ",,,,0,,{}", quoted(error));
                out.push_str(&",".repeat(FIELDS.len()));
            }
        }
        out.push('\n');
    }
    out
}

/// A CSV field, quoted when it needs to be.
pub fn quoted(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(value: f64, rss: u64) -> Outcome {
        Outcome {
            value,
            rss_peak_kib: rss,
            complete: true,
            ok: true,
            getcpu_per_pair: None,
            fields: vec![("detail".into(), "a,b".into())],
        }
    }

    fn record(alloc: &str, round: u32, value: f64) -> Record {
        Record {
            cell: 0,
            alloc: alloc.into(),
            round,
            result: Ok(outcome(value, 100 * round as u64 + 100)),
        }
    }

    #[test]
    fn medians_and_spreads() {
        let s = Stat::of(vec![3.0, 1.0, 2.0, f64::NAN]).unwrap();
        assert_eq!((s.median, s.min, s.max, s.n), (2.0, 1.0, 3.0, 3));
        assert_eq!(s.spread(), 0.5);
        assert_eq!(Stat::of(vec![1.0, 2.0]).unwrap().median, 1.5);
        assert_eq!(Stat::of(vec![]), None);
    }

    #[test]
    fn average_rss_and_os_calls_are_summarised_where_reported() {
        let cells = vec![Cell {
            workload: "w".into(),
            threads: 1,
            metric: Metric::Throughput,
            allocs: vec![REFERENCE.into(), "x".into()],
        }];
        let with = |alloc: &str, round: u32, extra: &[(&str, &str)]| {
            let mut r = record(alloc, round, 1.0);
            if let Ok(o) = &mut r.result {
                o.fields
                    .extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
            }
            r
        };
        let counted = [
            ("os_mmap", "2"),
            ("os_madvise", "10"),
            ("os_source", "provider"),
        ];
        let records = vec![
            with(
                REFERENCE,
                0,
                &[&counted[..], &[("rss_avg_kib", "300")]].concat(),
            ),
            with(
                REFERENCE,
                1,
                &[
                    ("os_mmap", "4"),
                    ("os_madvise", "20"),
                    ("rss_avg_kib", "500"),
                ],
            ),
            with("x", 0, &[("os_source", "-")]),
        ];
        let s = &summarize(&cells, &records)[0];
        assert_eq!(s[0].os_calls.unwrap().median, 18.0);
        assert_eq!(s[0].rss_avg_kib.unwrap().median, 400.0);
        assert_eq!((s[1].os_calls, s[1].rss_avg_kib), (None, None));
    }

    #[test]
    fn ratios_pair_runs_of_the_same_round() {
        let cells = vec![Cell {
            workload: "w".into(),
            threads: 1,
            metric: Metric::Throughput,
            allocs: vec![REFERENCE.into(), "x".into()],
        }];
        let records = vec![
            record(REFERENCE, 0, 10.0),
            record("x", 0, 20.0),
            record(REFERENCE, 1, 100.0),
            record("x", 1, 100.0),
            Record {
                cell: 0,
                alloc: "x".into(),
                round: 2,
                result: Err("killed".into()),
            },
        ];
        let s = &summarize(&cells, &records)[0];
        assert_eq!(s[0].ratio.unwrap().median, 1.0);
        let x = &s[1];
        assert_eq!((x.ratio.unwrap().min, x.ratio.unwrap().max), (1.0, 2.0));
        assert_eq!(x.errors, ["killed"]);
        let csv = csv(&cells, &records);
        assert_eq!(csv.lines().count(), 6);
        assert!(csv.contains(",\"a,b\","));
        assert!(csv.lines().all(|l| l.matches(',').count() >= 24));
    }
}

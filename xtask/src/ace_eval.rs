//! `cargo xtask ace-eval`: ACE's A/B/oracle evidence (issues 6 and 13). For each of five steady
//! workloads it sets ACE (acealloc BALANCED with the adaptive control engine) against BALANCED
//! with its default knobs (ACE off) and against the best static knobs a grid search finds (the
//! oracle). For each phased workload (busy and quiet spells, or changing size mixes: where no
//! static setting is right) the final also runs the static profiles FAST and LEAN, and every run
//! reports its throughput over busy time and its time-averaged resident set (sampled from
//! `/proc/PID/statm` every 10 ms while it runs): the target is FAST's speed at LEAN's memory.
//!
//! Two stages per workload (`docs/bench/ace-eval.md` says why):
//! 1. screening (`grid.rs`): short runs of static knob settings, by coordinate descent from the
//!    defaults over ACE's own candidate ladders (or the whole grid with `--full-grid`), each
//!    sweep's settings side by side in interleaved rounds;
//! 2. the final: ACE off, ACE on and the screening's best settings (the finalists), full
//!    length, in interleaved rounds (the order rotates each round); every ratio is taken
//!    within a round. The oracle is whichever of the defaults and the finalists has the best
//!    median ratio to ACE off.
//!
//! Every run is one `acealloc-bench run … --secs S [--knobs C,B,D]` process (ACE's runs also
//! print what ACE did). Writes `bench-results/ace-eval/<date>/results.csv` (every run) and
//! `results.md` (`report.rs`). `--quick` runs a tiny grid briefly and fails only when a run
//! fails or its data checks do: it measures nothing.

mod grid;
mod report;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::bench::{self, Outcome, Stat};
use grid::Setting;

/// The workloads and their thread counts, in report order.
const WORKLOADS: [(&str, u32); 5] = [
    ("fragmentation", 1),
    ("large-ws", 1),
    ("realloc", 1),
    ("mixed-ws400", 1),
    ("producer-consumer", 2),
];

/// The phased workloads (`bench/src/workloads/spells.rs`), in report order.
const PHASED: [(&str, u32); 4] = [
    ("bursts", 1),
    ("phased-mix", 1),
    ("pipeline", 2),
    ("netbuf", 2),
];

/// The static profiles every phased workload's final also runs.
const PROFILES: [&str; 2] = ["acealloc-fast", "acealloc-lean"];

/// BALANCED: ACE off with the knobs given (the defaults unless `--knobs`), and ACE on.
const OFF: &str = "acealloc-balanced";
const ON: &str = "acealloc-balanced-ace";

/// Options of `cargo xtask ace-eval`.
#[derive(Clone, Debug, PartialEq)]
struct Options {
    quick: bool,
    workloads: Vec<String>,
    /// Rounds of the final.
    repeats: u32,
    /// Length of a final run, s.
    secs: f64,
    /// Length of a screening run, s, and rounds per screening sweep.
    screen_secs: f64,
    screen_repeats: u32,
    /// Settings taken from the screening into the final (besides the defaults).
    finalists: usize,
    full_grid: bool,
}

impl Options {
    fn parse(args: &[String]) -> Result<Options, String> {
        let quick = args.iter().any(|a| a == "--quick");
        let mut o = if quick {
            Options {
                quick,
                workloads: Vec::new(),
                repeats: 1,
                secs: 0.5,
                screen_secs: 0.3,
                screen_repeats: 1,
                finalists: 1,
                full_grid: false,
            }
        } else {
            Options {
                quick,
                workloads: Vec::new(),
                repeats: 7,
                secs: 5.0,
                screen_secs: 1.5,
                screen_repeats: 2,
                finalists: 2,
                full_grid: false,
            }
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let mut value = |flag: &str| args.next().ok_or(format!("{flag} needs a value"));
            let positive = |flag: &str, v: &String| -> Result<f64, String> {
                v.parse::<f64>()
                    .ok()
                    .filter(|&n| n > 0.0 && n.is_finite())
                    .ok_or(format!("{flag} {v}: not a positive number"))
            };
            match arg.as_str() {
                "--quick" => {}
                "--full-grid" => o.full_grid = true,
                "--workloads" => {
                    let v = value("--workloads")?;
                    o.workloads = v.split(',').map(str::to_string).collect();
                }
                "--repeats" => o.repeats = positive("--repeats", value("--repeats")?)? as u32,
                "--secs" => o.secs = positive("--secs", value("--secs")?)?,
                "--screen-secs" => {
                    o.screen_secs = positive("--screen-secs", value("--screen-secs")?)?
                }
                "--screen-repeats" => {
                    o.screen_repeats =
                        positive("--screen-repeats", value("--screen-repeats")?)? as u32
                }
                "--finalists" => {
                    o.finalists = positive("--finalists", value("--finalists")?)? as usize
                }
                other => {
                    return Err(format!(
                        "unknown ace-eval option {other} (see cargo xtask help)"
                    ));
                }
            }
        }
        for name in &o.workloads {
            if !WORKLOADS.iter().chain(&PHASED).any(|(w, _)| w == name) {
                return Err(format!("unknown ace-eval workload {name}"));
            }
        }
        if o.repeats == 0 || o.screen_repeats == 0 || o.finalists == 0 {
            return Err("--repeats, --screen-repeats and --finalists need at least 1".into());
        }
        Ok(o)
    }

    /// The workloads to run, in report order, and whether each is phased.
    fn workloads(&self) -> Vec<(&'static str, u32, bool)> {
        let steady = WORKLOADS.into_iter().map(|(w, t)| (w, t, false));
        let phased = PHASED.into_iter().map(|(w, t)| (w, t, true));
        steady
            .chain(phased)
            .filter(|(w, ..)| self.workloads.is_empty() || self.workloads.iter().any(|n| n == w))
            .collect()
    }
}

/// What one run measures: BALANCED with ACE off and given knobs, ACE on (from the defaults),
/// or another static profile (the bench's allocator name) with its defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arm {
    Static(Setting),
    Ace,
    Profile(&'static str),
}

impl Arm {
    /// `64,32,256,1`, `ACE`, or `FAST`.
    pub fn label(self) -> String {
        match self {
            Arm::Static(s) => s.label(),
            Arm::Ace => "ACE".into(),
            Arm::Profile(name) => name.trim_start_matches("acealloc-").to_uppercase(),
        }
    }
}

/// Which stage a run belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Screening sweep `n` (from 0).
    Screen(usize),
    Final,
}

/// One run's record.
pub struct Record {
    pub workload: &'static str,
    pub threads: u32,
    pub stage: Stage,
    pub arm: Arm,
    pub round: u32,
    pub secs: f64,
    pub result: Result<Outcome, String>,
    /// The `ACE …` line's fields (ACE runs only).
    pub ace: Vec<(String, String)>,
    /// The run's resident set, KiB, averaged over its 10 ms samples.
    pub rss_avg_kib: Option<f64>,
}

impl Record {
    pub fn ace_field(&self, key: &str) -> Option<&str> {
        bench::field(&self.ace, key)
    }

    /// The throughput of a good run (complete, checks passed).
    pub fn value(&self) -> Option<f64> {
        self.result
            .as_ref()
            .ok()
            .filter(|o| o.ok && o.complete)
            .map(|o| o.value)
    }
}

/// Runs the bench binary for one workload and keeps every record.
struct Session<'a> {
    bench: &'a Path,
    quick: bool,
    workload: &'static str,
    threads: u32,
    records: Vec<Record>,
    bar: &'a indicatif::ProgressBar,
}

impl Session<'_> {
    /// One process: `arm` for `secs`; its record is kept and returned.
    fn run(&mut self, stage: Stage, arm: Arm, round: u32, secs: f64) -> &Record {
        let mut command = Command::new(self.bench);
        command.args(["run", self.workload]);
        match arm {
            Arm::Static(s) => command.args([OFF, "--knobs", &s.label()]),
            Arm::Ace => command.arg(ON),
            Arm::Profile(name) => command.arg(name),
        };
        command.args(["--threads", &self.threads.to_string()]);
        command.args(["--secs", &secs.to_string()]);
        command.args(["--time-limit", &(secs + 60.0).to_string()]);
        if self.quick {
            command.arg("--quick");
        }
        let started = Instant::now();
        let (stdout, rss_avg_kib) =
            bench::run_sampled(&mut command, Duration::from_secs_f64(secs + 120.0));
        let result = stdout
            .as_deref()
            .map_err(Clone::clone)
            .and_then(bench::parse_result);
        let ace = stdout
            .as_deref()
            .ok()
            .and_then(|out| out.lines().find_map(|l| l.strip_prefix("ACE ")))
            .map_or(Vec::new(), bench::parse_fields);
        let what = format!(
            "{} {} ({}, round {})",
            self.workload,
            arm.label(),
            match stage {
                Stage::Screen(n) => format!("screening sweep {}", n + 1),
                Stage::Final => "final".into(),
            },
            round + 1
        );
        let mut line = bench::run_line(&what, &result, started);
        if let Some(knobs) = bench::field(&ace, "knobs") {
            line += &format!(", ACE left knobs {knobs}");
        }
        bench::say(self.bar, &line);
        self.bar.inc(1);
        self.records.push(Record {
            workload: self.workload,
            threads: self.threads,
            stage,
            arm,
            round,
            secs,
            result,
            ace,
            rss_avg_kib,
        });
        self.records.last().expect("just pushed")
    }
}

/// Runs the evaluation; true when every run reported and passed its data checks.
pub fn run(root: &Path, args: &[String]) -> Result<bool, String> {
    let options = Options::parse(args)?;
    let bench = bench::build(root, false)?;
    let (date, time) = bench::now_utc();
    let dir = bench::results_dir(&root.join("bench-results/ace-eval"), &date, options.quick)?;
    let load_start = bench::load_average();
    let started = Instant::now();
    let workloads = options.workloads();
    let ladders = grid::Ladders::new(options.quick, options.full_grid);
    let screening_runs = ladders.screening_runs_at_most() * options.screen_repeats as usize;
    let runs: usize = workloads
        .iter()
        .map(|&(.., is_phased)| {
            let arms = options.finalists + 2 + if is_phased { PROFILES.len() } else { 0 };
            screening_runs + arms * options.repeats as usize
        })
        .sum();
    let bar = bench::progress_bar(runs as u64);

    let mut records = Vec::new();
    let mut summaries = Vec::new();
    let mut phased = Vec::new();
    for (workload, threads, is_phased) in workloads {
        let mut session = Session {
            bench: &bench,
            quick: options.quick,
            workload,
            threads,
            records: Vec::new(),
            bar: &bar,
        };
        let screened = ladders.screen(&mut session, options.screen_repeats, options.screen_secs);
        let finalists = grid::finalists(&screened, options.finalists);
        let mut arms = vec![Arm::Static(Setting::DEFAULT), Arm::Ace];
        arms.extend(finalists.iter().map(|&s| Arm::Static(s)));
        if is_phased {
            arms.extend(PROFILES.map(Arm::Profile));
        }
        // The descent may stop early: drop the screening runs it did not need from the bar.
        let skipped = screening_runs.saturating_sub(session.records.len());
        bar.set_length(bar.length().unwrap_or(0).saturating_sub(skipped as u64));
        for (round, arm) in grid::interleave(&arms, options.repeats) {
            session.run(Stage::Final, arm, round, options.secs);
        }
        if is_phased {
            phased.push(report::summarize_phased(
                workload,
                threads,
                &session.records,
            ));
        } else {
            summaries.push(report::summarize(
                workload,
                threads,
                &session.records,
                &screened,
            ));
        }
        records.append(&mut session.records);
    }
    bar.finish_and_clear();

    let context = report::Context {
        provenance: bench::Provenance::ended(root, date, time, started, &load_start),
        options: format!("{options:?}"),
        quick: options.quick,
    };
    bench::write(&dir, "results.csv", &report::csv(&records))?;
    bench::write(
        &dir,
        "results.md",
        &report::markdown(&context, &summaries, &phased),
    )?;
    if !summaries.is_empty() {
        println!("\n{}", report::table(&summaries));
    }
    if !phased.is_empty() {
        println!("\n{}", report::phased_table(&phased));
    }
    println!("wrote {}/results.csv and results.md", dir.display());

    let failures: Vec<String> = records
        .iter()
        .filter_map(|r| {
            let what = format!("{} {}", r.workload, r.arm.label());
            match &r.result {
                Ok(o) if !o.ok => Some(format!("{what}: data checks failed")),
                Ok(o) if !o.complete => Some(format!("{what}: did not run to its end")),
                Ok(_) => None,
                Err(e) => Some(format!("{what}: {e}")),
            }
        })
        .collect();
    for failure in &failures {
        println!("FAIL {failure}");
    }
    println!("{} runs, {} failed", records.len(), failures.len());
    Ok(failures.is_empty())
}

/// Median and range of the values, `None` when there are none.
fn stat(values: impl IntoIterator<Item = f64>) -> Option<Stat> {
    Stat::of(values.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn options_parse() {
        let o = Options::parse(&args("--repeats 3 --secs 8 --workloads realloc,large-ws")).unwrap();
        assert_eq!((o.repeats, o.secs, o.quick), (3, 8.0, false));
        assert_eq!(
            o.workloads().iter().map(|w| w.0).collect::<Vec<_>>(),
            ["large-ws", "realloc"]
        );
        let q = Options::parse(&args("--quick")).unwrap();
        assert!(q.quick && q.secs < 1.0 && q.repeats == 1);
        assert_eq!(q.workloads().len(), 9);
        assert_eq!(q.workloads()[4], ("producer-consumer", 2, false));
        assert_eq!(q.workloads()[5], ("bursts", 1, true));
        for bad in [
            "--repeats 0",
            "--secs",
            "--workloads larson",
            "--bogus",
            "--secs -1",
        ] {
            assert!(Options::parse(&args(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn ace_lines_parse() {
        let f = bench::parse_fields("enabled=1 off_reason=- decisions=11 knobs=32,32,32");
        assert_eq!(f.len(), 4);
        assert_eq!(f[3], ("knobs".into(), "32,32,32".into()));
    }
}

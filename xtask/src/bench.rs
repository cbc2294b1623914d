//! `cargo xtask bench`: acealloc against the allocators people would pick instead (issue 5).
//!
//! Builds `acealloc-bench` (the `bench/` crate) in release, asks it for the matrix of
//! (workload, threads) cells, and runs every (allocator, cell) as its own process, so that each
//! run's peak RSS is its own: cell by cell, round by round, every allocator once per round
//! (`matrix.rs`). Throughput figures are compared with acealloc BALANCED's of the same round.
//! The fast path's instructions are counted under callgrind (`runner.rs`). Everything goes to
//! `bench-results/<date>/` (`<date>-quick/` for quick runs): `results.csv` (every run),
//! `results.md` (tables, targets: `report.rs`, `targets.rs`) and the plots (`plot.rs`).
//!
//! Beside each run's figure and peak RSS, the runner samples its resident set every 10 ms
//! (time-averaged RSS), and the hosted acealloc's provider reports the system calls it made;
//! `--strace` runs every process under `strace -f -c` instead, counting every allocator's
//! `mmap`, `munmap`, `madvise` and `mremap` calls (tracing slows the runs: take the figures of
//! such a run for its OS calls only).
//!
//! `--quick` runs every workload briefly, without jemalloc (whose C build takes a minute), and
//! fails if any run's data checks failed or any run reported nothing: CI's smoke test. It asserts
//! nothing about speed.

mod matrix;
mod report;
mod results;
mod runner;
mod targets;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

use crate::plot;
use crate::toolchain::cargo;
use matrix::Run;
pub use matrix::{Cell, Metric};
pub use report::{Provenance, load_average, now_utc, sig3};
use results::Record;
pub use results::{Stat, Summary, quoted};
use runner::Runner;
pub use runner::{Outcome, field, parse_fields, parse_result, run_sampled};

/// Options of `cargo xtask bench`.
struct Options {
    quick: bool,
    workloads: Vec<String>,
    allocs: Vec<String>,
    repeats: u32,
    strace: bool,
}

impl Options {
    fn parse(args: &[String]) -> Result<Options, String> {
        let mut options = Options {
            quick: false,
            workloads: Vec::new(),
            allocs: Vec::new(),
            repeats: 0,
            strace: false,
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let mut value = |flag: &str| args.next().ok_or(format!("{flag} needs a value"));
            let list = |v: &String| v.split(',').map(str::to_string).collect::<Vec<_>>();
            match arg.as_str() {
                "--quick" => options.quick = true,
                "--strace" => options.strace = true,
                "--workloads" => options.workloads = list(value("--workloads")?),
                "--allocs" => options.allocs = list(value("--allocs")?),
                "--repeats" => {
                    let v = value("--repeats")?;
                    options.repeats = v
                        .parse()
                        .ok()
                        .filter(|&n| n > 0)
                        .ok_or(format!("--repeats {v}: not a positive number"))?;
                }
                other => {
                    return Err(format!(
                        "unknown bench option {other} (see cargo xtask help)"
                    ));
                }
            }
        }
        if options.repeats == 0 {
            options.repeats = if options.quick { 1 } else { 3 };
        }
        Ok(options)
    }

    /// The bench binary's time limit per run, in seconds.
    fn time_limit_secs(&self) -> u64 {
        if self.quick { 3 } else { 15 }
    }
}

/// Runs the benchmark; true when every run reported and passed its data checks.
pub fn run(root: &Path, args: &[String]) -> Result<bool, String> {
    let options = Options::parse(args)?;
    let jemalloc = !options.quick;
    let bench = build(root, jemalloc)?;
    let mut cells = matrix::list(&bench)?;
    matrix::select(&mut cells, &options.workloads, &options.allocs)?;
    if !runner::valgrind_available() && cells.iter().any(|c| c.metric == Metric::PairCost) {
        println!(
            "xtask: valgrind is not installed: fast-path (counted under callgrind) is left out"
        );
        cells.retain(|c| c.metric != Metric::PairCost);
    }

    let (date, time) = report::now_utc();
    let dir = results_dir(&root.join("bench-results"), &date, options.quick)?;
    let load_start = report::load_average();
    let started = Instant::now();
    let mut runner = Runner::new(
        bench,
        options.quick,
        options.time_limit_secs(),
        dir.join("callgrind"),
    );
    if options.strace {
        runner.strace_dir = Some(dir.join("strace"));
    }
    let records = execute(&cells, &matrix::plan(&cells, options.repeats), &mut runner);

    let summaries = results::summarize(&cells, &records);
    let targets = targets::judge(&cells, &summaries);
    let context = report::Context {
        provenance: Provenance::ended(root, date, time, started, &load_start),
        quick: options.quick,
        repeats: options.repeats,
        jemalloc,
        time_limit_secs: options.time_limit_secs(),
        strace: options.strace,
    };
    let markdown = report::markdown(
        &context,
        &report::peer_versions(root),
        &cells,
        &summaries,
        &targets,
    );
    write(&dir, "results.csv", &results::csv(&cells, &records))?;
    write(&dir, "results.md", &markdown)?;
    let plots = plot::charts(&dir, &cells, &summaries)?;

    let failures: Vec<String> = records
        .iter()
        .filter_map(|r| {
            let label = || format!("{} {}", cells[r.cell].label(), r.alloc);
            match &r.result {
                Ok(o) if !o.ok => Some(format!("{}: data checks failed", label())),
                Ok(_) => None,
                Err(e) => Some(format!("{}: {e}", label())),
            }
        })
        .collect();
    println!("\nTargets (acealloc BALANCED):");
    for t in &targets {
        println!(
            "  {:<12} {}: {}",
            t.verdict.text().replace('*', ""),
            t.goal,
            t.measured
        );
    }
    println!("\nwrote {}", dir.display());
    for file in ["results.csv", "results.md"] {
        println!("  {file}");
    }
    for plot in plots {
        println!(
            "  {}",
            plot.file_name().unwrap_or_default().to_string_lossy()
        );
    }
    for failure in &failures {
        println!("FAIL {failure}");
    }
    println!("{} runs, {} failed", records.len(), failures.len());
    Ok(failures.is_empty())
}

/// `cargo build --release -p acealloc-bench`, with jemalloc when asked; the binary's path, as
/// cargo reports it (wherever the target directory is).
pub fn build(root: &Path, jemalloc: bool) -> Result<PathBuf, String> {
    let mut command = cargo(root);
    command.args([
        "build",
        "--release",
        "-p",
        "acealloc-bench",
        "--message-format=json-render-diagnostics",
    ]);
    if jemalloc {
        command.args(["--features", "jemalloc"]);
    }
    println!(
        "xtask: building acealloc-bench{}",
        if jemalloc { " (with jemalloc)" } else { "" }
    );
    let output = command
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "building acealloc-bench failed ({})",
            output.status
        ));
    }
    executable(&String::from_utf8_lossy(&output.stdout))
        .ok_or("cargo named no acealloc-bench executable".into())
}

/// The `executable` of the acealloc-bench artifact in cargo's JSON messages.
fn executable(messages: &str) -> Option<PathBuf> {
    messages
        .lines()
        .filter(|line| line.contains(r#""reason":"compiler-artifact""#))
        .filter(|line| line.contains(r#""name":"acealloc-bench""#))
        .find_map(|line| {
            let rest = line.split(r#""executable":""#).nth(1)?;
            Some(PathBuf::from(rest.split('"').next()?))
        })
}

/// Runs the plan with a progress bar (plain lines when not on a terminal). A cell's allocator
/// whose run hit the time limit or failed is not run again in later rounds.
fn execute(cells: &[Cell], plan: &[Run], runner: &mut Runner) -> Vec<Record> {
    let bar = progress_bar(plan.len() as u64);
    let mut records: Vec<Record> = Vec::new();
    for run in plan {
        let cell = &cells[run.cell];
        let settled = records.iter().any(|r| {
            r.cell == run.cell
                && r.alloc == run.alloc
                && r.result.as_ref().map_or(true, |o| !o.complete || !o.ok)
        });
        if settled {
            bar.set_length(bar.length().unwrap_or(0).saturating_sub(1));
            continue;
        }
        let what = format!("{} {} (round {})", cell.label(), run.alloc, run.round + 1);
        bar.set_message(what.clone());
        let started = Instant::now();
        let result = runner.run(cell, &run.alloc);
        say(&bar, &run_line(&what, &result, started));
        bar.inc(1);
        records.push(Record {
            cell: run.cell,
            alloc: run.alloc.clone(),
            round: run.round,
            result,
        });
    }
    bar.finish_and_clear();
    records
}

/// One run's directory under `base`, created: `<date>`, or `<date>-quick` for a quick run.
pub fn results_dir(base: &Path, date: &str, quick: bool) -> Result<PathBuf, String> {
    let dir = base.join(if quick {
        format!("{date}-quick")
    } else {
        date.to_string()
    });
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    Ok(dir)
}

/// Writes `text` into `dir/file`.
pub fn write(dir: &Path, file: &str, text: &str) -> Result<(), String> {
    let path = dir.join(file);
    std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// A progress bar over `len` runs on a terminal, hidden otherwise (then [`say`] prints plain
/// lines).
pub fn progress_bar(len: u64) -> ProgressBar {
    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::new(len)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30.cyan/blue}] {pos}/{len} runs (eta {eta}) {msg}",
        )
        .expect("a valid progress template")
        .progress_chars("=> "),
    );
    bar
}

/// Prints `line` above the progress bar, or plainly when the bar is hidden.
pub fn say(bar: &ProgressBar, line: &str) {
    if bar.is_hidden() {
        println!("{line}");
    } else {
        bar.println(line);
    }
}

/// The line that reports one run: its figure, peak RSS, troubles and how long it took.
pub fn run_line(what: &str, result: &Result<Outcome, String>, started: Instant) -> String {
    match result {
        Ok(o) => format!(
            "{what}: {}, peak RSS {} MiB{}{} ({:.1} s)",
            sig3(o.value),
            sig3(o.rss_peak_kib as f64 / 1024.0),
            if o.complete { "" } else { ", time limit hit" },
            if o.ok { "" } else { ", DATA CHECKS FAILED" },
            started.elapsed().as_secs_f64()
        ),
        Err(e) => format!("{what}: no result: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn the_executable_is_read_from_cargos_messages() {
        let messages = concat!(
            r#"{"reason":"compiler-artifact","target":{"name":"libc"},"executable":null}"#,
            "\n",
            r#"{"reason":"compiler-artifact","target":{"kind":["bin"],"name":"acealloc-bench"},"#,
            r#""executable":"/t/release/acealloc-bench","fresh":true}"#,
            "\n",
            r#"{"reason":"build-finished","success":true}"#
        );
        assert_eq!(
            executable(messages),
            Some(PathBuf::from("/t/release/acealloc-bench"))
        );
        assert_eq!(executable("{}"), None);
    }

    #[test]
    fn options_parse() {
        let o = Options::parse(&args("--quick --workloads larson,realloc --allocs talc")).unwrap();
        assert!(o.quick);
        assert_eq!(o.workloads, ["larson", "realloc"]);
        assert_eq!(o.allocs, ["talc"]);
        assert_eq!(o.repeats, 1);
        assert_eq!(Options::parse(&[]).unwrap().repeats, 3);
        assert_eq!(Options::parse(&args("--repeats 5")).unwrap().repeats, 5);
        assert!(Options::parse(&args("--repeats 0")).is_err());
        assert!(Options::parse(&args("--allocs")).is_err());
        assert!(Options::parse(&args("--bogus")).is_err());
    }
}

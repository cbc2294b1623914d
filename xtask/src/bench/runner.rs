//! Running one (allocator, workload) process and reading its result line; counting the fast
//! path's instructions under callgrind.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::matrix::{Cell, Metric};
use crate::child;

/// What one run reported.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The figure: calls per second, efficiency, or instructions per pair.
    pub value: f64,
    pub rss_peak_kib: u64,
    /// False when the run's time limit cut its planned operations short.
    pub complete: bool,
    /// Whether the run's data checks passed.
    pub ok: bool,
    /// For the fast path: instructions per pair spent in `sched_getcpu` (valgrind has no rseq,
    /// so the hosted acealloc asks glibc for the CPU index there instead of reading it).
    pub getcpu_per_pair: Option<f64>,
    /// The result line's fields, as printed.
    pub fields: Vec<(String, String)>,
}

impl Outcome {
    pub fn field(&self, key: &str) -> Option<&str> {
        field(&self.fields, key)
    }
}

/// `key=value key=value …` (a `RESULT` or `ACE` line's body) as pairs.
pub fn parse_fields(line: &str) -> Vec<(String, String)> {
    line.split(' ')
        .filter_map(|f| f.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The value of `key` among `fields`.
pub fn field<'a>(fields: &'a [(String, String)], key: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Runs the bench binary's processes.
pub struct Runner {
    pub bench: PathBuf,
    pub quick: bool,
    /// The bench binary's own time limit per run; the process is killed a minute after it.
    pub time_limit_secs: u64,
    /// Where callgrind's profiles of the fast path are kept.
    pub callgrind_dir: PathBuf,
    /// Instructions of the fast path's empty loop, counted once.
    baseline: Option<u64>,
    /// Where `strace -c` puts its counts of each run's memory system calls, when every run is
    /// traced (`--strace`); `None`: only acealloc's provider counts its own.
    pub strace_dir: Option<PathBuf>,
}

/// The system calls that `--strace` counts, as the result line's `os_*` fields name them.
pub const OS_CALLS: [&str; 4] = ["mmap", "munmap", "madvise", "mremap"];

impl Runner {
    pub fn new(bench: PathBuf, quick: bool, time_limit_secs: u64, callgrind_dir: PathBuf) -> Self {
        Runner {
            bench,
            quick,
            time_limit_secs,
            callgrind_dir,
            baseline: None,
            strace_dir: None,
        }
    }

    /// One run of `alloc` in `cell`; an error when the process failed to report.
    pub fn run(&mut self, cell: &Cell, alloc: &str) -> Result<Outcome, String> {
        match cell.metric {
            Metric::PairCost => self.count_pairs(cell, alloc),
            Metric::Throughput | Metric::Efficiency => {
                let limit = Duration::from_secs(self.time_limit_secs + 60);
                if let Some(dir) = &self.strace_dir {
                    return self.traced(cell, alloc, dir, limit);
                }
                let mut command = self.bench_command(cell, alloc);
                let (stdout, rss_avg_kib) = run_sampled(&mut command, limit);
                let mut outcome = parse_result(&stdout?)?;
                if let Some(kib) = rss_avg_kib {
                    outcome
                        .fields
                        .push(("rss_avg_kib".into(), format!("{kib:.0}")));
                }
                Ok(outcome)
            }
        }
    }

    fn bench_command(&self, cell: &Cell, alloc: &str) -> Command {
        let mut command = Command::new(&self.bench);
        command.args(["run", &cell.workload, alloc]);
        command.args(["--threads", &cell.threads.to_string()]);
        command.args(["--time-limit", &self.time_limit_secs.to_string()]);
        if self.quick {
            command.arg("--quick");
        }
        command
    }

    /// One run under `strace -f -c`, its counts of [`OS_CALLS`] in the outcome's `os_*` fields
    /// (replacing the provider's own). No time-averaged RSS: the process sampled would be
    /// strace's.
    fn traced(
        &self,
        cell: &Cell,
        alloc: &str,
        dir: &std::path::Path,
        limit: Duration,
    ) -> Result<Outcome, String> {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let counts = dir.join(format!("{}.{alloc}.txt", cell.label().replace(' ', "_")));
        let bench = self.bench_command(cell, alloc);
        let mut command = Command::new("strace");
        command
            .args(["-f", "-c", "-e", &format!("trace={}", OS_CALLS.join(","))])
            .arg("-o")
            .arg(&counts)
            .arg(bench.get_program())
            .args(bench.get_args());
        let mut outcome = parse_result(&run_to_end(&mut command, limit)?)?;
        let text = std::fs::read_to_string(&counts)
            .map_err(|e| format!("no strace counts in {}: {e}", counts.display()))?;
        let calls = parse_strace_counts(&text);
        outcome.fields.retain(|(k, _)| !k.starts_with("os_"));
        for call in OS_CALLS {
            let n = calls.iter().find(|(c, _)| c == call).map_or(0, |(_, n)| *n);
            outcome.fields.push((format!("os_{call}"), n.to_string()));
        }
        outcome.fields.push(("os_source".into(), "strace".into()));
        Ok(outcome)
    }

    /// Instructions per pair: the measured loop's inclusive count less the empty loop's, over
    /// the pairs.
    fn count_pairs(&mut self, cell: &Cell, alloc: &str) -> Result<Outcome, String> {
        let (measured, stdout) = self.callgrind(cell, alloc, "measured")?;
        let mut outcome = parse_result(&stdout)?;
        let baseline = match self.baseline {
            Some(count) => count,
            None => {
                let (baseline, _) = self.callgrind(cell, alloc, "baseline")?;
                *self.baseline.get_or_insert(baseline.total)
            }
        };
        let pairs: f64 = outcome
            .field("detail")
            .and_then(|d| d.strip_prefix("pairs:"))
            .and_then(|n| n.parse().ok())
            .ok_or("the fast-path result names no pair count")?;
        outcome.value = measured.total.saturating_sub(baseline) as f64 / pairs;
        outcome.getcpu_per_pair = (measured.getcpu > 0).then(|| measured.getcpu as f64 / pairs);
        Ok(outcome)
    }

    /// Runs the fast-path workload under callgrind, collecting inside `function` only.
    fn callgrind(
        &self,
        cell: &Cell,
        alloc: &str,
        function: &str,
    ) -> Result<(Counts, String), String> {
        std::fs::create_dir_all(&self.callgrind_dir)
            .map_err(|e| format!("cannot create {}: {e}", self.callgrind_dir.display()))?;
        let profile = self.callgrind_dir.join(format!("{alloc}.{function}.out"));
        let bench = self.bench_command(cell, alloc);
        let mut command = Command::new("valgrind");
        command
            .arg("--tool=callgrind")
            .arg(format!("--callgrind-out-file={}", profile.display()))
            .arg(format!("--toggle-collect=*fast_path::{function}"))
            .arg(bench.get_program())
            .args(bench.get_args());
        let stdout = run_to_end(&mut command, Duration::from_secs(600))?;
        let annotated = Command::new("callgrind_annotate")
            .args(["--inclusive=yes", "--threshold=100"])
            .arg(&profile)
            .output()
            .map_err(|e| format!("cannot run callgrind_annotate: {e}"))?;
        let counts = parse_annotation(&String::from_utf8_lossy(&annotated.stdout))
            .ok_or(format!("no totals in {}", profile.display()))?;
        Ok((counts, stdout))
    }
}

/// Whether valgrind (for the fast-path counts) is installed.
pub fn valgrind_available() -> bool {
    Command::new("valgrind")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs `command` to its end (killed after `limit`); its standard output when it printed a
/// result, else an error with the end of its standard error.
pub fn run_to_end(command: &mut Command, limit: Duration) -> Result<String, String> {
    run_sampled(command, limit).0
}

/// [`run_to_end`], sampling the process's resident set (`/proc/PID/statm`) every 10 ms while
/// it runs; also the samples' mean, KiB (the time-averaged RSS of `cargo xtask ace-eval`).
pub fn run_sampled(
    command: &mut Command,
    limit: Duration,
) -> (Result<String, String>, Option<f64>) {
    let mut child = match command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => {
            let program = command.get_program();
            return (Err(format!("cannot start {program:?}: {e}")), None);
        }
    };
    let stdout = child::read_to_end(child.stdout.take());
    let stderr = child::read_to_end(child.stderr.take());
    let statm = format!("/proc/{}/statm", child.id());
    let (mut kib, mut samples) = (0u64, 0u64);
    let sample = || {
        // statm's second field: resident pages.
        if let Some(pages) = std::fs::read_to_string(&statm)
            .ok()
            .and_then(|t| t.split_whitespace().nth(1)?.parse::<u64>().ok())
        {
            kib += pages * 4;
            samples += 1;
        }
    };
    let status = child::wait_or_kill(&mut child, limit, Duration::from_millis(10), sample)
        .unwrap_or_else(|_| {
            // Not to be waited for: treated as killed.
            let _ = child.kill();
            let _ = child.wait();
            None
        });
    let stdout = String::from_utf8_lossy(&stdout.join().unwrap_or_default()).into_owned();
    let stderr = String::from_utf8_lossy(&stderr.join().unwrap_or_default()).into_owned();
    let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
    let tail = tail.into_iter().rev().collect::<Vec<_>>().join(" | ");
    let result = match status {
        None => Err(format!("killed after {} s", limit.as_secs())),
        Some(_) if stdout.contains("RESULT ") => Ok(stdout),
        Some(status) => Err(format!("{status}: {tail}")),
    };
    (result, (samples > 0).then(|| kib as f64 / samples as f64))
}

/// The `RESULT key=value …` line of a run.
pub fn parse_result(stdout: &str) -> Result<Outcome, String> {
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .ok_or("no RESULT line")?;
    let fields = parse_fields(line);
    let get = |key: &str| field(&fields, key).ok_or(format!("RESULT line without {key}"));
    let number = |key: &str| -> Result<f64, String> {
        get(key)?
            .parse()
            .map_err(|_| format!("RESULT {key} is not a number"))
    };
    Ok(Outcome {
        value: number("value")?,
        rss_peak_kib: number("rss_peak_kib")? as u64,
        complete: get("complete")? == "1",
        ok: get("ok")? == "1",
        getcpu_per_pair: None,
        fields,
    })
}

/// The calls per system call in `strace -c`'s table (`% time seconds usecs/call calls
/// [errors] syscall`).
fn parse_strace_counts(text: &str) -> Vec<(String, u64)> {
    text.lines()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let (name, calls) = (words.last()?, words.get(3)?.parse().ok()?);
            (words.len() >= 5 && *name != "total").then(|| (name.to_string(), calls))
        })
        .collect()
}

/// Inclusive instruction counts read from `callgrind_annotate --inclusive=yes`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Counts {
    /// Everything collected (the toggled function and its callees).
    total: u64,
    /// Inside glibc's `sched_getcpu`.
    getcpu: u64,
}

fn parse_annotation(text: &str) -> Option<Counts> {
    let count = |line: &str| -> Option<u64> {
        line.split_whitespace()
            .next()?
            .replace(',', "")
            .parse()
            .ok()
    };
    let total = text
        .lines()
        .find(|l| l.contains("PROGRAM TOTALS"))
        .and_then(count)?;
    let getcpu = text
        .lines()
        .find(|l| l.contains(":sched_getcpu "))
        .and_then(count)
        .unwrap_or(0);
    Some(Counts { total, getcpu })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_lines_parse() {
        let out = "noise\nRESULT workload=larson alloc=talc threads=2 value=1.5e7 ops=9 \
                   rss_peak_kib=5440 complete=1 ok=1 detail=-\n";
        let outcome = parse_result(out).unwrap();
        assert_eq!(outcome.value, 1.5e7);
        assert_eq!(outcome.rss_peak_kib, 5440);
        assert!(outcome.complete && outcome.ok);
        assert_eq!(outcome.field("alloc"), Some("talc"));
        assert!(parse_result("nothing").is_err());
    }

    #[test]
    fn strace_counts_parse() {
        let text = "% time     seconds  usecs/call     calls    errors syscall\n\
                    ------ ----------- ----------- --------- --------- ----------------\n\
                    \x20 58.08    0.000133          13        10           mmap\n\
                    \x20 30.00    0.000070          17         4         1 munmap\n\
                    ------ ----------- ----------- --------- --------- ----------------\n\
                    100.00    0.000203          14        14         1 total\n";
        assert_eq!(
            parse_strace_counts(text),
            [("mmap".to_string(), 10), ("munmap".to_string(), 4)]
        );
    }

    #[test]
    fn callgrind_annotations_parse() {
        let text = "--\n11,800,020 (100.0%)  PROGRAM TOTALS\n--\n\
                    6,000,000 (50.85%)  ./posix/sched_getcpu.c:sched_getcpu [/usr/lib/libc.so.6]\n";
        assert_eq!(
            parse_annotation(text),
            Some(Counts {
                total: 11_800_020,
                getcpu: 6_000_000
            })
        );
        let plain = "7,337,739 (100.0%)  PROGRAM TOTALS\n";
        assert_eq!(parse_annotation(plain).unwrap().getcpu, 0);
        assert_eq!(parse_annotation("empty"), None);
    }
}

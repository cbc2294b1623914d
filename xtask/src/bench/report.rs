//! `results.md`: the machine and date, the tables (ratios to acealloc BALANCED first), the
//! targets, and what to know when reading them.

use std::fmt::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::matrix::{Cell, Metric, REFERENCE};
use super::results::{Stat, Summary};
use super::targets::Target;

/// When, where and under what load a task's runs happened: what every results file says first.
pub struct Provenance {
    pub date: String,
    /// When the runs started, `HH:MM` UTC.
    pub time: String,
    pub machine: String,
    pub minutes: f64,
    /// The load average at the start and at the end.
    pub load: String,
}

impl Provenance {
    /// Runs that started on `date` at `time` (at `started`, under load `load_start`) and have
    /// just ended.
    pub fn ended(
        root: &Path,
        date: String,
        time: String,
        started: Instant,
        load_start: &str,
    ) -> Provenance {
        Provenance {
            date,
            time,
            machine: machine(root),
            minutes: started.elapsed().as_secs_f64() / 60.0,
            load: format!("{load_start} → {}", load_average()),
        }
    }

    /// The file's title, then a line on the runs (`kind`, start, length, the task that wrote the
    /// file: `by`), the machine and the load.
    pub fn header(&self, md: &mut String, title: &str, kind: &str, by: &str) {
        let _ = writeln!(md, "# {title}: {}\n", self.date);
        let _ = writeln!(
            md,
            "- {kind}, started {} {} UTC, {:.1} minutes, written by {by}",
            self.date, self.time, self.minutes
        );
        let _ = writeln!(md, "- machine: {}", self.machine);
        let _ = writeln!(
            md,
            "- load average (1, 5, 15 min) at start and end: {}",
            self.load
        );
    }
}

/// How the benchmark ran.
pub struct Context {
    pub provenance: Provenance,
    pub quick: bool,
    pub repeats: u32,
    pub jemalloc: bool,
    pub time_limit_secs: u64,
    /// Whether every run was traced (`--strace`).
    pub strace: bool,
}

/// `YYYY-MM-DD` and `HH:MM` (UTC) now.
pub fn now_utc() -> (String, String) {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        format!("{year:04}-{month:02}-{day:02}"),
        format!("{:02}:{:02}", rest / 3600, rest % 3600 / 60),
    )
}

/// One line on the machine: CPU, cores, memory, OS, kernel, glibc, rustc, commit.
pub fn machine(root: &Path) -> String {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
        .map_or("unknown CPU".to_string(), |(_, m)| m.trim().to_string());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_gib = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    let os = read("/etc/os-release")
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map_or("unknown OS".to_string(), |v| {
            v.trim_matches('"').to_string()
        });
    let kernel = read("/proc/sys/kernel/osrelease").trim().to_string();
    let output = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .current_dir(root)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_else(|| "unknown".into())
    };
    let glibc = output("getconf", &["GNU_LIBC_VERSION"]);
    let rustc = output("rustc", &["--version"]);
    let commit = output("git", &["rev-parse", "--short", "HEAD"]);
    let dirty = !output("git", &["status", "--porcelain", "--untracked-files=no"]).is_empty();
    format!(
        "{cpu}, {cores} cores, {mem_gib:.0} GiB; {os}, Linux {kernel}, {glibc}; {rustc}; \
         commit {commit}{}",
        if dirty {
            " (with uncommitted changes)"
        } else {
            ""
        }
    )
}

/// `/proc/loadavg`'s first three figures.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The peers' crate versions, from the workspace's Cargo.lock.
pub fn peer_versions(root: &Path) -> String {
    let lock = std::fs::read_to_string(root.join("Cargo.lock")).unwrap_or_default();
    let crates = [
        "mimalloc",
        "libmimalloc-sys",
        "tikv-jemallocator",
        "talc",
        "linked_list_allocator",
        "buddy_system_allocator",
        "rlsf",
        "spin",
    ];
    let mut found = Vec::new();
    for package in lock.split("[[package]]") {
        let field = |key: &str| {
            package
                .lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix(" = "))
                .map(|v| v.trim_matches('"').to_string())
        };
        if let (Some(name), Some(version)) = (field("name"), field("version"))
            && crates.contains(&name.as_str())
            && !found.contains(&format!("{name} {version}"))
        {
            found.push(format!("{name} {version}"));
        }
    }
    found.join(", ")
}

fn pct(x: f64) -> String {
    format!("±{:.0}%", x * 100.0)
}

/// A number with three significant digits (all its integer digits from 1000 on).
pub fn sig3(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let digits = (2 - x.abs().log10().floor() as i32).max(0) as usize;
    format!("{x:.digits$}")
}

/// Markers for a summary's troubles: `‡` time limit, `✗` data checks failed, `!` no result.
fn marks(s: &Summary) -> String {
    let mut m = String::new();
    if s.incomplete > 0 {
        m.push_str(" ‡");
    }
    if s.bad_checks > 0 {
        m.push_str(" ✗");
    }
    if !s.errors.is_empty() {
        m.push_str(" !");
    }
    m
}

/// Rows (allocators, in first-seen order) by columns (the cells), built by `cell_text`.
fn table(
    cells: &[(usize, &Cell)],
    summaries: &[Vec<Summary>],
    cell_text: impl Fn(&str, &Summary) -> String,
) -> String {
    let mut allocs: Vec<&str> = Vec::new();
    for (_, cell) in cells {
        for alloc in &cell.allocs {
            if !allocs.contains(&alloc.as_str()) {
                allocs.push(alloc);
            }
        }
    }
    let mut out = String::from("| allocator |");
    for (_, cell) in cells {
        let _ = write!(out, " {} |", cell.label());
    }
    out.push_str("\n|---|");
    out.push_str(&"---:|".repeat(cells.len()));
    out.push('\n');
    for alloc in allocs {
        let name = if alloc == REFERENCE {
            format!("**{alloc}**")
        } else {
            alloc.to_string()
        };
        let _ = write!(out, "| {name} |");
        for (i, cell) in cells {
            let text = cell
                .allocs
                .iter()
                .position(|a| a == alloc)
                .map_or("–".to_string(), |j| cell_text(alloc, &summaries[*i][j]));
            let _ = write!(out, " {text} |");
        }
        out.push('\n');
    }
    out
}

fn ratio_text(stat: Option<Stat>) -> String {
    stat.map_or("–".into(), |r| {
        if r.n > 1 {
            format!("{} {}", sig3(r.median), pct(r.spread()))
        } else {
            sig3(r.median)
        }
    })
}

/// The whole of `results.md`.
pub fn markdown(
    ctx: &Context,
    peers: &str,
    cells: &[Cell],
    summaries: &[Vec<Summary>],
    targets: &[Target],
) -> String {
    let mut md = String::new();
    let kind = if ctx.quick {
        "quick run (CI smoke test: figures not meaningful)"
    } else {
        "full run"
    };
    ctx.provenance.header(
        &mut md,
        "acealloc benchmark results",
        kind,
        "`cargo xtask bench`",
    );
    let _ = writeln!(md, "- peers: {peers}");
    if !ctx.jemalloc {
        let _ = writeln!(
            md,
            "- jemalloc: not in this run (quick runs leave out the bench crate's `jemalloc` \
             feature: building jemalloc takes about a minute)"
        );
    }
    let _ = writeln!(
        md,
        "- each run is one process; throughput cells ran {} rounds, every allocator once per \
         round (interleaved); figures are medians, `±` is half the range over the rounds; \
         time limit {} s per run\n",
        ctx.repeats, ctx.time_limit_secs
    );

    let pick = |metric: Metric| -> Vec<(usize, &Cell)> {
        cells
            .iter()
            .enumerate()
            .filter(|(_, c)| c.metric == metric)
            .collect()
    };
    let throughput = pick(Metric::Throughput);
    if !throughput.is_empty() {
        md.push_str(
            "## Throughput relative to acealloc BALANCED\n\nAllocator calls per second over \
             BALANCED's in the same round (higher is better; 2.00 = twice as fast as BALANCED).\n\n",
        );
        md.push_str(&table(&throughput, summaries, |_, s| {
            format!("{}{}", ratio_text(s.ratio), marks(s))
        }));
        md.push_str("\n## Throughput\n\nMillions of allocator calls (allocations, frees, reallocations) per second.\n\n");
        md.push_str(&table(&throughput, summaries, |_, s| {
            s.value.map_or("–".into(), |v| {
                let spread = if v.n > 1 {
                    format!(" {}", pct(v.spread()))
                } else {
                    String::new()
                };
                format!("{}{spread}{}", sig3(v.median / 1e6), marks(s))
            })
        }));
        md.push_str(
            "\n## Peak RSS\n\n`VmHWM` of the run's process in MiB (median), and over BALANCED's \
             in the same round. It includes what every run of a workload carries alike: the process's \
             few MiB at start and the workload's records of its live blocks (32 B per block).\n\n",
        );
        md.push_str(&table(&throughput, summaries, |_, s| {
            s.rss_kib.map_or("–".into(), |v| {
                format!("{} ({})", sig3(v.median / 1024.0), ratio_text(s.rss_ratio))
            })
        }));
        md.push_str(
            "\n## Time-averaged RSS\n\nThe run's resident set sampled every 10 ms from outside \
             the process (`/proc/PID/statm`), averaged over the run, in MiB (median), beside its \
             peak: what the allocator keeps resident over time, not only at the worst moment.\n\n",
        );
        md.push_str(&table(&throughput, summaries, |_, s| {
            match (s.rss_avg_kib, s.rss_kib) {
                (Some(avg), Some(peak)) => format!(
                    "{} (peak {})",
                    sig3(avg.median / 1024.0),
                    sig3(peak.median / 1024.0)
                ),
                _ => "–".into(),
            }
        }));
        let counted_by = if ctx.strace {
            "counted by `strace -f -c` for every allocator (`--strace`: the whole process, the \
             bench's own few calls included; tracing slowed these runs)"
        } else {
            "counted by the hosted acealloc's own page provider (its calls only); the other \
             allocators' calls are counted with `cargo xtask bench --strace`"
        };
        let _ = write!(
            md,
            "\n## OS calls\n\n`mmap`, `munmap`, `madvise` and `mremap` calls of one run \
             (median), {counted_by}.\n\n"
        );
        md.push_str(&table(&throughput, summaries, |_, s| {
            s.os_calls
                .map_or("–".into(), |v| format!("{:.0}", v.median))
        }));
    }
    for (i, cell) in pick(Metric::PairCost) {
        md.push_str(
            "\n## Fast path\n\nInstructions per warm 64 B alloc+free pair (layout known at \
             compile time), counted by callgrind, net of the empty loop; periodic work (refills, \
             flushes) included. `acealloc-balanced-1cpu` is the kernel-style build (exclusive \
             CPU, no lock, no interrupt masking). The hosted acealloc reads its CPU index from \
             rseq, which valgrind does not provide: under callgrind it calls `sched_getcpu` \
             instead, shown apart.\n\n| allocator | instructions per pair | of which in sched_getcpu |\n|---|---:|---:|\n",
        );
        for (alloc, s) in cell.allocs.iter().zip(&summaries[i]) {
            let value = s.value.map_or("–".into(), |v| format!("{:.1}", v.median));
            let getcpu = s.getcpu_per_pair.map_or("–".into(), |g| format!("{g:.1}"));
            let _ = writeln!(md, "| {alloc} | {value}{} | {getcpu} |", marks(s));
        }
    }
    for (i, cell) in pick(Metric::Efficiency) {
        md.push_str(
            "\n## Heap efficiency\n\nRequested bytes live at the first failed allocation over the \
             128 MiB region (mean over seeds; talc's benchmark shape). Region-based allocators only; \
             acealloc over its `RegionProvider`.\n\n| allocator | in use | lowest seed | highest seed | seeds |\n|---|---:|---:|---:|---:|\n",
        );
        for (alloc, s) in cell.allocs.iter().zip(&summaries[i]) {
            let detail = s.detail.as_deref().unwrap_or("");
            let part = |key: &str| {
                detail
                    .split(';')
                    .find_map(|p| p.strip_prefix(key)?.strip_prefix(':'))
                    .unwrap_or("–")
                    .to_string()
            };
            let as_pct = |v: String| v.parse::<f64>().map_or(v, |f| format!("{:.1}%", f * 100.0));
            let value = s
                .value
                .map_or("–".into(), |v| format!("{:.1}%", v.median * 100.0));
            let _ = writeln!(
                md,
                "| {alloc} | {value}{} | {} | {} | {} |",
                marks(s),
                as_pct(part("min")),
                as_pct(part("max")),
                part("seeds")
            );
        }
    }
    md.push_str("\n## Targets\n\nacealloc BALANCED against the goals of issue 5.\n\n| target | measured | verdict |\n|---|---|---|\n");
    for t in targets {
        let _ = writeln!(md, "| {} | {} | {} |", t.goal, t.measured, t.verdict.text());
    }
    md.push_str("\n## Notes\n\n");
    md.push_str(
        "- `‡`: the run hit its time limit; its figure is over the calls it made (repeats of \
         such a cell are skipped). `✗`: the run's data checks failed. `!`: the run reported \
         nothing (see below).\n- Throughput counts every successful call; the workloads also \
         write and check a pattern in every block (one word per cache line), as a program \
         would use its memory.\n",
    );
    for (i, cell) in cells.iter().enumerate() {
        for (alloc, s) in cell.allocs.iter().zip(&summaries[i]) {
            for error in &s.errors {
                let _ = writeln!(md, "- {} {alloc}: {error}", cell.label());
            }
        }
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_numbers_format() {
        let (date, time) = now_utc();
        assert_eq!(date.len(), 10);
        assert!(date.starts_with("20"));
        assert_eq!(time.len(), 5);
        assert_eq!(sig3(1234.5), "1234");
        assert_eq!(sig3(12.345), "12.3");
        assert_eq!(sig3(0.012345), "0.0123");
        assert_eq!(pct(0.034), "±3%");
    }
}

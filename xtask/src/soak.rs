//! `cargo xtask soak --minutes N --profile P [--epoch-secs S] [--phased] [--decommit MODE] [--ace]`:
//! hosted acealloc under `mixed-ws400` for a long time in one process (`acealloc-bench soak`),
//! to see whether what it keeps drifts and whether its speed holds.
//!
//! Per epoch the bench prints its throughput, CPU time, the machine's load, `VmRSS` split into
//! the allocator's reservation and the rest of the process, the allocator's committed, live,
//! retained and decommitted bytes and its provider calls by kind; this writes them all to
//! `bench-results/soak/<profile>[-phased][-ace].csv` and a plot of RSS and throughput over time
//! next to it, and reports, over the epochs after the warm-up (the first tenth, at least one):
//! - drift: the mean of the last three epochs against the mean of the first three, of RSS, of
//!   its two parts, and of the allocator's committed bytes; the RSS drift that counts is net of
//!   the growth of the live bytes (a live set that still grows is the workload's, not drift);
//! - the coefficient of variation of throughput (standard deviation over mean), per second of
//!   wall time and per second of the workload thread's CPU time (on a shared machine the first
//!   also measures how often the thread waited for a core);
//! - provider calls per million operations.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;

use plotters::prelude::*;

/// The epoch line's memory and provider fields, in the CSV's order after `epoch`, `secs`,
/// `cpu_secs`, `ops`, `mops_per_sec` and `load1`.
const FIELDS: [&str; 16] = [
    "rss_kib",
    "span_rss_kib",
    "lazyfree_kib",
    "outside_kib",
    "committed_kib",
    "live_kib",
    "retained_kib",
    "decommitted_kib",
    "slabs",
    "cached_blocks",
    "depot_blocks",
    "provider_calls",
    "alloc_calls",
    "free_calls",
    "decommit_calls",
    "recommit_calls",
];

/// One epoch as the bench reports it. Fields the bench does not print read as zero.
struct Epoch {
    index: usize,
    secs: f64,
    cpu_secs: f64,
    ops: u64,
    load1: f64,
    /// [`FIELDS`], in order.
    values: [u64; FIELDS.len()],
}

impl Epoch {
    /// Parses an `EPOCH key=value …` line.
    fn parse(line: &str) -> Option<Epoch> {
        let fields = line.strip_prefix("EPOCH ")?;
        let field = |name: &str| {
            fields
                .split_whitespace()
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
        };
        let mut values = [0; FIELDS.len()];
        for (value, name) in values.iter_mut().zip(FIELDS) {
            *value = field(name).map_or(Some(0), |v| v.parse().ok())?;
        }
        Some(Epoch {
            index: field("index")?.parse().ok()?,
            secs: field("secs")?.parse().ok()?,
            cpu_secs: field("cpu_secs").map_or(Some(0.0), |v| v.parse().ok())?,
            ops: field("ops")?.parse().ok()?,
            load1: field("load1").map_or(Some(0.0), |v| v.parse().ok())?,
            values,
        })
    }

    /// The value of field `name` (one of [`FIELDS`]).
    fn get(&self, name: &str) -> u64 {
        let i = FIELDS
            .iter()
            .position(|f| *f == name)
            .expect("a known field");
        self.values[i]
    }

    fn throughput(&self) -> f64 {
        self.ops as f64 / self.secs
    }

    /// Operations per second of the workload thread's CPU time (wall time if not reported).
    fn cpu_throughput(&self) -> f64 {
        let secs = if self.cpu_secs > 0.0 {
            self.cpu_secs
        } else {
            self.secs
        };
        self.ops as f64 / secs
    }
}

/// Drift of a field: the mean of the last three epochs against the mean of the first three.
struct Drift {
    first: f64,
    last: f64,
}

impl Drift {
    fn of(steady: &[Epoch], name: &str) -> Drift {
        let n = (steady.len() / 2).clamp(1, 3);
        let mean = |epochs: &[Epoch]| {
            epochs.iter().map(|e| e.get(name) as f64).sum::<f64>() / epochs.len() as f64
        };
        Drift {
            first: mean(&steady[..n]),
            last: mean(&steady[steady.len() - n..]),
        }
    }

    fn change(&self) -> f64 {
        self.last - self.first
    }

    /// The change relative to the first value.
    fn relative(&self) -> f64 {
        self.change() / self.first.max(1.0)
    }
}

/// The soak's figures over the epochs after the warm-up.
struct Summary {
    warmup: usize,
    /// RSS drift net of the live bytes' growth, relative to the first RSS.
    drift: f64,
    rss: Drift,
    span_rss: Drift,
    outside: Drift,
    committed: Drift,
    live: Drift,
    cv: f64,
    cpu_cv: f64,
    calls_per_million: f64,
    mops: f64,
    load: f64,
}

/// Mean and coefficient of variation of `values`.
fn spread(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let values: Vec<f64> = values.collect();
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    let variance = values.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / values.len() as f64;
    (mean, variance.sqrt() / mean)
}

fn summarise(epochs: &[Epoch]) -> Option<Summary> {
    let warmup = (epochs.len() / 10).max(1);
    let steady = epochs.get(warmup..).filter(|s| s.len() >= 2)?;
    let (rss, live) = (Drift::of(steady, "rss_kib"), Drift::of(steady, "live_kib"));
    let (mean, cv) = spread(steady.iter().map(Epoch::throughput));
    let (_, cpu_cv) = spread(steady.iter().map(Epoch::cpu_throughput));
    let ops: u64 = steady.iter().map(|e| e.ops).sum();
    let calls: u64 = steady.iter().map(|e| e.get("provider_calls")).sum();
    Some(Summary {
        warmup,
        drift: (rss.change() - live.change()) / rss.first.max(1.0),
        span_rss: Drift::of(steady, "span_rss_kib"),
        outside: Drift::of(steady, "outside_kib"),
        committed: Drift::of(steady, "committed_kib"),
        rss,
        live,
        cv,
        cpu_cv,
        calls_per_million: calls as f64 * 1e6 / ops.max(1) as f64,
        mops: mean / 1e6,
        load: steady.iter().map(|e| e.load1).sum::<f64>() / steady.len() as f64,
    })
}

/// Runs the task; true when the bench's data checks passed.
pub fn run(root: &Path, args: &[String]) -> Result<bool, String> {
    let (mut minutes, mut profile, mut epoch_secs) = (10.0, "balanced".to_string(), 10.0);
    let mut extra = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| args.next().ok_or(format!("{flag} needs a value")).cloned();
        match arg.as_str() {
            "--minutes" => minutes = number(&value("--minutes")?)?,
            "--profile" => profile = value("--profile")?,
            "--epoch-secs" => epoch_secs = number(&value("--epoch-secs")?)?,
            "--decommit" => extra.extend(["--decommit".to_string(), value("--decommit")?]),
            "--phased" => extra.push("--phased".to_string()),
            "--ace" => extra.push("--ace".to_string()),
            other => return Err(format!("unknown soak option {other}")),
        }
    }
    let epochs = ((minutes * 60.0 / epoch_secs).round() as usize).max(2);
    let mut name = profile.clone();
    for flag in ["phased", "ace"] {
        if extra.iter().any(|a| a.strip_prefix("--") == Some(flag)) {
            name = format!("{name}-{flag}");
        }
    }
    println!("xtask: soak {name}: {epochs} epochs of {epoch_secs} s");
    let mut child = crate::toolchain::cargo(root)
        .args([
            "run",
            "--release",
            "-q",
            "-p",
            "acealloc-bench",
            "--",
            "soak",
        ])
        .arg(&profile)
        .args(["--epochs", &epochs.to_string()])
        .args(["--epoch-secs", &epoch_secs.to_string()])
        .args(&extra)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut runs = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(|e| format!("reading the bench: {e}"))?;
        println!("{line}");
        runs.extend(Epoch::parse(&line));
    }
    let status = child
        .wait()
        .map_err(|e| format!("waiting for the bench: {e}"))?;

    let dir = root.join("bench-results/soak");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let csv = dir.join(format!("{name}.csv"));
    let mut text = String::from("epoch,secs,cpu_secs,ops,mops_per_sec,load1");
    for name in FIELDS {
        text += &format!(",{name}");
    }
    text.push('\n');
    for e in &runs {
        text += &format!(
            "{},{:.3},{:.3},{},{:.3},{:.2}",
            e.index,
            e.secs,
            e.cpu_secs,
            e.ops,
            e.throughput() / 1e6,
            e.load1
        );
        for value in e.values {
            text += &format!(",{value}");
        }
        text.push('\n');
    }
    std::fs::write(&csv, text).map_err(|e| format!("cannot write {}: {e}", csv.display()))?;
    let png = dir.join(format!("{name}.png"));
    plot(&png, &name, &runs).map_err(|e| format!("cannot draw {}: {e}", png.display()))?;
    println!("xtask: wrote {} and {}", csv.display(), png.display());
    let summary = summarise(&runs).ok_or("too few epochs to summarise")?;
    let kib = |d: &Drift| format!("{:.0} → {:.0} KiB", d.first, d.last);
    println!(
        "soak {name}: {} epochs ({} warm-up), load {:.2}\n  drift {:+.2}% (RSS {:+.2}%, less the live bytes' growth of {:+.0} KiB)\n  RSS {} ({:+.2}%): allocator's span {} ({:+.0} KiB), rest of the process {} ({:+.0} KiB)\n  committed {} ({:+.2}%), live {}\n  throughput {:.2} M ops/s, CV {:.2}% (per CPU second: {:.2}%); {:.3} provider calls per million ops",
        runs.len(),
        summary.warmup,
        summary.load,
        summary.drift * 100.0,
        summary.rss.relative() * 100.0,
        summary.live.change(),
        kib(&summary.rss),
        summary.rss.relative() * 100.0,
        kib(&summary.span_rss),
        summary.span_rss.change(),
        kib(&summary.outside),
        summary.outside.change(),
        kib(&summary.committed),
        summary.committed.relative() * 100.0,
        kib(&summary.live),
        summary.mops,
        summary.cv * 100.0,
        summary.cpu_cv * 100.0,
        summary.calls_per_million
    );
    Ok(status.success())
}

fn number(text: &str) -> Result<f64, String> {
    text.parse().map_err(|_| format!("{text}: not a number"))
}

/// RSS (MiB, left) and throughput (M ops/s, right) against time.
fn plot(path: &Path, name: &str, epochs: &[Epoch]) -> Result<(), Box<dyn std::error::Error>> {
    crate::plot::register_sans_serif();
    let mut t = 0.0;
    let points: Vec<(f64, f64, f64)> = epochs
        .iter()
        .map(|e| {
            t += e.secs;
            (
                t / 60.0,
                e.get("rss_kib") as f64 / 1024.0,
                e.throughput() / 1e6,
            )
        })
        .collect();
    let end = t.max(1.0) / 60.0;
    let rss_max = points.iter().map(|p| p.1).fold(1.0, f64::max) * 1.2;
    let mops_max = points.iter().map(|p| p.2).fold(1.0, f64::max) * 1.2;
    let root = BitMapBackend::new(path, (1000, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("acealloc soak, mixed-ws400, {name}"),
            ("sans-serif", 24),
        )
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(70)
        .right_y_label_area_size(70)
        .build_cartesian_2d(0.0..end, 0.0..rss_max)?
        .set_secondary_coord(0.0..end, 0.0..mops_max);
    chart
        .configure_mesh()
        .x_desc("minutes")
        .y_desc("VmRSS, MiB")
        .label_style(("sans-serif", 16))
        .draw()?;
    chart
        .configure_secondary_axes()
        .y_desc("million ops per second")
        .label_style(("sans-serif", 16))
        .draw()?;
    let rss = RGBColor(214, 69, 20);
    let mops = RGBColor(40, 100, 200);
    chart
        .draw_series(std::iter::once(PathElement::new(
            points.iter().map(|p| (p.0, p.1)).collect::<Vec<_>>(),
            rss.stroke_width(2),
        )))?
        .label("RSS")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], rss));
    chart
        .draw_secondary_series(std::iter::once(PathElement::new(
            points.iter().map(|p| (p.0, p.2)).collect::<Vec<_>>(),
            mops.stroke_width(2),
        )))?
        .label("throughput")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], mops));
    chart
        .configure_series_labels()
        .background_style(WHITE)
        .border_style(BLACK)
        .label_font(("sans-serif", 16))
        .draw()?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An epoch of one second with `ops` operations, `rss` KiB resident and `live` KiB live.
    fn epoch(index: usize, ops: u64, rss: u64, live: u64, calls: u64) -> Epoch {
        Epoch::parse(&format!(
            "EPOCH index={index} secs=1.000 cpu_secs=0.500 ops={ops} rss_kib={rss} live_kib={live} provider_calls={calls}"
        ))
        .unwrap()
    }

    #[test]
    fn parses_epoch_lines() {
        let e = Epoch::parse(
            "EPOCH index=3 secs=2.000 cpu_secs=1.000 ops=100 load1=1.50 rss_kib=4000 span_rss_kib=600 lazyfree_kib=0 outside_kib=3400 committed_kib=512 live_kib=90 retained_kib=8 decommitted_kib=0 slabs=70 cached_blocks=700 depot_blocks=3 provider_calls=7 alloc_calls=4 free_calls=1 decommit_calls=2 recommit_calls=0",
        )
        .unwrap();
        assert_eq!((e.index, e.ops, e.load1), (3, 100, 1.5));
        let values = [4000, 600, 0, 3400, 512, 90, 8, 0, 70, 700, 3, 7, 4, 1, 2, 0];
        assert_eq!(e.values, values);
        assert_eq!(e.get("committed_kib"), 512);
        assert_eq!((e.throughput(), e.cpu_throughput()), (50.0, 100.0));
        assert!(Epoch::parse("committed 4 KiB").is_none());
        let old = Epoch::parse("EPOCH index=0 secs=1.000 ops=10 rss_kib=7").unwrap();
        assert_eq!(
            (old.get("rss_kib"), old.get("slabs")),
            (7, 0),
            "missing fields read as 0"
        );
    }

    #[test]
    fn drift_and_spread_leave_the_warm_up_out() {
        // Warm-up epoch 0 (a tenth of 10, at least one) is ignored.
        let mut epochs = vec![epoch(0, 10, 1000, 0, 500)];
        epochs.extend((1..10).map(|i| epoch(i, if i % 2 == 0 { 90 } else { 110 }, 2000, 100, 1)));
        epochs[9].values[0] = 2300; // the mean of the last three is 2100
        let s = summarise(&epochs).unwrap();
        assert_eq!(s.warmup, 1);
        assert!((s.drift - 0.05).abs() < 1e-9, "{}", s.drift);
        // Five epochs at 110, four at 90: mean 101.1, standard deviation 9.94.
        assert!((s.cv - 0.0983).abs() < 1e-3, "{}", s.cv);
        assert!((s.cpu_cv - 0.0983).abs() < 1e-3, "{}", s.cpu_cv);
        assert!((s.calls_per_million - 9.0 * 1e6 / 910.0).abs() < 1e-6);
    }

    #[test]
    fn a_growing_live_set_is_not_drift() {
        // RSS grows by 300 KiB from the first three epochs to the last three, and so do the
        // live bytes: no drift. Then the same RSS growth with a flat live set: 15%.
        let growing: Vec<_> = (0..10)
            .map(|i| epoch(i, 100, 2000 + 50 * i as u64, 100 + 50 * i as u64, 0))
            .collect();
        let s = summarise(&growing).unwrap();
        assert!((s.rss.change() - 300.0).abs() < 1e-9);
        assert!(s.drift.abs() < 1e-9, "{}", s.drift);
        let flat: Vec<_> = (0..10)
            .map(|i| epoch(i, 100, 2000 + 50 * i as u64, 100, 0))
            .collect();
        let s = summarise(&flat).unwrap();
        assert!((s.drift - 300.0 / 2100.0).abs() < 1e-9, "{}", s.drift);
    }
}

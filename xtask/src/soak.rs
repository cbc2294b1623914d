//! `cargo xtask soak --minutes N --profile P [--epoch-secs S] [--phased] [--decommit MODE] [--ace]`:
//! hosted acealloc under `mixed-ws400` for a long time in one process (`acealloc-bench soak`),
//! to see whether what it keeps drifts and whether its speed holds.
//!
//! Per epoch the bench prints its throughput, `VmRSS` and provider calls; this writes them to
//! `bench-results/soak/<profile>[-phased].csv` and a plot of RSS and throughput over time next
//! to it, and reports, over the epochs after the warm-up (the first tenth, at least one):
//! - RSS drift: the mean of the last three epochs against the first epoch after the warm-up;
//! - the coefficient of variation of throughput (standard deviation over mean);
//! - provider calls per million operations.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::sync::Once;

use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

/// One epoch as the bench reports it.
struct Epoch {
    index: usize,
    secs: f64,
    ops: u64,
    rss_kib: u64,
    committed_kib: u64,
    provider_calls: u64,
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
        Some(Epoch {
            index: field("index")?.parse().ok()?,
            secs: field("secs")?.parse().ok()?,
            ops: field("ops")?.parse().ok()?,
            rss_kib: field("rss_kib")?.parse().ok()?,
            committed_kib: field("committed_kib")?.parse().ok()?,
            provider_calls: field("provider_calls")?.parse().ok()?,
        })
    }

    fn throughput(&self) -> f64 {
        self.ops as f64 / self.secs
    }
}

/// The soak's figures over the epochs after the warm-up.
struct Summary {
    warmup: usize,
    drift: f64,
    cv: f64,
    calls_per_million: f64,
    mops: f64,
    rss_mib: f64,
}

fn summarise(epochs: &[Epoch]) -> Option<Summary> {
    let warmup = (epochs.len() / 10).max(1);
    let steady = epochs.get(warmup..).filter(|s| s.len() >= 2)?;
    let first = steady[0].rss_kib as f64;
    let tail = &steady[steady.len().saturating_sub(3)..];
    let last = tail.iter().map(|e| e.rss_kib as f64).sum::<f64>() / tail.len() as f64;
    let rates: Vec<f64> = steady.iter().map(Epoch::throughput).collect();
    let mean = rates.iter().sum::<f64>() / rates.len() as f64;
    let variance = rates.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / rates.len() as f64;
    let ops: u64 = steady.iter().map(|e| e.ops).sum();
    let calls: u64 = steady.iter().map(|e| e.provider_calls).sum();
    Some(Summary {
        warmup,
        drift: (last - first) / first,
        cv: variance.sqrt() / mean,
        calls_per_million: calls as f64 * 1e6 / ops.max(1) as f64,
        mops: mean / 1e6,
        rss_mib: last / 1024.0,
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
    let mut text =
        String::from("epoch,secs,ops,mops_per_sec,rss_kib,committed_kib,provider_calls\n");
    for e in &runs {
        text += &format!(
            "{},{:.3},{},{:.3},{},{},{}\n",
            e.index,
            e.secs,
            e.ops,
            e.throughput() / 1e6,
            e.rss_kib,
            e.committed_kib,
            e.provider_calls
        );
    }
    std::fs::write(&csv, text).map_err(|e| format!("cannot write {}: {e}", csv.display()))?;
    let png = dir.join(format!("{name}.png"));
    plot(&png, &name, &runs).map_err(|e| format!("cannot draw {}: {e}", png.display()))?;
    println!("xtask: wrote {} and {}", csv.display(), png.display());
    let summary = summarise(&runs).ok_or("too few epochs to summarise")?;
    println!(
        "soak {name}: {} epochs ({} warm-up); RSS {:.2} MiB, drift {:+.2}%; throughput {:.2} M ops/s, CV {:.2}%; {:.3} provider calls per million ops",
        runs.len(),
        summary.warmup,
        summary.rss_mib,
        summary.drift * 100.0,
        summary.mops,
        summary.cv * 100.0,
        summary.calls_per_million
    );
    Ok(status.success())
}

fn number(text: &str) -> Result<f64, String> {
    text.parse().map_err(|_| format!("{text}: not a number"))
}

/// RSS (MiB, left) and throughput (M ops/s, right) against time.
fn plot(path: &Path, name: &str, epochs: &[Epoch]) -> Result<(), Box<dyn std::error::Error>> {
    static FONT: Once = Once::new();
    FONT.call_once(|| {
        // DejaVu Sans is a valid TrueType font; registering it cannot fail.
        let _ = register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular());
    });
    let mut t = 0.0;
    let points: Vec<(f64, f64, f64)> = epochs
        .iter()
        .map(|e| {
            t += e.secs;
            (t / 60.0, e.rss_kib as f64 / 1024.0, e.throughput() / 1e6)
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

    fn epoch(index: usize, ops: u64, rss_kib: u64, calls: u64) -> Epoch {
        Epoch {
            index,
            secs: 1.0,
            ops,
            rss_kib,
            committed_kib: 0,
            provider_calls: calls,
        }
    }

    #[test]
    fn parses_epoch_lines() {
        let e = Epoch::parse(
            "EPOCH index=3 secs=2.000 ops=100 rss_kib=4000 committed_kib=512 live_kib=90 provider_calls=7 decommitted_kib=0",
        )
        .unwrap();
        assert_eq!(
            (e.index, e.ops, e.rss_kib, e.committed_kib, e.provider_calls),
            (3, 100, 4000, 512, 7)
        );
        assert_eq!(e.throughput(), 50.0);
        assert!(Epoch::parse("committed 4 KiB").is_none());
    }

    #[test]
    fn drift_and_spread_leave_the_warm_up_out() {
        // Warm-up epoch 0 (a tenth of 10, at least one) is ignored.
        let mut epochs = vec![epoch(0, 10, 1000, 500)];
        epochs.extend((1..10).map(|i| epoch(i, if i % 2 == 0 { 90 } else { 110 }, 2000, 1)));
        epochs[9].rss_kib = 2300; // the mean of the last three is 2100
        let s = summarise(&epochs).unwrap();
        assert_eq!(s.warmup, 1);
        assert!((s.drift - 0.05).abs() < 1e-9, "{}", s.drift);
        // Five epochs at 110, four at 90: mean 101.1, standard deviation 9.94.
        assert!((s.cv - 0.0983).abs() < 1e-3, "{}", s.cv);
        assert!((s.calls_per_million - 9.0 * 1e6 / 910.0).abs() < 1e-6);
    }
}

//! What the evaluation found, per workload: the final's paired ratios, the oracle, the targets;
//! `results.md` and `results.csv`.

use std::fmt::Write;

use super::grid::{AXES, Screening, Setting};
use super::{Arm, Record, Stage, stat};
use crate::bench::{Provenance, Stat, quoted, sig3};

/// ACE within this share of the oracle.
const NEAR_ORACLE: f64 = 0.95;
/// The default is wrong where the oracle beats it by this much; ACE should then too.
const DEFAULT_WRONG: f64 = 1.3;
/// ACE never further below ACE off than this.
const NO_WORSE: f64 = 0.98;
/// On a phased workload: ACE at least this share of the fastest static setting's busy-time
/// throughput, with at most this multiple of LEAN's time-averaged resident set.
const PHASED_SPEED: f64 = 0.97;
const PHASED_MEMORY: f64 = 1.1;

/// One workload's figures.
pub struct Summary {
    pub workload: &'static str,
    pub threads: u32,
    /// ACE off, default knobs: throughput in the final.
    pub default: Option<Stat>,
    /// Per round of the final: ACE on over the defaults.
    pub ace: Option<Stat>,
    /// The best static setting of the final (the defaults when no finalist beat them), and
    /// its ratio to the defaults (`None` for the defaults themselves).
    pub oracle: Setting,
    pub oracle_ratio: Option<Stat>,
    /// Per round: ACE over the oracle.
    pub ace_vs_oracle: Option<Stat>,
    /// Every finalist's ratio to the defaults.
    pub finalists: Vec<(Setting, Option<Stat>)>,
    /// Peak RSS (KiB) of the defaults, ACE, the oracle.
    pub rss: [Option<Stat>; 3],
    /// ACE's runs: decisions, and per round the knobs it left, its changes and off reason.
    pub decisions: Option<Stat>,
    pub ace_runs: Vec<String>,
    /// The screening's sweeps, as text.
    pub screening: Vec<String>,
}

/// A target's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Met,
    NotMet,
    /// The target does not apply (the default is right).
    NotApplicable,
    NotMeasured,
}

impl Verdict {
    fn text(self) -> &'static str {
        match self {
            Verdict::Met => "met",
            Verdict::NotMet => "**not met**",
            Verdict::NotApplicable => "n/a",
            Verdict::NotMeasured => "not measured",
        }
    }

    fn at_least(ratio: Option<Stat>, floor: f64) -> Verdict {
        match ratio {
            Some(r) if r.median >= floor => Verdict::Met,
            Some(_) => Verdict::NotMet,
            None => Verdict::NotMeasured,
        }
    }
}

impl Summary {
    /// The oracle over the defaults: 1 when the defaults are the oracle.
    fn oracle_median(&self) -> Option<f64> {
        match self.oracle_ratio {
            Some(r) => Some(r.median),
            None => self.default.map(|_| 1.0),
        }
    }

    /// ACE ≥ 0.95× the oracle; ACE ≥ 1.3× the defaults where the oracle is; ACE ≥ 0.98× off.
    pub fn verdicts(&self) -> [Verdict; 3] {
        let wrong = match self.oracle_median() {
            Some(o) if o >= DEFAULT_WRONG => Verdict::at_least(self.ace, DEFAULT_WRONG),
            Some(_) => Verdict::NotApplicable,
            None => Verdict::NotMeasured,
        };
        [
            Verdict::at_least(self.ace_vs_oracle, NEAR_ORACLE),
            wrong,
            Verdict::at_least(self.ace, NO_WORSE),
        ]
    }
}

/// Per round of the final, `a`'s throughput over `b`'s.
fn paired(records: &[&Record], a: Arm, b: Arm) -> Option<Stat> {
    let value = |arm: Arm, round: u32| {
        records
            .iter()
            .find(|r| r.arm == arm && r.round == round)
            .and_then(|r| r.value())
    };
    stat(
        records
            .iter()
            .filter(|r| r.arm == a)
            .filter_map(|r| Some(r.value()? / value(b, r.round)?)),
    )
}

/// The workload's summary from its records and its screening.
pub fn summarize(
    workload: &'static str,
    threads: u32,
    records: &[Record],
    screening: &Screening,
) -> Summary {
    let finals: Vec<&Record> = records.iter().filter(|r| r.stage == Stage::Final).collect();
    let default = Arm::Static(Setting::DEFAULT);
    let of = |arm: Arm| finals.iter().copied().filter(move |r| r.arm == arm);
    let mut finalists: Vec<(Setting, Option<Stat>)> = Vec::new();
    for r in &finals {
        if let Arm::Static(s) = r.arm
            && s != Setting::DEFAULT
            && !finalists.iter().any(|f| f.0 == s)
        {
            finalists.push((s, paired(&finals, r.arm, default)));
        }
    }
    let (oracle, oracle_ratio) = finalists
        .iter()
        .filter_map(|&(s, r)| Some((s, r?)))
        .filter(|(_, r)| r.median > 1.0)
        .max_by(|a, b| a.1.median.total_cmp(&b.1.median))
        .map_or((Setting::DEFAULT, None), |(s, r)| (s, Some(r)));
    let rss =
        |arm: Arm| stat(of(arm).filter_map(|r| Some(r.result.as_ref().ok()?.rss_peak_kib as f64)));
    let ace_runs = of(Arm::Ace)
        .map(|r| {
            let field = |k| r.ace_field(k).unwrap_or("?");
            let off = match field("off_reason") {
                "-" => String::new(),
                why => format!(", switched off: {why}"),
            };
            format!(
                "round {}: {} decisions, knobs left {}, changes {}{off}",
                r.round + 1,
                field("decisions"),
                field("knobs"),
                field("changes"),
            )
        })
        .collect();
    Summary {
        workload,
        threads,
        default: stat(of(default).filter_map(Record::value)),
        ace: paired(&finals, Arm::Ace, default),
        oracle,
        oracle_ratio,
        ace_vs_oracle: paired(&finals, Arm::Ace, Arm::Static(oracle)),
        finalists,
        rss: [rss(default), rss(Arm::Ace), rss(Arm::Static(oracle))],
        decisions: stat(of(Arm::Ace).filter_map(|r| r.ace_field("decisions")?.parse::<f64>().ok())),
        ace_runs,
        screening: screening_lines(screening),
    }
}

/// One phased workload's figures: per arm, busy-time throughput and time-averaged RSS; per
/// round, ACE against the fastest static arm of that round and against LEAN's memory.
pub struct PhasedSummary {
    pub workload: &'static str,
    pub threads: u32,
    /// Per arm, in run order: its label, median M ops/s over busy time, median MiB.
    pub arms: Vec<(String, Option<Stat>, Option<Stat>)>,
    /// Per round: ACE's throughput over the fastest static arm's (FAST, BALANCED, the grid's).
    pub speed: Option<Stat>,
    /// The static arm fastest in most rounds.
    pub fastest: String,
    /// Per round: ACE's time-averaged RSS over LEAN's.
    pub memory: Option<Stat>,
    pub ace_runs: Vec<String>,
}

impl PhasedSummary {
    /// FAST's speed (≥ 0.97×) and LEAN's memory (≤ 1.1×).
    pub fn verdicts(&self) -> [Verdict; 2] {
        let memory = match self.memory {
            Some(m) if m.median <= PHASED_MEMORY => Verdict::Met,
            Some(_) => Verdict::NotMet,
            None => Verdict::NotMeasured,
        };
        [Verdict::at_least(self.speed, PHASED_SPEED), memory]
    }
}

/// A phased workload's summary from its final's records.
pub fn summarize_phased(workload: &'static str, threads: u32, records: &[Record]) -> PhasedSummary {
    let finals: Vec<&Record> = records.iter().filter(|r| r.stage == Stage::Final).collect();
    let mut order: Vec<Arm> = Vec::new();
    for r in &finals {
        if !order.contains(&r.arm) {
            order.push(r.arm);
        }
    }
    let of = |arm: Arm| finals.iter().copied().filter(move |r| r.arm == arm);
    // The default static setting is the BALANCED profile.
    let label = |arm: Arm| match arm {
        Arm::Static(Setting::DEFAULT) => "BALANCED".into(),
        _ => arm.label(),
    };
    let arms = order
        .iter()
        .map(|&arm| {
            let speed = stat(of(arm).filter_map(Record::value));
            let rss = stat(of(arm).filter_map(|r| r.rss_avg_kib));
            (label(arm), speed, rss)
        })
        .collect();
    let lean = Arm::Profile("acealloc-lean");
    let in_round = |arm: Arm, round: u32| finals.iter().find(|r| r.arm == arm && r.round == round);
    let mut wins: Vec<(Arm, usize)> = Vec::new();
    let mut speed = Vec::new();
    let mut memory = Vec::new();
    for ace in of(Arm::Ace) {
        let round = ace.round;
        let fastest = order
            .iter()
            .filter(|&&arm| arm != Arm::Ace && arm != lean)
            .filter_map(|&arm| Some((arm, in_round(arm, round)?.value()?)))
            .max_by(|a, b| a.1.total_cmp(&b.1));
        if let (Some(v), Some((arm, best))) = (ace.value(), fastest) {
            speed.push(v / best);
            match wins.iter_mut().find(|w| w.0 == arm) {
                Some(w) => w.1 += 1,
                None => wins.push((arm, 1)),
            }
        }
        if let (Some(a), Some(l)) = (
            ace.rss_avg_kib,
            in_round(lean, round).and_then(|r| r.rss_avg_kib),
        ) {
            memory.push(a / l);
        }
    }
    let fastest = wins
        .iter()
        .max_by_key(|w| w.1)
        .map_or("–".into(), |w| label(w.0));
    let ace_runs = of(Arm::Ace)
        .map(|r| {
            let field = |k| r.ace_field(k).unwrap_or("?");
            format!(
                "round {}: {} decisions, knobs left {}, changes {}, off: {}",
                r.round + 1,
                field("decisions"),
                field("knobs"),
                field("changes"),
                field("off_reason"),
            )
        })
        .collect();
    PhasedSummary {
        workload,
        threads,
        arms,
        speed: stat(speed),
        fastest,
        memory: stat(memory),
        ace_runs,
    }
}

/// The phased workloads' table: every arm's busy-time M ops/s and time-averaged MiB, then ACE
/// against the fastest static arm and against LEAN's memory, and the verdicts.
pub fn phased_table(summaries: &[PhasedSummary]) -> String {
    let mut out = String::from(
        "| workload | M ops/s (busy) / avg RSS MiB, per arm | ACE / fastest static | fastest | \
         ACE RSS / LEAN RSS | ACE ≥ 0.97× fastest | ACE ≤ 1.1× LEAN memory |\n\
         |---|---|---:|---|---:|---|---|\n",
    );
    for s in summaries {
        let label = if s.threads == 1 {
            s.workload.to_string()
        } else {
            format!("{} ×{}", s.workload, s.threads)
        };
        let arms: Vec<String> = s
            .arms
            .iter()
            .map(|(name, speed, rss)| {
                let speed = speed.map_or("–".into(), |v| sig3(v.median / 1e6));
                format!("{name} {speed} / {}", mib(*rss))
            })
            .collect();
        let [fast, lean] = s.verdicts().map(Verdict::text);
        let _ = writeln!(
            out,
            "| {label} | {} | {} | {} | {} | {fast} | {lean} |",
            arms.join(" · "),
            ratio(s.speed),
            s.fastest,
            ratio(s.memory),
        );
    }
    out
}

/// One line per sweep: the knob varied, every setting's median throughput.
fn screening_lines(screening: &Screening) -> Vec<String> {
    let mut lines = Vec::new();
    let sweeps = screening
        .runs
        .iter()
        .map(|s| s.sweep)
        .max()
        .map_or(0, |n| n + 1);
    for sweep in 0..sweeps {
        let runs: Vec<_> = screening.runs.iter().filter(|s| s.sweep == sweep).collect();
        let Some(first) = runs.first() else { continue };
        let what = first.axis.map_or("whole grid", |a| AXES[a]);
        let figures: Vec<String> = runs
            .iter()
            .map(|s| format!("{} {}", s.setting.label(), sig3(s.value.median / 1e6)))
            .collect();
        lines.push(format!(
            "sweep {} ({what}): {}",
            sweep + 1,
            figures.join(" · ")
        ));
    }
    lines.push(format!("end point: {}", screening.best.label()));
    lines
}

/// `1.02 (0.97–1.06)`, or `–`.
fn ratio(stat: Option<Stat>) -> String {
    stat.map_or("–".into(), |r| {
        if r.n > 1 {
            format!("{:.2} ({:.2}–{:.2})", r.median, r.min, r.max)
        } else {
            format!("{:.2}", r.median)
        }
    })
}

fn mib(stat: Option<Stat>) -> String {
    stat.map_or("–".into(), |s| sig3(s.median / 1024.0))
}

/// The table of the issue: one row per workload.
pub fn table(summaries: &[Summary]) -> String {
    let mut out = String::from(
        "| workload | default (M ops/s) | ACE on / default | oracle knobs | oracle / default | \
         ACE / oracle | peak RSS MiB default / ACE / oracle | ACE ≥ 0.95× oracle | \
         ACE ≥ 1.3× default where the default is wrong | ACE ≥ 0.98× ACE off |\n\
         |---|---:|---:|---|---:|---:|---:|---|---|---|\n",
    );
    for s in summaries {
        let label = if s.threads == 1 {
            s.workload.to_string()
        } else {
            format!("{} ×{}", s.workload, s.threads)
        };
        let default = s.default.map_or("–".into(), |d| {
            let spread = if d.n > 1 {
                format!(" ±{:.0}%", d.spread() * 100.0)
            } else {
                String::new()
            };
            format!("{}{spread}", sig3(d.median / 1e6))
        });
        let oracle_knobs = if s.oracle == Setting::DEFAULT {
            format!("{} (the defaults)", s.oracle.label())
        } else {
            s.oracle.label()
        };
        let oracle_ratio = s.oracle_ratio.map_or_else(
            || s.oracle_median().map_or("–".into(), |_| "1".into()),
            |r| ratio(Some(r)),
        );
        let [near, wrong, worse] = s.verdicts().map(Verdict::text);
        let _ = writeln!(
            out,
            "| {label} | {default} | {} | {oracle_knobs} | {oracle_ratio} | {} | {} / {} / {} | \
             {near} | {wrong} | {worse} |",
            ratio(s.ace),
            ratio(s.ace_vs_oracle),
            mib(s.rss[0]),
            mib(s.rss[1]),
            mib(s.rss[2]),
        );
    }
    out
}

/// How the evaluation ran.
pub struct Context {
    pub provenance: Provenance,
    pub options: String,
    pub quick: bool,
}

/// The whole of `results.md`.
pub fn markdown(ctx: &Context, summaries: &[Summary], phased: &[PhasedSummary]) -> String {
    let mut md = String::new();
    let kind = if ctx.quick {
        "quick run (a smoke test: figures not meaningful)"
    } else {
        "full run"
    };
    ctx.provenance.header(
        &mut md,
        "ACE against ACE off and the oracle",
        kind,
        "`cargo xtask ace-eval` (method: `docs/bench/ace-eval.md`)",
    );
    let _ = writeln!(md, "- options: `{}`", ctx.options);
    md.push_str(
        "- ratios are medians of per-round ratios (each round runs every arm once), with their \
         range; \"default\" is BALANCED with ACE off and `Knobs::DEFAULT` (64,32,256,1: capacity, \
         bundle, drain, release pages); knobs are CAP,BUNDLE,DRAIN,RELEASE\n\n",
    );
    md.push_str(&table(summaries));
    if !phased.is_empty() {
        md.push_str(
            "\n## Phased workloads\n\nThroughput over busy time (M ops/s) and time-averaged \
             resident set (MiB, 10 ms samples) per arm (medians); ACE against the fastest static \
             arm (FAST, BALANCED or the grid's settings) and against LEAN's memory, per round.\n\n",
        );
        md.push_str(&phased_table(phased));
        for s in phased {
            let _ = writeln!(md, "\n- {}:", s.workload);
            for line in &s.ace_runs {
                let _ = writeln!(md, "  - {line}");
            }
        }
    }
    md.push_str(
        "\n## The finalists\n\nEach static setting of the final over the defaults, per round.\n\n",
    );
    for s in summaries {
        let finalists: Vec<String> = s
            .finalists
            .iter()
            .map(|(setting, r)| format!("{} {}", setting.label(), ratio(*r)))
            .collect();
        let _ = writeln!(md, "- {}: {}", s.workload, finalists.join(" · "));
    }
    md.push_str("\n## What ACE did\n\nFrom each ACE run's status at its end (changes: among the decisions its trace still held).\n\n");
    for s in summaries {
        let _ = writeln!(
            md,
            "- {} (median {} decisions):",
            s.workload,
            s.decisions
                .map_or("–".into(), |d| format!("{:.0}", d.median))
        );
        for line in &s.ace_runs {
            let _ = writeln!(md, "  - {line}");
        }
    }
    md.push_str("\n## Screening\n\nMedian M ops/s of each static setting (CAP,BUNDLE,DRAIN,RELEASE) in each sweep.\n\n");
    for s in summaries {
        let _ = writeln!(md, "- {}:", s.workload);
        for line in &s.screening {
            let _ = writeln!(md, "  - {line}");
        }
    }
    md
}

/// Every run as a CSV row.
pub fn csv(records: &[Record]) -> String {
    let mut out = String::from(
        "workload,threads,stage,arm,knobs,round,secs,calls_per_sec,rss_peak_kib,rss_avg_kib,\
         complete,checks_ok,ace_decisions,ace_knobs,ace_changes,ace_off_reason,error\n",
    );
    for r in records {
        let stage = match r.stage {
            Stage::Screen(n) => format!("screen{}", n + 1),
            Stage::Final => "final".into(),
        };
        let (arm, knobs) = match r.arm {
            Arm::Static(s) => ("static", s.label()),
            Arm::Ace => ("ace", Setting::DEFAULT.label()),
            Arm::Profile(name) => (name, Setting::DEFAULT.label()),
        };
        let _ = write!(
            out,
            "{},{},{stage},{arm},{},{},{}",
            r.workload,
            r.threads,
            quoted(&knobs),
            r.round,
            r.secs
        );
        match &r.result {
            Ok(o) => {
                let _ = write!(
                    out,
                    ",{},{},{},{},{}",
                    o.value,
                    o.rss_peak_kib,
                    r.rss_avg_kib.map_or(String::new(), |v| format!("{v:.0}")),
                    u8::from(o.complete),
                    u8::from(o.ok)
                );
            }
            Err(_) => out.push_str(",,,,0,0"),
        }
        for key in ["decisions", "knobs", "changes", "off_reason"] {
            let _ = write!(out, ",{}", quoted(r.ace_field(key).unwrap_or("")));
        }
        let error = r.result.as_ref().err().map_or(String::new(), |e| quoted(e));
        let _ = writeln!(out, ",{error}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::grid::Screened;
    use super::*;
    use crate::bench::Outcome;

    fn record(arm: Arm, round: u32, value: f64) -> Record {
        Record {
            workload: "w",
            threads: 1,
            stage: Stage::Final,
            arm,
            round,
            secs: 1.0,
            result: Ok(Outcome {
                value,
                rss_peak_kib: 2048,
                complete: true,
                ok: true,
                getcpu_per_pair: None,
                fields: Vec::new(),
            }),
            ace: if arm == Arm::Ace {
                vec![
                    ("decisions".into(), "7".into()),
                    ("knobs".into(), "32,32,256,1".into()),
                    ("changes".into(), "capacity:3".into()),
                    ("off_reason".into(), "-".into()),
                ]
            } else {
                Vec::new()
            },
            rss_avg_kib: Some(1024.0),
        }
    }

    fn screening() -> Screening {
        Screening {
            runs: vec![Screened {
                setting: Setting::DEFAULT,
                sweep: 0,
                axis: Some(0),
                value: Stat {
                    median: 2e6,
                    min: 2e6,
                    max: 2e6,
                    n: 1,
                },
                score: 1.0,
            }],
            best: Setting::DEFAULT,
        }
    }

    const D: Arm = Arm::Static(Setting::DEFAULT);
    const F: Arm = Arm::Static(Setting([16, 64, 128, 1]));

    /// Three rounds where the finalist is 1.5× the defaults and ACE 1.2× (0.8× the oracle).
    fn wrong_default() -> Vec<Record> {
        let mut records = Vec::new();
        for (round, base) in [(0, 10e6), (1, 20e6), (2, 10e6)] {
            records.push(record(D, round, base));
            records.push(record(F, round, base * 1.5));
            records.push(record(Arm::Ace, round, base * 1.2));
        }
        records
    }

    #[test]
    fn the_oracle_is_the_best_finalist_and_ratios_pair_rounds() {
        let s = summarize("w", 1, &wrong_default(), &screening());
        assert_eq!(s.oracle, Setting([16, 64, 128, 1]));
        assert!((s.oracle_ratio.unwrap().median - 1.5).abs() < 1e-9);
        assert!((s.ace.unwrap().median - 1.2).abs() < 1e-9);
        assert!((s.ace_vs_oracle.unwrap().median - 0.8).abs() < 1e-9);
        assert_eq!(s.default.unwrap().median, 10e6);
        assert_eq!(
            s.verdicts(),
            [Verdict::NotMet, Verdict::NotMet, Verdict::Met]
        );
        assert_eq!(s.decisions.unwrap().median, 7.0);
        assert!(s.ace_runs[0].contains("knobs left 32,32,256,1"));
        let table = table(&[s]);
        assert!(table.contains("| w | 10.0 ±50% | 1.20 (1.20–1.20) | 16,64,128,1 | 1.50"));
    }

    #[test]
    fn the_defaults_are_the_oracle_when_no_finalist_beats_them() {
        let mut records = Vec::new();
        for round in 0..3 {
            records.push(record(D, round, 10.0));
            records.push(record(F, round, 9.0));
            records.push(record(Arm::Ace, round, 9.7));
        }
        let s = summarize("w", 1, &records, &screening());
        assert_eq!(s.oracle, Setting::DEFAULT);
        assert_eq!(s.oracle_ratio, None);
        assert!((s.ace_vs_oracle.unwrap().median - 0.97).abs() < 1e-9);
        // ACE 3% below off: near the oracle, but more than 2% below ACE off.
        assert_eq!(
            s.verdicts(),
            [Verdict::Met, Verdict::NotApplicable, Verdict::NotMet]
        );
        assert!(table(&[s]).contains("64,32,256,1 (the defaults) | 1 |"));
    }

    #[test]
    fn failed_runs_drop_out_of_the_ratios_and_into_the_csv() {
        let mut records = wrong_default();
        records[2].result = Err("killed".into());
        let s = summarize("w", 1, &records, &screening());
        assert_eq!(s.ace.unwrap().n, 2);
        let csv = csv(&records);
        assert_eq!(csv.lines().count(), 10);
        assert!(csv.contains("w,1,final,static,\"16,64,128,1\",0,1,15000000,2048,1024,1,1,,,,,"));
        assert!(
            csv.lines()
                .nth(3)
                .unwrap()
                .ends_with(",7,\"32,32,256,1\",capacity:3,-,killed")
        );
    }

    #[test]
    fn phased_ratios_take_the_fastest_static_arm_of_each_round_and_leans_memory() {
        let fast = Arm::Profile("acealloc-fast");
        let lean = Arm::Profile("acealloc-lean");
        let mut records = Vec::new();
        // Round 0: FAST is fastest; round 1: the grid's setting is.
        for (round, f, grid) in [(0, 12.0, 11.0), (1, 10.0, 15.0)] {
            records.push(record(D, round, 10.0));
            records.push(record(fast, round, f));
            records.push(record(F, round, grid));
            let mut l = record(lean, round, 5.0);
            l.rss_avg_kib = Some(1000.0);
            records.push(l);
            let mut a = record(Arm::Ace, round, 12.0);
            a.rss_avg_kib = Some(1050.0);
            records.push(a);
        }
        let s = summarize_phased("w", 1, &records);
        let speed = s.speed.unwrap();
        assert!((speed.min - 0.8).abs() < 1e-9 && (speed.max - 1.0).abs() < 1e-9);
        assert!((s.memory.unwrap().median - 1.05).abs() < 1e-9);
        assert_eq!(s.verdicts(), [Verdict::NotMet, Verdict::Met]);
        assert_eq!(s.arms[0].0, "BALANCED");
        assert!(phased_table(&[s]).contains("| 0.90 (0.80–1.00) |"));
    }
}

//! `cargo xtask demo [seconds]`: boots the demo kernel (`qemu-tests/kernels/demo`) on 4 CPUs in
//! QEMU, a phased workload with ACE tuning acealloc (BALANCED) from the timer interrupt, and
//! streams its serial console, a table of acealloc's state each second and ACE's decisions, to
//! the terminal; then boots the same workload under the static profiles with ACE off (the
//! `demo-fast`, `demo-no-ace` and `demo-lean` runs) and closes with lines setting ACE against
//! them: operations per second of busy time against FAST's, committed memory in the quiet
//! spells against LEAN's (ACE's aim: FAST's speed at LEAN's memory), and both against
//! BALANCED's. `cargo xtask demo --no-ace [seconds]` boots only BALANCED with ACE off.
//! `cargo xtask demo --hosted [seconds] [threads]` runs the hosted demo (`examples/demo.rs`)
//! instead.
//!
//! From a fresh clone it installs what it needs: the `x86_64-unknown-none` target (rustup) and,
//! when running as root, QEMU (apt-get); otherwise it says how to install QEMU.

use std::path::Path;

use crate::toolchain::{self, cargo};
use crate::{bench, kernels, qemu};

/// The demo kernel's run (ACE on), and its runs with ACE off: FAST, BALANCED, LEAN.
const DEMO: &str = "demo";
const DEMO_FAST: &str = "demo-fast";
const DEMO_NO_ACE: &str = "demo-no-ace";
const DEMO_LEAN: &str = "demo-lean";
/// Guest seconds of each run unless given: four 2 s quiet spells end in it, enough for ACE to
/// settle its purge delay (the test runs, `cargo xtask qemu`, take 8).
const DEMO_SECONDS: u64 = 16;
/// A run's time limit: its guest time this many times over (a loaded host stretches TCG's
/// guest time), plus a margin for boot (the build is done before).
const TIMEOUT_FACTOR: u64 = 3;
const TIMEOUT_MARGIN_SECS: u64 = 30;

/// Runs the demo `args` ask for; true if it passed.
pub fn run(root: &Path, args: &[String]) -> Result<bool, String> {
    let (names, args) = match args.split_first() {
        Some((flag, rest)) if flag == "--hosted" => return hosted(root, rest),
        Some((flag, rest)) if flag == "--no-ace" => (&[DEMO_NO_ACE][..], rest),
        _ => (&[DEMO, DEMO_FAST, DEMO_NO_ACE, DEMO_LEAN][..], args),
    };
    let seconds = match args {
        [seconds] => seconds
            .parse()
            .map_err(|_| format!("demo {seconds}: seconds must be a number"))?,
        [] => DEMO_SECONDS,
        _ => {
            return Err(
                "usage: cargo xtask demo [--no-ace] [seconds] | demo --hosted [seconds] [threads]"
                    .into(),
            );
        }
    };
    let mut passed = true;
    let mut results = Vec::new();
    for name in names {
        let (ok, result) = kernel(root, name, seconds)?;
        passed &= ok;
        results.push(result);
    }
    if let [Some(ace), Some(fast), Some(balanced), Some(lean)] = results[..] {
        for line in comparison(ace, fast, balanced, lean) {
            println!("{line}");
        }
    }
    Ok(passed)
}

/// A run's `demo: result` line: busy-time operations per second, quiet-spell committed KiB.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Outcome {
    ops_per_s: f64,
    quiet_kib: f64,
}

fn parse_result(log: &str) -> Option<Outcome> {
    let line = log.lines().find_map(|l| l.strip_prefix("demo: result "))?;
    let fields = bench::parse_fields(line);
    let number = |key: &str| bench::field(&fields, key)?.parse::<f64>().ok();
    Some(Outcome {
        ops_per_s: number("busy_ops_per_s")?,
        quiet_kib: number("quiet_committed_kib")?,
    })
}

/// The closing lines: BALANCED with ACE against FAST's speed and LEAN's memory (ACE's aim,
/// with the targets of the issue "ACE v2": at least 0.95x FAST's operations per second, at
/// most 1.2x LEAN's quiet-spell memory), and against BALANCED without it.
fn comparison(ace: Outcome, fast: Outcome, balanced: Outcome, lean: Outcome) -> [String; 2] {
    let speed = ace.ops_per_s / fast.ops_per_s.max(1.0);
    let memory = ace.quiet_kib / lean.quiet_kib.max(1.0);
    let verdict = |met: bool| if met { "aim met" } else { "aim not met" };
    [
        format!(
            "demo: BALANCED+ACE: {speed:.2}x FAST's operations per second of busy time \
             ({:.0} vs {:.0}; aim >= 0.95x: {}), {memory:.2}x LEAN's committed memory in quiet \
             spells ({:.0} vs {:.0} KiB; aim <= 1.2x: {})",
            ace.ops_per_s,
            fast.ops_per_s,
            verdict(speed >= 0.95),
            ace.quiet_kib,
            lean.quiet_kib,
            verdict(memory <= 1.2),
        ),
        format!(
            "demo: BALANCED+ACE vs BALANCED: {:.2}x the operations per second, {:.2}x the \
             committed memory in quiet spells ({:.0} vs {:.0} KiB)",
            ace.ops_per_s / balanced.ops_per_s.max(1.0),
            ace.quiet_kib / balanced.quiet_kib.max(1.0),
            ace.quiet_kib,
            balanced.quiet_kib,
        ),
    ]
}

/// Builds and boots the demo kernel's run `name`, for `seconds` of guest time:
/// whether it passed, and its result line.
fn kernel(root: &Path, name: &str, seconds: u64) -> Result<(bool, Option<Outcome>), String> {
    qemu::ensure_installed()?;
    toolchain::ensure_target(qemu::TARGET)?;
    let mut runs = kernels::discover(&root.join(kernels::KERNELS_DIR))?;
    runs.retain(|run| run.name == name);
    let mut run = runs.pop().ok_or(format!(
        "no kernel run named {name} in {}",
        kernels::KERNELS_DIR
    ))?;
    let others = run
        .append
        .split_whitespace()
        .filter(|w| !w.starts_with("seconds="));
    run.append = others
        .chain([format!("seconds={seconds}").as_str()])
        .collect::<Vec<_>>()
        .join(" ");
    run.timeout_secs = seconds * TIMEOUT_FACTOR + TIMEOUT_MARGIN_SECS;
    qemu::build(root, std::slice::from_ref(&run))?;
    let verdict = qemu::run(root, &run)?;
    println!("{}", verdict.line);
    let log = std::fs::read_to_string(qemu::log_path(root, &run)).unwrap_or_default();
    Ok((verdict.passed, parse_result(&log)))
}

/// The hosted demo: acealloc as the global allocator of a threaded program.
fn hosted(root: &Path, args: &[String]) -> Result<bool, String> {
    let status = cargo(root)
        .args([
            "run",
            "--release",
            "--features",
            "std",
            "--example",
            "demo",
            "--",
        ])
        .args(args)
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    Ok(status.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_closing_lines_set_ace_against_fast_speed_and_lean_memory() {
        let ace = parse_result(
            "demo:   8 quiet\ndemo: result busy_ops_per_s=285000 quiet_committed_kib=1200 ace=1\n",
        );
        assert_eq!(
            ace,
            Some(Outcome {
                ops_per_s: 285000.0,
                quiet_kib: 1200.0
            })
        );
        let outcome = |line: &str| parse_result(line).unwrap();
        let fast = outcome("demo: result busy_ops_per_s=300000 quiet_committed_kib=9000 ace=0");
        let balanced = outcome("demo: result busy_ops_per_s=290000 quiet_committed_kib=4800 ace=0");
        let lean = outcome("demo: result busy_ops_per_s=200000 quiet_committed_kib=800 ace=0");
        let [aim, own] = comparison(ace.unwrap(), fast, balanced, lean);
        assert!(aim.contains("0.95x FAST's operations per second"), "{aim}");
        assert!(aim.contains("aim >= 0.95x: aim met"), "{aim}");
        assert!(aim.contains("1.50x LEAN's committed memory"), "{aim}");
        assert!(aim.contains("aim <= 1.2x: aim not met"), "{aim}");
        assert!(
            own.contains("0.25x the committed memory in quiet spells (1200 vs 4800 KiB)"),
            "{own}"
        );
        assert_eq!(parse_result("demo: no result"), None);
    }
}

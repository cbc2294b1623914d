//! `cargo xtask demo [seconds]`: boots the demo kernel (`qemu-tests/kernels/demo`) on 4 CPUs in
//! QEMU, a phased workload with ACE tuning acealloc from the timer interrupt, and streams its
//! serial console, a table of acealloc's state each second and ACE's decisions, to the
//! terminal; then boots the same run with ACE off (the `demo-no-ace` run) and closes with a
//! line setting the two side by side: operations per second of busy time, committed memory in
//! the quiet spells. `cargo xtask demo --no-ace [seconds]` boots only the run with ACE off.
//! `cargo xtask demo --hosted [seconds] [threads]` runs the hosted demo (`examples/demo.rs`)
//! instead.
//!
//! From a fresh clone it installs what it needs: the `x86_64-unknown-none` target (rustup) and,
//! when running as root, QEMU (apt-get); otherwise it says how to install QEMU.

use std::path::Path;

use crate::toolchain::{self, cargo};
use crate::{bench, kernels, qemu};

/// The demo kernel's run (ACE on), and its run with ACE off.
const DEMO: &str = "demo";
const DEMO_NO_ACE: &str = "demo-no-ace";
/// Seconds a run may take beyond the guest time it is asked for (boot, build already done).
const TIMEOUT_MARGIN_SECS: u64 = 30;

/// Runs the demo `args` ask for; true if it passed.
pub fn run(root: &Path, args: &[String]) -> Result<bool, String> {
    let (names, args) = match args.split_first() {
        Some((flag, rest)) if flag == "--hosted" => return hosted(root, rest),
        Some((flag, rest)) if flag == "--no-ace" => (&[DEMO_NO_ACE][..], rest),
        _ => (&[DEMO, DEMO_NO_ACE][..], args),
    };
    let seconds = match args {
        [seconds] => Some(
            seconds
                .parse()
                .map_err(|_| format!("demo {seconds}: seconds must be a number"))?,
        ),
        [] => None,
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
        results.extend(result);
    }
    if let [on, off] = results[..] {
        println!("{}", comparison(on, off));
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

/// The closing line: ACE on against ACE off.
fn comparison(on: Outcome, off: Outcome) -> String {
    format!(
        "demo: ACE on vs off: {:.2}x the operations per second of busy time ({:.0} vs {:.0}), \
         {:.2}x the committed memory in quiet spells ({:.0} vs {:.0} KiB)",
        on.ops_per_s / off.ops_per_s.max(1.0),
        on.ops_per_s,
        off.ops_per_s,
        on.quiet_kib / off.quiet_kib.max(1.0),
        on.quiet_kib,
        off.quiet_kib
    )
}

/// Builds and boots the demo kernel's run `name`, for `seconds` of guest time if given:
/// whether it passed, and its result line.
fn kernel(
    root: &Path,
    name: &str,
    seconds: Option<u64>,
) -> Result<(bool, Option<Outcome>), String> {
    qemu::ensure_installed()?;
    toolchain::ensure_target(qemu::TARGET)?;
    let mut runs = kernels::discover(&root.join(kernels::KERNELS_DIR))?;
    runs.retain(|run| run.name == name);
    let mut run = runs.pop().ok_or(format!(
        "no kernel run named {name} in {}",
        kernels::KERNELS_DIR
    ))?;
    if let Some(seconds) = seconds {
        let others = run
            .append
            .split_whitespace()
            .filter(|w| !w.starts_with("seconds="));
        run.append = others
            .chain([format!("seconds={seconds}").as_str()])
            .collect::<Vec<_>>()
            .join(" ");
        run.timeout_secs = seconds + TIMEOUT_MARGIN_SECS;
    }
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
    fn the_closing_line_sets_the_result_lines_side_by_side() {
        let on = parse_result(
            "demo:   8 quiet\ndemo: result busy_ops_per_s=270000 quiet_committed_kib=1200 ace=1\n",
        );
        let off = parse_result("demo: result busy_ops_per_s=300000 quiet_committed_kib=4800 ace=0");
        assert_eq!(
            on,
            Some(Outcome {
                ops_per_s: 270000.0,
                quiet_kib: 1200.0
            })
        );
        let line = comparison(on.unwrap(), off.unwrap());
        assert!(line.contains("0.90x the operations per second"), "{line}");
        assert!(
            line.contains("0.25x the committed memory in quiet spells (1200 vs 4800 KiB)"),
            "{line}"
        );
        assert_eq!(parse_result("demo: no result"), None);
    }
}

//! `cargo xtask fuzz`: the libFuzzer targets of `fuzz/`, built and run without `cargo fuzz`.
//!
//! The targets keep cargo-fuzz's layout (`cargo fuzz run region_heap` works where cargo-fuzz is
//! installed), but installing cargo-fuzz costs CI a minute or two of compiling for what is one
//! `cargo build` with the flags it would pass: sanitizer coverage (inline 8-bit counters, PC
//! table, compare tracing, stack depth) for libFuzzer's feedback, AddressSanitizer, and
//! `--cfg fuzzing`, on the pinned nightly, release with debug assertions (fuzz/Cargo.toml).
//! Each target then runs for a bounded time on its corpus in `target/fuzz/corpus/<target>`
//! (kept between local runs); a crash leaves its input in `target/fuzz/artifacts/<target>/`.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use crate::Verdict;
use crate::toolchain::{NIGHTLY, ensure_nightly, nightly_cargo};

/// Every fuzz target, in the order they run.
pub const TARGETS: [&str; 3] = ["region_heap", "hosted_heap", "misuse"];

/// The host target: named explicitly, so build scripts and proc macros are not instrumented.
const HOST: &str = "x86_64-unknown-linux-gnu";

const RUSTFLAGS: &str = "-Cpasses=sancov-module \
    -Cllvm-args=-sanitizer-coverage-level=4 \
    -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
    -Cllvm-args=-sanitizer-coverage-pc-table \
    -Cllvm-args=-sanitizer-coverage-trace-compares \
    -Cllvm-args=-sanitizer-coverage-stack-depth \
    -Zsanitizer=address --cfg fuzzing -Dwarnings";

/// Builds every target; the error says why not.
pub fn build(root: &Path) -> Result<(), String> {
    ensure_nightly(&[])?;
    println!("xtask: building the fuzz targets ({NIGHTLY}, ASan, sanitizer coverage)");
    let status = nightly_cargo(&root.join("fuzz"))
        .args(["build", "--release", "--bins", "--target", HOST])
        .env("RUSTFLAGS", RUSTFLAGS)
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("building the fuzz targets failed ({status})"))
    }
}

/// Runs `target` (built) for `secs` seconds. Passes if libFuzzer ends without a finding.
pub fn run_target(root: &Path, target: &str, secs: u64) -> Verdict {
    let dirs = root.join("target/fuzz");
    let corpus = dirs.join("corpus").join(target);
    let artifacts = dirs.join("artifacts").join(target);
    let log = dirs.join(format!("{target}.log"));
    for dir in [&corpus, &artifacts] {
        if let Err(e) = fs::create_dir_all(dir) {
            return fail(target, &format!("cannot create {}: {e}", dir.display()));
        }
    }
    let binary = root
        .join("fuzz/target")
        .join(HOST)
        .join("release")
        .join(target);
    let Ok(log_file) = fs::File::create(&log) else {
        return fail(target, &format!("cannot create {}", log.display()));
    };
    let Ok(log_err) = log_file.try_clone() else {
        return fail(target, "cannot share the log file");
    };
    println!("=== fuzz {target} ({secs} s)");
    let started = Instant::now();
    // -len_control=0: long inputs from the start, as each run pays for a fresh heap.
    let status = Command::new(&binary)
        .arg(format!("-max_total_time={secs}"))
        .args(["-len_control=0", "-max_len=4096", "-rss_limit_mb=4096"])
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .arg(&corpus)
        .stdout(log_file)
        .stderr(log_err)
        .status();
    let elapsed = started.elapsed().as_secs_f64();
    let text = fs::read_to_string(&log).unwrap_or_default();
    match status {
        Ok(status) if status.success() => {
            let runs = done_line(&text).unwrap_or("no closing line");
            let line = format!("PASS fuzz {target} ({elapsed:.1} s: {runs})");
            println!("{line}");
            Verdict { passed: true, line }
        }
        Ok(status) => {
            let tail: Vec<&str> = text.lines().rev().take(60).collect();
            for line in tail.iter().rev() {
                println!("{line}");
            }
            fail(
                target,
                &format!(
                    "{status}; the input is in {} (log: {})",
                    artifacts.display(),
                    log.display()
                ),
            )
        }
        Err(e) => fail(target, &format!("cannot run {}: {e}", binary.display())),
    }
}

/// libFuzzer's closing line, "Done N runs in S second(s)".
fn done_line(text: &str) -> Option<&str> {
    text.lines().rev().find(|line| line.starts_with("Done "))
}

fn fail(target: &str, why: &str) -> Verdict {
    let line = format!("FAIL fuzz {target}: {why}");
    println!("{line}");
    Verdict {
        passed: false,
        line,
    }
}

/// `cargo xtask fuzz [--secs N] [TARGET...]`: every target (or those named) for N seconds
/// each (default 600); true if none found anything.
pub fn run(root: &Path, args: &[String]) -> Result<bool, String> {
    let mut secs = 600;
    let mut targets = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--secs" => {
                secs = args
                    .next()
                    .and_then(|s| s.parse().ok())
                    .ok_or("--secs takes a number of seconds")?;
            }
            name if TARGETS.contains(&name) => targets.push(name),
            other => {
                return Err(format!(
                    "unknown fuzz target or option {other} (targets: {})",
                    TARGETS.join(", ")
                ));
            }
        }
    }
    if targets.is_empty() {
        targets.extend(TARGETS);
    }
    build(root)?;
    let verdicts: Vec<Verdict> = targets.iter().map(|t| run_target(root, t, secs)).collect();
    Ok(crate::report(&verdicts))
}

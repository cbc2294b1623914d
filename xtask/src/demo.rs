//! `cargo xtask demo [seconds]`: boots the demo kernel (`qemu-tests/kernels/demo`) on 4 CPUs in
//! QEMU and streams its serial console, a table of acealloc's state each second, to the
//! terminal. `cargo xtask demo --ace [seconds]` boots it with ACE tuning the knobs (the
//! `demo-ace` run). `cargo xtask demo --hosted [seconds] [threads]` runs the hosted demo
//! (`examples/demo.rs`) instead.
//!
//! From a fresh clone it installs what it needs: the `x86_64-unknown-none` target (rustup) and,
//! when running as root, QEMU (apt-get); otherwise it says how to install QEMU.

use std::path::Path;

use crate::toolchain::{self, cargo};
use crate::{kernels, qemu};

/// The demo kernel's run, and its run with ACE.
const DEMO: &str = "demo";
const DEMO_ACE: &str = "demo-ace";
/// Seconds a run may take beyond the guest time it is asked for (boot, build already done).
const TIMEOUT_MARGIN_SECS: u64 = 30;

/// Runs the demo `args` ask for; true if it passed.
pub fn run(root: &Path, args: &[String]) -> Result<bool, String> {
    let (name, args) = match args.split_first() {
        Some((flag, rest)) if flag == "--hosted" => return hosted(root, rest),
        Some((flag, rest)) if flag == "--ace" => (DEMO_ACE, rest),
        _ => (DEMO, args),
    };
    match args {
        [seconds] => {
            let seconds = seconds
                .parse()
                .map_err(|_| format!("demo {seconds}: seconds must be a number"))?;
            kernel(root, name, Some(seconds))
        }
        [] => kernel(root, name, None),
        _ => Err(
            "usage: cargo xtask demo [--ace] [seconds] | demo --hosted [seconds] [threads]".into(),
        ),
    }
}

/// Builds and boots the demo kernel's run `name`, for `seconds` of guest time if given.
fn kernel(root: &Path, name: &str, seconds: Option<u64>) -> Result<bool, String> {
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
    Ok(verdict.passed)
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

//! Running cargo and making sure the Rust targets the tasks build for are installed.

use std::process::Command;

/// A `cargo` command (the cargo that runs xtask, when there is one) in directory `dir`.
pub fn cargo(dir: &std::path::Path) -> Command {
    let program = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(program);
    command.current_dir(dir);
    command
}

/// Installs `target` with rustup if it is missing. Without rustup the toolchain is taken as is.
pub fn ensure_target(target: &str) -> Result<(), String> {
    let Ok(output) = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
    else {
        return Ok(());
    };
    let installed = String::from_utf8_lossy(&output.stdout);
    if installed.lines().any(|line| line.trim() == target) {
        return Ok(());
    }
    println!("xtask: installing the {target} target");
    let status = Command::new("rustup")
        .args(["target", "add", target])
        .status()
        .map_err(|e| format!("cannot run rustup: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`rustup target add {target}` failed ({status})"))
    }
}

/// The nightly toolchain of the test tools (Miri, libFuzzer), pinned so that a new nightly's Miri
/// or sanitizers cannot change a verdict without a change here. The crate itself builds on stable.
pub const NIGHTLY: &str = "nightly-2026-05-20";

/// A `cargo` command of the pinned nightly in `dir`, for the test tools only.
pub fn nightly_cargo(dir: &std::path::Path) -> Command {
    let mut command = Command::new("rustup");
    command.args(["run", NIGHTLY, "cargo"]).current_dir(dir);
    // The stable cargo that runs xtask names itself and its rustc here; the nightly picks its own.
    for var in ["CARGO", "RUSTC", "RUSTDOC", "RUSTUP_TOOLCHAIN"] {
        command.env_remove(var);
    }
    command
}

/// Installs the pinned nightly with `components` (minimal profile) unless they are all there:
/// a fresh machine has no nightly, this one may lack a component. Fails, saying why, when they
/// cannot be installed: the steps that need them must not pass without running.
pub fn ensure_nightly(components: &[&str]) -> Result<(), String> {
    let listed = Command::new("rustup")
        .args(["component", "list", "--installed", "--toolchain", NIGHTLY])
        .output()
        .map_err(|e| format!("the Miri and fuzz steps need rustup to install {NIGHTLY}: {e}"))?;
    let installed = String::from_utf8_lossy(&listed.stdout);
    let has = |component: &str| {
        installed
            .lines()
            .any(|line| line == component || line.starts_with(&format!("{component}-")))
    };
    if listed.status.success() && components.iter().all(|c| has(c)) {
        return Ok(());
    }
    println!("xtask: installing {NIGHTLY} with {}", components.join(", "));
    let mut install = Command::new("rustup");
    install.args(["toolchain", "install", NIGHTLY, "--profile", "minimal"]);
    for component in components {
        install.args(["--component", component]);
    }
    let status = install
        .status()
        .map_err(|e| format!("cannot run rustup: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "`rustup toolchain install {NIGHTLY} --component {}` failed ({status})",
            components.join(",")
        ))
    }
}

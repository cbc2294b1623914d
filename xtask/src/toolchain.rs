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

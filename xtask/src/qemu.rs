//! Building the test kernels and running them in QEMU.
//!
//! A kernel ends its run through QEMU's `isa-debug-exit` device (port 0xF4): writing `v` makes
//! QEMU exit with status `(v << 1) | 1`. The runtime (`acealloc-kernel-rt`, module `qemu`) writes
//! 0x10 for success, 0x11 for failure and 0x12 for an unexpected CPU exception, so:
//!
//! | QEMU exit status | outcome                                                   |
//! |------------------|-----------------------------------------------------------|
//! | 33               | pass                                                      |
//! | 35               | failure (a failed check or a panic)                       |
//! | 37               | exception                                                 |
//! | killed           | timeout: the run exceeded its time limit                  |
//! | anything else    | error: 0 is a shutdown or triple fault (`-no-reboot`), 1 a QEMU error |
//!
//! A run passes when its outcome is the one it expects (normally pass).

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::Verdict;
use crate::child;
use crate::kernels::Run;
use crate::toolchain::cargo;

const QEMU: &str = "qemu-system-x86_64";
/// Debian's package of [`QEMU`].
const QEMU_PACKAGE: &str = "qemu-system-x86";
pub const TARGET: &str = "x86_64-unknown-none";
/// Where the kernels are built, relative to the repository root.
const KERNEL_TARGET_DIR: &str = "qemu-tests/target";
/// Every kernel is linked to run where it is loaded (see `.cargo/config.toml`).
const STATIC_RELOCATION: &str = "-Crelocation-model=static";
/// Where each run's serial output is kept, under the repository root.
const LOG_DIR: &str = "target/qemu-logs";
const MEMORY: &str = "512M";
const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Failure,
    Exception,
    Timeout,
    /// QEMU exited with a status the device cannot produce.
    Error(Option<i32>),
}

impl Outcome {
    /// The outcome named in kernel metadata (`expect = "..."`).
    pub fn from_name(name: &str) -> Option<Outcome> {
        match name {
            "pass" => Some(Outcome::Pass),
            "failure" => Some(Outcome::Failure),
            "exception" => Some(Outcome::Exception),
            "timeout" => Some(Outcome::Timeout),
            _ => None,
        }
    }

    fn from_exit_status(status: Option<i32>) -> Outcome {
        match status {
            Some(33) => Outcome::Pass,
            Some(35) => Outcome::Failure,
            Some(37) => Outcome::Exception,
            other => Outcome::Error(other),
        }
    }

    fn describe(self) -> String {
        match self {
            Outcome::Pass => "pass".to_string(),
            Outcome::Failure => "failure".to_string(),
            Outcome::Exception => "exception".to_string(),
            Outcome::Timeout => "timeout".to_string(),
            Outcome::Error(Some(0)) => "QEMU exit status 0 (shutdown or triple fault)".to_string(),
            Outcome::Error(Some(status)) => format!("QEMU exit status {status}"),
            Outcome::Error(None) => "QEMU killed by a signal".to_string(),
        }
    }
}

/// Fails with installation advice if QEMU is missing.
pub fn check_installed() -> Result<(), String> {
    match Command::new(QEMU).arg("--version").output() {
        Ok(output) if output.status.success() => Ok(()),
        Ok(output) => Err(format!("`{QEMU} --version` failed: {}", output.status)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(format!(
            "{QEMU} not found. On Debian or Ubuntu install it with\n    \
             apt-get install -y --no-install-recommends {QEMU_PACKAGE}"
        )),
        Err(e) => Err(format!("cannot run {QEMU}: {e}")),
    }
}

/// Installs QEMU when it is missing: with apt-get (Debian's `qemu-system-x86`) when running as
/// root, else fails with the command to run.
pub fn ensure_installed() -> Result<(), String> {
    let missing = match check_installed() {
        Ok(()) => return Ok(()),
        Err(missing) => missing,
    };
    if !running_as_root() {
        return Err(missing);
    }
    println!("xtask: installing QEMU: apt-get install {QEMU_PACKAGE}");
    let apt_get = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .map_err(|e| format!("cannot run apt-get ({e}); {missing}"))
    };
    apt_get(&["update", "-qq"])?;
    let status = apt_get(&[
        "install",
        "-y",
        "-qq",
        "--no-install-recommends",
        QEMU_PACKAGE,
    ])?;
    if !status.success() {
        return Err(format!("apt-get install {QEMU_PACKAGE} failed ({status})"));
    }
    check_installed()
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).trim() == "0")
}

/// Builds the kernels of `runs` (release profile of the qemu-tests workspace).
pub fn build(root: &Path, runs: &[Run]) -> Result<(), String> {
    let mut command = cargo(&root.join("qemu-tests"));
    command
        .args(["build", "--release", "--target", TARGET, "--target-dir"])
        .arg(root.join(KERNEL_TARGET_DIR));
    let mut packages: Vec<&str> = runs.iter().map(|run| run.package.as_str()).collect();
    packages.dedup();
    for package in packages {
        command.args(["--package", package]);
    }
    keep_static_relocation(&mut command);
    let status = command
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("building the kernels failed ({status})"))
    }
}

/// RUSTFLAGS in the environment replace the target's rustflags from `.cargo/config.toml`; carry
/// the one flag kernels cannot link without into them.
fn keep_static_relocation(command: &mut Command) {
    let flags: Option<Vec<String>> = match std::env::var("CARGO_ENCODED_RUSTFLAGS") {
        Ok(encoded) => Some(encoded.split('\x1f').map(String::from).collect()),
        Err(_) => std::env::var("RUSTFLAGS")
            .ok()
            .map(|flags| flags.split_whitespace().map(String::from).collect()),
    };
    if let Some(mut flags) = flags {
        flags.retain(|flag| !flag.is_empty());
        flags.push(STATIC_RELOCATION.to_string());
        command
            .env_remove("RUSTFLAGS")
            .env("CARGO_ENCODED_RUSTFLAGS", flags.join("\x1f"));
    }
}

/// Where [`run`] writes the serial console of `run`.
pub fn log_path(root: &Path, run: &Run) -> PathBuf {
    root.join(LOG_DIR).join(format!("{}.log", run.name))
}

/// Runs `run` in QEMU, streaming its serial output to stdout and `target/qemu-logs/<run>.log`.
pub fn run(root: &Path, run: &Run) -> Result<Verdict, String> {
    let log_dir = root.join(LOG_DIR);
    std::fs::create_dir_all(&log_dir)
        .map_err(|e| format!("cannot create {}: {e}", log_dir.display()))?;
    let log_path = log_path(root, run);
    let kernel = root
        .join(KERNEL_TARGET_DIR)
        .join(TARGET)
        .join("release")
        .join(&run.package);
    let log = File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    let log = Arc::new(Mutex::new(log));

    let mut command = Command::new(QEMU);
    command
        .args(["-accel", "tcg", "-m", MEMORY, "-smp", &run.smp.to_string()])
        // Not -nographic: it also turns on SeaBIOS's serial console, whose banner and escape
        // sequences would land in the log. -nodefaults drops the VGA card and NIC (and their ROMs).
        .args(["-nodefaults", "-display", "none", "-no-reboot"])
        .args(["-serial", "stdio"])
        .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"])
        .arg("-kernel")
        .arg(&kernel);
    if !run.append.is_empty() {
        command.args(["-append", &run.append]);
    }
    println!(
        "=== {} (smp {}, timeout {} s): {}",
        run.name,
        run.smp,
        run.timeout_secs,
        shell_words(&command)
    );

    let started = Instant::now();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {QEMU}: {e}"))?;
    let copiers = [
        copy_output(child.stdout.take(), io::stdout, &log),
        copy_output(child.stderr.take(), io::stderr, &log),
    ];
    let outcome = wait(&mut child, Duration::from_secs(run.timeout_secs))?;
    let elapsed = started.elapsed().as_secs_f64();
    for copier in copiers {
        copier.join().expect("output copier panicked");
    }

    let passed = outcome == run.expect;
    let line = if passed && outcome == Outcome::Pass {
        format!("PASS {} (smp {}, {elapsed:.2} s)", run.name, run.smp)
    } else if passed {
        format!(
            "PASS {} (smp {}, {elapsed:.2} s, {} as expected)",
            run.name,
            run.smp,
            outcome.describe()
        )
    } else {
        format!(
            "FAIL {}: expected {}, got {} after {elapsed:.2} s (smp {}); log {}",
            run.name,
            run.expect.describe(),
            outcome.describe(),
            run.smp,
            log_path.display()
        )
    };
    Ok(Verdict { passed, line })
}

/// Waits for QEMU to exit, killing it after `timeout`.
fn wait(child: &mut Child, timeout: Duration) -> Result<Outcome, String> {
    match child::wait_or_kill(child, timeout, POLL_INTERVAL, || {}) {
        Ok(Some(status)) => Ok(Outcome::from_exit_status(status.code())),
        Ok(None) => Ok(Outcome::Timeout),
        Err(e) => Err(format!("waiting for QEMU: {e}")),
    }
}

/// Copies everything from `source` to the console stream and to the log, until end of file.
fn copy_output<R, W>(
    source: Option<R>,
    console: fn() -> W,
    log: &Arc<Mutex<File>>,
) -> thread::JoinHandle<()>
where
    R: Read + Send + 'static,
    W: Write + 'static,
{
    let log = Arc::clone(log);
    thread::spawn(move || {
        let Some(mut source) = source else { return };
        let mut buffer = [0; 4096];
        // A read error ends the copy like end of file: QEMU is gone either way.
        while let Ok(read @ 1..) = source.read(&mut buffer) {
            let bytes = &buffer[..read];
            // Console and log are best effort: a full disk must not hang the run.
            let mut console = console();
            let _ = console.write_all(bytes).and_then(|()| console.flush());
            let _ = log.lock().expect("log lock poisoned").write_all(bytes);
        }
    })
}

/// The command as it could be typed into a shell.
fn shell_words(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|word| {
            let word = word.to_string_lossy();
            if word.contains([' ', '"', '\'']) {
                format!("'{word}'")
            } else {
                word.into_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

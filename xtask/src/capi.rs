//! The C library (`capi/`): building `libacealloc.so`, running any program on it
//! (`cargo xtask preload -- CMD...`) and the misuse suite (`cargo xtask misuse`).
//!
//! The misuse suite compiles each program of `capi/tests/misuse/` against the library and runs
//! it. A program's first line names what must happen (`suite.h` says how): `expect: ok` (exit
//! status 0, run with checks on and off), or a misuse kind that the allocator must report for
//! the address the program announced (`target 0x...` on stderr), with the process aborted
//! (`ACEALLOC_CHECKS=1`).
//!
//! `cargo xtask programs` runs real programs (`capi/tests/programs/*.sh`: python3's own tests,
//! sqlite3, git, gcc, a threaded C program) three times: on the C library's malloc, then under
//! `LD_PRELOAD=libacealloc.so` with checks on and with checks off; each run must succeed and print
//! exactly what the first one printed. A missing program fails its script, never skips it.

use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::Verdict;
use crate::bench::Stat;
use crate::child;
use crate::toolchain::cargo;

const MISUSE_DIR: &str = "capi/tests/misuse";
const PROGRAMS_DIR: &str = "capi/tests/programs";
/// Where each real program's runs keep their files, under the repository root.
const PROGRAMS_RUN_DIR: &str = "target/capi-programs";
/// Longest one run of a real program may take.
const PROGRAM_TIMEOUT: Duration = Duration::from_secs(600);
/// Where the suite's programs are built, under the repository root.
const BUILD_DIR: &str = "target/capi-tests";
/// Longest a program of the suite may run.
const TIMEOUT: Duration = Duration::from_secs(60);
/// How often a running program is checked on.
const POLL_INTERVAL: Duration = Duration::from_millis(5);
/// The signal `abort` raises (Linux).
const SIGABRT: i32 = 6;

/// Builds `libacealloc.so` (release) and returns its path.
pub fn library(root: &Path) -> Result<PathBuf, String> {
    let status = cargo(root)
        .args(["build", "--quiet", "--release", "--package", "libacealloc"])
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(format!("building libacealloc failed ({status})"));
    }
    Ok(root.join("target/release/libacealloc.so"))
}

/// `cargo xtask preload -- CMD...`: runs CMD with libacealloc preloaded; true if it succeeds.
pub fn preload(root: &Path, args: &[String]) -> Result<bool, String> {
    let args = match args.split_first() {
        Some((dashes, rest)) if dashes == "--" => rest,
        _ => args,
    };
    let (program, args) = args
        .split_first()
        .ok_or("preload needs a command: cargo xtask preload -- CMD...")?;
    let library = library(root)?;
    let status = Command::new(program)
        .args(args)
        .env("LD_PRELOAD", &library)
        .status()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    Ok(status.success())
}

/// The files of `dir` (under `root`) whose names end in `.ext`, sorted.
fn files(root: &Path, dir: &str, ext: &str) -> Result<Vec<PathBuf>, String> {
    let mut files: Vec<PathBuf> = fs::read_dir(root.join(dir))
        .map_err(|e| format!("{dir}: {e}"))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|e| e == ext))
        .collect();
    files.sort();
    Ok(files)
}

/// What a misuse-suite program must do.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Expect {
    Ok,
    /// Report this kind ("double free", ...) for the announced address, then abort.
    Misuse(String),
}

const KINDS: [&str; 4] = [
    "double free",
    "invalid free",
    "use after free",
    "layout mismatch",
];

fn expectation(source: &str) -> Result<Expect, String> {
    let first = source.lines().next().unwrap_or_default();
    let what = first
        .strip_prefix("// expect: ")
        .ok_or("the first line is not `// expect: ...`")?
        .trim();
    match what {
        "ok" => Ok(Expect::Ok),
        kind if KINDS.contains(&kind) => Ok(Expect::Misuse(kind.to_string())),
        other => Err(format!("unknown expectation `{other}`")),
    }
}

/// `cargo xtask misuse`: every program of the suite; prints one verdict per run.
pub fn misuse(root: &Path) -> Result<Vec<Verdict>, String> {
    let library = library(root)?;
    let lib_dir = library.parent().expect("the library is in a directory");
    let build = root.join(BUILD_DIR);
    fs::create_dir_all(&build).map_err(|e| format!("{}: {e}", build.display()))?;
    let mut verdicts = Vec::new();
    for source in &files(root, MISUSE_DIR, "c")? {
        let name = source.file_stem().unwrap().to_string_lossy().into_owned();
        let text = fs::read_to_string(source).map_err(|e| format!("{}: {e}", source.display()))?;
        let expect = expectation(&text).map_err(|e| format!("{}: {e}", source.display()))?;
        let binary = build.join(&name);
        if let Err(why) = compile(source, &binary, lib_dir) {
            let verdict = Verdict {
                passed: false,
                line: format!("FAIL misuse {name}: {why}"),
            };
            println!("{}", verdict.line);
            verdicts.push(verdict);
            continue;
        }
        let modes: &[&str] = match expect {
            Expect::Ok => &["1", "0"],
            Expect::Misuse(_) => &["1"],
        };
        for checks in modes {
            let label = format!("misuse {name} (checks {checks})");
            let mut command = Command::new(&binary);
            command.env("ACEALLOC_CHECKS", checks);
            let judged = run_with_timeout(&mut command, TIMEOUT).and_then(|output| {
                judge(&expect, &output).inspect_err(|_| {
                    let stderr = String::from_utf8_lossy(&output.stderr);
                    eprintln!("--- {label} stderr:\n{stderr}");
                })
            });
            let verdict = match judged {
                Ok(()) => Verdict {
                    passed: true,
                    line: format!("PASS {label}"),
                },
                Err(why) => Verdict {
                    passed: false,
                    line: format!("FAIL {label}: {why}"),
                },
            };
            println!("{}", verdict.line);
            verdicts.push(verdict);
        }
    }
    Ok(verdicts)
}

/// Compiles `source` against the library in `lib_dir`, found there at run time too.
fn compile(source: &Path, binary: &Path, lib_dir: &Path) -> Result<(), String> {
    let include = source.parent().expect("sources are in a directory");
    let status = Command::new("gcc")
        // No builtin malloc: the compiler may not fold or drop the calls under test.
        .args(["-O1", "-g", "-Wall", "-Werror", "-fno-builtin", "-pthread"])
        // The suite passes impossible sizes on purpose.
        .args(["-Wno-alloc-size-larger-than"])
        .arg("-I")
        .arg(include)
        .arg(source)
        .arg("-o")
        .arg(binary)
        .arg("-L")
        .arg(lib_dir)
        .arg(format!("-Wl,-rpath,{}", lib_dir.display()))
        .arg("-lacealloc")
        .status()
        .map_err(|e| format!("cannot run gcc: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("gcc failed on {} ({status})", source.display()))
    }
}

/// Whether a run did what its program's first line says.
fn judge(expect: &Expect, output: &Output) -> Result<(), String> {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let status = output.status;
    match expect {
        Expect::Ok => {
            if status.success() && !stderr.contains("acealloc:") {
                Ok(())
            } else {
                Err(format!("{status}, stderr: {}", stderr.trim()))
            }
        }
        Expect::Misuse(kind) => {
            let target = stderr
                .lines()
                .find_map(|line| line.strip_prefix("target "))
                .ok_or("the program announced no target address")?;
            let report = format!("acealloc: {kind} of {target}");
            if !stderr.lines().any(|line| line.starts_with(&report)) {
                return Err(format!("no `{report}` on stderr: {}", stderr.trim()));
            }
            if status.signal() != Some(SIGABRT) {
                return Err(format!(
                    "reported, but the process was not aborted ({status})"
                ));
            }
            Ok(())
        }
    }
}

/// Runs `command` to completion, its output read as it comes; killed after `timeout`.
pub fn run_with_timeout(command: &mut Command, timeout: Duration) -> Result<Output, String> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {command:?}: {e}"))?;
    let stdout = child::read_to_end(child.stdout.take());
    let stderr = child::read_to_end(child.stderr.take());
    let status = child::wait_or_kill(&mut child, timeout, POLL_INTERVAL, || {})
        .map_err(|e| format!("waiting for {command:?}: {e}"))?
        .ok_or(format!("timed out after {} s", timeout.as_secs()))?;
    Ok(Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

/// How a real program runs: its allocator and environment.
struct Mode {
    name: &'static str,
    preload: bool,
    checks: &'static str,
}

const MODES: [Mode; 3] = [
    Mode {
        name: "glibc",
        preload: false,
        checks: "",
    },
    Mode {
        name: "acealloc checks on",
        preload: true,
        checks: "1",
    },
    Mode {
        name: "acealloc checks off",
        preload: true,
        checks: "0",
    },
];

/// `cargo xtask programs`: every real program in every mode; one verdict per run.
pub fn programs(root: &Path) -> Result<Vec<Verdict>, String> {
    let library = library(root)?;
    let mut verdicts = Vec::new();
    for script in &files(root, PROGRAMS_DIR, "sh")? {
        let name = script.file_stem().unwrap().to_string_lossy().into_owned();
        let mut reference: Option<Vec<u8>> = None;
        for (index, mode) in MODES.iter().enumerate() {
            let dir = root
                .join(PROGRAMS_RUN_DIR)
                .join(&name)
                .join(index.to_string());
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            let mut command = Command::new("bash");
            command.arg(script).arg(&dir);
            if mode.preload {
                command
                    .env("LD_PRELOAD", &library)
                    .env("ACEALLOC_CHECKS", mode.checks);
            }
            let started = Instant::now();
            let result = run_with_timeout(&mut command, PROGRAM_TIMEOUT).and_then(|output| {
                if !output.status.success() {
                    let stderr = String::from_utf8_lossy(&output.stderr);
                    return Err(format!("{}: {}", output.status, tail(&stderr)));
                }
                fs::write(dir.join("stdout"), &output.stdout)
                    .map_err(|e| format!("{}: {e}", dir.display()))?;
                match &reference {
                    None => reference = Some(output.stdout),
                    Some(first) if *first == output.stdout => {}
                    Some(_) => {
                        return Err(format!(
                            "output differs from glibc's (diff {}/0/stdout {}/stdout)",
                            dir.parent().unwrap().display(),
                            dir.display()
                        ));
                    }
                }
                Ok(())
            });
            let secs = started.elapsed().as_secs_f64();
            let label = format!("program {name} ({})", mode.name);
            let verdict = match result {
                Ok(()) => Verdict {
                    passed: true,
                    line: format!("PASS {label} ({secs:.1} s)"),
                },
                Err(why) => Verdict {
                    passed: false,
                    line: format!("FAIL {label}: {why}"),
                },
            };
            println!("{}", verdict.line);
            let failed = !verdict.passed;
            verdicts.push(verdict);
            // Without glibc's output there is nothing to compare against.
            if failed && index == 0 {
                break;
            }
        }
    }
    Ok(verdicts)
}

/// The last lines of a program's stderr, for a failure's verdict line.
fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(5)..].join(" | ")
}

/// The C benchmark (`capi/bench/malloc_free.c`) and what it runs on.
const C_BENCH: &str = "capi/bench/malloc_free.c";
/// Debian's mimalloc (package libmimalloc2.0).
const MIMALLOC: &str = "/usr/lib/x86_64-linux-gnu/libmimalloc.so.2";

/// `cargo xtask c-bench [--rounds N] [--ops N] [--callgrind]`: the malloc/free loop on
/// libacealloc, Debian's libmimalloc and glibc, in interleaved rounds (each round runs all three,
/// the order rotating); prints each allocator's median and range and the per-round ratio
/// acealloc / mimalloc. With `--callgrind`, instead, the instructions per malloc/free pair
/// ([`instructions_per_pair`]).
pub fn bench(root: &Path, args: &[String]) -> Result<bool, String> {
    let mut rounds = 9usize;
    let mut ops = 20_000_000u64;
    let mut callgrind = false;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if arg == "--callgrind" {
            callgrind = true;
            continue;
        }
        let value = args.next().ok_or(format!("{arg} needs a value"))?;
        let number: u64 = value
            .parse()
            .map_err(|_| format!("{arg} {value}: not a number"))?;
        match arg.as_str() {
            "--rounds" => rounds = number.max(1) as usize,
            "--ops" => ops = number,
            other => return Err(format!("unknown option {other}")),
        }
    }
    let library = library(root)?;
    if !Path::new(MIMALLOC).exists() {
        return Err(format!(
            "{MIMALLOC} is missing (Debian: apt-get install libmimalloc2.0)"
        ));
    }
    let build = root.join(BUILD_DIR);
    fs::create_dir_all(&build).map_err(|e| format!("{}: {e}", build.display()))?;
    let binary = build.join("malloc_free");
    let status = Command::new("gcc")
        .args(["-O2", "-fno-builtin", "-o"])
        .arg(&binary)
        .arg(root.join(C_BENCH))
        .status()
        .map_err(|e| format!("cannot run gcc: {e}"))?;
    if !status.success() {
        return Err(format!("gcc failed on {C_BENCH} ({status})"));
    }
    let allocators: [(&str, Option<PathBuf>); 3] = [
        ("acealloc", Some(library)),
        ("mimalloc", Some(PathBuf::from(MIMALLOC))),
        ("glibc", None),
    ];
    if callgrind {
        return instructions_per_pair(&binary, &allocators);
    }
    let mut results = vec![Vec::new(); allocators.len()];
    for round in 0..rounds {
        for k in 0..allocators.len() {
            let index = (round + k) % allocators.len();
            let (name, preload) = &allocators[index];
            let mut command = Command::new(&binary);
            command.arg(ops.to_string());
            if let Some(preload) = preload {
                command.env("LD_PRELOAD", preload);
            }
            let output = run_with_timeout(&mut command, PROGRAM_TIMEOUT)?;
            let stdout = String::from_utf8_lossy(&output.stdout);
            let rate: f64 = stdout
                .split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
                .ok_or(format!("{name}: no figure in `{}`", stdout.trim()))?;
            println!("round {round} {name:<9} {:>7.1} M ops/s", rate / 1e6);
            results[index].push(rate);
        }
    }
    println!();
    for ((name, _), rates) in allocators.iter().zip(&results) {
        if let Some(Stat {
            median, min, max, ..
        }) = Stat::of(rates.clone())
        {
            println!(
                "{name:<9} median {:>6.1} M ops/s (range {:.1} .. {:.1}, {rounds} rounds)",
                median / 1e6,
                min / 1e6,
                max / 1e6
            );
        }
    }
    let ratios: Vec<f64> = results[0]
        .iter()
        .zip(&results[1])
        .map(|(ace, mi)| ace / mi)
        .collect();
    if let Some(Stat {
        median, min, max, ..
    }) = Stat::of(ratios)
    {
        println!("acealloc / mimalloc per round: median {median:.3}x (range {min:.3} .. {max:.3})");
    }
    Ok(true)
}

/// Steps of the loop a `--callgrind` count runs (and twice as many).
const CALLGRIND_OPS: u64 = 200_000;

/// Instructions per malloc/free pair of each allocator, loop included, counted by callgrind:
/// `(I(2N) - I(N)) / N` for runs of `N` and `2N` steps, so start-up and exit cancel out.
/// Deterministic, so fit for a loaded machine. Valgrind has no rseq (glibc registers none under
/// it): acealloc runs its try-lock path there, with glibc's `sched_getcpu` (about 30
/// instructions a call) for the CPU index; its restartable path, the default, is not what
/// this counts. Valgrind cannot reserve acealloc's 64 GiB of address space: 4 GiB here.
fn instructions_per_pair(
    binary: &Path,
    allocators: &[(&str, Option<PathBuf>)],
) -> Result<bool, String> {
    let count = |preload: &Option<PathBuf>, ops: u64| -> Result<u64, String> {
        let out = std::env::temp_dir().join(format!("acealloc-c-bench.{}.callgrind", ops));
        let mut command = Command::new("valgrind");
        command
            .arg("--tool=callgrind")
            .arg(format!("--callgrind-out-file={}", out.display()))
            .arg(binary)
            .arg(ops.to_string())
            .env("ACEALLOC_RESERVE_GB", "4");
        if let Some(preload) = preload {
            command.env("LD_PRELOAD", preload);
        }
        let output = run_with_timeout(&mut command, PROGRAM_TIMEOUT)?;
        let _ = fs::remove_file(&out);
        let stderr = String::from_utf8_lossy(&output.stderr);
        if !output.status.success() {
            return Err(format!("valgrind: {}: {}", output.status, tail(&stderr)));
        }
        stderr
            .lines()
            .find_map(|line| line.split("Collected : ").nth(1))
            .and_then(|n| n.trim().parse().ok())
            .ok_or(format!(
                "no instruction count from valgrind: {}",
                tail(&stderr)
            ))
    };
    for (name, preload) in allocators {
        let once = count(preload, CALLGRIND_OPS)?;
        let twice = count(preload, 2 * CALLGRIND_OPS)?;
        let per_pair = twice.saturating_sub(once) as f64 / CALLGRIND_OPS as f64;
        println!("{name:<9} {per_pair:>6.1} instructions per malloc/free pair (loop included)");
    }
    Ok(true)
}

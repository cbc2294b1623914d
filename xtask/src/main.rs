//! acealloc's task runner, run as `cargo xtask <task>`.
//!
//! - `qemu [--smp N] [--timeout SECS] [NAME...]` builds the test kernels of `qemu-tests/` for
//!   `x86_64-unknown-none`, runs each in QEMU and reports one line per run (`qemu.rs` says how a
//!   run is judged, `kernels.rs` how kernels and their runs are declared).
//! - `test` runs everything CI runs (`check.rs`), then every QEMU run.
//! - `preload -- CMD...` runs any program on `libacealloc.so`; `misuse` runs the C misuse
//!   suite; `programs` runs real programs on it and on glibc and compares their output;
//!   `c-bench` times a malloc/free loop on it against mimalloc (`capi.rs`).
//! - `demo` boots the demo kernel on 4 CPUs in QEMU (a phased workload, BALANCED with ACE),
//!   streaming its table to the terminal, then the same under FAST, BALANCED and LEAN with ACE
//!   off, and sets ACE against FAST's speed and LEAN's memory; `demo --no-ace` only BALANCED
//!   with ACE off; `demo --hosted` runs the hosted demo (`examples/demo.rs`)
//!   instead (`demo.rs`).
//! - `fuzz [--secs N] [TARGET...]` builds the libFuzzer targets of `fuzz/` and runs each for a
//!   bounded time (`fuzz.rs`).
//! - `bench` sets acealloc against the other allocators, one process per run, and writes the
//!   results and plots (`bench.rs`).
//! - `soak` runs `mixed-ws400` for minutes in one process and reports RSS drift and the spread
//!   of throughput (`soak.rs`).
//! - `ace-eval` sets ACE against ACE off and the best static knobs a grid search finds, on five
//!   workloads (`ace_eval.rs`).
//!
//! `qemu` and `test` end with the line `N passed, N failed` and exit non-zero on any failure.

mod ace_eval;
mod bench;
mod capi;
mod check;
mod child;
mod demo;
mod fuzz;
mod kernels;
mod plot;
mod qemu;
mod soak;
mod toolchain;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <task>

  qemu [--smp N] [--timeout SECS] [NAME...]
      Build the kernels under qemu-tests/kernels/ and run them in QEMU (TCG).
      NAME selects a kernel (all its runs) or one run such as smoke-fault;
      without NAME every run of every kernel runs. --smp and --timeout
      override the kernels' metadata for every run. Serial logs are kept in
      target/qemu-logs/<run>.log.
  test
      Everything CI runs: fmt, clippy, tests, the no_std builds, Miri, the
      fuzz targets briefly, then qemu.
  fuzz [--secs N] [TARGET...]
      Build the libFuzzer targets of fuzz/ (pinned nightly, ASan) and run
      each (region_heap, hosted_heap, misuse; default all) for N seconds
      (default 600) on its corpus in target/fuzz/corpus/. Crashing inputs
      go to target/fuzz/artifacts/<target>/.
  preload -- CMD...
      Build libacealloc.so (capi/) and run CMD with it preloaded (LD_PRELOAD):
      every malloc of the program goes to acealloc, set by the ACEALLOC_*
      variables (ACEALLOC_CHECKS=1: checked mode).
  misuse
      The C misuse suite (capi/tests/misuse/): each program compiled against
      libacealloc; misuse must be reported with its kind and address and abort,
      edge cases must behave as POSIX and glibc say (capi.rs).
  programs
      Real programs (capi/tests/programs/: python3's own tests, sqlite3, git,
      gcc, a threaded C program), each on glibc's malloc, then on libacealloc
      with checks on and off; their outputs must be identical.
  c-bench [--rounds N] [--ops N] [--callgrind]
      A C program calling only malloc and free in a loop (capi/bench/), on
      libacealloc, Debian's libmimalloc2.0 and glibc (LD_PRELOAD), in interleaved
      rounds: medians, ranges and the per-round ratio acealloc / mimalloc. With
      --callgrind: instructions per malloc/free pair instead (valgrind; acealloc
      on its try-lock path there, valgrind having no rseq).
  demo [--no-ace] [seconds]
      The demo: a kernel on 4 CPUs in QEMU runs busy and quiet spells with ACE
      ticked by every CPU's timer, and prints a table of the allocator's state
      each second and ACE's decisions (default 8 s of guest time); then the
      same under FAST, BALANCED and LEAN with ACE off, and lines setting ACE
      against FAST's speed and LEAN's memory.
      --no-ace: only BALANCED with ACE off.
  demo --hosted [seconds] [threads]
      The hosted demo: acealloc as the global allocator of a threaded workload.
  bench [--quick] [--workloads W,...] [--allocs A,...] [--repeats N] [--strace]
      acealloc against glibc, mimalloc, jemalloc, talc, linked_list_allocator,
      buddy_system_allocator and rlsf, one process per run (bench.rs). Writes
      bench-results/<date>/: results.csv, results.md, plots. --quick: every
      workload briefly, without jemalloc; fails if a data check fails (CI).
      Each run's time-averaged RSS (10 ms samples) and acealloc's OS calls are
      columns; --strace counts every allocator's mmap/munmap/madvise/mremap
      with strace -f -c (slows the runs).
  soak [--minutes N] [--profile fast|balanced|lean] [--epoch-secs S] [--phased] [--decommit M]
      mixed-ws400 on hosted acealloc in one process, in epochs (soak.rs): writes
      bench-results/soak/<profile>.csv and .png, reports RSS drift, throughput CV
      and provider calls per million operations.
  ace-eval [--quick] [--workloads W,...] [--repeats N] [--secs S] [--screen-secs S]
           [--screen-repeats N] [--finalists N] [--full-grid]
      ACE against ACE off (BALANCED, default knobs) and the oracle (the best static
      knobs of a grid search) on fragmentation, large-ws, realloc, mixed-ws400 and
      producer-consumer x2 (ace_eval.rs, docs/bench/ace-eval.md): a screening of
      short runs by coordinate descent over ACE's knob ladders (--full-grid: all
      400 settings), then ACE off, ACE on and the best settings side by side in
      interleaved rounds (defaults: 5 rounds of 6 s). Writes
      bench-results/ace-eval/<date>/results.csv and results.md. --quick: a tiny
      grid briefly; fails only if a run or its data checks fail.";

/// The verdict on one check or QEMU run.
pub struct Verdict {
    pub passed: bool,
    /// One line: `PASS name (...)` or `FAIL name: ...`.
    pub line: String,
}

/// Options of `cargo xtask qemu`.
#[derive(Default)]
struct QemuOptions {
    smp: Option<u32>,
    timeout_secs: Option<u64>,
    names: Vec<String>,
}

fn main() -> ExitCode {
    let root = repository_root();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (task, rest) = match args.split_first() {
        Some((task, rest)) => (task.as_str(), rest),
        None => ("help", &[][..]),
    };
    let result = match task {
        "qemu" => parse_qemu_options(rest)
            .and_then(|options| run_qemu(&root, &options))
            .map(|verdicts| report(&verdicts)),
        "test" if rest.is_empty() => run_tests(&root).map(|verdicts| report(&verdicts)),
        "preload" => capi::preload(&root, rest),
        "misuse" if rest.is_empty() => capi::misuse(&root).map(|verdicts| report(&verdicts)),
        "programs" if rest.is_empty() => capi::programs(&root).map(|verdicts| report(&verdicts)),
        "c-bench" => capi::bench(&root, rest),
        "demo" => demo::run(&root, rest),
        "bench" => bench::run(&root, rest),
        "ace-eval" => ace_eval::run(&root, rest),
        "soak" => soak::run(&root, rest),
        "fuzz" => fuzz::run(&root, rest),
        "help" | "--help" | "-h" => {
            println!("{USAGE}");
            Ok(true)
        }
        _ => Err(format!(
            "unknown task or arguments: {}\n{USAGE}",
            args.join(" ")
        )),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

fn parse_qemu_options(args: &[String]) -> Result<QemuOptions, String> {
    let mut options = QemuOptions::default();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut number = |flag: &str| -> Result<u64, String> {
            let value = args.next().ok_or(format!("{flag} needs a value"))?;
            value
                .parse()
                .map_err(|_| format!("{flag} {value}: not a number"))
        };
        match arg.as_str() {
            "--smp" => {
                let smp = number("--smp")?;
                let smp = u32::try_from(smp).map_err(|_| format!("--smp {smp}: too large"))?;
                options.smp = Some(smp);
            }
            "--timeout" => options.timeout_secs = Some(number("--timeout")?),
            flag if flag.starts_with('-') => return Err(format!("unknown option {flag}\n{USAGE}")),
            name => options.names.push(name.to_string()),
        }
    }
    Ok(options)
}

/// The repository root (the parent of this crate's directory).
fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in a subdirectory of the repository")
        .to_path_buf()
}

/// Builds and runs the selected kernels, printing each verdict as it comes.
fn run_qemu(root: &Path, options: &QemuOptions) -> Result<Vec<Verdict>, String> {
    let mut runs = kernels::discover(&root.join(kernels::KERNELS_DIR))?;
    kernels::select(&mut runs, &options.names)?;
    for run in &mut runs {
        if let Some(smp) = options.smp {
            run.smp = smp;
        }
        if let Some(timeout_secs) = options.timeout_secs {
            run.timeout_secs = timeout_secs;
        }
    }
    qemu::check_installed()?;
    toolchain::ensure_target(qemu::TARGET)?;
    qemu::build(root, &runs)?;

    let mut verdicts = Vec::new();
    for run in &runs {
        let verdict = qemu::run(root, run)?;
        println!("{}", verdict.line);
        verdicts.push(verdict);
    }
    Ok(verdicts)
}

/// The CI checks, then every QEMU run; a QEMU set-up error counts as one failure.
fn run_tests(root: &Path) -> Result<Vec<Verdict>, String> {
    let mut verdicts = check::run(root)?;
    match run_qemu(root, &QemuOptions::default()) {
        Ok(runs) => verdicts.extend(runs),
        Err(message) => {
            eprintln!("xtask: {message}");
            verdicts.push(Verdict {
                passed: false,
                line: format!("FAIL qemu: {message}"),
            });
        }
    }
    Ok(verdicts)
}

/// Repeats every verdict line, then prints `N passed, N failed`; true if nothing failed.
fn report(verdicts: &[Verdict]) -> bool {
    println!();
    for verdict in verdicts {
        println!("{}", verdict.line);
    }
    let passed = verdicts.iter().filter(|verdict| verdict.passed).count();
    let failed = verdicts.len() - passed;
    println!("{passed} passed, {failed} failed");
    failed == 0
}

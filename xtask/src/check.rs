//! `cargo xtask test`: everything CI runs, one step after another.
//!
//! Formatting and clippy (`-D warnings`) for the root workspace (xtask included) and the test
//! kernels; the root workspace's tests with the hosted build (`acealloc/std`), and the loom
//! models; the crate's docs with warnings (broken intra-doc links) as errors; the `no_std`
//! library builds for `x86_64-unknown-none` and `aarch64-unknown-none`; the C library's misuse
//! suite and real programs on it; Miri over the tests that it can run (on a pinned nightly that
//! this installs); each fuzz target for `FUZZ_SECS`; then every QEMU run.
//! A failing step does not stop the others; each step and each QEMU run counts once in the
//! closing `N passed, N failed` line.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::toolchain::{NIGHTLY, cargo, ensure_nightly, ensure_target, nightly_cargo};
use crate::{Verdict, fuzz};

/// Targets the library must build for without `std`.
const NO_STD_TARGETS: [&str; 2] = ["x86_64-unknown-none", "aarch64-unknown-none"];

/// A named command whose success is the check.
struct Step {
    name: String,
    command: Command,
    /// For a `cargo test` step that filters by name: how many tests must pass (a filter that
    /// matches nothing passes with 0 tests run). The step's output is read to count them.
    tests: Option<usize>,
}

fn step(name: &str, dir: &Path, args: &[&str]) -> Step {
    let mut command = cargo(dir);
    command.args(args);
    Step {
        name: name.to_string(),
        command,
        tests: None,
    }
}

/// The cargo steps, in the order they run.
fn steps(root: &Path) -> Vec<Step> {
    let kernels = root.join("qemu-tests");
    let mut steps = vec![
        step("fmt", root, &["fmt", "--all", "--check"]),
        step("fmt qemu-tests", &kernels, &["fmt", "--all", "--check"]),
        step("fmt fuzz", &root.join("fuzz"), &["fmt", "--all", "--check"]),
        step(
            "clippy",
            root,
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--features",
                "acealloc/std",
                "--",
                "-D",
                "warnings",
            ],
        ),
        step(
            "clippy qemu-tests",
            &kernels,
            &[
                "clippy",
                "--workspace",
                "--release",
                "--target",
                "x86_64-unknown-none",
                "--",
                "-D",
                "warnings",
            ],
        ),
        step(
            "test",
            root,
            &["test", "--workspace", "--features", "acealloc/std"],
        ),
    ];
    // The crate's docs as docs.rs builds them (every feature), with broken links as errors.
    let mut docs = step(
        "doc (RUSTDOCFLAGS=-D warnings)",
        root,
        &[
            "doc",
            "--no-deps",
            "--package",
            "acealloc",
            "--all-features",
        ],
    );
    docs.command.env("RUSTDOCFLAGS", "-D warnings");
    steps.push(docs);
    match loom_step(root) {
        Ok(step) => steps.push(step),
        // A step that cannot pass: its failure names the cause.
        Err(why) => steps.push(Step {
            name: format!("loom models: {why}"),
            command: Command::new("false"),
            tests: None,
        }),
    }
    for target in NO_STD_TARGETS {
        steps.push(step(
            &format!("build no_std {target}"),
            root,
            &["build", "--lib", "--target", target],
        ));
    }
    steps.push(step(
        "build no_std x86_64-unknown-none, feature log (ACE's decisions through `log`)",
        root,
        &[
            "build",
            "--lib",
            "--target",
            "x86_64-unknown-none",
            "--features",
            "log",
        ],
    ));
    // The C library for kernels: the freestanding build's lints and `libacealloc.a`.
    steps.push(step(
        "clippy capi freestanding (x86_64-unknown-none)",
        root,
        &[
            "clippy",
            "--package",
            "acealloc-capi",
            "--no-default-features",
            "--target",
            "x86_64-unknown-none",
            "--",
            "-D",
            "warnings",
        ],
    ));
    steps.push(step(
        "build libacealloc.a freestanding (x86_64-unknown-none)",
        root,
        &[
            "rustc",
            "--package",
            "libacealloc",
            "--release",
            "--no-default-features",
            "--target",
            "x86_64-unknown-none",
            "--crate-type",
            "staticlib",
        ],
    ));
    // The freestanding C API on the host, with a platform whose clock the test moves.
    steps.push(step(
        "test capi freestanding API (host)",
        root,
        &[
            "test",
            "--package",
            "acealloc-capi",
            "--no-default-features",
            "--test",
            "kernel_api",
        ],
    ));
    // The C library's misuse suite (C programs compiled against libacealloc, `capi.rs`).
    steps.push(step("misuse suite (capi/)", root, &["xtask", "misuse"]));
    // Real programs on glibc and on libacealloc, outputs compared (`capi.rs`).
    steps.push(step("real programs (capi/)", root, &["xtask", "programs"]));
    steps
}

/// The loom models of the lock-free protocols (`loom_models` beside each one; src/sync.rs
/// says which state they cover): the library's unit tests built with `--cfg loom` on stable,
/// release (loom runs each model thousands of times), in a target directory of their own so
/// that the flag does not rebuild the other steps' dependencies. Every `loom::model` call in
/// `src/` is one model test, and each must run and pass.
fn loom_step(root: &Path) -> Result<Step, String> {
    let mut command = cargo(root);
    command
        .args(["test", "--release", "--lib", "--", "loom_models::"])
        .env("RUSTFLAGS", "--cfg loom")
        .env("CARGO_TARGET_DIR", root.join("target").join("loom"));
    let models = count_in_sources(&root.join("src"), "loom::model(")?;
    if models == 0 {
        return Err("no `loom::model(` in src/".to_string());
    }
    Ok(Step {
        name: format!("loom models ({models})"),
        command,
        tests: Some(models),
    })
}

/// Lines of the `.rs` files under `dir` that contain `needle` outside a `//` comment.
fn count_in_sources(dir: &Path, needle: &str) -> Result<usize, String> {
    let mut count = 0;
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| format!("{}: {e}", dir.display()))?.path();
        if path.is_dir() {
            count += count_in_sources(&path, needle)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text =
                std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            count += text
                .lines()
                .filter(|line| {
                    line.split("//")
                        .next()
                        .is_some_and(|code| code.contains(needle))
                })
                .count();
        }
    }
    Ok(count)
}

/// Tests passed, summed over the `test result:` lines of libtest's output.
fn tests_passed(output: &str) -> usize {
    output
        .lines()
        .filter_map(|line| line.strip_prefix("test result: "))
        .filter_map(|rest| {
            let passed = rest.split("; ").next()?.rsplit(". ").next()?;
            passed.strip_suffix(" passed")?.parse::<usize>().ok()
        })
        .sum()
}

/// Miri flags of every Miri step. The allocator computes block addresses as integers
/// (`slab.start + i * size`, cast back to pointers), so provenance is permissive.
const MIRI_FLAGS: &str = "-Zmiri-permissive-provenance";

/// Unit tests whose only Miri failure under Stacked Borrows lies inside `bitvec`: every
/// `BitSlice` reference is a zero-size retag there, so bitvec's own reads through it fail
/// ("this is a zero-size retag"). These run under Tree Borrows, which accepts bitvec's pointer
/// encoding; bitvec stays in its sound use, a plain `BitSlice` behind `&mut` (no atomics).
/// - `provider::runs`: `PageRuns`, the page bitmap of the hosted and the kernel heap range;
/// - `arch::frames`: `FrameProvider`, which keeps a `PageRuns` and a `BitSlice` of backed pages.
const TREE_BORROWS_TESTS: [&str; 2] = ["provider::runs::", "arch::frames::"];

/// Unit tests that the Miri step leaves to the native run: minutes of interpretation for code
/// where Miri has nothing to find.
/// - `size_class`'s sweeps over every size: safe integer code (the module has no `unsafe`);
/// - ACE's scan of its sources for floating point: a text search;
/// - `page_heap`'s long runs: a 65536-entry page table, whose unsafe accesses the module's other
///   tests make on 256 entries.
const MIRI_SKIPPED: [&str; 4] = [
    "size_class::tests::every_size_maps_to_the_smallest_fitting_class",
    "size_class::tests::rounding_waste_is_at_most_an_eighth_above_128",
    "ace::tests::no_floating_point_in_ace_or_the_pmu_code",
    "page_heap::tests::long_runs_are_found_from_their_bins",
];

fn miri_step(name: &str, root: &Path, flags: &str, args: &[&str]) -> Step {
    let mut command = nightly_cargo(root);
    command
        .args(["miri", "test", "--features", "std"])
        .args(args)
        .env("MIRIFLAGS", flags);
    Step {
        name: format!("miri {name}"),
        command,
        tests: None,
    }
}

/// The Miri steps (Stacked Borrows unless named): the unit tests, the region heap, the model
/// test (a few proptest cases) and threads freeing each other's blocks. Tests that need what
/// Miri cannot emulate (the hosted heap's `mmap` reservation, glibc's rseq statics,
/// `perf_event_open`) are `#[cfg_attr(miri, ignore = ...)]` where they stand.
fn miri_steps(root: &Path) -> Vec<Step> {
    let mut lib = vec!["--lib", "--"];
    for test in TREE_BORROWS_TESTS.iter().chain(&MIRI_SKIPPED) {
        lib.extend(["--skip", test]);
    }
    let mut tree = vec!["--lib", "--"];
    tree.extend(TREE_BORROWS_TESTS);
    let tree_flags = format!("{MIRI_FLAGS} -Zmiri-tree-borrows");
    vec![
        miri_step("unit tests", root, MIRI_FLAGS, &lib),
        miri_step(
            "unit tests over bitvec (Tree Borrows)",
            root,
            &tree_flags,
            &tree,
        ),
        miri_step("region heap", root, MIRI_FLAGS, &["--test", "region"]),
        miri_step("model", root, MIRI_FLAGS, &["--test", "model"]),
        miri_step("threads", root, MIRI_FLAGS, &["--test", "threads"]),
    ]
}

/// Seconds each fuzz target runs in `cargo xtask test` (`cargo xtask fuzz` runs longer).
const FUZZ_SECS: u64 = 30;

/// Runs every step, printing each verdict as it comes.
pub fn run(root: &Path) -> Result<Vec<Verdict>, String> {
    for target in NO_STD_TARGETS {
        ensure_target(target)?;
    }
    let mut verdicts = Vec::new();
    let mut all = steps(root);
    match ensure_nightly(&["miri", "rust-src"]) {
        Ok(()) => all.extend(miri_steps(root)),
        Err(why) => verdicts.push(Verdict {
            passed: false,
            line: format!("FAIL miri: no {NIGHTLY} with Miri: {why}"),
        }),
    }
    for mut step in all {
        println!("=== {}", step.name);
        let started = Instant::now();
        let (status, ran) = match step.tests {
            None => step.command.status().map(|status| (status, None)),
            Some(_) => step.command.stderr(Stdio::inherit()).output().map(|out| {
                let stdout = String::from_utf8_lossy(&out.stdout);
                print!("{stdout}");
                (out.status, Some(tests_passed(&stdout)))
            }),
        }
        .map_err(|e| format!("cannot run cargo: {e}"))?;
        let elapsed = started.elapsed().as_secs_f64();
        let line = match (status.success(), ran, step.tests) {
            (false, ..) => format!("FAIL {}: {status}", step.name),
            (true, Some(ran), Some(expected)) if ran != expected => {
                format!(
                    "FAIL {}: {ran} tests passed, expected {expected}",
                    step.name
                )
            }
            _ => format!("PASS {} ({elapsed:.1} s)", step.name),
        };
        let passed = line.starts_with("PASS");
        println!("{line}");
        verdicts.push(Verdict { passed, line });
    }
    match fuzz::build(root) {
        Ok(()) => {
            for target in fuzz::TARGETS {
                verdicts.push(fuzz::run_target(root, target, FUZZ_SECS));
            }
        }
        Err(why) => {
            println!("FAIL fuzz: {why}");
            verdicts.push(Verdict {
                passed: false,
                line: format!("FAIL fuzz: {why}"),
            });
        }
    }
    Ok(verdicts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passed_tests_are_summed_over_every_result_line() {
        let output = "running 4 tests\n\
            test result: ok. 4 passed; 0 failed; 0 ignored; 0 measured; 76 filtered out\n\
            test result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 80 filtered out\n\
            test result: FAILED. 2 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out\n";
        assert_eq!(tests_passed(output), 6);
        assert_eq!(tests_passed("running 0 tests\n"), 0);
    }

    #[test]
    fn every_loom_model_in_the_sources_is_counted() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../src");
        let models = count_in_sources(&src, "loom::model(").unwrap();
        // cpu_cache, checked, allocator (requests), transfer.
        assert!(models >= 4, "{models} models");
    }
}

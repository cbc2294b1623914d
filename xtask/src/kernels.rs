//! Finding the test kernels and their runs.
//!
//! Every directory under `qemu-tests/kernels/` with a `Cargo.toml` is a kernel; adding a kernel
//! is adding a crate there. Its `[package.metadata.qemu]` table sets how it runs, and each
//! `[package.metadata.qemu.runs.NAME]` table adds a run named `<kernel>-NAME` that starts from
//! those settings:
//!
//! ```toml
//! [package.metadata.qemu]
//! smp = 4                      # CPUs (default 4)
//! append = "timer-hz=1000"     # kernel command line (default empty)
//! timeout = 60                 # seconds before the run is killed and fails (default 60)
//! expect = "pass"              # pass | failure | exception | timeout (default pass)
//!
//! [package.metadata.qemu.runs.fault]
//! append = "fault"
//! expect = "exception"
//! ```
//!
//! Only these keys, with integer or string values, are read; a misspelt key is an error.

use std::path::Path;

use crate::qemu::Outcome;

/// Where the kernels live, relative to the repository root.
pub const KERNELS_DIR: &str = "qemu-tests/kernels";

const DEFAULT_SMP: u32 = 4;
const DEFAULT_TIMEOUT_SECS: u64 = 60;
const QEMU_TABLE: &str = "package.metadata.qemu";
const RUNS_TABLE_PREFIX: &str = "package.metadata.qemu.runs.";

/// One QEMU run of a kernel.
#[derive(Debug)]
pub struct Run {
    /// The run's name: the kernel's, or `<kernel>-<variant>`.
    pub name: String,
    /// The kernel's package (and binary) name.
    pub package: String,
    pub smp: u32,
    pub append: String,
    pub timeout_secs: u64,
    pub expect: Outcome,
}

/// Settings of a metadata table; unset fields fall back to the enclosing table.
#[derive(Clone, Default)]
struct Settings {
    smp: Option<u32>,
    append: Option<String>,
    timeout_secs: Option<u64>,
    expect: Option<Outcome>,
}

impl Settings {
    fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        match key {
            "smp" => self.smp = Some(parse_integer(value)?),
            "append" => self.append = Some(parse_string(value)?),
            "timeout" => self.timeout_secs = Some(parse_integer(value)?),
            "expect" => {
                let name = parse_string(value)?;
                let outcome = Outcome::from_name(&name).ok_or(format!(
                    "expect = {value}: use pass, failure, exception or timeout"
                ))?;
                self.expect = Some(outcome);
            }
            _ => return Err(format!("unknown key {key}")),
        }
        Ok(())
    }

    fn over(self, base: &Settings) -> Settings {
        Settings {
            smp: self.smp.or(base.smp),
            append: self.append.or_else(|| base.append.clone()),
            timeout_secs: self.timeout_secs.or(base.timeout_secs),
            expect: self.expect.or(base.expect),
        }
    }

    fn into_run(self, name: String, package: &str) -> Run {
        Run {
            name,
            package: package.to_string(),
            smp: self.smp.unwrap_or(DEFAULT_SMP),
            append: self.append.unwrap_or_default(),
            timeout_secs: self.timeout_secs.unwrap_or(DEFAULT_TIMEOUT_SECS),
            expect: self.expect.unwrap_or(Outcome::Pass),
        }
    }
}

/// All runs of all kernels in `dir`, kernels in directory-name order.
pub fn discover(dir: &Path) -> Result<Vec<Run>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut manifests: Vec<_> = entries
        .filter_map(|entry| Some(entry.ok()?.path().join("Cargo.toml")))
        .filter(|manifest| manifest.is_file())
        .collect();
    manifests.sort();
    let mut runs = Vec::new();
    for manifest in manifests {
        let text = std::fs::read_to_string(&manifest)
            .map_err(|e| format!("{}: {e}", manifest.display()))?;
        runs.extend(parse_manifest(&text).map_err(|e| format!("{}: {e}", manifest.display()))?);
    }
    if runs.is_empty() {
        return Err(format!("no kernels in {}", dir.display()));
    }
    Ok(runs)
}

/// Keeps the runs that `names` select (a kernel name selects all its runs); all if none given.
pub fn select(runs: &mut Vec<Run>, names: &[String]) -> Result<(), String> {
    if let Some(unknown) = names.iter().find(|name| {
        !runs
            .iter()
            .any(|run| run.name == **name || run.package == **name)
    }) {
        let known: Vec<&str> = runs.iter().map(|run| run.name.as_str()).collect();
        return Err(format!(
            "no kernel or run named {unknown}; known runs: {}",
            known.join(", ")
        ));
    }
    if !names.is_empty() {
        runs.retain(|run| names.contains(&run.name) || names.contains(&run.package));
    }
    Ok(())
}

/// The runs a kernel's `Cargo.toml` declares: the default run, then one per variant table.
fn parse_manifest(text: &str) -> Result<Vec<Run>, String> {
    let mut table = String::new();
    let mut package = None;
    let mut defaults = Settings::default();
    let mut variants: Vec<(String, Settings)> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = strip_comment(line).trim();
        if line.starts_with('[') {
            table = line
                .trim_matches(|c| c == '[' || c == ']')
                .trim()
                .to_string();
            if let Some(variant) = table.strip_prefix(RUNS_TABLE_PREFIX) {
                variants.push((variant.to_string(), Settings::default()));
            }
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        let at_line = |e: String| format!("line {}: {e}", index + 1);
        if table == "package" && key == "name" {
            package = Some(parse_string(value).map_err(at_line)?);
        } else if table == QEMU_TABLE {
            defaults.set(key, value).map_err(at_line)?;
        } else if table.starts_with(RUNS_TABLE_PREFIX) {
            let (_, settings) = variants.last_mut().expect("pushed with its table header");
            settings.set(key, value).map_err(at_line)?;
        }
    }
    let package = package.ok_or("no package name")?;
    let mut runs = vec![defaults.clone().into_run(package.clone(), &package)];
    for (variant, settings) in variants {
        let name = format!("{package}-{variant}");
        runs.push(settings.over(&defaults).into_run(name, &package));
    }
    Ok(runs)
}

/// `line` without a `#` comment (a `#` inside a string does not start one).
fn strip_comment(line: &str) -> &str {
    let mut quote = None;
    let mut escaped = false;
    for (index, c) in line.char_indices() {
        match (quote, c) {
            (Some('"'), '\\') if !escaped => {
                escaped = true;
                continue;
            }
            (Some(q), c) if c == q && !escaped => quote = None,
            (None, '"' | '\'') => quote = Some(c),
            (None, '#') => return &line[..index],
            _ => {}
        }
        escaped = false;
    }
    line
}

fn parse_integer<T: std::str::FromStr>(value: &str) -> Result<T, String> {
    value
        .replace('_', "")
        .parse()
        .map_err(|_| format!("{value} is not a valid number here"))
}

/// A TOML basic (`"..."`, common escapes) or literal (`'...'`) string on one line.
fn parse_string(value: &str) -> Result<String, String> {
    if let Some(literal) = value
        .strip_prefix('\'')
        .and_then(|rest| rest.strip_suffix('\''))
    {
        return Ok(literal.to_string());
    }
    let inner = value
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
        .ok_or(format!("{value} is not a one-line string"))?;
    let mut result = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            result.push(c);
            continue;
        }
        result.push(match chars.next() {
            Some('"') => '"',
            Some('\\') => '\\',
            Some('n') => '\n',
            Some('t') => '\t',
            other => {
                return Err(format!(
                    "unsupported escape \\{} in {value}",
                    other.unwrap_or(' ')
                ));
            }
        });
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = r#"
[package]
name = "smoke" # the kernel
version = "0.1.0"

[dependencies]
acealloc-kernel-rt = { path = "../x" }

[package.metadata.qemu]
smp = 2
append = "a=1 # not a comment"
timeout = 1_0

[package.metadata.qemu.runs.fault]
append = 'fault'
expect = "exception"
"#;

    #[test]
    fn reads_default_run_and_variants() {
        let runs = parse_manifest(MANIFEST).unwrap();
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[0].name, "smoke");
        assert_eq!(
            (runs[0].smp, runs[0].append.as_str(), runs[0].timeout_secs),
            (2, "a=1 # not a comment", 10)
        );
        assert_eq!(runs[0].expect, Outcome::Pass);
        assert_eq!(
            (runs[1].name.as_str(), runs[1].package.as_str()),
            ("smoke-fault", "smoke")
        );
        assert_eq!((runs[1].smp, runs[1].append.as_str()), (2, "fault"));
        assert_eq!(runs[1].expect, Outcome::Exception);
    }

    #[test]
    fn rejects_unknown_keys_and_bad_values() {
        let typo = MANIFEST.replace("smp = 2", "spm = 2");
        assert!(
            parse_manifest(&typo)
                .unwrap_err()
                .contains("unknown key spm")
        );
        let bad = MANIFEST.replace("\"exception\"", "\"crash\"");
        assert!(parse_manifest(&bad).is_err());
    }

    #[test]
    fn selects_by_kernel_or_run_name() {
        let runs = || parse_manifest(MANIFEST).unwrap();
        let mut all = runs();
        select(&mut all, &[]).unwrap();
        assert_eq!(all.len(), 2);
        let mut kernel = runs();
        select(&mut kernel, &["smoke".to_string()]).unwrap();
        assert_eq!(kernel.len(), 2);
        let mut one = runs();
        select(&mut one, &["smoke-fault".to_string()]).unwrap();
        assert_eq!(one.len(), 1);
        assert!(select(&mut runs(), &["nope".to_string()]).is_err());
    }
}

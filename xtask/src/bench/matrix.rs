//! The matrix to run: the bench binary's cells, narrowed by the options, in interleaved order.

use std::path::Path;
use std::process::Command;

/// The allocator every ratio is taken against.
pub const REFERENCE: &str = "acealloc-balanced";

/// What a cell's figure is (the bench binary's `metric=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// Successful allocator calls per second: higher is better.
    Throughput,
    /// Fraction of a fixed region in use at the first failure: higher is better.
    Efficiency,
    /// Instructions per warm alloc+free pair, counted under callgrind: lower is better.
    PairCost,
}

/// One (workload, threads) cell and the allocators that run it.
#[derive(Clone, Debug)]
pub struct Cell {
    pub workload: String,
    pub threads: u32,
    pub metric: Metric,
    pub allocs: Vec<String>,
}

impl Cell {
    /// `workload` or `workload ×N` for multi-threaded cells.
    pub fn label(&self) -> String {
        if self.threads == 1 {
            self.workload.clone()
        } else {
            format!("{} ×{}", self.workload, self.threads)
        }
    }

    /// Whether one run says all there is (the figure does not depend on timing).
    pub fn deterministic(&self) -> bool {
        self.metric != Metric::Throughput
    }
}

/// One process to run: a cell's allocator in a round.
#[derive(Clone, Debug)]
pub struct Run {
    pub cell: usize,
    pub alloc: String,
    pub round: u32,
}

/// The cells `bench list` prints.
pub fn list(bench: &Path) -> Result<Vec<Cell>, String> {
    let output = Command::new(bench)
        .arg("list")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", bench.display()))?;
    if !output.status.success() {
        return Err(format!(
            "{} list failed: {}",
            bench.display(),
            output.status
        ));
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.strip_prefix("CELL "))
        .map(parse_cell)
        .collect()
}

fn parse_cell(fields: &str) -> Result<Cell, String> {
    let field = |key: &str| {
        fields
            .split(' ')
            .find_map(|f| f.strip_prefix(key)?.strip_prefix('='))
            .ok_or(format!("CELL line without {key}: {fields}"))
    };
    let metric = match field("metric")? {
        "throughput" => Metric::Throughput,
        "efficiency" => Metric::Efficiency,
        "pair-cost" => Metric::PairCost,
        other => return Err(format!("unknown metric {other}")),
    };
    Ok(Cell {
        workload: field("workload")?.to_string(),
        threads: field("threads")?
            .parse()
            .map_err(|_| format!("bad threads in {fields}"))?,
        metric,
        allocs: field("allocs")?.split(',').map(str::to_string).collect(),
    })
}

/// Keeps the cells and allocators named (all when a list is empty); errors on unknown names.
pub fn select(
    cells: &mut Vec<Cell>,
    workloads: &[String],
    allocs: &[String],
) -> Result<(), String> {
    for name in workloads {
        if !cells.iter().any(|c| &c.workload == name) {
            return Err(format!("unknown workload {name}"));
        }
    }
    for name in allocs {
        if !cells.iter().any(|c| c.allocs.contains(name)) {
            return Err(format!(
                "unknown allocator {name} (jemalloc is built for full runs only)"
            ));
        }
    }
    cells.retain(|c| workloads.is_empty() || workloads.contains(&c.workload));
    for cell in cells.iter_mut() {
        cell.allocs
            .retain(|a| allocs.is_empty() || allocs.contains(a));
    }
    cells.retain(|c| !c.allocs.is_empty());
    Ok(())
}

/// Every run, cell by cell; within a cell round by round, each round running every allocator
/// once (A B C A B C …), so that slow drifts of the machine's load hit every allocator alike.
/// Deterministic cells run one round.
pub fn plan(cells: &[Cell], repeats: u32) -> Vec<Run> {
    let mut runs = Vec::new();
    for (i, cell) in cells.iter().enumerate() {
        let rounds = if cell.deterministic() { 1 } else { repeats };
        for round in 0..rounds {
            for alloc in &cell.allocs {
                runs.push(Run {
                    cell: i,
                    alloc: alloc.clone(),
                    round,
                });
            }
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cells() -> Vec<Cell> {
        [
            "workload=mixed-ws400 threads=1 metric=throughput allocs=a,b",
            "workload=larson threads=2 metric=throughput allocs=a,b,c",
            "workload=fast-path threads=1 metric=pair-cost allocs=a,c",
        ]
        .into_iter()
        .map(|l| parse_cell(l).unwrap())
        .collect()
    }

    #[test]
    fn plans_interleave_allocators_and_run_deterministic_cells_once() {
        let runs = plan(&cells(), 2);
        let order: Vec<String> = runs
            .iter()
            .map(|r| format!("{}{}{}", r.cell, r.alloc, r.round))
            .collect();
        assert_eq!(
            order,
            [
                "0a0", "0b0", "0a1", "0b1", "1a0", "1b0", "1c0", "1a1", "1b1", "1c1", "2a0", "2c0"
            ]
        );
    }

    #[test]
    fn selection_narrows_and_rejects_unknown_names() {
        let mut c = cells();
        select(&mut c, &[], &["c".into()]).unwrap();
        assert_eq!(c.len(), 2);
        assert!(c.iter().all(|c| c.allocs == ["c"]));
        assert_eq!(c[0].label(), "larson ×2");
        assert!(select(&mut cells(), &["nope".into()], &[]).is_err());
        assert!(select(&mut cells(), &[], &["nope".into()]).is_err());
    }
}

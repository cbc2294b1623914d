//! The static knob settings the oracle is searched among, and the screening that searches them:
//! coordinate descent from the defaults (one knob's ladder at a time, the others at the best so
//! far, until a pass changes nothing or [`PASSES`] are done), or the whole grid.

use super::{Arm, Session, Stage, stat};
use crate::bench::Stat;

/// A static knob setting: cache capacity, bundle width, drain threshold, release pages (`Knobs`
/// in `src/config.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Setting(pub [u32; 4]);

impl Setting {
    /// `Knobs::DEFAULT`.
    pub const DEFAULT: Setting = Setting([64, 32, 256, 1]);

    /// `CAP,BUNDLE,DRAIN,RELEASE`, as `acealloc-bench run --knobs` takes it.
    pub fn label(self) -> String {
        let [c, b, d, r] = self.0;
        format!("{c},{b},{d},{r}")
    }

    fn with(self, axis: usize, value: u32) -> Setting {
        let mut s = self;
        s.0[axis] = value;
        s
    }
}

/// The knobs' names, in `Setting` order.
pub const AXES: [&str; 4] = ["capacity", "bundle", "drain", "release"];

/// ACE's own candidates (`CAPACITY`, `BUNDLE`, `DRAIN`, `RELEASE` in `src/ace/mod.rs`): the oracle is
/// searched where ACE can go.
const LADDERS: [&[u32]; 4] = [
    &[4, 8, 16, 32, 64],
    &[16, 32, 64, 128],
    &[32, 64, 128, 256, 512],
    &[1, 2, 4, 8],
];
/// `--quick`'s tiny grid: two capacities, the other knobs at their defaults.
const QUICK_LADDERS: [&[u32]; 4] = [&[16, 64], &[32], &[256], &[1]];

/// Most coordinate-descent passes over the knobs.
const PASSES: usize = 2;

/// The screening's figure for one setting in one sweep.
#[derive(Clone, Debug)]
pub struct Screened {
    pub setting: Setting,
    /// The sweep (from 0) and the knob it varied (`None`: the whole grid).
    pub sweep: usize,
    pub axis: Option<usize>,
    /// Throughput over the sweep's rounds.
    pub value: Stat,
    /// The median over the best median of its sweep (1 for the sweep's winner).
    pub score: f64,
}

/// What the screening found: every sweep's figures, and the best setting at its end.
pub struct Screening {
    pub runs: Vec<Screened>,
    pub best: Setting,
}

/// The ladders searched, and how.
pub struct Ladders {
    ladders: [&'static [u32]; 4],
    full_grid: bool,
}

impl Ladders {
    pub fn new(quick: bool, full_grid: bool) -> Ladders {
        Ladders {
            ladders: if quick { QUICK_LADDERS } else { LADDERS },
            full_grid,
        }
    }

    /// Every setting of the grid.
    fn grid(&self) -> Vec<Setting> {
        let mut grid = vec![Setting::DEFAULT];
        for (axis, ladder) in self.ladders.iter().enumerate() {
            grid = grid
                .iter()
                .flat_map(|s| ladder.iter().map(|&v| s.with(axis, v)))
                .collect();
        }
        grid
    }

    /// The most screening runs per round (the descent may stop after its first pass).
    pub fn screening_runs_at_most(&self) -> usize {
        if self.full_grid {
            self.grid().len()
        } else {
            let varied: usize = self
                .ladders
                .iter()
                .map(|l| l.len())
                .filter(|&n| n > 1)
                .sum();
            varied * PASSES
        }
    }

    /// Screens the settings for `session`'s workload: `repeats` rounds of `secs` per sweep.
    pub fn screen(&self, session: &mut Session, repeats: u32, secs: f64) -> Screening {
        if self.full_grid {
            let runs = sweep(session, 0, None, &self.grid(), repeats, secs);
            let best = winner(&runs).unwrap_or(Setting::DEFAULT);
            return Screening { runs, best };
        }
        let mut best = Setting::DEFAULT;
        let mut runs = Vec::new();
        let mut sweeps = 0;
        for _ in 0..PASSES {
            let start = best;
            for (axis, ladder) in self.ladders.iter().enumerate() {
                if ladder.len() < 2 {
                    continue;
                }
                let settings: Vec<Setting> = ladder.iter().map(|&v| best.with(axis, v)).collect();
                let swept = sweep(session, sweeps, Some(axis), &settings, repeats, secs);
                best = winner(&swept).unwrap_or(best);
                runs.extend(swept);
                sweeps += 1;
            }
            if best == start {
                break;
            }
        }
        Screening { runs, best }
    }
}

/// The setting with the best median throughput.
fn winner(runs: &[Screened]) -> Option<Setting> {
    runs.iter()
        .max_by(|a, b| a.value.median.total_cmp(&b.value.median))
        .map(|s| s.setting)
}

/// One sweep: every setting once per round, in an order rotated each round; each setting's
/// median (settings whose runs all failed are left out).
fn sweep(
    session: &mut Session,
    index: usize,
    axis: Option<usize>,
    settings: &[Setting],
    repeats: u32,
    secs: f64,
) -> Vec<Screened> {
    for (round, arm) in interleave(
        &settings.iter().map(|&s| Arm::Static(s)).collect::<Vec<_>>(),
        repeats,
    ) {
        session.run(Stage::Screen(index), arm, round, secs);
    }
    let mut runs: Vec<Screened> = settings
        .iter()
        .filter_map(|&setting| {
            let value = stat(
                session
                    .records
                    .iter()
                    .filter(|r| r.stage == Stage::Screen(index) && r.arm == Arm::Static(setting))
                    .filter_map(|r| r.value()),
            )?;
            Some(Screened {
                setting,
                sweep: index,
                axis,
                value,
                score: 0.0,
            })
        })
        .collect();
    let top = runs.iter().map(|s| s.value.median).fold(0.0, f64::max);
    for s in &mut runs {
        s.score = s.value.median / top;
    }
    runs
}

/// Every arm once per round for `repeats` rounds, the order rotated by one each round (so no
/// arm always runs first, after the same neighbour): `(round, arm)` in running order.
pub fn interleave(arms: &[Arm], repeats: u32) -> Vec<(u32, Arm)> {
    (0..repeats)
        .flat_map(|round| {
            let mut order = arms.to_vec();
            order.rotate_left(round as usize % arms.len().max(1));
            order.into_iter().map(move |arm| (round, arm))
        })
        .collect()
}

/// Up to `count` settings for the final besides the defaults: the descent's end point first,
/// then the others by their score within their sweep (each setting once).
pub fn finalists(screening: &Screening, count: usize) -> Vec<Setting> {
    let mut ranked: Vec<&Screened> = screening.runs.iter().collect();
    ranked.sort_by(|a, b| b.score.total_cmp(&a.score).then(b.sweep.cmp(&a.sweep)));
    let mut chosen: Vec<Setting> = Vec::new();
    for setting in std::iter::once(screening.best).chain(ranked.iter().map(|s| s.setting)) {
        if chosen.len() == count {
            break;
        }
        if setting != Setting::DEFAULT && !chosen.contains(&setting) {
            chosen.push(setting);
        }
    }
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    fn screened(setting: [u32; 4], sweep: usize, median: f64, score: f64) -> Screened {
        Screened {
            setting: Setting(setting),
            sweep,
            axis: Some(0),
            value: Stat {
                median,
                min: median,
                max: median,
                n: 1,
            },
            score,
        }
    }

    #[test]
    fn the_grid_is_the_product_of_the_ladders() {
        let full = Ladders::new(false, true);
        let grid = full.grid();
        assert_eq!(grid.len(), 5 * 4 * 5 * 4);
        assert!(grid.contains(&Setting::DEFAULT));
        assert!(grid.contains(&Setting([4, 128, 32, 8])));
        assert_eq!(full.screening_runs_at_most(), 400);
        assert_eq!(
            Ladders::new(false, false).screening_runs_at_most(),
            18 * PASSES
        );
        assert_eq!(
            Ladders::new(true, false).screening_runs_at_most(),
            2 * PASSES
        );
        assert_eq!(Setting([8, 16, 512, 2]).label(), "8,16,512,2");
    }

    #[test]
    fn interleaving_runs_every_arm_each_round_in_rotated_order() {
        let arms = [
            Arm::Static(Setting::DEFAULT),
            Arm::Ace,
            Arm::Static(Setting([4, 16, 32, 1])),
        ];
        let plan = interleave(&arms, 3);
        assert_eq!(plan.len(), 9);
        for round in 0..3 {
            let this: Vec<Arm> = plan.iter().filter(|p| p.0 == round).map(|p| p.1).collect();
            assert_eq!(this.len(), 3);
            assert!(arms.iter().all(|a| this.contains(a)));
            assert_eq!(this[0], arms[round as usize]);
        }
    }

    #[test]
    fn finalists_start_at_the_descents_end_and_skip_the_defaults() {
        let screening = Screening {
            runs: vec![
                screened([64, 32, 256, 1], 0, 10.0, 1.0),
                screened([32, 32, 256, 1], 0, 9.0, 0.9),
                screened([64, 64, 256, 1], 1, 12.0, 0.95),
                screened([16, 32, 256, 1], 0, 5.0, 0.5),
            ],
            best: Setting([64, 64, 128, 1]),
        };
        assert_eq!(
            finalists(&screening, 3),
            [
                Setting([64, 64, 128, 1]),
                Setting([64, 64, 256, 1]),
                Setting([32, 32, 256, 1])
            ]
        );
        let stay = Screening {
            best: Setting::DEFAULT,
            ..screening
        };
        assert_eq!(finalists(&stay, 1), [Setting([64, 64, 256, 1])]);
    }

    #[test]
    fn the_winner_has_the_best_median() {
        let runs = [
            screened([4, 16, 32, 1], 0, 3.0, 0.5),
            screened([8, 16, 32, 1], 0, 6.0, 1.0),
        ];
        assert_eq!(winner(&runs), Some(Setting([8, 16, 32, 1])));
        assert_eq!(winner(&[]), None);
    }
}

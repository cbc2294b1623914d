//! UCB1 (Auer, Cesa-Bianchi, Fischer 2002, "Finite-time Analysis of the
//! Multiarmed Bandit Problem") over a knob's ordered candidates, in integer
//! math, restricted to the leader's neighbourhood as OSUB does for unimodal
//! bandits (Combes and Proutière 2014, "Unimodal Bandits: Regret Lower
//! Bounds and Optimal Algorithms"): only the arm with the best mean so far
//! and its two neighbours are candidates. Throughput is taken to be
//! unimodal along a knob's ladder, so exploration walks from the default
//! one step at a time and never jumps to the far end. Among the
//! candidates: a never-played one first, else the largest
//! `mean + √(2 ln N / nᵢ) / 32` (see [`EXPLORATION_SHIFT`]). Rewards are in [`Q`] units (0 = worst, `Q` =
//! best; the engine's normalisation is documented at `Engine::rescore`).

use super::fixed::{Q, isqrt, ln_q};

/// The exploration bonus is divided by 2 to this power. UCB1's bonus is
/// sized for rewards that differ across their whole range; the engine's
/// rewards differ between neighbouring arms by a few hundredths of [`Q`]
/// (with noise of the same order), and at full size the bonus of the arm
/// played least always won: the bandit changed arm nearly every epoch and
/// spent half its time off the best one. At 1/32 an arm a tenth worse
/// than the leader is dropped after a play or two, while arms within a few
/// hundredths keep being tried now and then.
const EXPLORATION_SHIFT: u32 = 5;

/// Most arms a bandit has.
pub const MAX_ARMS: usize = 8;

/// A UCB1 bandit over up to [`MAX_ARMS`] arms.
#[derive(Clone, Copy, Debug)]
pub struct Ucb1 {
    arms: usize,
    plays: [u64; MAX_ARMS],
    /// Sum of each arm's rewards, in [`Q`] units.
    rewards: [u64; MAX_ARMS],
    total: u64,
}

impl Ucb1 {
    /// A bandit with `arms` arms (1 to [`MAX_ARMS`]), none played yet.
    pub const fn new(arms: usize) -> Ucb1 {
        assert!(arms > 0 && arms <= MAX_ARMS);
        Ucb1 {
            arms,
            plays: [0; MAX_ARMS],
            rewards: [0; MAX_ARMS],
            total: 0,
        }
    }

    /// The arm to play next: among the leader (`from` before any play) and
    /// its neighbours, a never-played one (the leader itself first), else
    /// the one with the highest upper confidence bound (the lowest index on
    /// a tie).
    pub fn choose(&self, from: usize) -> usize {
        let leader = self.leader().unwrap_or(from.min(self.arms - 1));
        let candidates = leader.saturating_sub(1)..=(leader + 1).min(self.arms - 1);
        if let Some(unplayed) = candidates
            .clone()
            .filter(|&a| self.plays[a] == 0)
            .min_by_key(|&a| a.abs_diff(leader))
        {
            return unplayed;
        }
        // √(2 ln N / n) in Q units is √(2 · ln N[Q] · Q / n).
        let ln_total = ln_q(self.total);
        let mut best = (leader, 0);
        for arm in candidates {
            let n = self.plays[arm];
            let bonus = isqrt(2 * ln_total * Q / n) >> EXPLORATION_SHIFT;
            let bound = self.rewards[arm] / n + bonus;
            if bound > best.1 {
                best = (arm, bound);
            }
        }
        best.0
    }

    /// The played arm with the best mean reward (the lowest index on a tie).
    fn leader(&self) -> Option<usize> {
        let mut leader: Option<(usize, u64)> = None;
        for arm in (0..self.arms).filter(|&a| self.plays[a] > 0) {
            let mean = self.rewards[arm] / self.plays[arm];
            if leader.is_none_or(|(_, best)| mean > best) {
                leader = Some((arm, mean));
            }
        }
        leader.map(|(arm, _)| arm)
    }

    /// Counts a play of `arm`; its reward follows through
    /// [`set_mean`](Self::set_mean).
    pub fn play(&mut self, arm: usize) {
        self.plays[arm] += 1;
        self.total += 1;
    }

    /// Sets `arm`'s mean reward (in [`Q`] units, capped at `Q`): the engine
    /// rescores every arm on one scale after each play.
    pub fn set_mean(&mut self, arm: usize, mean: u64) {
        self.rewards[arm] = mean.min(Q) * self.plays[arm];
    }

    /// Credits one play of `arm` with `reward` (in [`Q`] units).
    #[cfg(test)]
    pub fn reward(&mut self, arm: usize, reward: u64) {
        self.play(arm);
        self.rewards[arm] += reward.min(Q);
    }

    /// Times each arm was played.
    pub fn plays(&self) -> &[u64] {
        &self.plays[..self.arms]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_from_the_start_to_the_best_arm_and_stays_there() {
        // Unimodal payouts peaking at arm 2; the walk starts at arm 4.
        let pay = [Q * 3 / 10, Q / 2, Q * 8 / 10, Q * 6 / 10, Q * 4 / 10];
        let mut bandit = Ucb1::new(pay.len());
        let mut order = std::vec::Vec::new();
        for _ in 0..500 {
            let arm = bandit.choose(4);
            order.push(arm);
            bandit.reward(arm, pay[arm]);
        }
        assert_eq!(
            order[..3],
            [4, 3, 2],
            "one step at a time toward the better arms"
        );
        let plays = bandit.plays();
        assert_eq!(
            plays[0], 0,
            "never explored past the peak's neighbours: {plays:?}"
        );
        assert!(plays[2] > 300, "plays {plays:?}");
        assert!(
            plays[1] > 0 && plays[3] > 0,
            "the peak's neighbours are still tried"
        );
    }

    #[test]
    fn settles_on_the_best_arm_when_neighbours_differ_by_a_little() {
        // Arm 1 pays 0.53, its neighbours 0.50, each with ±0.02 of noise:
        // within sixty epochs the bandit should mostly play arm 1.
        let mut bandit = Ucb1::new(3);
        for epoch in 0..60u64 {
            let arm = bandit.choose(0);
            let noise = if epoch % 2 == 0 { Q * 2 / 100 } else { 0 };
            let pay = if arm == 1 { Q * 51 / 100 } else { Q * 48 / 100 };
            bandit.reward(arm, pay + noise);
        }
        let plays = bandit.plays();
        assert!(plays[1] >= 45, "plays {plays:?}");
    }

    #[test]
    fn a_far_better_arm_is_found_when_the_way_there_improves() {
        // Monotone payouts: the walk goes all the way down.
        let mut bandit = Ucb1::new(5);
        for _ in 0..300 {
            let arm = bandit.choose(4);
            bandit.reward(arm, Q * (5 - arm as u64) / 5);
        }
        let plays = bandit.plays();
        assert!(plays[0] > 200, "plays {plays:?}");
    }

    #[test]
    fn a_noisy_better_arm_still_wins() {
        // Deterministic noise: arm 1's payouts alternate 0.9 / 0.5 (mean
        // 0.7), arm 0 pays 0.6.
        let mut bandit = Ucb1::new(2);
        for _ in 0..400 {
            let arm = bandit.choose(0);
            let r = match arm {
                0 => Q * 6 / 10,
                _ if bandit.plays()[1].is_multiple_of(2) => Q * 9 / 10,
                _ => Q / 2,
            };
            bandit.reward(arm, r);
        }
        assert!(
            bandit.plays()[1] > bandit.plays()[0] * 2,
            "{:?}",
            bandit.plays()
        );
    }
}

//! UCB1 (Auer, Cesa-Bianchi, Fischer 2002, "Finite-time Analysis of the
//! Multiarmed Bandit Problem") over a knob's discrete candidates, in
//! integer math: play each arm once (nearest a given arm first, so that
//! exploration starts next to the default), then the arm with the largest
//! `mean + √(2 ln N / nᵢ)`, rewards in [`Q`] units (0 = worst, `Q` = best;
//! the engine's normalisation is documented at `Engine::reward`).

use super::fixed::{Q, isqrt, ln_q};

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

    /// The arm to play next: the never-played arm nearest `from`, else the
    /// one with the highest upper confidence bound (the lowest index on a
    /// tie).
    pub fn choose(&self, from: usize) -> usize {
        if let Some(unplayed) = (0..self.arms)
            .filter(|&a| self.plays[a] == 0)
            .min_by_key(|&a| a.abs_diff(from))
        {
            return unplayed;
        }
        // √(2 ln N / n) in Q units is √(2 · ln N[Q] · Q / n).
        let ln_total = ln_q(self.total);
        let mut best = (0, 0);
        for arm in 0..self.arms {
            let n = self.plays[arm];
            let bound = self.rewards[arm] / n + isqrt(2 * ln_total * Q / n);
            if bound > best.1 {
                best = (arm, bound);
            }
        }
        best.0
    }

    /// Credits `reward` (in [`Q`] units, capped at `Q`) to `arm`.
    pub fn reward(&mut self, arm: usize, reward: u64) {
        self.plays[arm] += 1;
        self.rewards[arm] += reward.min(Q);
        self.total += 1;
    }

    /// Times each arm was played.
    #[cfg(test)]
    pub fn plays(&self) -> &[u64] {
        &self.plays[..self.arms]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plays_every_arm_once_then_settles_on_the_best() {
        // Arm 2 pays 0.8, the others 0.3–0.6: after 500 rounds UCB1 has
        // played the best arm far more than any other.
        let pay = [Q * 3 / 10, Q / 2, Q * 8 / 10, Q * 6 / 10];
        let mut bandit = Ucb1::new(pay.len());
        for round in 0..500 {
            let arm = bandit.choose(3);
            if round < pay.len() {
                assert_eq!(arm, 3 - round, "each arm once first, from arm 3 outward");
            }
            bandit.reward(arm, pay[arm]);
        }
        let plays = bandit.plays();
        let best = (0..pay.len()).max_by_key(|&a| plays[a]).unwrap();
        assert_eq!(best, 2, "plays {plays:?}");
        assert!(plays[2] > 250, "plays {plays:?}");
        assert!(plays.iter().all(|&p| p > 0), "still explores: {plays:?}");
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

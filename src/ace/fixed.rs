//! Integer math for the control loops: ACE runs in interrupt handlers,
//! where kernels may not touch the FPU/SSE state, so everything is integer
//! or fixed point. Fractions are in [`Q`] units (16 fractional bits).

/// One, in fixed point: 16 fractional bits.
pub const Q: u64 = 1 << 16;

/// `part` over `whole` in [`Q`] units, capped at one (0 when `whole` is 0).
pub fn share_q(part: u64, whole: u64) -> u64 {
    if whole == 0 {
        return 0;
    }
    (u128::from(part) * u128::from(Q) / u128::from(whole)).min(u128::from(Q)) as u64
}

/// `count` per million of `per` (saturating; `per` of 0 counts as 1).
pub fn per_million(count: u64, per: u64) -> u64 {
    (u128::from(count) * 1_000_000 / u128::from(per.max(1))).min(u128::from(u64::MAX)) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_and_rates() {
        assert_eq!(share_q(1, 4), Q / 4);
        assert_eq!(share_q(9, 4), Q);
        assert_eq!(share_q(1, 0), 0);
        assert_eq!(per_million(3, 1000), 3000);
        assert_eq!(per_million(u64::MAX, 1), u64::MAX);
    }
}

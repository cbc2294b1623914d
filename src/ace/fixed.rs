//! Integer math for the control loops: ACE runs in interrupt handlers,
//! where kernels may not touch the FPU/SSE state, so everything is integer
//! or fixed point. Fractions are in [`Q`] units (16 fractional bits).

/// One, in fixed point: 16 fractional bits.
pub const Q: u64 = 1 << 16;
/// ln 2 in [`Q`] units (0.693147 × 65536, rounded).
const LN2_Q: u64 = 45_426;

/// ⌊√n⌋, exactly (bit-by-bit, 32 steps at most).
pub fn isqrt(n: u64) -> u64 {
    let (mut rem, mut root) = (n, 0u64);
    let mut bit = 1u64 << 62;
    while bit > n {
        bit >>= 2;
    }
    while bit != 0 {
        if rem >= root + bit {
            rem -= root + bit;
            root = (root >> 1) + bit;
        } else {
            root >>= 1;
        }
        bit >>= 2;
    }
    root
}

/// log₂ n in [`Q`] units, for n ≥ 1: the integer part from the leading
/// bit, the 16 fractional bits by repeated squaring of the mantissa (each
/// squaring that passes 2 yields a one bit); error below 2⁻¹⁶.
pub fn log2_q(n: u64) -> u64 {
    debug_assert!(n > 0);
    let int = 63 - u64::from(n.max(1).leading_zeros());
    // Mantissa in [1, 2) with 32 fractional bits.
    let mut m = (u128::from(n) << 32) >> int;
    let mut frac = 0;
    for bit in (0..16).rev() {
        m = (m * m) >> 32;
        if m >= 2 << 32 {
            m >>= 1;
            frac |= 1 << bit;
        }
    }
    int * Q + frac
}

/// ln n in [`Q`] units, for n ≥ 1.
pub fn ln_q(n: u64) -> u64 {
    log2_q(n) * LN2_Q / Q
}

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
    fn isqrt_is_exact() {
        for n in (0..100_000u64).chain([u64::MAX, u64::MAX - 1, 1 << 62, (1 << 32) - 1]) {
            let r = isqrt(n);
            assert!(u128::from(r) * u128::from(r) <= u128::from(n), "{n}");
            assert!(u128::from(r + 1) * u128::from(r + 1) > u128::from(n), "{n}");
        }
    }

    #[test]
    fn logarithms_are_within_a_thousandth() {
        // Reference values of ln n × 65536, rounded.
        let cases = [
            (1, 0),
            (2, 45_426),
            (3, 71_999),
            (10, 150_902),
            (1000, 452_707),
            (1 << 20, 908_522),
            (123_456_789, 1_221_028),
        ];
        for (n, want) in cases {
            let got = ln_q(n);
            assert!(
                got.abs_diff(want) <= want / 1000 + 2,
                "ln {n}: {got} vs {want}"
            );
        }
        assert_eq!(log2_q(1 << 40), 40 * Q);
    }

    #[test]
    fn shares_and_rates() {
        assert_eq!(share_q(1, 4), Q / 4);
        assert_eq!(share_q(9, 4), Q);
        assert_eq!(share_q(1, 0), 0);
        assert_eq!(per_million(3, 1000), 3000);
        assert_eq!(per_million(u64::MAX, 1), u64::MAX);
    }
}

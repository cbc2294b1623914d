//! Integer math for the control loops: ACE runs in interrupt handlers,
//! where kernels may not touch the FPU/SSE state, so everything is integer
//! math.

/// `count` per million of `per` (saturating; `per` of 0 counts as 1).
pub fn per_million(count: u64, per: u64) -> u64 {
    (u128::from(count) * 1_000_000 / u128::from(per.max(1))).min(u128::from(u64::MAX)) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates() {
        assert_eq!(per_million(3, 1000), 3000);
        assert_eq!(per_million(u64::MAX, 1), u64::MAX);
    }
}

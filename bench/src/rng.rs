//! A small reproducible random source: every run of a workload with the same seed makes the same
//! requests in the same order, whatever the allocator.

/// xorshift64* (Vigna): fast, good enough for choosing sizes, slots and actions.
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`; distinct seeds give unrelated streams (seeded through SplitMix64).
    pub fn new(seed: u64) -> Self {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `[0, n)`; `n > 0`.
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// Uniform in `[lo, hi]`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    /// Log-uniform in `[lo, hi]`: every binary order of magnitude is equally likely.
    pub fn log_uniform(&mut self, lo: usize, hi: usize) -> usize {
        let (lo_f, hi_f) = ((lo as f64).ln(), (hi as f64 + 1.0).ln());
        let unit = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        ((lo_f + unit * (hi_f - lo_f)).exp() as usize).clamp(lo, hi)
    }
}

#[cfg(test)]
mod tests {
    use super::Rng;

    #[test]
    fn ranges_stay_in_bounds() {
        let mut rng = Rng::new(7);
        for _ in 0..10_000 {
            assert!(rng.below(10) < 10);
            assert!((5..=9).contains(&rng.range(5, 9)));
            assert!((16..=65536).contains(&rng.log_uniform(16, 65536)));
        }
    }

    #[test]
    fn log_uniform_covers_every_octave() {
        let mut rng = Rng::new(1);
        let mut octaves = [0u32; 13];
        for _ in 0..100_000 {
            octaves[rng.log_uniform(16, 65535).ilog2() as usize - 4] += 1;
        }
        assert!(
            octaves[..12].iter().all(|&n| (7_000..10_000).contains(&n)),
            "{octaves:?}"
        );
    }

    #[test]
    fn same_seed_same_stream() {
        let (mut a, mut b) = (Rng::new(42), Rng::new(42));
        assert!((0..100).all(|_| a.next_u64() == b.next_u64()));
        assert_ne!(Rng::new(1).next_u64(), Rng::new(2).next_u64());
    }
}

//! The one seeded random source of a run. Its state is saved in checkpoints, so a resumed run draws the same
//! numbers as an uninterrupted one. Noise is drawn on the host and copied to the device: it is small
//! (batch × latent) next to the images, and it keeps CPU and GPU runs on the same sequence.

use crate::error::Result;
use candle_core::{Device, Tensor};
use rand::{Rng as _, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Rng(ChaCha8Rng);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(ChaCha8Rng::seed_from_u64(seed))
    }

    /// An independent stream derived from `seed` and a purpose tag (e.g. one per epoch's shuffle).
    pub fn derived(seed: u64, stream: u64) -> Self {
        let mut r = ChaCha8Rng::seed_from_u64(seed);
        r.set_stream(stream);
        Self(r)
    }

    pub fn normal_vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| StandardNormal.sample(&mut self.0)).collect()
    }

    /// `n` draws from U(lo, hi) for finite `lo` ≤ `hi`; `lo` repeated when the range is a single point.
    pub fn uniform_vec(&mut self, n: usize, lo: f32, hi: f32) -> Vec<f32> {
        debug_assert!(
            lo.is_finite() && hi.is_finite() && lo <= hi,
            "U({lo}, {hi})"
        );
        if lo >= hi {
            return vec![lo; n];
        }
        (0..n).map(|_| self.0.random_range(lo..hi)).collect()
    }

    /// Standard normal tensor of `shape` on `device`.
    pub fn normal(&mut self, shape: &[usize], device: &Device) -> Result<Tensor> {
        let n = shape.iter().product();
        Ok(Tensor::from_vec(self.normal_vec(n), shape, device)?)
    }

    pub fn below(&mut self, n: usize) -> usize {
        self.0.random_range(0..n)
    }

    /// Fisher-Yates shuffle.
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.0.random_range(0..=i);
            v.swap(i, j);
        }
    }

    pub fn inner(&mut self) -> &mut ChaCha8Rng {
        &mut self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_point_range_repeats_it() {
        assert_eq!(Rng::new(1).uniform_vec(3, 0.5, 0.5), vec![0.5; 3]);
        assert!(Rng::new(1)
            .uniform_vec(100, -1.0, 1.0)
            .iter()
            .all(|v| (-1.0..1.0).contains(v)));
    }

    #[test]
    fn state_round_trips_through_json() {
        let mut a = Rng::new(7);
        a.normal_vec(10);
        let mut b: Rng = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
        assert_eq!(a.normal_vec(5), b.normal_vec(5));
    }
}

//! The mixing functions `x = f(z)` of the synthetic datasets (docs/methods/sparsity.md, "Synthetic benchmarks";
//! `get_decoder` of the
//! mechanism-sparsity code's `data/synthetic.py`).
//!
//! - `nn`: `h = z W1 → LeakyReLU(0.2) → W2 → LeakyReLU → W3 → LeakyReLU → W4` with hidden width `x_dim` and no
//!   biases. Each `W` (`fan_in × fan_out`) is a standard-normal matrix orthogonalised as the reference does
//!   (`np.linalg.qr(W.T)[0].T`: the reduced QR of `Wᵀ`, transposed back, so `W` has orthonormal rows), then scaled
//!   by `sqrt(2/(1 + 0.2²)) · sqrt(2/(fan_in + fan_out))`. With `z_dim ≤ x_dim` every layer is injective and
//!   LeakyReLU is bi-Lipschitz, so `f` is injective: `0.2³ Π s_k ‖z − z'‖ ≤ ‖f(z) − f(z')‖ ≤ Π s_k ‖z − z'‖`.
//! - `linear`: `x = z W + b` (i.e. `Wᵀz + b` in column convention), `W` with `N(0, 1/z_dim)` entries and
//!   `b ~ N(0, I)`. The reference code has no linear manifold (it raises `NotImplementedError`); this one is
//!   ours, for a baseline where linear identifiability holds trivially.
//!
//! All draws come from the generator RNG in the reference's order (`W1, W2, W3, W4`, each row-major).

use super::Manifold;
use crate::rng::Rng;
use nalgebra::DMatrix;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;

/// The negative slope of the LeakyReLUs of the `nn` mixing.
pub const NEG_SLOPE: f64 = 0.2;

/// One dense layer `h ↦ h W + b`, `W` row-major `fan_in × fan_out`.
#[derive(Clone, Debug)]
struct Dense {
    w: Vec<f64>,
    b: Option<Vec<f64>>,
    fan_out: usize,
}

impl Dense {
    fn apply(&self, h: &[f64], out: &mut [f64]) {
        match &self.b {
            Some(b) => out.copy_from_slice(b),
            None => out.fill(0.0),
        }
        for (&hi, row) in h.iter().zip(self.w.chunks_exact(self.fan_out)) {
            for (o, &w) in out.iter_mut().zip(row) {
                *o += hi * w;
            }
        }
    }
}

/// A fixed mixing function `R^{z_dim} → R^{x_dim}`.
#[derive(Clone, Debug)]
pub struct Mixing {
    layers: Vec<Dense>,
    z_dim: usize,
    x_dim: usize,
}

fn normals(rng: &mut Rng, n: usize) -> Vec<f64> {
    (0..n).map(|_| StandardNormal.sample(rng.inner())).collect()
}

/// A `rows × cols` (rows ≤ cols) standard-normal matrix with orthonormal rows, as `np.linalg.qr(W.T)[0].T` of the
/// row-major draw `W`: the reduced Householder QR of `Wᵀ` (`cols × rows`), `Q` transposed back. Row-major.
pub fn orthogonal_rows(rows: usize, cols: usize, rng: &mut Rng) -> Vec<f64> {
    debug_assert!(rows <= cols);
    let w = normals(rng, rows * cols);
    // read column-major, the row-major `rows × cols` draw is `Wᵀ` (`cols × rows`)
    let q = DMatrix::from_column_slice(cols, rows, &w).qr().q();
    // `q` is `cols × rows` column-major, i.e. `qᵀ` row-major
    q.as_slice().to_vec()
}

impl Mixing {
    /// Draws the mixing from the generator RNG. Needs `1 ≤ z_dim ≤ x_dim` (checked by the caller).
    pub fn sample(manifold: Manifold, z_dim: usize, x_dim: usize, gen: &mut Rng) -> Self {
        let layers = match manifold {
            Manifold::Nn => {
                let h = x_dim;
                let gain = (2.0 / (1.0 + NEG_SLOPE * NEG_SLOPE)).sqrt();
                [(z_dim, h), (h, h), (h, h), (h, x_dim)]
                    .into_iter()
                    .map(|(fan_in, fan_out)| {
                        let scale = gain * (2.0 / (fan_in + fan_out) as f64).sqrt();
                        let mut w = orthogonal_rows(fan_in, fan_out, gen);
                        w.iter_mut().for_each(|v| *v *= scale);
                        Dense {
                            w,
                            b: None,
                            fan_out,
                        }
                    })
                    .collect()
            }
            Manifold::Linear => {
                let scale = 1.0 / (z_dim as f64).sqrt();
                let w = normals(gen, z_dim * x_dim)
                    .into_iter()
                    .map(|v| v * scale)
                    .collect();
                let b = normals(gen, x_dim);
                vec![Dense {
                    w,
                    b: Some(b),
                    fan_out: x_dim,
                }]
            }
        };
        Self {
            layers,
            z_dim,
            x_dim,
        }
    }

    pub fn z_dim(&self) -> usize {
        self.z_dim
    }

    pub fn x_dim(&self) -> usize {
        self.x_dim
    }

    /// `f(z)` of one row into `out`; `buf` is scratch of at least `2 · x_dim` values.
    pub fn apply_row(&self, z: &[f64], out: &mut [f64], buf: &mut [f64]) {
        let (a, b) = buf.split_at_mut(self.x_dim);
        let last = self.layers.len() - 1;
        let mut input: &[f64] = z;
        let mut cur: &mut [f64] = a;
        let mut next: &mut [f64] = b;
        for (k, layer) in self.layers.iter().enumerate() {
            if k == last {
                layer.apply(input, out);
                return;
            }
            let h = &mut cur[..layer.fan_out];
            layer.apply(input, h);
            for v in h.iter_mut() {
                *v = v.max(NEG_SLOPE * *v);
            }
            std::mem::swap(&mut cur, &mut next);
            input = &next[..layer.fan_out];
        }
    }

    /// `f` of `n` rows (row-major `n × z_dim`) → row-major `n × x_dim`, in parallel.
    pub fn apply(&self, z: &[f64]) -> Vec<f64> {
        let n = z.len() / self.z_dim;
        let mut x = vec![0.0; n * self.x_dim];
        x.par_chunks_mut(self.x_dim)
            .zip(z.par_chunks_exact(self.z_dim))
            .for_each_init(
                || vec![0.0; 2 * self.x_dim],
                |buf, (out, zr)| self.apply_row(zr, out, buf),
            );
        x
    }
}

/// Standardises each column of a row-major `n × d` matrix over its rows (mean 0, population std 1, as numpy's
/// `(x − x.mean(0)) / x.std(0)`); a constant column is only centred.
pub fn standardise_columns(x: &mut [f64], d: usize) {
    let n = x.len() / d;
    if n == 0 {
        return;
    }
    let mut mean = vec![0.0; d];
    for row in x.chunks_exact(d) {
        mean.iter_mut().zip(row).for_each(|(m, v)| *m += v);
    }
    mean.iter_mut().for_each(|m| *m /= n as f64);
    let mut var = vec![0.0; d];
    for row in x.chunks_exact(d) {
        for ((s, v), m) in var.iter_mut().zip(row).zip(&mean) {
            *s += (v - m) * (v - m);
        }
    }
    let inv: Vec<f64> = var
        .iter()
        .map(|s| {
            let sd = (s / n as f64).sqrt();
            if sd > 0.0 {
                1.0 / sd
            } else {
                1.0
            }
        })
        .collect();
    x.par_chunks_mut(d).for_each(|row| {
        for ((v, m), i) in row.iter_mut().zip(&mean).zip(&inv) {
            *v = (*v - m) * i;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dist(a: &[f64], b: &[f64]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y) * (x - y))
            .sum::<f64>()
            .sqrt()
    }

    #[test]
    fn nn_layers_have_scaled_orthonormal_rows() {
        let mut gen = Rng::new(265542);
        let m = Mixing::sample(Manifold::Nn, 10, 20, &mut gen);
        assert_eq!(m.layers.len(), 4);
        let gain2 = 2.0 / (1.0 + NEG_SLOPE * NEG_SLOPE);
        for l in &m.layers {
            let fan_in = l.w.len() / l.fan_out;
            let s2 = gain2 * 2.0 / (fan_in + l.fan_out) as f64;
            for i in 0..fan_in {
                for j in 0..fan_in {
                    let ri = &l.w[i * l.fan_out..(i + 1) * l.fan_out];
                    let rj = &l.w[j * l.fan_out..(j + 1) * l.fan_out];
                    let dot: f64 = ri.iter().zip(rj).map(|(a, b)| a * b).sum();
                    let want = if i == j { s2 } else { 0.0 };
                    assert!((dot - want).abs() < 1e-12, "layer {fan_in}×{}", l.fan_out);
                }
            }
        }
    }

    #[test]
    fn nn_mixing_is_bi_lipschitz_hence_injective() {
        let (z_dim, x_dim) = (10, 20);
        let mut gen = Rng::new(265542);
        let m = Mixing::sample(Manifold::Nn, z_dim, x_dim, &mut gen);
        let prod: f64 = m
            .layers
            .iter()
            .map(|l| {
                let fan_in = l.w.len() / l.fan_out;
                (2.0 / (1.0 + NEG_SLOPE * NEG_SLOPE)).sqrt()
                    * (2.0 / (fan_in + l.fan_out) as f64).sqrt()
            })
            .product();
        let (lo, hi) = (NEG_SLOPE.powi(3) * prod, prod);
        let mut rng = Rng::new(9);
        let mut buf = vec![0.0; 2 * x_dim];
        let (mut fa, mut fb) = (vec![0.0; x_dim], vec![0.0; x_dim]);
        let (mut min_ratio, mut max_ratio) = (f64::INFINITY, 0.0f64);
        for k in 0..2000 {
            let a = normals(&mut rng, z_dim);
            // pairs at every scale, down to nearly equal points
            let eps = 10f64.powi(-(k % 7));
            let b: Vec<f64> = a
                .iter()
                .zip(normals(&mut rng, z_dim))
                .map(|(x, d)| x + eps * d)
                .collect();
            m.apply_row(&a, &mut fa, &mut buf);
            m.apply_row(&b, &mut fb, &mut buf);
            let r = dist(&fa, &fb) / dist(&a, &b);
            min_ratio = min_ratio.min(r);
            max_ratio = max_ratio.max(r);
        }
        assert!(min_ratio >= lo * (1.0 - 1e-9), "{min_ratio} < {lo}");
        assert!(max_ratio <= hi * (1.0 + 1e-9), "{max_ratio} > {hi}");
        // and it is genuinely nonlinear: the ratio varies
        assert!(max_ratio / min_ratio > 1.5, "{min_ratio} {max_ratio}");
    }

    #[test]
    fn batch_and_row_application_agree_and_standardisation_is_per_column() {
        let mut gen = Rng::new(1);
        let m = Mixing::sample(Manifold::Linear, 3, 5, &mut gen);
        let z = normals(&mut gen, 7 * 3);
        let x = m.apply(&z);
        let mut buf = vec![0.0; 10];
        let mut row = vec![0.0; 5];
        m.apply_row(&z[6..9], &mut row, &mut buf);
        assert_eq!(&x[10..15], &row[..]);
        let mut y = x.clone();
        standardise_columns(&mut y, 5);
        for j in 0..5 {
            let c: Vec<f64> = y.iter().skip(j).step_by(5).copied().collect();
            let mean = c.iter().sum::<f64>() / 7.0;
            let var = c.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / 7.0;
            assert!(mean.abs() < 1e-12 && (var - 1.0).abs() < 1e-12);
        }
    }
}

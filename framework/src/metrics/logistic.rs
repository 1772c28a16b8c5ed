//! Multinomial logistic regression, the classifier of the β-VAE score (disentanglement_lib fits scikit-learn's
//! `LogisticRegression()`; since sklearn 0.22 its default is the multinomial model with an L2 penalty, C = 1).
//!
//! Objective (sklearn's, divided by C·n): `(1/n) Σ_i −log softmax(x_i W + b)[y_i] + ‖W‖² / (2 C n)`, with the
//! penalty on the weights only, not the intercepts. We minimise it by accelerated proximal gradient descent
//! (FISTA with gradient-based restarts; the ridge penalty is the proximal step) on standardised features,
//! keeping the penalty on the original-scale weights, so the optimum is sklearn's. The step is 1/L with
//! L = ½ λ_max(X̃ᵀX̃ / n) (Böhning's bound on the softmax Hessian, X̃ = standardised features and a ones column).
//! sklearn stops lbfgs after 100 iterations; we iterate to a gradient-mapping norm below `tol` or `max_iter`.

use crate::error::{Error, Result};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Settings of [`LogisticRegression::fit`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogisticConfig {
    /// Inverse L2 strength, as sklearn's `C`.
    pub c: f64,
    pub max_iter: usize,
    /// Stop when the largest entry of the gradient mapping is below this.
    pub tol: f64,
}

impl Default for LogisticConfig {
    fn default() -> Self {
        Self {
            c: 1.0,
            max_iter: 1000,
            tol: 1e-6,
        }
    }
}

/// A fitted multinomial logistic regression.
#[derive(Clone, Debug)]
pub struct LogisticRegression {
    d: usize,
    classes: usize,
    mean: Vec<f64>,
    scale: Vec<f64>,
    /// `d × classes` weights on standardised features, row-major.
    w: Vec<f64>,
    b: Vec<f64>,
    /// Iterations run.
    pub iterations: usize,
    /// Whether the gradient-mapping norm fell below `tol`.
    pub converged: bool,
}

const CHUNK: usize = 1024;

/// Row-block gradient of the mean cross-entropy: returns (loss sum, grad W sum, grad b sum).
fn block_grad(
    xs: &[f64],
    y: &[usize],
    w: &[f64],
    b: &[f64],
    d: usize,
    m: usize,
) -> (f64, Vec<f64>, Vec<f64>) {
    let mut gw = vec![0.0; d * m];
    let mut gb = vec![0.0; m];
    let mut loss = 0.0;
    let mut p = vec![0.0; m];
    for (row, &yi) in xs.chunks_exact(d).zip(y) {
        p.copy_from_slice(b);
        for (j, &xj) in row.iter().enumerate() {
            if xj != 0.0 {
                for (pc, wc) in p.iter_mut().zip(&w[j * m..(j + 1) * m]) {
                    *pc += xj * wc;
                }
            }
        }
        let mx = p.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mut s = 0.0;
        for pc in p.iter_mut() {
            *pc = (*pc - mx).exp();
            s += *pc;
        }
        loss += mx + s.ln() - (mx + (p[yi]).ln());
        for pc in p.iter_mut() {
            *pc /= s;
        }
        p[yi] -= 1.0;
        for (gc, pc) in gb.iter_mut().zip(&p) {
            *gc += pc;
        }
        for (j, &xj) in row.iter().enumerate() {
            if xj != 0.0 {
                for (gc, pc) in gw[j * m..(j + 1) * m].iter_mut().zip(&p) {
                    *gc += xj * pc;
                }
            }
        }
    }
    (loss, gw, gb)
}

impl LogisticRegression {
    /// Fits `classes`-way multinomial logistic regression to `x` (`n × d`, row-major) and labels `y` (< classes).
    pub fn fit(
        x: &[f64],
        d: usize,
        y: &[usize],
        classes: usize,
        cfg: &LogisticConfig,
    ) -> Result<Self> {
        let n = y.len();
        if d == 0 || n == 0 || x.len() != n * d {
            return Err(Error::Shape {
                context: "logistic regression features".into(),
                expected: format!("{n} rows × d ≥ 1 values (one row per label)"),
                got: format!("{} values", x.len()),
            });
        }
        if classes < 2 || y.iter().any(|&c| c >= classes) {
            return Err(Error::Data(format!(
                "logistic regression needs ≥ 2 classes and labels below {classes}"
            )));
        }
        if cfg.c.is_nan() || cfg.c <= 0.0 || x.iter().any(|v| !v.is_finite()) {
            return Err(Error::Data(
                "logistic regression needs C > 0 and finite features".into(),
            ));
        }
        let m = classes;
        let mut mean = vec![0.0; d];
        for row in x.chunks_exact(d) {
            for (a, v) in mean.iter_mut().zip(row) {
                *a += v;
            }
        }
        mean.iter_mut().for_each(|a| *a /= n as f64);
        let mut scale = vec![0.0; d];
        for row in x.chunks_exact(d) {
            for ((s, v), mu) in scale.iter_mut().zip(row).zip(&mean) {
                *s += (v - mu) * (v - mu);
            }
        }
        for s in scale.iter_mut() {
            *s = (*s / n as f64).sqrt();
            if *s <= 1e-12 {
                *s = 1.0;
            }
        }
        let xs: Vec<f64> = x
            .chunks_exact(d)
            .flat_map(|row| {
                row.iter()
                    .zip(&mean)
                    .zip(&scale)
                    .map(|((v, mu), s)| (v - mu) / s)
                    .collect::<Vec<_>>()
            })
            .collect();
        // L = ½ λmax([X̃ 1]ᵀ[X̃ 1] / n); the centred columns are orthogonal to the ones column, so it is
        // ½ max(λmax(X̃ᵀX̃ / n), 1). λmax by power iteration (the matrix is d × d).
        let mut gram = vec![0.0; d * d];
        for row in xs.chunks_exact(d) {
            for i in 0..d {
                for j in 0..d {
                    gram[i * d + j] += row[i] * row[j];
                }
            }
        }
        gram.iter_mut().for_each(|g| *g /= n as f64);
        let mut v = vec![1.0 / (d as f64).sqrt(); d];
        let mut lam = 0.0;
        for _ in 0..200 {
            let mut u = vec![0.0; d];
            for i in 0..d {
                u[i] = (0..d).map(|j| gram[i * d + j] * v[j]).sum();
            }
            let norm = u.iter().map(|a| a * a).sum::<f64>().sqrt();
            if norm.is_nan() || norm <= 0.0 {
                break;
            }
            lam = norm;
            v = u.into_iter().map(|a| a / norm).collect();
        }
        // A little slack on the power-iteration estimate keeps the step safe.
        let lipschitz = 0.5 * lam.max(1.0) * 1.05;
        let step = 1.0 / lipschitz;
        let lambda = 1.0 / (cfg.c * n as f64);
        let shrink: Vec<f64> = scale
            .iter()
            .map(|s| 1.0 / (1.0 + step * lambda / (s * s)))
            .collect();

        let np = d * m + m;
        let grad = |theta: &[f64]| -> Vec<f64> {
            let (w, b) = theta.split_at(d * m);
            let parts: Vec<(f64, Vec<f64>, Vec<f64>)> = xs
                .par_chunks(CHUNK * d)
                .zip(y.par_chunks(CHUNK))
                .map(|(xc, yc)| block_grad(xc, yc, w, b, d, m))
                .collect();
            let mut g = vec![0.0; np];
            for (_, gw, gb) in parts {
                for (a, v) in g[..d * m].iter_mut().zip(&gw) {
                    *a += v;
                }
                for (a, v) in g[d * m..].iter_mut().zip(&gb) {
                    *a += v;
                }
            }
            g.iter_mut().for_each(|a| *a /= n as f64);
            g
        };
        let prox = |theta: &mut [f64]| {
            for j in 0..d {
                for c in 0..m {
                    theta[j * m + c] *= shrink[j];
                }
            }
        };

        let mut theta = vec![0.0; np];
        let mut yk = theta.clone();
        let mut t = 1.0f64;
        let mut iterations = 0;
        let mut converged = false;
        while iterations < cfg.max_iter {
            iterations += 1;
            let g = grad(&yk);
            let mut next: Vec<f64> = yk.iter().zip(&g).map(|(a, b)| a - step * b).collect();
            prox(&mut next);
            let mapping = yk
                .iter()
                .zip(&next)
                .map(|(a, b)| ((a - b) / step).abs())
                .fold(0.0, f64::max);
            // Gradient-based restart (O'Donoghue & Candès 2015): drop the momentum when it points uphill.
            let uphill: f64 = yk
                .iter()
                .zip(&next)
                .zip(&theta)
                .map(|((yv, nv), tv)| (yv - nv) * (nv - tv))
                .sum();
            if mapping < cfg.tol {
                theta = next;
                converged = true;
                break;
            }
            if uphill > 0.0 {
                t = 1.0;
                yk.clone_from(&next);
            } else {
                let t_next = 0.5 * (1.0 + (1.0 + 4.0 * t * t).sqrt());
                let beta = (t - 1.0) / t_next;
                yk = next
                    .iter()
                    .zip(&theta)
                    .map(|(nv, tv)| nv + beta * (nv - tv))
                    .collect();
                t = t_next;
            }
            theta = next;
        }
        let b = theta.split_off(d * m);
        Ok(Self {
            d,
            classes: m,
            mean,
            scale,
            w: theta,
            b,
            iterations,
            converged,
        })
    }

    /// The most probable class of one feature row (first on ties).
    pub fn predict_row(&self, row: &[f64]) -> usize {
        let m = self.classes;
        let mut p = self.b.clone();
        for (j, v) in row.iter().enumerate().take(self.d) {
            let xj = (v - self.mean[j]) / self.scale[j];
            for (pc, wc) in p.iter_mut().zip(&self.w[j * m..(j + 1) * m]) {
                *pc += xj * wc;
            }
        }
        let mut best = 0;
        for c in 1..m {
            if p[c] > p[best] {
                best = c;
            }
        }
        best
    }

    /// Fraction of rows of `x` (`n × d`) whose predicted class is the label.
    pub fn accuracy(&self, x: &[f64], y: &[usize]) -> Result<f64> {
        if y.is_empty() || x.len() != y.len() * self.d {
            return Err(Error::Shape {
                context: "logistic regression scoring".into(),
                expected: format!("{} rows × {} values", y.len(), self.d),
                got: format!("{} values", x.len()),
            });
        }
        let hits = x
            .chunks_exact(self.d)
            .zip(y)
            .filter(|(row, &c)| self.predict_row(row) == c)
            .count();
        Ok(hits as f64 / y.len() as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// Three Gaussian blobs in 2-D with very different feature scales: near-perfect accuracy, and the
    /// optimum's gradient vanishes (checked by the convergence flag).
    #[test]
    fn separates_blobs_and_converges() {
        let mut rng = Rng::new(3);
        let centres = [(0.0, 0.0), (3.0, 0.0), (0.0, 3.0)];
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for i in 0..600 {
            let c = i % 3;
            let e = rng.normal_vec(2);
            x.push((centres[c].0 + e[0] as f64) * 1000.0);
            x.push(centres[c].1 + e[1] as f64);
            y.push(c);
        }
        let model = LogisticRegression::fit(&x, 2, &y, 3, &LogisticConfig::default()).unwrap();
        let acc = model.accuracy(&x, &y).unwrap();
        println!(
            "blobs: accuracy {acc:.3}, {} iterations, converged {}",
            model.iterations, model.converged
        );
        assert!(acc > 0.9, "{acc}");
        assert!(model.converged);
        assert_eq!(model.predict_row(&[3000.0, 0.0]), 1);
        assert!(LogisticRegression::fit(&x, 2, &y, 2, &LogisticConfig::default()).is_err());
        assert!(LogisticRegression::fit(&x[1..], 2, &y, 3, &LogisticConfig::default()).is_err());
    }
}

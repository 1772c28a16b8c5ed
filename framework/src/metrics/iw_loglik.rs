//! Importance-weighted log-likelihood (Burda, Grosse & Salakhutdinov, ICLR 2016, "Importance weighted
//! autoencoders", eq. 8; the Ladder VAE's test log-likelihood, docs/methods/metrics.md, "IW log-likelihood"):
//!
//! `log p(x) ≈ log (1/K) Σ_k p(x, z_k) / q(z_k|x)`, `z_k ~ q(z|x)` i.i.d.
//!
//! a lower bound in expectation that rises with K towards log p(x) (K = 1 gives the ELBO). The log weights come
//! from [`crate::method::Method::log_importance_weights`] (for an `ElboMethod`: an `Independent` causal layer and
//! a prior with a density such as `StdNormal`); the log-mean-exp is taken in f64 with the maximum factored out.
//!
//! Reported, averaged over `rows` rows spread evenly over the split (nats per observation):
//! `iw_loglik` (the K-sample estimate), `iw_elbo` (mean log weight: a Monte Carlo ELBO from the same draws,
//! which `iw_loglik` exceeds by Jensen's inequality), `iw_samples` (K). Papers use K = 5000 at test time; the
//! default here is K = 100 (one decoder pass per draw: 100 × 1000 rows = 100k decodes, a few minutes for the
//! pendulum MLP decoder on 2 CPU cores); give `{"iw_loglik": (samples: 5000)}` in `eval.metrics` for paper-comparable numbers.
//! Rows are spread over the split (the `elbo` metric averages its first `eval.max_samples` rows and evaluates
//! at the posterior mean, so compare `iw_loglik` with `iw_elbo`, which uses the same rows and draws).
//! The split is the `split` of its settings, or else the run config's `eval.split` (`carve eval --split`
//! does not reach model metrics).

use super::EvalInputs;
use crate::data::{make_batch, Dataset, Split};
use crate::error::{Error, Result};
use crate::eval_context::{EvalContext, MetricEntry, MetricSettings};
use crate::method::Method;
use crate::rng::Rng;
use candle_core::{DType, Device};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The settings of `iw_loglik`, given with it in `eval.metrics`: `{"iw_loglik": (samples: 5000)}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IwLoglikConfig {
    /// K, posterior draws per observation.
    pub samples: usize,
    /// At most this many rows of the split, spread evenly over it.
    pub rows: usize,
    /// Seeds the posterior draws.
    pub seed: u64,
    /// The split scored (default: the config's `eval.split`).
    pub split: Option<Split>,
}

#[typetag::serde(name = "iw_loglik")]
impl MetricSettings for IwLoglikConfig {
    fn clone_box(&self) -> Box<dyn MetricSettings> {
        Box::new(self.clone())
    }
}

impl Default for IwLoglikConfig {
    fn default() -> Self {
        Self {
            samples: 100,
            rows: 1000,
            seed: 0,
            split: None,
        }
    }
}

/// Split-averaged estimates (nats per observation).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct IwLoglik {
    /// Mean over rows of log (1/K) Σ_k w_k.
    pub loglik: f64,
    /// Mean over rows and draws of log w_k.
    pub elbo: f64,
    pub rows: usize,
    pub samples: usize,
}

/// log (1/n) Σ exp(w_i), stable (the maximum factored out); −∞ for an empty slice or all −∞.
pub fn log_mean_exp(w: &[f64]) -> f64 {
    let m = w.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !m.is_finite() {
        return m;
    }
    let s: f64 = w.iter().map(|v| (v - m).exp()).sum();
    m + (s / w.len() as f64).ln()
}

/// Per-row IW estimate and mean log weight of `[rows × k]` log weights (row-major); an error on non-finite values.
pub fn iw_rows(log_w: &[f64], k: usize) -> Result<Vec<(f64, f64)>> {
    if k == 0 || log_w.is_empty() || !log_w.len().is_multiple_of(k) {
        return Err(Error::Shape {
            context: "importance weights".into(),
            expected: format!("rows × {k} log weights"),
            got: format!("{} values", log_w.len()),
        });
    }
    log_w
        .chunks_exact(k)
        .map(|row| {
            let iw = log_mean_exp(row);
            let elbo = row.iter().sum::<f64>() / k as f64;
            if !iw.is_finite() || !elbo.is_finite() {
                return Err(Error::Data(format!(
                    "iw_loglik: non-finite importance weights (log-mean-exp {iw}, mean {elbo}): the model assigns no density to its own posterior draws"
                )));
            }
            Ok((iw, elbo))
        })
        .collect()
}

/// Rows per `log_importance_weights` call.
const ROWS_PER_CALL: usize = 16;

/// The IW log-likelihood of `method` on up to `cfg.rows` rows of `split`.
pub fn iw_loglik_of(
    data: &dyn Dataset,
    method: &dyn Method,
    device: &Device,
    split: Split,
    cfg: &IwLoglikConfig,
) -> Result<IwLoglik> {
    if cfg.samples == 0 || cfg.rows == 0 {
        return Err(Error::Data(
            "iw_loglik: samples and rows must be at least 1".into(),
        ));
    }
    let all = data.split(split);
    if all.is_empty() {
        return Err(Error::Data(format!(
            "iw_loglik: the {split:?} split is empty"
        )));
    }
    let n = cfg.rows.min(all.len());
    let rows: Vec<usize> = (0..n).map(|i| all[i * all.len() / n]).collect();
    let mut rng = Rng::new(cfg.seed);
    let mut scratch = Vec::new();
    let (mut sum_iw, mut sum_elbo) = (0.0, 0.0);
    for chunk in rows.chunks(ROWS_PER_CALL) {
        let batch = make_batch(data, chunk, device, &mut scratch)?;
        let w = method
            .log_importance_weights(&batch.x, cfg.samples, &mut rng)?
            .ok_or_else(|| {
                Error::Data(
                    "iw_loglik needs the method's posterior and prior densities: an Elbo-family model with an `Independent` causal layer and a prior with a log density (e.g. `StdNormal`); this method does not provide them".into(),
                )
            })?;
        let dims = w.dims().to_vec();
        if dims != [chunk.len(), cfg.samples] {
            return Err(Error::Shape {
                context: "iw_loglik: log importance weights".into(),
                expected: format!("[{}, {}]", chunk.len(), cfg.samples),
                got: format!("{dims:?}"),
            });
        }
        let w: Vec<f64> = w.to_dtype(DType::F64)?.flatten_all()?.to_vec1()?;
        for (iw, elbo) in iw_rows(&w, cfg.samples)? {
            sum_iw += iw;
            sum_elbo += elbo;
        }
    }
    Ok(IwLoglik {
        loglik: sum_iw / n as f64,
        elbo: sum_elbo / n as f64,
        rows: n,
        samples: cfg.samples,
    })
}

fn metric(
    ctx: &EvalContext,
    entry: &MetricEntry,
    _inputs: &EvalInputs,
) -> Result<BTreeMap<String, f64>> {
    let cfg: IwLoglikConfig = entry.settings()?;
    let split = cfg.split.unwrap_or(ctx.split);
    let r = iw_loglik_of(ctx.data, ctx.method, ctx.device, split, &cfg)?;
    Ok(BTreeMap::from([
        ("iw_loglik".to_string(), r.loglik),
        ("iw_elbo".to_string(), r.elbo),
        ("iw_samples".to_string(), r.samples as f64),
    ]))
}

crate::register_model_metric!(
    "iw_loglik",
    "importance-weighted log-likelihood log (1/K) Σ p(x,z_k)/q(z_k|x) (Burda 2016; LVAE), K = 100 by default, plus the MC ELBO iw_elbo (nats)",
    metric
);

#[cfg(test)]
mod tests {
    use super::super::simulated::test_support::{linear_vae, set_param};
    use super::*;
    use crate::data::{ArrayDataset, DataSpec, Observations};
    use candle_core::Tensor;
    use nalgebra::{DMatrix, DVector};

    const LN_2PI: f64 = 1.837_877_066_409_345_3;

    fn log_normal(x: f64, mean: f64, var: f64) -> f64 {
        -0.5 * ((x - mean).powi(2) / var + var.ln() + LN_2PI)
    }

    /// z ~ N(0, 1), x | z ~ N(z, s²): p(x) = N(0, 1 + s²). With a proposal that is not the posterior, the
    /// estimate approaches log p(x) and exceeds the ELBO; with the exact posterior every weight is p(x).
    #[test]
    fn log_mean_exp_estimator_matches_a_gaussian_marginal() {
        let (x, s2) = (1.3f64, 0.25f64);
        let exact = log_normal(x, 0.0, 1.0 + s2);
        let weights = |mq: f64, vq: f64, k: usize, rng: &mut Rng| -> Vec<f64> {
            rng.normal_vec(k)
                .into_iter()
                .map(|e| {
                    let z = mq + vq.sqrt() * e as f64;
                    log_normal(x, z, s2) + log_normal(z, 0.0, 1.0) - log_normal(z, mq, vq)
                })
                .collect()
        };
        let mut rng = Rng::new(1);
        // Proposal N(0.9, 0.35) against the posterior N(1.04, 0.2).
        let w = weights(0.9, 0.35, 5000, &mut rng);
        let (iw, elbo) = iw_rows(&w, 5000).unwrap()[0];
        println!("gaussian: exact {exact:.5}, IW(5000) {iw:.5}, MC ELBO {elbo:.5}");
        assert!((iw - exact).abs() < 0.01, "{iw} vs {exact}");
        assert!(elbo < iw - 0.05);
        // The bound rises with K (averaged over 200 repetitions, proposal N(0.6, 0.5)).
        let avg = |k: usize, rng: &mut Rng| {
            (0..200)
                .map(|_| log_mean_exp(&weights(0.6, 0.5, k, rng)))
                .sum::<f64>()
                / 200.0
        };
        let (k1, k10, k100) = (avg(1, &mut rng), avg(10, &mut rng), avg(100, &mut rng));
        println!("gaussian: mean IW over 200 reps: K=1 {k1:.4}, K=10 {k10:.4}, K=100 {k100:.4}");
        assert!(k1 < k10 && k10 < k100 && k100 <= exact + 0.005);
        let post = weights(x / (1.0 + s2), s2 / (1.0 + s2), 10, &mut rng);
        assert!(post.iter().all(|w| (w - exact).abs() < 1e-9));
        assert!(iw_rows(&[0.0, f64::NAN], 2).is_err());
        assert!(iw_rows(&[0.0, 1.0, 2.0], 2).is_err());
    }

    /// A linear-Gaussian VAE: x = z W + b + N(0, s² I), z ~ N(0, I), so log p(x) = log N(x; b, WᵀW + s² I).
    /// The encoder is set to the exact posterior mean with inflated marginal variances (a diagonal proposal
    /// cannot be the full-covariance posterior): IW with K = 2000 recovers log p(x); the metric wrapper agrees.
    #[test]
    fn elbo_method_importance_weights_recover_a_linear_gaussian_marginal() {
        let (obs, d, s) = (3usize, 2usize, 0.5f64);
        let m = linear_vae(obs, d, s);
        let w = DMatrix::from_row_slice(d, obs, &[0.8, -0.3, 0.5, 0.2, 0.9, -0.4]);
        let b = DVector::from_row_slice(&[0.1, -0.2, 0.3]);
        let prec = DMatrix::identity(d, d) + &w * w.transpose() / (s * s);
        let cov_post = prec.clone().try_inverse().unwrap();
        // mean(x) = (x − b) Wᵀ Σ / s² as a row vector: encoder weight (obs × d) = Wᵀ Σ / s².
        let a = w.transpose() * &cov_post / (s * s);
        let mut enc_w = vec![0f32; obs * 2 * d];
        for i in 0..obs {
            for j in 0..d {
                enc_w[i * 2 * d + j] = a[(i, j)] as f32;
            }
        }
        let shift = b.transpose() * &a;
        let mut enc_b = vec![0f32; 2 * d];
        for j in 0..d {
            enc_b[j] = -shift[(0, j)] as f32;
            enc_b[d + j] = (1.5 * cov_post[(j, j)]).ln() as f32;
        }
        set_param(&m, "encoder.fc0.weight", &enc_w);
        set_param(&m, "encoder.fc0.bias", &enc_b);
        let dec_w: Vec<f32> = (0..d)
            .flat_map(|i| (0..obs).map(move |j| (i, j)))
            .map(|(i, j)| w[(i, j)] as f32)
            .collect();
        set_param(&m, "decoder.fc0.weight", &dec_w);
        set_param(
            &m,
            "decoder.fc0.bias",
            &b.iter().map(|&v| v as f32).collect::<Vec<_>>(),
        );

        let cov_x = w.transpose() * &w + DMatrix::identity(obs, obs) * (s * s);
        let chol = cov_x.clone().cholesky().unwrap();
        let log_det: f64 = 2.0 * chol.l().diagonal().iter().map(|v| v.ln()).sum::<f64>();
        let exact = |x: &[f32]| {
            let r = DVector::from_iterator(obs, x.iter().map(|&v| v as f64)) - &b;
            let q = (r.transpose() * chol.solve(&r))[(0, 0)];
            -0.5 * (q + log_det + obs as f64 * LN_2PI)
        };
        let xs: Vec<f32> = vec![
            0.5, -1.0, 0.7, 1.5, 0.2, -0.3, -0.4, 0.9, 1.1, 0.0, 0.0, 0.0,
        ];
        let rows = xs.len() / obs;
        let x = Tensor::from_slice(&xs, (rows, obs), &Device::Cpu).unwrap();
        let k = 2000;
        let lw = m
            .log_importance_weights(&x, k, &mut Rng::new(2))
            .unwrap()
            .unwrap();
        assert_eq!(lw.dims(), &[rows, k]);
        let lw: Vec<f64> = lw
            .to_dtype(DType::F64)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let mut exact_mean = 0.0;
        for (r, (iw, elbo)) in iw_rows(&lw, k).unwrap().into_iter().enumerate() {
            let e = exact(&xs[r * obs..(r + 1) * obs]);
            exact_mean += e / rows as f64;
            println!("linear-Gaussian row {r}: exact {e:.4}, IW(2000) {iw:.4}, MC ELBO {elbo:.4}");
            assert!((iw - e).abs() < 0.01, "row {r}: {iw} vs {e}");
            assert!(elbo < iw);
        }

        let spec = DataSpec {
            obs_shape: vec![obs],
            factor_names: vec![],
            label_names: vec![],
            graph: None,
            ..Default::default()
        };
        let data = ArrayDataset::new(spec, Observations::F32(xs), None, None, vec![]).unwrap();
        let cfg = IwLoglikConfig {
            samples: 2000,
            ..Default::default()
        };
        let r = iw_loglik_of(&data, &m, &Device::Cpu, Split::Train, &cfg).unwrap();
        println!("linear-Gaussian wrapper: {r:?}, exact mean {exact_mean:.4}");
        assert_eq!((r.rows, r.samples), (rows, 2000));
        assert!((r.loglik - exact_mean).abs() < 0.01 && r.elbo < r.loglik);
        let err = iw_loglik_of(&data, &m, &Device::Cpu, Split::Test, &cfg).unwrap_err();
        assert!(err.to_string().contains("empty"), "{err}");
    }
}

#[cfg(test)]
mod hierarchical_tests {
    use super::super::simulated::test_support::set_param;
    use super::*;
    use crate::components::{BottomUp, Independent, LatentLayers, MlpDecoder, TopDown};
    use crate::data::DataSpec;
    use crate::dist::Likelihood;
    use crate::method::{ElboMethod, ElboParts, MethodContext};
    use crate::nn::Activation;
    use crate::optim::AdamConfig;
    use candle_core::Tensor;
    use nalgebra::{DMatrix, DVector};

    const LN_2PI: f64 = 1.837_877_066_409_345_3;

    /// softplus⁻¹(v): the pre-activation giving variance v.
    fn inv_softplus(v: f64) -> f32 {
        v.exp_m1().ln() as f32
    }

    /// z₂ ~ N(0, 1), z₁ | z₂ ~ N(a z₂ + c, s₁²), x | z₁ ~ N(W z₁ + b, s₀² I) with 1-d latents and 2-d x: the
    /// `TopDown` prior, a linear Gaussian decoder and `BottomUp` inference with affine blocks (depth 0), which
    /// can hold the exact posterior p(z₁ | x) p(z₂ | z₁). With it every importance weight is log p(x), where
    /// x ~ N(W c + b, (a² + s₁²) W Wᵀ + s₀² I); with a worse proposal K = 2000 still recovers log p(x).
    #[test]
    fn hierarchical_importance_weights_recover_a_two_layer_linear_gaussian_marginal() {
        let (a, c, s1, s0) = (0.8f64, 0.3f64, 0.6f64, 0.5f64);
        let (w, b) = ([1.2f64, -0.7], [0.1f64, -0.2]);
        let spec = DataSpec {
            obs_shape: vec![2],
            ..Default::default()
        };
        let block = |hidden| (hidden, 0usize, Activation::Relu, false, 0.0);
        let (hidden, depth, activation, batch_norm, lv_eps) = block(vec![1, 1]);
        let encoder = BottomUp {
            hidden: hidden.clone(),
            depth,
            activation,
            batch_norm,
            lv_eps,
        };
        let prior = TopDown {
            hidden,
            depth,
            activation,
            batch_norm,
            lv_eps,
        };
        let decoder = MlpDecoder {
            hidden: vec![],
            activation: Default::default(),
            likelihood: Likelihood::Gaussian { std: s0 },
            reduction: Default::default(),
            batch_norm: false,
        };
        let parts = ElboParts {
            latent_dim: 2,
            concepts: Default::default(),
            layers: LatentLayers::new(&[1, 1], 2, "model.latents").unwrap(),
            encoder: &encoder,
            causal: &Independent {},
            prior: &prior,
            decoder: &decoder,
            objectives: Vec::new(),
            sample_posterior: true,
        };
        let optimizer = AdamConfig::default();
        let ctx = MethodContext {
            spec: &spec,
            device: Device::Cpu,
            seed: 0,
            optimizer: &optimizer,
            label_stats: None,
        };
        let m = ElboMethod::new(&parts, &ctx).unwrap();
        set_param(&m, "prior.z1.fc0.weight", &[a as f32, 0.0]);
        set_param(&m, "prior.z1.fc0.bias", &[c as f32, inv_softplus(s1 * s1)]);
        set_param(&m, "decoder.fc0.weight", &[w[0] as f32, w[1] as f32]);
        set_param(&m, "decoder.fc0.bias", &[b[0] as f32, b[1] as f32]);
        // p(z₁ | x): precision 1/v₁ + WᵀW/s₀², mean affine in x.
        let v1 = a * a + s1 * s1;
        let wtw = w[0] * w[0] + w[1] * w[1];
        let p1 = 1.0 / v1 + wtw / (s0 * s0);
        let wb = w[0] * b[0] + w[1] * b[1];
        let set_up1 = |inflate: f64, shift: f64| {
            let k = 1.0 / (s0 * s0 * p1);
            set_param(
                &m,
                "encoder.up1.fc0.weight",
                &[(w[0] * k) as f32, 0.0, (w[1] * k) as f32, 0.0],
            );
            let mean0 = (c / v1 - wb / (s0 * s0)) / p1 + shift;
            set_param(
                &m,
                "encoder.up1.fc0.bias",
                &[mean0 as f32, inv_softplus(inflate / p1)],
            );
        };
        set_up1(1.0, 0.0);
        // p(z₂ | z₁): precision 1 + a²/s₁², mean a (z₁ − c) / (s₁² P₂).
        let p2 = 1.0 + a * a / (s1 * s1);
        let k2 = a / (s1 * s1 * p2);
        set_param(&m, "encoder.up2.fc0.weight", &[k2 as f32, 0.0]);
        set_param(
            &m,
            "encoder.up2.fc0.bias",
            &[(-k2 * c) as f32, inv_softplus(1.0 / p2)],
        );

        let mean_x = DVector::from_row_slice(&[w[0] * c + b[0], w[1] * c + b[1]]);
        let wv = DVector::from_row_slice(&w);
        let cov_x = &wv * wv.transpose() * v1 + DMatrix::identity(2, 2) * (s0 * s0);
        let chol = cov_x.clone().cholesky().unwrap();
        let log_det: f64 = 2.0 * chol.l().diagonal().iter().map(|v| v.ln()).sum::<f64>();
        let exact = |x: &[f32]| {
            let r = DVector::from_iterator(2, x.iter().map(|&v| v as f64)) - &mean_x;
            -0.5 * ((r.transpose() * chol.solve(&r))[(0, 0)] + log_det + 2.0 * LN_2PI)
        };
        let xs = [0.5f32, -1.0, 1.5, 0.2, -0.4, 0.9];
        let x = Tensor::from_slice(&xs, (3, 2), &Device::Cpu).unwrap();
        let weights = |k: usize| -> Vec<f64> {
            let w = m
                .log_importance_weights(&x, k, &mut Rng::new(4))
                .unwrap()
                .unwrap();
            assert_eq!(w.dims(), &[3, k]);
            w.to_dtype(DType::F64)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap()
        };
        let exact_rows: Vec<f64> = xs.chunks(2).map(exact).collect();
        for (r, row) in weights(50).chunks(50).enumerate() {
            let spread = row
                .iter()
                .map(|v| (v - exact_rows[r]).abs())
                .fold(0.0, f64::max);
            assert!(
                spread < 1e-4,
                "row {r}: weights off log p(x) = {} by up to {spread}",
                exact_rows[r]
            );
        }
        set_up1(1.5, 0.2);
        for (r, (iw, elbo)) in iw_rows(&weights(2000), 2000)
            .unwrap()
            .into_iter()
            .enumerate()
        {
            println!("two-layer linear-Gaussian row {r}: exact {:.4}, IW(2000) {iw:.4}, MC ELBO {elbo:.4}", exact_rows[r]);
            assert!(
                (iw - exact_rows[r]).abs() < 0.02,
                "row {r}: {iw} vs {}",
                exact_rows[r]
            );
            assert!(elbo < iw - 0.01);
        }
    }
}

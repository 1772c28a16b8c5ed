//! The β-VAE disentanglement score (Higgins et al., ICLR 2017, "β-VAE: Learning basic visual concepts with a
//! constrained variational framework", §3; docs/methods/metrics.md, "β-VAE score"), computed as disentanglement_lib's
//! `beta_vae.py` (`compute_beta_vae_sklearn`). One point:
//!
//! 1. draw the factor index y uniformly from {0..k−1};
//! 2. draw `batch_size` (L) factor vectors v1 and L vectors v2 independently, then set v2[l][y] := v1[l][y];
//! 3. render both sets with the simulator and encode them (posterior means): z1, z2;
//! 4. feature = (1/L) Σ_l |z1_l − z2_l| (per dimension), label = y.
//!
//! A multinomial logistic regression ([`super::LogisticRegression`], sklearn `LogisticRegression()`'s objective)
//! is fit on `train_points` points; the score (`betavae_score`) is its accuracy on `eval_points` fresh points
//! (`betavae_score_train`: on the training points). Reference settings (disentanglement_lib
//! `beta_vae_sklearn.gin`, the defaults here): L = 64, 10,000 training and 5,000 evaluation points, i.e. 1.92M
//! renders and encodes (at the ≈ 1.3 ms per scene measured for the 96×96 pendulum MLP on 2 busy CPU cores, about
//! 40 minutes); smaller values are allowed (`{"betavae_score": (train_points: ...)}` in `eval.metrics`, or
//! `--set eval.metrics.betavae_score.train_points=...` at training time; `carve eval` reads the settings from the
//! run's `config.ron`).
//!
//! Factors are drawn independently over each factor's observed range ([`super::FactorSampler`]); for a causal
//! dataset such as Pendulum this includes scenes off the data's SCM (e.g. a shadow that does not match the
//! light), as disentanglement_lib's independent factor sampling does.

use super::logistic::{LogisticConfig, LogisticRegression};
use super::simulated::{code_dim, encode_rendered, require_simulator, FactorSampler};
use super::EvalInputs;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::eval_context::{EvalContext, MetricEntry, MetricSettings};
use crate::method::Method;
use crate::rng::Rng;
use candle_core::Device;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The settings of `betavae_score`, given with it in `eval.metrics`: `{"betavae_score": (train_points: 1000)}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BetaVaeScoreConfig {
    /// L: pairs averaged into one point.
    pub batch_size: usize,
    pub train_points: usize,
    pub eval_points: usize,
    /// Seeds the factor draws (one stream for the training then the evaluation points).
    pub seed: u64,
    pub classifier: LogisticConfig,
}

impl Default for BetaVaeScoreConfig {
    fn default() -> Self {
        Self {
            batch_size: 64,
            train_points: 10_000,
            eval_points: 5_000,
            seed: 0,
            classifier: LogisticConfig::default(),
        }
    }
}

#[typetag::serde(name = "betavae_score")]
impl MetricSettings for BetaVaeScoreConfig {
    fn clone_box(&self) -> Box<dyn MetricSettings> {
        Box::new(self.clone())
    }
}

/// Classifier accuracies of the β-VAE score.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BetaVaeScore {
    pub train_accuracy: f64,
    /// The score.
    pub eval_accuracy: f64,
}

/// Factor vectors encoded together per call (a multiple of 2·L rows).
const ROWS_PER_CALL: usize = 512;

/// `n` points: features (`n × d`, row-major), labels and d.
fn points(
    n: usize,
    k: usize,
    l: usize,
    rng: &mut Rng,
    sample_factors: &mut impl FnMut(usize, &mut Rng) -> Vec<f32>,
    encode_factors: &mut impl FnMut(&[f32]) -> Result<Vec<f32>>,
) -> Result<(Vec<f64>, Vec<usize>, usize)> {
    let per_call = (ROWS_PER_CALL / (2 * l)).max(1);
    let mut features = Vec::new();
    let mut labels = Vec::with_capacity(n);
    let mut d = 0;
    let mut done = 0;
    while done < n {
        let g = per_call.min(n - done);
        let mut factors = Vec::with_capacity(g * 2 * l * k);
        for _ in 0..g {
            let y = rng.below(k);
            let v1 = sample_factors(l, rng);
            let mut v2 = sample_factors(l, rng);
            if v1.len() != l * k || v2.len() != l * k {
                return Err(Error::Shape {
                    context: "betavae_score: sampled factors".into(),
                    expected: format!("{l} × {k} values"),
                    got: format!("{} and {}", v1.len(), v2.len()),
                });
            }
            for r in 0..l {
                v2[r * k + y] = v1[r * k + y];
            }
            factors.extend_from_slice(&v1);
            factors.extend_from_slice(&v2);
            labels.push(y);
        }
        let codes = encode_factors(&factors)?;
        let dim = code_dim(&codes, g * 2 * l, "betavae_score")?;
        if d != 0 && dim != d {
            return Err(Error::Data(format!(
                "betavae_score: the code dimension changed from {d} to {dim}"
            )));
        }
        d = dim;
        for p in 0..g {
            let base = p * 2 * l * d;
            let mut f = vec![0.0f64; d];
            for r in 0..l {
                let z1 = &codes[base + r * d..base + (r + 1) * d];
                let z2 = &codes[base + (l + r) * d..base + (l + r + 1) * d];
                for ((a, u), v) in f.iter_mut().zip(z1).zip(z2) {
                    *a += (u - v).abs() as f64;
                }
            }
            features.extend(f.into_iter().map(|a| a / l as f64));
        }
        done += g;
    }
    Ok((features, labels, d))
}

/// The β-VAE score of a representation given as a function of the factors: `sample_factors(n, rng)` draws `n`
/// factor vectors (`n × k`, row-major), `encode_factors(factors)` returns their codes (`n × d`, row-major) —
/// for a trained run, render then encode ([`betavae_score_of`]).
pub fn betavae_score(
    k: usize,
    mut sample_factors: impl FnMut(usize, &mut Rng) -> Vec<f32>,
    mut encode_factors: impl FnMut(&[f32]) -> Result<Vec<f32>>,
    cfg: &BetaVaeScoreConfig,
) -> Result<BetaVaeScore> {
    if k < 2 {
        return Err(Error::Data(format!(
            "betavae_score needs at least 2 factors to tell apart, got {k}"
        )));
    }
    if cfg.batch_size == 0 || cfg.train_points == 0 || cfg.eval_points == 0 {
        return Err(Error::Data(
            "betavae_score: batch_size, train_points and eval_points must be at least 1".into(),
        ));
    }
    let l = cfg.batch_size;
    let mut rng = Rng::new(cfg.seed);
    let (xtr, ytr, d) = points(
        cfg.train_points,
        k,
        l,
        &mut rng,
        &mut sample_factors,
        &mut encode_factors,
    )?;
    let model = LogisticRegression::fit(&xtr, d, &ytr, k, &cfg.classifier)?;
    let train_accuracy = model.accuracy(&xtr, &ytr)?;
    let (xev, yev, d_ev) = points(
        cfg.eval_points,
        k,
        l,
        &mut rng,
        &mut sample_factors,
        &mut encode_factors,
    )?;
    if d_ev != d {
        return Err(Error::Data(format!(
            "betavae_score: the code dimension changed from {d} to {d_ev}"
        )));
    }
    Ok(BetaVaeScore {
        train_accuracy,
        eval_accuracy: model.accuracy(&xev, &yev)?,
    })
}

/// The β-VAE score of `method` on scenes rendered by `data`'s simulator, factors drawn over their observed ranges.
pub fn betavae_score_of(
    data: &dyn Dataset,
    method: &dyn Method,
    device: &Device,
    cfg: &BetaVaeScoreConfig,
) -> Result<BetaVaeScore> {
    require_simulator(data, "betavae_score")?;
    let sampler = FactorSampler::for_dataset(data)?;
    betavae_score(
        sampler.k(),
        |n, rng| sampler.sample(n, rng),
        |f| encode_rendered(data, method, device, f),
        cfg,
    )
}

fn metric(
    ctx: &EvalContext,
    entry: &MetricEntry,
    _inputs: &EvalInputs,
) -> Result<BTreeMap<String, f64>> {
    let cfg: BetaVaeScoreConfig = entry.settings()?;
    let s = betavae_score_of(ctx.data, ctx.method, ctx.device, &cfg)?;
    Ok(BTreeMap::from([
        ("betavae_score".to_string(), s.eval_accuracy),
        ("betavae_score_train".to_string(), s.train_accuracy),
    ]))
}

crate::register_model_metric!(
    "betavae_score",
    "β-VAE score (Higgins 2017; disentanglement_lib): logistic-regression accuracy predicting the fixed factor from mean |Δz| over L = 64 rendered pairs",
    metric
);

#[cfg(test)]
mod tests {
    use super::super::simulated::test_support::{
        assert_scores_rank_codes, identity, identity_dataset, identity_method, linear_codes,
        mixed_sampler, unit_sampler,
    };
    use super::*;

    fn small() -> BetaVaeScoreConfig {
        BetaVaeScoreConfig {
            train_points: 2_000,
            eval_points: 1_000,
            ..Default::default()
        }
    }

    #[test]
    fn identity_codes_score_near_one() {
        let s = mixed_sampler();
        let score = betavae_score(
            4,
            |n, r| s.sample(n, r),
            linear_codes(&identity(4), 4, 0.01, 1),
            &small(),
        )
        .unwrap();
        println!("betavae identity (mixed factors, noise 0.01): {score:?}");
        assert!(score.eval_accuracy >= 0.95, "{score:?}");
    }

    #[test]
    fn mixed_and_noise_codes_score_lower() {
        assert_scores_rank_codes("betavae", &|k, codes| {
            let s = unit_sampler(k);
            betavae_score(k, |n, r| s.sample(n, r), codes, &small())
                .unwrap()
                .eval_accuracy
        });
    }

    #[test]
    fn model_wrapper_renders_encodes_and_rejects_data_without_simulator() {
        let cfg = BetaVaeScoreConfig {
            batch_size: 16,
            train_points: 300,
            eval_points: 200,
            ..Default::default()
        };
        let method = identity_method(3);
        let dev = Device::Cpu;
        let s = betavae_score_of(&identity_dataset(3, true), &method, &dev, &cfg).unwrap();
        println!("betavae wrapper (identity encoder on an identity renderer): {s:?}");
        assert!(s.eval_accuracy >= 0.95, "{s:?}");
        let err = betavae_score_of(&identity_dataset(3, false), &method, &dev, &cfg)
            .unwrap_err()
            .to_string();
        assert!(err.contains("simulator"), "{err}");
        let bad = BetaVaeScoreConfig {
            eval_points: 0,
            ..cfg
        };
        assert!(betavae_score_of(&identity_dataset(3, true), &method, &dev, &bad).is_err());
    }
}

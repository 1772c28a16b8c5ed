//! The FactorVAE disentanglement score (Kim & Mnih, ICML 2018, "Disentangling by factorising", §4), computed as
//! disentanglement_lib's `factor_vae.py` (`compute_factor_vae`):
//!
//! 1. global variances: encode `variance_points` scenes drawn from independent factors; per code dimension the
//!    variance (ddof 1). Dimensions whose standard deviation is below `prune_threshold` (disentanglement_lib's
//!    `prune_dims.threshold = 0.05` in its metric configs) are inactive (collapsed to the prior); with none
//!    active the score is 0, as there.
//! 2. one vote: draw the factor index y uniformly; draw `batch_size` (64) factor vectors, all sharing the first
//!    one's value of factor y; encode; the vote goes to (y, argmin over active dims of local variance (ddof 1) /
//!    global variance), i.e. the dimension that varies least once codes are normalised by their global scale.
//! 3. the majority-vote classifier maps each dimension to the factor with most training votes (first on ties);
//!    accuracy = votes it gets right / all votes: `factorvae_score` on `eval_points` fresh votes,
//!    `factorvae_score_train` on the `train_points` training votes; `factorvae_active_dims` is the number of
//!    active dimensions. (disentanglement_lib records the argmin as a position among the active dimensions;
//!    we record the dimension itself, a relabelling that leaves the accuracies unchanged.)
//!
//! Defaults are disentanglement_lib's: batch 64, 10,000 training / 5,000 evaluation votes, 10,000 points for the
//! variances (≈ 1M renders and encodes, about 20 minutes for the 96×96 pendulum MLP on 2 CPU cores); smaller
//! values are allowed (`{"factorvae_score": (...)}` in the run's `eval.metrics`). Factors are drawn independently over each
//! factor's observed range ([`super::FactorSampler`]).

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

/// The settings of `factorvae_score`, given with it in `eval.metrics`: `{"factorvae_score": (batch_size: 32)}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FactorVaeScoreConfig {
    /// Scenes per vote (all sharing the value of one factor); at least 2.
    pub batch_size: usize,
    pub train_points: usize,
    pub eval_points: usize,
    /// Scenes for the global variances; at least 2.
    pub variance_points: usize,
    /// Dimensions whose global standard deviation is below this are dropped.
    pub prune_threshold: f64,
    /// Seeds the factor draws (one stream: variances, training votes, evaluation votes).
    pub seed: u64,
}

#[typetag::serde(name = "factorvae_score")]
impl MetricSettings for FactorVaeScoreConfig {
    fn clone_box(&self) -> Box<dyn MetricSettings> {
        Box::new(self.clone())
    }
}

impl Default for FactorVaeScoreConfig {
    fn default() -> Self {
        Self {
            batch_size: 64,
            train_points: 10_000,
            eval_points: 5_000,
            variance_points: 10_000,
            prune_threshold: 0.05,
            seed: 0,
        }
    }
}

/// Majority-vote accuracies of the FactorVAE score.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FactorVaeScore {
    pub train_accuracy: f64,
    /// The score.
    pub eval_accuracy: f64,
    pub active_dims: usize,
}

/// Factor vectors encoded together per call.
const ROWS_PER_CALL: usize = 512;

/// Per-column variance (ddof 1) of `rows × d` codes.
fn variances(codes: &[f32], d: usize) -> Vec<f64> {
    let n = codes.len() / d;
    let mut mean = vec![0.0f64; d];
    for row in codes.chunks_exact(d) {
        for (m, &v) in mean.iter_mut().zip(row) {
            *m += v as f64;
        }
    }
    mean.iter_mut().for_each(|m| *m /= n as f64);
    let mut var = vec![0.0f64; d];
    for row in codes.chunks_exact(d) {
        for ((s, &v), m) in var.iter_mut().zip(row).zip(&mean) {
            *s += (v as f64 - m).powi(2);
        }
    }
    var.into_iter().map(|s| s / (n as f64 - 1.0)).collect()
}

/// `n` votes as a `k × d` count matrix (row-major).
#[allow(clippy::too_many_arguments)]
fn votes(
    n: usize,
    k: usize,
    d: usize,
    cfg: &FactorVaeScoreConfig,
    global: &[f64],
    active: &[usize],
    rng: &mut Rng,
    sample_factors: &mut impl FnMut(usize, &mut Rng) -> Vec<f32>,
    encode_factors: &mut impl FnMut(&[f32]) -> Result<Vec<f32>>,
) -> Result<Vec<u64>> {
    let b = cfg.batch_size;
    let per_call = (ROWS_PER_CALL / b).max(1);
    let mut out = vec![0u64; k * d];
    let mut done = 0;
    while done < n {
        let g = per_call.min(n - done);
        let mut factors = Vec::with_capacity(g * b * k);
        let mut ys = Vec::with_capacity(g);
        for _ in 0..g {
            let y = rng.below(k);
            let mut f = sample_factors(b, rng);
            if f.len() != b * k {
                return Err(Error::Shape {
                    context: "factorvae_score: sampled factors".into(),
                    expected: format!("{b} × {k} values"),
                    got: f.len().to_string(),
                });
            }
            let fixed = f[y];
            for r in 0..b {
                f[r * k + y] = fixed;
            }
            factors.extend_from_slice(&f);
            ys.push(y);
        }
        let codes = encode_factors(&factors)?;
        if code_dim(&codes, g * b, "factorvae_score")? != d {
            return Err(Error::Data(format!(
                "factorvae_score: the code dimension changed from {d}"
            )));
        }
        for (p, &y) in ys.iter().enumerate() {
            let local = variances(&codes[p * b * d..(p + 1) * b * d], d);
            let mut best = active[0];
            for &j in active {
                if local[j] / global[j] < local[best] / global[best] {
                    best = j;
                }
            }
            out[y * d + best] += 1;
        }
        done += g;
    }
    Ok(out)
}

/// Fraction of `votes` (`k × d`) that `classifier` (a factor per dimension) gets right.
fn vote_accuracy(votes: &[u64], classifier: &[usize], d: usize) -> f64 {
    let total: u64 = votes.iter().sum();
    let right: u64 = (0..d).map(|j| votes[classifier[j] * d + j]).sum();
    right as f64 / total as f64
}

/// The FactorVAE score of a representation given as a function of the factors: `sample_factors(n, rng)` draws
/// `n` factor vectors (`n × k`), `encode_factors(factors)` returns their codes (`n × d`), both row-major — for a
/// trained run, render then encode ([`factorvae_score_of`]).
pub fn factorvae_score(
    k: usize,
    mut sample_factors: impl FnMut(usize, &mut Rng) -> Vec<f32>,
    mut encode_factors: impl FnMut(&[f32]) -> Result<Vec<f32>>,
    cfg: &FactorVaeScoreConfig,
) -> Result<FactorVaeScore> {
    if k < 2 {
        return Err(Error::Data(format!(
            "factorvae_score needs at least 2 factors to tell apart, got {k}"
        )));
    }
    if cfg.batch_size < 2
        || cfg.variance_points < 2
        || cfg.train_points == 0
        || cfg.eval_points == 0
        || !cfg.prune_threshold.is_finite()
    {
        return Err(Error::Data(
            "factorvae_score: batch_size and variance_points must be at least 2, train_points and eval_points at least 1, prune_threshold finite".into(),
        ));
    }
    let mut rng = Rng::new(cfg.seed);
    let f = sample_factors(cfg.variance_points, &mut rng);
    if f.len() != cfg.variance_points * k {
        return Err(Error::Shape {
            context: "factorvae_score: sampled factors".into(),
            expected: format!("{} × {k} values", cfg.variance_points),
            got: f.len().to_string(),
        });
    }
    let codes = encode_factors(&f)?;
    let d = code_dim(&codes, cfg.variance_points, "factorvae_score")?;
    let global = variances(&codes, d);
    // A dimension with zero variance cannot be normalised, whatever the threshold.
    let active: Vec<usize> = (0..d)
        .filter(|&j| global[j] > 0.0 && global[j].sqrt() >= cfg.prune_threshold)
        .collect();
    if active.is_empty() {
        return Ok(FactorVaeScore {
            train_accuracy: 0.0,
            eval_accuracy: 0.0,
            active_dims: 0,
        });
    }
    let mut run = |n: usize, rng: &mut Rng| {
        votes(
            n,
            k,
            d,
            cfg,
            &global,
            &active,
            rng,
            &mut sample_factors,
            &mut encode_factors,
        )
    };
    let train = run(cfg.train_points, &mut rng)?;
    let classifier: Vec<usize> = (0..d)
        .map(|j| {
            let mut best = 0;
            for y in 1..k {
                if train[y * d + j] > train[best * d + j] {
                    best = y;
                }
            }
            best
        })
        .collect();
    let eval = run(cfg.eval_points, &mut rng)?;
    Ok(FactorVaeScore {
        train_accuracy: vote_accuracy(&train, &classifier, d),
        eval_accuracy: vote_accuracy(&eval, &classifier, d),
        active_dims: active.len(),
    })
}

/// The FactorVAE score of `method` on scenes rendered by `data`'s simulator, factors drawn over their observed
/// ranges.
pub fn factorvae_score_of(
    data: &dyn Dataset,
    method: &dyn Method,
    device: &Device,
    cfg: &FactorVaeScoreConfig,
) -> Result<FactorVaeScore> {
    require_simulator(data, "factorvae_score")?;
    let sampler = FactorSampler::for_dataset(data)?;
    factorvae_score(
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
    let cfg: FactorVaeScoreConfig = entry.settings()?;
    let s = factorvae_score_of(ctx.data, ctx.method, ctx.device, &cfg)?;
    Ok(BTreeMap::from([
        ("factorvae_score".to_string(), s.eval_accuracy),
        ("factorvae_score_train".to_string(), s.train_accuracy),
        ("factorvae_active_dims".to_string(), s.active_dims as f64),
    ]))
}

crate::register_model_metric!(
    "factorvae_score",
    "FactorVAE score (Kim & Mnih 2018; disentanglement_lib): majority-vote accuracy of the least-varying normalised code dim when one factor is fixed (batch 64)",
    metric
);

#[cfg(test)]
mod tests {
    use super::super::simulated::test_support::{
        assert_scores_rank_codes, identity, identity_dataset, identity_method, linear_codes,
        mixed_sampler, unit_sampler,
    };
    use super::*;

    fn small() -> FactorVaeScoreConfig {
        FactorVaeScoreConfig {
            train_points: 2_000,
            eval_points: 1_000,
            variance_points: 2_000,
            ..Default::default()
        }
    }

    #[test]
    fn identity_codes_score_near_one_and_collapsed_dims_are_pruned() {
        let s = mixed_sampler();
        let score = factorvae_score(
            4,
            |n, r| s.sample(n, r),
            linear_codes(&identity(4), 4, 0.01, 1),
            &small(),
        )
        .unwrap();
        println!("factorvae identity (mixed factors, noise 0.01): {score:?}");
        assert!(score.eval_accuracy >= 0.95, "{score:?}");
        assert_eq!(score.active_dims, 4);
        // Two extra dimensions: one near-constant (pruned), one pure noise (kept, never the argmin).
        let mut m = identity(4);
        m.extend([0.0; 8]);
        let mut base = linear_codes(&m, 4, 0.0, 1);
        let mut noise = Rng::new(4);
        let with_extra = factorvae_score(
            4,
            |n, r| s.sample(n, r),
            |f: &[f32]| {
                let mut c = base(f)?;
                let e = noise.normal_vec(c.len());
                for (i, v) in c.iter_mut().enumerate() {
                    *v += e[i]
                        * if i % 6 == 4 {
                            0.001
                        } else if i % 6 == 5 {
                            1.0
                        } else {
                            0.01
                        };
                }
                Ok(c)
            },
            &small(),
        )
        .unwrap();
        println!("factorvae identity + collapsed + noise dims: {with_extra:?}");
        assert_eq!(with_extra.active_dims, 5);
        assert!(with_extra.eval_accuracy >= 0.95, "{with_extra:?}");
    }

    #[test]
    fn mixed_and_noise_codes_score_lower() {
        assert_scores_rank_codes("factorvae", &|k, codes| {
            let s = unit_sampler(k);
            factorvae_score(k, |n, r| s.sample(n, r), codes, &small())
                .unwrap()
                .eval_accuracy
        });
    }

    #[test]
    fn model_wrapper_renders_encodes_and_rejects_data_without_simulator() {
        let cfg = FactorVaeScoreConfig {
            batch_size: 16,
            train_points: 300,
            eval_points: 200,
            variance_points: 500,
            ..Default::default()
        };
        let method = identity_method(3);
        let dev = Device::Cpu;
        let s = factorvae_score_of(&identity_dataset(3, true), &method, &dev, &cfg).unwrap();
        println!("factorvae wrapper (identity encoder on an identity renderer): {s:?}");
        assert!(s.eval_accuracy >= 0.95, "{s:?}");
        let err = factorvae_score_of(&identity_dataset(3, false), &method, &dev, &cfg)
            .unwrap_err()
            .to_string();
        assert!(err.contains("simulator"), "{err}");
        let bad = FactorVaeScoreConfig {
            batch_size: 1,
            ..cfg
        };
        assert!(factorvae_score_of(&identity_dataset(3, true), &method, &dev, &bad).is_err());
    }
}

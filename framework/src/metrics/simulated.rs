//! Shared parts of the scores that draw fresh data instead of reading the evaluation split: the factor sampler
//! (independent draws over each factor's observed range) and the render → encode pipeline a trained run offers
//! them.

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::method::Method;
use crate::rng::Rng;
use candle_core::{Device, Tensor};
use rand::Rng as _;

/// How one factor is drawn.
#[derive(Clone, Debug, PartialEq)]
pub enum FactorRange {
    /// Uniform on `[lo, hi]` (a point when `lo == hi`).
    Continuous { lo: f32, hi: f32 },
    /// Uniform over these values (the distinct values observed for an integer-valued factor).
    Discrete(Vec<f32>),
}

/// Draws factor vectors with every factor independent, as disentanglement_lib's `sample_factors` does (there:
/// uniform over each factor's grid of values).
#[derive(Clone, Debug, PartialEq)]
pub struct FactorSampler {
    pub ranges: Vec<FactorRange>,
}

impl FactorSampler {
    pub fn new(ranges: Vec<FactorRange>) -> Result<Self> {
        if ranges.is_empty() {
            return Err(Error::Data(
                "a factor sampler needs at least one factor".into(),
            ));
        }
        for (j, r) in ranges.iter().enumerate() {
            let ok = match r {
                FactorRange::Continuous { lo, hi } => lo.is_finite() && hi.is_finite() && lo <= hi,
                FactorRange::Discrete(v) => !v.is_empty() && v.iter().all(|x| x.is_finite()),
            };
            if !ok {
                return Err(Error::Data(format!(
                    "factor {j}: bad sampling range {r:?} (needs finite values, lo ≤ hi)"
                )));
            }
        }
        Ok(Self { ranges })
    }

    /// From observed factors (`n × k`, row-major): a factor whose values are all integers is drawn uniformly
    /// from its distinct observed values, any other uniformly on `[min, max]` of its observed values.
    pub fn from_observed(factors: &[f32], k: usize) -> Result<Self> {
        if k == 0 || factors.is_empty() || !factors.len().is_multiple_of(k) {
            return Err(Error::Shape {
                context: "factor sampler".into(),
                expected: format!("a non-empty n × {k} factor matrix"),
                got: format!("{} values", factors.len()),
            });
        }
        let mut ranges = Vec::with_capacity(k);
        for j in 0..k {
            let col: Vec<f32> = factors.iter().skip(j).step_by(k).copied().collect();
            if let Some(bad) = col.iter().find(|v| !v.is_finite()) {
                return Err(Error::Data(format!(
                    "factor {j} has a non-finite value {bad}"
                )));
            }
            if col.iter().all(|v| v.fract() == 0.0) {
                let mut values = col;
                values.sort_by(f32::total_cmp);
                values.dedup();
                ranges.push(FactorRange::Discrete(values));
            } else {
                let lo = col.iter().copied().fold(f32::INFINITY, f32::min);
                let hi = col.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                ranges.push(FactorRange::Continuous { lo, hi });
            }
        }
        Self::new(ranges)
    }

    /// The ranges observed over all rows of `data`.
    pub fn for_dataset(data: &dyn Dataset) -> Result<Self> {
        let rows: Vec<usize> = (0..data.len()).collect();
        let factors = data
            .factors(&rows)
            .ok_or_else(|| Error::Data("this dataset has no true factors to sample".into()))?;
        Self::from_observed(&factors, data.spec().factor_names.len())
    }

    pub fn k(&self) -> usize {
        self.ranges.len()
    }

    /// `n` independent factor vectors, row-major `n × k`.
    pub fn sample(&self, n: usize, rng: &mut Rng) -> Vec<f32> {
        let k = self.k();
        let mut out = Vec::with_capacity(n * k);
        for _ in 0..n {
            for r in &self.ranges {
                out.push(match r {
                    FactorRange::Continuous { lo, hi } if lo < hi => {
                        lo + (hi - lo) * rng.inner().random::<f32>()
                    }
                    FactorRange::Continuous { lo, .. } => *lo,
                    FactorRange::Discrete(v) => v[rng.below(v.len())],
                });
            }
        }
        out
    }
}

/// Rows per `render` + `encode` call of [`encode_rendered`].
const RENDER_BATCH: usize = 256;

/// Renders factor vectors (`n × k`, row-major) with the dataset's simulator and encodes them with the method:
/// `n × d` codes (the method's [`Method::encode`], i.e. posterior means), row-major.
pub fn encode_rendered(
    data: &dyn Dataset,
    method: &dyn Method,
    device: &Device,
    factors: &[f32],
) -> Result<Vec<f32>> {
    let spec = data.spec();
    let k = spec.factor_names.len();
    if k == 0 || !factors.len().is_multiple_of(k) {
        return Err(Error::Shape {
            context: "encode_rendered".into(),
            expected: format!("n × {k} factor values"),
            got: format!("{} values", factors.len()),
        });
    }
    let mut codes = Vec::new();
    for chunk in factors.chunks(RENDER_BATCH * k) {
        let n = chunk.len() / k;
        let obs = data.render(chunk)?;
        if obs.len() != n * spec.obs_len() {
            return Err(Error::Shape {
                context: "rendered observations".into(),
                expected: format!("{n} × {} values", spec.obs_len()),
                got: format!("{} values", obs.len()),
            });
        }
        let mut shape = vec![n];
        shape.extend_from_slice(&spec.obs_shape);
        let x = Tensor::from_vec(obs, shape, device)?;
        let z = method.encode(&x)?.to_dtype(candle_core::DType::F32)?;
        codes.extend(z.flatten_all()?.to_vec1::<f32>()?);
    }
    Ok(codes)
}

/// Checks that a dataset can serve a score that renders scenes from factors.
pub fn require_simulator(data: &dyn Dataset, metric: &str) -> Result<()> {
    if !data.can_render() {
        return Err(Error::Data(format!(
            "metric `{metric}` renders new scenes from factor vectors: it needs a simulator dataset (e.g. Pendulum); this dataset cannot render"
        )));
    }
    if data.spec().factor_names.is_empty() {
        return Err(Error::Data(format!(
            "metric `{metric}` needs a dataset with true factors"
        )));
    }
    Ok(())
}

/// Codes returned for `rows` factor vectors: checks the count and finiteness, returns the code dimension.
pub(crate) fn code_dim(codes: &[f32], rows: usize, metric: &str) -> Result<usize> {
    if rows == 0 || codes.is_empty() || !codes.len().is_multiple_of(rows) {
        return Err(Error::Shape {
            context: format!("{metric}: codes"),
            expected: format!("{rows} rows of d ≥ 1 values"),
            got: format!("{} values", codes.len()),
        });
    }
    if codes.iter().any(|v| !v.is_finite()) {
        return Err(Error::Data(format!(
            "{metric}: the representation has non-finite values"
        )));
    }
    Ok(codes.len() / rows)
}

/// Samplers, mixing matrices, a tiny dataset and an identity-encoder model shared by the score tests.
#[cfg(test)]
pub(crate) mod test_support {
    use super::*;
    use crate::components::{Independent, MlpDecoder, MlpEncoder, StdNormal};
    use crate::data::{ArrayDataset, DataSpec, Observations};
    use crate::dist::Likelihood;
    use crate::method::{ElboMethod, ElboParts, MethodContext};
    use crate::optim::AdamConfig;

    /// Four factors: uniform on [0, 1], ten integers, uniform on [−2, 5], three integers.
    pub fn mixed_sampler() -> FactorSampler {
        FactorSampler::new(vec![
            FactorRange::Continuous { lo: 0.0, hi: 1.0 },
            FactorRange::Discrete((0..10).map(|v| v as f32).collect()),
            FactorRange::Continuous { lo: -2.0, hi: 5.0 },
            FactorRange::Discrete(vec![0.0, 1.0, 2.0]),
        ])
        .unwrap()
    }

    /// `k` factors uniform on [0, 1].
    pub fn unit_sampler(k: usize) -> FactorSampler {
        FactorSampler::new(vec![FactorRange::Continuous { lo: 0.0, hi: 1.0 }; k]).unwrap()
    }

    /// Codes = `m` (`d × k`, row-major) applied to each factor row, plus Gaussian noise of std `noise`.
    pub fn linear_codes(
        m: &[f64],
        k: usize,
        noise: f32,
        seed: u64,
    ) -> impl FnMut(&[f32]) -> Result<Vec<f32>> {
        let m = m.to_vec();
        let d = m.len() / k;
        let mut rng = Rng::new(seed);
        move |f: &[f32]| {
            let e = rng.normal_vec(f.len() / k * d);
            Ok(f.chunks_exact(k)
                .flat_map(|row| {
                    (0..d)
                        .map(|i| (0..k).map(|j| m[i * k + j] * row[j] as f64).sum::<f64>() as f32)
                        .collect::<Vec<_>>()
                })
                .zip(e)
                .map(|(c, e)| c + noise * e)
                .collect())
        }
    }

    /// The k × k identity, row-major.
    pub fn identity(k: usize) -> Vec<f64> {
        (0..k * k).map(|i| (i / k == i % k) as u8 as f64).collect()
    }

    /// A score that sees `k` factors uniform on [0, 1] through `codes` and returns its eval accuracy.
    pub type ScoreOf<'a> = &'a dyn Fn(usize, &mut dyn FnMut(&[f32]) -> Result<Vec<f32>>) -> f64;

    /// The ranking both fixed-factor scores must produce. With 10 factors a random rotation spreads every factor
    /// over many codes and the score drops well below the identity's; with 4 factors a random rotation usually
    /// keeps one dominant code per factor and still scores high (both scores only ask that fixing a factor leaves
    /// a distinctive trace), so the 4-factor case uses the rotation that mixes every factor equally into every
    /// code, which scores at chance. Codes independent of the factors score at chance (1/k).
    pub fn assert_scores_rank_codes(name: &str, score: ScoreOf) {
        let ident = score(10, &mut linear_codes(&identity(10), 10, 0.01, 1));
        let rotated = score(10, &mut linear_codes(&random_rotation(10, 5), 10, 0.01, 1));
        let ident4 = score(4, &mut linear_codes(&identity(4), 4, 0.01, 1));
        let rotated4 = score(4, &mut linear_codes(&random_rotation(4, 5), 4, 0.01, 1));
        let mixed4 = score(4, &mut linear_codes(&equal_mixing(), 4, 0.01, 1));
        let mut noise_rng = Rng::new(9);
        let noise4 = score(4, &mut |f: &[f32]| Ok(noise_rng.normal_vec(f.len())));
        let noise10 = score(10, &mut |f: &[f32]| Ok(noise_rng.normal_vec(f.len())));
        println!(
            "{name} (uniform factors): k=10 identity {ident:.4}, random rotation {rotated:.4}, noise {noise10:.4}; \
             k=4 identity {ident4:.4}, random rotation {rotated4:.4}, equal mixing {mixed4:.4}, noise {noise4:.4}"
        );
        assert!(
            ident >= 0.95 && ident4 >= 0.95,
            "{name}: identity {ident} / {ident4}"
        );
        assert!(rotated < 0.8, "{name}: rotation {rotated}");
        assert!(rotated4 <= ident4, "{name}: k=4 rotation {rotated4}");
        assert!(mixed4 < 0.35, "{name}: equal mixing {mixed4}");
        assert!((noise4 - 0.25).abs() < 0.06, "{name}: noise k=4 {noise4}");
        assert!((noise10 - 0.1).abs() < 0.05, "{name}: noise k=10 {noise10}");
    }

    /// A random `k × k` rotation (Gram–Schmidt of a Gaussian matrix), row-major.
    pub fn random_rotation(k: usize, seed: u64) -> Vec<f64> {
        let mut rng = Rng::new(seed);
        let mut rows: Vec<Vec<f64>> = Vec::new();
        while rows.len() < k {
            let mut v: Vec<f64> = rng.normal_vec(k).into_iter().map(f64::from).collect();
            for r in &rows {
                let dot: f64 = v.iter().zip(r).map(|(a, b)| a * b).sum();
                v.iter_mut().zip(r).for_each(|(a, b)| *a -= dot * b);
            }
            let norm = v.iter().map(|a| a * a).sum::<f64>().sqrt();
            if norm > 1e-6 {
                rows.push(v.into_iter().map(|a| a / norm).collect());
            }
        }
        rows.concat()
    }

    /// The 4 × 4 rotation that mixes every factor into every code with equal weight (Hadamard / 2).
    pub fn equal_mixing() -> Vec<f64> {
        [
            [1.0, 1.0, 1.0, 1.0],
            [1.0, -1.0, 1.0, -1.0],
            [1.0, 1.0, -1.0, -1.0],
            [1.0, -1.0, -1.0, 1.0],
        ]
        .iter()
        .flatten()
        .map(|v| v * 0.5)
        .collect()
    }

    /// 400 rows whose observation is the factor vector itself (`obs_shape = [k]`); factor 0 takes the
    /// integers 0..9, the others are uniform on [0, 1]. `render` (when asked for) returns the factors.
    pub fn identity_dataset(k: usize, render: bool) -> ArrayDataset {
        let n = 400;
        let mut rng = Rng::new(11);
        let mut factors = rng.uniform_vec(n * k, 0.0, 1.0);
        for r in 0..n {
            factors[r * k] = (r % 10) as f32;
        }
        let spec = DataSpec {
            obs_shape: vec![k],
            factor_names: (0..k).map(|j| format!("f{j}")).collect(),
            label_names: vec![],
            graph: None,
            ..Default::default()
        };
        let data = ArrayDataset::new(
            spec,
            Observations::F32(factors.clone()),
            Some(factors),
            None,
            (300..n).collect(),
        )
        .unwrap();
        if render {
            data.with_renderer(|f| Ok(f.to_vec()))
        } else {
            data
        }
    }

    /// A linear-Gaussian VAE on `obs_len`-vectors with `d` latents: `Independent` causal layer, `StdNormal` prior,
    /// linear encoder and decoder (`hidden: []`), Gaussian likelihood with std `std`.
    pub fn linear_vae(obs_len: usize, d: usize, std: f64) -> ElboMethod {
        let spec = DataSpec {
            obs_shape: vec![obs_len],
            factor_names: vec![],
            label_names: vec![],
            graph: None,
            ..Default::default()
        };
        let encoder = MlpEncoder {
            hidden: vec![],
            activation: Default::default(),
            variance: Default::default(),
        };
        let decoder = MlpDecoder {
            hidden: vec![],
            activation: Default::default(),
            likelihood: Likelihood::Gaussian { std },
            reduction: Default::default(),
            batch_norm: false,
        };
        let parts = ElboParts {
            latent_dim: d,
            concepts: Default::default(),
            layers: Default::default(),
            encoder: &encoder,
            causal: &Independent {},
            prior: &StdNormal {},
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
        ElboMethod::new(&parts, &ctx).unwrap()
    }

    /// Sets a parameter of `method` by name (row-major values).
    pub fn set_param(method: &ElboMethod, name: &str, values: &[f32]) {
        let map = method.varmaps()[0].data().lock().unwrap();
        let var = map
            .get(name)
            .unwrap_or_else(|| panic!("no parameter {name}"));
        let t = Tensor::from_slice(values, var.dims(), &Device::Cpu).unwrap();
        var.set(&t).unwrap();
    }

    /// A model whose encoder mean is its input (`k`-vectors), so its codes are the rendered factors.
    pub fn identity_method(k: usize) -> ElboMethod {
        let m = linear_vae(k, k, 1.0);
        let mut w = vec![0f32; k * 2 * k];
        for i in 0..k {
            w[i * 2 * k + i] = 1.0;
        }
        set_param(&m, "encoder.fc0.weight", &w);
        set_param(&m, "encoder.fc0.bias", &vec![0.0; 2 * k]);
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Experiment;
    use crate::metrics::{BetaVaeScoreConfig, FactorVaeScoreConfig, IwLoglikConfig};

    #[test]
    fn integer_factors_sample_observed_values_and_others_their_range() {
        let f = [1.0, 0.5, 3.0, 2.25, 1.0, 1.5, 7.0, 0.75];
        let s = FactorSampler::from_observed(&f, 2).unwrap();
        assert_eq!(
            s.ranges,
            vec![
                FactorRange::Discrete(vec![1.0, 3.0, 7.0]),
                FactorRange::Continuous { lo: 0.5, hi: 2.25 }
            ]
        );
        let draws = s.sample(500, &mut Rng::new(0));
        assert!(draws
            .chunks(2)
            .all(|r| [1.0, 3.0, 7.0].contains(&r[0]) && (0.5..=2.25).contains(&r[1])));
        assert!(FactorSampler::from_observed(&[1.0, f32::NAN], 1).is_err());
        assert!(FactorSampler::from_observed(&[1.0, 2.0, 3.0], 2).is_err());
    }

    #[test]
    fn score_settings_parse_and_override() {
        let text = r#"(
            data: {"Pendulum": ()},
            model: {"Elbo": (latent_dim: 2, encoder: {"Mlp": (hidden: [])}, decoder: {"Mlp": (hidden: [])})},
            eval: (metrics: ["mcc", {"betavae_score": (train_points: 100)}, "factorvae_score", "iw_loglik"]),
        )"#;
        let exp = Experiment::parse(
            text,
            "test",
            &[
                "eval.metrics.factorvae_score.batch_size=8".into(),
                "eval.metrics.iw_loglik.samples=7".into(),
            ],
        )
        .unwrap();
        let m = &exp.eval.metrics;
        assert_eq!(m[0].name(), "mcc");
        let betavae: BetaVaeScoreConfig = m[1].settings().unwrap();
        assert_eq!((betavae.train_points, betavae.eval_points), (100, 5_000));
        let factorvae: FactorVaeScoreConfig = m[2].settings().unwrap();
        assert_eq!((factorvae.batch_size, factorvae.train_points), (8, 10_000));
        let iw: IwLoglikConfig = m[3].settings().unwrap();
        assert_eq!(iw.samples, 7);
        // A bare name keeps the defaults; the saved config reads back the same.
        let plain = Experiment::parse(text, "test", &[]).unwrap();
        let iw: IwLoglikConfig = plain.eval.metrics[3].settings().unwrap();
        assert_eq!(iw, IwLoglikConfig::default());
        let again = Experiment::parse(&exp.to_ron().unwrap(), "saved", &[]).unwrap();
        let factorvae: FactorVaeScoreConfig = again.eval.metrics[2].settings().unwrap();
        assert_eq!(factorvae.batch_size, 8);
        for bad in [
            "eval.metrics.betavae_score.nope=1",
            "eval.metrics.mcc.rows=1",
            "eval.metrics.mig.rows=1",
        ] {
            assert!(
                Experiment::parse(text, "test", &[bad.into()]).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_former_settings_keys_are_an_error_naming_the_new_form() {
        let body = r#"data: {"Pendulum": ()},
            model: {"Elbo": (latent_dim: 2, encoder: {"Mlp": (hidden: [])}, decoder: {"Mlp": (hidden: [])})},"#;
        for (eval, key, new) in [
            (
                "(metrics: [\"intervention\"], intervention: (rows: 8))",
                "eval.intervention",
                "{\"intervention\": (",
            ),
            (
                "(scores: (betavae: (train_points: 100)))",
                "eval.scores",
                "{\"betavae_score\": (",
            ),
        ] {
            let text = format!("({body} eval: {eval})");
            let err = Experiment::parse(&text, "old.ron", &[]).unwrap_err();
            let shown = err.to_string();
            assert!(matches!(err, crate::error::Error::Config { .. }), "{shown}");
            assert!(shown.contains(key) && shown.contains(new), "{shown}");
            let ok = format!("({body})");
            let err = Experiment::parse(&ok, "old.ron", &[format!("{key}.rows=8")]).unwrap_err();
            let shown = err.to_string();
            assert!(matches!(err, crate::error::Error::Config { .. }), "{shown}");
            assert!(shown.contains(key) && shown.contains(new), "{shown}");
        }
    }
}

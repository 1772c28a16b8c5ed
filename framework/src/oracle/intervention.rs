//! Intervention accuracy against the simulator (docs/methods/metrics.md): do(node = v) in the model, decode, read the
//! factors off the generated image with the [`FactorRegressor`], and compare them with the factors the data's own
//! SCM gives under the same intervention ([`Dataset::simulate_do`]).
//!
//! Protocol, for `rows` test images spread over the split and every node i:
//! - values: `values` quantiles of factor i over those images (so every do() stays inside the data's range);
//! - units: the model takes do() values in its own units. A per-node map fitted on the same images from the true
//!   factor f to the model's node value ([`Method::node_values`]) converts a factor value into the model's
//!   ([`Calibration`]): by default a least-squares line v = a + b·f, where a node that does not encode its factor
//!   (b ≈ 0) cannot be steered; or, for nodes that are monotone but nonlinear in their factor (e.g. logits of
//!   min-max-scaled labels), quantile matching, where a node whose |Spearman correlation| with its factor is
//!   below [`MIN_RANK_CORR`] gets the same constant (its mean) and so cannot be steered either. The line's slope
//!   is reported as `intervention_slope_<factor>` with either map, the Spearman correlation (quantile matching
//!   only) as `intervention_rank_corr_<factor>`;
//! - descendants of i (true graph): accurate when |measured − simulated| ≤ `tolerance` (one label unit), over all
//!   do()s (`intervention_acc`) and per descendant factor (`intervention_acc_<factor>`, `intervention_mae_<factor>`);
//! - the intervened factor: the same test against v;
//! - non-descendants: drift = |measured after do − measured on the model's reconstruction|, i.e. how much the
//!   intervention moved what it should not have (measured against the reconstruction, so the model's
//!   reconstruction error is not counted as drift), overall, per do() (`intervention_drift_do_<node>`) and per
//!   drifting factor (`intervention_drift_<factor>`); their error against the true factors is reported too;
//! - the instrument's floor, what a perfect model would score: the simulator renders each intervened scene, the
//!   regressor reads it, and the readings are scored the same way (`intervention_acc_floor` against the simulated
//!   descendants; `intervention_drift_floor` and `intervention_drift_floor_do_<node>` against the readings of the
//!   unintervened real images).
//! - the model's own ceiling, what it would score with an exact SCM and abduction: the model reconstructs the
//!   simulator's render of each intervened scene, G(E(x_do)), and the regressor reads that
//!   (`intervention_acc_ceiling`, per factor `intervention_acc_ceiling_<factor>`). The gap from the ceiling down
//!   to `intervention_acc` is the causal layer's; the gap from the floor down to the ceiling is the encoder's and
//!   generator's.
//!
//! Nodes are matched to factors by index: supervised methods align them by construction.

use super::regressor::{cache_key, FactorRegressor, RegressorConfig};
use crate::components::Do;
use crate::data::{make_batch, Split};
use crate::error::{Error, Result};
use crate::eval_context::{EvalContext, MetricEntry, MetricSettings};
use crate::metrics::EvalInputs;
use candle_core::Tensor;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The settings of the `intervention` metric, given with it in `eval.metrics`:
/// `{"intervention": (calibration: Quantile)}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InterventionEvalConfig {
    /// Test images intervened on, spread over the split.
    pub rows: usize,
    /// do() values per node.
    pub values: usize,
    /// Largest error (factor units = label units) that counts as accurate.
    pub tolerance: f32,
    /// Where the regressor is cached (default: `<run>/oracle`, or a sweep's `OUT/oracle`; the `CARVE_ORACLE_CACHE`
    /// variable overrides both).
    pub cache_dir: Option<PathBuf>,
    pub regressor: RegressorConfig,
    /// How do() values are converted from factor units into the model's node units.
    pub calibration: Calibration,
}

/// How a factor value is converted into a node value (fitted per node on the evaluated test images).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Calibration {
    /// Least-squares line from factor to node value: right when the node is linear in its factor.
    #[default]
    Linear,
    /// Quantile matching: a factor value's empirical CDF position among the factors, mapped to the node value at
    /// that quantile (the mirrored one when the node decreases with its factor). Right for any monotone relation.
    Quantile,
}

#[typetag::serde(name = "intervention")]
impl MetricSettings for InterventionEvalConfig {
    fn clone_box(&self) -> Box<dyn MetricSettings> {
        Box::new(self.clone())
    }
}

impl Default for InterventionEvalConfig {
    fn default() -> Self {
        Self {
            rows: 256,
            values: 8,
            tolerance: 1.0,
            cache_dir: None,
            regressor: RegressorConfig::default(),
            calibration: Calibration::default(),
        }
    }
}

/// Running sums for a mean and a within-tolerance fraction.
#[derive(Default, Clone, Copy)]
struct Tally {
    abs: f64,
    hits: f64,
    n: f64,
}

impl Tally {
    fn add(&mut self, err: f32, tol: f32) {
        self.abs += err.abs() as f64;
        self.hits += (err.abs() <= tol) as u8 as f64;
        self.n += 1.0;
    }
    fn merge(&mut self, t: Tally) {
        self.abs += t.abs;
        self.hits += t.hits;
        self.n += t.n;
    }
    fn mae(&self) -> f64 {
        self.abs / self.n
    }
    fn acc(&self) -> f64 {
        self.hits / self.n
    }
}

/// Least-squares line y = a + b·x.
fn fit_line(x: &[f32], y: &[f32]) -> (f32, f32) {
    let n = x.len() as f64;
    let mx = x.iter().map(|&v| v as f64).sum::<f64>() / n;
    let my = y.iter().map(|&v| v as f64).sum::<f64>() / n;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (&a, &b) in x.iter().zip(y) {
        sxy += (a as f64 - mx) * (b as f64 - my);
        sxx += (a as f64 - mx).powi(2);
    }
    let b = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    ((my - b * mx) as f32, b as f32)
}

/// Weakest |Spearman correlation| between a factor and its node for which [`Calibration::Quantile`] steers the
/// node; below it the node is taken not to encode its factor.
const MIN_RANK_CORR: f32 = 0.2;

fn to_f64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

/// Spearman rank correlation of `x` and `y` (0 when either is constant).
fn spearman(x: &[f32], y: &[f32]) -> f32 {
    crate::metrics::mcc::spearman(&to_f64(x), &to_f64(y)) as f32
}

/// Piecewise-linear interpolation of the knots (`xs` strictly increasing, non-empty) at `v`, clamped at the ends.
fn interp(xs: &[f32], ys: &[f32], v: f32) -> f32 {
    let j = xs.partition_point(|&x| x <= v);
    if j == 0 {
        return ys[0];
    }
    if j == xs.len() {
        return ys[j - 1];
    }
    let t = (v - xs[j - 1]) / (xs[j] - xs[j - 1]);
    ys[j - 1] + t * (ys[j] - ys[j - 1])
}

/// The distinct sorted values of `v` (at least two) and their empirical CDF positions in [0, 1] (mid-rank over ties).
fn cdf_knots(v: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let last = (v.len() - 1) as f64;
    let mut knots: Vec<(f32, f64)> = v
        .iter()
        .copied()
        .zip(crate::metrics::mcc::ranks(&to_f64(v)))
        .collect();
    knots.sort_by(|p, q| p.0.total_cmp(&q.0));
    knots.dedup_by(|p, q| p.0 == q.0);
    knots
        .into_iter()
        .map(|(x, r)| (x, (r / last) as f32))
        .unzip()
}

/// One node's conversion from factor units into node units (see [`Calibration`]).
#[derive(Clone, Debug, PartialEq)]
enum NodeCalibration {
    /// v = a + b·f.
    Line { a: f32, b: f32 },
    /// Quantile matching: distinct sorted factor and node values with their CDF positions ([`cdf_knots`]); a
    /// factor value's position p is read off the node's knots at p (1 − p when `decreasing`).
    Quantile {
        factor: Vec<f32>,
        factor_cdf: Vec<f32>,
        node: Vec<f32>,
        node_cdf: Vec<f32>,
        decreasing: bool,
    },
}

impl NodeCalibration {
    /// Fits the conversion from the true factors `f` to the node values `y` (the same images, in order).
    fn fit(method: Calibration, f: &[f32], y: &[f32]) -> Self {
        match method {
            Calibration::Linear => {
                let (a, b) = fit_line(f, y);
                Self::Line { a, b }
            }
            Calibration::Quantile => {
                let rho = spearman(f, y);
                if rho.abs() < MIN_RANK_CORR {
                    // Does not encode its factor: the constant the line gives at b = 0 (the node mean).
                    let mean = y.iter().map(|&v| v as f64).sum::<f64>() / y.len() as f64;
                    return Self::Line {
                        a: mean as f32,
                        b: 0.0,
                    };
                }
                // |rho| > 0 implies at least two distinct factor and node values.
                let (factor, factor_cdf) = cdf_knots(f);
                let (node, node_cdf) = cdf_knots(y);
                Self::Quantile {
                    factor,
                    factor_cdf,
                    node,
                    node_cdf,
                    decreasing: rho < 0.0,
                }
            }
        }
    }

    /// The node value for factor value `v`.
    fn to_node(&self, v: f32) -> f32 {
        match self {
            Self::Line { a, b } => a + b * v,
            Self::Quantile {
                factor,
                factor_cdf,
                node,
                node_cdf,
                decreasing,
            } => {
                let p = interp(factor, factor_cdf, v);
                interp(node_cdf, node, if *decreasing { 1.0 - p } else { p })
            }
        }
    }
}

/// The `q`-quantiles (midpoints (j + ½)/q) of `v`.
fn quantiles(v: &[f32], q: usize) -> Vec<f32> {
    let mut s = v.to_vec();
    s.sort_by(f32::total_cmp);
    (0..q)
        .map(|j| s[((2 * j + 1) * s.len() / (2 * q)).min(s.len() - 1)])
        .collect()
}

fn to_rows(t: &Tensor) -> Result<Vec<f32>> {
    Ok(t.flatten_all()?.to_vec1::<f32>()?)
}

/// The cache a sweep gives its runs (`OUT/oracle`), so that they train one regressor between them: used when
/// neither `CARVE_ORACLE_CACHE` nor the config's `cache_dir` names one.
pub const SWEEP_CACHE_ENV: &str = "CARVE_SWEEP_ORACLE_CACHE";

/// The regressor for the run's data, from the cache or trained now.
pub fn regressor_for(ctx: &EvalContext, cfg: &InterventionEvalConfig) -> Result<FactorRegressor> {
    let dir = std::env::var_os("CARVE_ORACLE_CACHE")
        .map(PathBuf::from)
        .or_else(|| cfg.cache_dir.clone())
        .or_else(|| std::env::var_os(SWEEP_CACHE_ENV).map(PathBuf::from))
        .unwrap_or_else(|| ctx.run_dir.join("oracle"));
    let data_key = serde_json::to_string(ctx.data_config)
        .map_err(|e| Error::msg(format!("cannot serialise the data config: {e}")))?;
    let reg_key = serde_json::to_string(&cfg.regressor)
        .map_err(|e| Error::msg(format!("cannot serialise the regressor config: {e}")))?;
    FactorRegressor::load_or_train(
        ctx.data,
        &cfg.regressor,
        ctx.device,
        &dir,
        &cache_key(&[&data_key, &reg_key]),
    )
}

/// Intervention accuracy of the run's model (see the module docs for the protocol and the reported names).
pub fn intervention_accuracy(
    ctx: &EvalContext,
    cfg: &InterventionEvalConfig,
) -> Result<BTreeMap<String, f64>> {
    let data = ctx.data;
    let spec = data.spec();
    if !data.can_simulate() || !data.can_render() {
        return Err(Error::Data(
            "intervention accuracy needs a simulator dataset (render and simulate_do), e.g. Pendulum".into(),
        ));
    }
    let graph = spec
        .graph
        .as_ref()
        .ok_or_else(|| Error::Data("intervention accuracy needs the data's true graph".into()))?;
    let names = &spec.factor_names;
    let k = names.len();
    let reg = regressor_for(ctx, cfg)?;
    let dev = ctx.device;
    let method = ctx.method;

    let all = data.split(Split::Test);
    let n = cfg.rows.clamp(1, all.len());
    let rows: Vec<usize> = (0..n).map(|i| all[i * all.len() / n]).collect();
    let batch = make_batch(data, &rows, dev, &mut Vec::new())?;
    let factors = data.factors(&rows).unwrap_or_default();
    let nodes = method.node_values(&batch.x)?.ok_or_else(|| {
        Error::Data(
            "intervention accuracy needs a method with causal nodes (a causal layer with a graph)"
                .into(),
        )
    })?;
    let n_nodes = nodes.dims()[1];
    if n_nodes != k {
        return Err(Error::Shape {
            context: "intervention accuracy (nodes are matched to factors by index)".into(),
            expected: format!("{k} causal nodes, one per factor"),
            got: format!("{n_nodes}"),
        });
    }
    let nodes = to_rows(&nodes)?;
    let col = |m: &[f32], c: usize| -> Vec<f32> { m.chunks_exact(k).map(|r| r[c]).collect() };

    let mut out = BTreeMap::new();
    for (c, mae) in reg.mae(data, Split::Test, dev)?.into_iter().enumerate() {
        out.insert(format!("oracle_mae_{}", names[c]), mae);
    }
    let base = to_rows(&reg.predict(&method.reconstruct(&batch.x)?)?)?;
    let real = to_rows(&reg.predict(&batch.x)?)?;
    let mut obs_shape = vec![n];
    obs_shape.extend_from_slice(&spec.obs_shape);
    for c in 0..k {
        let err: f64 = (0..n)
            .map(|r| (base[r * k + c] - factors[r * k + c]).abs() as f64)
            .sum();
        out.insert(format!("oracle_recon_mae_{}", names[c]), err / n as f64);
    }

    let tol = cfg.tolerance;
    let mut desc_all = Tally::default();
    let mut target_all = Tally::default();
    let mut drift_all = Tally::default();
    let mut nondesc_truth = Tally::default();
    let mut desc_per_factor = vec![Tally::default(); k];
    let mut drift_per_factor = vec![Tally::default(); k];
    let (mut floor_desc, mut floor_drift) = (Tally::default(), Tally::default());
    let mut ceiling_desc = Tally::default();
    let mut ceiling_per_factor = vec![Tally::default(); k];
    for (i, name) in names.iter().enumerate() {
        let (f_i, y_i) = (col(&factors, i), col(&nodes, i));
        out.insert(
            format!("intervention_slope_{name}"),
            fit_line(&f_i, &y_i).1 as f64,
        );
        if cfg.calibration == Calibration::Quantile {
            out.insert(
                format!("intervention_rank_corr_{name}"),
                spearman(&f_i, &y_i) as f64,
            );
        }
        let calib = NodeCalibration::fit(cfg.calibration, &f_i, &y_i);
        let desc = graph.descendants(i);
        let (mut d_i, mut t_i, mut drift_i, mut floor_i) = (
            Tally::default(),
            Tally::default(),
            Tally::default(),
            Tally::default(),
        );
        for v in quantiles(&f_i, cfg.values.max(1)) {
            let done = method.intervene(
                &batch.x,
                &[Do {
                    node: i,
                    value: calib.to_node(v),
                }],
            )?;
            let measured = to_rows(&reg.predict(&done)?)?;
            let mut truths = Vec::with_capacity(n * k);
            for r in 0..n {
                truths.extend(
                    data.simulate_do(&factors[r * k..(r + 1) * k], &[Do { node: i, value: v }])?,
                );
            }
            // The simulator's own render of each intervened scene, read by the same regressor: what a perfect
            // model would score (the instrument's floor).
            let rendered = Tensor::from_vec(data.render(&truths)?, obs_shape.as_slice(), dev)?;
            let perfect = to_rows(&reg.predict(&rendered)?)?;
            let ceiling = to_rows(&reg.predict(&method.reconstruct(&rendered)?)?)?;
            for r in 0..n {
                let truth = &truths[r * k..(r + 1) * k];
                let (m, p) = (&measured[r * k..(r + 1) * k], &perfect[r * k..(r + 1) * k]);
                for c in 0..k {
                    if c == i {
                        t_i.add(m[c] - truth[c], tol);
                    } else if desc[c] {
                        d_i.add(m[c] - truth[c], tol);
                        desc_per_factor[c].add(m[c] - truth[c], tol);
                        floor_desc.add(p[c] - truth[c], tol);
                        let ceiling_err = ceiling[r * k + c] - truth[c];
                        ceiling_desc.add(ceiling_err, tol);
                        ceiling_per_factor[c].add(ceiling_err, tol);
                    } else {
                        drift_i.add(m[c] - base[r * k + c], tol);
                        drift_per_factor[c].add(m[c] - base[r * k + c], tol);
                        nondesc_truth.add(m[c] - truth[c], tol);
                        floor_i.add(p[c] - real[r * k + c], tol);
                    }
                }
            }
        }
        out.insert(format!("intervention_target_mae_{name}"), t_i.mae());
        out.insert(format!("intervention_target_acc_{name}"), t_i.acc());
        if d_i.n > 0.0 {
            out.insert(format!("intervention_acc_do_{name}"), d_i.acc());
        }
        if drift_i.n > 0.0 {
            out.insert(format!("intervention_drift_do_{name}"), drift_i.mae());
            out.insert(format!("intervention_drift_floor_do_{name}"), floor_i.mae());
        }
        floor_drift.merge(floor_i);
        desc_all.merge(d_i);
        target_all.merge(t_i);
        drift_all.merge(drift_i);
    }
    for (c, t) in desc_per_factor.iter().enumerate() {
        if t.n > 0.0 {
            out.insert(format!("intervention_mae_{}", names[c]), t.mae());
            out.insert(format!("intervention_acc_{}", names[c]), t.acc());
            out.insert(
                format!("intervention_acc_ceiling_{}", names[c]),
                ceiling_per_factor[c].acc(),
            );
        }
    }
    for (c, t) in drift_per_factor.iter().enumerate() {
        if t.n > 0.0 {
            out.insert(format!("intervention_drift_{}", names[c]), t.mae());
        }
    }
    if desc_all.n > 0.0 {
        out.insert("intervention_acc".into(), desc_all.acc());
        out.insert("intervention_acc_floor".into(), floor_desc.acc());
        out.insert("intervention_acc_ceiling".into(), ceiling_desc.acc());
        out.insert("intervention_desc_mae".into(), desc_all.mae());
    }
    out.insert("intervention_acc_target".into(), target_all.acc());
    if drift_all.n > 0.0 {
        out.insert("intervention_drift".into(), drift_all.mae());
        out.insert("intervention_drift_floor".into(), floor_drift.mae());
        out.insert("intervention_nondesc_mae".into(), nondesc_truth.mae());
    }
    Ok(out)
}

fn metric(
    ctx: &EvalContext,
    entry: &MetricEntry,
    _inputs: &EvalInputs,
) -> Result<BTreeMap<String, f64>> {
    intervention_accuracy(ctx, &entry.settings()?)
}

crate::register_model_metric!(
    "intervention",
    "do() accuracy against the simulator: descendants within one label unit (intervention_acc), non-descendant drift, per-factor MAE",
    metric
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_fit_and_quantiles() {
        let (a, b) = fit_line(&[0.0, 1.0, 2.0], &[1.0, 3.0, 5.0]);
        assert!((a - 1.0).abs() < 1e-6 && (b - 2.0).abs() < 1e-6);
        assert_eq!(fit_line(&[1.0, 1.0], &[0.0, 2.0]), (1.0, 0.0));
        let v: Vec<f32> = (0..100).map(|i| i as f32).collect();
        assert_eq!(quantiles(&v, 4), vec![12.0, 37.0, 62.0, 87.0]);
    }

    /// Factors spread unevenly over [0, 10] (with ties) and a DEAR-like node logit((f − min)/(max − min)), squashed
    /// away from 0 and 1 as a BCE-trained latent would be.
    fn logit_node(sign: f32) -> (Vec<f32>, Vec<f32>) {
        let f: Vec<f32> = (0..200)
            .map(|i| 10.0 * ((i * 37 % 200) as f32 / 199.0).powf(1.3))
            .map(|v| (v * 4.0).round() / 4.0)
            .collect();
        let y = f
            .iter()
            .map(|&v| {
                let p = 0.02 + 0.96 * v / 10.0;
                sign * (p / (1.0 - p)).ln()
            })
            .collect();
        (f, y)
    }

    fn truth(sign: f32, v: f32) -> f32 {
        let p = 0.02 + 0.96 * v / 10.0;
        sign * (p / (1.0 - p)).ln()
    }

    #[test]
    fn quantile_calibration_follows_a_monotone_nonlinear_node() {
        for sign in [1.0, -1.0] {
            let (f, y) = logit_node(sign);
            let q = NodeCalibration::fit(Calibration::Quantile, &f, &y);
            assert!(
                matches!(q, NodeCalibration::Quantile { decreasing, .. } if decreasing == (sign < 0.0))
            );
            let line = NodeCalibration::fit(Calibration::Linear, &f, &y);
            let (mut q_err, mut l_err) = (0.0f32, 0.0f32);
            // On the sample, between samples, and at the ends.
            for v in [0.0, 0.25, 0.6, 1.9, 3.33, 5.0, 7.1, 9.5, 10.0] {
                let e = (q.to_node(v) - truth(sign, v)).abs();
                assert!(
                    e < 0.1,
                    "sign {sign}, f = {v}: {} vs {}",
                    q.to_node(v),
                    truth(sign, v)
                );
                q_err = q_err.max(e);
                l_err = l_err.max((line.to_node(v) - truth(sign, v)).abs());
            }
            assert!(
                l_err > 1.0 && l_err > 10.0 * q_err,
                "line {l_err}, quantile {q_err}"
            );
            // Values outside the data's range clamp to the node's extremes.
            assert!((q.to_node(-5.0) - truth(sign, 0.0)).abs() < 1e-5);
            assert!((q.to_node(50.0) - truth(sign, 10.0)).abs() < 1e-5);
        }
    }

    #[test]
    fn quantile_calibration_leaves_unencoded_nodes_constant() {
        let f: Vec<f32> = (0..100).map(|i| i as f32).collect();
        // Node independent of the factor (zero rank correlation), and a constant factor.
        let y: Vec<f32> = (0..100)
            .map(|i| if (i / 25) % 3 == 0 { 1.0 } else { 3.0 })
            .collect();
        assert!(spearman(&f, &y).abs() < MIN_RANK_CORR);
        let q = NodeCalibration::fit(Calibration::Quantile, &f, &y);
        let mean = y.iter().sum::<f32>() / 100.0;
        assert_eq!(q, NodeCalibration::Line { a: mean, b: 0.0 });
        let q = NodeCalibration::fit(Calibration::Quantile, &[2.0; 10], &f[..10]);
        assert!(matches!(q, NodeCalibration::Line { b, .. } if b == 0.0));
    }

    #[test]
    fn spearman_signs_and_constants() {
        assert!((spearman(&[1.0, 2.0, 3.0], &[1.0, 10.0, 100.0]) - 1.0).abs() < 1e-6);
        assert!((spearman(&[1.0, 2.0, 3.0], &[5.0, 0.0, -9.0]) + 1.0).abs() < 1e-6);
        assert_eq!(spearman(&[1.0, 1.0], &[0.0, 2.0]), 0.0);
    }

    #[test]
    fn linear_calibration_is_the_default() {
        let cfg: InterventionEvalConfig = ron::from_str("(rows: 16)").unwrap();
        assert_eq!(cfg.calibration, Calibration::Linear);
        assert_eq!(cfg.rows, 16);
        let cfg: InterventionEvalConfig = ron::from_str("(calibration: Quantile)").unwrap();
        assert_eq!(cfg.calibration, Calibration::Quantile);
        let json: InterventionEvalConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(json, InterventionEvalConfig::default());
        assert_eq!(
            NodeCalibration::fit(Calibration::default(), &[0.0, 1.0, 2.0], &[1.0, 3.0, 5.0])
                .to_node(4.0),
            9.0
        );
    }

    #[test]
    fn tally_counts_tolerance_inclusively() {
        let mut t = Tally::default();
        t.add(1.0, 1.0);
        t.add(-2.0, 1.0);
        assert_eq!((t.mae(), t.acc()), (1.5, 0.5));
    }
}

//! Intervention accuracy against the simulator (methods.md §9.6): do(node = v) in the model, decode, read the
//! factors off the generated image with the [`FactorRegressor`], and compare them with the factors the data's own
//! SCM gives under the same intervention ([`Dataset::simulate_do`]).
//!
//! Protocol, for `rows` test images spread over the split and every node i:
//! - values: `values` quantiles of factor i over those images (so every do() stays inside the data's range);
//! - units: the model takes do() values in its own units. A per-node line v = a + b·f, fitted by least squares
//!   from the true factor f to the model's node value ([`Method::node_values`]) on the same images, converts a
//!   factor value into the model's; a node that does not encode its factor (b ≈ 0) cannot be steered;
//! - descendants of i (true graph): accurate when |measured − simulated| ≤ `tolerance` (one label unit);
//! - the intervened factor: the same test against v;
//! - non-descendants: drift = |measured after do − measured on the model's reconstruction|, i.e. how much the
//!   intervention moved what it should not have (measured against the reconstruction, so the model's
//!   reconstruction error is not counted as drift); their error against the true factors is reported too.
//!
//! Nodes are matched to factors by index: supervised methods align them by construction.

use super::regressor::{cache_key, FactorRegressor, RegressorConfig};
use crate::components::Do;
use crate::data::{make_batch, Split};
use crate::error::{Error, Result};
use crate::metrics::EvalInputs;
use crate::train::Session;
use candle_core::Tensor;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The `eval.intervention` section of a config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InterventionEvalConfig {
    /// Test images intervened on, spread over the split.
    pub rows: usize,
    /// do() values per node.
    pub values: usize,
    /// Largest error (factor units = label units) that counts as accurate.
    pub tolerance: f32,
    /// Where the regressor is cached (default: `<run>/oracle`; the `CARVE_ORACLE_CACHE` variable overrides both).
    pub cache_dir: Option<PathBuf>,
    pub regressor: RegressorConfig,
}

impl Default for InterventionEvalConfig {
    fn default() -> Self {
        Self {
            rows: 256,
            values: 8,
            tolerance: 1.0,
            cache_dir: None,
            regressor: RegressorConfig::default(),
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

/// The regressor for this session's data, from the cache or trained now.
pub fn regressor_for(session: &Session, cfg: &InterventionEvalConfig) -> Result<FactorRegressor> {
    let dir = std::env::var_os("CARVE_ORACLE_CACHE")
        .map(PathBuf::from)
        .or_else(|| cfg.cache_dir.clone())
        .unwrap_or_else(|| session.run_dir.join("oracle"));
    let data_key = serde_json::to_string(&session.exp.data)
        .map_err(|e| Error::msg(format!("cannot serialise the data config: {e}")))?;
    let reg_key = serde_json::to_string(&cfg.regressor)
        .map_err(|e| Error::msg(format!("cannot serialise the regressor config: {e}")))?;
    FactorRegressor::load_or_train(
        session.data.as_ref(),
        &cfg.regressor,
        &session.device,
        &dir,
        &cache_key(&[&data_key, &reg_key]),
    )
}

/// Intervention accuracy of `session`'s model (see the module docs for the protocol and the reported names).
pub fn intervention_accuracy(
    session: &Session,
    cfg: &InterventionEvalConfig,
) -> Result<BTreeMap<String, f64>> {
    let data = session.data.as_ref();
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
    let reg = regressor_for(session, cfg)?;
    let dev = &session.device;
    let method = session.method.as_ref();

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
    for (i, name) in names.iter().enumerate() {
        let (a, b) = fit_line(&col(&factors, i), &col(&nodes, i));
        out.insert(format!("intervention_slope_{name}"), b as f64);
        let desc = graph.descendants(i);
        let (mut d_i, mut t_i, mut drift_i) =
            (Tally::default(), Tally::default(), Tally::default());
        for v in quantiles(&col(&factors, i), cfg.values.max(1)) {
            let done = method.intervene(
                &batch.x,
                &[Do {
                    node: i,
                    value: a + b * v,
                }],
            )?;
            let measured = to_rows(&reg.predict(&done)?)?;
            for r in 0..n {
                let truth =
                    data.simulate_do(&factors[r * k..(r + 1) * k], &[Do { node: i, value: v }])?;
                let m = &measured[r * k..(r + 1) * k];
                for c in 0..k {
                    if c == i {
                        t_i.add(m[c] - truth[c], tol);
                    } else if desc[c] {
                        d_i.add(m[c] - truth[c], tol);
                        desc_per_factor[c].add(m[c] - truth[c], tol);
                    } else {
                        drift_i.add(m[c] - base[r * k + c], tol);
                        nondesc_truth.add(m[c] - truth[c], tol);
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
        }
        desc_all.merge(d_i);
        target_all.merge(t_i);
        drift_all.merge(drift_i);
    }
    for (c, t) in desc_per_factor.iter().enumerate() {
        if t.n > 0.0 {
            out.insert(format!("intervention_mae_{}", names[c]), t.mae());
        }
    }
    if desc_all.n > 0.0 {
        out.insert("intervention_acc".into(), desc_all.acc());
        out.insert("intervention_desc_mae".into(), desc_all.mae());
    }
    out.insert("intervention_acc_target".into(), target_all.acc());
    if drift_all.n > 0.0 {
        out.insert("intervention_drift".into(), drift_all.mae());
        out.insert("intervention_nondesc_mae".into(), nondesc_truth.mae());
    }
    Ok(out)
}

fn metric(session: &Session, _inputs: &EvalInputs) -> Result<BTreeMap<String, f64>> {
    intervention_accuracy(session, &session.exp.eval.intervention)
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

    #[test]
    fn tally_counts_tolerance_inclusively() {
        let mut t = Tally::default();
        t.add(1.0, 1.0);
        t.add(-2.0, 1.0);
        assert_eq!((t.mae(), t.acc()), (1.5, 0.5));
    }
}

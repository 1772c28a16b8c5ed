//! How a model uses its latent units, layer by layer (Burda et al. 2016; Sønderby et al. 2016, Figs. 4–5):
//!
//! - **KL per unit**: the mean over rows of KL(q(u | ·) || p(u | ·)) for every latent unit u, in closed form
//!   given one posterior draw of what both condition on ([`Method::unit_kl`]); per layer their sum, so the
//!   layers' KLs add up to the model's KL term.
//! - **Active units**: u is active when A_u = Cov_x(E_q[u | x]) > `threshold` (0.01, Burda et al.), the
//!   posterior mean being the representation [`Method::encode`] gives (for a hierarchical model, the
//!   deterministic top-down pass through the means).
//!
//! Reported per layer `z1`…`zL` of [`Method::latent_layers`] (one layer `z` for a flat model): `kl_<layer>`,
//! `active_units_<layer>`, every unit's `kl_<layer>_u<j>` and the totals `active_units` and `latent_units`.

use super::EvalInputs;
use crate::data::{make_batch, Dataset, Split};
use crate::error::{Error, Result};
use crate::eval_context::{EvalContext, MetricEntry, MetricSettings};
use crate::method::Method;
use crate::rng::Rng;
use candle_core::{DType, Device};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `{"latent_units": (rows: 2000, threshold: 0.01)}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LatentUnitsConfig {
    /// At most this many rows of the split, spread evenly over it.
    pub rows: usize,
    /// A unit is active when the variance of its posterior mean over the rows exceeds this.
    pub threshold: f64,
    /// Seeds the posterior draws the KLs are conditioned on.
    pub seed: u64,
    /// The split scored (default: the config's `eval.split`).
    pub split: Option<Split>,
}

impl Default for LatentUnitsConfig {
    fn default() -> Self {
        Self {
            rows: 2000,
            threshold: 0.01,
            seed: 0,
            split: None,
        }
    }
}

#[typetag::serde(name = "latent_units")]
impl MetricSettings for LatentUnitsConfig {
    fn clone_box(&self) -> Box<dyn MetricSettings> {
        Box::new(self.clone())
    }
}

/// One latent layer's units.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerUnits {
    /// `z1`…`zL`, or `z` for a flat model.
    pub name: String,
    /// Mean KL of every unit (nats).
    pub unit_kl: Vec<f64>,
    /// Variance over rows of every unit's posterior mean.
    pub activity: Vec<f64>,
    /// Units whose activity exceeds the threshold.
    pub active: usize,
}

impl LayerUnits {
    pub fn kl(&self) -> f64 {
        self.unit_kl.iter().sum()
    }
}

/// Rows per model call.
const ROWS_PER_CALL: usize = 250;

/// The units of every latent layer of `method` on up to `cfg.rows` rows of `split`.
pub fn latent_units_of(
    data: &dyn Dataset,
    method: &dyn Method,
    device: &Device,
    split: Split,
    cfg: &LatentUnitsConfig,
) -> Result<Vec<LayerUnits>> {
    let all = data.split(split);
    if cfg.rows < 2 || all.len() < 2 {
        return Err(Error::Data(format!(
            "latent_units: needs at least 2 rows to measure activity, got rows: {} of a {split:?} split of {}",
            cfg.rows,
            all.len()
        )));
    }
    let n = cfg.rows.min(all.len());
    let rows: Vec<usize> = (0..n).map(|i| all[i * all.len() / n]).collect();
    let d = method.latent_dim();
    let (mut kl, mut sum, mut sum_sq) = (vec![0f64; d], vec![0f64; d], vec![0f64; d]);
    let mut rng = Rng::new(cfg.seed);
    let mut scratch = Vec::new();
    for chunk in rows.chunks(ROWS_PER_CALL) {
        let batch = make_batch(data, chunk, device, &mut scratch)?;
        let unit_kl = method.unit_kl(&batch.x, &mut rng)?.ok_or_else(|| {
            Error::Data(
                "latent_units needs Gaussian posteriors and priors unit by unit: an Elbo-family model with an `Independent` causal layer and a Gaussian prior (e.g. `StdNormal`, `TopDown`); this method does not provide them".into(),
            )
        })?;
        let means = method.encode(&batch.x)?;
        for (t, acc) in [(&unit_kl, 0), (&means, 1)] {
            let v: Vec<f64> = t.to_dtype(DType::F64)?.flatten_all()?.to_vec1()?;
            if v.len() != chunk.len() * d {
                return Err(Error::Shape {
                    context: "latent_units: per-unit values".into(),
                    expected: format!("[{}, {d}]", chunk.len()),
                    got: format!("{:?}", t.dims()),
                });
            }
            for row in v.chunks_exact(d) {
                for (u, &x) in row.iter().enumerate() {
                    if acc == 0 {
                        kl[u] += x;
                    } else {
                        sum[u] += x;
                        sum_sq[u] += x * x;
                    }
                }
            }
        }
    }
    let nf = n as f64;
    let activity: Vec<f64> = (0..d)
        .map(|u| ((sum_sq[u] - sum[u] * sum[u] / nf) / (nf - 1.0)).max(0.0))
        .collect();
    if let Some(u) = (0..d).find(|&u| !kl[u].is_finite() || !activity[u].is_finite()) {
        return Err(Error::Data(format!(
            "latent_units: latent unit {u} has a non-finite KL or activity"
        )));
    }
    let sizes = method.latent_layers();
    let flat = sizes.len() == 1;
    let mut offset = 0;
    Ok(sizes
        .iter()
        .enumerate()
        .map(|(i, &size)| {
            let range = offset..offset + size;
            offset += size;
            let activity = activity[range.clone()].to_vec();
            LayerUnits {
                name: if flat {
                    "z".into()
                } else {
                    format!("z{}", i + 1)
                },
                unit_kl: kl[range].iter().map(|v| v / nf).collect(),
                active: activity.iter().filter(|&&a| a > cfg.threshold).count(),
                activity,
            }
        })
        .collect())
}

/// The summary values of [`latent_units_of`]'s layers.
pub fn latent_unit_values(layers: &[LayerUnits]) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for layer in layers {
        let width = layer.unit_kl.len().saturating_sub(1).to_string().len();
        out.insert(format!("kl_{}", layer.name), layer.kl());
        out.insert(format!("active_units_{}", layer.name), layer.active as f64);
        for (j, v) in layer.unit_kl.iter().enumerate() {
            out.insert(format!("kl_{}_u{j:0width$}", layer.name), *v);
        }
    }
    let active: usize = layers.iter().map(|l| l.active).sum();
    let units: usize = layers.iter().map(|l| l.unit_kl.len()).sum();
    out.insert("active_units".into(), active as f64);
    out.insert("latent_units".into(), units as f64);
    out
}

fn metric(
    ctx: &EvalContext,
    entry: &MetricEntry,
    _inputs: &EvalInputs,
) -> Result<BTreeMap<String, f64>> {
    let cfg: LatentUnitsConfig = entry.settings()?;
    let split = cfg.split.unwrap_or(ctx.split);
    let layers = latent_units_of(ctx.data, ctx.method, ctx.device, split, &cfg)?;
    Ok(latent_unit_values(&layers))
}

crate::register_model_metric!(
    "latent_units",
    "KL per latent layer and unit (nats) and active units (Cov_x E_q[u] > 0.01, Burda 2016) per layer",
    metric
);

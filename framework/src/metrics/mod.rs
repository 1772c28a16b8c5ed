//! Metrics, each registered by name with `inventory` so configs, `carve eval --metrics` and `carve metrics`
//! can select them. A metric reads the evaluation inputs and returns one or more named numbers.

mod betavae_score;
mod cluster_accuracy;
mod dci;
pub mod discretize;
mod edge_auroc;
mod factorvae_score;
mod frechet;
mod gbt;
mod iw_loglik;
mod latent_graphs;
mod latent_units;
mod linear_r;
mod logistic;
pub(crate) mod mcc;
mod mic;
mod mig;
mod model_terms;
mod modularity;
mod sap;
mod shd;
mod simulated;

pub use betavae_score::{betavae_score, betavae_score_of, BetaVaeScore, BetaVaeScoreConfig};
pub use cluster_accuracy::cluster_accuracy;
pub use dci::{completeness, dci, disentanglement, DciResult};
pub use discretize::{make_discretizer, Columns, DlibConfig, LabelledSplit};
pub use edge_auroc::auroc;
pub use factorvae_score::{
    factorvae_score, factorvae_score_of, FactorVaeScore, FactorVaeScoreConfig,
};
pub use frechet::frechet_distance;
pub use gbt::GradientBoosting;
pub use iw_loglik::{iw_loglik_of, iw_rows, log_mean_exp, IwLoglik, IwLoglikConfig};
pub use latent_graphs::{consistency_pattern, latent_graph_shd, LATENT_EDGE_THRESHOLD};
pub use latent_units::{latent_unit_values, latent_units_of, LatentUnitsConfig, LayerUnits};
pub use linear_r::{consistency_pattern_a, consistency_pattern_z, consistent_r, linear_r};
pub use logistic::{LogisticConfig, LogisticRegression};
pub use mcc::{mcc, Correlation, MccResult};
pub use mic::{mic, MicParams, MicResult};
pub use mig::mig;
pub use modularity::{modularity, modularity_of};
pub use sap::{linear_svc_1d, sap_continuous, sap_discrete, LinearSvc1d};
pub use shd::{align_rows, align_square, binarize, shd_classical, shd_elementwise};
pub use simulated::{encode_rendered, require_simulator, FactorRange, FactorSampler};

use crate::error::{Error, Result};
use crate::eval_context::{EvalContext, MetricEntry};
use std::collections::BTreeMap;

/// What metrics are computed from: representations and ground truth of one split, plus model terms.
#[derive(Clone, Debug, Default)]
pub struct EvalInputs {
    /// `n × d` encoder means, row-major.
    pub codes: Vec<f32>,
    pub d: usize,
    /// `n × k` true factors, row-major.
    pub factors: Option<Vec<f32>>,
    pub k: usize,
    /// `n × n_labels` supervision labels, row-major.
    pub labels: Option<Vec<f32>>,
    pub n_labels: usize,
    /// The method's learned weighted adjacency (`n × n`, row-major, `A[i][j]` for i → j), if it has one.
    pub learned_graph: Option<Vec<f32>>,
    /// The dataset's true graph over its factors (`k × k`, row-major), where known.
    pub true_graph: Option<Vec<bool>>,
    /// The train/test split of the split-based metrics (SAP, Modularity, DCI): `None` takes the rows in their given
    /// order (the first 80 % train, as disentanglement_lib splits fixed data); `Some(seed)` shuffles them once
    /// first, for rows whose order carries structure (a dataset in generation order).
    pub split_seed: Option<u64>,
    /// Averaged model evaluation terms (e.g. `elbo`), when a model is at hand.
    pub model_terms: BTreeMap<String, f64>,
    /// The method's learned latent-mechanism graphs as edge probabilities, by name (see
    /// [`crate::method::Method::latent_graphs`]): `(name, rows, cols, row-major values)`.
    pub learned_latent_graphs: Vec<(String, usize, usize, Vec<f32>)>,
    /// The dataset's true latent-mechanism graphs.
    pub true_latent_graphs: Vec<crate::data::LatentGraph>,
}

impl EvalInputs {
    pub fn n(&self) -> usize {
        self.codes.len().checked_div(self.d).unwrap_or(0)
    }

    /// The arrays by name: `(name, values, columns)` for codes and, where present, factors and labels.
    fn arrays(&self) -> Vec<(&'static str, &[f32], usize)> {
        let mut v = vec![("codes", self.codes.as_slice(), self.d)];
        if let Some(f) = &self.factors {
            v.push(("factors", f.as_slice(), self.k));
        }
        if let Some(l) = &self.labels {
            v.push(("labels", l.as_slice(), self.n_labels));
        }
        v
    }

    /// Checks what every metric relies on: whole rows in every array, factors row for row with the codes, and only
    /// finite values (a NaN would otherwise skew rank- and histogram-based scores without a trace). The error
    /// names the array, the number of bad values and the first one's position.
    pub fn validate(&self) -> Result<()> {
        let n = self.n();
        for (name, values, m) in self.arrays() {
            if m == 0 {
                if values.is_empty() {
                    continue;
                }
                return Err(Error::Data(format!(
                    "array `{name}` has {} values but 0 columns",
                    values.len()
                )));
            }
            if !values.len().is_multiple_of(m) {
                return Err(Error::Shape {
                    context: format!("array `{name}`"),
                    expected: format!("whole rows of {m} columns"),
                    got: format!("{} values", values.len()),
                });
            }
            if name == "factors" && values.len() / m != n {
                return Err(Error::Shape {
                    context: "array `factors`".into(),
                    expected: format!("{n} rows, one per row of `codes`"),
                    got: format!("{} rows", values.len() / m),
                });
            }
            check_finite(name, values, m)?;
        }
        Ok(())
    }

    /// Drops every row with a non-finite value in codes, factors or labels (labels only where they are row for row
    /// with the codes); returns how many rows went.
    pub fn drop_nonfinite_rows(&mut self) -> usize {
        let n = self.n();
        let labels_per_row = self
            .labels
            .as_ref()
            .is_some_and(|l| self.n_labels > 0 && l.len() == n * self.n_labels);
        let row_ok = |values: &[f32], m: usize, r: usize| {
            values[r * m..(r + 1) * m].iter().all(|v| v.is_finite())
        };
        let keep: Vec<bool> = (0..n)
            .map(|r| {
                row_ok(&self.codes, self.d, r)
                    && self.factors.as_deref().is_none_or(|f| row_ok(f, self.k, r))
                    && (!labels_per_row
                        || self
                            .labels
                            .as_deref()
                            .is_none_or(|l| row_ok(l, self.n_labels, r)))
            })
            .collect();
        let dropped = keep.iter().filter(|k| !**k).count();
        if dropped == 0 {
            return 0;
        }
        let filter = |values: &mut Vec<f32>, m: usize| {
            let mut r = 0;
            values.retain(|_| {
                let ok = keep[r / m];
                r += 1;
                ok
            });
        };
        filter(&mut self.codes, self.d);
        if let Some(f) = &mut self.factors {
            filter(f, self.k);
        }
        if labels_per_row {
            if let Some(l) = &mut self.labels {
                filter(l, self.n_labels);
            }
        }
        dropped
    }

    pub fn require_factors(&self, metric: &str) -> Result<&[f32]> {
        self.factors.as_deref().ok_or_else(|| {
            Error::Data(format!(
                "metric `{metric}` needs true factors (an N×k array `factors`); this data has none"
            ))
        })
    }
}

/// An error naming `name`, the count of NaN and ±inf values among `values` (`m` columns) and the first one's place.
fn check_finite(name: &str, values: &[f32], m: usize) -> Result<()> {
    let Some(first) = values.iter().position(|v| !v.is_finite()) else {
        return Ok(());
    };
    let nan = values.iter().filter(|v| v.is_nan()).count();
    let inf = values.iter().filter(|v| v.is_infinite()).count();
    let rows = values
        .chunks(m)
        .filter(|row| row.iter().any(|v| !v.is_finite()))
        .count();
    let bad = nan + inf;
    Err(Error::Data(format!(
        "array `{name}` has {bad} non-finite value{} of {} ({nan} NaN, {inf} ±inf) in {rows} of {} rows, the first \
         at row {}, column {}; the metrics need finite values",
        if bad == 1 { "" } else { "s" },
        values.len(),
        values.len() / m,
        first / m,
        first % m
    )))
}

pub type MetricFn = fn(&EvalInputs) -> Result<BTreeMap<String, f64>>;
/// A metric that needs the trained model and the dataset (interventions, scores that draw new data); it reads
/// its settings from its entry of `eval.metrics` ([`MetricEntry::settings`]).
pub type ModelMetricFn =
    fn(&EvalContext, &MetricEntry, &EvalInputs) -> Result<BTreeMap<String, f64>>;

/// How a metric is computed.
#[derive(Clone, Copy)]
pub enum Compute {
    /// From codes and factors alone (works on any exported `.npz`).
    Codes(MetricFn),
    /// From a trained run (`carve eval`).
    Model(ModelMetricFn),
}

pub struct MetricInfo {
    pub name: &'static str,
    pub summary: &'static str,
    pub compute: Compute,
}

impl MetricInfo {
    /// The codes-only function, or an error saying the metric needs a trained run.
    pub fn codes(&self) -> Result<MetricFn> {
        match self.compute {
            Compute::Codes(f) => Ok(f),
            Compute::Model(_) => Err(Error::Data(format!(
                "metric `{}` needs the trained model and its simulator data: use `carve eval RUN_DIR --metrics {}`",
                self.name, self.name
            ))),
        }
    }

    pub fn needs_model(&self) -> bool {
        matches!(self.compute, Compute::Model(_))
    }

    /// What the metric reads beyond the codes, so a run is checked against its data and model before it
    /// trains (see [`NEEDS`]); none for a metric without an entry.
    pub fn needs(&self) -> &'static [Need] {
        NEEDS
            .iter()
            .find(|(name, _)| *name == self.name)
            .map_or(&[], |(_, needs)| needs)
    }
}

/// Something a metric reads besides the codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// The data's true factors.
    Factors,
    /// Supervision labels, or true factors in their place.
    LabelsOrFactors,
    /// The data's true causal graph over its factors.
    TrueGraph,
    /// A learned graph over the factors in the model ([`crate::method::Method::graph`]).
    LearnedGraph,
    /// The data's true latent-mechanism graphs.
    TrueLatentGraphs,
    /// Learned latent-mechanism graphs in the model ([`crate::method::Method::latent_graphs`]).
    LearnedLatentGraphs,
    /// A term the model reports when it evaluates a batch (e.g. `elbo`).
    ModelTerm(&'static str),
    /// A dataset that renders scenes from factor vectors.
    Simulator,
    /// A dataset that simulates do() in its own SCM and renders the result, with its true graph.
    InterventionSimulator,
    /// Causal nodes in the model, one per factor ([`crate::method::Method::node_values`]).
    CausalNodes,
    /// Tractable prior and posterior densities ([`crate::method::Method::log_importance_weights`]).
    ImportanceWeights,
    /// Gaussian posteriors and priors unit by unit ([`crate::method::Method::unit_kl`]).
    UnitKl,
}

/// The needs of each built-in metric, by name.
pub const NEEDS: &[(&str, &[Need])] = {
    use Need::*;
    &[
        ("betavae_score", &[Simulator]),
        ("cluster_accuracy", &[LabelsOrFactors]),
        ("consistent_r", &[Factors, TrueLatentGraphs]),
        ("dci", &[Factors]),
        ("edge_auroc", &[TrueGraph, LearnedGraph]),
        ("elbo", &[ModelTerm("elbo")]),
        ("factorvae_score", &[Simulator]),
        ("frechet", &[Factors]),
        (
            "intervention",
            &[InterventionSimulator, Factors, CausalNodes],
        ),
        ("iw_loglik", &[ImportanceWeights]),
        ("kl", &[ModelTerm("kl")]),
        ("latent_units", &[UnitKl]),
        (
            "latent_graph_shd",
            &[Factors, TrueLatentGraphs, LearnedLatentGraphs],
        ),
        ("mcc", &[Factors]),
        ("mcc_aligned", &[Factors]),
        ("mic", &[LabelsOrFactors]),
        ("mig", &[Factors]),
        ("modularity", &[Factors]),
        ("r", &[Factors]),
        ("recon", &[ModelTerm("recon")]),
        ("sap", &[Factors]),
        ("shd_classical", &[TrueGraph, LearnedGraph]),
        ("shd_elementwise", &[TrueGraph, LearnedGraph]),
        ("tic", &[LabelsOrFactors]),
    ]
};

inventory::collect!(MetricInfo);

pub fn registered() -> Vec<&'static MetricInfo> {
    let mut v: Vec<_> = inventory::iter::<MetricInfo>.into_iter().collect();
    v.sort_by_key(|m| m.name);
    v
}

/// Looks a metric up by name, suggesting the closest on a miss.
pub fn find(name: &str) -> Result<&'static MetricInfo> {
    let all = registered();
    if let Some(m) = all.iter().find(|m| m.name == name) {
        return Ok(m);
    }
    let names: Vec<&str> = all.iter().map(|m| m.name).collect();
    let close = crate::registry::closest(name, &names);
    Err(Error::UnknownComponent {
        kind: "metric",
        name: name.to_string(),
        suggestion: if close.is_empty() {
            format!(" (available: {})", names.join(", "))
        } else {
            format!(
                "; did you mean {}? (available: {})",
                close.join(", "),
                names.join(", ")
            )
        },
    })
}

/// Computes the named metrics from codes and factors (after [`EvalInputs::validate`]); the result maps lowercase
/// names to values. Model metrics are an error here (see [`compute_with_model`]).
pub fn compute(names: &[String], inputs: &EvalInputs) -> Result<BTreeMap<String, f64>> {
    inputs.validate()?;
    let mut out = BTreeMap::new();
    for n in names {
        out.extend((find(n)?.codes()?)(inputs)?);
    }
    Ok(out)
}

/// Computes the metrics of `entries` for a trained run (after [`EvalInputs::validate`]), model metrics included,
/// each with its entry's settings.
pub fn compute_with_model(
    entries: &[MetricEntry],
    inputs: &EvalInputs,
    ctx: &EvalContext,
) -> Result<BTreeMap<String, f64>> {
    inputs.validate()?;
    let mut out = BTreeMap::new();
    for entry in entries {
        let scores = match find(entry.name())?.compute {
            Compute::Codes(f) => f(inputs)?,
            Compute::Model(f) => f(ctx, entry, inputs)?,
        };
        out.extend(scores);
    }
    Ok(out)
}

/// Registers a metric function under a name.
#[macro_export]
macro_rules! register_metric {
    ($name:literal, $summary:literal, $f:expr) => {
        $crate::prelude::inventory::submit! {
            $crate::metrics::MetricInfo {
                name: $name,
                summary: $summary,
                compute: $crate::metrics::Compute::Codes($f),
            }
        }
    };
}

/// Registers a metric that needs the trained model ([`ModelMetricFn`]) under a name.
#[macro_export]
macro_rules! register_model_metric {
    ($name:literal, $summary:literal, $f:expr) => {
        $crate::prelude::inventory::submit! {
            $crate::metrics::MetricInfo {
                name: $name,
                summary: $summary,
                compute: $crate::metrics::Compute::Model($f),
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_codes(n: usize) -> EvalInputs {
        EvalInputs {
            codes: (0..n * 2).map(|v| (v % 7) as f32).collect(),
            d: 2,
            factors: Some((0..n).map(|v| (v % 3) as f32).collect()),
            k: 1,
            ..Default::default()
        }
    }

    #[test]
    fn non_finite_values_are_an_error_naming_the_array_and_count() {
        let mut inputs = two_codes(10);
        inputs.codes[5] = f32::NAN;
        inputs.codes[8] = f32::INFINITY;
        let err = compute(&["mcc".to_string()], &inputs)
            .unwrap_err()
            .to_string();
        for needle in [
            "`codes`",
            "2 non-finite values of 20",
            "1 NaN, 1 ±inf",
            "row 2, column 1",
        ] {
            assert!(err.contains(needle), "{needle}: {err}");
        }
        let mut inputs = two_codes(10);
        inputs.factors.as_mut().unwrap()[3] = f32::NAN;
        let err = inputs.validate().unwrap_err().to_string();
        assert!(
            err.contains("`factors` has 1 non-finite value of 10"),
            "{err}"
        );
    }

    #[test]
    fn factors_must_match_the_codes_row_for_row() {
        let mut inputs = two_codes(10);
        inputs.factors.as_mut().unwrap().pop();
        let err = inputs.validate().unwrap_err().to_string();
        assert!(
            err.contains("`factors`") && err.contains("10 rows"),
            "{err}"
        );
    }

    #[test]
    fn dropping_non_finite_rows_keeps_the_others_aligned() {
        let mut inputs = two_codes(10);
        inputs.codes[5] = f32::NAN; // row 2
        inputs.factors.as_mut().unwrap()[7] = f32::NEG_INFINITY; // row 7
        assert_eq!(inputs.drop_nonfinite_rows(), 2);
        assert_eq!(inputs.n(), 8);
        inputs.validate().unwrap();
        let f = inputs.factors.as_ref().unwrap();
        assert_eq!(f, &[0.0, 1.0, 0.0, 1.0, 2.0, 0.0, 2.0, 0.0]);
        assert_eq!(&inputs.codes[4..6], &[6.0, 0.0]); // row 3 moved up
    }

    #[test]
    fn every_registered_metric_declares_its_needs() {
        for m in registered() {
            assert!(
                NEEDS.iter().any(|(n, _)| *n == m.name),
                "metric `{}` has no entry in NEEDS",
                m.name
            );
        }
        for (n, _) in NEEDS {
            find(n).unwrap();
        }
    }
}

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
pub use linear_r::{consistency_pattern_a, consistency_pattern_z, consistent_r, linear_r};
pub use logistic::{LogisticConfig, LogisticRegression};
pub use mcc::{mcc, Correlation, MccResult};
pub use mic::{mic, MicParams, MicResult};
pub use mig::mig;
pub use modularity::{modularity, modularity_of};
pub use sap::{linear_svc_1d, sap_continuous, sap_discrete, LinearSvc1d};
pub use shd::{align_rows, align_square, binarize, shd_classical, shd_elementwise};
pub use simulated::{
    encode_rendered, require_simulator, FactorRange, FactorSampler, ScoreEvalConfig,
};

use crate::error::{Error, Result};
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

    pub fn require_factors(&self, metric: &str) -> Result<&[f32]> {
        self.factors.as_deref().ok_or_else(|| {
            Error::Data(format!(
                "metric `{metric}` needs true factors; this data has none"
            ))
        })
    }
}

pub type MetricFn = fn(&EvalInputs) -> Result<BTreeMap<String, f64>>;
/// A metric that needs the trained model and the dataset (interventions, scores that draw new data).
pub type ModelMetricFn = fn(&crate::train::Session, &EvalInputs) -> Result<BTreeMap<String, f64>>;

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

/// Computes the named metrics from codes and factors; the result maps lowercase names to values. Model metrics
/// are an error here (see [`compute_with_model`]).
pub fn compute(names: &[String], inputs: &EvalInputs) -> Result<BTreeMap<String, f64>> {
    let mut out = BTreeMap::new();
    for n in names {
        out.extend((find(n)?.codes()?)(inputs)?);
    }
    Ok(out)
}

/// Computes the named metrics of a trained run, model metrics included.
pub fn compute_with_model(
    names: &[String],
    inputs: &EvalInputs,
    session: &crate::train::Session,
) -> Result<BTreeMap<String, f64>> {
    let mut out = BTreeMap::new();
    for n in names {
        let scores = match find(n)?.compute {
            Compute::Codes(f) => f(inputs)?,
            Compute::Model(f) => f(session, inputs)?,
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
mod needs_tests {
    #[test]
    fn every_registered_metric_declares_its_needs() {
        for m in super::registered() {
            assert!(
                super::NEEDS.iter().any(|(n, _)| *n == m.name),
                "metric `{}` has no entry in NEEDS",
                m.name
            );
        }
        for (n, _) in super::NEEDS {
            super::find(n).unwrap();
        }
    }
}

//! Objectives shared by the ELBO family: reconstruction and a (weighted, optionally warmed-up) KL to the prior.

use super::{batch_mean, BuildContext, ForwardOutputs, Objective, ObjectiveConfig, Parts, Term};
use crate::data::Batch;
use crate::error::Result;
use serde::{Deserialize, Serialize};

/// `recon` = E_B[−log p(x|z)].
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reconstruction {}

#[typetag::serde(name = "Reconstruction")]
impl ObjectiveConfig for Reconstruction {
    fn build(&self, _ctx: &BuildContext) -> Result<Box<dyn Objective>> {
        Ok(Box::new(self.clone()))
    }
}
crate::register_component!(
    Objective,
    "Reconstruction",
    "recon: batch mean of −log p(x|z)"
);

impl Objective for Reconstruction {
    fn terms(
        &self,
        fwd: &ForwardOutputs,
        parts: &Parts,
        batch: &Batch,
        _step: usize,
    ) -> Result<Vec<Term>> {
        let nll = parts.decoder.nll(&batch.x, &fwd.decoded)?;
        Ok(vec![Term {
            name: "recon".into(),
            value: batch_mean(&nll)?,
        }])
    }
}

/// `kl` = weight · E_B[KL(q || prior)]; the weight ramps linearly from 0 over `warmup_steps` (0 = no warm-up).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriorKl {
    #[serde(default = "one")]
    pub weight: f64,
    #[serde(default)]
    pub warmup_steps: usize,
}

fn one() -> f64 {
    1.0
}

impl PriorKl {
    pub fn weight_at(&self, step: usize) -> f64 {
        if self.warmup_steps == 0 {
            self.weight
        } else {
            self.weight * (step as f64 / self.warmup_steps as f64).min(1.0)
        }
    }
}

#[typetag::serde(name = "PriorKl")]
impl ObjectiveConfig for PriorKl {
    fn build(&self, _ctx: &BuildContext) -> Result<Box<dyn Objective>> {
        Ok(Box::new(self.clone()))
    }
}
crate::register_component!(
    Objective,
    "PriorKl",
    "kl: weight · KL(q || prior), optional linear warm-up"
);

impl Objective for PriorKl {
    fn terms(
        &self,
        fwd: &ForwardOutputs,
        parts: &Parts,
        batch: &Batch,
        step: usize,
    ) -> Result<Vec<Term>> {
        let kl = batch_mean(&parts.prior.kl(fwd, batch)?)?;
        Ok(vec![Term {
            name: "kl".into(),
            value: (kl * self.weight_at(step))?,
        }])
    }
}

/// `dag` = `linear`·h(A) + `quadratic`·h(A)² on the causal layer's graph, h(A) = tr((I + A∘A/n)ⁿ) − n: the
/// fixed-multiplier augmented Lagrangian of CausalVAE's code (3h + 0.5h²). Needs a causal layer with a graph.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DagPenalty {
    #[serde(default = "three")]
    pub linear: f64,
    #[serde(default = "half")]
    pub quadratic: f64,
}

fn three() -> f64 {
    3.0
}
fn half() -> f64 {
    0.5
}

#[typetag::serde(name = "DagPenalty")]
impl ObjectiveConfig for DagPenalty {
    fn build(&self, _ctx: &BuildContext) -> Result<Box<dyn Objective>> {
        Ok(Box::new(self.clone()))
    }
}
crate::register_component!(
    Objective,
    "DagPenalty",
    "dag: c1·h(A) + c2·h(A)², h = tr((I + A∘A/n)^n) − n (acyclicity)",
    needs: [Part(LearnedGraph)]
);

impl Objective for DagPenalty {
    fn terms(
        &self,
        _fwd: &ForwardOutputs,
        parts: &Parts,
        _batch: &Batch,
        step: usize,
    ) -> Result<Vec<Term>> {
        graph_term(parts, "dag", |a| {
            let h = crate::scm::acyclicity(a)?;
            // The official code's fixed augmented Lagrangian, through the shared constraint handler.
            let handler = crate::optim::ConstraintHandler::new(
                crate::optim::ConstraintConfig::AugmentedLagrangian {
                    c1: self.linear,
                    c2: self.quadratic,
                },
                0.0,
            )?;
            handler.primal_term(&h, step)
        })
    }
}

/// The term `name` = `value(A)` on the causal layer's graph A; no term where `value` gives none. A layer
/// without a graph is an error (models are checked for it when built, so this is a layer that declares
/// [`super::Feature::LearnedGraph`] without having one).
pub(super) fn graph_term(
    parts: &Parts,
    name: &str,
    value: impl FnOnce(&candle_core::Tensor) -> Result<Option<candle_core::Tensor>>,
) -> Result<Vec<Term>> {
    let Some(a) = parts.causal.graph()? else {
        return Err(crate::Error::msg(format!(
            "the `{name}` term needs a learned causal graph, and the causal layer has none"
        )));
    };
    Ok(value(&a)?
        .map(|value| Term {
            name: name.into(),
            value,
        })
        .into_iter()
        .collect())
}

/// `graph_l1` = `weight` · Σ_ij |A_ij| on the causal layer's graph: the NOTEARS-style sparsity term. An edge
/// no term needs decays to zero instead of surviving from its initial value. Needs a causal layer with a graph.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphSparsity {
    pub weight: f64,
}

#[typetag::serde(name = "GraphSparsity")]
impl ObjectiveConfig for GraphSparsity {
    fn build(&self, _ctx: &BuildContext) -> Result<Box<dyn Objective>> {
        crate::error::Error::check_non_negative("GraphSparsity weight", self.weight)?;
        Ok(Box::new(self.clone()))
    }
}
crate::register_component!(
    Objective,
    "GraphSparsity",
    "graph_l1: weight · Σ|A_ij| on the causal layer's graph (sparsity)",
    needs: [Part(LearnedGraph)]
);

impl GraphSparsity {
    fn penalty(&self, a: &candle_core::Tensor) -> Result<candle_core::Tensor> {
        Ok((a.abs()?.sum_all()? * self.weight)?)
    }
}

impl Objective for GraphSparsity {
    fn terms(
        &self,
        _fwd: &ForwardOutputs,
        parts: &Parts,
        _batch: &Batch,
        _step: usize,
    ) -> Result<Vec<Term>> {
        graph_term(parts, "graph_l1", |a| self.penalty(a).map(Some))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn graph_sparsity_is_the_weighted_l1_norm_and_pulls_every_edge_to_zero() {
        let a = Var::from_vec(vec![0.5f32, -2.0, 0.0, 1.0], (2, 2), &Device::Cpu).unwrap();
        let term = GraphSparsity { weight: 0.1 }
            .penalty(a.as_tensor())
            .unwrap();
        assert!((term.to_scalar::<f32>().unwrap() - 0.35).abs() < 1e-6);
        let grad = term.backward().unwrap();
        let g: Vec<f32> = grad
            .get(a.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        // d/dA of 0.1·|A| = 0.1·sign(A): a positive edge shrinks, a negative one grows toward zero.
        assert_eq!(g[0], 0.1);
        assert_eq!(g[1], -0.1);
        assert_eq!(g[3], 0.1);
    }

    #[test]
    fn graph_sparsity_rejects_a_negative_weight() {
        let spec = crate::data::DataSpec::default();
        let ctx = BuildContext {
            params: crate::nn::Params::new(candle_nn::VarMap::new(), Device::Cpu, 0),
            spec: &spec,
            latent_dim: 2,
            concepts: Default::default(),
            layers: Default::default(),
        };
        let err = GraphSparsity { weight: -1.0 }.build(&ctx).err().unwrap();
        assert!(err.to_string().contains("≥ 0"), "{err}");
    }
}

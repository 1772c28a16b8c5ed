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
/// fixed-multiplier augmented Lagrangian of CausalVAE's code (3h + 0.5h²). Zero for layers without a graph.
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
    "dag: c1·h(A) + c2·h(A)², h = tr((I + A∘A/n)^n) − n (acyclicity)"
);

impl Objective for DagPenalty {
    fn terms(
        &self,
        _fwd: &ForwardOutputs,
        parts: &Parts,
        _batch: &Batch,
        step: usize,
    ) -> Result<Vec<Term>> {
        let Some(a) = parts.causal.graph()? else {
            return Ok(vec![]);
        };
        let h = crate::scm::acyclicity(&a)?;
        // The official code's fixed augmented Lagrangian, through the shared constraint handler.
        let handler = crate::optim::ConstraintHandler::new(
            crate::optim::ConstraintConfig::AugmentedLagrangian {
                c1: self.linear,
                c2: self.quadratic,
            },
            0.0,
        )?;
        Ok(handler
            .primal_term(&h, step)?
            .map(|value| Term {
                name: "dag".into(),
                value,
            })
            .into_iter()
            .collect())
    }
}

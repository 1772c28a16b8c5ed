//! `graph_pruned` = `weight` · Σ |A_ij| over the edges that were weaker than `threshold` at step `at_step`:
//! two-phase structure learning. Until `at_step` the graph forms under the other terms; then every edge still
//! below the threshold is held at zero for the rest of training, so a proxy edge that a mechanism would only
//! pick up late (one effect fitted through another effect) cannot grow, while the edges kept train freely.
//!
//! The pruned set is taken at the first step ≥ `at_step` this process trains. A run resumed after `at_step`
//! takes it again from the checkpoint's graph, where the pruned edges are (near) zero and the kept ones are
//! not, so it finds the same set.

use super::objectives::graph_term;
use super::{BuildContext, ForwardOutputs, Objective, ObjectiveConfig, Parts, Term};
use crate::data::Batch;
use crate::error::{Error, Result};
use candle_core::Tensor;
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphPruning {
    /// The step at which the pruned set is taken.
    pub at_step: usize,
    /// Edges with |A_ij| below this at `at_step` are pruned.
    pub threshold: f64,
    /// L1 weight on the pruned edges afterwards (large: it must beat every term that would regrow them).
    pub weight: f64,
}

#[typetag::serde(name = "GraphPruning")]
impl ObjectiveConfig for GraphPruning {
    fn build(&self, _ctx: &BuildContext) -> Result<Box<dyn Objective>> {
        Error::check_non_negative("GraphPruning threshold", self.threshold)?;
        Error::check_non_negative("GraphPruning weight", self.weight)?;
        Ok(Box::new(GraphPruningModel {
            cfg: self.clone(),
            pruned: OnceLock::new(),
        }))
    }
}
crate::register_component!(
    Objective,
    "GraphPruning",
    "graph_pruned: from at_step on, weight · Σ|A_ij| over the edges below threshold at at_step (two-phase)"
);

struct GraphPruningModel {
    cfg: GraphPruning,
    /// 1 where an edge is pruned, 0 elsewhere; set at the first step ≥ `at_step`.
    pruned: OnceLock<Tensor>,
}

impl GraphPruningModel {
    fn penalty(&self, a: &Tensor, step: usize) -> Result<Tensor> {
        let abs = a.abs()?;
        if step < self.cfg.at_step {
            return Ok((abs.sum_all()? * 0.0)?);
        }
        let pruned = match self.pruned.get() {
            Some(p) => p,
            None => {
                let p = abs.detach().lt(self.cfg.threshold)?.to_dtype(abs.dtype())?;
                self.pruned.get_or_init(|| p)
            }
        };
        Ok(((abs * pruned)?.sum_all()? * self.cfg.weight)?)
    }
}

impl Objective for GraphPruningModel {
    fn terms(
        &self,
        _fwd: &ForwardOutputs,
        parts: &Parts,
        _batch: &Batch,
        step: usize,
    ) -> Result<Vec<Term>> {
        graph_term(parts, "graph_pruned", |a| self.penalty(a, step).map(Some))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn model() -> GraphPruningModel {
        GraphPruningModel {
            cfg: GraphPruning {
                at_step: 10,
                threshold: 0.1,
                weight: 2.0,
            },
            pruned: OnceLock::new(),
        }
    }

    fn grad(m: &GraphPruningModel, a: &Var, step: usize) -> (f32, Vec<f32>) {
        let t = m.penalty(a.as_tensor(), step).unwrap();
        let g = t.backward().unwrap();
        let g = g
            .get(a.as_tensor())
            .map(|g| g.flatten_all().unwrap().to_vec1().unwrap())
            .unwrap_or_default();
        (t.to_scalar::<f32>().unwrap(), g)
    }

    #[test]
    fn edges_weak_at_the_pruning_step_are_held_at_zero_and_the_rest_train_freely() {
        let m = model();
        let a = Var::from_vec(vec![0.05f32, -0.5, -0.02, 0.3], (2, 2), &Device::Cpu).unwrap();
        // Before the pruning step: no pull at all.
        let (v, g) = grad(&m, &a, 9);
        assert_eq!(v, 0.0);
        assert!(g.iter().all(|&x| x == 0.0), "{g:?}");
        // At it: the two weak edges are pruned (2 · (0.05 + 0.02)), the strong ones are left alone.
        let (v, g) = grad(&m, &a, 10);
        assert!((v - 0.14).abs() < 1e-6, "{v}");
        assert_eq!(g, vec![2.0, 0.0, -2.0, 0.0]);
        // The set is fixed at that step: a pruned edge that grew is still pulled, a kept one that shrank is not.
        a.set(&Tensor::new(&[[0.4f32, -0.01], [-0.02, 0.3]], &Device::Cpu).unwrap())
            .unwrap();
        let (_, g) = grad(&m, &a, 50);
        assert_eq!(g, vec![2.0, 0.0, -2.0, 0.0]);
    }

    #[test]
    fn a_negative_threshold_or_weight_is_rejected() {
        let spec = crate::data::DataSpec::default();
        let ctx = BuildContext {
            params: crate::nn::Params::new(candle_nn::VarMap::new(), Device::Cpu, 0),
            spec: &spec,
            latent_dim: 2,
        };
        let cfg = GraphPruning {
            at_step: 0,
            threshold: 0.1,
            weight: -1.0,
        };
        let err = cfg.build(&ctx).err().unwrap();
        assert!(
            err.to_string().contains("weight must be finite and ≥ 0"),
            "{err}"
        );
    }
}

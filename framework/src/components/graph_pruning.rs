//! `graph_pruned` = `weight` · Σ |A_ij| over the pruned edges: two-phase structure learning. Until the pruning
//! decision the graph forms under the other terms; then every pruned edge is held at zero for the rest of
//! training, so a proxy edge that a mechanism would only pick up late (one effect fitted through another
//! effect) cannot grow, while the edges kept train freely.
//!
//! Two rules decide which edges are pruned:
//! - global (default): at step `at_step`, every edge with |A_ij| below `threshold`;
//! - per child (`relative: Some(r)`): from `at_step` on, each child j (column j of A, edges i → j) is decided
//!   at the first step its strongest incoming edge reaches `threshold`, which marks its mechanism as formed:
//!   its incoming edges weaker than r × that strongest edge are pruned. Mechanisms form at different times (on
//!   the pendulum the shadow position's by step 500, the shadow length's between steps 1,800 and 2,700
//!   depending on the seed), so no single step suits them all. Children still undecided at `decide_by` (if
//!   given) are decided by the global rule then.
//!
//! A decision is taken at the first step this process trains that meets it. A run resumed after a decision
//! takes it again from the checkpoint's graph, where the pruned edges are (near) zero and the kept ones are
//! not, so it finds the same set.

use super::objectives::graph_term;
use super::{BuildContext, ForwardOutputs, Objective, ObjectiveConfig, Parts, Term};
use crate::data::Batch;
use crate::error::{Error, Result};
use candle_core::Tensor;
use serde::{Deserialize, Serialize};
use std::sync::Mutex;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphPruning {
    /// The first step at which edges may be pruned.
    pub at_step: usize,
    /// Global rule: edges with |A_ij| below this at `at_step` are pruned. Per-child rule: the strength at which
    /// a child's strongest incoming edge marks its mechanism as formed.
    pub threshold: f64,
    /// L1 weight on the pruned edges afterwards (large: it must beat every term that would regrow them).
    pub weight: f64,
    /// Per-child rule: prune a formed child's incoming edges weaker than this fraction of its strongest one.
    #[serde(default)]
    pub relative: Option<f64>,
    /// Per-child rule: the step at which children not yet formed are decided by the global rule.
    #[serde(default)]
    pub decide_by: Option<usize>,
}

#[typetag::serde(name = "GraphPruning")]
impl ObjectiveConfig for GraphPruning {
    fn build(&self, _ctx: &BuildContext) -> Result<Box<dyn Objective>> {
        Error::check_non_negative("GraphPruning threshold", self.threshold)?;
        Error::check_non_negative("GraphPruning weight", self.weight)?;
        if let Some(r) = self.relative {
            if !(0.0..=1.0).contains(&r) {
                return Err(Error::msg(format!(
                    "GraphPruning relative must be in [0, 1] (a fraction of a child's strongest edge), got {r}"
                )));
            }
        }
        Ok(Box::new(GraphPruningModel {
            cfg: self.clone(),
            state: Mutex::new(None),
        }))
    }
}
crate::register_component!(
    Objective,
    "GraphPruning",
    "graph_pruned: weight · Σ|A_ij| over the edges pruned once the graph formed (two-phase; global or per child)",
    needs: [Part(LearnedGraph)]
);

/// Which edges are pruned, and which children are decided.
struct Pruned {
    /// `[n·n]` row-major: 1 where edge i → j is pruned.
    mask: Vec<f32>,
    decided: Vec<bool>,
    /// `mask` as a tensor on A's device, rebuilt when a decision changes it.
    tensor: Tensor,
}

struct GraphPruningModel {
    cfg: GraphPruning,
    state: Mutex<Option<Pruned>>,
}

impl GraphPruningModel {
    /// Decides the children that are due at `step`, given |A| row-major `[n·n]`; true when any was decided.
    fn decide(&self, abs: &[f32], n: usize, step: usize, pruned: &mut Pruned) -> bool {
        let global = match self.cfg.relative {
            None => true,
            Some(_) => self.cfg.decide_by.is_some_and(|d| step >= d),
        };
        let mut changed = false;
        for j in 0..n {
            if pruned.decided[j] {
                continue;
            }
            let strongest = (0..n).map(|i| abs[i * n + j]).fold(0f32, f32::max);
            let cut = match (global, self.cfg.relative) {
                (true, _) => self.cfg.threshold as f32,
                (false, Some(r)) if strongest >= self.cfg.threshold as f32 => r as f32 * strongest,
                (false, _) => continue,
            };
            for i in 0..n {
                pruned.mask[i * n + j] = f32::from(abs[i * n + j] < cut);
            }
            pruned.decided[j] = true;
            changed = true;
        }
        changed
    }

    fn penalty(&self, a: &Tensor, step: usize) -> Result<Tensor> {
        let abs = a.abs()?;
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if step < self.cfg.at_step {
            return Ok((abs.sum_all()? * 0.0)?);
        }
        let n = a.dim(0)?;
        if state.is_none() {
            *state = Some(Pruned {
                mask: vec![0.0; n * n],
                decided: vec![false; n],
                tensor: abs.zeros_like()?,
            });
        }
        let pruned = state
            .as_mut()
            .ok_or_else(|| Error::msg("GraphPruning: pruning state missing"))?;
        if pruned.decided.iter().any(|d| !d) {
            let host: Vec<f32> = abs.detach().flatten_all()?.to_vec1()?;
            if self.decide(&host, n, step, pruned) {
                pruned.tensor = Tensor::from_vec(pruned.mask.clone(), (n, n), a.device())?;
            }
        }
        Ok(((abs * &pruned.tensor)?.sum_all()? * self.cfg.weight)?)
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
        model_with(None, None)
    }

    fn model_with(relative: Option<f64>, decide_by: Option<usize>) -> GraphPruningModel {
        GraphPruningModel {
            cfg: GraphPruning {
                at_step: 10,
                threshold: 0.1,
                weight: 2.0,
                relative,
                decide_by,
            },
            state: Mutex::new(None),
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
    fn each_child_is_decided_when_its_mechanism_forms() {
        let m = model_with(Some(0.5), None);
        // Columns are children. Child 1 formed (0.4 into it, 0.15 and 0.05 weaker); child 2 not yet (0.08 at most).
        let a = Var::from_vec(
            vec![0.0f32, 0.4, 0.08, 0.0, 0.0, 0.05, 0.0, 0.15, 0.0],
            (3, 3),
            &Device::Cpu,
        )
        .unwrap();
        // Child 1: edges below 0.5 · 0.4 pruned (0.15 and its zero diagonal). Child 0 and child 2 wait.
        let (_, g) = grad(&m, &a, 10);
        assert_eq!(g, vec![0.0, 0.0, 0.0, 0.0, 2.0, 0.0, 0.0, 2.0, 0.0]);
        // Child 2 forms later with both parents (0.3 and 0.2 ≥ 0.5 · 0.3): only its diagonal is pruned, and the
        // edge 2 → 1, pruned before, stays pruned though it grew.
        a.set(
            &Tensor::new(
                &[[0.0f32, 0.4, 0.3], [0.0, 0.0, 0.2], [0.0, 0.15, 0.0]],
                &Device::Cpu,
            )
            .unwrap(),
        )
        .unwrap();
        let (_, g) = grad(&m, &a, 40);
        assert_eq!(g, vec![0.0, 0.0, 0.0, 0.0, 2.0, 0.0, 0.0, 2.0, 2.0]);
        // A deadline decides the children still waiting by the global rule: child 0's weak edge is pruned.
        let m = model_with(Some(0.5), Some(20));
        a.set(
            &Tensor::new(
                &[[0.0f32, 0.4, 0.0], [0.05, 0.0, 0.0], [0.0, 0.0, 0.0]],
                &Device::Cpu,
            )
            .unwrap(),
        )
        .unwrap();
        let (_, g) = grad(&m, &a, 10);
        assert_eq!(
            g[3], 0.0,
            "child 0 is not decided before the deadline: {g:?}"
        );
        let (_, g) = grad(&m, &a, 20);
        assert_eq!(g[3], 2.0, "{g:?}");
    }

    #[test]
    fn a_negative_threshold_or_weight_is_rejected() {
        let spec = crate::data::DataSpec::default();
        let ctx = BuildContext {
            params: crate::nn::Params::new(candle_nn::VarMap::new(), Device::Cpu, 0),
            spec: &spec,
            latent_dim: 2,
            concepts: Default::default(),
            layers: Default::default(),
        };
        let cfg = GraphPruning {
            at_step: 0,
            threshold: 0.1,
            weight: -1.0,
            relative: None,
            decide_by: None,
        };
        let err = cfg.build(&ctx).err().unwrap();
        assert!(
            err.to_string().contains("weight must be finite and ≥ 0"),
            "{err}"
        );
        let cfg = GraphPruning {
            weight: 1.0,
            relative: Some(1.5),
            ..cfg
        };
        let err = cfg.build(&ctx).err().unwrap();
        assert!(
            err.to_string().contains("relative must be in [0, 1]"),
            "{err}"
        );
    }
}

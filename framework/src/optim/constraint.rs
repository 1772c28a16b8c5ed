//! Ways to impose a constraint g(θ) ≤ β on training (docs/methods/sparsity.md, "Objective"): a fixed penalty, a
//! fixed augmented-Lagrangian term (CausalVAE's 3h + 0.5h²), or a Lagrangian game solved by gradient
//! descent on the primal loss and projected gradient ascent on the multiplier λ ≥ 0, with optional dual
//! restarts and a linearly decreasing bound, as the mechanism-sparsity code does with the `cooper` library.
//!
//! The handler does not own the constraint: each step the method computes g (a differentiable scalar), adds
//! [`ConstraintHandler::primal_term`] to its loss, and after the primal update calls
//! [`ConstraintHandler::dual_update`] with g's value from the same forward pass (simultaneous GDA).

use crate::error::{Error, Result};
use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// How a constraint g ≤ β enters training.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub enum ConstraintConfig {
    /// No term: the constraint is ignored.
    #[default]
    Free,
    /// loss += weight · g.
    Penalty { weight: f64 },
    /// min loss s.t. g ≤ β_t: loss += λ · (g − β_t), λ ← max(0, λ + dual_lr · (g − β_t)). β_t goes linearly
    /// from the handler's `start` to `bound` over `schedule_steps`, then stays at `bound`.
    Lagrangian {
        bound: f64,
        #[serde(default = "default_dual_lr")]
        dual_lr: f64,
        #[serde(default = "default_schedule_steps")]
        schedule_steps: usize,
        /// λ ← 0 whenever the constraint is satisfied (cooper's `dual_restarts`).
        #[serde(default = "default_restarts")]
        restarts: bool,
    },
    /// Fixed coefficients, no multiplier update: loss += c1 · g + c2 · g² (for an equality h = 0 such as
    /// the DAG constraint).
    AugmentedLagrangian { c1: f64, c2: f64 },
}

fn default_dual_lr() -> f64 {
    5e-4
}
fn default_schedule_steps() -> usize {
    150_000
}
fn default_restarts() -> bool {
    true
}

impl ConstraintConfig {
    /// Rejects negative or non-finite coefficients and a non-positive dual learning rate.
    pub fn validate(&self) -> Result<()> {
        let bad = |message: String| {
            Err(Error::Config {
                location: "constraint".into(),
                message,
            })
        };
        let nonneg = |v: f64| v.is_finite() && v >= 0.0;
        match *self {
            ConstraintConfig::Free => {}
            ConstraintConfig::Penalty { weight } => {
                if !nonneg(weight) {
                    return bad(format!(
                        "Penalty: weight must be finite and >= 0 (got {weight})"
                    ));
                }
            }
            ConstraintConfig::Lagrangian { bound, dual_lr, .. } => {
                if !bound.is_finite() {
                    return bad(format!("Lagrangian: bound must be finite (got {bound})"));
                }
                if !(dual_lr.is_finite() && dual_lr > 0.0) {
                    return bad(format!(
                        "Lagrangian: dual_lr must be finite and > 0 (got {dual_lr})"
                    ));
                }
            }
            ConstraintConfig::AugmentedLagrangian { c1, c2 } => {
                if !nonneg(c1) || !nonneg(c2) {
                    return bad(format!(
                        "AugmentedLagrangian: c1 and c2 must be finite and >= 0 (got {c1}, {c2})"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// What a checkpoint keeps of a handler: the multiplier (0 for variants without one).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct ConstraintState {
    pub lambda: f64,
}

/// A constraint g ≤ β_t in training: the primal term and, for [`ConstraintConfig::Lagrangian`], the
/// multiplier λ and its updates.
#[derive(Clone, Debug)]
pub struct ConstraintHandler {
    cfg: ConstraintConfig,
    start: f64,
    lambda: f64,
}

impl ConstraintHandler {
    /// `start` is the bound at step 0 of the Lagrangian schedule (e.g. the number of possible edges, so the
    /// constraint is inactive at first); λ starts at 0.
    pub fn new(cfg: ConstraintConfig, start: f64) -> Result<Self> {
        cfg.validate()?;
        if matches!(cfg, ConstraintConfig::Lagrangian { .. }) && !start.is_finite() {
            return Err(Error::Config {
                location: "constraint".into(),
                message: format!("Lagrangian: the schedule's start must be finite (got {start})"),
            });
        }
        Ok(Self {
            cfg,
            start,
            lambda: 0.0,
        })
    }

    pub fn config(&self) -> &ConstraintConfig {
        &self.cfg
    }

    /// The bound β_t at `step`: for `Lagrangian`, linear from `start` (step 0) to `bound` (step
    /// `schedule_steps` and after); the other variants have no bound and return +∞ (never binding).
    pub fn bound_at(&self, step: usize) -> f64 {
        match self.cfg {
            ConstraintConfig::Lagrangian {
                bound,
                schedule_steps,
                ..
            } => {
                if step >= schedule_steps {
                    bound
                } else {
                    let frac = step as f64 / schedule_steps as f64;
                    self.start + (bound - self.start) * frac
                }
            }
            _ => f64::INFINITY,
        }
    }

    /// The term to add to the primal loss for the constraint value `g` (normally a scalar): `None` for
    /// `Free`. For `Lagrangian`, λ · (g − β_t) with λ a constant, so no gradient reaches λ.
    pub fn primal_term(&self, g: &Tensor, step: usize) -> Result<Option<Tensor>> {
        Ok(match self.cfg {
            ConstraintConfig::Free => None,
            ConstraintConfig::Penalty { weight } => Some(g.affine(weight, 0.0)?),
            ConstraintConfig::Lagrangian { .. } => {
                let l = self.lambda;
                Some(g.affine(l, -l * self.bound_at(step))?)
            }
            ConstraintConfig::AugmentedLagrangian { c1, c2 } => {
                Some((g.affine(c1, 0.0)? + g.sqr()?.affine(c2, 0.0)?)?)
            }
        })
    }

    /// One projected dual-ascent step on λ with the constraint value `g_value` at `step` (no-op for the
    /// variants without a multiplier): λ ← max(0, λ + dual_lr · (g − β_t)); with restarts, λ ← 0 when
    /// g < β_t. Like cooper, the restart needs a strictly negative defect; at g = β_t the step is 0 anyway.
    /// A non-finite `g_value` leaves λ unchanged (the trainer reports the non-finite loss).
    pub fn dual_update(&mut self, g_value: f64, step: usize) {
        let ConstraintConfig::Lagrangian {
            dual_lr, restarts, ..
        } = self.cfg
        else {
            return;
        };
        if !g_value.is_finite() {
            log::warn!("constraint value is {g_value}; multiplier not updated");
            return;
        }
        let defect = g_value - self.bound_at(step);
        self.lambda = if restarts && defect < 0.0 {
            0.0
        } else {
            (self.lambda + dual_lr * defect).max(0.0)
        };
    }

    /// The current multiplier λ (always 0 for variants without one).
    pub fn multiplier(&self) -> f64 {
        self.lambda
    }

    pub fn state(&self) -> ConstraintState {
        ConstraintState {
            lambda: self.lambda,
        }
    }

    /// Restores a [`ConstraintHandler::state`]; λ must be finite and ≥ 0.
    pub fn load_state(&mut self, state: ConstraintState) -> Result<()> {
        if !(state.lambda.is_finite() && state.lambda >= 0.0) {
            return Err(Error::msg(format!(
                "constraint state: lambda must be finite and >= 0 (got {})",
                state.lambda
            )));
        }
        self.lambda = state.lambda;
        Ok(())
    }

    /// The checkpoint key of the multiplier of the constraint called `name`.
    pub fn lambda_key(name: &str) -> String {
        format!("constraint.{name}.lambda")
    }

    /// The state as named tensors for a checkpoint (e.g. merged into a method's optimizer state):
    /// `"constraint.<name>.lambda"`, a one-element f64 CPU tensor.
    pub fn to_tensors(&self, name: &str) -> Result<HashMap<String, Tensor>> {
        let t = Tensor::new(&[self.lambda], &Device::Cpu)?;
        Ok(HashMap::from([(Self::lambda_key(name), t)]))
    }

    /// Restores the state written by [`ConstraintHandler::to_tensors`] under `name` (any float dtype or
    /// device). A missing entry is an error for `Lagrangian` and ignored for the variants without λ.
    pub fn load_tensors(&mut self, tensors: &HashMap<String, Tensor>, name: &str) -> Result<()> {
        let key = Self::lambda_key(name);
        let Some(t) = tensors.get(&key) else {
            if matches!(self.cfg, ConstraintConfig::Lagrangian { .. }) {
                return Err(Error::msg(format!(
                    "checkpoint has no entry `{key}`; was it written with a different constraint config?"
                )));
            }
            return Ok(());
        };
        if t.elem_count() != 1 {
            return Err(Error::Shape {
                context: format!("checkpoint entry `{key}`"),
                expected: "one element".into(),
                got: format!("{:?}", t.dims()),
            });
        }
        let v = t
            .flatten_all()?
            .to_device(&Device::Cpu)?
            .to_dtype(DType::F64)?
            .to_vec1::<f64>()?[0];
        self.load_state(ConstraintState { lambda: v })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Var;

    fn lagrangian(
        bound: f64,
        dual_lr: f64,
        schedule_steps: usize,
        restarts: bool,
    ) -> ConstraintConfig {
        ConstraintConfig::Lagrangian {
            bound,
            dual_lr,
            schedule_steps,
            restarts,
        }
    }

    fn scalar(t: &Tensor) -> f64 {
        t.to_dtype(DType::F64).unwrap().to_scalar::<f64>().unwrap()
    }

    #[test]
    fn schedule_goes_linearly_from_start_to_bound_then_stays() {
        let h = ConstraintHandler::new(lagrangian(20.0, 1e-3, 100, true), 100.0).unwrap();
        assert_eq!(h.bound_at(0), 100.0);
        assert_eq!(h.bound_at(50), 60.0);
        assert_eq!(h.bound_at(100), 20.0);
        assert_eq!(h.bound_at(1_000_000), 20.0);
        let h = ConstraintHandler::new(lagrangian(20.0, 1e-3, 0, true), 100.0).unwrap();
        assert_eq!(h.bound_at(0), 20.0);
        let h = ConstraintHandler::new(ConstraintConfig::Penalty { weight: 1.0 }, 100.0).unwrap();
        assert_eq!(h.bound_at(0), f64::INFINITY);
    }

    #[test]
    fn primal_terms() {
        let g = Tensor::new(7.0f32, &Device::Cpu).unwrap();
        let free = ConstraintHandler::new(ConstraintConfig::Free, 0.0).unwrap();
        assert!(free.primal_term(&g, 0).unwrap().is_none());
        let pen = ConstraintHandler::new(ConstraintConfig::Penalty { weight: 0.1 }, 0.0).unwrap();
        assert!((scalar(&pen.primal_term(&g, 0).unwrap().unwrap()) - 0.7).abs() < 1e-6);
        let aug = ConstraintHandler::new(
            ConstraintConfig::AugmentedLagrangian { c1: 3.0, c2: 0.5 },
            0.0,
        )
        .unwrap();
        // 3·7 + 0.5·49
        assert!((scalar(&aug.primal_term(&g, 0).unwrap().unwrap()) - 45.5).abs() < 1e-5);

        // λ (g − β): value λ·(7 − 5) = 4, gradient λ to g and nothing else.
        let mut lag = ConstraintHandler::new(lagrangian(5.0, 1e-3, 0, false), 10.0).unwrap();
        lag.load_state(ConstraintState { lambda: 2.0 }).unwrap();
        let x = Var::new(7.0f32, &Device::Cpu).unwrap();
        let term = lag.primal_term(x.as_tensor(), 3).unwrap().unwrap();
        assert!((scalar(&term) - 4.0).abs() < 1e-6);
        let grads = term.backward().unwrap();
        assert!((scalar(grads.get(x.as_tensor()).unwrap()) - 2.0).abs() < 1e-6);
    }

    #[test]
    fn multiplier_grows_while_violated_and_restarts_on_satisfaction() {
        let mut h = ConstraintHandler::new(lagrangian(1.0, 0.5, 0, true), 1.0).unwrap();
        h.dual_update(3.0, 0);
        assert_eq!(h.multiplier(), 1.0);
        h.dual_update(2.0, 1);
        assert_eq!(h.multiplier(), 1.5);
        h.dual_update(1.0, 2); // on the boundary: zero step, no restart
        assert_eq!(h.multiplier(), 1.5);
        h.dual_update(0.9, 3);
        assert_eq!(h.multiplier(), 0.0);

        // Without restarts λ descends and is clamped at 0.
        let mut h = ConstraintHandler::new(lagrangian(1.0, 0.5, 0, false), 1.0).unwrap();
        h.dual_update(3.0, 0);
        h.dual_update(0.0, 1);
        assert_eq!(h.multiplier(), 0.5);
        h.dual_update(-5.0, 2);
        assert_eq!(h.multiplier(), 0.0);
        h.dual_update(f64::NAN, 3);
        assert_eq!(h.multiplier(), 0.0);

        // Variants without a multiplier ignore dual updates.
        let mut p = ConstraintHandler::new(ConstraintConfig::Penalty { weight: 1.0 }, 0.0).unwrap();
        p.dual_update(100.0, 0);
        assert_eq!(p.multiplier(), 0.0);
    }

    #[test]
    fn gradient_descent_ascent_solves_a_one_dimensional_problem() {
        // min (x − 3)² s.t. x ≤ 1: KKT gives x* = 1, λ* = −2(x* − 3) = 4.
        let mut h = ConstraintHandler::new(lagrangian(1.0, 0.05, 0, false), 1.0).unwrap();
        let x = Var::new(0.0f32, &Device::Cpu).unwrap();
        let lr = 0.05;
        for step in 0..3000 {
            let g = x.as_tensor().clone();
            let loss = ((&g - 3.0).unwrap().sqr().unwrap()
                + h.primal_term(&g, step).unwrap().unwrap())
            .unwrap();
            let grads = loss.backward().unwrap();
            let dx = grads.get(x.as_tensor()).unwrap();
            x.set(&(x.as_tensor() - dx.affine(lr, 0.0).unwrap()).unwrap())
                .unwrap();
            h.dual_update(scalar(&g), step);
        }
        let xv = scalar(x.as_tensor());
        assert!((xv - 1.0).abs() < 1e-3, "x = {xv}");
        assert!(
            (h.multiplier() - 4.0).abs() < 1e-2,
            "λ = {}",
            h.multiplier()
        );
    }

    #[test]
    fn state_round_trips() {
        let mut h = ConstraintHandler::new(lagrangian(1.0, 0.25, 0, false), 1.0).unwrap();
        h.dual_update(4.0, 0);
        let tensors = h.to_tensors("g_z").unwrap();
        assert!(tensors.contains_key("constraint.g_z.lambda"));

        let mut back = ConstraintHandler::new(lagrangian(1.0, 0.25, 0, false), 1.0).unwrap();
        back.load_tensors(&tensors, "g_z").unwrap();
        assert_eq!(back.multiplier(), 0.75);
        // A checkpoint may hold λ as f32.
        let as_f32: HashMap<String, Tensor> = tensors
            .iter()
            .map(|(k, t)| (k.clone(), t.to_dtype(DType::F32).unwrap()))
            .collect();
        back.load_tensors(&as_f32, "g_z").unwrap();
        assert_eq!(back.multiplier(), 0.75);
        assert!(back.load_tensors(&tensors, "g_a").is_err());

        let json = serde_json::to_string(&h.state()).unwrap();
        let mut again = ConstraintHandler::new(lagrangian(1.0, 0.25, 0, false), 1.0).unwrap();
        again
            .load_state(serde_json::from_str(&json).unwrap())
            .unwrap();
        assert_eq!(again.multiplier(), 0.75);
        assert!(again.load_state(ConstraintState { lambda: -1.0 }).is_err());

        // Without a multiplier a missing entry is fine.
        let mut free = ConstraintHandler::new(ConstraintConfig::Free, 0.0).unwrap();
        free.load_tensors(&HashMap::new(), "g_z").unwrap();
    }

    #[test]
    fn config_parsing_and_validation() {
        let cfg: ConstraintConfig = ron::from_str("Lagrangian(bound: 20.0)").unwrap();
        assert_eq!(cfg, lagrangian(20.0, 5e-4, 150_000, true));
        let cfg: ConstraintConfig = ron::from_str("Penalty(weight: 0.1)").unwrap();
        assert_eq!(cfg, ConstraintConfig::Penalty { weight: 0.1 });
        let cfg: ConstraintConfig = ron::from_str("Free").unwrap();
        assert_eq!(cfg, ConstraintConfig::default());
        assert!(ron::from_str::<ConstraintConfig>("Penalty(wieght: 0.1)").is_err());
        let cfg: ConstraintConfig =
            serde_json::from_str(r#"{"AugmentedLagrangian": {"c1": 3.0, "c2": 0.5}}"#).unwrap();
        assert_eq!(
            cfg,
            ConstraintConfig::AugmentedLagrangian { c1: 3.0, c2: 0.5 }
        );

        for bad in [
            ConstraintConfig::Penalty { weight: -1.0 },
            lagrangian(1.0, 0.0, 10, true),
            lagrangian(1.0, -1e-3, 10, true),
            lagrangian(f64::NAN, 1e-3, 10, true),
            ConstraintConfig::AugmentedLagrangian { c1: 3.0, c2: -0.5 },
        ] {
            let err = ConstraintHandler::new(bad, 1.0).unwrap_err();
            assert!(matches!(err, Error::Config { .. }), "{err}");
        }
        assert!(ConstraintHandler::new(lagrangian(1.0, 1e-3, 10, true), f64::INFINITY).is_err());
    }
}

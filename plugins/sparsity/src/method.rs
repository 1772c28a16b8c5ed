//! Training protocol: one Adam step on −ELBO plus the sparsity terms (all parameters, mask logits
//! included), then projected dual ascent on each constraint's multiplier (simultaneous gradient
//! descent–ascent, as the code's `cooper` setup).

use crate::model::Model;
use crate::MechanismSparsity;
use candle_core::{DType, Tensor};
use candle_nn::VarMap;
use carve::components::{Do, Term};
use carve::data::Batch;
use carve::error::{Error, Result};
use carve::method::{total_loss, Method, MethodContext, StepReport};
use carve::nn::{GumbelMask, Params};
use carve::optim::{ConstraintConfig, ConstraintHandler, GroupSpec, ParamGroups};
use carve::rng::Rng;
use std::collections::HashMap;

pub struct SparsityMethod {
    model: Model,
    /// (graph name, handler) for each learned mask.
    constraints: Vec<(&'static str, ConstraintHandler)>,
    varmap: VarMap,
    /// Every parameter except the mask logits, and the mask logits at `mask_lr_scale` × the base learning rate.
    groups: ParamGroups,
}

/// Checkpoint keys of the mask optimizer's state carry this prefix (both optimizers write `__step`).
const MASK_OPT: &str = "mask_opt.";

/// The optimizer group of the mask logits (tagged where the transition part creates them).
const MASKS: &str = carve::components::MASK_GROUP;

impl SparsityMethod {
    pub fn new(cfg: &MechanismSparsity, ctx: &MethodContext) -> Result<Self> {
        let varmap = VarMap::new();
        let root = Params::new(varmap.clone(), ctx.device.clone(), ctx.seed);
        let model = Model::new(cfg, ctx.spec, &root)?;
        let mut constraints = Vec::new();
        for (name, mask, c) in [
            ("z", model.mask("z"), &cfg.sparsity_z),
            ("a", model.mask("a"), &cfg.sparsity_a),
        ] {
            match mask {
                Some(m) if !cfg.freeze_graph => {
                    let (r, c2) = m.shape();
                    constraints.push((name, ConstraintHandler::new(c.clone(), (r * c2) as f64)?));
                }
                _ if *c != ConstraintConfig::Free => {
                    return Err(Error::msg(if mask.is_none() {
                        format!(
                            "sparsity_{name} is set but this data has no G^{name} (sequence data has G^z, data with actions G^a)"
                        )
                    } else {
                        format!("sparsity_{name} is set but freeze_graph keeps every edge: drop one of them")
                    }))
                }
                _ => {}
            }
        }
        if !(cfg.mask_lr_scale.is_finite() && cfg.mask_lr_scale > 0.0) {
            return Err(Error::Config {
                location: "model.mask_lr_scale".into(),
                message: format!("must be finite and > 0 (got {})", cfg.mask_lr_scale),
            });
        }
        let mut mask_cfg = ctx.optimizer.clone();
        mask_cfg.lr *= cfg.mask_lr_scale;
        let groups = ParamGroups::new(
            &root,
            vec![
                GroupSpec::new("default", ctx.optimizer.clone(), ""),
                GroupSpec::new(MASKS, mask_cfg, MASK_OPT),
            ],
            "default",
        )?;
        Ok(Self {
            model,
            constraints,
            varmap,
            groups,
        })
    }

    fn mask(&self, name: &str) -> Option<&GumbelMask> {
        self.model.mask(name)
    }
}

impl Method for SparsityMethod {
    fn train_step(&mut self, batch: &Batch, step: usize, rng: &mut Rng) -> Result<StepReport> {
        let pass = self.model.pass(batch, Some(rng))?;
        let mut terms = vec![
            Term {
                name: "recon".into(),
                value: pass.recon.mean_all()?,
            },
            Term {
                name: "kl".into(),
                value: (pass.kl.mean_all()? * self.model.beta())?,
            },
        ];
        let mut edges = Vec::with_capacity(self.constraints.len());
        for (name, handler) in &self.constraints {
            let mask = self.mask(name).expect("constraint without mask");
            let g = mask.expected_edges()?;
            // The penalty is normalised per observed dimension like the ELBO; the constraint bounds Σσ(α).
            let g_term = match handler.config() {
                ConstraintConfig::Penalty { .. } => (&g / self.model.x_dim as f64)?,
                _ => g.clone(),
            };
            if let Some(t) = handler.primal_term(&g_term, step)? {
                terms.push(Term {
                    name: format!("sparsity_{name}"),
                    value: t,
                });
            }
            edges.push(g.to_dtype(DType::F64)?.to_scalar::<f64>()?);
        }
        let mut report = StepReport::from_terms(&terms, step)?;
        let grads = total_loss(&terms)?.backward()?;
        self.groups.step_all(&grads)?;
        for ((name, handler), g) in self.constraints.iter_mut().zip(edges) {
            handler.dual_update(g, step);
            report.terms.push((format!("edges_{name}"), g as f32));
            if matches!(handler.config(), ConstraintConfig::Lagrangian { .. }) {
                report
                    .terms
                    .push((format!("lambda_{name}"), handler.multiplier() as f32));
                report
                    .terms
                    .push((format!("bound_{name}"), handler.bound_at(step) as f32));
            }
        }
        Ok(report)
    }

    /// At the posterior mean with the thresholded graph: `elbo` per observed dimension (the code's scale).
    fn evaluate(&self, batch: &Batch) -> Result<StepReport> {
        let pass = self.model.pass(batch, None)?;
        let recon = pass.recon.mean_all()?.to_scalar::<f32>()?;
        let kl = pass.kl.mean_all()?.to_scalar::<f32>()?;
        Ok(StepReport {
            terms: vec![
                ("elbo".into(), -(recon + self.model.beta() as f32 * kl)),
                ("recon".into(), recon),
                ("kl".into(), kl),
            ],
        })
    }

    fn encode(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.model.posterior(x)?.0)
    }

    fn decode(&self, z: &Tensor) -> Result<Tensor> {
        self.model.decode(z)
    }

    fn intervene(&self, _x: &Tensor, _dos: &[Do]) -> Result<Tensor> {
        Err(Error::msg(
            "MechanismSparsity learns mechanisms over time/actions, not an SCM over the latents of one frame: it has no do()",
        ))
    }

    fn latent_dim(&self) -> usize {
        self.model.z_dim
    }

    fn varmaps(&self) -> Vec<&VarMap> {
        vec![&self.varmap]
    }

    fn optimizer_state(&self) -> Result<HashMap<String, Tensor>> {
        let mut state = self.groups.state()?;
        for (name, h) in &self.constraints {
            state.extend(h.to_tensors(name)?);
        }
        Ok(state)
    }

    fn load_optimizer_state(&mut self, state: &HashMap<String, Tensor>) -> Result<()> {
        for (name, h) in &mut self.constraints {
            h.load_tensors(state, name)?;
        }
        let optimizers: HashMap<String, Tensor> = state
            .iter()
            .filter(|(k, _)| !k.starts_with("constraint."))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        self.groups.load_state(&optimizers)
    }

    fn set_lr_scale(&mut self, scale: f64) {
        self.groups.set_lr_scale(scale);
    }

    /// σ(α) of each mask (all ones when the graph is frozen), named as the dataset's latent graphs.
    fn latent_graphs(&self) -> Result<Vec<(String, Tensor)>> {
        let mut out = Vec::new();
        for (name, m) in self.model.masks() {
            let p = if self.model.frozen() {
                m.logits().ones_like()?
            } else {
                m.probs()?
            };
            out.push((name.to_string(), p));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use carve::data::DataSpec;
    use carve::optim::AdamConfig;

    fn build(ron: &str) -> Result<SparsityMethod> {
        let cfg: MechanismSparsity = ron::from_str(ron).expect("config");
        let spec = DataSpec {
            obs_shape: vec![6],
            factor_names: (0..3).map(|i| format!("z{i}")).collect(),
            action_dim: 3,
            ..Default::default()
        };
        SparsityMethod::new(
            &cfg,
            &MethodContext {
                spec: &spec,
                device: Device::Cpu,
                seed: 1,
                optimizer: &AdamConfig::default(),
                label_stats: None,
            },
        )
    }

    #[test]
    fn the_fields_the_parts_took_over_say_where_they_went() {
        for (field, hint) in [
            ("encoder_hidden: [4]", "encoder: {\"Mlp\""),
            ("transition_hidden: [4]", "GumbelMasked"),
            ("learn_decoder_var: false", "LearnedGaussian"),
        ] {
            let e = ron::from_str::<MechanismSparsity>(&format!("(latent_dim: 3, {field})"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(hint), "{field}: {e}");
        }
    }

    #[test]
    fn contradictory_sparsity_settings_are_refused() {
        let small = r#"latent_dim: 3, encoder: {"Mlp": (hidden: [4])}, decoder: {"Mlp": (hidden: [4])}, transition: {"GumbelMasked": (hidden: [4])}"#;
        build(&format!("({small}, sparsity_a: Lagrangian(bound: 3.0))")).unwrap();
        let frozen = build(&format!(
            "({small}, freeze_graph: true, sparsity_a: Penalty(weight: 1.0))"
        ))
        .err()
        .unwrap()
        .to_string();
        assert!(frozen.contains("freeze_graph"), "{frozen}");
        let no_lag = build(&format!("({small}, sparsity_z: Penalty(weight: 1.0))"))
            .err()
            .unwrap()
            .to_string();
        assert!(no_lag.contains("no G^z"), "{no_lag}");
    }
}

//! A method is a training protocol over components. [`Elbo`] composes the five parts into the ELBO family;
//! methods with another protocol (a GAN's three updates, a primal–dual game) implement [`Method`] themselves.

mod elbo;

pub use elbo::{located, named_vars, Elbo, ElboMethod, ElboParts};

use crate::components::{Do, Term};
use crate::data::{Batch, DataSpec, LabelStats};
use crate::error::{Error, Result};
use crate::optim::AdamConfig;
use crate::rng::Rng;
use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use std::collections::HashMap;
use std::fmt::Debug;

/// Named scalar values of one step (loss terms, `loss` = their sum).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StepReport {
    pub terms: Vec<(String, f32)>,
}

impl StepReport {
    pub fn get(&self, name: &str) -> Option<f32> {
        self.terms.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }

    /// Reads the terms back from the device and checks every one is finite; the sum is reported as `loss`.
    /// Called before the optimizer step, so a non-finite term never reaches the parameters.
    pub fn from_terms(terms: &[Term], step: usize) -> Result<Self> {
        let mut out = Vec::with_capacity(terms.len() + 1);
        let mut total = 0f32;
        for t in terms {
            let v = t
                .value
                .to_dtype(candle_core::DType::F32)?
                .to_scalar::<f32>()?;
            if !v.is_finite() {
                return Err(Error::NonFinite {
                    step,
                    term: t.name.clone(),
                    value: v,
                });
            }
            total += v;
            out.push((t.name.clone(), v));
        }
        out.insert(0, ("loss".to_string(), total));
        Ok(Self { terms: out })
    }
}

/// Sums loss terms into one scalar tensor.
pub fn total_loss(terms: &[Term]) -> Result<Tensor> {
    let mut it = terms.iter();
    let first = it.next().ok_or_else(|| {
        Error::msg("a method produced no loss terms: add objectives to the config")
    })?;
    let mut total = first.value.clone();
    for t in it {
        total = (total + &t.value)?;
    }
    Ok(total)
}

/// The widest latent code a method may have.
pub const MAX_LATENT_DIM: usize = 1 << 16;

/// Ok for 1 ≤ `latent_dim` ≤ [`MAX_LATENT_DIM`]; otherwise an error naming `model.latent_dim`. Methods call it
/// first in `build`, before any layer is sized from it.
pub fn check_latent_dim(latent_dim: usize) -> Result<()> {
    if (1..=MAX_LATENT_DIM).contains(&latent_dim) {
        return Ok(());
    }
    Err(Error::Config {
        location: "model.latent_dim".into(),
        message: format!("must be between 1 and {MAX_LATENT_DIM}, got {latent_dim}"),
    })
}

/// What a method config needs to build a method.
pub struct MethodContext<'a> {
    pub spec: &'a DataSpec,
    pub device: Device,
    pub seed: u64,
    /// The experiment's optimizer settings (methods with several optimizers may override per group).
    pub optimizer: &'a AdamConfig,
    /// Statistics of the training split's labels, for methods that scale them (`None` without labels).
    pub label_stats: Option<LabelStats>,
}

pub trait Method: Send {
    /// One optimisation step on `batch`; returns the named terms (checked finite before the update).
    fn train_step(&mut self, batch: &Batch, step: usize, rng: &mut Rng) -> Result<StepReport>;
    /// Deterministic evaluation terms on a batch (no update), e.g. `elbo`, `recon`, `kl`.
    fn evaluate(&self, batch: &Batch) -> Result<StepReport>;
    /// Representation of `x`: the posterior means after the causal layer, `[B, latent_dim]`; for sequence
    /// data (`x` is `[B, T, ..]`), one row per frame, `[B·T, latent_dim]`.
    fn encode(&self, x: &Tensor) -> Result<Tensor>;
    /// Expected observation for latents `z`, `[B, ..obs_shape]`.
    fn decode(&self, z: &Tensor) -> Result<Tensor>;
    /// Expected reconstruction of `x`.
    fn reconstruct(&self, x: &Tensor) -> Result<Tensor> {
        self.decode(&self.encode(x)?)
    }
    /// Counterfactual images of `x` under do(...): abduct, intervene, decode.
    fn intervene(&self, x: &Tensor, dos: &[Do]) -> Result<Tensor>;
    fn latent_dim(&self) -> usize;
    /// Every parameter group (one per optimizer); names are unique across groups.
    fn varmaps(&self) -> Vec<&VarMap>;
    fn optimizer_state(&self) -> Result<HashMap<String, Tensor>>;
    fn load_optimizer_state(&mut self, state: &HashMap<String, Tensor>) -> Result<()>;
    /// Multiplies every learning rate's base value by `scale` (schedules).
    fn set_lr_scale(&mut self, scale: f64);
    /// One value per causal node of `x`'s representation, `[B, n]`, in the units [`Do::value`] takes (see
    /// [`crate::components::CausalLayer::node_values`]); `None` for methods without causal nodes.
    fn node_values(&self, x: &Tensor) -> Result<Option<Tensor>> {
        let _ = x;
        Ok(None)
    }
    /// Weighted adjacency of the learned graph, if the method has one.
    fn graph(&self) -> Result<Option<Tensor>> {
        Ok(None)
    }
    /// Learned graphs of the latent mechanisms as edge probabilities `[latents, parents]`, named as the
    /// dataset's [`crate::data::LatentGraph`]s (e.g. `z`, `a`); empty for methods without them.
    fn latent_graphs(&self) -> Result<Vec<(String, Tensor)>> {
        Ok(Vec::new())
    }
    /// `n` observations generated from the prior (decoder means), `[n, ..obs_shape]`; `None` for methods that
    /// cannot sample without conditioning (e.g. a label-conditional prior).
    fn generate(&self, n: usize, rng: &mut Rng) -> Result<Option<Tensor>> {
        let _ = (n, rng);
        Ok(None)
    }
    /// Sizes of the latent code's stochastic layers, bottom first (`[latent_dim]` for a flat model); the
    /// representation of [`Method::encode`] is their concatenation.
    fn latent_layers(&self) -> Vec<usize> {
        vec![self.latent_dim()]
    }
    /// The KL of every latent unit of each row of `x`, `[B, latent_dim]`, whose sum over units is the model's KL
    /// (for hierarchical models, given one posterior draw of the layers above); `None` for methods without
    /// Gaussian posteriors and priors unit by unit.
    fn unit_kl(&self, x: &Tensor, rng: &mut Rng) -> Result<Option<Tensor>> {
        let _ = (x, rng);
        Ok(None)
    }
    /// Log importance weights of `k` posterior draws per row of `x`, `[B, k]`:
    /// `log p(x, z_j) − log q(z_j | x)` with `z_j ~ q(·|x)` (docs/methods/metrics.md, "IW log-likelihood"), so that
    /// `log (1/k) Σ_j exp(w_j)` is the importance-weighted bound on log p(x) and `mean_j w_j` a Monte Carlo ELBO.
    /// `None` (the default) for methods without tractable prior and posterior densities.
    fn log_importance_weights(
        &self,
        x: &Tensor,
        k: usize,
        rng: &mut Rng,
    ) -> Result<Option<Tensor>> {
        let _ = (x, k, rng);
        Ok(None)
    }
}

#[typetag::serde]
pub trait MethodConfig: Debug + Send + Sync {
    fn build(&self, ctx: &MethodContext) -> Result<Box<dyn Method>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latent_dim_is_bounded_both_ways() {
        check_latent_dim(1).unwrap();
        check_latent_dim(MAX_LATENT_DIM).unwrap();
        for bad in [0, MAX_LATENT_DIM + 1, 1_000_000_000] {
            let e = check_latent_dim(bad).unwrap_err().to_string();
            assert!(
                e.contains("model.latent_dim") && e.contains(&bad.to_string()),
                "{e}"
            );
        }
    }
}

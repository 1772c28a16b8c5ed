//! The five component traits every method is made of, their configs (registered with `typetag`, so a config
//! file can name them) and the values that flow between them in one forward pass.
//!
//! ```text
//! Batch ─► Encoder ─► q(ε|x) ─sample─► ε ─► CausalLayer ─► z ─► Decoder ─► p(x|z)
//!                                        Prior ◄──────────┘
//! Objectives(ForwardOutputs) ─► named loss terms
//! ```

mod causal;
mod decoders;
mod discriminator;
mod encoders;
mod graph_pruning;
mod objectives;
mod per_concept;
mod priors;
mod resnet;
mod sagan;
mod sagan_discriminator;
mod small_discriminator;

pub use causal::{set_columns, Independent};
pub use decoders::{ConvDecoder, MlpDecoder};
pub use discriminator::{Discriminator, DiscriminatorConfig};
pub use encoders::{ConvEncoder, MlpEncoder};
pub use graph_pruning::GraphPruning;
pub use objectives::{DagPenalty, GraphSparsity, PriorKl, Reconstruction};
pub use per_concept::{Background, BlockInput, Combine, PerConceptMlp};
pub use priors::StdNormal;
pub use resnet::ResNetEncoder;
pub use sagan::SaganGenerator;
pub use sagan_discriminator::SaganDiscriminator;
pub use small_discriminator::SmallDiscriminator;

use crate::data::{Batch, DataSpec};
use crate::dist::DiagGaussian;
use crate::error::Result;
use crate::nn::Params;
use crate::rng::Rng;
use candle_core::{Device, Tensor};
use std::collections::BTreeMap;
use std::fmt::Debug;

/// What a component config needs to create its parameters.
pub struct BuildContext<'a> {
    /// Parameter store scoped to this component's path (`encoder`, `decoder`, ...).
    pub params: Params,
    pub spec: &'a DataSpec,
    /// Total latent dimension.
    pub latent_dim: usize,
}

impl BuildContext<'_> {
    pub fn device(&self) -> &Device {
        self.params.device()
    }
}

/// Every intermediate of one forward pass, so objectives are small functions of it.
#[derive(Clone, Debug)]
pub struct ForwardOutputs {
    /// Posterior over the causal layer's input (q(ε|x), or q(z|x) when the causal layer is the identity).
    pub posterior: DiagGaussian,
    /// The sample (or mean, at evaluation) fed to the causal layer.
    pub eps: Tensor,
    /// Latents after the causal layer, fed to the decoder.
    pub z: Tensor,
    /// Decoder output: the parameters of p(x|z) (logits, means).
    pub decoded: Tensor,
    /// Anything else a component computes that an objective may use, by name.
    pub extras: BTreeMap<String, Tensor>,
}

pub use crate::data::Do;

pub trait Encoder: Send {
    /// `x`: `[B, ..obs_shape]` → posterior with `[B, latent_dim]` parameters.
    fn encode(&self, x: &Tensor) -> Result<DiagGaussian>;
    /// Switches layers that behave differently in training and evaluation (batch norm: batch statistics and
    /// running-average updates, or the running averages). Components start in evaluation mode; a method
    /// switches to training only around its update step, so every other call evaluates. No-op by default.
    fn set_training(&self, training: bool) {
        let _ = training;
    }
}

pub trait Decoder: Send {
    /// `z`: `[B, latent_dim]` → parameters of p(x|z), shape `[B, ..obs_shape]`.
    fn decode(&self, z: &Tensor) -> Result<Tensor>;
    /// [`Decoder::decode`] in training's forward pass, which may also record intermediates an objective uses
    /// (e.g. per-sample mask statistics) in `extras`, under names starting `decoder.`. Defaults to `decode`.
    fn decode_recording(
        &self,
        z: &Tensor,
        extras: &mut BTreeMap<String, Tensor>,
    ) -> Result<Tensor> {
        let _ = extras;
        self.decode(z)
    }
    /// −log p(x | params) per sample, shape `[B]`.
    fn nll(&self, x: &Tensor, params: &Tensor) -> Result<Tensor>;
    /// E[x | params], e.g. pixel probabilities, for pictures.
    fn mean(&self, params: &Tensor) -> Result<Tensor>;
    /// Training or evaluation mode, as [`Encoder::set_training`]. No-op by default.
    fn set_training(&self, training: bool) {
        let _ = training;
    }
}

pub trait Prior: Send {
    /// KL(q || p) per sample, shape `[B]` (analytic where possible).
    fn kl(&self, fwd: &ForwardOutputs, batch: &Batch) -> Result<Tensor>;
    /// `n` draws of the causal layer's input, shape `[n, latent_dim]`.
    fn sample(&self, n: usize, latent_dim: usize, rng: &mut Rng, device: &Device)
        -> Result<Tensor>;
    /// log p(ε) of causal-layer inputs `z` `[B, latent_dim]`, summed over dimensions: shape `[B]`; `None` for
    /// priors without a tractable unconditional density (e.g. label-conditional ones). Used by importance-
    /// weighted likelihood estimates ([`crate::method::Method::log_importance_weights`]).
    fn log_prob(&self, z: &Tensor) -> Result<Option<Tensor>> {
        let _ = z;
        Ok(None)
    }
}

pub trait CausalLayer: Send {
    /// ε `[B, d]` → z `[B, d]`; may record intermediates in `extras`. `rng` is `Some` in training (for
    /// layers that sample) and `None` at evaluation, where the layer must be deterministic.
    fn forward(
        &self,
        eps: &Tensor,
        batch: &Batch,
        rng: Option<&mut Rng>,
        extras: &mut BTreeMap<String, Tensor>,
    ) -> Result<Tensor>;
    /// Weighted adjacency over the causal nodes (`A[i][j] ≠ 0` means i → j), if the layer has a graph.
    fn graph(&self) -> Result<Option<Tensor>> {
        Ok(None)
    }
    /// z → ε (inverse of `forward`).
    fn abduct(&self, z: &Tensor) -> Result<Tensor>;
    /// z under do(...): fix the intervened nodes, recompute their descendants from `eps`.
    fn intervene(&self, eps: &Tensor, dos: &[Do]) -> Result<Tensor>;
    /// Whether `forward` is the identity (z = ε), so densities over ε are densities over z.
    fn is_identity(&self) -> bool {
        false
    }
    /// One scalar per causal node from z `[B, d]`, in the units `Do::value` takes: `[B, n]`. The default
    /// splits z into `n` equal blocks (one per node of `graph`) and averages each, which is how layers that
    /// intervene on whole blocks (and CausalVAE's MIC/TIC recipe) read a concept. `None` without a graph.
    fn node_values(&self, z: &Tensor) -> Result<Option<Tensor>> {
        let Some(a) = self.graph()? else {
            return Ok(None);
        };
        let n = a.dims()[0];
        let (b, d) = z.dims2()?;
        if n == 0 || !d.is_multiple_of(n) {
            return Ok(None);
        }
        Ok(Some(z.reshape((b, n, d / n))?.mean(2)?))
    }
}

/// The parts of a model, as objectives see them.
pub struct Parts {
    pub encoder: Box<dyn Encoder>,
    pub causal: Box<dyn CausalLayer>,
    pub prior: Box<dyn Prior>,
    pub decoder: Box<dyn Decoder>,
}

/// A named scalar loss term (already weighted; the training loss is their sum).
pub struct Term {
    pub name: String,
    pub value: Tensor,
}

pub trait Objective: Send {
    fn terms(
        &self,
        fwd: &ForwardOutputs,
        parts: &Parts,
        batch: &Batch,
        step: usize,
    ) -> Result<Vec<Term>>;
}

#[typetag::serde]
pub trait EncoderConfig: Debug + Send + Sync {
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Encoder>>;
}

#[typetag::serde]
pub trait DecoderConfig: Debug + Send + Sync {
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Decoder>>;
}

#[typetag::serde]
pub trait PriorConfig: Debug + Send + Sync {
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Prior>>;
}

#[typetag::serde]
pub trait CausalLayerConfig: Debug + Send + Sync {
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn CausalLayer>>;
}

#[typetag::serde]
pub trait ObjectiveConfig: Debug + Send + Sync {
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Objective>>;
}

/// Batch mean of a per-sample `[B]` tensor, as a scalar.
pub fn batch_mean(per_sample: &Tensor) -> Result<Tensor> {
    Ok(per_sample.mean_all()?)
}

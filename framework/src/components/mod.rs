//! The five component traits every method is made of, their configs (registered with `typetag`, so a config
//! file can name them) and the values that flow between them in one forward pass.
//!
//! ```text
//! Batch ─► Encoder ─► q(ε|x) ─sample─► ε ─► CausalLayer ─► z ─► Decoder ─► p(x|z)
//!                                        Prior ◄──────────┘
//! Objectives(ForwardOutputs) ─► named loss terms
//! ```

mod causal;
mod check;
mod concepts;
mod decoders;
mod discriminator;
mod encoders;
mod graph_pruning;
mod hierarchical;
mod latent_layers;
mod mechanism_scm;
mod objectives;
mod per_concept;
mod priors;
mod resnet;
mod sagan;
mod sagan_discriminator;
mod scm_layer;
mod small_discriminator;
mod top_down;
mod transition;

pub use causal::{set_columns, Independent};
pub use check::{data_offers, PartList};
pub use concepts::ConceptLayout;
pub use decoders::{ConvDecoder, MlpDecoder};
pub use discriminator::{Discriminator, DiscriminatorConfig};
pub use encoders::{ConvEncoder, MlpEncoder, PosteriorVariance};
pub use graph_pruning::GraphPruning;
pub use hierarchical::{defaults as block_defaults, BlockSpec, BottomUp};
pub use latent_layers::LatentLayers;
pub use mechanism_scm::MechanismScm;
pub use objectives::{DagPenalty, GraphSparsity, PriorKl, Reconstruction};
pub use per_concept::{Background, BlockInput, Combine, PerConceptMlp};
pub use priors::StdNormal;
pub use resnet::ResNetEncoder;
pub use sagan::SaganGenerator;
pub use sagan_discriminator::SaganDiscriminator;
pub use scm_layer::{Scm, ScmLayer, ADJACENCY_GROUP};
pub use small_discriminator::SmallDiscriminator;
pub use top_down::TopDown;
pub use transition::{GumbelMasked, MaskDraw, Transition, TransitionConfig, MASK_GROUP};

use crate::data::{Batch, DataSpec};
use crate::dist::DiagGaussian;
use crate::error::Result;
use crate::nn::Params;
use crate::registry::ComponentKind;
pub use crate::requirements::{Feature, Need};
use crate::rng::Rng;
use candle_core::{Device, Tensor};
use std::fmt::Debug;

/// What a component config needs to create its parameters.
pub struct BuildContext<'a> {
    /// Parameter store scoped to this component's path (`encoder`, `decoder`, ...).
    pub params: Params,
    pub spec: &'a DataSpec,
    /// Total latent dimension.
    pub latent_dim: usize,
    /// How the latents divide into concepts, set by the method (none unless it sets one).
    pub concepts: ConceptLayout,
    /// How the latents divide into stochastic layers (flat unless the method sets them); decoders are built with
    /// `latent_dim` set to the bottom layer's size, the part of z they read.
    pub layers: LatentLayers,
}

impl BuildContext<'_> {
    pub fn device(&self) -> &Device {
        self.params.device()
    }
}

/// What a causal layer computes from ε: the latents fed to the decoder and, for layers that have them, the
/// typed intermediates other parts need (each declared as a [`Feature`] the layer provides).
#[derive(Clone, Debug)]
pub struct CausalOutput {
    /// Latents after the causal layer, fed to the decoder.
    pub z: Tensor,
    /// The SCM's latents before a mask layer ([`Feature::ScmLatents`]).
    pub scm_latents: Option<Tensor>,
    /// A mask layer's output z̃ before any sampling noise ([`Feature::MaskedLatents`]).
    pub masked_latents: Option<Tensor>,
    /// The labels predicted from their parents ([`Feature::LabelPrediction`]); only for labelled batches.
    pub label_prediction: Option<Tensor>,
}

impl CausalOutput {
    /// Just the latents.
    pub fn latents(z: Tensor) -> Self {
        Self {
            z,
            scm_latents: None,
            masked_latents: None,
            label_prediction: None,
        }
    }
}

/// Every intermediate of one forward pass, so objectives are small functions of it.
#[derive(Clone, Debug)]
pub struct ForwardOutputs {
    /// Posterior over the causal layer's input (q(ε|x), or q(z|x) when the causal layer is the identity).
    pub posterior: DiagGaussian,
    /// The sample (or mean, at evaluation) fed to the causal layer.
    pub eps: Tensor,
    /// The causal layer's output: z and its typed intermediates.
    pub causal: CausalOutput,
    /// Decoder output: the parameters of p(x|z) (logits, means).
    pub decoded: Tensor,
}

impl ForwardOutputs {
    /// Latents after the causal layer.
    pub fn z(&self) -> &Tensor {
        &self.causal.z
    }

    /// The causal layer's output `feature`, or an error naming `who` needs it. Models are checked when they are
    /// built ([`PartList::check`]), so this fails only for a layer that declares a feature it does not compute.
    pub fn feature(&self, feature: Feature, who: &str) -> Result<&Tensor> {
        let t = match feature {
            Feature::ScmLatents => self.causal.scm_latents.as_ref(),
            Feature::MaskedLatents => self.causal.masked_latents.as_ref(),
            Feature::LabelPrediction => self.causal.label_prediction.as_ref(),
            _ => None,
        };
        t.ok_or_else(|| {
            crate::Error::msg(format!(
                "{who} needs {}, which the causal layer did not compute for this batch",
                feature.describe()
            ))
        })
    }
}

pub use crate::data::Do;

pub trait Encoder: Send {
    /// `x`: `[B, ..obs_shape]` → posterior with `[B, latent_dim]` parameters (for a hierarchical encoder, its
    /// conditionals along the deterministic pass through the means, as [`Encoder::sample`] without `rng`).
    fn encode(&self, x: &Tensor) -> Result<DiagGaussian>;
    /// The posterior of `draws` copies of every row of `x` and one draw from it, `[B·draws, latent_dim]` with
    /// each row's copies adjacent; its mean instead of a draw without `rng`. A flat encoder encodes once and
    /// draws μ + σ·noise; a hierarchical one samples layer by layer, each layer's posterior conditioned on the
    /// draw above it, so `posterior` stacks those conditionals and its density at the draw is log q(z | x).
    fn sample(
        &self,
        x: &Tensor,
        draws: usize,
        rng: Option<&mut Rng>,
    ) -> Result<(DiagGaussian, Tensor)> {
        let q = self.encode(x)?.repeat_rows(draws)?;
        let z = q.draw(rng)?;
        Ok((q, z))
    }
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
    /// −log p(x | params) per sample, shape `[B]`.
    fn nll(&self, x: &Tensor, params: &Tensor) -> Result<Tensor>;
    /// E[x | params], e.g. pixel probabilities, for pictures.
    fn mean(&self, params: &Tensor) -> Result<Tensor>;
    /// Training or evaluation mode, as [`Encoder::set_training`]. No-op by default.
    fn set_training(&self, training: bool) {
        let _ = training;
    }
}

/// A distribution over the causal layer's input ε.
pub trait Prior: Send {
    /// KL(q(ε|x) || p) per sample, shape `[B]`. Priors with a closed form override it; the default is the
    /// one-sample estimate log q(ε) − log p(ε) at `fwd.eps`, for priors with a [`Prior::log_prob`].
    fn kl(&self, fwd: &ForwardOutputs, batch: &Batch) -> Result<Tensor> {
        let _ = batch;
        let log_p = self.log_prob(&fwd.eps)?.ok_or_else(|| {
            crate::Error::msg(
                "this prior has neither a closed-form KL nor a density to estimate one",
            )
        })?;
        Ok((fwd.posterior.log_prob(&fwd.eps)? - log_p)?)
    }
    /// `n` draws of ε, shape `[n, latent_dim]`. `labels` (`[n, m]`, where given) condition priors that depend
    /// on labels; the others ignore them.
    fn sample(
        &self,
        n: usize,
        latent_dim: usize,
        labels: Option<&Tensor>,
        rng: &mut Rng,
        device: &Device,
    ) -> Result<Tensor>;
    /// log p(ε) of causal-layer inputs `z` `[B, latent_dim]`, summed over dimensions: shape `[B]`; `None` for
    /// priors without a tractable unconditional density (e.g. label-conditional ones). Used by importance-
    /// weighted likelihood estimates ([`crate::method::Method::log_importance_weights`]).
    fn log_prob(&self, z: &Tensor) -> Result<Option<Tensor>> {
        let _ = z;
        Ok(None)
    }
    /// The prior of every latent unit at `z` `[B, latent_dim]` given the units it is conditioned on, as one
    /// diagonal Gaussian: N(0, I) for a standard normal, the stacked p(zᵢ | zᵢ₊₁) of a hierarchical prior. With
    /// the posterior's conditionals at the same draw it gives every unit's KL in closed form. `None` for priors
    /// that are not Gaussian unit by unit.
    fn conditionals(&self, z: &Tensor) -> Result<Option<DiagGaussian>> {
        let _ = z;
        Ok(None)
    }
    /// Training or evaluation mode, as [`Encoder::set_training`]. No-op by default.
    fn set_training(&self, training: bool) {
        let _ = training;
    }
}

pub trait CausalLayer: Send {
    /// ε `[B, d]` → z `[B, d]` and the intermediates the layer provides. `rng` is `Some` in training (for
    /// layers that sample) and `None` at evaluation, where the layer must be deterministic.
    fn forward(&self, eps: &Tensor, batch: &Batch, rng: Option<&mut Rng>) -> Result<CausalOutput>;
    /// Weighted adjacency over the causal nodes (`A[i][j] ≠ 0` means i → j), if the layer has a graph.
    fn graph(&self) -> Result<Option<Tensor>> {
        Ok(None)
    }
    /// z → ε (inverse of `forward`).
    fn abduct(&self, z: &Tensor) -> Result<Tensor>;
    /// z under do(...): fix the intervened nodes, recompute their descendants from `eps`.
    fn intervene(&self, eps: &Tensor, dos: &[Do]) -> Result<Tensor>;
    /// z under do(...) from latents `z` (a method whose encoder gives z, not ε): by default abduct ε, then
    /// [`CausalLayer::intervene`]; layers that can keep the non-descendants exact override it.
    fn intervene_latents(&self, z: &Tensor, dos: &[Do]) -> Result<Tensor> {
        self.intervene(&self.abduct(z)?, dos)
    }
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
    /// What this part needs; defaults to its registration's `needs`.
    fn needs(&self) -> Vec<Need> {
        declared(ComponentKind::Encoder, self.typetag_name()).0
    }
    /// What this part provides; defaults to its registration's `provides`.
    fn provides(&self) -> Vec<Feature> {
        declared(ComponentKind::Encoder, self.typetag_name()).1
    }
}

#[typetag::serde]
pub trait DecoderConfig: Debug + Send + Sync {
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Decoder>>;
    /// What this part needs; defaults to its registration's `needs`.
    fn needs(&self) -> Vec<Need> {
        declared(ComponentKind::Decoder, self.typetag_name()).0
    }
    /// What this part provides; defaults to its registration's `provides`.
    fn provides(&self) -> Vec<Feature> {
        declared(ComponentKind::Decoder, self.typetag_name()).1
    }
}

#[typetag::serde]
pub trait PriorConfig: Debug + Send + Sync {
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Prior>>;
    /// What this part needs; defaults to its registration's `needs`.
    fn needs(&self) -> Vec<Need> {
        declared(ComponentKind::Prior, self.typetag_name()).0
    }
    /// What this part provides; defaults to its registration's `provides`.
    fn provides(&self) -> Vec<Feature> {
        declared(ComponentKind::Prior, self.typetag_name()).1
    }
}

#[typetag::serde]
pub trait CausalLayerConfig: Debug + Send + Sync {
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn CausalLayer>>;
    /// What this part needs; defaults to its registration's `needs`.
    fn needs(&self) -> Vec<Need> {
        declared(ComponentKind::CausalLayer, self.typetag_name()).0
    }
    /// What this part provides; defaults to its registration's `provides`.
    fn provides(&self) -> Vec<Feature> {
        declared(ComponentKind::CausalLayer, self.typetag_name()).1
    }
}

#[typetag::serde]
pub trait ObjectiveConfig: Debug + Send + Sync {
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Objective>>;
    /// What this part needs; defaults to its registration's `needs`.
    fn needs(&self) -> Vec<Need> {
        declared(ComponentKind::Objective, self.typetag_name()).0
    }
    /// What this part provides; defaults to its registration's `provides`.
    fn provides(&self) -> Vec<Feature> {
        declared(ComponentKind::Objective, self.typetag_name()).1
    }
}

/// The registered needs and provides of `name` of `kind` (none for an unregistered name).
pub fn declared(kind: ComponentKind, name: &str) -> (Vec<Need>, Vec<Feature>) {
    crate::registry::component(kind, name)
        .map(|c| (c.needs.to_vec(), c.provides.to_vec()))
        .unwrap_or_default()
}

/// Batch mean of a per-sample `[B]` tensor, as a scalar.
pub fn batch_mean(per_sample: &Tensor) -> Result<Tensor> {
    Ok(per_sample.mean_all()?)
}

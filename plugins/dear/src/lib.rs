//! DEAR — Disentangled gEnerative cAusal Representation (Shen et al., JMLR 23(241), 2022; docs/methods/dear.md):
//! a bidirectional GAN (encoder E, generator G, joint discriminator D(x, z)) whose prior is an SCM over the
//! first m latents, one per labelled factor, with the causal graph known and its weights learned; the
//! encoder's means of those latents are supervised by the labels. do() on a latent then propagates to its
//! descendants through the learned SCM before G draws the image.

mod method;
mod supervision;

pub use method::DearMethod;
pub use supervision::{Supervision, SupervisionKind};

use carve::components::{
    CausalLayerConfig, DecoderConfig, DiscriminatorConfig, EncoderConfig, ObjectiveConfig,
    PriorConfig, Scm, SmallDiscriminator, StdNormal,
};
use carve::error::Result;
use carve::method::{Method, MethodConfig, MethodContext};
use serde::{Deserialize, Serialize};

/// `{"Dear": (latent_dim: 6, encoder: {"Conv": (...)}, generator: {"Conv": (...)}, causal: {"Scm": (f2: Affine)})}`.
/// DEAR's prior is z = causal(ε) with ε ~ prior: the default `{"Scm": (f2: Affine)}` over N(0, I) is the paper's
/// SCM prior (the code's `linscm`; `MonotonePwl` is its `nlrscm`), and `causal: {"Independent": ()}` the
/// "supervised GAN with independent prior" ablation, where do() sets a latent and nothing follows. The encoder
/// and generator are any registered encoder and decoder (the generator draws the decoder's mean, e.g. sigmoid
/// of Bernoulli logits) and the discriminator any registered joint discriminator D(x, z) (default
/// `{"Small": ()}`); the code's full-size networks are `{"ResNet": (..)}` and `{"Sagan": (..)}` with
/// `discriminator: {"Sagan": (..)}`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dear {
    /// k: the first m (= number of labels) are the causal nodes, the rest free latents.
    pub latent_dim: usize,
    pub encoder: Box<dyn EncoderConfig>,
    pub generator: Box<dyn DecoderConfig>,
    #[serde(default = "default_discriminator")]
    pub discriminator: Box<dyn DiscriminatorConfig>,
    /// The causal layer the prior's samples pass through, and do() acts on.
    #[serde(default = "default_causal")]
    pub causal: Box<dyn CausalLayerConfig>,
    /// The distribution of ε.
    #[serde(default = "default_prior")]
    pub prior: Box<dyn PriorConfig>,
    #[serde(default)]
    pub supervision: Supervision,
    /// Terms added to the encoder's and the generator's losses, e.g. `{"GraphSparsity": (weight: 0.01)}`
    /// (each parameter group takes their gradient in its own update).
    #[serde(default)]
    pub objectives: Vec<Box<dyn ObjectiveConfig>>,
    #[serde(default)]
    pub learning_rates: LearningRates,
}

fn default_discriminator() -> Box<dyn DiscriminatorConfig> {
    Box::new(SmallDiscriminator::default())
}

fn default_causal() -> Box<dyn CausalLayerConfig> {
    Box::new(Scm::default())
}

fn default_prior() -> Box<dyn PriorConfig> {
    Box::new(StdNormal {})
}

/// Learning rates of the five parameter groups (§5.4); `prior` is the causal layer's f2 (and any other
/// parameters of the causal layer and prior), `adjacency` its weights A. Every group uses the experiment optimizer's betas and
/// ε (DEAR: Adam with β1 = 0) except the adjacency, which keeps Adam's default β1 = 0.9 as in the code.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LearningRates {
    pub encoder: f64,
    pub generator: f64,
    pub discriminator: f64,
    /// f2's parameters.
    pub prior: f64,
    /// The SCM weights A.
    pub adjacency: f64,
    pub adjacency_beta1: f64,
}

impl Default for LearningRates {
    fn default() -> Self {
        Self {
            encoder: 5e-5,
            generator: 5e-5,
            discriminator: 1e-4,
            prior: 5e-5,
            adjacency: 1e-3,
            adjacency_beta1: 0.9,
        }
    }
}

#[typetag::serde(name = "Dear")]
impl MethodConfig for Dear {
    fn build(&self, ctx: &MethodContext) -> Result<Box<dyn Method>> {
        carve::method::check_latent_dim(self.latent_dim)?;
        Ok(Box::new(DearMethod::new(self, ctx)?))
    }
}

carve::register_method!(
    "Dear",
    "DEAR: bidirectional GAN with a supervised SCM prior over labelled latents (Shen et al. 2022)",
    include_str!("../../../configs/dear/pendulum.ron"),
    slots: [Encoder, Decoder, CausalLayer, Prior, Discriminator, Objective],
    needs: [Labels]
);

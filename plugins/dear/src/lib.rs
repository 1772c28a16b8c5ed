//! DEAR — Disentangled gEnerative cAusal Representation (Shen et al., JMLR 23(241), 2022; docs/methods/dear.md):
//! a bidirectional GAN (encoder E, generator G, joint discriminator D(x, z)) whose prior is an SCM over the
//! first m latents, one per labelled factor, with the causal graph known and its weights learned; the
//! encoder's means of those latents are supervised by the labels. do() on a latent then propagates to its
//! descendants through the learned SCM before G draws the image.

mod method;
mod supervision;

pub use method::DearMethod;
pub use supervision::{Supervision, SupervisionKind};

use carve::components::{DecoderConfig, DiscriminatorConfig, EncoderConfig, SmallDiscriminator};
use carve::error::Result;
use carve::method::{Method, MethodConfig, MethodContext};
use carve::scm::BijectionConfig;
use serde::{Deserialize, Serialize};

/// `{"Dear": (latent_dim: 6, encoder: {"Conv": (...)}, generator: {"Conv": (...)}, prior: Scm(f2: Affine), ...)}`.
/// The encoder and generator are any registered encoder and decoder components (the generator draws the
/// decoder's mean, e.g. sigmoid of Bernoulli logits) and the discriminator any registered joint discriminator
/// D(x, z) (default `{"Small": ()}`); the code's full-size networks are `{"ResNet": (..)}` and `{"Sagan": (..)}`
/// with `discriminator: {"Sagan": (..)}`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dear {
    /// k: the first m (= number of labels) are the SCM's nodes, the rest free N(0, 1) latents.
    pub latent_dim: usize,
    pub encoder: Box<dyn EncoderConfig>,
    pub generator: Box<dyn DecoderConfig>,
    #[serde(default = "default_discriminator")]
    pub discriminator: Box<dyn DiscriminatorConfig>,
    pub prior: DearPrior,
    #[serde(default)]
    pub supervision: Supervision,
    #[serde(default)]
    pub learning_rates: LearningRates,
}

fn default_discriminator() -> Box<dyn DiscriminatorConfig> {
    Box::new(SmallDiscriminator::default())
}

/// The prior over the latents.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum DearPrior {
    /// DEAR's SCM prior on the data's known graph: `Affine` is the code's `linscm`, `MonotonePwl` its `nlrscm`.
    Scm { f2: BijectionConfig },
    /// Every latent i.i.d. N(0, 1): the "supervised GAN with independent prior" ablation. do() sets the
    /// latent and nothing else follows.
    Independent,
}

/// Learning rates of the five parameter groups (§5.4). Every group uses the experiment optimizer's betas and
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
    include_str!("../../../configs/dear/pendulum.ron")
);

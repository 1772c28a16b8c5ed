//! `LadderVae`: the ELBO over latent layers, E_q[log p(x | z₁)] − β_T (log q(z | x) − log p(z)), the KL a
//! one-sample estimate summed over layers and β_T rising linearly from 0 to 1 over `warmup_steps` (Sønderby
//! et al. 2016, §2.3). The parts are any encoder, prior and decoder; the paper's pairing is `Ladder` inference
//! with a `TopDown` prior, and `BottomUp` inference with the same prior is its hierarchical VAE.

use carve::components::{
    DecoderConfig, EncoderConfig, Independent, LatentLayers, ObjectiveConfig, PriorConfig, PriorKl,
    Reconstruction,
};
use carve::method::{located, ElboMethod, ElboParts, Method, MethodConfig, MethodContext};
use carve::Result;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LadderVae {
    /// Sizes of the latent layers z₁…z_L, bottom first (z₁ feeds the decoder).
    pub latents: Vec<usize>,
    /// Inference: `Ladder` (merged top-down) or `BottomUp`.
    pub encoder: Box<dyn EncoderConfig>,
    /// The generative hierarchy, e.g. `TopDown`.
    pub prior: Box<dyn PriorConfig>,
    pub decoder: Box<dyn DecoderConfig>,
    /// Steps over which the KL weight rises linearly from 0 to 1 (0: no warm-up).
    #[serde(default)]
    pub warmup_steps: usize,
    /// Terms added to the ELBO.
    #[serde(default)]
    pub objectives: Vec<Box<dyn ObjectiveConfig>>,
}

#[typetag::serde(name = "LadderVae")]
impl MethodConfig for LadderVae {
    fn build(&self, ctx: &MethodContext) -> Result<Box<dyn Method>> {
        let latent_dim = self.latents.iter().sum();
        let layers = LatentLayers::new(&self.latents, latent_dim, "model.latents")?;
        let elbo = Reconstruction {};
        let kl = PriorKl {
            weight: 1.0,
            warmup_steps: self.warmup_steps,
        };
        let mut objectives: Vec<(String, &dyn ObjectiveConfig)> =
            vec![("model".into(), &elbo), ("model.warmup_steps".into(), &kl)];
        objectives.extend(located("model.objectives", &self.objectives));
        let parts = ElboParts {
            latent_dim,
            concepts: Default::default(),
            layers,
            encoder: self.encoder.as_ref(),
            causal: &Independent {},
            prior: self.prior.as_ref(),
            decoder: self.decoder.as_ref(),
            objectives,
            sample_posterior: true,
        };
        Ok(Box::new(ElboMethod::new(&parts, ctx)?))
    }
}

carve::register_method!(
    "LadderVae",
    "Ladder VAE: latent layers with a top-down prior, inference merged top-down by precision weighting, KL warm-up (Sønderby et al. 2016)",
    include_str!("../../../configs/ladder/mnist.ron"),
    slots: [Encoder, Prior, Decoder, Objective]
);

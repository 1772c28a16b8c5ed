//! β-VAE (Higgins et al., ICLR 2017): maximise E_q[log p(x|z)] − β·KL(q(z|x) || N(0, I)) with β > 1.
//!
//! The method is the generic ELBO model with a standard-normal prior, no causal layer and the KL term
//! weighted by β; only the config shape and the name are specific to β-VAE.

use carve::components::{
    DecoderConfig, EncoderConfig, Independent, ObjectiveConfig, PriorKl, Reconstruction, StdNormal,
};
use carve::method::{located, ElboMethod, ElboParts, Method, MethodConfig, MethodContext};
use carve::Result;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BetaVae {
    pub latent_dim: usize,
    /// Weight of the KL term (β = 1 is the plain VAE).
    pub beta: f64,
    /// Steps over which β ramps up linearly from 0 (0 = constant β).
    #[serde(default)]
    pub warmup_steps: usize,
    pub encoder: Box<dyn EncoderConfig>,
    pub decoder: Box<dyn DecoderConfig>,
    /// Terms added to the β-ELBO (its reconstruction and β-weighted KL come first).
    #[serde(default)]
    pub objectives: Vec<Box<dyn ObjectiveConfig>>,
}

#[typetag::serde(name = "BetaVae")]
impl MethodConfig for BetaVae {
    fn build(&self, ctx: &MethodContext) -> Result<Box<dyn Method>> {
        let elbo = Reconstruction {};
        let kl = PriorKl {
            weight: self.beta,
            warmup_steps: self.warmup_steps,
        };
        let mut objectives: Vec<(String, &dyn ObjectiveConfig)> =
            vec![("model".into(), &elbo), ("model.beta".into(), &kl)];
        objectives.extend(located("model.objectives", &self.objectives));
        let parts = ElboParts {
            latent_dim: self.latent_dim,
            concepts: Default::default(),
            layers: Default::default(),
            encoder: self.encoder.as_ref(),
            causal: &Independent {},
            prior: &StdNormal {},
            decoder: self.decoder.as_ref(),
            objectives,
            sample_posterior: true,
        };
        Ok(Box::new(ElboMethod::new(&parts, ctx)?))
    }
}

carve::register_method!(
    "BetaVae",
    "β-VAE: Gaussian encoder, N(0, I) prior, KL weighted by β (Higgins et al. 2017)",
    include_str!("../../../configs/betavae/pendulum.ron"),
    slots: [Encoder, Decoder, Objective]
);

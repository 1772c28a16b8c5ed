//! CausalVAE's priors: ε ~ N(0, I) and z | u ~ N(ũ, I), with all posterior variances fixed to 1 as in the
//! official code, so the KL is α·½‖ε̂‖² + β·Σ_i ½‖z_i − ũ_i‖² (z = the linear SCM's output).

use crate::labels::{half_sq_dist, LabelScale};
use candle_core::{Device, Tensor};
use carve::components::{BuildContext, ForwardOutputs, Prior, PriorConfig};
use carve::data::Batch;
use carve::rng::Rng;
use carve::{Error, Result};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelConditional {
    pub concepts: usize,
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    #[serde(default = "default_beta")]
    pub beta: f64,
    pub label_scale: LabelScale,
}

fn default_alpha() -> f64 {
    0.3
}
fn default_beta() -> f64 {
    1.0
}

#[typetag::serde(name = "LabelConditional")]
impl PriorConfig for LabelConditional {
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Prior>> {
        if self.concepts == 0 || !ctx.latent_dim.is_multiple_of(self.concepts) {
            return Err(Error::Shape {
                context: "LabelConditional prior".into(),
                expected: format!("latent_dim divisible by concepts ({})", self.concepts),
                got: ctx.latent_dim.to_string(),
            });
        }
        Ok(Box::new(self.clone()))
    }
}
carve::register_component!(
    Prior,
    "LabelConditional",
    "CausalVAE: ε ~ N(0,I), z|u ~ N(scaled u, I); α·KL_ε + β·KL_z|u"
);

impl Prior for LabelConditional {
    fn kl(&self, fwd: &ForwardOutputs, batch: &Batch) -> Result<Tensor> {
        let (b, d) = fwd.eps.dims2()?;
        let (n, k) = (self.concepts, d / self.concepts);
        let kl_eps = half_sq_dist(&fwd.eps, &fwd.eps.zeros_like()?)?;
        let z = fwd
            .extras
            .get("causal.z")
            .ok_or_else(|| Error::msg("LabelConditional prior needs the CausalVaeMask causal layer (extras `causal.z`)"))?
            .reshape((b, n, k))?;
        let u = self
            .label_scale
            .prior_means(batch.labels.as_ref(), b, n, k, z.device())?;
        Ok(((kl_eps * self.alpha)? + (half_sq_dist(&z, &u)? * self.beta)?)?)
    }

    fn sample(&self, n: usize, d: usize, rng: &mut Rng, device: &Device) -> Result<Tensor> {
        rng.normal(&[n, d], device)
    }
}

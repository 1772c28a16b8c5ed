use super::{BuildContext, ForwardOutputs, Prior, PriorConfig};
use crate::data::Batch;
use crate::error::Result;
use crate::rng::Rng;
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

/// p(ε) = N(0, I); KL(q(ε|x) || p) in closed form.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StdNormal {}

#[typetag::serde(name = "StdNormal")]
impl PriorConfig for StdNormal {
    fn build(&self, _ctx: &BuildContext) -> Result<Box<dyn Prior>> {
        Ok(Box::new(StdNormal {}))
    }
}
crate::register_component!(
    Prior,
    "StdNormal",
    "independent standard normal N(0, I)",
    provides: [PriorDensity]
);

impl Prior for StdNormal {
    fn kl(&self, fwd: &ForwardOutputs, _batch: &Batch) -> Result<Tensor> {
        fwd.posterior.kl_std_normal()
    }
    fn sample(&self, n: usize, d: usize, rng: &mut Rng, device: &Device) -> Result<Tensor> {
        rng.normal(&[n, d], device)
    }
    /// log N(z; 0, I) = −½ Σ_j (z_j² + log 2π).
    fn log_prob(&self, z: &Tensor) -> Result<Option<Tensor>> {
        let t = (z.sqr()? + (2.0 * std::f64::consts::PI).ln())?;
        Ok(Some((t.sum(candle_core::D::Minus1)? * -0.5)?))
    }
}

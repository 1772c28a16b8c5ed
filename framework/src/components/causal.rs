use super::{BuildContext, CausalLayer, CausalLayerConfig, CausalOutput, Do};
use crate::data::Batch;
use crate::error::{Error, Result};
use crate::rng::Rng;
use candle_core::Tensor;
use serde::{Deserialize, Serialize};

/// No causal structure: z = ε. do(z_i = v) sets coordinate i and changes nothing else.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Independent {}

#[typetag::serde(name = "Independent")]
impl CausalLayerConfig for Independent {
    fn build(&self, _ctx: &BuildContext) -> Result<Box<dyn CausalLayer>> {
        Ok(Box::new(Independent {}))
    }
}
crate::register_component!(
    CausalLayer,
    "Independent",
    "identity z = ε (no causal structure)",
    provides: [Abduction]
);

/// Replaces the columns named in `dos` with their values.
pub fn set_columns(z: &Tensor, dos: &[Do]) -> Result<Tensor> {
    let (b, d) = z.dims2()?;
    let mut mask = vec![0f32; d];
    let mut vals = vec![0f32; d];
    for &Do { node, value } in dos {
        if node >= d {
            return Err(Error::Shape {
                context: "intervention".into(),
                expected: format!("a node index below {d}"),
                got: node.to_string(),
            });
        }
        mask[node] = 1.0;
        vals[node] = value;
    }
    let dev = z.device();
    let mask = Tensor::from_vec(mask, (1, d), dev)?.broadcast_as((b, d))?;
    let vals = Tensor::from_vec(vals, (1, d), dev)?.broadcast_as((b, d))?;
    let keep = (1.0 - &mask)?;
    Ok(((z * keep)? + (mask * vals)?)?)
}

impl CausalLayer for Independent {
    fn is_identity(&self) -> bool {
        true
    }

    fn forward(
        &self,
        eps: &Tensor,
        _batch: &Batch,
        _rng: Option<&mut Rng>,
    ) -> Result<CausalOutput> {
        Ok(CausalOutput::latents(eps.clone()))
    }
    fn abduct(&self, z: &Tensor) -> Result<Tensor> {
        Ok(z.clone())
    }
    fn intervene(&self, eps: &Tensor, dos: &[Do]) -> Result<Tensor> {
        set_columns(eps, dos)
    }
    fn intervene_latents(&self, z: &Tensor, dos: &[Do]) -> Result<Tensor> {
        set_columns(z, dos)
    }
}

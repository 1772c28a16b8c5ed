//! CausalVAE's `Decoder_DAG.decode_sep`: one MLP per concept block (k → 300 → 300 → 1024 → obs), outputs
//! averaged, as one batched matmul per layer.

use candle_core::Tensor;
use carve::components::{BuildContext, Decoder, DecoderConfig};
use carve::dist::Likelihood;
use carve::nn::{Activation, ParallelMlp};
use carve::{Error, Result};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerConceptMlp {
    pub concepts: usize,
    #[serde(default = "default_hidden")]
    pub hidden: Vec<usize>,
    #[serde(default = "elu")]
    pub activation: Activation,
    #[serde(default)]
    pub likelihood: Likelihood,
}

fn default_hidden() -> Vec<usize> {
    vec![300, 300, 1024]
}
fn elu() -> Activation {
    Activation::Elu
}

struct PerConceptMlpModel {
    nets: ParallelMlp,
    n: usize,
    obs_shape: Vec<usize>,
    likelihood: Likelihood,
}

#[typetag::serde(name = "PerConceptMlp")]
impl DecoderConfig for PerConceptMlp {
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Decoder>> {
        let n = self.concepts;
        if n == 0 || !ctx.latent_dim.is_multiple_of(n) {
            return Err(Error::Shape {
                context: "PerConceptMlp decoder".into(),
                expected: format!("latent_dim divisible by concepts ({n})"),
                got: ctx.latent_dim.to_string(),
            });
        }
        let k = ctx.latent_dim / n;
        Ok(Box::new(PerConceptMlpModel {
            nets: ParallelMlp::new(
                &ctx.params,
                n,
                k,
                &self.hidden,
                ctx.spec.obs_len(),
                self.activation,
            )?,
            n,
            obs_shape: ctx.spec.obs_shape.clone(),
            likelihood: self.likelihood.clone(),
        }))
    }
}
carve::register_component!(
    Decoder,
    "PerConceptMlp",
    "one MLP per concept block, outputs averaged (CausalVAE decode_sep)"
);

impl Decoder for PerConceptMlpModel {
    fn decode(&self, z: &Tensor) -> Result<Tensor> {
        let (b, d) = z.dims2()?;
        let blocks = z
            .reshape((b, self.n, d / self.n))?
            .transpose(0, 1)?
            .contiguous()?;
        let out = self.nets.forward(&blocks)?.mean(0)?;
        let mut shape = vec![b];
        shape.extend_from_slice(&self.obs_shape);
        Ok(out.reshape(shape)?)
    }
    fn nll(&self, x: &Tensor, params: &Tensor) -> Result<Tensor> {
        self.likelihood.nll(x, params)
    }
    fn mean(&self, params: &Tensor) -> Result<Tensor> {
        self.likelihood.mean(params)
    }
}

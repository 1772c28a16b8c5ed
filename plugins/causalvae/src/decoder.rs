//! CausalVAE's `Decoder_DAG.decode_sep`: one MLP per concept block (k → 300 → 300 → 1024 → obs), outputs
//! averaged, as one batched matmul per layer; or (`combine: Masks`) composed through per-pixel masks.

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
    #[serde(default)]
    pub combine: Combine,
}

/// How the per-concept outputs become one image.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub enum Combine {
    /// The code: the mean of the n outputs. Every decoder draws a share of every pixel, so a decoder whose
    /// concept correlates with another's (the shadow with the light) learns to draw part of it too, and do() on
    /// the first then redraws the second (the sun's colour shifts under do(shadow position)).
    #[default]
    Mean,
    /// Each decoder also outputs one mask logit per pixel; a pixel's output is Σ_i softmax_i(mask) · out_i. A
    /// decoder owns the pixels it claims, so the sun can be left to the light's decoder alone.
    Masks,
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
    combine: Combine,
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
        let out = match self.combine {
            Combine::Mean => ctx.spec.obs_len(),
            Combine::Masks => ctx.spec.obs_len() + pixels(&ctx.spec.obs_shape)?,
        };
        Ok(Box::new(PerConceptMlpModel {
            nets: ParallelMlp::new(&ctx.params, n, k, &self.hidden, out, self.activation)?,
            n,
            combine: self.combine,
            obs_shape: ctx.spec.obs_shape.clone(),
            likelihood: self.likelihood.clone(),
        }))
    }
}
carve::register_component!(
    Decoder,
    "PerConceptMlp",
    "one MLP per concept block, outputs averaged (CausalVAE decode_sep) or composed through per-pixel masks"
);

/// Pixels per channel of a `[C, H, W]` (or `[C, L]`) observation.
fn pixels(obs_shape: &[usize]) -> Result<usize> {
    match obs_shape {
        [_, rest @ ..] if !rest.is_empty() => Ok(rest.iter().product()),
        _ => Err(Error::Shape {
            context: "PerConceptMlp combine: Masks".into(),
            expected: "an image-like observation [channels, height, width]".into(),
            got: format!("{obs_shape:?}"),
        }),
    }
}

/// `[n, B, C·P + P]` per-concept outputs (C channels of P pixels, then P mask logits) → `[B, C·P]`:
/// each pixel's channels weighted by the softmax over concepts of that pixel's mask logits.
fn compose_masks(outs: &Tensor, p: usize) -> Result<Tensor> {
    let (n, b, len) = outs.dims3()?;
    let c = (len - p) / p;
    let logits = outs.narrow(2, 0, c * p)?.reshape((n, b, c, p))?;
    let masks = outs.narrow(2, c * p, p)?.reshape((n, b, 1, p))?;
    let w = candle_nn::ops::softmax(&masks, 0)?;
    Ok(logits.broadcast_mul(&w)?.sum(0)?.reshape((b, c * p))?)
}

impl Decoder for PerConceptMlpModel {
    fn decode(&self, z: &Tensor) -> Result<Tensor> {
        let (b, d) = z.dims2()?;
        let blocks = z
            .reshape((b, self.n, d / self.n))?
            .transpose(0, 1)?
            .contiguous()?;
        let outs = self.nets.forward(&blocks)?;
        let out = match self.combine {
            Combine::Mean => outs.mean(0)?,
            Combine::Masks => compose_masks(&outs, pixels(&self.obs_shape)?)?,
        };
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

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn each_pixel_follows_the_decoder_whose_mask_claims_it() {
        // Two concepts, one channel of two pixels: [logit px0, logit px1, mask px0, mask px1].
        let outs = Tensor::new(
            &[[[1f32, 5.0, 20.0, -20.0]], [[3.0, 7.0, -20.0, 20.0]]],
            &Device::Cpu,
        )
        .unwrap();
        let got: Vec<f32> = compose_masks(&outs, 2)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert!(
            (got[0] - 1.0).abs() < 1e-4 && (got[1] - 7.0).abs() < 1e-4,
            "{got:?}"
        );
        // Equal masks give the code's mean.
        let even = Tensor::new(
            &[[[1f32, 5.0, 0.0, 0.0]], [[3.0, 7.0, 0.0, 0.0]]],
            &Device::Cpu,
        )
        .unwrap();
        let got: Vec<f32> = compose_masks(&even, 2)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert_eq!(got, vec![2.0, 6.0]);
    }

    #[test]
    fn masks_need_an_image_like_observation() {
        assert_eq!(pixels(&[3, 4, 5]).unwrap(), 20);
        assert!(pixels(&[7]).unwrap_err().to_string().contains("image-like"));
    }
}

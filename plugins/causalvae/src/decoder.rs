//! CausalVAE's `Decoder_DAG.decode_sep`: one MLP per concept block (k → 300 → 300 → 1024 → obs), outputs
//! averaged, as one batched matmul per layer; or (`combine: Masks`) composed through per-pixel masks, optionally
//! with a learned background slot. Each decoder reads its whole block (the code) or only the block mean.

use candle_core::Tensor;
use carve::components::{BuildContext, Decoder, DecoderConfig};
use carve::dist::Likelihood;
use carve::nn::{Activation, Init, ParallelMlp};
use carve::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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
    /// With `combine: Masks`: one more slot, a learned constant image with a learned constant mask logit per
    /// pixel, that draws whatever no concept claims (the sky, the ground), so no concept's decoder needs to
    /// own the background. Training then records each sample's total claim Σ_i Σ_p σ(m_i,p − m_bg,p) as
    /// `decoder.mask_claims`, which the `MaskClaim` objective prices: a decoder that draws another concept's
    /// object pays for the pixels it claims even where that concept's own decoder claims them too. Measured on
    /// the pendulum (README, session 15): the learned image absorbs the mean image (a faint fan of pendulums),
    /// which the concept decoders then have to claim away.
    #[serde(default)]
    pub background: bool,
    #[serde(default)]
    pub input: BlockInput,
}

/// What each concept's decoder reads of its latent block.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub enum BlockInput {
    /// The code: the whole k-dimensional block. Priors pull every dimension toward the concept's value, but the
    /// directions orthogonal to the block mean stay free to carry other information (a mechanism's block can
    /// pass on its parents: the shadow position's block then also encodes where the sun is). do() sets the
    /// whole block to the value, which erases that information, so the decoder redraws the other concept.
    #[default]
    Block,
    /// The block mean only, the value do() sets (`CausalLayer::node_values`): a concept's decoder can see
    /// nothing but its concept.
    Mean,
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

/// The `extras` entry holding each sample's total mask claim (`background: true`).
pub const MASK_CLAIMS: &str = "decoder.mask_claims";

fn default_hidden() -> Vec<usize> {
    vec![300, 300, 1024]
}
fn elu() -> Activation {
    Activation::Elu
}

struct PerConceptMlpModel {
    nets: ParallelMlp,
    /// `[1, 1, C·P + P]`: the background slot's image logits and mask logits (`background: true`).
    background: Option<Tensor>,
    input: BlockInput,
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
        let background = match (self.background, self.combine) {
            (false, _) => None,
            (true, Combine::Masks) => Some(
                ctx.params
                    .get(&[1, 1, out], "background", Init::Const(0.0))?,
            ),
            (true, Combine::Mean) => {
                return Err(Error::msg(
                    "PerConceptMlp: `background: true` needs `combine: Masks` (a mean has no slots to claim pixels)",
                ))
            }
        };
        let in_dim = match self.input {
            BlockInput::Block => k,
            BlockInput::Mean => 1,
        };
        Ok(Box::new(PerConceptMlpModel {
            nets: ParallelMlp::new(&ctx.params, n, in_dim, &self.hidden, out, self.activation)?,
            input: self.input,
            background,
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

/// Per-sample total claim `[B]` of the concept slots against the background: Σ_i Σ_p σ(m_i,p − m_bg,p), from
/// `[n, B, C·P + P]` concept outputs and the `[1, 1, C·P + P]` background slot.
fn mask_claims(outs: &Tensor, background: &Tensor, p: usize) -> Result<Tensor> {
    let len = outs.dim(2)?;
    let m = outs.narrow(2, len - p, p)?;
    let m_bg = background.narrow(2, len - p, p)?;
    let claims = candle_nn::ops::sigmoid(&m.broadcast_sub(&m_bg)?)?;
    Ok(claims.sum(2)?.sum(0)?)
}

impl PerConceptMlpModel {
    /// The image parameters and, with a background slot and `with_claims`, the per-sample mask claims.
    fn decode_parts(&self, z: &Tensor, with_claims: bool) -> Result<(Tensor, Option<Tensor>)> {
        let (b, d) = z.dims2()?;
        let blocks = z.reshape((b, self.n, d / self.n))?;
        let blocks = match self.input {
            BlockInput::Block => blocks,
            BlockInput::Mean => blocks.mean_keepdim(2)?,
        };
        let outs = self.nets.forward(&blocks.transpose(0, 1)?.contiguous()?)?;
        let (out, claims) = match (self.combine, &self.background) {
            (Combine::Mean, _) => (outs.mean(0)?, None),
            (Combine::Masks, None) => (compose_masks(&outs, pixels(&self.obs_shape)?)?, None),
            (Combine::Masks, Some(bg)) => {
                let p = pixels(&self.obs_shape)?;
                let slots = Tensor::cat(&[&outs, &bg.broadcast_as((1, b, outs.dim(2)?))?], 0)?;
                let claims = match with_claims {
                    true => Some(mask_claims(&outs, bg, p)?),
                    false => None,
                };
                (compose_masks(&slots, p)?, claims)
            }
        };
        let mut shape = vec![b];
        shape.extend_from_slice(&self.obs_shape);
        Ok((out.reshape(shape)?, claims))
    }
}

impl Decoder for PerConceptMlpModel {
    fn decode(&self, z: &Tensor) -> Result<Tensor> {
        Ok(self.decode_parts(z, false)?.0)
    }
    fn decode_recording(
        &self,
        z: &Tensor,
        extras: &mut BTreeMap<String, Tensor>,
    ) -> Result<Tensor> {
        let (out, claims) = self.decode_parts(z, true)?;
        if let Some(c) = claims {
            extras.insert(MASK_CLAIMS.into(), c);
        }
        Ok(out)
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

    fn values(t: Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1().unwrap()
    }

    #[test]
    fn each_pixel_follows_the_decoder_whose_mask_claims_it() {
        // Two concepts, one channel of two pixels: [logit px0, logit px1, mask px0, mask px1].
        let outs = Tensor::new(
            &[[[1f32, 5.0, 20.0, -20.0]], [[3.0, 7.0, -20.0, 20.0]]],
            &Device::Cpu,
        )
        .unwrap();
        let got = values(compose_masks(&outs, 2).unwrap());
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
        let got = values(compose_masks(&even, 2).unwrap());
        assert_eq!(got, vec![2.0, 6.0]);
    }

    #[test]
    fn the_background_slot_draws_what_no_concept_claims_and_claims_are_priced_per_decoder() {
        // One concept claims pixel 0 strongly and leaves pixel 1 to the background; the other claims nothing.
        let outs = Tensor::new(
            &[[[1f32, 5.0, 20.0, -20.0]], [[3.0, 7.0, -20.0, -20.0]]],
            &Device::Cpu,
        )
        .unwrap();
        let bg = Tensor::new(&[[[-4f32, -6.0, 0.0, 0.0]]], &Device::Cpu).unwrap();
        let slots = Tensor::cat(&[&outs, &bg.broadcast_as((1, 1, 4)).unwrap()], 0).unwrap();
        let got = values(compose_masks(&slots, 2).unwrap());
        assert!(
            (got[0] - 1.0).abs() < 1e-4 && (got[1] + 6.0).abs() < 1e-4,
            "{got:?}"
        );
        // σ(20) + σ(−20) + σ(−20) + σ(−20) ≈ 1 pixel claimed in all.
        let c: Vec<f32> = mask_claims(&outs, &bg, 2).unwrap().to_vec1().unwrap();
        assert!((c[0] - 1.0).abs() < 1e-4, "{c:?}");
        // A second decoder claiming the same pixel pays for it too, though the composed image is unchanged.
        let both = Tensor::new(
            &[[[1f32, 5.0, 20.0, -20.0]], [[1.0, 7.0, 20.0, -20.0]]],
            &Device::Cpu,
        )
        .unwrap();
        let c: Vec<f32> = mask_claims(&both, &bg, 2).unwrap().to_vec1().unwrap();
        assert!((c[0] - 2.0).abs() < 1e-4, "{c:?}");
    }

    fn build(combine: Combine, background: bool) -> Result<Box<dyn Decoder>> {
        build_reading(combine, background, BlockInput::Block)
    }

    fn build_reading(
        combine: Combine,
        background: bool,
        input: BlockInput,
    ) -> Result<Box<dyn Decoder>> {
        let spec = carve::data::DataSpec {
            obs_shape: vec![1, 2, 2],
            ..Default::default()
        };
        let ctx = BuildContext {
            params: carve::nn::Params::new(candle_nn::VarMap::new(), Device::Cpu, 0),
            spec: &spec,
            latent_dim: 4,
        };
        PerConceptMlp {
            concepts: 2,
            hidden: vec![3],
            activation: Activation::Elu,
            likelihood: Likelihood::default(),
            combine,
            background,
            input,
        }
        .build(&ctx)
    }

    #[test]
    fn a_background_decoder_records_its_claims_and_a_mean_one_rejects_a_background() {
        let dec = build(Combine::Masks, true).unwrap();
        let z = Tensor::zeros((3, 4), candle_core::DType::F32, &Device::Cpu).unwrap();
        let mut extras = BTreeMap::new();
        let out = dec.decode_recording(&z, &mut extras).unwrap();
        assert_eq!(out.dims(), &[3, 1, 2, 2]);
        assert_eq!(extras[MASK_CLAIMS].dims(), &[3]);
        // Without a background there is nothing to claim from: no entry.
        let mut extras = BTreeMap::new();
        build(Combine::Masks, false)
            .unwrap()
            .decode_recording(&z, &mut extras)
            .unwrap();
        assert!(extras.is_empty());
        let err = build(Combine::Mean, true).err().unwrap().to_string();
        assert!(err.contains("needs `combine: Masks`"), "{err}");
    }

    #[test]
    fn a_mean_reading_decoder_sees_nothing_of_a_block_but_its_mean() {
        let z = |v: &[f32]| Tensor::from_slice(v, (1, 4), &Device::Cpu).unwrap();
        let decode = |dec: &dyn Decoder, v: &[f32]| -> Vec<f32> {
            dec.decode(&z(v))
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap()
        };
        // Blocks (0.5, 0.5 | −1, 1) and (0.2, 0.8 | 0.3, −0.3) have the same means: 0.5 and 0.
        let (a, b) = ([0.5f32, 0.5, -1.0, 1.0], [0.2f32, 0.8, 0.3, -0.3]);
        let mean = build_reading(Combine::Masks, true, BlockInput::Mean).unwrap();
        assert_eq!(decode(mean.as_ref(), &a), decode(mean.as_ref(), &b));
        // The code's decoder reads the whole block, so it tells them apart.
        let block = build_reading(Combine::Masks, true, BlockInput::Block).unwrap();
        assert_ne!(decode(block.as_ref(), &a), decode(block.as_ref(), &b));
    }

    #[test]
    fn masks_need_an_image_like_observation() {
        assert_eq!(pixels(&[3, 4, 5]).unwrap(), 20);
        assert!(pixels(&[7]).unwrap_err().to_string().contains("image-like"));
    }
}

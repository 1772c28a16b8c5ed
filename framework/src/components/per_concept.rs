//! A decoder made of one MLP per concept block of z (CausalVAE's `Decoder_DAG.decode_sep`: k → 300 → 300 →
//! 1024 → obs per block), outputs averaged, as one batched matmul per layer; or composed through per-pixel
//! masks (`combine: Masks`, a softmax over decoders) or opacities (`combine: Layers`, front to back), with an
//! optional learned background slot. Each decoder reads its whole block (the code), its block mean, or the
//! block means of listed concepts, and every decoder also reads the latents outside all concepts (the layout's free
//! latents, such as DEAR's unlabelled ones).

use super::{BuildContext, Decoder, DecoderConfig};
use crate::dist::Likelihood;
use crate::error::{Error, Result};
use crate::nn::{Activation, Init, ParallelMlp};
use candle_core::Tensor;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerConceptMlp {
    /// Number of concepts, each an equal block of z with its own MLP; 0 (the default): the model's layout.
    #[serde(default)]
    pub concepts: usize,
    #[serde(default = "default_hidden")]
    pub hidden: Vec<usize>,
    #[serde(default = "elu")]
    pub activation: Activation,
    #[serde(default)]
    pub likelihood: Likelihood,
    #[serde(default)]
    pub combine: Combine,
    /// With `combine: Masks` or `Layers`: one more slot that draws whatever no concept claims (the sky, the
    /// ground), so no concept's decoder needs to own the background.
    #[serde(default)]
    pub background: Background,
    #[serde(default)]
    pub input: BlockInput,
}

/// The background slot of `combine: Masks`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub enum Background {
    /// No slot: the concepts' decoders share every pixel.
    #[default]
    None,
    /// A learned image with a learned mask logit per pixel. Measured on the pendulum (docs/results/causalvae.md): it
    /// absorbs the mean image (a faint fan of pendulums), which the concept decoders then have to claim away.
    Image,
    /// One learned colour and one learned mask logit for every pixel: a plain backdrop, which cannot hold any
    /// object's shape.
    Colour,
}

/// What each concept's decoder reads of its latent block.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
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
    /// Decoder i reads the block means of the concepts in list i, for concepts that describe one object: with
    /// `Means([[0], [1], [2, 3], [2, 3]])` both shadow decoders see where the shadow is and how long, which
    /// neither can draw from its own value alone. `Mean` is `Means([[0], [1], …])`.
    Means(Vec<Vec<usize>>),
}

impl BlockInput {
    /// `[n, 1, n]` 0/1 selection: row i marks the block means decoder i reads (`Means`).
    fn selection(lists: &[Vec<usize>], n: usize) -> Result<Tensor> {
        let bad = || Error::Shape {
            context: "PerConceptMlp input: Means(lists)".into(),
            expected: format!("{n} non-empty lists of concept indices below {n}, one per concept"),
            got: format!("{lists:?}"),
        };
        if lists.len() != n
            || lists
                .iter()
                .any(|l| l.is_empty() || l.iter().any(|&j| j >= n))
        {
            return Err(bad());
        }
        let mut sel = vec![0f32; n * n];
        for (i, l) in lists.iter().enumerate() {
            for &j in l {
                sel[i * n + j] = 1.0;
            }
        }
        Ok(Tensor::from_vec(sel, (n, 1, n), &candle_core::Device::Cpu)?)
    }
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
    /// Each decoder also outputs one mask logit per pixel, its opacity σ(m); the concepts are layered front to
    /// back in index order over the background slot (required): a pixel's output is
    /// Σ_i σ(m_i) Π_{j<i} (1 − σ(m_j)) · out_i + Π_j (1 − σ(m_j)) · background. List causes before effects:
    /// where a cause's decoder draws its object, no later decoder can paint over it, whatever values do() pairs
    /// them with. With `Masks`, an effect's decoder given a value never seen with the cause's outvotes it (the
    /// sun dissolves under do(shadow position), docs/results/causalvae.md).
    Layers,
}

fn default_hidden() -> Vec<usize> {
    vec![300, 300, 1024]
}
fn elu() -> Activation {
    Activation::Elu
}

/// What the decoders read, as built from [`BlockInput`].
enum Reading {
    Block,
    Mean,
    /// `[n, 1, n]` selection of the block means each decoder reads (`input: Means`).
    Selected(Tensor),
}

struct PerConceptMlpModel {
    nets: ParallelMlp,
    /// The background slot's parameters: `[1, 1, C·P + P]` image and mask logits (`Image`) or `[C + 1, 1]`
    /// colour and mask logits (`Colour`).
    background: Option<(Background, Tensor)>,
    reading: Reading,
    /// Latents after the concepts' blocks (no concept's own), read by every concept's MLP.
    free: usize,
    n: usize,
    combine: Combine,
    obs_shape: Vec<usize>,
    likelihood: Likelihood,
}

#[typetag::serde(name = "PerConceptMlp")]
impl DecoderConfig for PerConceptMlp {
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Decoder>> {
        let layout =
            ctx.concepts
                .for_part("the PerConceptMlp decoder", self.concepts, ctx.latent_dim)?;
        let (n, k, free) = (layout.concepts(), layout.block(), layout.free());
        self.likelihood.check_fixed("PerConceptMlp")?;
        let out = match self.combine {
            Combine::Mean => ctx.spec.obs_len(),
            Combine::Masks | Combine::Layers => ctx.spec.obs_len() + pixels(&ctx.spec.obs_shape)?,
        };
        let shape = match (self.background, self.combine) {
            (Background::None, Combine::Layers) => {
                return Err(Error::msg(
                    "PerConceptMlp: `combine: Layers` needs a background slot at the back (`background: Colour` or `Image`)",
                ))
            }
            (Background::None, _) => None,
            (_, Combine::Mean) => {
                return Err(Error::msg(format!(
                    "PerConceptMlp: `background: {:?}` needs `combine: Masks` (a mean has no slots to claim pixels)",
                    self.background
                )))
            }
            (Background::Image, _) => Some(vec![1, 1, out]),
            (Background::Colour, _) => Some(vec![ctx.spec.obs_shape[0] + 1, 1]),
        };
        let background = match shape {
            Some(s) => Some((
                self.background,
                ctx.params.get(&s, "background", Init::Const(0.0))?,
            )),
            None => None,
        };
        let (concept_in, reading) = match &self.input {
            BlockInput::Block => (k, Reading::Block),
            BlockInput::Mean => (1, Reading::Mean),
            BlockInput::Means(lists) => (
                n,
                Reading::Selected(BlockInput::selection(lists, n)?.to_device(ctx.params.device())?),
            ),
        };
        Ok(Box::new(PerConceptMlpModel {
            nets: ParallelMlp::new(
                &ctx.params,
                n,
                concept_in + free,
                &self.hidden,
                out,
                self.activation,
            )?,
            reading,
            background,
            n,
            free,
            combine: self.combine,
            obs_shape: ctx.spec.obs_shape.clone(),
            likelihood: self.likelihood.clone(),
        }))
    }
}
crate::register_component!(
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

/// The background slot as `[1, 1, C·P + P]` image and mask logits: the learned image, or the learned colour and
/// mask logit repeated over the `p` pixels.
fn background_slot(kind: Background, param: &Tensor, p: usize) -> Result<Tensor> {
    match kind {
        Background::Colour => {
            let c1 = param.dim(0)?;
            Ok(param.broadcast_as((c1, p))?.reshape((1, 1, c1 * p))?)
        }
        _ => Ok(param.clone()),
    }
}

/// `[n, B, C·P + P]` per-concept outputs layered front to back (index order) over the `[1, 1, C·P + P]`
/// background → the `[B, C·P]` image.
fn compose_layers(outs: &Tensor, background: &Tensor, p: usize) -> Result<Tensor> {
    let (n, b, len) = outs.dims3()?;
    let c = (len - p) / p;
    let alphas = candle_nn::ops::sigmoid(&outs.narrow(2, c * p, p)?)?;
    let mut seen = Tensor::ones((b, p), outs.dtype(), outs.device())?;
    let mut image: Option<Tensor> = None;
    for i in 0..n {
        let a = alphas.get(i)?;
        let w = (&seen * &a)?.reshape((b, 1, p))?;
        let part = outs
            .get(i)?
            .narrow(1, 0, c * p)?
            .reshape((b, c, p))?
            .broadcast_mul(&w)?;
        image = Some(match image {
            Some(acc) => (acc + part)?,
            None => part,
        });
        seen = (&seen * a.affine(-1.0, 1.0)?)?;
    }
    let back = background
        .narrow(2, 0, c * p)?
        .reshape((1, c, p))?
        .broadcast_mul(&seen.reshape((b, 1, p))?)?;
    let image = match image {
        Some(acc) => (acc + back)?,
        None => back,
    };
    Ok(image.reshape((b, c * p))?)
}

impl Decoder for PerConceptMlpModel {
    fn decode(&self, z: &Tensor) -> Result<Tensor> {
        let (b, d) = z.dims2()?;
        let concept_dims = d - self.free;
        let blocks = z
            .narrow(1, 0, concept_dims)?
            .reshape((b, self.n, concept_dims / self.n))?;
        let mut inputs = match &self.reading {
            Reading::Block => blocks.transpose(0, 1)?.contiguous()?,
            Reading::Mean => blocks.mean_keepdim(2)?.transpose(0, 1)?.contiguous()?,
            Reading::Selected(sel) => blocks.mean(2)?.unsqueeze(0)?.broadcast_mul(sel)?,
        };
        if self.free > 0 {
            let free = z
                .narrow(1, concept_dims, self.free)?
                .unsqueeze(0)?
                .broadcast_as((self.n, b, self.free))?;
            inputs = Tensor::cat(&[&inputs, &free.contiguous()?], 2)?;
        }
        let outs = self.nets.forward(&inputs)?;
        // A background exists only with `Masks` or `Layers`, which need an image-like observation.
        let bg = match &self.background {
            Some((kind, param)) => Some(background_slot(*kind, param, pixels(&self.obs_shape)?)?),
            None => None,
        };
        let out = match (self.combine, bg) {
            (Combine::Mean, _) => outs.mean(0)?,
            (Combine::Masks, None) => compose_masks(&outs, pixels(&self.obs_shape)?)?,
            (Combine::Masks, Some(bg)) => {
                let slots = Tensor::cat(&[&outs, &bg.broadcast_as((1, b, outs.dim(2)?))?], 0)?;
                compose_masks(&slots, pixels(&self.obs_shape)?)?
            }
            (Combine::Layers, Some(bg)) => compose_layers(&outs, &bg, pixels(&self.obs_shape)?)?,
            (Combine::Layers, None) => {
                return Err(Error::msg(
                    "PerConceptMlp: `combine: Layers` lost its background slot",
                ))
            }
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
    use super::super::ConceptLayout;
    use super::*;
    use candle_core::Device;

    fn values(t: Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1().unwrap()
    }

    /// The decoded image of one latent row `v` (four values), flattened.
    fn decode(dec: &dyn Decoder, v: &[f32]) -> Vec<f32> {
        values(
            dec.decode(&Tensor::from_slice(v, (1, 4), &Device::Cpu).unwrap())
                .unwrap(),
        )
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
    fn the_background_slot_draws_what_no_concept_claims() {
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
    }

    fn build(combine: Combine, background: Background) -> Result<Box<dyn Decoder>> {
        build_reading(combine, background, BlockInput::Block)
    }

    fn build_reading(
        combine: Combine,
        background: Background,
        input: BlockInput,
    ) -> Result<Box<dyn Decoder>> {
        build_with(combine, background, input)
    }

    /// Two concepts over one channel of 2×2 pixels, latent blocks of 2.
    fn build_with(
        combine: Combine,
        background: Background,
        input: BlockInput,
    ) -> Result<Box<dyn Decoder>> {
        build_in(4, ConceptLayout::default(), 2, combine, background, input)
    }

    /// A decoder with `hidden: [3]` over one channel of 2×2 pixels, in a model of `latent_dim` latents and
    /// the given concept layout.
    fn build_in(
        latent_dim: usize,
        layout: ConceptLayout,
        concepts: usize,
        combine: Combine,
        background: Background,
        input: BlockInput,
    ) -> Result<Box<dyn Decoder>> {
        let spec = crate::data::DataSpec {
            obs_shape: vec![1, 2, 2],
            ..Default::default()
        };
        let ctx = BuildContext {
            params: crate::nn::Params::new(candle_nn::VarMap::new(), Device::Cpu, 0),
            spec: &spec,
            latent_dim,
            concepts: layout,
            layers: Default::default(),
        };
        PerConceptMlp {
            concepts,
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
    fn a_learned_variance_is_refused_at_build() {
        let spec = crate::data::DataSpec {
            obs_shape: vec![1, 2, 2],
            ..Default::default()
        };
        let ctx = BuildContext {
            params: crate::nn::Params::new(candle_nn::VarMap::new(), Device::Cpu, 0),
            spec: &spec,
            latent_dim: 2,
            concepts: ConceptLayout::blocks(2, 2).unwrap(),
            layers: Default::default(),
        };
        let cfg: PerConceptMlp =
            ron::from_str("(hidden: [3], likelihood: LearnedGaussian(init_logvar: -1.0))").unwrap();
        let e = cfg.build(&ctx).err().expect("refused").to_string();
        assert!(
            e.contains("PerConceptMlp decoder does not learn a variance"),
            "{e}"
        );
    }

    /// With DEAR's layout (one latent per concept, then free latents) every decoder also reads the free ones.
    #[test]
    fn free_latents_reach_every_concepts_decoder() {
        let layout = ConceptLayout::singles(3, 2).unwrap();
        let dec = build_in(
            3,
            layout,
            0,
            Combine::Mean,
            Background::None,
            BlockInput::Block,
        )
        .unwrap();
        let decode = |free: f32| {
            let z = Tensor::new(&[[0.5f32, -0.5, free]], &Device::Cpu).unwrap();
            dec.decode(&z)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
        };
        let (a, b) = (decode(0.0), decode(2.0));
        assert_eq!(a.len(), 4);
        assert!(
            a.iter().zip(&b).any(|(x, y)| (x - y).abs() > 1e-6),
            "{a:?} {b:?}"
        );
    }

    #[test]
    fn a_background_decoder_draws_images_and_a_mean_one_rejects_a_background() {
        let dec = build(Combine::Masks, Background::Image).unwrap();
        let z = Tensor::zeros((3, 4), candle_core::DType::F32, &Device::Cpu).unwrap();
        assert_eq!(dec.decode(&z).unwrap().dims(), &[3, 1, 2, 2]);
        let err = build(Combine::Mean, Background::Colour)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("needs `combine: Masks`"), "{err}");
    }

    #[test]
    fn a_mean_reading_decoder_sees_nothing_of_a_block_but_its_mean() {
        // Blocks (0.5, 0.5 | −1, 1) and (0.2, 0.8 | 0.3, −0.3) have the same means: 0.5 and 0.
        let (a, b) = ([0.5f32, 0.5, -1.0, 1.0], [0.2f32, 0.8, 0.3, -0.3]);
        let mean = build_reading(Combine::Masks, Background::Image, BlockInput::Mean).unwrap();
        assert_eq!(decode(mean.as_ref(), &a), decode(mean.as_ref(), &b));
        // The code's decoder reads the whole block, so it tells them apart.
        let block = build_reading(Combine::Masks, Background::Image, BlockInput::Block).unwrap();
        assert_ne!(decode(block.as_ref(), &a), decode(block.as_ref(), &b));
    }

    #[test]
    fn a_decoder_reads_the_block_means_its_list_names() {
        // Concept 1's mean moves from 0 to 1; concept 0's block stays.
        let (a, b) = ([0.5f32, 0.5, -1.0, 1.0], [0.5f32, 0.5, 0.5, 1.5]);
        let read = |lists: Vec<Vec<usize>>| {
            build_reading(Combine::Masks, Background::Colour, BlockInput::Means(lists)).unwrap()
        };
        let blind = read(vec![vec![0], vec![0]]);
        assert_eq!(decode(blind.as_ref(), &a), decode(blind.as_ref(), &b));
        let sees = read(vec![vec![0], vec![0, 1]]);
        assert_ne!(decode(sees.as_ref(), &a), decode(sees.as_ref(), &b));
        // One list per concept, each non-empty and in range.
        for lists in [vec![vec![0]], vec![vec![0], vec![]], vec![vec![0], vec![2]]] {
            let err = build_reading(Combine::Masks, Background::None, BlockInput::Means(lists))
                .err()
                .unwrap()
                .to_string();
            assert!(err.contains("one per concept"), "{err}");
        }
    }

    #[test]
    fn layers_put_earlier_concepts_in_front_and_the_background_behind() {
        // Two concepts, one channel of two pixels: [logit px0, logit px1, mask px0, mask px1]. Concept 0 is
        // opaque at pixel 0, concept 1 everywhere, at whatever strength: concept 0 still wins pixel 0.
        let outs = Tensor::new(
            &[[[1f32, 5.0, 30.0, -30.0]], [[3.0, 7.0, 30.0, 30.0]]],
            &Device::Cpu,
        )
        .unwrap();
        let bg = Tensor::new(&[[[-4f32, -6.0, 0.0, 0.0]]], &Device::Cpu).unwrap();
        let got = values(compose_layers(&outs, &bg, 2).unwrap());
        assert!(
            (got[0] - 1.0).abs() < 1e-4 && (got[1] - 7.0).abs() < 1e-4,
            "{got:?}"
        );
        // Transparent concepts show the background; half-opaque ones mix front to back.
        let clear = Tensor::new(
            &[[[1f32, 5.0, -30.0, 0.0]], [[3.0, 7.0, -30.0, 0.0]]],
            &Device::Cpu,
        )
        .unwrap();
        let got = values(compose_layers(&clear, &bg, 2).unwrap());
        // Pixel 1: ½·5 + ¼·7 + ¼·(−6).
        assert!(
            (got[0] + 4.0).abs() < 1e-4 && (got[1] - 2.75).abs() < 1e-4,
            "{got:?}"
        );
        let err = build(Combine::Layers, Background::None)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("needs a background slot"), "{err}");
        let dec = build(Combine::Layers, Background::Colour).unwrap();
        let z = Tensor::zeros((3, 4), candle_core::DType::F32, &Device::Cpu).unwrap();
        assert_eq!(dec.decode(&z).unwrap().dims(), &[3, 1, 2, 2]);
    }

    #[test]
    fn a_colour_background_is_one_colour_and_one_mask_logit_everywhere() {
        // One channel: colour logit 2, mask logit −1, over three pixels.
        let param = Tensor::new(&[[2f32], [-1.0]], &Device::Cpu).unwrap();
        let slot = background_slot(Background::Colour, &param, 3).unwrap();
        assert_eq!(slot.dims(), &[1, 1, 6]);
        assert_eq!(values(slot), vec![2.0, 2.0, 2.0, -1.0, -1.0, -1.0]);
    }

    #[test]
    fn masks_need_an_image_like_observation() {
        assert_eq!(pixels(&[3, 4, 5]).unwrap(), 20);
        assert!(pixels(&[7]).unwrap_err().to_string().contains("image-like"));
    }
}

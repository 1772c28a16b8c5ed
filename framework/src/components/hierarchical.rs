//! Parts of hierarchical VAEs over the stochastic layers of [`LatentLayers`]: the deterministic blocks they are
//! made of ([`BlockSpec`]) and bottom-up stochastic inference ([`BottomUp`]), the inference of the plain
//! hierarchical VAE. The top-down prior is [`super::TopDown`]; the Ladder VAE's merged inference is a plugin.
//!
//! [`LatentLayers`]: super::LatentLayers

use super::{BuildContext, Encoder, EncoderConfig};
use crate::dist::DiagGaussian;
use crate::error::{Error, Result};
use crate::nn::{Activation, GaussianMlp, Params, TrainMode};
use crate::rng::Rng;
use candle_core::Tensor;
use serde::{Deserialize, Serialize};

/// The serde defaults of the block fields (the Ladder VAE code's: 2 hidden layers, leaky ReLU, batch norm,
/// variance floor 1e-5), for every part made of [`BlockSpec`] blocks.
pub mod defaults {
    use crate::nn::Activation;

    pub fn depth() -> usize {
        2
    }
    pub fn activation() -> Activation {
        Activation::LeakyRelu(0.01)
    }
    pub fn batch_norm() -> bool {
        true
    }
    pub fn lv_eps() -> f64 {
        1e-5
    }
}

/// How every deterministic block of a hierarchical part is made: `depth` hidden layers of the layer's width
/// (Linear → batch norm → activation), then μ and σ² = softplus(·) + `lv_eps`; with depth 0 both are affine
/// in the block's input (a linear-Gaussian model).
#[derive(Clone, Copy, Debug)]
pub struct BlockSpec {
    pub depth: usize,
    pub activation: Activation,
    pub batch_norm: bool,
    pub lv_eps: f64,
}

impl BlockSpec {
    /// A block `d_in` → `depth × width` → a Gaussian of `d` units, named under `p`.
    pub fn build(
        &self,
        p: &Params,
        d_in: usize,
        width: usize,
        d: usize,
        mode: &TrainMode,
    ) -> Result<GaussianMlp> {
        let hidden = vec![width; self.depth];
        let mode = self.batch_norm.then_some(mode);
        GaussianMlp::new(p, d_in, &hidden, d, self.activation, mode, self.lv_eps)
    }

    /// The width of every layer's blocks from `hidden` (`location` names the field): one width per layer, or one
    /// for all of them; and a check that the variance floor is a finite value ≥ 0.
    pub fn widths(&self, hidden: &[usize], layers: usize, location: &str) -> Result<Vec<usize>> {
        let widths = match hidden {
            [w] => vec![*w; layers],
            _ => hidden.to_vec(),
        };
        if widths.len() != layers || widths.contains(&0) {
            return Err(Error::Config {
                location: location.into(),
                message: format!(
                    "needs one positive hidden width per latent layer ({layers}), or one for all, got {hidden:?}"
                ),
            });
        }
        if !(self.lv_eps >= 0.0 && self.lv_eps.is_finite()) {
            return Err(Error::Config {
                location: location.into(),
                message: format!("lv_eps must be a finite value ≥ 0, got {}", self.lv_eps),
            });
        }
        Ok(widths)
    }
}

/// Bottom-up stochastic inference of a hierarchical VAE: q(z₁ | x) q(z₂ | z₁) … q(z_L | z_{L−1}), each
/// conditional a block on the draw below it (x, flattened, for z₁). `{"BottomUp": (hidden: [512, 256, 128])}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BottomUp {
    /// Width of each layer's block, bottom first (one per latent layer, or one for all).
    pub hidden: Vec<usize>,
    /// Hidden layers per block.
    #[serde(default = "defaults::depth")]
    pub depth: usize,
    #[serde(default = "defaults::activation")]
    pub activation: Activation,
    /// Batch norm on the blocks' hidden layers (never on their outputs).
    #[serde(default = "defaults::batch_norm")]
    pub batch_norm: bool,
    /// Floor added to every posterior variance.
    #[serde(default = "defaults::lv_eps")]
    pub lv_eps: f64,
}

impl BottomUp {
    fn spec(&self) -> BlockSpec {
        BlockSpec {
            depth: self.depth,
            activation: self.activation,
            batch_norm: self.batch_norm,
            lv_eps: self.lv_eps,
        }
    }
}

struct BottomUpModel {
    /// `up{i}`: q(zᵢ | z_{i−1}), bottom first.
    blocks: Vec<GaussianMlp>,
    mode: TrainMode,
}

#[typetag::serde(name = "BottomUp")]
impl EncoderConfig for BottomUp {
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Encoder>> {
        let sizes = ctx.layers.sizes(ctx.latent_dim);
        let spec = self.spec();
        let widths = spec.widths(&self.hidden, sizes.len(), "model.encoder.hidden")?;
        let mode = TrainMode::default();
        let mut d_in = ctx.spec.obs_len();
        let mut blocks = Vec::with_capacity(sizes.len());
        for (i, (&d, &width)) in sizes.iter().zip(&widths).enumerate() {
            blocks.push(spec.build(
                &ctx.params.pp(format!("up{}", i + 1)),
                d_in,
                width,
                d,
                &mode,
            )?);
            d_in = d;
        }
        Ok(Box::new(BottomUpModel { blocks, mode }))
    }
}
crate::register_component!(
    Encoder,
    "BottomUp",
    "hierarchical inference q(z₁|x) q(z₂|z₁) … bottom-up, one MLP block per latent layer (the hierarchical VAE)"
);

impl Encoder for BottomUpModel {
    fn encode(&self, x: &Tensor) -> Result<DiagGaussian> {
        Ok(self.sample(x, 1, None)?.0)
    }

    fn sample(
        &self,
        x: &Tensor,
        draws: usize,
        mut rng: Option<&mut Rng>,
    ) -> Result<(DiagGaussian, Tensor)> {
        let mut input = x.flatten_from(1)?;
        let (mut qs, mut zs) = (Vec::new(), Vec::new());
        for (i, block) in self.blocks.iter().enumerate() {
            let mut q = block.forward(&input)?;
            if i == 0 {
                q = q.repeat_rows(draws)?;
            }
            let z = q.draw(rng.as_deref_mut())?;
            input = z.clone();
            qs.push(q);
            zs.push(z);
        }
        Ok((DiagGaussian::concat(&qs)?, Tensor::cat(&zs, 1)?))
    }

    fn set_training(&self, training: bool) {
        self.mode.set(training);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::components::LatentLayers;
    use crate::data::DataSpec;
    use candle_core::Device;
    use candle_nn::VarMap;

    pub(crate) fn context<'a>(
        spec: &'a DataSpec,
        varmap: &VarMap,
        sizes: &[usize],
    ) -> BuildContext<'a> {
        let latent_dim = sizes.iter().sum();
        BuildContext {
            params: Params::new(varmap.clone(), Device::Cpu, 7).pp("encoder"),
            spec,
            latent_dim,
            concepts: Default::default(),
            layers: LatentLayers::new(sizes, latent_dim, "model.latents").unwrap(),
        }
    }

    /// The log density of the stacked conditionals at the draw is the sum of each layer's log q(zᵢ | zᵢ₋₁),
    /// with each conditional recomputed from the draw below it; parameters are named by layer.
    #[test]
    fn bottom_up_conditionals_follow_the_draws_below() {
        let spec = DataSpec {
            obs_shape: vec![5],
            ..Default::default()
        };
        let varmap = VarMap::new();
        let cfg = BottomUp {
            hidden: vec![8, 6],
            depth: 2,
            activation: defaults::activation(),
            batch_norm: true,
            lv_eps: 1e-5,
        };
        let enc = cfg.build(&context(&spec, &varmap, &[3, 2])).unwrap();
        let names: Vec<String> = varmap.data().lock().unwrap().keys().cloned().collect();
        assert!(
            names.iter().any(|n| n == "encoder.up2.bn1.running_mean"),
            "{names:?}"
        );
        let x = Tensor::new(
            &[[0.1f32, 0.2, 0.3, 0.4, 0.5], [1.0, 0.0, -1.0, 0.5, 0.2]],
            &Device::Cpu,
        )
        .unwrap();
        let mut rng = Rng::new(3);
        let (q, z) = enc.sample(&x, 4, Some(&mut rng)).unwrap();
        assert_eq!(z.dims(), &[8, 5]);
        assert_eq!(q.mean.dims(), &[8, 5]);
        // Without noise the draw is the mean, and encode is that pass.
        let (q0, z0) = enc.sample(&x, 1, None).unwrap();
        let diff = (z0 - &enc.encode(&x).unwrap().mean)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap();
        assert_eq!(diff.to_scalar::<f32>().unwrap(), 0.0);
        assert_eq!(q0.mean.dims(), &[2, 5]);
        // Copies of one row share q(z₁|x) but not their draws, so their upper conditionals differ.
        let m: Vec<Vec<f32>> = q.mean.to_vec2().unwrap();
        assert_eq!(m[0][..3], m[1][..3]);
        assert_ne!(m[0][3..], m[1][3..]);
    }
}

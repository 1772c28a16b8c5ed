//! The top-down prior of a hierarchical VAE over [`LatentLayers`] z₁…z_L:
//! p(z) = p(z_L) Πᵢ p(zᵢ | zᵢ₊₁), p(z_L) = N(0, I), p(zᵢ | zᵢ₊₁) = N(μᵢ(zᵢ₊₁), σᵢ²(zᵢ₊₁)), each conditional an
//! MLP block (hidden layers with batch norm, μ linear, σ² = softplus(·) + `lv_eps`), as in the Ladder VAE
//! (Sønderby et al. 2016). Its KL is the default one-sample estimate log q(z|x) − log p(z) at the posterior
//! draw, summed over layers; [`Prior::conditionals`] gives every unit's closed-form KL given the draw above.
//!
//! [`LatentLayers`]: super::LatentLayers

use super::hierarchical::{defaults, BlockSpec};
use super::{BuildContext, Prior, PriorConfig};
use crate::dist::DiagGaussian;
use crate::error::Result;
use crate::nn::{Activation, GaussianMlp, TrainMode};
use crate::rng::Rng;
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

/// `{"TopDown": (hidden: [512, 256, 128, 64, 32])}`: the hierarchical Gaussian prior.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopDown {
    /// Width of the block producing each layer's prior, bottom first: one per latent layer (the top layer's
    /// width is not used, its prior being N(0, I), so the encoder's list can be given as is), one per layer
    /// below the top, or one for all.
    pub hidden: Vec<usize>,
    /// Hidden layers per block.
    #[serde(default = "defaults::depth")]
    pub depth: usize,
    #[serde(default = "defaults::activation")]
    pub activation: Activation,
    /// Batch norm on the blocks' hidden layers (never on their outputs).
    #[serde(default = "defaults::batch_norm")]
    pub batch_norm: bool,
    /// Floor added to every prior variance.
    #[serde(default = "defaults::lv_eps")]
    pub lv_eps: f64,
}

struct TopDownModel {
    /// `z{i}`: p(zᵢ | zᵢ₊₁) for the layers below the top, bottom first.
    blocks: Vec<GaussianMlp>,
    /// `(offset, size)` of each layer along the latent axis.
    ranges: Vec<(usize, usize)>,
    mode: TrainMode,
}

#[typetag::serde(name = "TopDown")]
impl PriorConfig for TopDown {
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Prior>> {
        let sizes = ctx.layers.sizes(ctx.latent_dim);
        let spec = BlockSpec {
            depth: self.depth,
            activation: self.activation,
            batch_norm: self.batch_norm,
            lv_eps: self.lv_eps,
        };
        let mut hidden = self.hidden.clone();
        if hidden.len() > 1 && hidden.len() + 1 == sizes.len() {
            hidden.push(hidden[hidden.len() - 1]);
        }
        let hidden = spec.widths(&hidden, sizes.len(), "model.prior.hidden")?;
        let mode = TrainMode::default();
        let blocks = (0..sizes.len() - 1)
            .map(|i| {
                let p = ctx.params.pp(format!("z{}", i + 1));
                spec.build(&p, sizes[i + 1], hidden[i], sizes[i], &mode)
            })
            .collect::<Result<_>>()?;
        Ok(Box::new(TopDownModel {
            blocks,
            ranges: ctx.layers.ranges(ctx.latent_dim),
            mode,
        }))
    }
}
crate::register_component!(
    Prior,
    "TopDown",
    "hierarchical Gaussian prior p(z_L) Π p(zᵢ | zᵢ₊₁) over the latent layers, one MLP block per conditional (Ladder VAE)",
    provides: [PriorDensity]
);

impl TopDownModel {
    fn layer(&self, z: &Tensor, i: usize) -> Result<Tensor> {
        let (offset, size) = self.ranges[i];
        Ok(z.narrow(1, offset, size)?)
    }
}

impl Prior for TopDownModel {
    /// Ancestral sampling from the top, returned bottom layer first.
    fn sample(
        &self,
        n: usize,
        _latent_dim: usize,
        _labels: Option<&Tensor>,
        rng: &mut Rng,
        device: &Device,
    ) -> Result<Tensor> {
        let top = self.ranges.len() - 1;
        let mut z = rng.normal(&[n, self.ranges[top].1], device)?;
        let mut layers = vec![z.clone()];
        for block in self.blocks.iter().rev() {
            z = block.forward(&z)?.draw(Some(rng))?;
            layers.push(z.clone());
        }
        layers.reverse();
        Ok(Tensor::cat(&layers, 1)?)
    }

    fn log_prob(&self, z: &Tensor) -> Result<Option<Tensor>> {
        let p = self.conditionals(z)?.expect("a top-down prior is Gaussian");
        Ok(Some(p.log_prob(z)?))
    }

    fn conditionals(&self, z: &Tensor) -> Result<Option<DiagGaussian>> {
        let top = self.layer(z, self.ranges.len() - 1)?;
        let mut layers = self
            .blocks
            .iter()
            .enumerate()
            .map(|(i, block)| block.forward(&self.layer(z, i + 1)?))
            .collect::<Result<Vec<_>>>()?;
        layers.push(DiagGaussian::from_var(top.zeros_like()?, top.ones_like()?)?);
        Ok(Some(DiagGaussian::concat(&layers)?))
    }

    fn set_training(&self, training: bool) {
        self.mode.set(training);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::components::hierarchical::tests::context;
    use crate::data::DataSpec;
    use candle_nn::VarMap;

    /// log p(z) is the sum of the layers' conditional log densities, the top one N(0, I); samples have the
    /// latent width; the blocks are named by the layer whose prior they give.
    #[test]
    fn the_density_is_the_sum_of_the_conditionals() {
        let spec = DataSpec {
            obs_shape: vec![5],
            ..Default::default()
        };
        let varmap = VarMap::new();
        let cfg = TopDown {
            hidden: vec![8, 6],
            depth: 1,
            activation: defaults::activation(),
            batch_norm: false,
            lv_eps: 1e-5,
        };
        let prior = cfg.build(&context(&spec, &varmap, &[3, 2, 1])).unwrap();
        let names: Vec<String> = varmap.data().lock().unwrap().keys().cloned().collect();
        assert!(
            names.iter().any(|n| n == "encoder.z2.fc0.weight"),
            "{names:?}"
        );
        assert!(
            !names.iter().any(|n| n.starts_with("encoder.z3")),
            "{names:?}"
        );
        let mut rng = Rng::new(2);
        let z = prior.sample(4, 6, None, &mut rng, &Device::Cpu).unwrap();
        assert_eq!(z.dims(), &[4, 6]);
        let log_p: Vec<f32> = prior.log_prob(&z).unwrap().unwrap().to_vec1().unwrap();
        let p = prior.conditionals(&z).unwrap().unwrap();
        let by_layer = [(0, 3), (3, 2), (5, 1)].map(|(o, n)| {
            let g = DiagGaussian::from_var(
                p.mean.narrow(1, o, n).unwrap(),
                p.var().unwrap().narrow(1, o, n).unwrap(),
            )
            .unwrap();
            g.log_prob(&z.narrow(1, o, n).unwrap())
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
        });
        for r in 0..4 {
            let sum = by_layer[0][r] + by_layer[1][r] + by_layer[2][r];
            assert!((sum - log_p[r]).abs() < 1e-4, "{sum} vs {}", log_p[r]);
        }
        // The top layer's prior is N(0, 1): its mean and variance do not depend on z.
        let top_var: Vec<Vec<f32>> = p.var().unwrap().narrow(1, 5, 1).unwrap().to_vec2().unwrap();
        assert!(top_var.iter().all(|v| (v[0] - 1.0).abs() < 1e-6));
    }
}

//! A CPU-sized joint discriminator D(x, z) (DEAR §5.3): a stride-2 conv image branch with a linear feature
//! layer, plain MLP latent and joint branches, every layer spectrally normalised; D = (s_x + s_z + s_xz) / 3.

use super::{BuildContext, Discriminator, DiscriminatorConfig};
use crate::error::{Error, Result};
use crate::nn::{Activation, Params, SnConv2d, SnLinear};
use candle_core::Tensor;
use serde::{Deserialize, Serialize};

/// `{"Small": (channels: [32, 64, 128, 128], features: 256, latent_hidden: [256, 256], joint_hidden: [256])}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmallDiscriminator {
    /// Channels of the image branch's stride-2 convs (kernel 4): each halves the side.
    #[serde(default = "default_channels")]
    pub channels: Vec<usize>,
    /// Width of the image features f_x.
    #[serde(default = "default_features")]
    pub features: usize,
    /// Hidden widths of the latent branch; the last is the width of f_z.
    #[serde(default = "default_hidden")]
    pub latent_hidden: Vec<usize>,
    /// Hidden widths of the joint branch on concat(f_x, f_z).
    #[serde(default = "default_joint_hidden")]
    pub joint_hidden: Vec<usize>,
    #[serde(default = "default_activation")]
    pub activation: Activation,
}

fn default_channels() -> Vec<usize> {
    vec![32, 64, 128, 128]
}

fn default_features() -> usize {
    256
}

fn default_hidden() -> Vec<usize> {
    vec![256, 256]
}

fn default_joint_hidden() -> Vec<usize> {
    vec![256]
}

fn default_activation() -> Activation {
    Activation::LeakyRelu(0.2)
}

impl Default for SmallDiscriminator {
    fn default() -> Self {
        Self {
            channels: default_channels(),
            features: default_features(),
            latent_hidden: default_hidden(),
            joint_hidden: default_joint_hidden(),
            activation: default_activation(),
        }
    }
}

#[typetag::serde(name = "Small")]
impl DiscriminatorConfig for SmallDiscriminator {
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Discriminator>> {
        Ok(Box::new(SmallModel::new(
            &ctx.params,
            self,
            &ctx.spec.obs_shape,
            ctx.latent_dim,
        )?))
    }
}

crate::register_component!(
    Discriminator,
    "Small",
    "joint D(x, z): spectrally normalised stride-2 conv image branch and MLP latent and joint branches",
    needs: [Images]
);

/// Spectrally normalised MLP with the activation after every layer (features, not scores).
#[derive(Clone, Debug)]
struct SnStack(Vec<SnLinear>);

impl SnStack {
    fn new(p: &Params, d_in: usize, widths: &[usize]) -> Result<Self> {
        let ins = std::iter::once(d_in).chain(widths.iter().copied());
        Ok(Self(
            ins.zip(widths)
                .enumerate()
                .map(|(i, (a, &b))| SnLinear::new(&p.pp(format!("fc{i}")), a, b))
                .collect::<Result<_>>()?,
        ))
    }

    fn forward(&self, x: &Tensor, act: Activation, update: bool) -> Result<Tensor> {
        let mut h = x.clone();
        for l in &self.0 {
            h = act.apply(&l.forward(&h, update)?)?;
        }
        Ok(h)
    }
}

#[derive(Clone, Debug)]
struct SmallModel {
    convs: Vec<SnConv2d>,
    image_features: SnLinear,
    image_score: SnLinear,
    latent: SnStack,
    latent_score: SnLinear,
    joint: SnStack,
    joint_score: SnLinear,
    activation: Activation,
}

impl SmallModel {
    fn new(
        p: &Params,
        cfg: &SmallDiscriminator,
        obs_shape: &[usize],
        latent_dim: usize,
    ) -> Result<Self> {
        let SmallDiscriminator {
            channels,
            features,
            latent_hidden,
            joint_hidden,
            activation,
        } = cfg;
        let (features, activation) = (*features, *activation);
        let n = channels.len();
        let f = 1usize << n;
        let &[c, h, w] = obs_shape else {
            return Err(Error::Shape {
                context: "Small discriminator".into(),
                expected: "image data [C, H, W]".into(),
                got: format!("{obs_shape:?}"),
            });
        };
        if !h.is_multiple_of(f) || !w.is_multiple_of(f) || h < f || w < f {
            return Err(Error::Shape {
                context: "Small discriminator image branch".into(),
                expected: format!("sides divisible by {f} ({n} stride-2 convs)"),
                got: format!("{h}×{w}"),
            });
        }
        let ins = std::iter::once(c).chain(channels.iter().copied());
        let convs = ins
            .zip(channels)
            .enumerate()
            .map(|(i, (a, &b))| SnConv2d::new(&p.pp(format!("conv{i}")), a, b, 4, 2, 1))
            .collect::<Result<Vec<_>>>()?;
        let flat = channels.last().copied().unwrap_or(c) * (h / f) * (w / f);
        let fz = latent_hidden.last().copied().unwrap_or(latent_dim);
        let fj = joint_hidden.last().copied().unwrap_or(features + fz);
        Ok(Self {
            convs,
            image_features: SnLinear::new(&p.pp("x_features"), flat, features)?,
            image_score: SnLinear::new(&p.pp("x_score"), features, 1)?,
            latent: SnStack::new(&p.pp("z"), latent_dim, latent_hidden)?,
            latent_score: SnLinear::new(&p.pp("z_score"), fz, 1)?,
            joint: SnStack::new(&p.pp("xz"), features + fz, joint_hidden)?,
            joint_score: SnLinear::new(&p.pp("xz_score"), fj, 1)?,
            activation,
        })
    }
}

impl Discriminator for SmallModel {
    fn forward(&self, x: &Tensor, z: &Tensor, update: bool) -> Result<Tensor> {
        let act = self.activation;
        let mut h = x.clone();
        for conv in &self.convs {
            h = act.apply(&conv.forward(&h, update)?)?;
        }
        let fx = act.apply(&self.image_features.forward(&h.flatten_from(1)?, update)?)?;
        let fz = self.latent.forward(z, act, update)?;
        let fxz = self
            .joint
            .forward(&Tensor::cat(&[&fx, &fz], 1)?, act, update)?;
        let s = (self.image_score.forward(&fx, update)?
            + self.latent_score.forward(&fz, update)?
            + self.joint_score.forward(&fxz, update)?)?;
        Ok((s / 3.0)?.squeeze(1)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use candle_nn::VarMap;

    #[test]
    fn scores_one_value_per_pair_and_checks_the_image_side() {
        let p = Params::new(VarMap::new(), Device::Cpu, 0);
        let cfg: SmallDiscriminator = ron::from_str(
            "(channels: [4, 8], features: 16, latent_hidden: [8], joint_hidden: [8])",
        )
        .unwrap();
        let d = SmallModel::new(&p.pp("d"), &cfg, &[3, 8, 8], 5).unwrap();
        let x = Tensor::zeros((2, 3, 8, 8), DType::F32, &Device::Cpu).unwrap();
        let z = Tensor::zeros((2, 5), DType::F32, &Device::Cpu).unwrap();
        assert_eq!(d.forward(&x, &z, true).unwrap().dims(), &[2]);
        assert!(SmallModel::new(&p.pp("e"), &cfg, &[3, 6, 6], 5).is_err());
        assert!(SmallModel::new(&p.pp("f"), &cfg, &[10], 5).is_err());
    }

    #[test]
    fn parses_as_a_registered_discriminator() {
        let cfg: Box<dyn DiscriminatorConfig> =
            ron::from_str(r#"{"Small": (features: 64)}"#).unwrap();
        assert!(format!("{cfg:?}").contains("features: 64"));
        assert!(
            ron::from_str::<Box<dyn DiscriminatorConfig>>(r#"{"Small": (conv_dim: 4)}"#).is_err()
        );
    }
}

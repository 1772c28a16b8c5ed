//! DEAR's joint discriminator D(x, z) (§5.3): an image branch scoring x, a latent branch scoring z and a joint
//! branch scoring their features together; D = (s_x + s_z + s_xz) / 3. Every layer is spectrally normalised.
//! Two architectures: `Small` (default), a CPU-sized stride-2 conv stack with a linear feature layer and plain
//! MLP branches; `Sagan`, the code's (SAGAN residual blocks with self-attention and a global sum pool, residual
//! MLP branches: [`crate::sagan_discriminator`]), for GPUs.

use crate::sagan_discriminator::SaganDiscriminator;
use candle_core::Tensor;
use carve::error::{Error, Result};
use carve::nn::{Activation, Params, SnConv2d, SnLinear};
use serde::{Deserialize, Serialize};

/// Which discriminator and its sizes: `Small(channels: [...], features: ..)` (default) or
/// `Sagan(conv_dim: 32, fc: 512, res_blocks: 3)` (the code's network and defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum DiscriminatorConfig {
    Small {
        /// Channels of the image branch's stride-2 convs (kernel 4): each halves the side.
        #[serde(default = "default_channels")]
        channels: Vec<usize>,
        /// Width of the image features f_x.
        #[serde(default = "default_features")]
        features: usize,
        /// Hidden widths of the latent branch; the last is the width of f_z.
        #[serde(default = "default_hidden")]
        latent_hidden: Vec<usize>,
        /// Hidden widths of the joint branch on concat(f_x, f_z).
        #[serde(default = "default_joint_hidden")]
        joint_hidden: Vec<usize>,
        #[serde(default = "default_activation")]
        activation: Activation,
    },
    /// `conv_dim` c (image widths c … 16c), `fc` the latent and joint branches' width, `res_blocks` their
    /// residual blocks.
    Sagan {
        #[serde(default = "default_conv_dim")]
        conv_dim: usize,
        #[serde(default = "default_fc")]
        fc: usize,
        #[serde(default = "default_res_blocks")]
        res_blocks: usize,
    },
}

fn default_conv_dim() -> usize {
    32
}

fn default_fc() -> usize {
    512
}

fn default_res_blocks() -> usize {
    3
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

impl Default for DiscriminatorConfig {
    fn default() -> Self {
        Self::Small {
            channels: default_channels(),
            features: default_features(),
            latent_hidden: default_hidden(),
            joint_hidden: default_joint_hidden(),
            activation: default_activation(),
        }
    }
}

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
pub struct Discriminator(Arch);

#[derive(Clone, Debug)]
enum Arch {
    Small(SmallDiscriminator),
    Sagan(Box<SaganDiscriminator>),
}

impl Discriminator {
    /// For images `obs_shape` = `[C, H, W]` and `latent_dim` latents.
    pub fn new(
        p: &Params,
        cfg: &DiscriminatorConfig,
        obs_shape: &[usize],
        latent_dim: usize,
    ) -> Result<Self> {
        Ok(Self(match cfg {
            DiscriminatorConfig::Small { .. } => {
                Arch::Small(SmallDiscriminator::new(p, cfg, obs_shape, latent_dim)?)
            }
            &DiscriminatorConfig::Sagan {
                conv_dim,
                fc,
                res_blocks,
            } => Arch::Sagan(Box::new(SaganDiscriminator::new(
                p, obs_shape, latent_dim, conv_dim, fc, res_blocks,
            )?)),
        }))
    }

    /// D(x, z) `[B]` for images `x` `[B, C, H, W]` and latents `z` `[B, k]`. `update`: refresh the spectral
    /// norms' power iterations (training).
    pub fn forward(&self, x: &Tensor, z: &Tensor, update: bool) -> Result<Tensor> {
        match &self.0 {
            Arch::Small(d) => d.forward(x, z, update),
            Arch::Sagan(d) => d.forward(x, z, update),
        }
    }
}

#[derive(Clone, Debug)]
struct SmallDiscriminator {
    convs: Vec<SnConv2d>,
    image_features: SnLinear,
    image_score: SnLinear,
    latent: SnStack,
    latent_score: SnLinear,
    joint: SnStack,
    joint_score: SnLinear,
    activation: Activation,
}

impl SmallDiscriminator {
    fn new(
        p: &Params,
        cfg: &DiscriminatorConfig,
        obs_shape: &[usize],
        latent_dim: usize,
    ) -> Result<Self> {
        let DiscriminatorConfig::Small {
            channels,
            features,
            latent_hidden,
            joint_hidden,
            activation,
        } = cfg
        else {
            return Err(Error::msg("the small discriminator needs a Small config"));
        };
        let (features, activation) = (*features, *activation);
        let n = channels.len();
        let f = 1usize << n;
        let &[c, h, w] = obs_shape else {
            return Err(Error::Shape {
                context: "DEAR discriminator".into(),
                expected: "image data [C, H, W]".into(),
                got: format!("{obs_shape:?}"),
            });
        };
        if !h.is_multiple_of(f) || !w.is_multiple_of(f) || h < f || w < f {
            return Err(Error::Shape {
                context: "DEAR discriminator image branch".into(),
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
        let cfg: DiscriminatorConfig = ron::from_str(
            "Small(channels: [4, 8], features: 16, latent_hidden: [8], joint_hidden: [8])",
        )
        .unwrap();
        let d = Discriminator::new(&p.pp("d"), &cfg, &[3, 8, 8], 5).unwrap();
        let x = Tensor::zeros((2, 3, 8, 8), DType::F32, &Device::Cpu).unwrap();
        let z = Tensor::zeros((2, 5), DType::F32, &Device::Cpu).unwrap();
        assert_eq!(d.forward(&x, &z, true).unwrap().dims(), &[2]);
        assert!(Discriminator::new(&p.pp("e"), &cfg, &[3, 6, 6], 5).is_err());
        assert!(Discriminator::new(&p.pp("f"), &cfg, &[10], 5).is_err());
    }

    /// At 64×64 with c = 32, fc 512 and k = 6: the code's `BigJointDiscriminator` has 13,546,548 parameters,
    /// of which 262,656 are a 1×1 shortcut conv of its last image block that its forward never uses (no
    /// downsampling, no width change); that one is not built here.
    #[test]
    fn full_size_sagan_matches_the_codes_parameter_count() {
        let varmap = VarMap::new();
        let p = Params::new(varmap.clone(), Device::Cpu, 0);
        let cfg: DiscriminatorConfig = ron::from_str("Sagan()").unwrap();
        Discriminator::new(&p.pp("discriminator"), &cfg, &[3, 64, 64], 6).unwrap();
        assert_eq!(
            crate::sagan::tests::trained_parameters(&varmap),
            13_546_548 - 262_656
        );
    }

    #[test]
    fn sagan_arch_parses_scores_pairs_and_checks_its_input() {
        let cfg: DiscriminatorConfig =
            ron::from_str("Sagan(conv_dim: 4, fc: 16, res_blocks: 2)").unwrap();
        assert_eq!(
            cfg,
            DiscriminatorConfig::Sagan {
                conv_dim: 4,
                fc: 16,
                res_blocks: 2
            }
        );
        let full: DiscriminatorConfig = ron::from_str("Sagan()").unwrap();
        assert_eq!(
            full,
            DiscriminatorConfig::Sagan {
                conv_dim: 32,
                fc: 512,
                res_blocks: 3
            }
        );
        let varmap = VarMap::new();
        let p = Params::new(varmap.clone(), Device::Cpu, 0);
        let d = Discriminator::new(&p.pp("d"), &cfg, &[3, 32, 16], 5).unwrap();
        let x = Tensor::rand(0f32, 1f32, (3, 3, 32, 16), &Device::Cpu).unwrap();
        let z = Tensor::randn(0f32, 1f32, (3, 5), &Device::Cpu).unwrap();
        let s = d.forward(&x, &z, true).unwrap();
        assert_eq!(s.dims(), &[3]);
        // Every trained parameter gets a gradient (the attention's σ included).
        let grads = s.sum_all().unwrap().backward().unwrap();
        for (name, var) in varmap.data().lock().unwrap().iter() {
            assert_eq!(
                grads.get(var.as_tensor()).is_some(),
                !name.ends_with("sn_u"),
                "{name}"
            );
        }
        assert!(Discriminator::new(&p.pp("e"), &cfg, &[3, 24, 24], 5).is_err());
        assert!(Discriminator::new(&p.pp("f"), &cfg, &[10], 5).is_err());
        // Small's fields under Sagan are a config error, not silently ignored.
        assert!(ron::from_str::<DiscriminatorConfig>("Sagan(features: 64)").is_err());
        // The attention after the first block needs 2c ≥ 8 channels.
        let narrow: DiscriminatorConfig = ron::from_str("Sagan(conv_dim: 2)").unwrap();
        assert!(Discriminator::new(&p.pp("g"), &narrow, &[3, 16, 16], 5).is_err());
    }
}

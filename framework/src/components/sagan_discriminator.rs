//! DEAR's full-size joint discriminator (docs/methods/dear.md; the code's `BigJointDiscriminator`):
//! - image branch (`sagan.py::Discriminator`): SNconv1×1 C → c, residual down-blocks c → 2c (↓), self-attention,
//!   2c → 4c → 8c → 16c (↓ each), 16c → 16c (no ↓), ReLU, global *sum* pool → f_x (16c), SN-Linear → s_x;
//! - latent branch (`Discriminator_MLP`): SN-Linear k → fc + ReLU, residual SN blocks → f_z, SN-Linear → s_z;
//! - joint branch: the same MLP on concat(f_x, f_z) → s_xz.
//!
//! Every layer is spectrally normalised, with PyTorch's default initialisation (the code: orthogonal, bias 0).

use super::{BuildContext, Discriminator, DiscriminatorConfig};
use crate::error::{Error, Result};
use crate::nn::{Activation, Params, SelfAttention, SnConv2d, SnLinear};
use candle_core::Tensor;
use serde::{Deserialize, Serialize};

/// `{"Sagan": (conv_dim: 32, fc: 512, res_blocks: 3)}` (the code's network and defaults): `conv_dim` c (image
/// widths c … 16c), `fc` the latent and joint branches' width, `res_blocks` their residual blocks. For GPUs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SaganDiscriminator {
    #[serde(default = "default_conv_dim")]
    pub conv_dim: usize,
    #[serde(default = "default_fc")]
    pub fc: usize,
    #[serde(default = "default_res_blocks")]
    pub res_blocks: usize,
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

#[typetag::serde(name = "Sagan")]
impl DiscriminatorConfig for SaganDiscriminator {
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Discriminator>> {
        Ok(Box::new(SaganDiscriminatorModel::new(
            &ctx.params,
            &ctx.spec.obs_shape,
            ctx.latent_dim,
            self.conv_dim,
            self.fc,
            self.res_blocks,
        )?))
    }
}

crate::register_component!(
    Discriminator,
    "Sagan",
    "joint D(x, z) of SAGAN residual blocks with self-attention and residual MLP branches (DEAR's, for GPUs)",
    needs: [Images]
);

fn relu(x: &Tensor) -> Result<Tensor> {
    Activation::Relu.apply(x)
}

/// ReLU-SNconv3×3-ReLU-SNconv3×3 (then 2×2 average pool when downsampling), plus the input (SNconv1×1 then
/// pool when downsampling or the width changes).
#[derive(Clone, Debug)]
struct DiscBlock {
    conv1: SnConv2d,
    conv2: SnConv2d,
    shortcut: Option<SnConv2d>,
    down: bool,
}

impl DiscBlock {
    fn new(p: &Params, c_in: usize, c_out: usize, down: bool) -> Result<Self> {
        Ok(Self {
            conv1: SnConv2d::new(&p.pp("conv1"), c_in, c_out, 3, 1, 1)?,
            conv2: SnConv2d::new(&p.pp("conv2"), c_out, c_out, 3, 1, 1)?,
            shortcut: (down || c_in != c_out)
                .then(|| SnConv2d::new(&p.pp("conv0"), c_in, c_out, 1, 1, 0))
                .transpose()?,
            down,
        })
    }

    fn forward(&self, x: &Tensor, update: bool) -> Result<Tensor> {
        let pool =
            |t: Tensor| -> Result<Tensor> { Ok(if self.down { t.avg_pool2d(2)? } else { t }) };
        let h = self.conv1.forward(&relu(x)?, update)?;
        let h = pool(self.conv2.forward(&relu(&h)?, update)?)?;
        let skip = match &self.shortcut {
            Some(c) => pool(c.forward(x, update)?)?,
            None => x.clone(),
        };
        Ok((h + skip)?)
    }
}

/// The code's `Discriminator_MLP`: SN-Linear + ReLU, `blocks` × relu(fc2(relu(fc1 f)) + f), SN-Linear → 1.
#[derive(Clone, Debug)]
struct SnResMlp {
    input: SnLinear,
    blocks: Vec<(SnLinear, SnLinear)>,
    score: SnLinear,
}

impl SnResMlp {
    fn new(p: &Params, d_in: usize, width: usize, blocks: usize) -> Result<Self> {
        Ok(Self {
            input: SnLinear::new(&p.pp("fc1"), d_in, width)?,
            blocks: (0..blocks)
                .map(|i| {
                    let b = p.pp(format!("block{}", i + 1));
                    Ok((
                        SnLinear::new(&b.pp("fc1"), width, width)?,
                        SnLinear::new(&b.pp("fc2"), width, width)?,
                    ))
                })
                .collect::<Result<_>>()?,
            score: SnLinear::new(&p.pp("score"), width, 1)?,
        })
    }

    /// (score `[B, 1]`, features `[B, width]`).
    fn forward(&self, x: &Tensor, update: bool) -> Result<(Tensor, Tensor)> {
        let mut f = relu(&self.input.forward(x, update)?)?;
        for (a, b) in &self.blocks {
            let h = b.forward(&relu(&a.forward(&f, update)?)?, update)?;
            f = relu(&(h + &f)?)?;
        }
        Ok((self.score.forward(&f, update)?, f))
    }
}

#[derive(Clone, Debug)]
struct SaganDiscriminatorModel {
    from_rgb: SnConv2d,
    first: DiscBlock,
    attention: SelfAttention,
    blocks: Vec<DiscBlock>,
    image_score: SnLinear,
    latent: SnResMlp,
    joint: SnResMlp,
}

impl SaganDiscriminatorModel {
    /// For images `[C, H, W]` with H, W divisible by 16 (four 2× downsamplings) and `latent_dim` latents;
    /// `conv_dim` c ≥ 4 (the attention's 2c channels need 8), `fc` the latent and joint branches' width.
    fn new(
        p: &Params,
        obs_shape: &[usize],
        latent_dim: usize,
        conv_dim: usize,
        fc: usize,
        res_blocks: usize,
    ) -> Result<Self> {
        let &[channels, h, w] = obs_shape else {
            return Err(Error::Shape {
                context: "Sagan discriminator".into(),
                expected: "image data [C, H, W]".into(),
                got: format!("{obs_shape:?}"),
            });
        };
        if h == 0 || w == 0 || !h.is_multiple_of(16) || !w.is_multiple_of(16) {
            return Err(Error::Shape {
                context: "Sagan discriminator image branch".into(),
                expected: "sides divisible by 16 (four 2× downsamplings)".into(),
                got: format!("{h}×{w}"),
            });
        }
        if conv_dim == 0 || fc == 0 {
            return Err(Error::Config {
                location: "model.discriminator.Sagan".into(),
                message: "Sagan conv_dim and fc must be at least 1".into(),
            });
        }
        let c = conv_dim;
        let widths = [
            (2 * c, 4 * c, true),
            (4 * c, 8 * c, true),
            (8 * c, 16 * c, true),
            (16 * c, 16 * c, false),
        ];
        Ok(Self {
            from_rgb: SnConv2d::new(&p.pp("from_rgb"), channels, c, 1, 1, 0)?,
            first: DiscBlock::new(&p.pp("block1"), c, 2 * c, true)?,
            attention: SelfAttention::new(&p.pp("self_attn"), 2 * c)?,
            blocks: widths
                .iter()
                .enumerate()
                .map(|(i, &(a, b, down))| {
                    DiscBlock::new(&p.pp(format!("block{}", i + 2)), a, b, down)
                })
                .collect::<Result<_>>()?,
            image_score: SnLinear::new(&p.pp("x_score"), 16 * c, 1)?,
            latent: SnResMlp::new(&p.pp("z"), latent_dim, fc, res_blocks)?,
            joint: SnResMlp::new(&p.pp("xz"), 16 * c + fc, fc, res_blocks)?,
        })
    }
}

impl Discriminator for SaganDiscriminatorModel {
    /// D(x, z) `[B]` = (s_x + s_z + s_xz) / 3.
    fn forward(&self, x: &Tensor, z: &Tensor, update: bool) -> Result<Tensor> {
        let h = self
            .first
            .forward(&self.from_rgb.forward(x, update)?, update)?;
        let mut h = self.attention.forward(&h, update)?;
        for b in &self.blocks {
            h = b.forward(&h, update)?;
        }
        let fx = relu(&h)?.sum((2, 3))?;
        let sx = self.image_score.forward(&fx, update)?;
        let (sz, fz) = self.latent.forward(z, update)?;
        let (sxz, _) = self.joint.forward(&Tensor::cat(&[&fx, &fz], 1)?, update)?;
        Ok((((sx + sz)? + sxz)? / 3.0)?.squeeze(1)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use candle_nn::VarMap;

    fn build(
        p: &Params,
        cfg: &SaganDiscriminator,
        obs_shape: &[usize],
        latent_dim: usize,
    ) -> Result<SaganDiscriminatorModel> {
        SaganDiscriminatorModel::new(
            p,
            obs_shape,
            latent_dim,
            cfg.conv_dim,
            cfg.fc,
            cfg.res_blocks,
        )
    }

    /// At 64×64 with c = 32, fc 512 and k = 6: the code's `BigJointDiscriminator` has 13,546,548 parameters,
    /// of which 262,656 are a 1×1 shortcut conv of its last image block that its forward never uses (no
    /// downsampling, no width change); that one is not built here.
    #[test]
    fn full_size_sagan_matches_the_codes_parameter_count() {
        let varmap = VarMap::new();
        let p = Params::new(varmap.clone(), Device::Cpu, 0);
        let cfg: SaganDiscriminator = ron::from_str("()").unwrap();
        build(&p.pp("discriminator"), &cfg, &[3, 64, 64], 6).unwrap();
        assert_eq!(
            crate::components::sagan::tests::trained_parameters(&varmap),
            13_546_548 - 262_656
        );
    }

    #[test]
    fn sagan_arch_parses_scores_pairs_and_checks_its_input() {
        let cfg: SaganDiscriminator =
            ron::from_str("(conv_dim: 4, fc: 16, res_blocks: 2)").unwrap();
        assert_eq!(
            cfg,
            SaganDiscriminator {
                conv_dim: 4,
                fc: 16,
                res_blocks: 2
            }
        );
        let full: SaganDiscriminator = ron::from_str("()").unwrap();
        assert_eq!(
            full,
            SaganDiscriminator {
                conv_dim: 32,
                fc: 512,
                res_blocks: 3
            }
        );
        let varmap = VarMap::new();
        let p = Params::new(varmap.clone(), Device::Cpu, 0);
        let d = build(&p.pp("d"), &cfg, &[3, 32, 16], 5).unwrap();
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
        assert!(build(&p.pp("e"), &cfg, &[3, 24, 24], 5).is_err());
        assert!(build(&p.pp("f"), &cfg, &[10], 5).is_err());
        // Small's fields under Sagan are a config error, not silently ignored.
        assert!(
            ron::from_str::<Box<dyn DiscriminatorConfig>>(r#"{"Sagan": (features: 64)}"#).is_err()
        );
        // The attention after the first block needs 2c ≥ 8 channels.
        let narrow: SaganDiscriminator = ron::from_str("(conv_dim: 2)").unwrap();
        assert!(build(&p.pp("g"), &narrow, &[3, 16, 16], 5).is_err());
    }
}

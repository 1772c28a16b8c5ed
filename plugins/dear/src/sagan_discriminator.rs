//! DEAR's full-size joint discriminator (docs/methods/dear.md; the code's `BigJointDiscriminator`):
//! - image branch (`sagan.py::Discriminator`): SNconv1×1 C → c, residual down-blocks c → 2c (↓), self-attention,
//!   2c → 4c → 8c → 16c (↓ each), 16c → 16c (no ↓), ReLU, global *sum* pool → f_x (16c), SN-Linear → s_x;
//! - latent branch (`Discriminator_MLP`): SN-Linear k → fc + ReLU, residual SN blocks → f_z, SN-Linear → s_z;
//! - joint branch: the same MLP on concat(f_x, f_z) → s_xz.
//!
//! Every layer is spectrally normalised, with PyTorch's default initialisation (the code: orthogonal, bias 0).

use crate::self_attention::SelfAttention;
use candle_core::Tensor;
use carve::error::{Error, Result};
use carve::nn::{Activation, Params, SnConv2d, SnLinear};

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
pub struct SaganDiscriminator {
    from_rgb: SnConv2d,
    first: DiscBlock,
    attention: SelfAttention,
    blocks: Vec<DiscBlock>,
    image_score: SnLinear,
    latent: SnResMlp,
    joint: SnResMlp,
}

impl SaganDiscriminator {
    /// For images `[C, H, W]` with H, W divisible by 16 (four 2× downsamplings) and `latent_dim` latents;
    /// `conv_dim` c ≥ 4 (the attention's 2c channels need 8), `fc` the latent and joint branches' width.
    pub fn new(
        p: &Params,
        obs_shape: &[usize],
        latent_dim: usize,
        conv_dim: usize,
        fc: usize,
        res_blocks: usize,
    ) -> Result<Self> {
        let &[channels, h, w] = obs_shape else {
            return Err(Error::Shape {
                context: "DEAR SAGAN discriminator".into(),
                expected: "image data [C, H, W]".into(),
                got: format!("{obs_shape:?}"),
            });
        };
        if h == 0 || w == 0 || !h.is_multiple_of(16) || !w.is_multiple_of(16) {
            return Err(Error::Shape {
                context: "DEAR SAGAN discriminator image branch".into(),
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

    /// D(x, z) `[B]` = (s_x + s_z + s_xz) / 3.
    pub fn forward(&self, x: &Tensor, z: &Tensor, update: bool) -> Result<Tensor> {
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

//! SAGAN's self-attention block (Zhang et al., 2019; DEAR's `sagan.py::Self_Attn`), used by the generator and
//! the discriminator: every position attends to a 2×2-max-pooled grid of the map,
//! y = x + σ · W_o (g · softmax(θᵀφ)ᵀ), with θ, φ 1×1 convs to C/8 channels, g to C/2, W_o back to C, all
//! spectrally normalised, and σ learned from 0 (so the block starts as the identity).

use super::resample::max_pool2d;
use crate::error::{Error, Result};
use crate::nn::{Init, Params, SnConv2d};
use candle_core::{Tensor, D};

#[derive(Clone, Debug)]
pub struct SelfAttention {
    theta: SnConv2d,
    phi: SnConv2d,
    g: SnConv2d,
    out: SnConv2d,
    sigma: Tensor,
    channels: usize,
}

impl SelfAttention {
    pub fn new(p: &Params, channels: usize) -> Result<Self> {
        if channels < 8 {
            return Err(Error::Config {
                location: "self-attention".into(),
                message: format!("needs at least 8 channels (θ, φ have C/8), got {channels}"),
            });
        }
        let (c8, c2) = (channels / 8, channels / 2);
        let conv = |name: &str, a: usize, b: usize| SnConv2d::new(&p.pp(name), a, b, 1, 1, 0);
        Ok(Self {
            theta: conv("theta", channels, c8)?,
            phi: conv("phi", channels, c8)?,
            g: conv("g", channels, c2)?,
            out: conv("attn", c2, channels)?,
            sigma: p.get(&[1], "sigma", Init::Const(0.0))?,
            channels,
        })
    }

    /// `x` `[B, C, H, W]` with even H, W. `update`: refresh the spectral norms (training).
    pub fn forward(&self, x: &Tensor, update: bool) -> Result<Tensor> {
        let (b, c, h, w) = x.dims4()?;
        if c != self.channels || h % 2 != 0 || w % 2 != 0 {
            return Err(Error::Shape {
                context: "self-attention input".into(),
                expected: format!("[B, {}, H, W] with even H, W", self.channels),
                got: format!("{:?}", x.dims()),
            });
        }
        let (n, m) = (h * w, h * w / 4);
        let pooled = |conv: &SnConv2d| -> Result<Tensor> {
            let t = max_pool2d(&conv.forward(x, update)?, 2, 2, 0)?;
            let c = t.dim(1)?;
            Ok(t.reshape((b, c, m))?)
        };
        let theta = self.theta.forward(x, update)?;
        let theta = theta.reshape((b, theta.dim(1)?, n))?;
        // [B, n, m]: position i's weights over the pooled positions.
        let attn = candle_nn::ops::softmax(
            &crate::flops::matmul(&theta.transpose(1, 2)?, &pooled(&self.phi)?)?,
            D::Minus1,
        )?;
        let g = pooled(&self.g)?;
        let attn_g = crate::flops::matmul(&g, &attn.transpose(1, 2)?)?;
        let attn_g = attn_g.reshape((b, attn_g.dim(1)?, h, w))?;
        let o = self.out.forward(&attn_g, update)?;
        Ok((x + o.broadcast_mul(&self.sigma.reshape((1, 1, 1, 1))?)?)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use candle_nn::VarMap;

    #[test]
    fn starts_as_the_identity_and_mixes_positions_once_sigma_moves() {
        let varmap = VarMap::new();
        let p = Params::new(varmap.clone(), Device::Cpu, 0);
        let sa = SelfAttention::new(&p.pp("sa"), 16).unwrap();
        let x = Tensor::randn(0f32, 1f32, (2, 16, 4, 6), &Device::Cpu).unwrap();
        let y = sa.forward(&x, true).unwrap();
        assert_eq!(y.dims(), x.dims());
        let diff = |a: &Tensor| {
            (a - &x)
                .unwrap()
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap()
        };
        assert_eq!(diff(&y), 0.0);
        varmap
            .clone()
            .set_one("sa.sigma", Tensor::new(&[1f32], &Device::Cpu).unwrap())
            .unwrap();
        let y = sa.forward(&x, false).unwrap();
        assert!(diff(&y) > 1e-3);
        assert!(y
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
            .iter()
            .all(|v| v.is_finite()));
        // Every parameter, σ included, gets a gradient.
        let grads = y.sum_all().unwrap().backward().unwrap();
        for (name, var) in varmap.data().lock().unwrap().iter() {
            assert_eq!(
                grads.get(var.as_tensor()).is_some(),
                !name.ends_with("sn_u"),
                "{name}"
            );
        }
    }

    #[test]
    fn rejects_too_few_channels_and_odd_sides() {
        let p = Params::new(VarMap::new(), Device::Cpu, 0);
        assert!(SelfAttention::new(&p.pp("a"), 4).is_err());
        let sa = SelfAttention::new(&p.pp("b"), 8).unwrap();
        let odd = Tensor::zeros((1, 8, 3, 4), DType::F32, &Device::Cpu).unwrap();
        assert!(sa.forward(&odd, false).is_err());
        let wrong = Tensor::zeros((1, 16, 4, 4), DType::F32, &Device::Cpu).unwrap();
        assert!(sa.forward(&wrong, false).is_err());
    }
}

//! Strided convolution stacks: each layer halves (down) or doubles (up) the spatial size with kernel 4,
//! stride 2, padding 1, as in the conv encoder/decoder of disentanglement_lib (Locatello et al.).

use super::{Activation, Init, Params};
use crate::error::{Error, Result};
use candle_core::Tensor;

const KERNEL: usize = 4;
const STRIDE: usize = 2;
const PADDING: usize = 1;

#[derive(Clone, Debug)]
struct ConvLayer {
    weight: Tensor,
    bias: Tensor,
}

impl ConvLayer {
    /// Weight shape `[out, in, k, k]` for conv, `[in, out, k, k]` for transposed conv.
    fn new(p: &Params, c_in: usize, c_out: usize, transposed: bool) -> Result<Self> {
        // PyTorch computes fan_in from weight.size(1): `in` for conv, `out` for transposed conv.
        let fan_in = if transposed { c_out } else { c_in } * KERNEL * KERNEL;
        let init = Init::torch_default(fan_in);
        let shape = if transposed {
            [c_in, c_out, KERNEL, KERNEL]
        } else {
            [c_out, c_in, KERNEL, KERNEL]
        };
        Ok(Self {
            weight: p.get(&shape, "weight", init)?,
            bias: p.get(&[c_out], "bias", init)?,
        })
    }

    /// Layers `{name}0`, `{name}1`, … mapping `c_in` through `channels`.
    fn chain(
        p: &Params,
        name: &str,
        c_in: usize,
        channels: &[usize],
        transposed: bool,
    ) -> Result<Vec<Self>> {
        let ins = std::iter::once(c_in).chain(channels.iter().copied());
        ins.zip(channels)
            .enumerate()
            .map(|(i, (a, &b))| ConvLayer::new(&p.pp(format!("{name}{i}")), a, b, transposed))
            .collect()
    }

    fn add_bias(&self, y: Tensor) -> Result<Tensor> {
        super::add_channel_bias(&y, &self.bias)
    }
}

/// `[B, C, H, W]` → `[B, channels.last, H / 2^n, W / 2^n]`, activation after every layer.
#[derive(Clone, Debug)]
pub struct ConvDownStack {
    layers: Vec<ConvLayer>,
    activation: Activation,
}

impl ConvDownStack {
    pub fn new(
        p: &Params,
        c_in: usize,
        channels: &[usize],
        activation: Activation,
    ) -> Result<Self> {
        Ok(Self {
            layers: ConvLayer::chain(p, "conv", c_in, channels, false)?,
            activation,
        })
    }

    /// The spatial size after the stack, or an error if `size` is not divisible by 2^n.
    pub fn output_size(&self, size: usize) -> Result<usize> {
        let f = 1 << self.layers.len();
        if !size.is_multiple_of(f) || size < f {
            return Err(Error::Shape {
                context: "conv encoder input".into(),
                expected: format!(
                    "a side divisible by {f} ({} stride-2 layers)",
                    self.layers.len()
                ),
                got: format!("{size}"),
            });
        }
        Ok(size / f)
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = x.clone();
        for l in &self.layers {
            h = l.add_bias(super::conv2d(&h, &l.weight, PADDING, STRIDE)?)?;
            h = self.activation.apply(&h)?;
        }
        Ok(h)
    }
}

/// `[B, C, h, w]` → `[B, channels.last, h·2^n, w·2^n]`; activation after every layer but the last.
#[derive(Clone, Debug)]
pub struct ConvUpStack {
    layers: Vec<ConvLayer>,
    activation: Activation,
    /// [`super::pixel_norm`] after every hidden activation.
    pixel_norm: bool,
}

impl ConvUpStack {
    pub fn new(
        p: &Params,
        c_in: usize,
        channels: &[usize],
        activation: Activation,
    ) -> Result<Self> {
        Ok(Self {
            layers: ConvLayer::chain(p, "deconv", c_in, channels, true)?,
            activation,
            pixel_norm: false,
        })
    }

    /// Normalise every hidden layer's features with [`super::pixel_norm`] (GAN generators).
    pub fn with_pixel_norm(mut self, on: bool) -> Self {
        self.pixel_norm = on;
        self
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let last = self.layers.len() - 1;
        let mut h = x.clone();
        for (i, l) in self.layers.iter().enumerate() {
            h = l.add_bias(super::conv_transpose2d(&h, &l.weight, PADDING, STRIDE)?)?;
            if i < last {
                h = self.activation.apply(&h)?;
                if self.pixel_norm {
                    h = super::pixel_norm(&h)?;
                }
            }
        }
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};
    use candle_nn::VarMap;

    #[test]
    fn stacks_halve_and_double_the_side() {
        let p = Params::new(VarMap::new(), Device::Cpu, 0);
        let down = ConvDownStack::new(&p.pp("enc"), 3, &[8, 8, 16], Activation::Relu).unwrap();
        let up = ConvUpStack::new(&p.pp("dec"), 16, &[8, 8, 3], Activation::Relu).unwrap();
        let x = Tensor::zeros((2, 3, 32, 32), candle_core::DType::F32, &Device::Cpu).unwrap();
        let h = down.forward(&x).unwrap();
        assert_eq!(h.dims(), &[2, 16, 4, 4]);
        assert_eq!(up.forward(&h).unwrap().dims(), &[2, 3, 32, 32]);
        assert!(down.output_size(30).is_err());
    }
}

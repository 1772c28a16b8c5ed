//! Spectral normalisation (Miyato et al., 2018): a weight is divided by its largest singular value σ(W),
//! estimated by one power iteration per training forward with the vector u kept between steps, as
//! `torch.nn.utils.spectral_norm`. It bounds a GAN discriminator's Lipschitz constant.

use super::linear::add_bias;
use super::{add_channel_bias, conv2d, Init, Params};
use crate::error::Result;
use candle_core::{Tensor, Var};

/// σ(W) estimator for a weight whose first axis has `rows` entries (the rest is flattened).
#[derive(Clone, Debug)]
pub struct SpectralNorm {
    /// Left singular vector estimate `[rows]`: saved with the parameters (`sn_u`), never trained.
    u: Var,
}

impl SpectralNorm {
    pub fn new(p: &Params, rows: usize) -> Result<Self> {
        Ok(Self {
            u: p.buffer(&[rows], "sn_u", Init::Normal { std: 1.0 })?,
        })
    }

    /// `w / σ(w)`; the gradient flows through `w` (σ included), not through the power-iteration vectors.
    /// With `update` (training), the refreshed u is kept for the next call.
    pub fn apply(&self, w: &Tensor, update: bool) -> Result<Tensor> {
        let rows = w.dims()[0];
        let w2 = w.reshape((rows, ()))?;
        let wd = w2.detach();
        let u = self.u.as_tensor().detach().reshape((1, rows))?;
        let v = unit(&u.matmul(&wd)?)?;
        let u = unit(&v.matmul(&wd.t()?)?)?;
        if update {
            self.u.set(&u.reshape(rows)?)?;
        }
        let sigma = u.matmul(&w2)?.matmul(&v.t()?)?.squeeze(0)?.squeeze(0)?;
        Ok(w.broadcast_div(&sigma)?)
    }
}

/// `x / max(‖x‖, 1e-12)` for a row vector `[1, n]`.
fn unit(x: &Tensor) -> Result<Tensor> {
    let norm = x.sqr()?.sum_all()?.sqrt()?.maximum(1e-12)?;
    Ok(x.broadcast_div(&norm)?)
}

/// Spectrally normalised affine layer `x W/σ(W) + b`, W stored `[in, out]` as [`super::Linear`].
#[derive(Clone, Debug)]
pub struct SnLinear {
    weight: Tensor,
    bias: Tensor,
    sn: SpectralNorm,
}

impl SnLinear {
    /// PyTorch's default initialisation, U(±1/√in).
    pub fn new(p: &Params, d_in: usize, d_out: usize) -> Result<Self> {
        let init = Init::torch_default(d_in);
        Ok(Self {
            weight: p.get(&[d_in, d_out], "weight", init)?,
            bias: p.get(&[d_out], "bias", init)?,
            sn: SpectralNorm::new(p, d_in)?,
        })
    }

    pub fn forward(&self, x: &Tensor, update: bool) -> Result<Tensor> {
        let w = self.sn.apply(&self.weight, update)?;
        add_bias(&crate::flops::matmul(&x.contiguous()?, &w)?, &self.bias)
    }
}

/// Spectrally normalised 2-D convolution, weight `[out, in, k, k]`.
#[derive(Clone, Debug)]
pub struct SnConv2d {
    weight: Tensor,
    bias: Tensor,
    stride: usize,
    padding: usize,
    sn: SpectralNorm,
}

impl SnConv2d {
    pub fn new(
        p: &Params,
        c_in: usize,
        c_out: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
    ) -> Result<Self> {
        let init = Init::torch_default(c_in * kernel * kernel);
        Ok(Self {
            weight: p.get(&[c_out, c_in, kernel, kernel], "weight", init)?,
            bias: p.get(&[c_out], "bias", init)?,
            stride,
            padding,
            sn: SpectralNorm::new(p, c_out)?,
        })
    }

    pub fn forward(&self, x: &Tensor, update: bool) -> Result<Tensor> {
        let w = self.sn.apply(&self.weight, update)?;
        add_channel_bias(&conv2d(x, &w, self.padding, self.stride)?, &self.bias)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use candle_nn::VarMap;

    #[test]
    fn power_iteration_finds_the_largest_singular_value() {
        let p = Params::new(VarMap::new(), Device::Cpu, 3);
        // diag(3, 1) rotated: singular values 3 and 1.
        let (c, s) = (0.6f32, 0.8f32);
        let w = Tensor::from_vec(vec![3.0 * c, -s, 3.0 * s, c], (2, 2), &Device::Cpu).unwrap();
        let sn = SpectralNorm::new(&p, 2).unwrap();
        let mut normed = w.clone();
        for _ in 0..30 {
            normed = sn.apply(&w, true).unwrap();
        }
        let ratio = (w
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
            / normed
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap())
        .sqrt();
        // ‖W‖_F / ‖W/σ‖_F = σ = 3.
        assert!((ratio - 3.0).abs() < 1e-3, "σ estimate {ratio}");
        // Without `update` the stored u is unchanged.
        let u0 = sn.u.as_tensor().to_vec1::<f32>().unwrap();
        sn.apply(&(&w * 2.0).unwrap(), false).unwrap();
        assert_eq!(sn.u.as_tensor().to_vec1::<f32>().unwrap(), u0);
    }

    #[test]
    fn layers_keep_shapes_and_pass_gradients_to_weights_only() {
        let varmap = VarMap::new();
        let p = Params::new(varmap.clone(), Device::Cpu, 1);
        let lin = SnLinear::new(&p.pp("lin"), 5, 3).unwrap();
        let conv = SnConv2d::new(&p.pp("conv"), 2, 4, 4, 2, 1).unwrap();
        let x = Tensor::ones((2, 5), candle_core::DType::F32, &Device::Cpu).unwrap();
        let img = Tensor::ones((2, 2, 8, 8), candle_core::DType::F32, &Device::Cpu).unwrap();
        let y = lin.forward(&x, true).unwrap();
        let h = conv.forward(&img, true).unwrap();
        assert_eq!(y.dims(), &[2, 3]);
        assert_eq!(h.dims(), &[2, 4, 4, 4]);
        let loss = (y.sum_all().unwrap() + h.sum_all().unwrap()).unwrap();
        let grads = loss.backward().unwrap();
        let data = varmap.data().lock().unwrap();
        for (name, var) in data.iter() {
            let has = grads.get(var.as_tensor()).is_some();
            assert_eq!(has, !name.ends_with("sn_u"), "{name}");
        }
    }
}

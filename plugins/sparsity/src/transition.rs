//! The latent transition model p(z^t | z^{t−1}, a) = Π_i N(z_i^t; μ_i(G^z_i ⊙ z^{t−1}, G^a_i ⊙ a), σ_i²)
//! (docs/methods/sparsity.md): one network per latent with its own weights, all evaluated as one batched matmul per
//! layer, and learned per-latent variances σ_i² = softplus(ℓ_i) + 1e-6.

use candle_core::Tensor;
use carve::error::Result;
use carve::nn::{Activation, ParallelMlp, Params};

/// softplus(ℓ) = 1e-4 at initialisation, as the code's `independent` variance mode.
const INIT_VAR: f64 = 1e-4;

pub struct Transition {
    net: ParallelMlp,
    /// ℓ, `[n]`: the prior variance of latent i is softplus(ℓ_i) + 1e-6.
    raw_var: Tensor,
    n: usize,
    inputs: usize,
}

impl Transition {
    /// `n` latents, each reading `inputs` masked parents (lagged latents then actions).
    pub fn new(p: &Params, n: usize, inputs: usize, hidden: &[usize]) -> Result<Self> {
        let net = ParallelMlp::new(
            &p.pp("net"),
            n,
            inputs,
            hidden,
            1,
            Activation::LeakyRelu(0.2),
        )?;
        let init = (INIT_VAR.exp() - 1.0).ln() as f32;
        let raw_var = p.get_with_values(&[n], "raw_var", vec![init; n])?;
        Ok(Self {
            net,
            raw_var,
            n,
            inputs,
        })
    }

    /// Prior means `[B, n]` from parents `[B, inputs]` under the mask `[n, inputs]` (shared by the batch).
    /// Masked-out parents are replaced by the code's frozen dummy, zero, so masking is a product.
    pub fn mean(&self, parents: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let b = parents.dims()[0];
        let x = mask
            .unsqueeze(1)?
            .broadcast_mul(&parents.unsqueeze(0)?)?
            .contiguous()?;
        debug_assert_eq!(x.dims(), &[self.n, b, self.inputs]);
        Ok(self.net.forward(&x)?.squeeze(2)?.t()?)
    }

    /// Prior variances `[n]`.
    pub fn var(&self) -> Result<Tensor> {
        Ok((softplus(&self.raw_var)? + 1e-6)?)
    }
}

/// log(1 + eˣ), stable for large |x|.
pub fn softplus(x: &Tensor) -> Result<Tensor> {
    // max(x, 0) + log(1 + e^{−|x|})
    let relu = x.relu()?;
    let tail = (x.abs()?.neg()?.exp()? + 1.0)?.log()?;
    Ok((relu + tail)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use candle_nn::VarMap;

    #[test]
    fn masked_parents_do_not_move_the_mean() {
        let p = Params::new(VarMap::new(), Device::Cpu, 3);
        let t = Transition::new(&p, 3, 4, &[8, 8]).unwrap();
        let mut mask = vec![1f32; 12];
        mask[4 + 2] = 0.0; // latent 1 ignores parent 2
        let mask = Tensor::from_vec(mask, (3, 4), &Device::Cpu).unwrap();
        let a = Tensor::new(&[[0.1f32, 0.2, 0.3, 0.4]], &Device::Cpu).unwrap();
        let b = Tensor::new(&[[0.1f32, 0.2, -5.0, 0.4]], &Device::Cpu).unwrap();
        let ma = t.mean(&a, &mask).unwrap().to_vec2::<f32>().unwrap();
        let mb = t.mean(&b, &mask).unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(
            ma[0][1], mb[0][1],
            "latent 1 must not read its masked parent"
        );
        assert_ne!(ma[0][0], mb[0][0]);
        assert_ne!(ma[0][2], mb[0][2]);
    }

    #[test]
    fn prior_variance_starts_at_1e_4() {
        let p = Params::new(VarMap::new(), Device::Cpu, 3);
        let t = Transition::new(&p, 2, 1, &[4]).unwrap();
        for v in t.var().unwrap().to_vec1::<f32>().unwrap() {
            assert!((v - 1.01e-4).abs() < 1e-7, "{v}");
        }
    }
}

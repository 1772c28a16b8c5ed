//! An MLP whose output parametrises a diagonal Gaussian: hidden layers (batch norm optional, never on the output)
//! → μ and σ² = softplus(ρ) + a floor. The conditional Gaussians of hierarchical VAEs (Ladder VAE: each
//! bottom-up estimate and each top-down prior p(zᵢ | zᵢ₊₁)) are all of this form.

use super::{Activation, Mlp, Params, TrainMode};
use crate::dist::{softplus, DiagGaussian};
use crate::error::Result;
use candle_core::Tensor;

#[derive(Clone, Debug)]
pub struct GaussianMlp {
    mlp: Mlp,
    d: usize,
    var_floor: f64,
}

impl GaussianMlp {
    /// `d_in` → `hidden` → (μ, ρ) of `d` units each, named `fc{i}` / `bn{i}` under `p`; batch norm on the hidden
    /// layers when `mode` is given. `var_floor` is added to softplus(ρ) (the Ladder VAE's `lv_eps`).
    pub fn new(
        p: &Params,
        d_in: usize,
        hidden: &[usize],
        d: usize,
        activation: Activation,
        mode: Option<&TrainMode>,
        var_floor: f64,
    ) -> Result<Self> {
        let mlp = match mode {
            Some(mode) => Mlp::with_batch_norm(p, d_in, hidden, 2 * d, activation, mode)?,
            None => Mlp::new(p, d_in, hidden, 2 * d, activation)?,
        };
        Ok(Self { mlp, d, var_floor })
    }

    /// The Gaussian of `x` `[B, d_in]` and the last hidden layer's activations.
    pub fn forward_with_hidden(&self, x: &Tensor) -> Result<(DiagGaussian, Tensor)> {
        let (out, hidden) = self.mlp.forward_with_hidden(x)?;
        let mean = out.narrow(1, 0, self.d)?;
        let var = (softplus(&out.narrow(1, self.d, self.d)?)? + self.var_floor)?;
        Ok((DiagGaussian::from_var(mean, var)?, hidden))
    }

    pub fn forward(&self, x: &Tensor) -> Result<DiagGaussian> {
        Ok(self.forward_with_hidden(x)?.0)
    }

    /// Units of the Gaussian.
    pub fn dim(&self) -> usize {
        self.d
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use candle_nn::VarMap;

    #[test]
    fn variances_are_floored_softplus_values() {
        let p = Params::new(VarMap::new(), Device::Cpu, 1);
        let g = GaussianMlp::new(&p, 3, &[4], 2, Activation::Relu, None, 0.5).unwrap();
        let x = Tensor::new(&[[1f32, -2.0, 0.5], [0.0, 0.0, 0.0]], &Device::Cpu).unwrap();
        let (q, h) = g.forward_with_hidden(&x).unwrap();
        assert_eq!(q.mean.dims(), &[2, 2]);
        assert_eq!(h.dims(), &[2, 4]);
        let var: Vec<f32> = q.var().unwrap().flatten_all().unwrap().to_vec1().unwrap();
        assert!(var.iter().all(|v| *v > 0.5), "{var:?}");
    }
}

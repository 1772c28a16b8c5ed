//! Observation likelihoods p(x | decoder output).

use crate::error::Result;
use candle_core::Tensor;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub enum Likelihood {
    /// Bernoulli with logits (binary or [0, 1] images); nll = Σ BCEWithLogits.
    #[default]
    Bernoulli,
    /// Gaussian with a fixed scalar standard deviation; the decoder outputs the mean.
    Gaussian { std: f64 },
}

impl Likelihood {
    /// −log p(x | params), summed over all non-batch dimensions: shape `[B]`.
    pub fn nll(&self, x: &Tensor, params: &Tensor) -> Result<Tensor> {
        let b = x.dims()[0];
        let per_elem = match self {
            // softplus(l) − x·l, written stably as relu(l) − x·l + log(1 + e^{−|l|})
            Likelihood::Bernoulli => {
                let stable = ((params.abs()?.neg()?.exp()? + 1.0)?.log()? + params.relu()?)?;
                (stable - (x * params)?)?
            }
            Likelihood::Gaussian { std } => {
                let c = std.ln() + 0.5 * (2.0 * std::f64::consts::PI).ln();
                (((x - params)?.sqr()? * (0.5 / (std * std)))? + c)?
            }
        };
        Ok(per_elem.reshape((b, ()))?.sum(1)?)
    }

    /// E[x | params]: probabilities for Bernoulli, the mean for Gaussian.
    pub fn mean(&self, params: &Tensor) -> Result<Tensor> {
        Ok(match self {
            Likelihood::Bernoulli => candle_nn::ops::sigmoid(params)?,
            Likelihood::Gaussian { .. } => params.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn bernoulli_nll_matches_definition() {
        let d = &Device::Cpu;
        let l = Tensor::new(&[[2.0f32, -3.0, 0.0]], d).unwrap();
        let x = Tensor::new(&[[1.0f32, 0.25, 0.0]], d).unwrap();
        let got = Likelihood::Bernoulli
            .nll(&x, &l)
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()[0];
        let sp = |v: f32| (1.0 + v.exp()).ln();
        let expect = (sp(2.0) - 2.0) + (sp(-3.0) - 0.25 * -3.0) + sp(0.0);
        assert!((got - expect).abs() < 1e-5, "{got} vs {expect}");
    }
}

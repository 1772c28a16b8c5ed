//! Multi-layer perceptron: Linear → [batch norm] → activation → … → Linear (no activation or norm on the output).

use super::{Activation, BatchNorm, Linear, Params, TrainMode};
use crate::error::Result;
use candle_core::Tensor;

#[derive(Clone, Debug)]
pub struct Mlp {
    layers: Vec<Linear>,
    /// One per hidden layer (none without batch norm), applied before the activation.
    norms: Vec<BatchNorm>,
    activation: Activation,
}

impl Mlp {
    /// Layers named `fc0`, `fc1`, … under `p`.
    pub fn new(
        p: &Params,
        d_in: usize,
        hidden: &[usize],
        d_out: usize,
        activation: Activation,
    ) -> Result<Self> {
        Self::build(p, d_in, hidden, d_out, activation, None)
    }

    /// As [`Mlp::new`], with batch norm `bn{i}` after every hidden layer `fc{i}` (not after the output layer),
    /// switched between batch and running statistics by `mode`.
    pub fn with_batch_norm(
        p: &Params,
        d_in: usize,
        hidden: &[usize],
        d_out: usize,
        activation: Activation,
        mode: &TrainMode,
    ) -> Result<Self> {
        Self::build(p, d_in, hidden, d_out, activation, Some(mode))
    }

    fn build(
        p: &Params,
        d_in: usize,
        hidden: &[usize],
        d_out: usize,
        activation: Activation,
        mode: Option<&TrainMode>,
    ) -> Result<Self> {
        let mut dims = vec![d_in];
        dims.extend_from_slice(hidden);
        dims.push(d_out);
        let mut layers = Vec::with_capacity(dims.len() - 1);
        let mut norms = Vec::new();
        for (i, w) in dims.windows(2).enumerate() {
            layers.push(Linear::new(&p.pp(format!("fc{i}")), w[0], w[1])?);
            if let (Some(mode), true) = (mode, i < hidden.len()) {
                norms.push(BatchNorm::new(&p.pp(format!("bn{i}")), w[1], mode)?);
            }
        }
        Ok(Self {
            layers,
            norms,
            activation,
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let last = self.layers.len() - 1;
        let mut h = x.clone();
        for (i, l) in self.layers.iter().enumerate() {
            h = l.forward(&h)?;
            if i < last {
                if let Some(norm) = self.norms.get(i) {
                    h = norm.forward(&h)?;
                }
                h = self.activation.apply(&h)?;
            }
        }
        Ok(h)
    }

    /// The output and the last hidden layer's activations (the input itself without hidden layers).
    pub fn forward_with_hidden(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let last = self.layers.len() - 1;
        let mut h = x.clone();
        for (i, l) in self.layers[..last].iter().enumerate() {
            h = l.forward(&h)?;
            if let Some(norm) = self.norms.get(i) {
                h = norm.forward(&h)?;
            }
            h = self.activation.apply(&h)?;
        }
        Ok((self.layers[last].forward(&h)?, h))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use candle_nn::VarMap;

    /// Batch norm sits between each hidden layer and its activation, never on the output, and is named by path.
    #[test]
    fn batch_norm_follows_each_hidden_layer_only() {
        let varmap = VarMap::new();
        let p = Params::new(varmap.clone(), Device::Cpu, 3);
        let mode = TrainMode::default();
        let mlp = Mlp::with_batch_norm(&p.pp("m"), 4, &[5, 6], 2, Activation::Relu, &mode).unwrap();
        let mut names: Vec<String> = varmap.data().lock().unwrap().keys().cloned().collect();
        names.sort();
        assert!(names.contains(&"m.bn0.weight".to_string()), "{names:?}");
        assert!(
            names.contains(&"m.bn1.running_var".to_string()),
            "{names:?}"
        );
        assert!(!names.iter().any(|n| n.starts_with("m.bn2")), "{names:?}");
        let x = Tensor::arange(0f32, 12.0, &Device::Cpu)
            .unwrap()
            .reshape((3, 4))
            .unwrap();
        mode.set(true);
        let (y, h) = mlp.forward_with_hidden(&x).unwrap();
        assert_eq!(y.dims(), &[3, 2]);
        assert_eq!(h.dims(), &[3, 6]);
        // In training mode each hidden unit is normalised over the batch before the ReLU: mean of the
        // pre-activation 0, so at least one row is active and one is not unless all are equal.
        let y2 = mlp.forward(&x).unwrap();
        let diff = (y - y2)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(diff < 1e-6);
    }
}

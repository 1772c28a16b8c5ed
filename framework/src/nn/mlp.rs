//! Multi-layer perceptron: Linear → activation → … → Linear (no activation on the output).

use super::{Activation, Linear, Params};
use crate::error::Result;
use candle_core::Tensor;

#[derive(Clone, Debug)]
pub struct Mlp {
    layers: Vec<Linear>,
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
        let mut dims = vec![d_in];
        dims.extend_from_slice(hidden);
        dims.push(d_out);
        let layers = dims
            .windows(2)
            .enumerate()
            .map(|(i, w)| Linear::new(&p.pp(format!("fc{i}")), w[0], w[1]))
            .collect::<Result<_>>()?;
        Ok(Self { layers, activation })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let last = self.layers.len() - 1;
        let mut h = x.clone();
        for (i, l) in self.layers.iter().enumerate() {
            h = l.forward(&h)?;
            if i < last {
                h = self.activation.apply(&h)?;
            }
        }
        Ok(h)
    }
}

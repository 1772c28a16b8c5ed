use crate::error::Result;
use candle_core::Tensor;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub enum Activation {
    #[default]
    Relu,
    Elu,
    LeakyRelu(f64),
    Tanh,
    Softplus,
    Sigmoid,
}

impl Activation {
    pub fn apply(&self, x: &Tensor) -> Result<Tensor> {
        Ok(match self {
            Activation::Relu => x.relu()?,
            Activation::Elu => x.elu(1.0)?,
            Activation::LeakyRelu(s) => candle_nn::ops::leaky_relu(x, *s)?,
            Activation::Tanh => x.tanh()?,
            Activation::Softplus => ((x.abs()?.neg()?.exp()? + 1.0)?.log()? + x.relu()?)?,
            Activation::Sigmoid => candle_nn::ops::sigmoid(x)?,
        })
    }
}

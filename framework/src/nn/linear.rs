//! Affine layer y = x W + b with W stored as `[in, out]`: the layout the forward matmul wants, so the
//! training step never transposes or copies weights (candle-nn's Linear keeps `[out, in]` and multiplies by
//! a strided transpose).

use super::params::{Init, Params};
use crate::error::Result;
use candle_core::Tensor;

#[derive(Clone, Debug)]
pub struct Linear {
    weight: Tensor,
    bias: Option<Tensor>,
}

impl Linear {
    /// PyTorch's default initialisation, U(±1/√in) for weight and bias.
    pub fn new(p: &Params, d_in: usize, d_out: usize) -> Result<Self> {
        let init = Init::torch_default(d_in);
        Ok(Self {
            weight: p.get(&[d_in, d_out], "weight", init)?,
            bias: Some(p.get(&[d_out], "bias", init)?),
        })
    }

    pub fn with_init(
        p: &Params,
        d_in: usize,
        d_out: usize,
        w: Init,
        b: Option<Init>,
    ) -> Result<Self> {
        Ok(Self {
            weight: p.get(&[d_in, d_out], "weight", w)?,
            bias: b.map(|b| p.get(&[d_out], "bias", b)).transpose()?,
        })
    }

    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// `x`: `[B, in]` → `[B, out]`. Strided inputs (e.g. a `narrow`ed posterior mean) are made contiguous
    /// first: CUDA's matmul rejects them; for contiguous inputs this is free.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = x.contiguous()?.matmul(&self.weight)?;
        Ok(match &self.bias {
            Some(b) => y.broadcast_add(b)?,
            None => y,
        })
    }
}

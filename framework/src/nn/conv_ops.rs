//! 2-D convolution and transposed convolution on `[B, C, H, W]` tensors, the two ops every conv layer calls.

use crate::error::Result;
use candle_core::Tensor;

/// `x` `[B, C_in, H, W]`, `w` `[C_out, C_in, k, k]` → `[B, C_out, H', W']` (no bias).
pub fn conv2d(x: &Tensor, w: &Tensor, padding: usize, stride: usize) -> Result<Tensor> {
    Ok(x.conv2d(w, padding, stride, 1, 1)?)
}

/// `x` `[B, C_in, h, w]`, `w` `[C_in, C_out, k, k]` → `[B, C_out, H, W]` (no bias, no output padding).
pub fn conv_transpose2d(x: &Tensor, w: &Tensor, padding: usize, stride: usize) -> Result<Tensor> {
    Ok(x.conv_transpose2d(w, padding, 0, stride, 1)?)
}

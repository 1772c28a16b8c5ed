//! Pixel-wise feature normalisation (Karras et al., 2018): each position's feature vector scaled to unit
//! root-mean-square over channels. It keeps a GAN generator's activations from escalating without batch
//! statistics, so a generator behaves the same in training and when it draws one image.

use crate::error::Result;
use candle_core::Tensor;

/// `x / sqrt(mean_c x² + 1e-8)` over axis 1 (`[B, C]` or `[B, C, H, W]`).
pub fn pixel_norm(x: &Tensor) -> Result<Tensor> {
    let ms = x.sqr()?.mean_keepdim(1)?;
    Ok(x.broadcast_div(&(ms + 1e-8)?.sqrt()?)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn every_position_gets_unit_rms_over_channels() {
        let x = Tensor::new(&[[[[3f32]], [[4.0]]], [[[0.5]], [[0.0]]]], &Device::Cpu).unwrap();
        let y = pixel_norm(&x).unwrap();
        let rms = y
            .sqr()
            .unwrap()
            .mean(1)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        for r in rms {
            assert!((r - 1.0).abs() < 1e-4, "{r}");
        }
    }
}

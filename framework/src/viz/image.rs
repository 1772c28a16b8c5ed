//! One picture of a figure: a channels-first image with values in [0, 1], as the methods decode them.

use crate::data::export::unit_to_u8;
use crate::error::{Error, Result};
use candle_core::{DType, Tensor};

#[derive(Clone, Debug)]
pub struct Image {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    /// `[C, H, W]` row-major.
    pub pixels: Vec<f32>,
}

impl Image {
    /// An image of 1 (gray), 3 (RGB) or 4 (RGBA) channels.
    pub fn new(channels: usize, height: usize, width: usize, pixels: Vec<f32>) -> Result<Self> {
        if ![1, 3, 4].contains(&channels) || height == 0 || width == 0 {
            return Err(shape_error(format!("[{channels}, {height}, {width}]")));
        }
        if pixels.len() != channels * height * width {
            return Err(Error::Shape {
                context: "figure image".into(),
                expected: format!("{} values", channels * height * width),
                got: pixels.len().to_string(),
            });
        }
        Ok(Self {
            channels,
            height,
            width,
            pixels,
        })
    }

    /// The images of a `[N, C, H, W]` batch.
    pub fn batch(images: &Tensor) -> Result<Vec<Image>> {
        let &[n, c, h, w] = images.dims() else {
            return Err(shape_error(format!("{:?}", images.dims())));
        };
        let values = images
            .to_dtype(DType::F32)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let len = c * h * w;
        (0..n)
            .map(|k| Image::new(c, h, w, values[k * len..(k + 1) * len].to_vec()))
            .collect()
    }

    /// The colour at row `y`, column `x`: gray replicated to RGB, RGBA composed over white.
    pub fn rgb(&self, y: usize, x: usize) -> [u8; 3] {
        let plane = self.height * self.width;
        let value = |c: usize| self.pixels[c * plane + y * self.width + x];
        let alpha = if self.channels == 4 {
            value(3).clamp(0.0, 1.0)
        } else {
            1.0
        };
        let at = |c: usize| unit_to_u8(value(c) * alpha + 1.0 - alpha);
        if self.channels == 1 {
            [at(0); 3]
        } else {
            [at(0), at(1), at(2)]
        }
    }
}

fn shape_error(got: String) -> Error {
    Error::Shape {
        context: "figure images".into(),
        expected: "[N, C, H, W] with C in {1, 3, 4}".into(),
        got,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn a_batch_splits_into_images() {
        let t = Tensor::arange(0f32, 24., &Device::Cpu)
            .unwrap()
            .affine(1.0 / 23.0, 0.0)
            .unwrap()
            .reshape((2, 3, 2, 2))
            .unwrap();
        let images = Image::batch(&t).unwrap();
        assert_eq!(images.len(), 2);
        assert_eq!((images[1].channels, images[1].height), (3, 2));
        assert_eq!(images[0].rgb(0, 0), [0, 44, 89]);
        assert_eq!(images[1].rgb(1, 1)[2], 255);
    }

    #[test]
    fn transparent_pixels_are_white() {
        // One RGBA pixel: black at alpha 0, then the same at alpha 0.5.
        let clear = Image::new(4, 1, 1, vec![0.0, 0.0, 0.0, 0.0]).unwrap();
        let half = Image::new(4, 1, 1, vec![0.0, 0.0, 0.0, 0.5]).unwrap();
        assert_eq!(clear.rgb(0, 0), [255; 3]);
        assert_eq!(half.rgb(0, 0), [128; 3]);
    }

    #[test]
    fn refuses_other_shapes() {
        assert!(Image::new(2, 4, 4, vec![0.0; 32]).is_err());
        assert!(Image::new(1, 4, 4, vec![0.0; 15]).is_err());
        let flat = Tensor::zeros((3, 4), DType::F32, &Device::Cpu).unwrap();
        assert!(Image::batch(&flat).is_err());
    }
}

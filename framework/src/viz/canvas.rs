//! The drawing surface of a figure: an RGB buffer that images are copied into and plotters draws text and
//! shapes on, saved as a PNG atomically.

use super::image::Image;
use crate::error::{Error, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

/// A plotters drawing area over a canvas.
pub type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// Figures larger than this many pixels are refused (about 120 MB of RGB) rather than allocated.
pub const MAX_PIXELS: u64 = 40_000_000;

/// A plotters drawing failure as a framework error.
pub fn drawing_error(e: impl std::fmt::Display) -> Error {
    Error::msg(format!("drawing a figure failed: {e}"))
}

pub struct Canvas {
    width: u32,
    height: u32,
    rgb: Vec<u8>,
}

impl Canvas {
    /// A white `width × height` canvas; an error above [`MAX_PIXELS`].
    pub fn new(width: u32, height: u32) -> Result<Self> {
        let pixels = width as u64 * height as u64;
        if pixels == 0 || pixels > MAX_PIXELS {
            return Err(Error::msg(format!(
                "a {width}×{height} figure is outside 1..={MAX_PIXELS} pixels; draw fewer images"
            )));
        }
        Ok(Self {
            width,
            height,
            rgb: vec![255; pixels as usize * 3],
        })
    }

    pub fn width(&self) -> u32 {
        self.width
    }

    pub fn height(&self) -> u32 {
        self.height
    }

    /// The colour at `(x, y)`.
    pub fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        let i = (y as usize * self.width as usize + x as usize) * 3;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }

    /// Copies `image` enlarged `scale` times (nearest neighbour) with its top-left corner at `(x, y)`; what
    /// falls outside the canvas is cut.
    pub fn blit(&mut self, image: &Image, scale: usize, (x, y): (usize, usize)) {
        let (w, h) = (self.width as usize, self.height as usize);
        for dy in 0..image.height * scale {
            let cy = y + dy;
            if cy >= h {
                break;
            }
            for dx in 0..image.width * scale {
                let cx = x + dx;
                if cx >= w {
                    break;
                }
                let i = (cy * w + cx) * 3;
                self.rgb[i..i + 3].copy_from_slice(&image.rgb(dy / scale, dx / scale));
            }
        }
    }

    /// Runs `draw` on a plotters area covering the canvas.
    pub fn draw(&mut self, draw: impl FnOnce(&Area) -> Result<()>) -> Result<()> {
        let area = BitMapBackend::with_buffer(&mut self.rgb, (self.width, self.height))
            .into_drawing_area();
        draw(&area)?;
        area.present().map_err(drawing_error)
    }

    /// Writes the canvas as an RGB PNG (atomically: a temporary file renamed into place).
    pub fn save(&self, path: &Path) -> Result<()> {
        let (w, h) = (self.width as usize, self.height as usize);
        let mut chw = vec![0f32; 3 * w * h];
        for (p, rgb) in self.rgb.chunks_exact(3).enumerate() {
            for (c, &v) in rgb.iter().enumerate() {
                chw[c * w * h + p] = v as f32 / 255.0;
            }
        }
        crate::data::export::save_png(path, &chw, &[3, h, w])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_empty_and_huge_canvases() {
        assert!(Canvas::new(0, 10).is_err());
        let err = Canvas::new(100_000, 100_000).err().unwrap().to_string();
        assert!(err.contains("100000×100000"), "{err}");
    }

    #[test]
    fn blit_enlarges_by_whole_factors_and_cuts_at_the_edge() {
        // 1×2 gray image: black, mid-gray.
        let image = Image::new(1, 1, 2, vec![0.0, 0.5]).unwrap();
        let mut c = Canvas::new(5, 3).unwrap();
        c.blit(&image, 2, (1, 1));
        assert_eq!(c.pixel(0, 1), [255; 3]);
        assert_eq!(c.pixel(1, 1), [0; 3]);
        assert_eq!(c.pixel(2, 2), [0; 3]);
        assert_eq!(c.pixel(3, 2), [128; 3]);
        assert_eq!(c.pixel(4, 1), [128; 3]);
        assert_eq!(c.pixel(1, 0), [255; 3]);
    }
}

//! Pictures: image grids written as PNG.

use crate::error::{Error, Result};
use candle_core::Tensor;
use std::path::Path;

/// Lays `n` CHW images (row-major f32 in [0, 1]) in a grid with `ncols` columns and a 2-pixel white gap.
pub fn grid(
    images: &[f32],
    n: usize,
    shape: &[usize],
    ncols: usize,
) -> Result<(Vec<f32>, Vec<usize>)> {
    let [c, h, w] = <[usize; 3]>::try_from(shape).map_err(|_| Error::Shape {
        context: "image grid".into(),
        expected: "[C, H, W] images".into(),
        got: format!("{shape:?}"),
    })?;
    let pad = 2;
    let ncols = ncols.clamp(1, n.max(1));
    let nrows = n.div_ceil(ncols);
    let (gh, gw) = (nrows * (h + pad) + pad, ncols * (w + pad) + pad);
    let mut out = vec![1.0f32; c * gh * gw];
    for k in 0..n {
        let (oy, ox) = (pad + (k / ncols) * (h + pad), pad + (k % ncols) * (w + pad));
        for ch in 0..c {
            for y in 0..h {
                let src = &images[((k * c + ch) * h + y) * w..][..w];
                let dst = (ch * gh + oy + y) * gw + ox;
                out[dst..dst + w].copy_from_slice(src);
            }
        }
    }
    Ok((out, vec![c, gh, gw]))
}

/// Images smaller than this are enlarged (nearest neighbour, whole factors) in figures, so a grid of 32-pixel
/// renders stays readable.
const MIN_FIGURE_SIDE: usize = 64;

/// Saves a `[N, C, H, W]` tensor as a grid PNG with `ncols` columns.
pub fn save_tensor_grid(path: &Path, images: &Tensor, ncols: usize) -> Result<()> {
    let mut images = images.clone();
    if let [_, _, h, w] = *images.dims() {
        let scale = MIN_FIGURE_SIDE.div_ceil(h.max(1));
        if scale > 1 {
            images = images.upsample_nearest2d(h * scale, w * scale)?;
        }
    }
    let dims = images.dims().to_vec();
    let values = images
        .to_dtype(candle_core::DType::F32)?
        .clamp(0f32, 1f32)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    let (g, shape) = grid(&values, dims[0], &dims[1..], ncols)?;
    crate::data::export::save_png(path, &g, &shape)
}

/// Saves an `n × n` matrix (row-major) as a heatmap with `cell`-pixel squares: red for positive, blue for
/// negative, white for zero, scaled by the largest |value| (rows = source node, columns = target node).
pub fn save_heatmap(path: &Path, values: &[f32], n: usize, cell: usize) -> Result<()> {
    save_matrix_heatmap(path, values, n, n, cell)
}

/// Saves a `rows × cols` matrix (row-major) as a heatmap, coloured as [`save_heatmap`].
pub fn save_matrix_heatmap(
    path: &Path,
    values: &[f32],
    rows: usize,
    cols: usize,
    cell: usize,
) -> Result<()> {
    if values.len() != rows * cols || rows == 0 || cols == 0 {
        return Err(Error::Shape {
            context: "heatmap".into(),
            expected: format!("{rows}×{cols} values (both > 0)"),
            got: values.len().to_string(),
        });
    }
    let scale = values.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-12);
    let (h, w) = (rows * cell, cols * cell);
    let mut img = vec![1.0f32; 3 * h * w];
    for (idx, &v) in values.iter().enumerate() {
        let t = (v / scale).clamp(-1.0, 1.0);
        // white → red for t > 0, white → blue for t < 0
        let rgb = if t >= 0.0 {
            [1.0, 1.0 - t, 1.0 - t]
        } else {
            [1.0 + t, 1.0 + t, 1.0]
        };
        let (r, c) = (idx / cols, idx % cols);
        for y in r * cell + 1..(r + 1) * cell - 1 {
            for x in c * cell + 1..(c + 1) * cell - 1 {
                for (ch, value) in rgb.iter().enumerate() {
                    img[(ch * h + y) * w + x] = *value;
                }
            }
        }
    }
    crate::data::export::save_png(path, &img, &[3, h, w])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_places_images_row_major_with_gaps() {
        let imgs: Vec<f32> = (0..3).flat_map(|k| vec![k as f32 / 4.0; 4]).collect();
        let (g, s) = grid(&imgs, 3, &[1, 2, 2], 2).unwrap();
        assert_eq!(s, vec![1, 10, 10]);
        assert_eq!(g[2 * 10 + 2], 0.0);
        assert_eq!(g[2 * 10 + 6], 0.25);
        assert_eq!(g[6 * 10 + 2], 0.5);
        assert_eq!(g[6 * 10 + 6], 1.0); // empty cell stays white
    }
}

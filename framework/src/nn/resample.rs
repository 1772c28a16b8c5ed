//! Max pooling and nearest 2× upsampling of `[B, C, H, W]` maps as plain tensor ops, which differentiate on
//! every device. candle's own max pool has no gradient when kernel ≠ stride (the ResNet stem's 3×3 / 2 pool),
//! and its nearest upsampling's gradient replaces, instead of adding to, what its input already received from
//! other layers, which a residual block's input does.

use crate::error::{Error, Result};
use candle_core::Tensor;

/// PyTorch's `MaxPool2d(kernel, stride, padding)`: padding counts as −∞, output side
/// `(n + 2·padding − kernel) / stride + 1`. Separable: the max over rows of the max over columns.
pub fn max_pool2d(x: &Tensor, kernel: usize, stride: usize, padding: usize) -> Result<Tensor> {
    if x.rank() != 4 {
        return Err(Error::Shape {
            context: "max pool".into(),
            expected: "[B, C, H, W]".into(),
            got: format!("{:?}", x.dims()),
        });
    }
    pool_axis(
        &pool_axis(x, 2, kernel, stride, padding)?,
        3,
        kernel,
        stride,
        padding,
    )
}

/// Max over windows along one axis: window j covers padded positions `j·stride .. j·stride + kernel`.
fn pool_axis(x: &Tensor, dim: usize, k: usize, s: usize, p: usize) -> Result<Tensor> {
    let n = x.dim(dim)?;
    if k == 0 || s == 0 || p >= k || n + 2 * p < k {
        return Err(Error::Shape {
            context: "max pool".into(),
            expected: format!("kernel ≥ 1 > padding, stride ≥ 1, side + 2·padding ≥ kernel ({k})"),
            got: format!("side {n}, kernel {k}, stride {s}, padding {p}"),
        });
    }
    let out = (n + 2 * p - k) / s + 1;
    // Window j's element i sits at padded position i + j·stride: pad to k − 1 + stride·out so every offset i
    // has `out` strided positions, then read them as column 0 of an (out, stride) split of the axis.
    let len = k - 1 + s * out;
    let pad = |m: usize| -> Result<Tensor> {
        let mut shape = x.dims().to_vec();
        shape[dim] = m;
        Ok(Tensor::full(f32::NEG_INFINITY, shape, x.device())?.to_dtype(x.dtype())?)
    };
    let padded = Tensor::cat(&[pad(p)?, x.clone(), pad(len - n - p)?], dim)?;
    let mut split = x.dims().to_vec();
    split.splice(dim..=dim, [out, s]);
    let mut best: Option<Tensor> = None;
    for i in 0..k {
        let w = padded
            .narrow(dim, i, s * out)?
            .reshape(split.as_slice())?
            .narrow(dim + 1, 0, 1)?
            .squeeze(dim + 1)?;
        best = Some(match best {
            None => w,
            Some(b) => b.maximum(&w)?,
        });
    }
    Ok(best.expect("kernel ≥ 1"))
}

/// Nearest-neighbour upsampling by 2 (`F.interpolate(scale_factor=2, mode='nearest')`); its gradient is the
/// 2×2 sum of the output's.
pub fn upsample2x(x: &Tensor) -> Result<Tensor> {
    let (b, c, h, w) = x.dims4()?;
    Ok(x.reshape((b, c, h, 1, w, 1))?
        .broadcast_as((b, c, h, 2, w, 2))?
        .reshape((b, c, 2 * h, 2 * w))?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn flat(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    }

    /// Brute force over windows, with out-of-range positions skipped (= −∞ padding).
    fn reference(x: &[f32], (h, w): (usize, usize), k: usize, s: usize, p: usize) -> Vec<f32> {
        let (oh, ow) = ((h + 2 * p - k) / s + 1, (w + 2 * p - k) / s + 1);
        let mut out = Vec::new();
        for i in 0..oh {
            for j in 0..ow {
                let mut m = f32::NEG_INFINITY;
                for a in 0..k {
                    for b in 0..k {
                        let (y, x_) = (
                            (i * s + a) as isize - p as isize,
                            (j * s + b) as isize - p as isize,
                        );
                        if y >= 0 && x_ >= 0 && (y as usize) < h && (x_ as usize) < w {
                            m = m.max(x[y as usize * w + x_ as usize]);
                        }
                    }
                }
                out.push(m);
            }
        }
        out
    }

    #[test]
    fn max_pool_matches_pytorch_windows_and_routes_gradients_to_the_maxima() {
        let d = &Device::Cpu;
        for (h, w, k, s, p) in [
            (8, 8, 3, 2, 1),
            (7, 5, 3, 2, 1),
            (6, 6, 2, 2, 0),
            (5, 9, 3, 1, 1),
        ] {
            let x0 = Tensor::randn(0f32, 1f32, (1, 1, h, w), d).unwrap();
            let x = Var::from_tensor(&x0).unwrap();
            let y = max_pool2d(&x, k, s, p).unwrap();
            let want = reference(&flat(&x0), (h, w), k, s, p);
            assert_eq!(flat(&y), want, "{h}x{w} k{k} s{s} p{p}");
            // Σ y: each input gets one unit of gradient per window it is the maximum of.
            let g = flat(y.sum_all().unwrap().backward().unwrap().get(&x).unwrap());
            let xs = flat(&x0);
            for (v, gv) in xs.iter().zip(&g) {
                let wins = want.iter().filter(|m| *m == v).count() as f32;
                assert_eq!(*gv, wins, "{h}x{w} k{k} s{s} p{p}");
            }
        }
        let x = Tensor::zeros((1, 1, 2, 2), candle_core::DType::F32, d).unwrap();
        assert!(max_pool2d(&x, 3, 2, 0).is_err());
        assert!(max_pool2d(&x.flatten_all().unwrap(), 2, 2, 0).is_err());
    }

    #[test]
    fn upsampling_repeats_pixels_and_sums_gradients_over_them() {
        let d = &Device::Cpu;
        let x0 = Tensor::randn(0f32, 1f32, (2, 3, 4, 5), d).unwrap();
        let x = Var::from_tensor(&x0).unwrap();
        let y = upsample2x(&x).unwrap();
        assert_eq!(flat(&y), flat(&x0.upsample_nearest2d(8, 10).unwrap()));
        let r = Tensor::randn(0f32, 1f32, (2, 3, 8, 10), d).unwrap();
        let g = (&y * &r).unwrap().sum_all().unwrap().backward().unwrap();
        let want = (r.avg_pool2d(2).unwrap() * 4.0).unwrap();
        for (a, b) in flat(g.get(&x).unwrap()).iter().zip(flat(&want)) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
    }
}

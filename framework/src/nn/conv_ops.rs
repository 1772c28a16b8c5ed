//! 2-D convolution and transposed convolution on `[B, C, H, W]` tensors, the two ops every conv layer calls.
//!
//! On the CPU in f32 both run as im2col + gemm ([`super::conv_kernels`]), and so do their gradients: candle's
//! CPU conv2d backward and conv_transpose2d run per-pixel dot products (the conv64 VAE trained at ~1/7 of
//! PyTorch's speed). Other devices and dtypes use candle's ops.

use super::channel_bias::AddChannelBias;
use super::conv_kernels::{ConvAdj, ConvFwd};
use super::im2col::Geom;
use crate::error::Result;
use candle_core::{DType, Device, Tensor};

/// Whether the im2col path applies: f32 tensors of rank 4 on the CPU, square kernels.
fn im2col_applies(x: &Tensor, w: &Tensor) -> bool {
    matches!(x.device(), Device::Cpu)
        && x.dtype() == DType::F32
        && w.dtype() == DType::F32
        && x.rank() == 4
        && w.rank() == 4
        && w.dims()[2] == w.dims()[3]
}

/// `x` `[B, C_in, H, W]`, `w` `[C_out, C_in, k, k]` → `[B, C_out, H', W']` with `H' = (H + 2·padding − k)/stride + 1`
/// (no bias).
pub fn conv2d(x: &Tensor, w: &Tensor, padding: usize, stride: usize) -> Result<Tensor> {
    let y = conv2d_uncounted(x, w, padding, stride)?;
    // Every output element is a dot product over C_in·k·k taps.
    let (_, c_in, k, _) = w.dims4()?;
    crate::flops::product(2.0 * (y.elem_count() * c_in * k * k) as f64, x, w);
    Ok(y)
}

fn conv2d_uncounted(x: &Tensor, w: &Tensor, padding: usize, stride: usize) -> Result<Tensor> {
    if im2col_applies(x, w) {
        let (_, c_in, k, _) = w.dims4()?;
        if let Some(g) = Geom::conv(x.dims4()?, k, stride, padding).filter(|g| g.c == c_in) {
            return Ok(x.contiguous()?.apply_op2(&w.contiguous()?, ConvFwd(g))?);
        }
    }
    Ok(x.conv2d(w, padding, stride, 1, 1)?)
}

/// `x` `[B, C_in, h, w]`, `w` `[C_in, C_out, k, k]` → `[B, C_out, H, W]` with `H = (h − 1)·stride − 2·padding + k`
/// (no bias, no output padding).
pub fn conv_transpose2d(x: &Tensor, w: &Tensor, padding: usize, stride: usize) -> Result<Tensor> {
    let y = conv_transpose2d_uncounted(x, w, padding, stride)?;
    // Every input element is scattered over C_out·k·k taps.
    let (_, c_out, k, _) = w.dims4()?;
    crate::flops::product(2.0 * (x.elem_count() * c_out * k * k) as f64, x, w);
    Ok(y)
}

fn conv_transpose2d_uncounted(
    x: &Tensor,
    w: &Tensor,
    padding: usize,
    stride: usize,
) -> Result<Tensor> {
    if im2col_applies(x, w) {
        let (c_in, c_out, k, _) = w.dims4()?;
        let (b, c, h, wd) = x.dims4()?;
        // The adjoint of the conv of the output, whose output grid is x's.
        let side = |n: usize| (n.checked_sub(1)? * stride + k).checked_sub(2 * padding);
        let image = side(h).zip(side(wd)).filter(|_| c == c_in);
        let g = image.and_then(|(hh, ww)| Geom::conv((b, c_out, hh, ww), k, stride, padding));
        if let Some(g) = g.filter(|g| (g.oh, g.ow) == (h, wd)) {
            return Ok(x.contiguous()?.apply_op2(&w.contiguous()?, ConvAdj(g))?);
        }
    }
    Ok(x.conv_transpose2d(w, padding, 0, stride, 1)?)
}

/// `y` `[B, C, H, W]` plus the bias `b` `[C]` in every channel: `y.broadcast_add(b.reshape((1, C, 1, 1)))`,
/// whose backward on the CPU sums the bias gradient with a div/mod per element (as slow as the convolutions
/// themselves). f32 CPU tensors take a custom op with a one-pass backward; anything else candle's op.
pub fn add_channel_bias(y: &Tensor, b: &Tensor) -> Result<Tensor> {
    let fast = matches!(y.device(), Device::Cpu)
        && y.dtype() == DType::F32
        && b.dtype() == DType::F32
        && y.rank() == 4
        && b.dims() == [y.dims()[1]];
    if fast {
        return Ok(y
            .contiguous()?
            .apply_op2(&b.contiguous()?, AddChannelBias)?);
    }
    Ok(y.broadcast_add(&b.reshape((1, b.elem_count(), 1, 1))?)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Var;

    /// Values, and gradients of `Σ y·r` for a random `r`, of `op` and candle's op.
    fn compare(
        transposed: bool,
        (b, c_in, c_out, h, w): (usize, usize, usize, usize, usize),
        k: usize,
        stride: usize,
        padding: usize,
    ) {
        let d = &Device::Cpu;
        let x0 = Tensor::randn(0f32, 1f32, (b, c_in, h, w), d).unwrap();
        let ws = if transposed {
            (c_in, c_out, k, k)
        } else {
            (c_out, c_in, k, k)
        };
        let w0 = Tensor::randn(0f32, 1f32, ws, d).unwrap();
        let y_shape = if transposed {
            x0.conv_transpose2d(&w0, padding, 0, stride, 1).unwrap()
        } else {
            x0.conv2d(&w0, padding, stride, 1, 1).unwrap()
        };
        let r = Tensor::randn(0f32, 1f32, y_shape.shape(), d).unwrap();
        let grads = |ours: bool| {
            let (x, w) = (
                Var::from_tensor(&x0).unwrap(),
                Var::from_tensor(&w0).unwrap(),
            );
            let y = match (transposed, ours) {
                (false, true) => conv2d(&x, &w, padding, stride).unwrap(),
                (false, false) => x.conv2d(&w, padding, stride, 1, 1).unwrap(),
                (true, true) => conv_transpose2d(&x, &w, padding, stride).unwrap(),
                (true, false) => x.conv_transpose2d(&w, padding, 0, stride, 1).unwrap(),
            };
            let g = (&y * &r).unwrap().sum_all().unwrap().backward().unwrap();
            (
                y,
                g.get(x.as_tensor()).unwrap().clone(),
                g.get(w.as_tensor()).unwrap().clone(),
            )
        };
        let (ya, gxa, gwa) = grads(true);
        let (yb, gxb, gwb) = grads(false);
        let what = format!(
            "transposed={transposed} b={b} c_in={c_in} c_out={c_out} {h}x{w} k={k} s={stride} p={padding}"
        );
        for (name, a, b) in [("y", ya, yb), ("dx", gxa, gxb), ("dw", gwa, gwb)] {
            assert_eq!(a.dims(), b.dims(), "{name} shape, {what}");
            let a = a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let b = b.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
            for (i, (u, v)) in a.iter().zip(&b).enumerate() {
                assert!(
                    (u - v).abs() <= 1e-4 * scale.max(v.abs()),
                    "{name}[{i}]: {u} vs {v} (max |ref| {scale}), {what}"
                );
            }
        }
    }

    const CASES: [(usize, usize, usize); 5] =
        [(4, 2, 1), (3, 1, 1), (1, 1, 0), (3, 2, 0), (3, 3, 1)];

    #[test]
    fn conv2d_matches_candle() {
        for (k, s, p) in CASES {
            for b in [1, 3, 5] {
                compare(false, (b, 3, 5, 7, 13), k, s, p);
                compare(false, (b, 4, 2, 16, 16), k, s, p);
            }
        }
        // Large enough for the parallel loops; chunks of several images with a gemm each.
        compare(false, (2, 8, 6, 32, 30), 4, 2, 1);
        compare(false, (4, 2, 3, 34, 34), 3, 1, 1);
    }

    #[test]
    fn conv_transpose2d_matches_candle() {
        for (k, s, p) in CASES {
            for b in [1, 3, 5] {
                compare(true, (b, 3, 5, 9, 7), k, s, p);
                compare(true, (b, 4, 2, 8, 8), k, s, p);
            }
        }
        compare(true, (2, 8, 6, 16, 15), 4, 2, 1);
        compare(true, (4, 3, 2, 17, 17), 4, 2, 1);
    }

    /// Second-order gradients, as a gradient penalty takes them: those of `⟨∂ₓ⟨y, r⟩, q⟩ + ⟨∂_w⟨y, r⟩, q'⟩`.
    /// candle's conv ops have none to compare with, but for the bilinear `y = f(x, w)` that loss is
    /// `⟨f(q, w), r⟩ + ⟨f(x, q'), r⟩`, whose first-order gradients candle's ops do give.
    #[test]
    fn double_backward_matches_candle() {
        let d = &Device::Cpu;
        let (b, c_in, c_out, h, w, k, s, p) = (3, 3, 4, 8, 6, 4, 2, 1);
        for transposed in [false, true] {
            let f = |x: &Tensor, w: &Tensor, ours: bool| match (transposed, ours) {
                (false, true) => conv2d(x, w, p, s).unwrap(),
                (false, false) => x.conv2d(w, p, s, 1, 1).unwrap(),
                (true, true) => conv_transpose2d(x, w, p, s).unwrap(),
                (true, false) => x.conv_transpose2d(w, p, 0, s, 1).unwrap(),
            };
            let randn = |s: &[usize]| Tensor::randn(0f32, 1f32, s, d).unwrap();
            let x0 = randn(&[b, c_in, h, w]);
            let w0 = randn(&if transposed {
                [c_in, c_out, k, k]
            } else {
                [c_out, c_in, k, k]
            });
            let r = randn(f(&x0, &w0, false).dims());
            let (q, q2) = (randn(x0.dims()), randn(w0.dims()));
            let (x, wv) = (
                Var::from_tensor(&x0).unwrap(),
                Var::from_tensor(&w0).unwrap(),
            );
            let inner = |x: &Tensor, w: &Tensor, ours: bool| {
                (f(x, w, ours) * &r).unwrap().sum_all().unwrap()
            };
            // Ours: through the backward of the backward.
            let g = inner(&x, &wv, true).backward().unwrap();
            let l2 = ((g.get(&x).unwrap() * &q).unwrap().sum_all().unwrap()
                + (g.get(&wv).unwrap() * &q2).unwrap().sum_all().unwrap())
            .unwrap();
            let ours = l2.backward().unwrap();
            // candle's, first order.
            let rw = inner(&q, &wv, false).backward().unwrap();
            let rx = inner(&x, &q2, false).backward().unwrap();
            let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            for (name, a, b) in [
                ("d2x", ours.get(&x), rx.get(&x)),
                ("d2w", ours.get(&wv), rw.get(&wv)),
            ] {
                let (a, b) = (flat(a.unwrap()), flat(b.unwrap()));
                let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
                for (u, v) in a.iter().zip(&b) {
                    assert!(
                        (u - v).abs() <= 1e-4 * scale,
                        "{name} transposed={transposed}: {u} vs {v}"
                    );
                }
            }
        }
    }

    /// Values and gradients of `add_channel_bias` equal candle's `broadcast_add`, and the backward of the bias
    /// gradient (used by second-order gradients) is the broadcast back.
    #[test]
    fn channel_bias_matches_broadcast_add() {
        let d = &Device::Cpu;
        let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        for shape in [[3usize, 5, 7, 6], [4, 8, 64, 64]] {
            let y0 = Tensor::randn(0f32, 1f32, &shape, d).unwrap();
            let b0 = Tensor::randn(0f32, 1f32, shape[1], d).unwrap();
            let r = Tensor::randn(0f32, 1f32, &shape, d).unwrap();
            let run = |ours: bool| {
                let (y, b) = (
                    Var::from_tensor(&y0).unwrap(),
                    Var::from_tensor(&b0).unwrap(),
                );
                let z = if ours {
                    add_channel_bias(&y, &b).unwrap()
                } else {
                    y.broadcast_add(&b.reshape((1, shape[1], 1, 1)).unwrap())
                        .unwrap()
                };
                let g = (&z * &r).unwrap().sum_all().unwrap().backward().unwrap();
                [flat(&z), flat(g.get(&y).unwrap()), flat(g.get(&b).unwrap())]
            };
            for (i, (a, b)) in run(true).iter().zip(run(false)).enumerate() {
                let scale = b.iter().fold(0f32, |m, v| m.max(v.abs()));
                for (u, v) in a.iter().zip(&b) {
                    assert!(
                        (u - v).abs() <= 1e-5 * scale,
                        "output {i} of {shape:?}: {u} vs {v}"
                    );
                }
            }
            let q = Tensor::randn(0f32, 1f32, shape[1], d).unwrap();
            let y = Var::from_tensor(&y0).unwrap();
            let s = y.apply_op1(super::super::channel_bias::ChannelSum).unwrap();
            let g = (s * &q).unwrap().sum_all().unwrap().backward().unwrap();
            let want = q
                .reshape((1, shape[1], 1, 1))
                .unwrap()
                .broadcast_as(&shape)
                .unwrap();
            assert_eq!(flat(g.get(&y).unwrap()), flat(&want));
        }
    }
}

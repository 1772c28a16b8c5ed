//! `y = x·W + b` as one custom op on f32 CPU matrices: the bias rows are written into the output and gemm
//! accumulates the product onto them, and the backward computes only the gradients autograd tracks. candle's
//! `matmul` backward computes the gradient of both operands whatever they are, so the first layer of every
//! encoder also multiplied out a gradient for the data batch (for the pendulum MLP β-VAE, 4.2 of its 28
//! GFLOP per step), and a separate bias add cost an output-sized pass and its gradient one more.

use super::linear::SumRows;
use super::strided_gemm::{gemm, Mat};
use crate::cpu::if_tracked;
use candle_core::{CpuStorage, Layout, Shape, Tensor};
use gemm::Parallelism;

/// `(x [n, in], w [in, out], b [out])` → `[n, out]`.
pub(super) struct Affine;

/// Products below this many multiply-adds run on the calling thread: splitting them costs more than it saves.
const PARALLEL_MIN: usize = 1 << 16;

fn dims2(op: &str, what: &str, l: &Layout) -> candle_core::Result<(usize, usize)> {
    match l.shape().dims() {
        [r, c] => Ok((*r, *c)),
        d => candle_core::bail!("{op}: {what} must be a matrix, got shape {d:?}"),
    }
}

impl candle_core::CustomOp3 for Affine {
    fn name(&self) -> &'static str {
        "carve-affine"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let name = self.name();
        let (n, d_in) = dims2(name, "input", l1)?;
        let (w_in, d_out) = dims2(name, "weight", l2)?;
        if w_in != d_in || l3.shape().dims() != [d_out] {
            candle_core::bail!(
                "{name}: input {:?}, weight {:?} and bias {:?} do not fit",
                l1.dims(),
                l2.dims(),
                l3.dims()
            )
        }
        let x = crate::cpu::contiguous_f32(s1, l1, name)?;
        let w = crate::cpu::contiguous_f32(s2, l2, name)?;
        let b = crate::cpu::contiguous_f32(s3, l3, name)?;
        let mut y = Vec::with_capacity(n * d_out);
        for _ in 0..n {
            y.extend_from_slice(b);
        }
        let par = if n * d_in * d_out >= PARALLEL_MIN {
            Parallelism::Rayon(rayon::current_num_threads())
        } else {
            Parallelism::None
        };
        gemm(
            (n, d_out, d_in),
            &mut y,
            d_out,
            true,
            Mat::rows(x, d_in),
            Mat::rows(w, d_out),
            par,
        );
        Ok((CpuStorage::F32(y), Shape::from((n, d_out))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        _y: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        Ok((
            if_tracked(x, || grad.matmul(&w.t()?))?,
            if_tracked(w, || x.t()?.matmul(&grad))?,
            if_tracked(b, || grad.apply_op1_no_bwd(&SumRows(b.elem_count())))?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn flat(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1().unwrap()
    }

    fn close(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|(a, b)| (a - b).abs() <= 1e-5 * (1.0 + b.abs()))
    }

    /// Values and gradients equal `x.matmul(w) + b`'s to rounding, for sizes on both sides of the parallel
    /// threshold; a data input (not a variable) gets no gradient.
    #[test]
    fn the_affine_op_matches_matmul_plus_bias() {
        let d = &Device::Cpu;
        for (n, i, o) in [(7usize, 5usize, 3usize), (64, 300, 90)] {
            let x0 = Tensor::randn(0f32, 1f32, (n, i), d).unwrap();
            let w = Var::randn(0f32, 1f32, (i, o), d).unwrap();
            let b = Var::randn(0f32, 1f32, o, d).unwrap();
            let probe = Tensor::randn(0f32, 1f32, (n, o), d).unwrap();
            for x_is_var in [false, true] {
                let x = if x_is_var {
                    Var::from_tensor(&x0).unwrap().as_tensor().clone()
                } else {
                    x0.clone()
                };
                let run = |fused: bool| {
                    let (w, b) = (w.as_tensor(), b.as_tensor());
                    let y = if fused {
                        x.apply_op3(w, b, Affine).unwrap()
                    } else {
                        x.matmul(w).unwrap().broadcast_add(b).unwrap()
                    };
                    let g = (&y * &probe)
                        .unwrap()
                        .sum_all()
                        .unwrap()
                        .backward()
                        .unwrap();
                    let gx = g.get(&x).map(flat);
                    (
                        flat(&y),
                        gx,
                        flat(g.get(w).unwrap()),
                        flat(g.get(b).unwrap()),
                    )
                };
                let (ours, theirs) = (run(true), run(false));
                assert!(close(&ours.0, &theirs.0), "values, {n}×{i}×{o}");
                assert!(close(&ours.2, &theirs.2), "weight gradient, {n}×{i}×{o}");
                assert!(close(&ours.3, &theirs.3), "bias gradient, {n}×{i}×{o}");
                match (ours.1, theirs.1, x_is_var) {
                    (Some(a), Some(b), true) => assert!(close(&a, &b), "input gradient"),
                    (None, _, false) => {}
                    (a, _, v) => panic!(
                        "input gradient {:?} for an input that is a var: {v}",
                        a.is_some()
                    ),
                }
            }
        }
    }
}

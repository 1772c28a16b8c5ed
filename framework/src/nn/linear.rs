//! Affine layer y = x W + b with W stored as `[in, out]`: the layout the forward matmul wants, so the
//! training step never transposes or copies weights (candle-nn's Linear keeps `[out, in]` and multiplies by
//! a strided transpose).

use super::affine_op::Affine;
use super::params::{Init, Params};
use crate::error::Result;
use candle_core::{CpuStorage, DType, Device, Layout, Shape, Tensor};

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
        let x = x.contiguous()?;
        if let Some(b) = &self.bias {
            if affine_applies(&x, &self.weight, b) {
                let (n, d_in) = x.dims2()?;
                let flops = 2.0 * (n * d_in * self.weight.dim(1)?) as f64;
                crate::flops::product(flops, &x, &self.weight);
                return Ok(x.apply_op3(&self.weight.contiguous()?, &b.contiguous()?, Affine)?);
            }
        }
        let y = crate::flops::matmul(&x, &self.weight)?;
        Ok(match &self.bias {
            Some(b) => add_bias(&y, b)?,
            None => y,
        })
    }
}

/// f32 matrices on the CPU take the one-op affine map.
fn affine_applies(x: &Tensor, w: &Tensor, b: &Tensor) -> bool {
    matches!(x.device(), Device::Cpu)
        && [x, w, b].iter().all(|t| t.dtype() == DType::F32)
        && x.rank() == 2
        && w.rank() == 2
        && b.rank() == 1
}

/// `y + b` with the bias broadcast over rows: `y` `[B, out]` with `b` `[out]`, or `y` `[n, B, out]` with `b`
/// `[n, 1, out]` (per-node biases of [`super::ParallelMlp`]). Same values as `y.broadcast_add(b)`, but on the
/// CPU the bias gradient is one row-by-row pass: candle sums a broadcast gradient over a leading axis with a
/// div/mod per element, which took ~20% of the mechanism-sparsity training step.
pub(crate) fn add_bias(y: &Tensor, b: &Tensor) -> Result<Tensor> {
    let fast = matches!(y.device(), Device::Cpu)
        && y.dtype() == DType::F32
        && b.dtype() == DType::F32
        && match (y.dims(), b.dims()) {
            ([_, out], [bo]) => out == bo,
            ([n, _, out], [bn, 1, bo]) => n == bn && out == bo,
            _ => false,
        };
    if !fast {
        return Ok(y.broadcast_add(b)?);
    }
    Ok(y.contiguous()?.apply_op2(&b.contiguous()?, AddBias)?)
}

/// Splits a contiguous `[groups · rows · out]` buffer into its `groups` (= bias elements / out).
fn bias_dims(y: &Layout, b_len: usize) -> (usize, usize, usize) {
    let out = y.shape().dims().last().copied().unwrap_or(1).max(1);
    let groups = (b_len / out).max(1);
    let rows = y.shape().elem_count() / (groups * out);
    (groups, rows, out)
}

struct AddBias;

impl candle_core::CustomOp2 for AddBias {
    fn name(&self) -> &'static str {
        "carve-add-bias"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let y = crate::cpu::contiguous_f32(s1, l1, self.name())?;
        let b = crate::cpu::contiguous_f32(s2, l2, self.name())?;
        let (groups, rows, out) = bias_dims(l1, b.len());
        let mut z = Vec::with_capacity(y.len());
        for (g, bias) in b.chunks_exact(out).enumerate().take(groups) {
            for row in y[g * rows * out..(g + 1) * rows * out].chunks_exact(out) {
                z.extend(row.iter().zip(bias).map(|(y, b)| y + b));
            }
        }
        Ok((CpuStorage::F32(z), l1.shape().clone()))
    }

    fn bwd(
        &self,
        _y: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let gb = grad.apply_op1_no_bwd(&SumRows(b.elem_count()))?;
        Ok((Some(grad), Some(gb.reshape(b.shape())?)))
    }
}

/// The bias gradient: the rows of each group summed in order from zero (the same f32 additions, in the same
/// order, as candle's `sum_keepdim` over the broadcast axis). Holds the bias' element count.
pub(super) struct SumRows(pub(super) usize);

impl candle_core::CustomOp1 for SumRows {
    fn name(&self) -> &'static str {
        "carve-sum-rows"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let g = crate::cpu::contiguous_f32(s, l, self.name())?;
        let (groups, rows, out) = bias_dims(l, self.0);
        let mut sum = vec![0f32; groups * out];
        for (grp, acc) in sum.chunks_exact_mut(out).enumerate() {
            for row in g[grp * rows * out..(grp + 1) * rows * out].chunks_exact(out) {
                for (a, v) in acc.iter_mut().zip(row) {
                    *a += v;
                }
            }
        }
        Ok((CpuStorage::F32(sum), Shape::from(groups * out)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Var;

    /// Values and both gradients equal candle's `broadcast_add` bit for bit, for both bias layouts.
    #[test]
    fn add_bias_matches_broadcast_add() {
        let d = &Device::Cpu;
        for (ys, bs) in [
            (vec![37usize, 19], vec![19usize]),
            (vec![3, 37, 5], vec![3, 1, 5]),
        ] {
            let y0 = Tensor::randn(0f32, 1f32, ys.as_slice(), d).unwrap();
            let b0 = Tensor::randn(0f32, 1f32, bs.as_slice(), d).unwrap();
            let w = Tensor::randn(0f32, 1f32, ys.as_slice(), d).unwrap();
            let run = |fused: bool| {
                let (y, b) = (
                    Var::from_tensor(&y0).unwrap(),
                    Var::from_tensor(&b0).unwrap(),
                );
                let z = if fused {
                    add_bias(y.as_tensor(), b.as_tensor()).unwrap()
                } else {
                    y.as_tensor().broadcast_add(b.as_tensor()).unwrap()
                };
                let g = (&z * &w).unwrap().sum_all().unwrap().backward().unwrap();
                let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                (
                    flat(&z),
                    flat(g.get(y.as_tensor()).unwrap()),
                    flat(g.get(b.as_tensor()).unwrap()),
                )
            };
            assert_eq!(run(true), run(false), "{ys:?} + {bs:?}");
        }
    }
}

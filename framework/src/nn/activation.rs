use crate::error::Result;
use candle_core::{CpuStorage, DType, Device, Layout, Shape, Tensor};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub enum Activation {
    #[default]
    Relu,
    Elu,
    LeakyRelu(f64),
    Tanh,
    Softplus,
    Sigmoid,
}

impl Activation {
    pub fn apply(&self, x: &Tensor) -> Result<Tensor> {
        if let Some(op) = Fused::of(*self) {
            if fused_applies(x) {
                return Ok(x.apply_op1(op)?);
            }
        }
        self.apply_ops(x)
    }

    /// [`Self::apply`] with candle's tensor ops: any device and dtype.
    fn apply_ops(&self, x: &Tensor) -> Result<Tensor> {
        Ok(match self {
            Activation::Relu => x.relu()?,
            Activation::Elu => x.elu(1.0)?,
            Activation::LeakyRelu(s) => candle_nn::ops::leaky_relu(x, *s)?,
            Activation::Tanh => x.tanh()?,
            Activation::Softplus => ((x.abs()?.neg()?.exp()? + 1.0)?.log()? + x.relu()?)?,
            Activation::Sigmoid => candle_nn::ops::sigmoid(x)?,
        })
    }
}

/// Contiguous f32 CPU tensors take the fused path.
fn fused_applies(x: &Tensor) -> bool {
    matches!(x.device(), Device::Cpu) && x.dtype() == DType::F32 && x.is_contiguous()
}

/// One-pass activations whose backward is one pass too, where candle's tensor ops take several
/// (ReLU's backward builds a zero tensor, a u8 mask, its f32 copy and a product; ELU's, five).
/// The same values and derivatives as the tensor ops: ReLU′(0) = 1, ELU′(0) = e⁰ = 1 (α = 1), and
/// LeakyReLU′(0) = (1 + s)/2 (candle's max(x, 0) + s·min(x, 0) splits the gradient of a tie in half).
/// candle's leaky ReLU costs ~5 passes forward and ~15 backward (`eq` masks, divisions, zero tensors): it
/// was the largest cost of the mechanism-sparsity training step.
#[derive(Clone, Copy, Debug)]
enum Fused {
    Relu,
    Elu,
    Softplus,
    /// Negative slope s, as f32 (candle's `affine` converts it the same way).
    LeakyRelu(f32),
}

impl Fused {
    fn of(a: Activation) -> Option<Fused> {
        match a {
            Activation::Relu => Some(Fused::Relu),
            Activation::Elu => Some(Fused::Elu),
            Activation::Softplus => Some(Fused::Softplus),
            Activation::LeakyRelu(s) => Some(Fused::LeakyRelu(s as f32)),
            _ => None,
        }
    }

    #[inline(always)]
    fn f(self, x: f32) -> f32 {
        match self {
            Fused::Relu => x.max(0.0),
            // candle's elu: x for x ≥ +0, e^x − 1 otherwise.
            Fused::Elu => {
                if x.is_sign_positive() {
                    x
                } else {
                    x.exp() - 1.0
                }
            }
            Fused::Softplus => (-x.abs()).exp().ln_1p() + x.max(0.0),
            Fused::LeakyRelu(s) => {
                if x > 0.0 {
                    x
                } else {
                    x * s
                }
            }
        }
    }

    /// Derivative from the input `x` and the output `y`.
    #[inline(always)]
    fn df(self, x: f32, y: f32) -> f32 {
        match self {
            Fused::Relu => {
                if x >= 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Fused::Elu => {
                if x > 0.0 {
                    1.0
                } else {
                    y + 1.0
                }
            }
            // sigmoid(x), stable for either sign.
            Fused::Softplus => {
                let e = (-x.abs()).exp();
                if x >= 0.0 {
                    1.0 / (1.0 + e)
                } else {
                    e / (1.0 + e)
                }
            }
            Fused::LeakyRelu(s) => {
                if x > 0.0 {
                    1.0
                } else if x < 0.0 {
                    s
                } else {
                    0.5 + 0.5 * s
                }
            }
        }
    }
}

/// `map3(a, b, c, f)` with `f` built from a constant variant in each arm (`$op` is re-created inside the
/// closure), so each variant gets its own element loop with `f`/`df` inlined and vectorised: one generic loop
/// over a captured `Fused` took an indirect jump per element.
macro_rules! per_op {
    ($fused:expr, $a:expr, $b:expr, $c:expr, |$op:ident, $x:ident, $y:ident, $g:ident| $body:expr) => {
        match $fused {
            Fused::Relu => map3($a, $b, $c, |$x, $y, $g| {
                let $op = Fused::Relu;
                $body
            }),
            Fused::Elu => map3($a, $b, $c, |$x, $y, $g| {
                let $op = Fused::Elu;
                $body
            }),
            Fused::Softplus => map3($a, $b, $c, |$x, $y, $g| {
                let $op = Fused::Softplus;
                $body
            }),
            Fused::LeakyRelu(s) => map3($a, $b, $c, move |$x, $y, $g| {
                let $op = Fused::LeakyRelu(s);
                $body
            }),
        }
    };
}

/// Below this many elements the maps run on the calling thread.
const PAR_MIN: usize = 1 << 15;
const CHUNK: usize = 1 << 14;

/// `out[i] = f(a[i], b[i], c[i])`, in parallel chunks for large inputs.
fn map3(a: &[f32], b: &[f32], c: &[f32], f: impl Fn(f32, f32, f32) -> f32 + Sync) -> Vec<f32> {
    let mut out = vec![0f32; a.len()];
    let run = |o: &mut [f32], a: &[f32], b: &[f32], c: &[f32]| {
        for (((o, &a), &b), &c) in o.iter_mut().zip(a).zip(b).zip(c) {
            *o = f(a, b, c);
        }
    };
    if a.len() < PAR_MIN {
        run(&mut out, a, b, c);
    } else {
        out.par_chunks_mut(CHUNK)
            .zip(a.par_chunks(CHUNK))
            .zip(b.par_chunks(CHUNK).zip(c.par_chunks(CHUNK)))
            .for_each(|((o, a), (b, c))| run(o, a, b, c));
    }
    out
}

impl candle_core::CustomOp1 for Fused {
    fn name(&self) -> &'static str {
        match self {
            Fused::Relu => "fused-relu",
            Fused::Elu => "fused-elu",
            Fused::Softplus => "fused-softplus",
            Fused::LeakyRelu(_) => "fused-leaky-relu",
        }
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = crate::cpu::contiguous_f32(s, l, self.name())?;
        let y = per_op!(*self, x, x, x, |op, x, _y, _g| op.f(x));
        Ok((CpuStorage::F32(y), l.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, y: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let grad = grad.contiguous()?;
        Ok(Some(x.apply_op3_no_bwd(y, &grad, &FusedGrad(*self))?))
    }
}

/// `grad_x = f′(x, y) · grad_y` from `x`, `y` and `grad_y`.
struct FusedGrad(Fused);

impl candle_core::CustomOp3 for FusedGrad {
    fn name(&self) -> &'static str {
        "fused-activation-grad"
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
        let x = crate::cpu::contiguous_f32(s1, l1, self.name())?;
        let y = crate::cpu::contiguous_f32(s2, l2, self.name())?;
        let g = crate::cpu::contiguous_f32(s3, l3, self.name())?;
        let out = per_op!(self.0, x, y, g, |op, x, y, g| g * op.df(x, y));
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Var;

    #[test]
    fn fused_activations_match_tensor_ops() {
        let d = &Device::Cpu;
        for act in [
            Activation::Relu,
            Activation::Elu,
            Activation::Softplus,
            Activation::LeakyRelu(0.2),
        ] {
            // Large enough for the parallel split; exact zeros exercise the kinks.
            for n in [7usize, 3 * PAR_MIN + 5] {
                let x0 = (Tensor::randn(0f32, 1f32, (n,), d).unwrap() * 5.0).unwrap();
                let zeros = Tensor::zeros(3, DType::F32, d).unwrap();
                let x0 = Tensor::cat(&[&x0, &zeros], 0).unwrap();
                let w = Tensor::randn(0f32, 1f32, x0.shape(), d).unwrap();
                let run = |fused: bool| {
                    let x = Var::from_tensor(&x0).unwrap();
                    let y = if fused {
                        act.apply(x.as_tensor()).unwrap()
                    } else {
                        act.apply_ops(x.as_tensor()).unwrap()
                    };
                    let g = (&y * &w).unwrap().sum_all().unwrap().backward().unwrap();
                    let gx = g.get(x.as_tensor()).unwrap().to_vec1::<f32>().unwrap();
                    (y.to_vec1::<f32>().unwrap(), gx)
                };
                let (yf, gf) = run(true);
                let (yr, gr) = run(false);
                for (i, (a, b)) in yf.iter().zip(&yr).enumerate() {
                    assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0), "{act:?} y[{i}]");
                }
                for (i, (a, b)) in gf.iter().zip(&gr).enumerate() {
                    assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0), "{act:?} g[{i}]");
                }
            }
        }
    }

    #[test]
    fn strided_input_uses_tensor_ops() {
        let d = &Device::Cpu;
        let x = Tensor::randn(0f32, 1f32, (4, 6), d).unwrap().t().unwrap();
        let a = Activation::Elu.apply(&x).unwrap();
        let b = Activation::Elu.apply_ops(&x).unwrap();
        let diff = (a - b).unwrap().abs().unwrap().max_all().unwrap();
        assert_eq!(diff.to_scalar::<f32>().unwrap(), 0.0);
    }
}

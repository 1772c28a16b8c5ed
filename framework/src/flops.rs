//! Floating-point operation counts of a training step, from the shapes of the layers that ran.
//!
//! The GEMM-shaped ops (linear layers, batched matmuls, convolutions) and the optimizer report their
//! counts here while a [`count`] is open on the current thread; everywhere else a report is one
//! thread-local read. A product `A·B` of `2·m·k·n` forward FLOPs costs as much again in backward for
//! each operand that takes part in autograd (`dA = dY·Bᵀ`, `dB = Aᵀ·dY`): candle computes the
//! gradient of every tracked operand, and never that of an input that is not (a data batch). Element-wise
//! ops are not counted: they are memory-bound and small next to the products in every shipped model.

use candle_core::Tensor;
use std::cell::Cell;

/// FLOPs per parameter of one AdamW update (the five lines of [`crate::optim`]'s update rule: decay 1,
/// first moment 3, second moment 4, bias-corrected step 6).
pub const ADAMW_FLOPS_PER_PARAM: f64 = 14.0;

thread_local! {
    static OPEN: Cell<Option<f64>> = const { Cell::new(None) };
}

/// Runs `f`, returning its value and the FLOPs reported on this thread while it ran. Counts nest: an inner
/// count's FLOPs also reach the outer one.
pub fn count<R>(f: impl FnOnce() -> R) -> (R, f64) {
    let outer = OPEN.with(|c| c.replace(Some(0.0)));
    let r = f();
    let inner = OPEN.with(|c| c.replace(outer)).unwrap_or(0.0);
    if outer.is_some() {
        add(inner);
    }
    (r, inner)
}

/// Adds `flops` to the open count, if any.
pub fn add(flops: f64) {
    OPEN.with(|c| {
        if let Some(n) = c.get() {
            c.set(Some(n + flops));
        }
    });
}

/// Whether a count is open on this thread (to skip computing a report nobody reads).
pub fn counting() -> bool {
    OPEN.with(|c| c.get().is_some())
}

/// Reports a product of `forward` FLOPs whose operands are `a` and `b`: forward plus the backward
/// products of whichever operands autograd tracks.
pub fn product(forward: f64, a: &Tensor, b: &Tensor) {
    if counting() {
        let grads = a.track_op() as u8 + b.track_op() as u8;
        add(forward * (1.0 + grads as f64));
    }
}

/// `a.matmul(b)` (batched or not), reported as a product of `2·batch·m·k·n` FLOPs.
pub fn matmul(a: &Tensor, b: &Tensor) -> candle_core::Result<Tensor> {
    let y = a.matmul(b)?;
    if counting() {
        let k = a.dims().last().copied().unwrap_or(1);
        product(2.0 * (y.elem_count() * k) as f64, a, b);
    }
    Ok(y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn a_product_counts_backward_for_tracked_operands_only() {
        let d = &Device::Cpu;
        let x = Tensor::ones((5, 3), candle_core::DType::F32, d).unwrap();
        let w = Var::ones((3, 4), candle_core::DType::F32, d).unwrap();
        let (_, data_times_var) = count(|| matmul(&x, w.as_tensor()).unwrap());
        assert_eq!(data_times_var, 2.0 * (2.0 * 5.0 * 3.0 * 4.0));
        let (_, data_times_data) = count(|| matmul(&x, &x.t().unwrap()).unwrap());
        assert_eq!(data_times_data, 2.0 * 5.0 * 3.0 * 5.0);
    }

    #[test]
    fn counts_nest_and_nothing_is_counted_outside_one() {
        add(1e9);
        let ((), outer) = count(|| {
            add(2.0);
            let ((), inner) = count(|| add(3.0));
            assert_eq!(inner, 3.0);
        });
        assert_eq!(outer, 5.0);
        assert!(!counting());
    }
}

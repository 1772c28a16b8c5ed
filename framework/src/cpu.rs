//! Helpers shared by the CPU kernels of custom ops.

use candle_core::{CpuStorage, Layout, Tensor};

/// The f32 values of a contiguous CPU storage, or an error naming the op.
pub(crate) fn contiguous_f32<'a>(
    s: &'a CpuStorage,
    l: &Layout,
    op: &str,
) -> candle_core::Result<&'a [f32]> {
    let CpuStorage::F32(v) = s else {
        candle_core::bail!(
            "{op}: expected f32, got {:?}",
            candle_core::backend::BackendStorage::dtype(s)
        )
    };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&v[a..b]),
        None => candle_core::bail!("{op}: expected a contiguous tensor"),
    }
}

/// `Some(grad())` if `arg` needs a gradient (autograd tracks it), else `None` without computing it: the backward
/// of a custom op skips the gradients of data inputs.
pub(crate) fn if_tracked(
    arg: &Tensor,
    grad: impl FnOnce() -> candle_core::Result<Tensor>,
) -> candle_core::Result<Option<Tensor>> {
    if arg.track_op() {
        grad().map(Some)
    } else {
        Ok(None)
    }
}

//! Differentiable inverse of a small square matrix (candle has none): LU on the host with nalgebra, and the
//! backward pass ∂L/∂M = −M⁻ᵀ (∂L/∂M⁻¹) M⁻ᵀ as tensor ops, so it also runs for tensors on a GPU.

use crate::error::{Error, Result};
use candle_core::{CpuStorage, CustomOp1, Device, Layout, Shape, Tensor};

struct Inverse;

impl CustomOp1 for Inverse {
    fn name(&self) -> &'static str {
        "matrix-inverse"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (n, m) = layout.shape().dims2()?;
        let CpuStorage::F32(data) = storage else {
            candle_core::bail!("matrix-inverse: expected f32");
        };
        let (start, end) = layout.contiguous_offsets().ok_or_else(|| {
            candle_core::Error::Msg("matrix-inverse: non-contiguous input".into())
        })?;
        let mat = nalgebra::DMatrix::from_row_slice(n, m, &data[start..end]);
        let inv = mat
            .try_inverse()
            .ok_or_else(|| candle_core::Error::Msg("matrix-inverse: matrix is singular".into()))?;
        // nalgebra is column-major: transpose to read rows.
        let rows: Vec<f32> = inv.transpose().as_slice().to_vec();
        Ok((CpuStorage::F32(rows), Shape::from((n, m))))
    }

    fn bwd(
        &self,
        _arg: &Tensor,
        res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let rt = res.t()?;
        Ok(Some(rt.matmul(grad_res)?.matmul(&rt)?.neg()?))
    }
}

/// M⁻¹ for a square f32 matrix, on any device (computed on the host; the matrices here are node × node).
pub fn inverse(m: &Tensor) -> Result<Tensor> {
    let (n, k) = m.dims2()?;
    if n != k {
        return Err(Error::Shape {
            context: "matrix inverse".into(),
            expected: "a square matrix".into(),
            got: format!("{n}×{k}"),
        });
    }
    let device = m.device().clone();
    let host = m.to_device(&Device::Cpu)?.contiguous()?;
    Ok(host.apply_op1(Inverse)?.to_device(&device)?)
}

//! A safe, bounds-checked call of the `gemm` crate's f32 kernel on strided matrices (its x86-v4 AVX-512 kernels
//! where the CPU has them), shared by the custom CPU ops of the linear and convolution layers.

use gemm::Parallelism;

/// A strided read-only matrix.
#[derive(Clone, Copy)]
pub(super) struct Mat<'a> {
    d: &'a [f32],
    rs: usize,
    cs: usize,
}

impl<'a> Mat<'a> {
    pub(super) fn rows(d: &'a [f32], rs: usize) -> Self {
        Self { d, rs, cs: 1 }
    }

    pub(super) fn t(self) -> Self {
        Self {
            d: self.d,
            rs: self.cs,
            cs: self.rs,
        }
    }
}

/// `dst` (`m × n`, row stride `dst_rs`) = (`dst` if `acc`, else 0) + `a` (`m × k`) · `b` (`k × n`).
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm(
    (m, n, k): (usize, usize, usize),
    dst: &mut [f32],
    dst_rs: usize,
    acc: bool,
    a: Mat,
    b: Mat,
    par: Parallelism,
) {
    if m == 0 || n == 0 {
        return;
    }
    let end = |rows: usize, cols: usize, rs: usize, cs: usize| (rows - 1) * rs + (cols - 1) * cs;
    assert!(
        dst_rs >= n && end(m, n, dst_rs, 1) < dst.len(),
        "gemm: dst out of bounds"
    );
    if k == 0 {
        if !acc {
            dst.chunks_mut(dst_rs)
                .take(m)
                .for_each(|r| r[..n].fill(0.0));
        }
        return;
    }
    assert!(end(m, k, a.rs, a.cs) < a.d.len(), "gemm: lhs out of bounds");
    assert!(end(k, n, b.rs, b.cs) < b.d.len(), "gemm: rhs out of bounds");
    // SAFETY: the asserts keep every element gemm reads (`a`: (i, l) at i·rs + l·cs, `b` likewise) and writes
    // (`dst`: (i, j) at i·dst_rs + j, rows disjoint as dst_rs ≥ n) inside its slice; `dst` is borrowed mutably,
    // so it overlaps neither operand.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_rs as isize,
            acc,
            a.d.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.d.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            par,
        )
    }
}

//! f32 CPU kernels of 2-D convolution as im2col + gemm, and the candle custom ops built on them.
//!
//! With `x` an image batch `[B, C, H, W]`, `w` a kernel `[O, C, k, k]` (read as the matrix `[O, C·k²]`) and
//! `cols(x_b)` the `[C·k², L]` columns of image `b` (see [`super::im2col`]), three bilinear maps:
//!
//! - [`ConvFwd`] `(x, w) ↦ y`, `y_b = w · cols(x_b)` `[B, O, oh, ow]`: `conv2d`;
//! - [`ConvAdj`] `(u, w) ↦ z`, `z_b = col2im(wᵀ · u_b)` `[B, C, H, W]`: its adjoint in `x`, i.e.
//!   `conv_transpose2d` of `u` with the kernel `[O, C, k, k]` = `[C_in, C_out, k, k]`;
//! - [`ConvWGrad`] `(x, u) ↦ Σ_b u_b · cols(x_b)ᵀ` `[O, C, k, k]`: its adjoint in `w`.
//!
//! Each one's gradients are the other two, so the three ops are closed under differentiation: their backward
//! passes are again these ops, tracked like any candle op (second-order gradients, e.g. a gradient penalty, flow
//! through them as far as candle's backward lets them: it detaches incoming gradients unless
//! `CANDLE_GRAD_DO_NOT_DETACH` is set). Unlike im2col, matmul and col2im as separate graph nodes, the columns
//! never become a tensor: they are built per chunk of images in a cache-sized scratch buffer that gemm consumes
//! at once, and candle's backward never zero-fills and accumulates a column-sized gradient. Inputs that need no
//! gradient (the images into a first layer) get none computed.
//!
//! Parallelism: the batch is cut into chunks of `nb` images (scratch ≤ [`SCRATCH`] floats), and the chunks into
//! one contiguous group per rayon thread, each running single-threaded gemms. With a single chunk (e.g. batch 1)
//! gemm runs on all threads instead. The weight gradient sums each group's chunks in order and then the groups
//! in order: deterministic for a given thread count.

use super::im2col::Geom;
use super::strided_gemm::{gemm, Mat};
use crate::cpu::if_tracked;
use candle_core::{CpuStorage, Layout, Shape, Tensor};
use gemm::Parallelism;
use rayon::prelude::*;
use std::cell::Cell;

/// Scratch floats per chunk (columns plus gathered rows): 1 MiB, within a core's L2 (2 MiB on the Xeons we run on;
/// 512 KiB and 2 MiB measured no better).
const SCRATCH: usize = 1 << 18;

/// How a batch is cut into chunks and the chunks into per-thread groups.
#[derive(Clone, Copy, Debug)]
struct Plan {
    /// Images per chunk.
    nb: usize,
    chunks: usize,
    /// Chunks per group (the last group may have fewer).
    per_group: usize,
    groups: usize,
    /// gemm's parallelism inside a chunk: all threads when there is a single group, else none.
    par: Parallelism,
}

impl Plan {
    fn new(g: &Geom, o: usize) -> Self {
        let t = rayon::current_num_threads().max(1);
        let per_image = (g.taps() + o) * g.l();
        let nb = (SCRATCH / per_image.max(1))
            .clamp(1, g.b)
            .min(g.b.div_ceil(t));
        let chunks = g.b.div_ceil(nb);
        let per_group = chunks.div_ceil(t.min(chunks));
        let groups = chunks.div_ceil(per_group);
        let par = if groups == 1 && t > 1 {
            Parallelism::Rayon(t)
        } else {
            Parallelism::None
        };
        Self {
            nb,
            chunks,
            per_group,
            groups,
            par,
        }
    }

    /// Runs `f` with scratch for one chunk: this thread's buffers, grown to fit (kept between calls, so that
    /// the pages are neither zeroed nor faulted in again).
    fn with_scratch<R>(&self, g: &Geom, o: usize, f: impl FnOnce(Bufs) -> R) -> R {
        let n = self.nb * g.l();
        // Taken out of the thread-local while in use: a nested call on this thread (a rayon worker stealing
        // another conv while gemm waits) gets buffers of its own.
        let mut sc = SPARE.with(|s| s.take()).unwrap_or_default();
        let fit = |v: &mut Vec<f32>, len: usize| {
            if v.len() < len {
                v.resize(len, 0.0);
            }
        };
        fit(&mut sc.cols, g.taps() * n);
        fit(&mut sc.rows, o * n);
        fit(&mut sc.split, g.split_len());
        let r = f(Bufs {
            cols: &mut sc.cols[..g.taps() * n],
            rows: &mut sc.rows[..o * n],
            split: &mut sc.split[..g.split_len()],
        });
        SPARE.with(|s| s.set(Some(sc)));
        r
    }
}

/// A thread's scratch buffers.
#[derive(Default)]
struct Scratch {
    cols: Vec<f32>,
    rows: Vec<f32>,
    split: Vec<f32>,
}

thread_local! {
    static SPARE: Cell<Option<Scratch>> = const { Cell::new(None) };
}

/// Scratch for one chunk of `nb` images, every value written before it is read.
struct Bufs<'a> {
    /// The `[C·k², nb·L]` columns of a chunk.
    cols: &'a mut [f32],
    /// A chunk's `[O, nb·L]` outputs or output gradients.
    rows: &'a mut [f32],
    /// A phase-split image ([`Geom::split_len`]).
    split: &'a mut [f32],
}

/// Output pixels per image from which each image of a chunk gets a gemm of its own, rather than one gemm for
/// the chunk on gathered rows (and a copy of its output).
const PER_IMAGE_GEMM_L: usize = 256;

fn per_image_gemm(nb: usize, l: usize) -> bool {
    nb == 1 || l >= PER_IMAGE_GEMM_L
}

/// The `[O, nb·L]` matrix of the images `b0..b0 + nb` of `u` (`[B, O, L]`), gathered into `tmp`.
fn gather_rows<'a>(
    u: &'a [f32],
    (o, l): (usize, usize),
    b0: usize,
    nb: usize,
    tmp: &'a mut [f32],
) -> Mat<'a> {
    let n = nb * l;
    for j in 0..nb {
        for (oo, src) in u[(b0 + j) * o * l..][..o * l].chunks_exact(l).enumerate() {
            tmp[oo * n + j * l..][..l].copy_from_slice(src);
        }
    }
    Mat::rows(&tmp[..o * n], n)
}

/// `f(ci, dst, bufs)` for every chunk `ci` with `dst` its images' part of `dst` (`per_image` values each),
/// in parallel over groups.
fn for_chunks(
    (p, g, o): (&Plan, &Geom, usize),
    dst: &mut [f32],
    per_image: usize,
    f: impl Fn(usize, &mut [f32], &mut Bufs) + Sync,
) {
    let run = |(gi, dst): (usize, &mut [f32])| {
        p.with_scratch(g, o, |mut bufs| {
            for (j, d) in dst.chunks_mut(p.nb * per_image).enumerate() {
                f(gi * p.per_group + j, d, &mut bufs);
            }
        })
    };
    let group_len = p.per_group * p.nb * per_image;
    if p.groups == 1 {
        dst.chunks_mut(group_len).enumerate().for_each(run);
    } else {
        dst.par_chunks_mut(group_len).enumerate().for_each(run);
    }
}

/// `y_b = w · cols(x_b)`: `x` `[B, C, H, W]`, `w` `[O, C·k²]` → `[B, O, L]`.
fn conv_fwd(g: &Geom, o: usize, x: &[f32], w: &[f32]) -> Vec<f32> {
    let (taps, l, img) = (g.taps(), g.l(), g.image_len());
    let p = Plan::new(g, o);
    let mut y = vec![0f32; g.b * o * l];
    let chunk = |ci: usize, y: &mut [f32], sc: &mut Bufs| {
        let (b0, nb) = (ci * p.nb, y.len() / (o * l));
        let n = nb * l;
        for j in 0..nb {
            let xb = &x[(b0 + j) * img..][..img];
            g.im2col(xb, sc.split, sc.cols, n, j * l);
        }
        let a = Mat::rows(w, taps);
        if per_image_gemm(nb, l) {
            for (j, yb) in y.chunks_exact_mut(o * l).enumerate() {
                let b = Mat::rows(&sc.cols[j * l..], n);
                gemm((o, l, taps), yb, l, false, a, b, p.par);
            }
        } else {
            let tmp = &mut *sc.rows;
            gemm((o, n, taps), tmp, n, false, a, Mat::rows(sc.cols, n), p.par);
            for (j, yb) in y.chunks_exact_mut(o * l).enumerate() {
                for (oo, dst) in yb.chunks_exact_mut(l).enumerate() {
                    dst.copy_from_slice(&tmp[oo * n + j * l..][..l]);
                }
            }
        }
    };
    for_chunks((&p, g, o), &mut y, o * l, chunk);
    y
}

/// `z_b = col2im(wᵀ · u_b)`: `u` `[B, O, L]`, `w` `[O, C·k²]` → `[B, C, H, W]`.
fn conv_adj(g: &Geom, o: usize, u: &[f32], w: &[f32]) -> Vec<f32> {
    let (taps, l, img) = (g.taps(), g.l(), g.image_len());
    let p = Plan::new(g, o);
    let mut z = vec![0f32; g.b * img];
    let chunk = |ci: usize, z: &mut [f32], sc: &mut Bufs| {
        let (b0, nb) = (ci * p.nb, z.len() / img);
        let n = nb * l;
        let wt = Mat::rows(w, taps).t();
        if per_image_gemm(nb, l) {
            for j in 0..nb {
                let ub = Mat::rows(&u[(b0 + j) * o * l..][..o * l], l);
                gemm((taps, l, o), &mut sc.cols[j * l..], n, false, wt, ub, p.par);
            }
        } else {
            let ub = gather_rows(u, (o, l), b0, nb, sc.rows);
            gemm((taps, n, o), sc.cols, n, false, wt, ub, p.par);
        }
        for (j, zb) in z.chunks_exact_mut(img).enumerate() {
            g.col2im(sc.cols, n, j * l, sc.split, zb);
        }
    };
    for_chunks((&p, g, o), &mut z, img, chunk);
    z
}

/// `Σ_b u_b · cols(x_b)ᵀ`: `x` `[B, C, H, W]`, `u` `[B, O, L]` → `[O, C·k²]`.
fn conv_wgrad(g: &Geom, o: usize, x: &[f32], u: &[f32]) -> Vec<f32> {
    let (taps, l, img) = (g.taps(), g.l(), g.image_len());
    let p = Plan::new(g, o);
    // Each group sums `Σ_b cols(x_b) · u_bᵀ`, the transposed gradient `[C·k², O]`: gemm runs this product
    // up to twice as fast as `u_b · cols(x_b)ᵀ`.
    let group = |gi: usize| {
        p.with_scratch(g, o, |sc| {
            let mut acc = vec![0f32; taps * o];
            let chunks = gi * p.per_group..((gi + 1) * p.per_group).min(p.chunks);
            for (i, ci) in chunks.enumerate() {
                let b0 = ci * p.nb;
                let nb = p.nb.min(g.b - b0);
                let n = nb * l;
                for j in 0..nb {
                    let xb = &x[(b0 + j) * img..][..img];
                    g.im2col(xb, sc.split, sc.cols, n, j * l);
                }
                if per_image_gemm(nb, l) {
                    for j in 0..nb {
                        let ut = Mat::rows(&u[(b0 + j) * o * l..][..o * l], l).t();
                        let c = Mat::rows(&sc.cols[j * l..], n);
                        gemm((taps, o, l), &mut acc, o, i + j > 0, c, ut, p.par);
                    }
                } else {
                    let ut = gather_rows(u, (o, l), b0, nb, sc.rows).t();
                    gemm(
                        (taps, o, n),
                        &mut acc,
                        o,
                        i > 0,
                        Mat::rows(sc.cols, n),
                        ut,
                        p.par,
                    );
                }
            }
            acc
        })
    };
    let parts: Vec<Vec<f32>> = if p.groups == 1 {
        vec![group(0)]
    } else {
        (0..p.groups).into_par_iter().map(group).collect()
    };
    // The groups' sums, in order, transposed to `[O, C·k²]`.
    let mut gw = vec![0f32; o * taps];
    for part in &parts {
        for (r, row) in part.chunks_exact(o).enumerate() {
            for (oo, v) in row.iter().enumerate() {
                gw[oo * taps + r] += v;
            }
        }
    }
    gw
}

fn check(op: &str, what: &str, l: &Layout, want: &[usize]) -> candle_core::Result<()> {
    if l.dims() != want {
        candle_core::bail!(
            "{op}: expected {what} of shape {want:?}, got {:?}",
            l.dims()
        )
    }
    Ok(())
}

/// The leading dimension of a rank-4 layout (the `O` of a kernel or of a conv output).
fn dim0(op: &str, l: &Layout) -> candle_core::Result<usize> {
    match l.dims() {
        [o, _, _, _] => Ok(*o),
        d => candle_core::bail!("{op}: expected a rank-4 tensor, got shape {d:?}"),
    }
}

fn dim1(op: &str, l: &Layout) -> candle_core::Result<usize> {
    match l.dims() {
        [_, o, _, _] => Ok(*o),
        d => candle_core::bail!("{op}: expected a rank-4 tensor, got shape {d:?}"),
    }
}

/// `(x [B, C, H, W], w [O, C, k, k])` → `[B, O, oh, ow]`: `conv2d`.
#[derive(Clone, Copy, Debug)]
pub(super) struct ConvFwd(pub Geom);

/// `(u [B, O, oh, ow], w [O, C, k, k])` → `[B, C, H, W]`: `conv_transpose2d`.
#[derive(Clone, Copy, Debug)]
pub(super) struct ConvAdj(pub Geom);

/// `(x [B, C, H, W], u [B, O, oh, ow])` → `[O, C, k, k]`: the kernel gradient of `conv2d`.
#[derive(Clone, Copy, Debug)]
pub(super) struct ConvWGrad(pub Geom);

impl candle_core::CustomOp2 for ConvFwd {
    fn name(&self) -> &'static str {
        "carve-conv2d"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (g, name) = (&self.0, self.name());
        let o = dim0(name, l2)?;
        check(name, "input", l1, &[g.b, g.c, g.h, g.w])?;
        check(name, "kernel", l2, &[o, g.c, g.k, g.k])?;
        let x = crate::cpu::contiguous_f32(s1, l1, name)?;
        let w = crate::cpu::contiguous_f32(s2, l2, name)?;
        let y = conv_fwd(g, o, x, w);
        Ok((CpuStorage::F32(y), Shape::from((g.b, o, g.oh, g.ow))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _y: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        Ok((
            if_tracked(x, || grad.apply_op2(w, ConvAdj(self.0)))?,
            if_tracked(w, || x.apply_op2(&grad, ConvWGrad(self.0)))?,
        ))
    }
}

impl candle_core::CustomOp2 for ConvAdj {
    fn name(&self) -> &'static str {
        "carve-conv-transpose2d"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (g, name) = (&self.0, self.name());
        let o = dim0(name, l2)?;
        check(name, "input", l1, &[g.b, o, g.oh, g.ow])?;
        check(name, "kernel", l2, &[o, g.c, g.k, g.k])?;
        let u = crate::cpu::contiguous_f32(s1, l1, name)?;
        let w = crate::cpu::contiguous_f32(s2, l2, name)?;
        let z = conv_adj(g, o, u, w);
        Ok((CpuStorage::F32(z), Shape::from((g.b, g.c, g.h, g.w))))
    }

    fn bwd(
        &self,
        u: &Tensor,
        w: &Tensor,
        _z: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        Ok((
            if_tracked(u, || grad.apply_op2(w, ConvFwd(self.0)))?,
            if_tracked(w, || grad.apply_op2(u, ConvWGrad(self.0)))?,
        ))
    }
}

impl candle_core::CustomOp2 for ConvWGrad {
    fn name(&self) -> &'static str {
        "carve-conv2d-kernel-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (g, name) = (&self.0, self.name());
        let o = dim1(name, l2)?;
        check(name, "input", l1, &[g.b, g.c, g.h, g.w])?;
        check(name, "output gradient", l2, &[g.b, o, g.oh, g.ow])?;
        let x = crate::cpu::contiguous_f32(s1, l1, name)?;
        let u = crate::cpu::contiguous_f32(s2, l2, name)?;
        let gw = conv_wgrad(g, o, x, u);
        Ok((CpuStorage::F32(gw), Shape::from((o, g.c, g.k, g.k))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        u: &Tensor,
        _gw: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        Ok((
            if_tracked(x, || u.apply_op2(&grad, ConvAdj(self.0)))?,
            if_tracked(u, || x.apply_op2(&grad, ConvFwd(self.0)))?,
        ))
    }
}

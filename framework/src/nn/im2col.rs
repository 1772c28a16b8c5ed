//! Geometry of a 2-D convolution, and the im2col gather and col2im scatter of one image.
//!
//! An image `[C, H, W]` and its columns `[C·k², L]`: one row per kernel tap `r = (c·k + ki)·k + kj`, one column
//! per output pixel `(oi, oj)` of the `oh × ow` grid (`L = oh·ow`, `oh = (H + 2p − k)/s + 1`), holding
//! `x[c, oi·s + ki − p, oj·s + kj − p]` (0 in the padding). col2im is the adjoint: every pixel sums the column
//! entries that read it. Both go through a phase-split, zero-padded copy of the image (see [`Geom::split_len`]),
//! in which every run of `ow` column entries is a contiguous copy (or sum).

/// `self.$body(args)`, compiled for AVX-512F or AVX2 where the CPU has them (the crate's baseline is SSE2).
macro_rules! simd {
    ($body:ident($self:ident, $($a:ident: $t:ty),*)) => {{
        #[cfg(target_arch = "x86_64")]
        {
            #[target_feature(enable = "avx512f")]
            unsafe fn avx512(g: &Geom, $($a: $t),*) {
                g.$body($($a),*)
            }
            #[target_feature(enable = "avx2")]
            unsafe fn avx2(g: &Geom, $($a: $t),*) {
                g.$body($($a),*)
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU supports AVX-512F (checked just above).
                return unsafe { avx512($self, $($a),*) };
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports AVX2 (checked just above).
                return unsafe { avx2($self, $($a),*) };
            }
        }
        $self.$body($($a),*)
    }};
}

/// Where an image batch `[B, C, H, W]` and its columns meet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Geom {
    pub b: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub k: usize,
    pub stride: usize,
    pub padding: usize,
    pub oh: usize,
    pub ow: usize,
}

impl Geom {
    /// The geometry of a `k × k` convolution of a `[b, c, h, w]` batch, or `None` when the kernel does not fit
    /// in the padded image, the stride is 0 or a size is 0.
    pub fn conv(
        (b, c, h, w): (usize, usize, usize, usize),
        k: usize,
        stride: usize,
        padding: usize,
    ) -> Option<Self> {
        if stride == 0 || k == 0 || b * c * h * w == 0 || h + 2 * padding < k || w + 2 * padding < k
        {
            return None;
        }
        Some(Self {
            b,
            c,
            h,
            w,
            k,
            stride,
            padding,
            oh: (h + 2 * padding - k) / stride + 1,
            ow: (w + 2 * padding - k) / stride + 1,
        })
    }

    /// Kernel taps `C·k²`: the rows of the columns.
    pub fn taps(&self) -> usize {
        self.c * self.k * self.k
    }

    /// Output pixels per image, `L`.
    pub fn l(&self) -> usize {
        self.oh * self.ow
    }

    /// Elements of one image, `C·H·W`.
    pub fn image_len(&self) -> usize {
        self.c * self.h * self.w
    }

    /// Padded rows of the phase-split image, `H + 2p`.
    fn ph(&self) -> usize {
        self.h + 2 * self.padding
    }

    /// Width of one phase of a padded row, `⌈(W + 2p)/s⌉`.
    fn pw(&self) -> usize {
        (self.w + 2 * self.padding).div_ceil(self.stride)
    }

    /// Length of the phase-split image `[C, H + 2p, s, ⌈(W + 2p)/s⌉]`: every padded row split into its `s`
    /// phases (padded columns `φ, φ + s, φ + 2s, …`), so that each kernel tap reads a contiguous run of a phase.
    pub fn split_len(&self) -> usize {
        self.c * self.ph() * self.stride * self.pw()
    }

    /// The start in the phase-split image of what tap `(c, ki, kj)` reads for output row `oi`: `ow` contiguous
    /// values, those at padded columns `kj, kj + s, …` of padded row `oi·s + ki`.
    fn run_start(&self, c: usize, ki: usize, kj: usize, oi: usize) -> usize {
        let (s, pw) = (self.stride, self.pw());
        ((c * self.ph() + oi * s + ki) * s + kj % s) * pw + kj / s
    }

    /// For each phase `φ`: where its first image column sits in a phase-split row, that column, and how many
    /// image columns the phase holds.
    fn phases(&self) -> impl Iterator<Item = (usize, usize, usize)> + '_ {
        let (s, p, w, pw) = (self.stride, self.padding, self.w, self.pw());
        (0..s).map(move |phi| {
            // The first padded column ≥ p in phase φ, and its image column.
            let jp = p + (phi + s - p % s) % s;
            let j = jp - p;
            (
                phi * pw + jp / s,
                j,
                if j < w { (w - j).div_ceil(s) } else { 0 },
            )
        })
    }

    /// The phase-split, zero-padded copy of the image `x` (`[C, H, W]`) into `q` (`split_len` values).
    #[inline(always)]
    fn split(&self, x: &[f32], q: &mut [f32]) {
        let (s, p, w, pw) = (self.stride, self.padding, self.w, self.pw());
        let (row, rows) = (s * pw, self.ph());
        let phases: Vec<_> = self.phases().collect();
        for (qc, plane) in q
            .chunks_exact_mut(rows * row)
            .zip(x.chunks_exact(self.h * w))
        {
            let (top, rest) = qc.split_at_mut(p * row);
            let (mid, bottom) = rest.split_at_mut(self.h * row);
            top.fill(0.0);
            bottom.fill(0.0);
            for (qrow, xrow) in mid.chunks_exact_mut(row).zip(plane.chunks_exact(w)) {
                for (qph, &(at, j, n)) in qrow.chunks_exact_mut(pw).zip(&phases) {
                    let at = at % pw;
                    qph[..at].fill(0.0);
                    qph[at + n..].fill(0.0);
                    gather(&mut qph[at..at + n], &xrow[j..], s);
                }
            }
        }
    }

    /// The image `img` (`[C, H, W]`) from its phase-split, padded copy `q`, dropping the padding.
    #[inline(always)]
    fn merge(&self, q: &[f32], img: &mut [f32]) {
        let (s, p, w) = (self.stride, self.padding, self.w);
        let row = s * self.pw();
        let phases: Vec<_> = self.phases().collect();
        for (qc, plane) in q
            .chunks_exact(self.ph() * row)
            .zip(img.chunks_exact_mut(self.h * w))
        {
            let mid = &qc[p * row..][..self.h * row];
            for (qrow, xrow) in mid.chunks_exact(row).zip(plane.chunks_exact_mut(w)) {
                for &(at, j, n) in &phases {
                    scatter(&mut xrow[j..], s, &qrow[at..at + n]);
                }
            }
        }
    }

    /// For every kernel tap `r`, the `oh` runs of `ow` values of the phase-split image that make its row of the
    /// columns: `f(r, first run's start, distance between runs)`.
    #[inline(always)]
    fn for_taps(&self, mut f: impl FnMut(usize, usize, usize)) {
        let k = self.k;
        let step = self.stride * self.stride * self.pw();
        for r in 0..self.taps() {
            let (c, ki, kj) = (r / (k * k), (r / k) % k, r % k);
            f(r, self.run_start(c, ki, kj, 0), step);
        }
    }

    #[inline(always)]
    fn im2col_body(&self, x: &[f32], q: &mut [f32], cols: &mut [f32], rs: usize, off: usize) {
        let (ow, l) = (self.ow, self.l());
        self.split(x, q);
        self.for_taps(|r, start, step| {
            let dst = &mut cols[r * rs + off..][..l];
            for (drow, src) in dst.chunks_exact_mut(ow).zip(q[start..].chunks(step)) {
                copy_run(drow, src);
            }
        });
    }

    #[inline(always)]
    fn col2im_body(&self, cols: &[f32], rs: usize, off: usize, q: &mut [f32], img: &mut [f32]) {
        let (ow, l) = (self.ow, self.l());
        q.fill(0.0);
        self.for_taps(|r, start, step| {
            let src = &cols[r * rs + off..][..l];
            for (srow, dst) in src.chunks_exact(ow).zip(q[start..].chunks_mut(step)) {
                add_run(dst, srow);
            }
        });
        self.merge(q, img);
    }

    /// The columns of the image `x` (`[C, H, W]`) into `cols`, a `[C·k², ·]` matrix with row stride `rs`, from
    /// column `off` on; `q` (`split_len` values) is scratch.
    pub fn im2col(&self, x: &[f32], q: &mut [f32], cols: &mut [f32], rs: usize, off: usize) {
        simd!(im2col_body(self, x: &[f32], q: &mut [f32], cols: &mut [f32], rs: usize, off: usize))
    }

    /// Writes into the image `img` (`[C, H, W]`) the sum, at every pixel, of the entries of its columns `cols`
    /// (laid out as in [`Self::im2col`]) that read it: the adjoint of [`Self::im2col`]. `q` is scratch.
    pub fn col2im(&self, cols: &[f32], rs: usize, off: usize, q: &mut [f32], img: &mut [f32]) {
        simd!(col2im_body(self, cols: &[f32], rs: usize, off: usize, q: &mut [f32], img: &mut [f32]))
    }
}

/// `dst[i] = src[i·s]`.
#[inline(always)]
fn gather(dst: &mut [f32], src: &[f32], s: usize) {
    match s {
        1 => copy_run(dst, src),
        2 => {
            let full = (src.len() / 2).min(dst.len());
            for (d, v) in dst[..full].iter_mut().zip(src.chunks_exact(2)) {
                *d = v[0];
            }
            if let Some(d) = dst.get_mut(full) {
                *d = src[2 * full];
            }
        }
        _ => dst
            .iter_mut()
            .zip(src.iter().step_by(s))
            .for_each(|(d, v)| *d = *v),
    }
}

/// `dst[i·s] = src[i]`.
#[inline(always)]
fn scatter(dst: &mut [f32], s: usize, src: &[f32]) {
    match s {
        1 => copy_run(dst, src),
        2 => {
            let full = (dst.len() / 2).min(src.len());
            for (d, v) in dst.chunks_exact_mut(2).zip(&src[..full]) {
                d[0] = *v;
            }
            if let Some(v) = src.get(full) {
                dst[2 * full] = *v;
            }
        }
        _ => dst
            .iter_mut()
            .step_by(s)
            .zip(src)
            .for_each(|(d, v)| *d = *v),
    }
}

/// Lanes of the fixed-size blocks that [`copy_run`] and [`add_run`] move (no memcpy call for short runs).
const LANES: usize = 8;

/// `dst = src[..dst.len()]`.
#[inline(always)]
fn copy_run(dst: &mut [f32], src: &[f32]) {
    let src = &src[..dst.len()];
    let mut d = dst.chunks_exact_mut(LANES);
    let mut s = src.chunks_exact(LANES);
    for (d, s) in (&mut d).zip(&mut s) {
        let d: &mut [f32; LANES] = d.try_into().expect("LANES values");
        *d = s.try_into().expect("LANES values");
    }
    for (d, s) in d.into_remainder().iter_mut().zip(s.remainder()) {
        *d = *s;
    }
}

/// `dst[..src.len()] += src`.
#[inline(always)]
fn add_run(dst: &mut [f32], src: &[f32]) {
    let dst = &mut dst[..src.len()];
    let mut d = dst.chunks_exact_mut(LANES);
    let mut s = src.chunks_exact(LANES);
    for (d, s) in (&mut d).zip(&mut s) {
        let d: &mut [f32; LANES] = d.try_into().expect("LANES values");
        let s: &[f32; LANES] = s.try_into().expect("LANES values");
        for i in 0..LANES {
            d[i] += s[i];
        }
    }
    for (d, s) in d.into_remainder().iter_mut().zip(s.remainder()) {
        *d += *s;
    }
}

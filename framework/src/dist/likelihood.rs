//! Observation likelihoods p(x | decoder output).
//!
//! On the CPU with f32 tensors, [`Likelihood::nll`] runs as one fused custom op (one pass over the
//! data forward, one backward) instead of a chain of elementwise tensor ops: on the pendulum MLP
//! VAE the logits are 64 × 36864, and each op of the chain, with its backward and candle's gradient
//! accumulation, reads and writes that whole array. Other devices and dtypes use the tensor-op
//! formula ([`Likelihood::nll_ops`]), which is also the reference the fused ops are tested against.

use crate::error::Result;
use candle_core::{CpuStorage, DType, Device, Layout, Shape, Tensor};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Written `Bernoulli`, `Gaussian(std: 0.1)` or `LearnedGaussian(init_logvar: -10.0)` in a config.
#[derive(Clone, Debug, Default, Serialize)]
pub enum Likelihood {
    /// Bernoulli with logits (binary or [0, 1] images); nll = Σ BCEWithLogits.
    #[default]
    Bernoulli,
    /// Gaussian with a fixed scalar standard deviation; the decoder outputs the mean.
    Gaussian { std: f64 },
    /// Gaussian with one learned log-variance s shared by every observed value, a parameter of the decoder
    /// (`<decoder>.logvar`, starting at `init_logvar`); the standard deviation is e^{s/2} + 1e-4. The decoder
    /// outputs the mean. Nll: [`learned_gaussian_nll`].
    LearnedGaussian { init_logvar: f64 },
}

/// How a decoder reduces −log p(x|z) over the observed values of one sample.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reduction {
    /// Summed: the log-likelihood of the sample.
    #[default]
    Sum,
    /// Averaged over the observed values: the ELBO per observed dimension (mechanism sparsity's scale; its
    /// method divides the KL by d_x to match).
    Mean,
}

impl Reduction {
    /// A per-sample nll `[B]` summed over `n` values, reduced.
    pub fn of_sum(self, nll: Tensor, n: usize) -> Result<Tensor> {
        Ok(match self {
            Reduction::Sum => nll,
            Reduction::Mean => (nll / n.max(1) as f64)?,
        })
    }
}

/// ½ log 2π.
const HALF_LOG_2PI: f64 = 0.918_938_533_204_672_8;

/// −log N(x; params, σ²) per sample, `[B]`, with σ = e^{s/2} + 1e-4 from the learned log-variance `logvar`
/// (`[1]`), summed or averaged over the values of each sample.
pub fn learned_gaussian_nll(
    x: &Tensor,
    params: &Tensor,
    logvar: &Tensor,
    reduction: Reduction,
) -> Result<Tensor> {
    let b = x.dims()[0];
    let (x, params) = (x.reshape((b, ()))?, params.reshape((b, ()))?);
    let n = x.dims()[1];
    let std = (logvar.affine(0.5, 0.0)?.exp()? + 1e-4)?;
    let resid = params.sub(&x)?.broadcast_div(&std)?;
    let quad = resid.sqr()?.affine(0.5, HALF_LOG_2PI)?;
    let log_std = std.log()?.squeeze(0)?;
    Ok(match reduction {
        Reduction::Mean => quad.mean(candle_core::D::Minus1)?.broadcast_add(&log_std)?,
        Reduction::Sum => quad
            .sum(candle_core::D::Minus1)?
            .broadcast_add(&(log_std * n as f64)?)?,
    })
}

impl Likelihood {
    /// The initial log-variance of a likelihood whose variance the decoder learns.
    pub fn learned_logvar_init(&self) -> Option<f64> {
        match self {
            Likelihood::LearnedGaussian { init_logvar } => Some(*init_logvar),
            _ => None,
        }
    }

    /// An error naming `who` (a decoder without a learned variance) for a `LearnedGaussian` likelihood, so the
    /// config is refused when the model is built rather than at its first step.
    pub fn check_fixed(&self, who: &str) -> Result<()> {
        if self.learned_logvar_init().is_some() {
            return Err(crate::Error::Config {
                location: "likelihood".into(),
                message: format!(
                    "the {who} decoder does not learn a variance: use Bernoulli or Gaussian(std: ..)"
                ),
            });
        }
        Ok(())
    }

    /// −log p(x | params), summed over all non-batch dimensions: shape `[B]`. A learned Gaussian needs its
    /// decoder's log-variance: [`learned_gaussian_nll`].
    pub fn nll(&self, x: &Tensor, params: &Tensor) -> Result<Tensor> {
        if let Likelihood::LearnedGaussian { .. } = self {
            return Err(crate::Error::msg(
                "a LearnedGaussian likelihood is scored with its decoder's learned log-variance (learned_gaussian_nll)",
            ));
        }
        if !fused_applies(x, params) {
            return self.nll_ops(x, params);
        }
        let params = params.contiguous()?;
        let x = x.contiguous()?;
        Ok(match self {
            Likelihood::Bernoulli => params.apply_op2(&x, FusedNll::Bernoulli)?,
            Likelihood::Gaussian { std } => params.apply_op2(&x, FusedNll::gaussian(*std))?,
            Likelihood::LearnedGaussian { .. } => unreachable!("refused above"),
        })
    }

    /// [`Self::nll`] as a chain of tensor ops: runs on any device and dtype.
    fn nll_ops(&self, x: &Tensor, params: &Tensor) -> Result<Tensor> {
        let b = x.dims()[0];
        let per_elem = match self {
            // softplus(l) − x·l, written stably as relu(l) − x·l + log(1 + e^{−|l|})
            Likelihood::Bernoulli => {
                let stable = ((params.abs()?.neg()?.exp()? + 1.0)?.log()? + params.relu()?)?;
                (stable - (x * params)?)?
            }
            Likelihood::Gaussian { std } => {
                let c = std.ln() + 0.5 * (2.0 * std::f64::consts::PI).ln();
                (((x - params)?.sqr()? * (0.5 / (std * std)))? + c)?
            }
            Likelihood::LearnedGaussian { .. } => {
                return Err(crate::Error::msg(
                    "a LearnedGaussian likelihood needs its decoder's log-variance",
                ))
            }
        };
        Ok(per_elem.reshape((b, ()))?.sum(1)?)
    }

    /// E[x | params]: probabilities for Bernoulli, the mean for Gaussian.
    pub fn mean(&self, params: &Tensor) -> Result<Tensor> {
        Ok(match self {
            Likelihood::Bernoulli => candle_nn::ops::sigmoid(params)?,
            Likelihood::Gaussian { .. } | Likelihood::LearnedGaussian { .. } => params.clone(),
        })
    }
}

/// The forms a config may write, for error messages.
const FORMS: &str =
    "`Bernoulli`, `Gaussian(std: <standard deviation>)`, e.g. `Gaussian(std: 0.1)`, or `LearnedGaussian(init_logvar: -10.0)`";

/// The derived deserialiser, except that `Gaussian` written without its fields is told the valid forms
/// rather than "Expected opening `(`".
impl<'de> Deserialize<'de> for Likelihood {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::{EnumAccess, Error as _, MapAccess, VariantAccess, Visitor};
        use std::cell::Cell;
        use std::fmt;

        #[derive(Deserialize)]
        #[serde(variant_identifier)]
        enum Kind {
            Bernoulli,
            Gaussian,
            LearnedGaussian,
        }

        #[derive(Deserialize)]
        #[serde(field_identifier, rename_all = "lowercase")]
        enum Field {
            Std,
        }

        #[derive(Deserialize)]
        #[serde(field_identifier, rename_all = "snake_case")]
        enum LearnedField {
            InitLogvar,
        }

        /// The fields of `LearnedGaussian`.
        struct LearnedFields;
        impl<'de> Visitor<'de> for LearnedFields {
            type Value = f64;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("the fields of `LearnedGaussian`: `init_logvar`")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<f64, A::Error> {
                let mut init = None;
                while let Some(LearnedField::InitLogvar) = map.next_key()? {
                    if init.is_some() {
                        return Err(A::Error::duplicate_field("init_logvar"));
                    }
                    init = Some(map.next_value()?);
                }
                init.ok_or_else(|| A::Error::missing_field("init_logvar"))
            }
        }

        /// The fields of `Gaussian`; records whether the input had any (a parenthesised body).
        struct GaussianFields<'a>(&'a Cell<bool>);
        impl<'de> Visitor<'de> for GaussianFields<'_> {
            type Value = f64;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("the fields of `Gaussian`: `std`")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<f64, A::Error> {
                self.0.set(true);
                let mut std = None;
                while let Some(Field::Std) = map.next_key()? {
                    if std.is_some() {
                        return Err(A::Error::duplicate_field("std"));
                    }
                    std = Some(map.next_value()?);
                }
                std.ok_or_else(|| A::Error::missing_field("std"))
            }
        }

        struct LikelihoodVisitor;
        impl<'de> Visitor<'de> for LikelihoodVisitor {
            type Value = Likelihood;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "a likelihood: {FORMS}")
            }
            fn visit_enum<A: EnumAccess<'de>>(
                self,
                e: A,
            ) -> std::result::Result<Likelihood, A::Error> {
                let (kind, variant) = e.variant::<Kind>()?;
                match kind {
                    Kind::Bernoulli => variant.unit_variant().map(|()| Likelihood::Bernoulli),
                    Kind::Gaussian => {
                        let entered = Cell::new(false);
                        variant
                            .struct_variant(&["std"], GaussianFields(&entered))
                            .map(|std| Likelihood::Gaussian { std })
                            .map_err(|e| {
                                if entered.get() {
                                    e
                                } else {
                                    A::Error::custom(format!(
                                        "`Gaussian` needs its standard deviation: write {FORMS}"
                                    ))
                                }
                            })
                    }
                    Kind::LearnedGaussian => variant
                        .struct_variant(&["init_logvar"], LearnedFields)
                        .map(|init_logvar| Likelihood::LearnedGaussian { init_logvar }),
                }
            }
        }

        d.deserialize_enum(
            "Likelihood",
            &["Bernoulli", "Gaussian", "LearnedGaussian"],
            LikelihoodVisitor,
        )
    }
}

/// The fused path needs f32 CPU tensors of one shape with a batch dimension.
fn fused_applies(x: &Tensor, params: &Tensor) -> bool {
    matches!(params.device(), Device::Cpu)
        && matches!(x.device(), Device::Cpu)
        && params.dtype() == DType::F32
        && x.dtype() == DType::F32
        && params.dims() == x.dims()
        && params.rank() >= 1
        && params.elem_count() > 0
}

/// The per-sample nll as one op on (`params`, `x`) → `[B]`. Backward gives the gradient of the
/// params in one pass, and that of `x` (tensor ops) only when `x` is part of the graph.
#[derive(Clone, Copy, Debug)]
enum FusedNll {
    Bernoulli,
    /// Σ k·(x − μ)² + c with k = 1/(2σ²), c = log σ + ½ log 2π.
    Gaussian {
        k: f32,
        c: f32,
    },
}

impl FusedNll {
    fn gaussian(std: f64) -> Self {
        FusedNll::Gaussian {
            k: (0.5 / (std * std)) as f32,
            c: (std.ln() + 0.5 * (2.0 * std::f64::consts::PI).ln()) as f32,
        }
    }
}

impl candle_core::CustomOp2 for FusedNll {
    fn name(&self) -> &'static str {
        "fused-nll"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (p, x, b, n) = rows(s1, l1, s2, l2, self.name())?;
        let mut out = vec![0f32; b];
        let this = *self;
        out.par_iter_mut()
            .zip(p.par_chunks(n).zip(x.par_chunks(n)))
            .for_each(|(o, (p, x))| {
                *o = match this {
                    FusedNll::Bernoulli => simd::bernoulli_row(p, x),
                    FusedNll::Gaussian { k, c } => simd::gaussian_row(p, x, k, c),
                }
            });
        Ok((CpuStorage::F32(out), Shape::from(b)))
    }

    fn bwd(
        &self,
        params: &Tensor,
        x: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let g = grad.to_dtype(DType::F32)?.to_vec1::<f32>()?;
        let grad_params = params.apply_op2_no_bwd(x, &FusedNllGrad { op: *self, g })?;
        // d/dx: −l·g for Bernoulli, −2k(μ − x)·g = −grad_μ for Gaussian.
        let grad_x = if x.track_op() {
            Some(match self {
                FusedNll::Bernoulli => {
                    let mut gshape = vec![1usize; params.rank()];
                    gshape[0] = params.dims()[0];
                    params.broadcast_mul(&grad.reshape(gshape)?)?.neg()?
                }
                FusedNll::Gaussian { .. } => grad_params.neg()?,
            })
        } else {
            None
        };
        Ok((Some(grad_params), grad_x))
    }
}

/// Params and targets of a fused NLL op as contiguous slices, with the batch size and values per sample.
fn rows<'a>(
    s1: &'a CpuStorage,
    l1: &Layout,
    s2: &'a CpuStorage,
    l2: &Layout,
    op: &str,
) -> candle_core::Result<(&'a [f32], &'a [f32], usize, usize)> {
    let p = crate::cpu::contiguous_f32(s1, l1, op)?;
    let x = crate::cpu::contiguous_f32(s2, l2, op)?;
    let b = l1.dims()[0];
    Ok((p, x, b, p.len() / b.max(1)))
}

/// Gradient of [`FusedNll`] with respect to the params, for output gradient `g` (one per sample).
struct FusedNllGrad {
    op: FusedNll,
    g: Vec<f32>,
}

impl candle_core::CustomOp2 for FusedNllGrad {
    fn name(&self) -> &'static str {
        "fused-nll-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (p, x, _, n) = rows(s1, l1, s2, l2, self.name())?;
        let mut out = vec![0f32; p.len()];
        out.par_chunks_mut(n)
            .zip(p.par_chunks(n).zip(x.par_chunks(n)))
            .zip(self.g.par_iter())
            .for_each(|((o, (p, x)), &g)| match self.op {
                FusedNll::Bernoulli => simd::bernoulli_grad_row(o, p, x, g),
                FusedNll::Gaussian { k, .. } => simd::gaussian_grad_row(o, p, x, 2.0 * k * g),
            });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

/// Row kernels, written as plain loops over fixed-width lanes so that LLVM vectorises them; on
/// x86_64 they are also compiled for AVX-512 and AVX2 and picked at run time. No FMA contraction
/// happens (Rust does not fuse `a * b + c`), so every build gives the same results.
mod simd {
    /// Lanes per step of the row loops (one AVX-512 register).
    const W: usize = 16;

    /// e^x for x ≤ 0 (Cephes `expf`: round x / ln 2 to n, a degree-6 polynomial on the rest, scale
    /// by 2^n; relative error ~1e-7). Inputs below −87 give e^−87 ≈ 1.6e-38 instead of underflowing.
    #[inline(always)]
    fn exp_neg(x: f32) -> f32 {
        const LOG2E: f32 = std::f32::consts::LOG2_E;
        // 1.5·2^23: adding it rounds to an integer kept in the low mantissa bits.
        const MAGIC: f32 = 12_582_912.0;
        let x = x.max(-87.0);
        let t = x * LOG2E + MAGIC;
        let n_bits = t.to_bits().wrapping_sub(MAGIC.to_bits()) as i32;
        let n = t - MAGIC;
        let r = x - n * 0.693_359_4 - n * -2.121_944_4e-4;
        let mut p = 1.987_569_1e-4f32;
        p = p * r + 1.398_199_9e-3;
        p = p * r + 8.333_452e-3;
        p = p * r + 4.166_579_6e-2;
        p = p * r + 1.666_666_5e-1;
        p = p * r + 0.5;
        let e = p * r * r + r + 1.0;
        e * f32::from_bits(((n_bits + 127) as u32) << 23)
    }

    /// log(1 + e) for e ∈ [0, 1], as 2·atanh(s) with s = e / (2 + e) ≤ 1/3 (series to s^15; error
    /// below 1e-8). Small e keeps full relative precision.
    #[inline(always)]
    fn log1p_unit(e: f32) -> f32 {
        let s = e / (2.0 + e);
        let s2 = s * s;
        let mut q = 1.0f32 / 15.0;
        q = q * s2 + 1.0 / 13.0;
        q = q * s2 + 1.0 / 11.0;
        q = q * s2 + 1.0 / 9.0;
        q = q * s2 + 1.0 / 7.0;
        q = q * s2 + 1.0 / 5.0;
        q = q * s2 + 1.0 / 3.0;
        q = q * s2 + 1.0;
        2.0 * s * q
    }

    /// softplus(l) − x·l = max(l, 0) − x·l + log(1 + e^{−|l|}).
    #[inline(always)]
    fn bce(l: f32, x: f32) -> f32 {
        l.max(0.0) - x * l + log1p_unit(exp_neg(-l.abs()))
    }

    /// sigmoid(l) from e^{−|l|}, without overflow for either sign.
    #[inline(always)]
    fn sigmoid(l: f32) -> f32 {
        let e = exp_neg(-l.abs());
        let r = 1.0 / (1.0 + e);
        if l >= 0.0 {
            r
        } else {
            e * r
        }
    }

    /// Σ f(p_i, x_i) in W lane-wise partial sums, then a fixed-order reduction.
    #[inline(always)]
    fn row_sum(p: &[f32], x: &[f32], f: impl Fn(f32, f32) -> f32) -> f32 {
        let mut acc = [0f32; W];
        let (pc, pt) = p.split_at(p.len() / W * W);
        let (xc, xt) = x.split_at(pc.len());
        for (p, x) in pc.chunks_exact(W).zip(xc.chunks_exact(W)) {
            for k in 0..W {
                acc[k] += f(p[k], x[k]);
            }
        }
        for (k, (&p, &x)) in pt.iter().zip(xt).enumerate() {
            acc[k] += f(p, x);
        }
        // Pairwise over the lanes.
        let mut w = W;
        while w > 1 {
            w /= 2;
            for k in 0..w {
                acc[k] += acc[k + w];
            }
        }
        acc[0]
    }

    #[inline(always)]
    fn bernoulli_row_body(l: &[f32], x: &[f32]) -> f32 {
        row_sum(l, x, bce)
    }

    #[inline(always)]
    fn gaussian_row_body(m: &[f32], x: &[f32], k: f32, c: f32) -> f32 {
        row_sum(m, x, |m, x| {
            let d = x - m;
            d * d * k + c
        })
    }

    #[inline(always)]
    fn bernoulli_grad_row_body(o: &mut [f32], l: &[f32], x: &[f32], g: f32) {
        for ((o, &l), &x) in o.iter_mut().zip(l).zip(x) {
            *o = (sigmoid(l) - x) * g;
        }
    }

    #[inline(always)]
    fn gaussian_grad_row_body(o: &mut [f32], m: &[f32], x: &[f32], g2k: f32) {
        for ((o, &m), &x) in o.iter_mut().zip(m).zip(x) {
            *o = (m - x) * g2k;
        }
    }

    /// `pub fn $name(args) -> ret` dispatching to AVX-512 / AVX2 builds of `$body` where the CPU has them.
    macro_rules! dispatch {
        ($name:ident, $body:ident, ($($a:ident: $t:ty),*) $(-> $ret:ty)?) => {
            pub fn $name($($a: $t),*) $(-> $ret)? {
                #[cfg(target_arch = "x86_64")]
                {
                    #[target_feature(enable = "avx512f")]
                    unsafe fn avx512($($a: $t),*) $(-> $ret)? {
                        $body($($a),*)
                    }
                    #[target_feature(enable = "avx2")]
                    unsafe fn avx2($($a: $t),*) $(-> $ret)? {
                        $body($($a),*)
                    }
                    if std::arch::is_x86_feature_detected!("avx512f") {
                        // SAFETY: the CPU supports AVX-512F (checked just above).
                        return unsafe { avx512($($a),*) };
                    }
                    if std::arch::is_x86_feature_detected!("avx2") {
                        // SAFETY: the CPU supports AVX2 (checked just above).
                        return unsafe { avx2($($a),*) };
                    }
                }
                $body($($a),*)
            }
        };
    }

    dispatch!(bernoulli_row, bernoulli_row_body, (l: &[f32], x: &[f32]) -> f32);
    dispatch!(gaussian_row, gaussian_row_body, (m: &[f32], x: &[f32], k: f32, c: f32) -> f32);
    dispatch!(bernoulli_grad_row, bernoulli_grad_row_body, (o: &mut [f32], l: &[f32], x: &[f32], g: f32));
    dispatch!(gaussian_grad_row, gaussian_grad_row_body, (o: &mut [f32], m: &[f32], x: &[f32], g2k: f32));

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn exp_and_log1p_match_std() {
            for i in 0..=20_000 {
                let x = -(i as f32) * 0.005; // 0 … −100
                let (got, want) = (exp_neg(x), x.exp());
                let tol = 2e-7 * want + if x < -87.0 { 2e-38 } else { 0.0 };
                assert!((got - want).abs() <= tol, "exp({x}) = {got} vs {want}");
            }
            for i in 0..=10_000 {
                let e = i as f32 * 1e-4;
                let (got, want) = (log1p_unit(e), e.ln_1p());
                assert!(
                    (got - want).abs() <= 4e-7 * want,
                    "log1p({e}) = {got} vs {want}"
                );
            }
            assert_eq!(sigmoid(200.0), 1.0);
            assert!(sigmoid(-200.0) < 1e-37);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn both_forms_read_and_a_bare_gaussian_is_told_the_forms() {
        let g: Likelihood = ron::from_str("Gaussian(std: 0.5)").unwrap();
        assert!(matches!(g, Likelihood::Gaussian { std } if std == 0.5));
        assert!(matches!(
            ron::from_str::<Likelihood>("Bernoulli").unwrap(),
            Likelihood::Bernoulli
        ));
        let e = ron::from_str::<Likelihood>("Gaussian")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("Gaussian(std: 0.1)") && e.contains("Bernoulli"),
            "{e}"
        );
        let e = ron::from_str::<Likelihood>("Gaussian(sdt: 0.5)")
            .unwrap_err()
            .to_string();
        assert!(e.contains("sdt"), "{e}");
        let e = serde_json::from_str::<Likelihood>("\"Gaussian\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("Gaussian(std: 0.1)"), "{e}");
        let l: Likelihood = ron::from_str("LearnedGaussian(init_logvar: -10.0)").unwrap();
        assert_eq!(l.learned_logvar_init(), Some(-10.0));
        let e = ron::from_str::<Likelihood>("LearnedGaussian(init: 1.0)")
            .unwrap_err()
            .to_string();
        assert!(e.contains("init"), "{e}");
        let json = serde_json::to_string(&Likelihood::Gaussian { std: 0.25 }).unwrap();
        assert!(
            matches!(serde_json::from_str(&json).unwrap(), Likelihood::Gaussian { std } if std == 0.25)
        );
    }

    #[test]
    fn learned_gaussian_nll_sums_or_averages_the_closed_form() {
        let d = &Device::Cpu;
        let m = Tensor::new(&[[0.5f32, -1.0, 2.0]], d).unwrap();
        let x = Tensor::new(&[[0.0f32, 1.0, 2.5]], d).unwrap();
        let s = -1.0f64;
        let lv = Tensor::new(&[s as f32], d).unwrap();
        let std = (s / 2.0).exp() + 1e-4;
        let per: Vec<f64> = [(0.5, 0.0), (-1.0, 1.0), (2.0, 2.5)]
            .iter()
            .map(|(m, x): &(f64, f64)| 0.5 * ((m - x) / std).powi(2) + HALF_LOG_2PI + std.ln())
            .collect();
        let sum: f64 = per.iter().sum();
        for (r, want) in [(Reduction::Sum, sum), (Reduction::Mean, sum / 3.0)] {
            let got = learned_gaussian_nll(&x, &m, &lv, r)
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()[0];
            assert!(
                (got as f64 - want).abs() < 1e-4 * want.abs(),
                "{r:?}: {got} vs {want}"
            );
        }
        assert!(Likelihood::LearnedGaussian { init_logvar: s }
            .nll(&x, &m)
            .is_err());
    }

    #[test]
    fn bernoulli_nll_matches_definition() {
        let d = &Device::Cpu;
        let l = Tensor::new(&[[2.0f32, -3.0, 0.0]], d).unwrap();
        let x = Tensor::new(&[[1.0f32, 0.25, 0.0]], d).unwrap();
        let sp = |v: f32| (1.0 + v.exp()).ln();
        let expect = (sp(2.0) - 2.0) + (sp(-3.0) - 0.25 * -3.0) + sp(0.0);
        for nll in [
            Likelihood::Bernoulli.nll(&x, &l).unwrap(),
            Likelihood::Bernoulli.nll_ops(&x, &l).unwrap(),
        ] {
            let got = nll.to_vec1::<f32>().unwrap()[0];
            assert!((got - expect).abs() < 1e-5, "{got} vs {expect}");
        }
    }

    fn assert_close(a: &Tensor, b: &Tensor, rel: f32, what: &str) {
        assert_eq!(a.dims(), b.dims(), "{what}");
        let a = a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let b = b.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-3);
        for (i, (a, b)) in a.iter().zip(&b).enumerate() {
            assert!(
                (a - b).abs() <= rel * scale,
                "{what}[{i}]: {a} vs {b} (scale {scale})"
            );
        }
    }

    /// The fused op against the tensor-op chain: values, and gradients through candle's backprop
    /// with respect to the params and (when it is a variable) to x, for shapes with a ragged
    /// lane tail, a large-logit range, and per-sample output weights.
    fn check_fused(lik: &Likelihood, x_is_var: bool) {
        let d = &Device::Cpu;
        for shape in [&[5usize, 3, 7, 9][..], &[4, 2, 16], &[3, 1], &[6]] {
            let b = shape[0];
            let l0 = (Tensor::randn(0f32, 1f32, shape, d).unwrap() * 8.0).unwrap();
            let x0 = Tensor::rand(0f32, 1f32, shape, d).unwrap();
            let w = Tensor::rand(0.5f32, 2f32, b, d).unwrap();
            let run = |fused: bool| {
                let l = Var::from_tensor(&l0).unwrap();
                let x = Var::from_tensor(&x0).unwrap();
                let xt = if x_is_var {
                    x.as_tensor().clone()
                } else {
                    x0.clone()
                };
                let nll = if fused {
                    lik.nll(&xt, l.as_tensor()).unwrap()
                } else {
                    lik.nll_ops(&xt, l.as_tensor()).unwrap()
                };
                let loss = (&nll * &w).unwrap().sum_all().unwrap();
                let grads = loss.backward().unwrap();
                let gl = grads.get(l.as_tensor()).unwrap().clone();
                let gx = grads.get(x.as_tensor()).cloned();
                (nll, gl, gx)
            };
            let (nf, glf, gxf) = run(true);
            let (nr, glr, gxr) = run(false);
            assert_close(&nf, &nr, 1e-5, "nll");
            assert_close(&glf, &glr, 1e-5, "grad params");
            assert_eq!(gxf.is_some(), x_is_var);
            assert_eq!(gxr.is_some(), x_is_var);
            if let (Some(a), Some(b)) = (gxf, gxr) {
                assert_close(&a, &b, 1e-5, "grad x");
            }
        }
    }

    #[test]
    fn fused_bernoulli_matches_tensor_ops() {
        check_fused(&Likelihood::Bernoulli, false);
        check_fused(&Likelihood::Bernoulli, true);
    }

    #[test]
    fn fused_gaussian_matches_tensor_ops() {
        for std in [0.1, 1.0, 3.0] {
            check_fused(&Likelihood::Gaussian { std }, false);
            check_fused(&Likelihood::Gaussian { std }, true);
        }
    }

    #[test]
    fn strided_and_other_dtypes_fall_back_or_copy() {
        let d = &Device::Cpu;
        let l = Tensor::randn(0f32, 3f32, (6, 4), d).unwrap();
        let x = Tensor::rand(0f32, 1f32, (4, 6), d).unwrap();
        // A transposed (strided) view goes through the fused op after a copy.
        let lt = l.t().unwrap();
        let a = Likelihood::Bernoulli.nll(&x, &lt).unwrap();
        let b = Likelihood::Bernoulli.nll_ops(&x, &lt).unwrap();
        assert_close(&a, &b, 1e-5, "strided");
        // f64 uses the tensor ops.
        let a = Likelihood::Bernoulli
            .nll(
                &x.to_dtype(DType::F64).unwrap(),
                &lt.to_dtype(DType::F64).unwrap(),
            )
            .unwrap();
        assert_eq!(a.dtype(), DType::F64);
        assert_close(&a.to_dtype(DType::F32).unwrap(), &b, 1e-5, "f64");
    }
}

//! AdamW with decoupled weight decay (PyTorch semantics), fused on the CPU.
//!
//! Per step `t` (counted from 1), for every parameter `p` that has a gradient `g`:
//!
//! ```text
//! p  = p * (1 - lr * weight_decay)
//! m  = beta1 * m + (1 - beta1) * g
//! v  = beta2 * v + (1 - beta2) * g * g
//! p  = p - (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
//! ```
//!
//! which is exactly the operation order of `torch.optim.AdamW` (non-amsgrad, non-foreach).
//!
//! Two implementations, chosen per parameter when the optimizer is built:
//! - **fused** (CPU, f32, contiguous parameter): the moments live in host `Vec<f32>`s owned by
//!   the optimizer and one in-place custom op ([`candle_core::InplaceOp2`]) walks the parameter
//!   storage, the gradient and both moments once, split over rayon's pool for large tensors.
//!   The tensor-op chain below needs ~10 full passes plus ~8 temporary allocations per
//!   parameter, which for the 33M-float pendulum-MLP weight dominates a training step.
//! - **tensor ops** (any device / dtype; used for CUDA): the moments are tensors on the
//!   parameter's device and the update is a chain of candle ops followed by `Var::set`. It is
//!   also the reference the fused path is tested against (the two agree bit for bit on the CPU,
//!   as both evaluate the same f32 operations in the same order).
//!
//! Unlike PyTorch, which keeps one step counter per parameter, the bias corrections use one
//! step counter for the whole optimizer (`step_count`); parameters without a gradient in a step
//! keep their moments untouched but still see the shared counter advance.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

use candle_core::backprop::GradStore;
use candle_core::{CpuStorage, DType, Device, InplaceOp2, Layout, Tensor, Var};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Name of the step counter in [`AdamW::state`].
const STEP_KEY: &str = "__step";

/// Hyper-parameters of [`AdamW`]. `weight_decay = 0` gives plain Adam.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdamConfig {
    /// Learning rate.
    #[serde(default = "default_lr")]
    pub lr: f64,
    /// Exponential decay of the first moment.
    #[serde(default = "default_beta1")]
    pub beta1: f64,
    /// Exponential decay of the second moment.
    #[serde(default = "default_beta2")]
    pub beta2: f64,
    /// Added to the bias-corrected root second moment.
    #[serde(default = "default_eps")]
    pub eps: f64,
    /// Decoupled weight decay (`p -= lr * weight_decay * p` before the Adam update).
    #[serde(default)]
    pub weight_decay: f64,
}

fn default_lr() -> f64 {
    1e-3
}
fn default_beta1() -> f64 {
    0.9
}
fn default_beta2() -> f64 {
    0.999
}
fn default_eps() -> f64 {
    1e-8
}

impl Default for AdamConfig {
    fn default() -> Self {
        Self {
            lr: default_lr(),
            beta1: default_beta1(),
            beta2: default_beta2(),
            eps: default_eps(),
            weight_decay: 0.0,
        }
    }
}

impl AdamConfig {
    fn validate(&self) -> Result<()> {
        let bad = |what: &str, v: f64| Err(Error::msg(format!("AdamW: {what} (got {v})")));
        if !(self.lr.is_finite() && self.lr >= 0.0) {
            return bad("lr must be finite and >= 0", self.lr);
        }
        if !(0.0..1.0).contains(&self.beta1) {
            return bad("beta1 must be in [0, 1)", self.beta1);
        }
        if !(0.0..1.0).contains(&self.beta2) {
            return bad("beta2 must be in [0, 1)", self.beta2);
        }
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return bad("eps must be finite and > 0", self.eps);
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return bad("weight_decay must be finite and >= 0", self.weight_decay);
        }
        Ok(())
    }
}

/// Which implementation [`AdamW`] uses for its parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AdamBackend {
    /// Fused for contiguous f32 CPU parameters, tensor ops for everything else.
    #[default]
    Auto,
    /// Fused for every parameter; building fails if one is not a contiguous f32 CPU tensor.
    Fused,
    /// Tensor ops for every parameter (the reference implementation).
    TensorOps,
}

enum Moments {
    /// Fused CPU path: flat, contiguous host buffers in the parameter's element order.
    Host { m: Vec<f32>, v: Vec<f32> },
    /// Tensor-op path: tensors on the parameter's device, same dtype and shape.
    Tensor { m: Tensor, v: Tensor },
}

struct Param {
    name: String,
    var: Var,
    moments: Moments,
}

/// AdamW (Adam when `weight_decay = 0`) over a fixed set of named variables.
pub struct AdamW {
    cfg: AdamConfig,
    params: Vec<Param>,
    step: u64,
}

impl std::fmt::Debug for AdamW {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let fused = self
            .params
            .iter()
            .filter(|p| matches!(p.moments, Moments::Host { .. }))
            .count();
        f.debug_struct("AdamW")
            .field("cfg", &self.cfg)
            .field("params", &self.params.len())
            .field("fused", &fused)
            .field("step", &self.step)
            .finish()
    }
}

/// Whether the fused CPU kernel can update this variable in place.
fn fusable(var: &Var) -> bool {
    var.device().is_cpu()
        && var.dtype() == DType::F32
        && var.as_tensor().layout().contiguous_offsets().is_some()
}

impl AdamW {
    /// Builds the optimizer with [`AdamBackend::Auto`]. `vars` are `(name, var)` pairs, the names
    /// being the `VarMap` paths; they key the moments in [`AdamW::state`].
    pub fn new(vars: Vec<(String, Var)>, cfg: AdamConfig) -> Result<Self> {
        Self::with_backend(vars, cfg, AdamBackend::Auto)
    }

    /// Builds the optimizer with an explicit implementation choice (tests and benchmarks).
    pub fn with_backend(
        vars: Vec<(String, Var)>,
        cfg: AdamConfig,
        backend: AdamBackend,
    ) -> Result<Self> {
        cfg.validate()?;
        let mut seen = HashSet::new();
        let mut params = Vec::with_capacity(vars.len());
        for (name, var) in vars {
            if name == STEP_KEY {
                return Err(Error::msg(format!(
                    "AdamW: `{STEP_KEY}` is reserved and cannot name a variable"
                )));
            }
            if !seen.insert(name.clone()) {
                return Err(Error::msg(format!(
                    "AdamW: variable `{name}` is listed twice"
                )));
            }
            if !var.dtype().is_float() {
                return Err(Error::msg(format!(
                    "AdamW: variable `{name}` has dtype {:?}; only floating-point variables can be optimized",
                    var.dtype()
                )));
            }
            let fused = match backend {
                AdamBackend::Auto => fusable(&var),
                AdamBackend::TensorOps => false,
                AdamBackend::Fused => {
                    if !fusable(&var) {
                        return Err(Error::msg(format!(
                            "AdamW: the fused backend needs a contiguous f32 CPU variable, but `{name}` is {:?} on {:?}",
                            var.dtype(),
                            var.device().location()
                        )));
                    }
                    true
                }
            };
            let moments = if fused {
                let n = var.elem_count();
                Moments::Host {
                    m: vec![0f32; n],
                    v: vec![0f32; n],
                }
            } else {
                Moments::Tensor {
                    m: var.as_tensor().zeros_like()?.detach(),
                    v: var.as_tensor().zeros_like()?.detach(),
                }
            };
            params.push(Param { name, var, moments });
        }
        Ok(Self {
            cfg,
            params,
            step: 0,
        })
    }

    pub fn set_lr(&mut self, lr: f64) {
        self.cfg.lr = lr;
    }

    pub fn lr(&self) -> f64 {
        self.cfg.lr
    }

    pub fn config(&self) -> &AdamConfig {
        &self.cfg
    }

    /// Number of `step` calls so far (restored by [`AdamW::load_state`]).
    pub fn step_count(&self) -> u64 {
        self.step
    }

    /// One optimizer step. Variables without a gradient in `grads` are skipped: neither the
    /// variable nor its moments change.
    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        self.step += 1;
        let k = Coeffs::new(&self.cfg, self.step);
        for p in self.params.iter_mut() {
            let Some(grad) = grads.get(p.var.as_tensor()) else {
                continue;
            };
            if grad.dims() != p.var.dims() {
                return Err(Error::Shape {
                    context: format!("AdamW gradient of `{}`", p.name),
                    expected: format!("{:?}", p.var.dims()),
                    got: format!("{:?}", grad.dims()),
                });
            }
            crate::flops::add(crate::flops::ADAMW_FLOPS_PER_PARAM * grad.elem_count() as f64);
            match &mut p.moments {
                Moments::Host { m, v } => fused_step(&p.var, grad, m, v, &k)?,
                Moments::Tensor { m, v } => tensor_step(&p.var, grad, m, v, &k)?,
            }
        }
        Ok(())
    }

    /// The optimizer state as named tensors: `"<name>.m"` and `"<name>.v"` for every variable
    /// (same shape as the variable) and `"__step"` (a one-element i64 tensor).
    pub fn state(&self) -> Result<HashMap<String, Tensor>> {
        let mut out = HashMap::with_capacity(2 * self.params.len() + 1);
        for p in &self.params {
            let (m, v) = match &p.moments {
                Moments::Host { m, v } => (
                    Tensor::from_slice(m, p.var.shape(), &Device::Cpu)?,
                    Tensor::from_slice(v, p.var.shape(), &Device::Cpu)?,
                ),
                Moments::Tensor { m, v } => (m.clone(), v.clone()),
            };
            out.insert(format!("{}.m", p.name), m);
            out.insert(format!("{}.v", p.name), v);
        }
        let step = i64::try_from(self.step).map_err(|_| Error::msg("AdamW: step overflow"))?;
        out.insert(STEP_KEY.to_string(), Tensor::new(&[step], &Device::Cpu)?);
        Ok(out)
    }

    /// Restores a state produced by [`AdamW::state`] (possibly after a save/load round trip,
    /// which may change device or dtype). Every variable needs both moments with its exact
    /// shape; nothing is modified unless the whole state is valid. Extra entries are ignored.
    pub fn load_state(&mut self, state: &HashMap<String, Tensor>) -> Result<()> {
        let step = read_step(state)?;
        let get = |key: &str, var: &Var| -> Result<&Tensor> {
            let t = state.get(key).ok_or_else(|| {
                Error::msg(format!(
                    "optimizer state has no entry `{key}`; was the checkpoint written for a model with different parameters?"
                ))
            })?;
            if t.dims() != var.dims() {
                return Err(Error::Shape {
                    context: format!("optimizer state `{key}`"),
                    expected: format!("{:?}", var.dims()),
                    got: format!("{:?}", t.dims()),
                });
            }
            Ok(t)
        };
        let mut loaded = Vec::with_capacity(self.params.len());
        for p in &self.params {
            let m = get(&format!("{}.m", p.name), &p.var)?;
            let v = get(&format!("{}.v", p.name), &p.var)?;
            let moments = match &p.moments {
                Moments::Host { .. } => Moments::Host {
                    m: host_f32(m)?,
                    v: host_f32(v)?,
                },
                Moments::Tensor { .. } => Moments::Tensor {
                    m: on_var(m, &p.var)?,
                    v: on_var(v, &p.var)?,
                },
            };
            loaded.push(moments);
        }
        let known: HashSet<String> = self
            .params
            .iter()
            .flat_map(|p| [format!("{}.m", p.name), format!("{}.v", p.name)])
            .chain(std::iter::once(STEP_KEY.to_string()))
            .collect();
        let extra = state.keys().filter(|k| !known.contains(*k)).count();
        if extra > 0 {
            log::warn!("optimizer state has {extra} entries for unknown variables; ignored");
        }
        for (p, moments) in self.params.iter_mut().zip(loaded) {
            p.moments = moments;
        }
        self.step = step;
        Ok(())
    }
}

fn read_step(state: &HashMap<String, Tensor>) -> Result<u64> {
    let t = state
        .get(STEP_KEY)
        .ok_or_else(|| Error::msg(format!("optimizer state has no entry `{STEP_KEY}`")))?;
    if t.elem_count() != 1 {
        return Err(Error::Shape {
            context: format!("optimizer state `{STEP_KEY}`"),
            expected: "one element".into(),
            got: format!("{:?}", t.dims()),
        });
    }
    let t = t.flatten_all()?.to_device(&Device::Cpu)?;
    let step = match t.dtype() {
        DType::I64 => t.to_vec1::<i64>()?[0] as f64,
        DType::U32 => t.to_vec1::<u32>()?[0] as f64,
        _ => t.to_dtype(DType::F64)?.to_vec1::<f64>()?[0],
    };
    if !(step >= 0.0 && step.fract() == 0.0 && step < 2f64.powi(63)) {
        return Err(Error::msg(format!(
            "optimizer state `{STEP_KEY}` must be a non-negative integer, got {step}"
        )));
    }
    Ok(step as u64)
}

fn host_f32(t: &Tensor) -> Result<Vec<f32>> {
    Ok(t.to_device(&Device::Cpu)?
        .to_dtype(DType::F32)?
        .flatten_all()?
        .to_vec1::<f32>()?)
}

fn on_var(t: &Tensor, var: &Var) -> Result<Tensor> {
    Ok(t.to_device(var.device())?
        .to_dtype(var.dtype())?
        .contiguous()?
        .detach())
}

/// Per-step scalars, in f64; each path converts them to the element type once.
#[derive(Clone, Copy, Debug)]
struct Coeffs {
    /// `1 - lr * weight_decay`.
    decay: f64,
    beta1: f64,
    beta2: f64,
    /// `lr / (1 - beta1^t)`.
    step_size: f64,
    /// `1 / sqrt(1 - beta2^t)`.
    inv_bc2_sqrt: f64,
    eps: f64,
    weight_decay: bool,
}

impl Coeffs {
    fn new(cfg: &AdamConfig, t: u64) -> Self {
        let t = t.min(i32::MAX as u64) as i32;
        let bc1 = 1.0 - cfg.beta1.powi(t);
        let bc2 = 1.0 - cfg.beta2.powi(t);
        Self {
            decay: 1.0 - cfg.lr * cfg.weight_decay,
            beta1: cfg.beta1,
            beta2: cfg.beta2,
            step_size: cfg.lr / bc1,
            inv_bc2_sqrt: 1.0 / bc2.sqrt(),
            eps: cfg.eps,
            weight_decay: cfg.weight_decay != 0.0,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Tensor-op path (CUDA, non-f32, reference).

fn tensor_step(var: &Var, grad: &Tensor, m: &mut Tensor, v: &mut Tensor, k: &Coeffs) -> Result<()> {
    let grad = grad.to_dtype(var.dtype())?;
    let p = var.as_tensor();
    let p = if k.weight_decay {
        p.affine(k.decay, 0.0)?
    } else {
        p.detach()
    };
    let m_new = (m.affine(k.beta1, 0.0)? + grad.affine(1.0 - k.beta1, 0.0)?)?.detach();
    let v_new = (v.affine(k.beta2, 0.0)? + grad.sqr()?.affine(1.0 - k.beta2, 0.0)?)?.detach();
    let denom = v_new.sqrt()?.affine(k.inv_bc2_sqrt, k.eps)?;
    let update = m_new.affine(k.step_size, 0.0)?.div(&denom)?;
    let p_new = p.sub(&update)?;
    var.set(&p_new)?;
    *m = m_new;
    *v = v_new;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Fused CPU path.

/// The f32 coefficients of the fused kernel (the same `as f32` conversions candle's `affine`
/// applies, so both paths evaluate identical f32 expressions).
#[derive(Clone, Copy)]
struct Coeffs32 {
    decay: f32,
    beta1: f32,
    one_minus_beta1: f32,
    beta2: f32,
    one_minus_beta2: f32,
    step_size: f32,
    inv_bc2_sqrt: f32,
    eps: f32,
}

impl From<&Coeffs> for Coeffs32 {
    fn from(k: &Coeffs) -> Self {
        Self {
            // 1.0 exactly when there is no weight decay: `p * 1.0 == p` for every f32.
            decay: if k.weight_decay { k.decay as f32 } else { 1.0 },
            beta1: k.beta1 as f32,
            one_minus_beta1: (1.0 - k.beta1) as f32,
            beta2: k.beta2 as f32,
            one_minus_beta2: (1.0 - k.beta2) as f32,
            step_size: k.step_size as f32,
            inv_bc2_sqrt: k.inv_bc2_sqrt as f32,
            eps: k.eps as f32,
        }
    }
}

/// Elements per rayon task: 32K floats = 128 KiB per stream, 512 KiB over the four streams.
const CHUNK: usize = 1 << 15;
/// Below this many elements the whole tensor is one serial pass.
const PAR_MIN: usize = 2 * CHUNK;

/// The in-place op: `dst` is the parameter storage, the source is the gradient; the moments
/// are borrowed from the optimizer for the duration of the call.
struct FusedAdamW<'a> {
    k: Coeffs32,
    moments: RefCell<(&'a mut [f32], &'a mut [f32])>,
}

impl InplaceOp2 for FusedAdamW<'_> {
    fn name(&self) -> &'static str {
        "carve-fused-adamw"
    }

    fn cpu_fwd(
        &self,
        dst: &mut CpuStorage,
        dst_l: &Layout,
        src: &CpuStorage,
        src_l: &Layout,
    ) -> candle_core::Result<()> {
        let Some((p0, p1)) = dst_l.contiguous_offsets() else {
            candle_core::bail!("fused AdamW: the parameter is not contiguous")
        };
        let Some((g0, g1)) = src_l.contiguous_offsets() else {
            candle_core::bail!("fused AdamW: the gradient is not contiguous")
        };
        let p = match dst {
            CpuStorage::F32(d) => &mut d[p0..p1],
            _ => candle_core::bail!("fused AdamW: the parameter is not f32"),
        };
        let g = match src {
            CpuStorage::F32(d) => &d[g0..g1],
            _ => candle_core::bail!("fused AdamW: the gradient is not f32"),
        };
        let mut moments = self.moments.borrow_mut();
        let (m, v) = &mut *moments;
        if g.len() != p.len() || m.len() != p.len() || v.len() != p.len() {
            candle_core::bail!(
                "fused AdamW: length mismatch (param {}, grad {}, m {}, v {})",
                p.len(),
                g.len(),
                m.len(),
                v.len()
            )
        }
        update(&self.k, p, g, m, v);
        Ok(())
    }
}

fn fused_step(var: &Var, grad: &Tensor, m: &mut [f32], v: &mut [f32], k: &Coeffs) -> Result<()> {
    let grad = if grad.dtype() == DType::F32 {
        grad.clone()
    } else {
        grad.to_dtype(DType::F32)?
    };
    // Only copy a gradient that the kernel cannot walk linearly (e.g. a transposed view).
    let grad = if grad.layout().contiguous_offsets().is_some() {
        grad
    } else {
        grad.contiguous()?
    };
    let op = FusedAdamW {
        k: k.into(),
        moments: RefCell::new((m, v)),
    };
    var.as_tensor().inplace_op2(&grad, &op)?;
    Ok(())
}

/// Runs the kernel over the whole tensor, in parallel chunks when it is large.
fn update(k: &Coeffs32, p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
    if p.len() < PAR_MIN {
        kernel(k, p, g, m, v);
        return;
    }
    p.par_chunks_mut(CHUNK)
        .zip(g.par_chunks(CHUNK))
        .zip(m.par_chunks_mut(CHUNK))
        .zip(v.par_chunks_mut(CHUNK))
        .for_each(|(((p, g), m), v)| kernel(k, p, g, m, v));
}

/// Dispatches to an AVX2 build of the loop where available (8 lanes instead of SSE2's 4; no FMA,
/// so the results are the same as the scalar expression).
#[inline]
fn kernel(k: &Coeffs32, p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            unsafe { kernel_avx2(k, p, g, m, v) };
            return;
        }
    }
    kernel_body(k, p, g, m, v);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn kernel_avx2(k: &Coeffs32, p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
    kernel_body(k, p, g, m, v);
}

/// The fused update of one chunk, the same f32 operations in the same order as `tensor_step`.
#[inline(always)]
fn kernel_body(k: &Coeffs32, p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
    let k = *k;
    for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        let m_new = *m * k.beta1 + g * k.one_minus_beta1;
        let v_new = *v * k.beta2 + (g * g) * k.one_minus_beta2;
        let denom = v_new.sqrt() * k.inv_bc2_sqrt + k.eps;
        *p = *p * k.decay - (m_new * k.step_size) / denom;
        *m = m_new;
        *v = v_new;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rand_vars(dev: &Device) -> Result<Vec<(String, Var)>> {
        // Sizes: a large one to exercise the parallel split (with a ragged last chunk), a
        // matrix for the transposed-gradient case, and a small bias.
        let shapes: [&[usize]; 3] = [&[300, 250], &[17, 23], &[7]];
        let mut out = Vec::new();
        for (i, s) in shapes.iter().enumerate() {
            let t = Tensor::randn(0f32, 1f32, *s, dev)?;
            out.push((format!("layer{i}.weight"), Var::from_tensor(&t)?));
        }
        Ok(out)
    }

    /// A deep copy of the variables (fresh storage).
    fn clone_vars(vars: &[(String, Var)]) -> Result<Vec<(String, Var)>> {
        vars.iter()
            .map(|(n, v)| Ok((n.clone(), Var::from_tensor(&v.as_tensor().copy()?)?)))
            .collect()
    }

    fn grads_for(vars: &[(String, Var)], grads: &[Tensor]) -> GradStore {
        let mut store = GradStore::default();
        for ((_, v), g) in vars.iter().zip(grads) {
            store.insert(v.as_tensor(), g.clone());
        }
        store
    }

    /// Random gradients; the second one is a transposed (non-contiguous) view.
    fn rand_grads(vars: &[(String, Var)]) -> Result<Vec<Tensor>> {
        let mut out = Vec::new();
        for (i, (_, v)) in vars.iter().enumerate() {
            let g = if i == 1 {
                let (r, c) = v.as_tensor().dims2()?;
                let g = Tensor::randn(0f32, 1f32, (c, r), &Device::Cpu)?.t()?;
                assert!(!g.is_contiguous());
                g
            } else {
                Tensor::randn(0f32, 1f32, v.shape(), &Device::Cpu)?
            };
            out.push(g);
        }
        Ok(out)
    }

    fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    }

    fn compare(a: &[(String, Var)], b: &[(String, Var)]) -> f32 {
        a.iter()
            .zip(b)
            .map(|((_, x), (_, y))| max_abs_diff(x.as_tensor(), y.as_tensor()))
            .fold(0f32, f32::max)
    }

    fn fused_matches_reference(weight_decay: f64) -> Result<()> {
        let vars = rand_vars(&Device::Cpu)?;
        let ref_vars = clone_vars(&vars)?;
        let initial = clone_vars(&vars)?;
        let cfg = AdamConfig {
            lr: 1e-2,
            weight_decay,
            ..Default::default()
        };
        let mut fused = AdamW::with_backend(vars.clone(), cfg.clone(), AdamBackend::Fused)?;
        let mut reference = AdamW::with_backend(ref_vars.clone(), cfg, AdamBackend::TensorOps)?;
        assert!(fused
            .params
            .iter()
            .all(|p| matches!(p.moments, Moments::Host { .. })));
        for step in 0..20 {
            let g = rand_grads(&vars)?;
            fused.step(&grads_for(&vars, &g))?;
            reference.step(&grads_for(&ref_vars, &g))?;
            let d = compare(&vars, &ref_vars);
            assert!(
                d <= 1e-6,
                "step {step}: fused differs from reference by {d}"
            );
        }
        assert!(
            compare(&vars, &initial) > 0.1,
            "the parameters did not move"
        );
        // Moments agree too.
        let (sf, sr) = (fused.state()?, reference.state()?);
        for (k, t) in &sf {
            if k != STEP_KEY {
                let d = max_abs_diff(t, &sr[k]);
                assert!(d <= 1e-6, "{k}: {d}");
            }
        }
        Ok(())
    }

    #[test]
    fn fused_equals_tensor_ops_without_weight_decay() -> Result<()> {
        fused_matches_reference(0.0)
    }

    #[test]
    fn fused_equals_tensor_ops_with_weight_decay() -> Result<()> {
        fused_matches_reference(0.1)
    }

    #[test]
    fn auto_picks_fused_on_cpu_f32() -> Result<()> {
        let vars = rand_vars(&Device::Cpu)?;
        let f64_var = Var::from_tensor(&Tensor::zeros(3, DType::F64, &Device::Cpu)?)?;
        let mut all = vars;
        all.push(("double".into(), f64_var));
        let opt = AdamW::new(all, AdamConfig::default())?;
        let kinds: Vec<bool> = opt
            .params
            .iter()
            .map(|p| matches!(p.moments, Moments::Host { .. }))
            .collect();
        assert_eq!(kinds, vec![true, true, true, false]);
        Ok(())
    }

    #[test]
    fn state_round_trip_continues_identically() -> Result<()> {
        for backend in [AdamBackend::Fused, AdamBackend::TensorOps] {
            let vars = rand_vars(&Device::Cpu)?;
            let cfg = AdamConfig {
                lr: 3e-3,
                weight_decay: 0.01,
                ..Default::default()
            };
            let grads: Vec<Vec<Tensor>> =
                (0..10).map(|_| rand_grads(&vars)).collect::<Result<_>>()?;
            let mut a = AdamW::with_backend(vars.clone(), cfg.clone(), backend)?;
            for g in &grads[..5] {
                a.step(&grads_for(&vars, g))?;
            }
            let state = a.state()?;
            assert_eq!(state.len(), 2 * vars.len() + 1);
            assert_eq!(state["layer0.weight.m"].dims(), &[300, 250]);
            // A fresh optimizer over a copy of the parameters, restored from the state
            // (through the opposite backend's storage, to check the conversions).
            let b_vars = clone_vars(&vars)?;
            let other = match backend {
                AdamBackend::Fused => AdamBackend::TensorOps,
                _ => AdamBackend::Fused,
            };
            let mut b = AdamW::with_backend(b_vars.clone(), cfg.clone(), other)?;
            b.load_state(&state)?;
            assert_eq!(b.step_count(), 5);
            for g in &grads[5..] {
                a.step(&grads_for(&vars, g))?;
                b.step(&grads_for(&b_vars, g))?;
            }
            assert_eq!(a.step_count(), 10);
            assert_eq!(b.step_count(), 10);
            let d = compare(&vars, &b_vars);
            assert!(d <= 1e-6, "{backend:?}: resumed run differs by {d}");
        }
        Ok(())
    }

    #[test]
    fn load_state_reports_missing_and_mismatched_entries() -> Result<()> {
        let vars = rand_vars(&Device::Cpu)?;
        let mut opt = AdamW::new(vars.clone(), AdamConfig::default())?;
        let good = opt.state()?;

        let mut missing = good.clone();
        missing.remove("layer1.weight.v");
        let err = opt.load_state(&missing).unwrap_err().to_string();
        assert!(err.contains("layer1.weight.v"), "{err}");

        let mut wrong = good.clone();
        wrong.insert(
            "layer2.weight.m".into(),
            Tensor::zeros(8, DType::F32, &Device::Cpu)?,
        );
        let err = opt.load_state(&wrong).unwrap_err().to_string();
        assert!(
            err.contains("layer2.weight.m") && err.contains("[7]") && err.contains("[8]"),
            "{err}"
        );

        let mut no_step = good.clone();
        no_step.remove(STEP_KEY);
        let err = opt.load_state(&no_step).unwrap_err().to_string();
        assert!(err.contains(STEP_KEY), "{err}");

        // A failed load changes nothing.
        let g = rand_grads(&vars)?;
        opt.step(&grads_for(&vars, &g))?;
        let before = opt.state()?;
        assert!(opt.load_state(&wrong).is_err());
        let after = opt.state()?;
        assert_eq!(opt.step_count(), 1);
        assert_eq!(
            max_abs_diff(&before["layer0.weight.m"], &after["layer0.weight.m"]),
            0.0
        );
        Ok(())
    }

    #[test]
    fn var_without_grad_is_untouched() -> Result<()> {
        for backend in [AdamBackend::Fused, AdamBackend::TensorOps] {
            let vars = rand_vars(&Device::Cpu)?;
            let frozen_before = vars[2].1.as_tensor().copy()?;
            let mut opt = AdamW::with_backend(
                vars.clone(),
                AdamConfig {
                    weight_decay: 0.5,
                    ..Default::default()
                },
                backend,
            )?;
            for _ in 0..3 {
                let g = rand_grads(&vars)?;
                let mut store = GradStore::default();
                store.insert(vars[0].1.as_tensor(), g[0].clone());
                store.insert(vars[1].1.as_tensor(), g[1].clone());
                opt.step(&store)?;
            }
            assert_eq!(max_abs_diff(vars[2].1.as_tensor(), &frozen_before), 0.0);
            let st = opt.state()?;
            for k in ["layer2.weight.m", "layer2.weight.v"] {
                let s = st[k].abs()?.sum_all()?.to_scalar::<f32>()?;
                assert_eq!(s, 0.0, "{backend:?}: {k} was touched");
            }
            let s = st["layer0.weight.m"].abs()?.sum_all()?.to_scalar::<f32>()?;
            assert!(s > 0.0);
        }
        Ok(())
    }

    #[test]
    fn adam_converges_on_a_quadratic() -> Result<()> {
        // f(x) = sum((x - c)^2), through candle's autograd.
        let target = Tensor::new(&[3f32, -2.0, 0.5, 10.0], &Device::Cpu)?;
        for backend in [AdamBackend::Fused, AdamBackend::TensorOps] {
            let x = Var::zeros(4, DType::F32, &Device::Cpu)?;
            let mut opt = AdamW::with_backend(
                vec![("x".into(), x.clone())],
                AdamConfig {
                    lr: 0.1,
                    ..Default::default()
                },
                backend,
            )?;
            for _ in 0..2000 {
                let loss = x.as_tensor().sub(&target)?.sqr()?.sum_all()?;
                opt.step(&loss.backward()?)?;
            }
            let d = max_abs_diff(x.as_tensor(), &target);
            assert!(d < 1e-2, "{backend:?}: did not converge, off by {d}");
        }
        Ok(())
    }

    #[test]
    fn config_defaults_and_validation() {
        let cfg: AdamConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(cfg, AdamConfig::default());
        assert_eq!(cfg.lr, 1e-3);
        assert_eq!(cfg.beta2, 0.999);
        assert!(serde_json::from_str::<AdamConfig>(r#"{"betta1": 0.5}"#).is_err());
        let bad = AdamConfig {
            beta1: 1.0,
            ..Default::default()
        };
        let err = AdamW::new(vec![], bad).unwrap_err().to_string();
        assert!(err.contains("beta1"), "{err}");
    }

    #[test]
    fn lr_can_be_changed() -> Result<()> {
        let mut opt = AdamW::new(vec![], AdamConfig::default())?;
        opt.set_lr(0.5);
        assert_eq!(opt.lr(), 0.5);
        Ok(())
    }
}

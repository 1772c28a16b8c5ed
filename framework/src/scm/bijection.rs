//! Elementwise invertible maps f2 (docs/methods/dear.md): the nonlinearity DEAR applies after its linear SCM.
//! Every latent dimension has its own parameters; `forward` and `inverse` act on `[B, m]` batches with tensor
//! ops only (no per-element host loops), so they run on any device and are differentiable.

use crate::error::{Error, Result};
use crate::nn::{Init, Params};
use candle_core::{DType, Tensor, Var};
use serde::{Deserialize, Serialize};

/// Which f2 to build. RON: `Identity`, `Affine`, `MonotonePwl(knots: 100, lo: -5.0, hi: 5.0)`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum BijectionConfig {
    /// f(t) = t.
    Identity,
    /// DEAR `linscm` (the default of both published runs): f(t) = a·t + b per dimension, a, b ~ U(0, 1) at init.
    #[default]
    Affine,
    /// DEAR `nlrscm`: monotone piecewise-linear with `knots` knots evenly on [lo, hi] and linear extrapolation.
    MonotonePwl {
        #[serde(default = "default_knots")]
        knots: usize,
        #[serde(default = "default_lo")]
        lo: f64,
        #[serde(default = "default_hi")]
        hi: f64,
    },
}

fn default_knots() -> usize {
    100
}
fn default_lo() -> f64 {
    -5.0
}
fn default_hi() -> f64 {
    5.0
}

/// Added to every slope exp(p) so the map stays strictly increasing (DEAR's `to_positive`).
const MIN_SLOPE: f64 = 1e-3;

#[derive(Clone, Debug)]
enum Kind {
    Identity,
    /// `a`, `b`: `[m]`.
    Affine {
        a: Tensor,
        b: Tensor,
    },
    Pwl(Pwl),
}

/// Monotone piecewise-linear map, per dimension.
#[derive(Clone, Debug)]
struct Pwl {
    /// `[m, n + 1]` slope logits: slope k applies left of knot 0 for k = 0, between knots k − 1 and k for
    /// 0 < k < n, and right of the last knot for k = n.
    p: Tensor,
    /// `[m]`: the value at the first knot.
    b: Tensor,
    n: usize,
    lo: f64,
    spacing: f64,
}

/// A built f2 over `m` dimensions.
#[derive(Clone, Debug)]
pub struct Bijection {
    m: usize,
    kind: Kind,
}

/// `params.get(shape, name, init)` plus `shift` added once, when the parameter is created by this call:
/// [`Init`] has no shifted distributions, and DEAR draws a, b ~ U(0, 1) and the PWL offset ~ N(0, 1) − 5.
/// Storing the shifted value itself (rather than a fixed offset added in `forward`) keeps checkpoints readable
/// and weight decay pulling towards 0, as in PyTorch. An existing parameter (a store built twice, a loaded
/// checkpoint) is returned untouched.
fn get_shifted(
    params: &Params,
    shape: &[usize],
    name: &str,
    init: Init,
    shift: f64,
) -> Result<Tensor> {
    let count = || params.varmap().data().lock().map(|d| d.len()).unwrap_or(0);
    let before = count();
    let t = params.get(shape, name, init)?;
    if count() > before && t.elem_count() > 0 {
        // The returned tensor is the variable itself, so `Var::from_tensor` shares its storage.
        Var::from_tensor(&t)?.set(&(&t + shift)?)?;
    }
    Ok(t)
}

impl Bijection {
    /// Creates the parameters of `cfg` for `m` dimensions under `params` (`a`, `b` for Affine; `p`, `b` for
    /// MonotonePwl; none for Identity).
    pub fn new(params: &Params, m: usize, cfg: &BijectionConfig) -> Result<Self> {
        let kind = match *cfg {
            BijectionConfig::Identity => Kind::Identity,
            BijectionConfig::Affine => {
                let u = Init::Uniform { bound: 0.5 };
                Kind::Affine {
                    a: get_shifted(params, &[m], "a", u, 0.5)?,
                    b: get_shifted(params, &[m], "b", u, 0.5)?,
                }
            }
            BijectionConfig::MonotonePwl { knots, lo, hi } => {
                if knots < 2 {
                    return Err(Error::msg(format!(
                        "MonotonePwl: knots must be at least 2 (got {knots})"
                    )));
                }
                if !(lo.is_finite() && hi.is_finite() && lo < hi) {
                    return Err(Error::msg(format!(
                        "MonotonePwl: need finite lo < hi (got lo = {lo}, hi = {hi})"
                    )));
                }
                Kind::Pwl(Pwl {
                    p: params.get(&[m, knots + 1], "p", Init::Normal { std: 0.2 })?,
                    b: get_shifted(params, &[m], "b", Init::Normal { std: 1.0 }, lo)?,
                    n: knots,
                    lo,
                    spacing: (hi - lo) / (knots - 1) as f64,
                })
            }
        };
        Ok(Self { m, kind })
    }

    /// Number of dimensions.
    pub fn dim(&self) -> usize {
        self.m
    }

    fn check(&self, x: &Tensor, what: &str) -> Result<()> {
        match x.dims() {
            &[_, m] if m == self.m => Ok(()),
            d => Err(Error::Shape {
                context: format!("bijection {what}"),
                expected: format!("[B, {}]", self.m),
                got: format!("{d:?}"),
            }),
        }
    }

    /// t `[B, m]` → f(t) `[B, m]`.
    pub fn forward(&self, t: &Tensor) -> Result<Tensor> {
        self.check(t, "forward input")?;
        match &self.kind {
            Kind::Identity => Ok(t.clone()),
            Kind::Affine { a, b } => Ok(t.broadcast_mul(a)?.broadcast_add(b)?),
            Kind::Pwl(pwl) => pwl.forward(t),
        }
    }

    /// z `[B, m]` → f⁻¹(z) `[B, m]`.
    pub fn inverse(&self, z: &Tensor) -> Result<Tensor> {
        self.check(z, "inverse input")?;
        match &self.kind {
            Kind::Identity => Ok(z.clone()),
            Kind::Affine { a, b } => Ok(z.broadcast_sub(b)?.broadcast_div(a)?),
            Kind::Pwl(pwl) => pwl.inverse(z),
        }
    }
}

impl Pwl {
    fn forward(&self, t: &Tensor) -> Result<Tensor> {
        let tables = self.tables()?;
        let knots = Tensor::arange(0u32, self.n as u32, t.device())?
            .to_dtype(DType::F32)?
            .affine(self.spacing, self.lo)?
            .unsqueeze(0)?;
        // Segment of t: how many knots lie at or below it.
        let idx = count_ge(t, &knots)?;
        let (slope, offset, start) = self.lookup(&tables, &idx)?;
        Ok((((t - start)? * slope)? + offset)?)
    }

    fn inverse(&self, z: &Tensor) -> Result<Tensor> {
        let tables = self.tables()?;
        // Segment of z: how many knot values f(knot) lie at or below it (the map is increasing).
        let idx = count_ge(z, &tables.offsets.detach())?;
        let (slope, offset, start) = self.lookup(&tables, &idx)?;
        Ok((((z - offset)? / slope)? + start)?)
    }

    /// Slopes `[m, n + 1]` and knot values `[m, n]` for one call.
    fn tables(&self) -> Result<Tables> {
        let (m, n) = (self.b.dims1()?, self.n);
        let slopes = (self.p.exp()? + MIN_SLOPE)?;
        // f(knot j) = b + spacing · Σ_{l=1..j} slope_l. As in DEAR's code (`delta_h = ... .detach()`), the
        // cumulative rise is detached: a point's gradient reaches only its own segment's slope and the offset b,
        // not the slopes of the segments to its left.
        let rise = (slopes.narrow(1, 1, n - 1)?.detach() * self.spacing)?.cumsum(1)?;
        let rise = Tensor::cat(
            &[Tensor::zeros((m, 1), DType::F32, self.p.device())?, rise],
            1,
        )?;
        let offsets = rise.broadcast_add(&self.b.unsqueeze(1)?)?;
        Ok(Tables { slopes, offsets })
    }

    /// For segment indices `idx` `[B, m]` (f32 counts in 0..=n): the segment's slope, the value at its start
    /// knot and the start knot's position, each `[B, m]`. Left of the first knot (idx 0) the start knot is knot
    /// 0 and the slope the left extrapolation slope; right of the last (idx n) it is knot n − 1.
    fn lookup(&self, tables: &Tables, idx: &Tensor) -> Result<(Tensor, Tensor, Tensor)> {
        let (bsz, m) = idx.dims2()?;
        let n = self.n;
        let start = (idx - 1.0)?.clamp(0f32, (n - 1) as f32)?;
        // Row offsets into the flattened tables (small integers: exact in f32).
        let row = Tensor::arange(0u32, m as u32, idx.device())?
            .to_dtype(DType::F32)?
            .unsqueeze(0)?;
        let gather = |table: &Tensor, cols: usize, at: &Tensor| -> Result<Tensor> {
            let flat = at
                .broadcast_add(&(&row * cols as f64)?)?
                .to_dtype(DType::U32)?
                .flatten_all()?;
            Ok(table
                .flatten_all()?
                .index_select(&flat, 0)?
                .reshape((bsz, m))?)
        };
        let slope = gather(&tables.slopes, n + 1, idx)?;
        let offset = gather(&tables.offsets, n, &start)?;
        let start_pos = start.affine(self.spacing, self.lo)?;
        Ok((slope, offset, start_pos))
    }
}

struct Tables {
    slopes: Tensor,
    offsets: Tensor,
}

/// Σ_k [x_bd ≥ thresholds_dk] as f32 `[B, m]`, for thresholds `[1 or m, n]`.
fn count_ge(x: &Tensor, thresholds: &Tensor) -> Result<Tensor> {
    Ok(x.unsqueeze(2)?
        .broadcast_ge(&thresholds.unsqueeze(0)?)?
        .to_dtype(DType::F32)?
        .sum(2)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::method::named_vars;
    use crate::scm::test_support::max_abs_diff;
    use candle_core::Device;
    use candle_nn::VarMap;

    fn params(seed: u64) -> Params {
        Params::new(VarMap::new(), Device::Cpu, seed)
    }

    fn pwl() -> BijectionConfig {
        BijectionConfig::MonotonePwl {
            knots: 100,
            lo: -5.0,
            hi: 5.0,
        }
    }

    /// t `[N, m]` with every column sweeping [−8, 8].
    fn sweep(m: usize, steps: usize) -> Tensor {
        let col: Vec<f32> = (0..steps)
            .map(|i| -8.0 + 16.0 * i as f32 / (steps - 1) as f32)
            .collect();
        let data: Vec<f32> = col.iter().flat_map(|&v| vec![v; m]).collect();
        Tensor::from_vec(data, (steps, m), &Device::Cpu).unwrap()
    }

    fn var(p: &Params, name: &str) -> Var {
        named_vars(p.varmap())
            .into_iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no parameter {name}"))
            .1
    }

    #[test]
    fn inverse_undoes_forward_inside_and_outside_the_knots() {
        for seed in 0..5 {
            for cfg in [BijectionConfig::Identity, BijectionConfig::Affine, pwl()] {
                let f = Bijection::new(&params(seed), 3, &cfg).unwrap();
                let t = sweep(3, 1601);
                let back = f.inverse(&f.forward(&t).unwrap()).unwrap();
                let err = max_abs_diff(&back, &t);
                assert!(err < 1e-4, "{cfg:?} seed {seed}: max error {err}");
            }
        }
    }

    #[test]
    fn init_matches_dear() {
        let p = params(3);
        Bijection::new(&p.pp("aff"), 500, &BijectionConfig::Affine).unwrap();
        Bijection::new(&p.pp("pwl"), 500, &pwl()).unwrap();
        let vals = |n: &str| {
            var(&p, n)
                .as_tensor()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
        };
        let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len() as f32;
        for n in ["aff.a", "aff.b"] {
            let v = vals(n);
            assert!(
                v.iter().all(|&x| (0.0..1.0).contains(&x)),
                "{n} not in [0, 1)"
            );
            assert!((mean(&v) - 0.5).abs() < 0.05, "{n} mean {}", mean(&v));
        }
        assert!((mean(&vals("pwl.b")) + 5.0).abs() < 0.2);
        let sp = vals("pwl.p");
        let sd = (sp.iter().map(|x| x * x).sum::<f32>() / sp.len() as f32).sqrt();
        assert!((sd - 0.2).abs() < 0.01, "slope-logit std {sd}");
        // Built again from the same store: the existing parameters are returned, not shifted a second time.
        let before = vals("aff.a");
        Bijection::new(&p.pp("aff"), 500, &BijectionConfig::Affine).unwrap();
        assert_eq!(before, vals("aff.a"));
    }

    /// DEAR's InvertiblePWL.forward, one scalar at a time.
    fn reference_pwl(t: f32, p: &[f32], b: f32, n: usize, lo: f32, h: f32) -> f32 {
        let s = |k: usize| p[k].exp() + 1e-3;
        let idx = (0..n).filter(|&k| t - (lo + k as f32 * h) >= 0.0).count();
        let start = idx.saturating_sub(1);
        let bias = b + (1..=start).map(|l| h * s(l)).sum::<f32>();
        (t - (lo + start as f32 * h)) * s(idx) + bias
    }

    #[test]
    fn pwl_matches_the_reference_and_is_strictly_increasing() {
        let p = params(11);
        let f = Bijection::new(&p, 2, &pwl()).unwrap();
        let t = sweep(2, 3001);
        let y = f.forward(&t).unwrap().to_vec2::<f32>().unwrap();
        let tv = t.to_vec2::<f32>().unwrap();
        let pv = var(&p, "p").as_tensor().to_vec2::<f32>().unwrap();
        let bv = var(&p, "b").as_tensor().to_vec1::<f32>().unwrap();
        for d in 0..2 {
            for (row, trow) in y.iter().zip(&tv) {
                let r = reference_pwl(trow[d], &pv[d], bv[d], 100, -5.0, 10.0 / 99.0);
                assert!(
                    (row[d] - r).abs() < 1e-4,
                    "dim {d} t {}: {} vs {r}",
                    trow[d],
                    row[d]
                );
            }
            for w in y.windows(2) {
                assert!(w[1][d] > w[0][d], "not strictly increasing in dim {d}");
            }
        }
    }

    #[test]
    fn gradient_reaches_the_active_slope_and_the_offset_only() {
        let p = params(5);
        let f = Bijection::new(&p, 2, &pwl()).unwrap();
        // Dim 0 sits in segment 50 (between knots 49 and 50); dim 1 lies right of the last knot.
        let t = Tensor::new(&[[-5.0f32 + 49.5 * 10.0 / 99.0, 7.0]], &Device::Cpu).unwrap();
        let t = Var::from_tensor(&t).unwrap();
        let grads = f
            .forward(t.as_tensor())
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let gp = grads
            .get(var(&p, "p").as_tensor())
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        let gb = grads
            .get(var(&p, "b").as_tensor())
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let nonzero = |row: &[f32]| {
            (0..row.len())
                .filter(|&k| row[k] != 0.0)
                .collect::<Vec<_>>()
        };
        assert_eq!(nonzero(&gp[0]), vec![50]);
        assert_eq!(nonzero(&gp[1]), vec![100]);
        assert_eq!(gb, vec![1.0, 1.0]);
        // ... and the input gets the local slope.
        let gt = grads.get(t.as_tensor()).unwrap().to_vec2::<f32>().unwrap();
        assert!(gt[0].iter().all(|&g| g > 1e-3));
    }

    #[test]
    fn affine_gradients_and_inverse_gradients_flow() {
        let p = params(2);
        let f = Bijection::new(&p, 3, &BijectionConfig::Affine).unwrap();
        let t = sweep(3, 7);
        let loss = f.inverse(&f.forward(&t).unwrap().sqr().unwrap()).unwrap();
        let grads = loss.sum_all().unwrap().backward().unwrap();
        for n in ["a", "b"] {
            let g = grads.get(var(&p, n).as_tensor()).unwrap();
            assert!(
                g.abs()
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap()
                    > 0.0
            );
        }
        let f = Bijection::new(&p.pp("pwl"), 3, &pwl()).unwrap();
        let grads = f
            .inverse(&t)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        assert!(grads.get(var(&p, "pwl.p").as_tensor()).is_some());
        assert!(grads.get(var(&p, "pwl.b").as_tensor()).is_some());
    }

    #[test]
    fn bad_configs_and_shapes_are_errors() {
        let bad = BijectionConfig::MonotonePwl {
            knots: 1,
            lo: -5.0,
            hi: 5.0,
        };
        let e = Bijection::new(&params(0), 2, &bad).unwrap_err().to_string();
        assert!(e.contains("knots must be at least 2"), "{e}");
        let bad = BijectionConfig::MonotonePwl {
            knots: 10,
            lo: 1.0,
            hi: 1.0,
        };
        assert!(Bijection::new(&params(0), 2, &bad).is_err());
        let f = Bijection::new(&params(0), 2, &pwl()).unwrap();
        let e = f.forward(&sweep(3, 4)).unwrap_err().to_string();
        assert!(e.contains("expected [B, 2]"), "{e}");
        assert!(f
            .inverse(&Tensor::zeros(4, DType::F32, &Device::Cpu).unwrap())
            .is_err());
    }

    #[test]
    fn config_reads_from_ron_with_defaults() {
        let c: BijectionConfig = ron::from_str("MonotonePwl()").unwrap();
        assert_eq!(c, pwl());
        let c: BijectionConfig = ron::from_str("MonotonePwl(knots: 10)").unwrap();
        assert_eq!(
            c,
            BijectionConfig::MonotonePwl {
                knots: 10,
                lo: -5.0,
                hi: 5.0
            }
        );
        assert_eq!(
            ron::from_str::<BijectionConfig>("Affine").unwrap(),
            BijectionConfig::Affine
        );
        assert!(ron::from_str::<BijectionConfig>("MonotonePwl(knot: 10)").is_err());
    }
}

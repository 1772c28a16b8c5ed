//! A learned binary edge mask relaxed with the Gumbel-sigmoid (binary concrete) distribution, as in the
//! mechanism-sparsity code (`gumbel_masks.py`, docs/methods/sparsity.md).
//!
//! Each edge (i, j) has a logit α_ij; P(edge) = σ(α_ij). A sample is m = σ((α + L)/τ) with logistic noise
//! L = ln u − ln(1 − u), u ~ U(0, 1). The noise is drawn on the host with the run's [`Rng`], like every
//! other draw in the framework, so CPU and GPU runs see the same masks.

use super::Params;
use crate::error::{Error, Result};
use crate::rng::Rng;
use candle_core::Tensor;
use serde::{Deserialize, Serialize};

/// Keeps ln u and ln(1 − u) finite: |L| ≤ ln(10⁶) ≈ 13.8.
const U_EPS: f64 = 1e-6;

/// Settings of a [`GumbelMask`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GumbelMaskConfig {
    /// Initial logit of every edge; 5 gives P(edge) = σ(5) ≈ 0.993 (all edges present at the start).
    pub init_logit: f64,
    /// Temperature τ > 0 of the relaxation.
    pub tau: f64,
    /// Straight-through samples: forward 1[m > 0.5], gradient of the soft m.
    pub hard: bool,
}

impl Default for GumbelMaskConfig {
    fn default() -> Self {
        Self {
            init_logit: 5.0,
            tau: 1.0,
            hard: false,
        }
    }
}

impl GumbelMaskConfig {
    /// Rejects a non-positive or non-finite τ and a non-finite initial logit.
    pub fn validate(&self) -> Result<()> {
        let bad = |message: String| {
            Err(Error::Config {
                location: "gumbel mask".into(),
                message,
            })
        };
        if !(self.tau.is_finite() && self.tau > 0.0) {
            return bad(format!("tau must be finite and > 0 (got {})", self.tau));
        }
        if !self.init_logit.is_finite() {
            return bad(format!(
                "init_logit must be finite (got {})",
                self.init_logit
            ));
        }
        Ok(())
    }
}

/// A `[rows, cols]` matrix of edge logits with Gumbel-sigmoid sampling.
#[derive(Clone, Debug)]
pub struct GumbelMask {
    logits: Tensor,
    cfg: GumbelMaskConfig,
}

impl GumbelMask {
    /// Creates (or, when it already exists, reuses) the trainable parameter `logits` `[rows, cols]` under `p`,
    /// initialised to `cfg.init_logit`.
    pub fn new(p: &Params, rows: usize, cols: usize, cfg: GumbelMaskConfig) -> Result<Self> {
        cfg.validate()?;
        let values = vec![cfg.init_logit as f32; rows * cols];
        let logits = p.get_with_values(&[rows, cols], "logits", values)?;
        Ok(Self { logits, cfg })
    }

    pub fn config(&self) -> &GumbelMaskConfig {
        &self.cfg
    }

    /// The trainable logits α, `[rows, cols]`.
    pub fn logits(&self) -> &Tensor {
        &self.logits
    }

    /// `(rows, cols)`.
    pub fn shape(&self) -> (usize, usize) {
        let d = self.logits.dims();
        (d[0], d[1])
    }

    /// One mask sample `[rows, cols]`, differentiable in the logits. The caller draws once per minibatch and
    /// shares it across examples (as the reference code). Soft values lie in [0, 1] (strictly inside up to f32
    /// rounding at large |α|); hard values are exactly 0 or 1.
    pub fn sample(&self, rng: &mut Rng) -> Result<Tensor> {
        let (rows, cols) = self.shape();
        let n = rows * cols;
        let noise: Vec<f32> = rng
            .uniform_vec(n, 0.0, 1.0)
            .into_iter()
            .map(|u| {
                let u = (u as f64).clamp(U_EPS, 1.0 - U_EPS);
                (u.ln() - (1.0 - u).ln()) as f32
            })
            .collect();
        let noise = Tensor::from_vec(noise, (rows, cols), self.logits.device())?
            .to_dtype(self.logits.dtype())?;
        let soft =
            candle_nn::ops::sigmoid(&(&self.logits + noise)?.affine(1.0 / self.cfg.tau, 0.0)?)?;
        if !self.cfg.hard {
            return Ok(soft);
        }
        let hard = soft.gt(0.5)?.to_dtype(soft.dtype())?;
        // Straight-through: the value is `hard` exactly ((h − s) + s rounds back to h for s in (0, 1)),
        // the gradient is that of `soft`.
        Ok(((hard - soft.detach())? + soft)?)
    }

    /// Edge probabilities σ(α), `[rows, cols]`.
    pub fn probs(&self) -> Result<Tensor> {
        Ok(candle_nn::ops::sigmoid(&self.logits)?)
    }

    /// E[|G|] = Σ σ(α) as a differentiable scalar: the sparsity penalty / constraint function.
    pub fn expected_edges(&self) -> Result<Tensor> {
        Ok(self.probs()?.sum_all()?)
    }

    /// The evaluation mask: 1[σ(α) > 0.5] as a 0/1 tensor of the logits' dtype (not differentiable). This is
    /// the graph the paper scores (SHD); use [`GumbelMask::probs`] for the edge probabilities instead.
    pub fn deterministic(&self) -> Result<Tensor> {
        Ok(self.logits.gt(0.0)?.to_dtype(self.logits.dtype())?)
    }

    /// The learned graph 1[σ(α) > 0.5] (equivalently α > 0, which avoids f32 rounding of σ near 0.5),
    /// `graph[i][j]` for row i, column j.
    pub fn graph(&self) -> Result<Vec<Vec<bool>>> {
        let g = self.logits.gt(0.0)?.to_vec2::<u8>()?;
        Ok(g.into_iter()
            .map(|row| row.into_iter().map(|v| v != 0).collect())
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use candle_nn::VarMap;

    fn mask(rows: usize, cols: usize, cfg: GumbelMaskConfig) -> GumbelMask {
        let p = Params::new(VarMap::new(), Device::Cpu, 0);
        GumbelMask::new(&p.pp("mask"), rows, cols, cfg).unwrap()
    }

    fn values(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    }

    fn sigmoid(x: f64) -> f64 {
        1.0 / (1.0 + (-x).exp())
    }

    #[test]
    fn shapes_and_parameter_name() {
        let p = Params::new(VarMap::new(), Device::Cpu, 0);
        let m = GumbelMask::new(&p.pp("g_z"), 3, 4, GumbelMaskConfig::default()).unwrap();
        assert!(p.varmap().data().lock().unwrap().contains_key("g_z.logits"));
        let mut rng = Rng::new(1);
        assert_eq!(m.shape(), (3, 4));
        assert_eq!(m.sample(&mut rng).unwrap().dims(), &[3, 4]);
        assert_eq!(m.probs().unwrap().dims(), &[3, 4]);
        assert_eq!(m.deterministic().unwrap().dims(), &[3, 4]);
        assert_eq!(m.expected_edges().unwrap().dims(), &[] as &[usize]);
        let g = m.graph().unwrap();
        assert_eq!((g.len(), g[0].len()), (3, 4));
    }

    #[test]
    fn soft_samples_are_in_the_open_unit_interval_with_mean_one_half_at_zero_logit() {
        let cfg = GumbelMaskConfig {
            init_logit: 0.0,
            ..Default::default()
        };
        let m = mask(4, 5, cfg);
        let mut rng = Rng::new(3);
        let (mut sum, mut count) = (0.0f64, 0usize);
        for _ in 0..2000 {
            for v in values(&m.sample(&mut rng).unwrap()) {
                assert!(v > 0.0 && v < 1.0, "{v}");
                sum += v as f64;
                count += 1;
            }
        }
        // At α = 0, τ = 1 the sample is u itself: mean 1/2, standard error 0.29/√40000 ≈ 0.0014.
        let mean = sum / count as f64;
        assert!((mean - 0.5).abs() < 0.01, "{mean}");
    }

    #[test]
    fn hard_samples_are_binary_with_edge_frequency_sigma_alpha() {
        let cfg = GumbelMaskConfig {
            init_logit: 1.0,
            hard: true,
            ..Default::default()
        };
        let m = mask(4, 5, cfg);
        let mut rng = Rng::new(4);
        let (mut ones, mut count) = (0usize, 0usize);
        for _ in 0..2000 {
            for v in values(&m.sample(&mut rng).unwrap()) {
                assert!(v == 0.0 || v == 1.0, "{v}");
                ones += (v == 1.0) as usize;
                count += 1;
            }
        }
        // P(m_soft > 0.5) = P(L > −α) = σ(α).
        let freq = ones as f64 / count as f64;
        assert!((freq - sigmoid(1.0)).abs() < 0.01, "{freq}");
    }

    #[test]
    fn hard_samples_pass_the_soft_gradient_to_the_logits() {
        let base = GumbelMaskConfig {
            init_logit: 0.0,
            tau: 0.5,
            hard: false,
        };
        let soft = mask(3, 3, base.clone());
        let hard = mask(3, 3, GumbelMaskConfig { hard: true, ..base });
        // Same seed: same noise, so the straight-through gradient must equal the soft one.
        let s = soft.sample(&mut Rng::new(7)).unwrap();
        let h = hard.sample(&mut Rng::new(7)).unwrap();
        let gs = s.sum_all().unwrap().backward().unwrap();
        let gh = h.sum_all().unwrap().backward().unwrap();
        let gs = values(gs.get(soft.logits()).unwrap());
        let gh = values(gh.get(hard.logits()).unwrap());
        let sv = values(&s);
        for ((a, b), v) in gs.iter().zip(&gh).zip(&sv) {
            assert!(*b != 0.0);
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
            // d/dα σ((α + L)/τ) = s(1 − s)/τ.
            assert!((b - v * (1.0 - v) / 0.5).abs() < 1e-5, "{b}");
        }
    }

    #[test]
    fn expected_edges_and_graph_at_init() {
        let m = mask(3, 4, GumbelMaskConfig::default());
        let e = m.expected_edges().unwrap().to_scalar::<f32>().unwrap() as f64;
        assert!((e - 12.0 * sigmoid(5.0)).abs() < 1e-4, "{e}");
        assert!(m.graph().unwrap().iter().flatten().all(|&b| b));
        let d = values(&m.deterministic().unwrap());
        assert!(d.iter().all(|&v| v == 1.0));
        // The penalty is differentiable: dE/dα = σ'(5).
        let g = m.expected_edges().unwrap().backward().unwrap();
        let g = values(g.get(m.logits()).unwrap());
        let want = sigmoid(5.0) * (1.0 - sigmoid(5.0));
        assert!(g.iter().all(|&v| (v as f64 - want).abs() < 1e-6));

        let off = mask(
            2,
            2,
            GumbelMaskConfig {
                init_logit: -1.0,
                ..Default::default()
            },
        );
        assert!(off.graph().unwrap().iter().flatten().all(|&b| !b));
    }

    #[test]
    fn config_defaults_and_validation() {
        let cfg: GumbelMaskConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(cfg, GumbelMaskConfig::default());
        let cfg: GumbelMaskConfig = ron::from_str("(hard: true)").unwrap();
        assert!(cfg.hard && cfg.tau == 1.0 && cfg.init_logit == 5.0);
        assert!(serde_json::from_str::<GumbelMaskConfig>(r#"{"tua": 1.0}"#).is_err());
        let p = Params::new(VarMap::new(), Device::Cpu, 0);
        for tau in [0.0, -1.0, f64::NAN] {
            let cfg = GumbelMaskConfig {
                tau,
                ..Default::default()
            };
            let err = GumbelMask::new(&p, 2, 2, cfg).unwrap_err();
            assert!(matches!(err, Error::Config { .. }), "{err}");
        }
    }
}

//! DEAR's supervised regulariser (§5.1) on the encoder means of the first m latents, one per label: BCE with
//! logits against min–max-scaled labels (`Bce`, the code's default `ce`) or squared error against standardised
//! labels (`L2`), on the labelled fraction of the data only.

use candle_core::{DType, Device, Tensor};
use carve::data::LabelStats;
use carve::error::{Error, Result};
use carve::nn::Activation;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SupervisionKind {
    #[default]
    Bce,
    L2,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Supervision {
    pub kind: SupervisionKind,
    /// λ_sup (5 in the code).
    pub weight: f64,
    /// Fraction of training images whose labels are used (`sup_prop`). Which images is a fixed function of
    /// their labels (a hash), so the labelled subset is the same every epoch.
    pub fraction: f64,
}

impl Default for Supervision {
    fn default() -> Self {
        Self {
            kind: SupervisionKind::Bce,
            weight: 5.0,
            fraction: 1.0,
        }
    }
}

/// The supervision term, with the label scaling fixed from the training split.
#[derive(Clone, Debug)]
pub struct SupervisionLoss {
    cfg: Supervision,
    /// `[1, m]`: target = (label − offset) · scale.
    offset: Tensor,
    scale: Tensor,
}

impl SupervisionLoss {
    pub fn new(cfg: &Supervision, stats: &LabelStats, device: &Device) -> Result<Self> {
        if !(0.0..=1.0).contains(&cfg.fraction) || !cfg.weight.is_finite() || cfg.weight < 0.0 {
            return Err(Error::Config {
                location: "model.supervision".into(),
                message: format!(
                    "fraction must be in [0, 1] and weight finite and ≥ 0 (got {} and {})",
                    cfg.fraction, cfg.weight
                ),
            });
        }
        let m = stats.min.len();
        let (offset, scale): (Vec<f32>, Vec<f32>) = (0..m)
            .map(|j| match cfg.kind {
                SupervisionKind::Bce => {
                    (stats.min[j], 1.0 / (stats.max[j] - stats.min[j]).max(1e-12))
                }
                SupervisionKind::L2 => (stats.mean[j], 1.0 / stats.std[j].max(1e-12)),
            })
            .unzip();
        Ok(Self {
            cfg: cfg.clone(),
            offset: Tensor::from_vec(offset, (1, m), device)?,
            scale: Tensor::from_vec(scale, (1, m), device)?,
        })
    }

    pub fn device(&self) -> &Device {
        self.offset.device()
    }

    pub fn weight(&self) -> f64 {
        self.cfg.weight
    }

    /// Labels `[B, m]` in the units the latents are trained to: min–max scaled to [0, 1] (`Bce`, the value the
    /// latent's sigmoid predicts) or standardised (`L2`, the latent itself).
    pub fn targets(&self, labels: &Tensor) -> Result<Tensor> {
        let t = labels
            .broadcast_sub(&self.offset)?
            .broadcast_mul(&self.scale)?;
        Ok(match self.cfg.kind {
            SupervisionKind::Bce => t.clamp(0f32, 1f32)?,
            SupervisionKind::L2 => t,
        })
    }

    /// Mean loss over the labelled rows of the batch (0 when none is labelled). `mean` `[B, m]`.
    pub fn loss(&self, mean: &Tensor, labels: &Tensor) -> Result<Tensor> {
        if mean.dims() != labels.dims() {
            return Err(Error::Shape {
                context: "DEAR supervision".into(),
                expected: format!(
                    "labels shaped like the supervised latents {:?}",
                    mean.dims()
                ),
                got: format!("{:?}", labels.dims()),
            });
        }
        let t = self.targets(labels)?;
        let per = match self.cfg.kind {
            // softplus(μ) − t·μ = BCE(σ(μ), t), stable.
            SupervisionKind::Bce => (Activation::Softplus.apply(mean)? - (mean * &t)?)?,
            SupervisionKind::L2 => (mean - &t)?.sqr()?,
        };
        if self.cfg.fraction >= 1.0 {
            return Ok(per.mean_all()?);
        }
        let rows = labels.to_dtype(DType::F32)?.to_vec2::<f32>()?;
        let keep: Vec<f32> = rows
            .iter()
            .map(|r| (labelled(r, self.cfg.fraction) as u8) as f32)
            .collect();
        let n = keep.iter().sum::<f32>();
        if n == 0.0 {
            return Ok(per.sum_all()?.zeros_like()?);
        }
        let keep = Tensor::from_vec(keep, (rows.len(), 1), mean.device())?;
        Ok((per.broadcast_mul(&keep)?.sum_all()? / (n as f64 * mean.dims()[1] as f64))?)
    }
}

/// Whether an image with these labels is in the labelled subset: a hash of the labels' bits mapped to [0, 1).
fn labelled(labels: &[f32], fraction: f64) -> bool {
    let mut h = 0x9e37_79b9_7f4a_7c15u64;
    for v in labels {
        h = (h ^ v.to_bits() as u64).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h ^= h >> 31;
    }
    ((h >> 11) as f64 / (1u64 << 53) as f64) < fraction
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats() -> LabelStats {
        LabelStats::from_rows(&[0.0, 10.0, 4.0, 30.0], 2)
    }

    #[test]
    fn bce_is_smallest_at_the_logit_of_the_scaled_label() {
        let dev = Device::Cpu;
        let sup = SupervisionLoss::new(&Supervision::default(), &stats(), &dev).unwrap();
        // Label (1, 25) scales to (0.25, 0.75): logits ±ln 3.
        let y = Tensor::new(&[[1f32, 25.0]], &dev).unwrap();
        let at = |a: f32, b: f32| {
            let mu = Tensor::new(&[[a, b]], &dev).unwrap();
            sup.loss(&mu, &y).unwrap().to_scalar::<f32>().unwrap()
        };
        let l3 = 3f32.ln();
        let best = at(-l3, l3);
        for (a, b) in [(-l3 + 0.2, l3), (-l3, l3 - 0.2), (0.0, 0.0)] {
            assert!(at(a, b) > best + 1e-4);
        }
    }

    #[test]
    fn l2_targets_are_standardised_and_fraction_selects_a_fixed_subset() {
        let dev = Device::Cpu;
        let cfg = Supervision {
            kind: SupervisionKind::L2,
            fraction: 0.5,
            ..Default::default()
        };
        let sup = SupervisionLoss::new(&cfg, &stats(), &dev).unwrap();
        let y = Tensor::new(&[[4f32, 30.0]], &dev).unwrap();
        let t = sup.targets(&y).unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(t, vec![vec![1.0, 1.0]]);
        let rows: Vec<f32> = (0..2000).map(|i| i as f32 * 0.37).collect();
        let picked = rows.chunks(2).filter(|r| labelled(r, 0.5)).count();
        assert!((400..600).contains(&picked), "{picked} of 1000 labelled");
        assert_eq!(labelled(&[1.0, 2.0], 0.5), labelled(&[1.0, 2.0], 0.5));
        assert!(SupervisionLoss::new(
            &Supervision {
                fraction: 1.5,
                ..cfg
            },
            &stats(),
            &dev
        )
        .is_err());
    }
}

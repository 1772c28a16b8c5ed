//! `mask_claim` = weight · E_B[Σ_i f_i Σ_p σ(m_i,p − m_bg,p)]: a price per pixel a concept's decoder claims from the
//! background slot (`PerConceptMlp { combine: Masks, background: Colour }` or `Image`). Reconstruction pays for the pixels a
//! concept must draw; a decoder that also draws another concept's object, because the two concepts correlate
//! in the data, gains little there and now pays, so do() on its concept stops redrawing the other's object.

use crate::decoder::MASK_CLAIMS;
use candle_core::Tensor;
use carve::components::{BuildContext, ForwardOutputs, Objective, ObjectiveConfig, Parts, Term};
use carve::data::Batch;
use carve::{Error, Result};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaskClaim {
    /// Nats per fully claimed pixel (the reconstruction is a sum over pixels, so keep this well below one).
    pub weight: f64,
    /// Per-concept factors on the weight (default: 1 for every concept). Measured on the pendulum
    /// (docs/results/causalvae.md): a price on the causes' decoders leaves a grainy sun the regressor misreads,
    /// so price only the effects', e.g. `concepts: [0.0, 0.0, 1.0, 1.0]`.
    #[serde(default)]
    pub concepts: Vec<f64>,
}

#[typetag::serde(name = "MaskClaim")]
impl ObjectiveConfig for MaskClaim {
    fn build(&self, _ctx: &BuildContext) -> Result<Box<dyn Objective>> {
        Error::check_non_negative("MaskClaim weight", self.weight)?;
        for &c in &self.concepts {
            Error::check_non_negative("MaskClaim concept factor", c)?;
        }
        Ok(Box::new(self.clone()))
    }
}
carve::register_component!(
    Objective,
    "MaskClaim",
    "mask_claim: weight · Σ pixels each concept decoder claims from the background slot (PerConceptMlp masks)"
);

impl MaskClaim {
    fn penalty(&self, fwd: &ForwardOutputs) -> Result<Tensor> {
        let claims = fwd.extras.get(MASK_CLAIMS).ok_or_else(|| {
            Error::msg(format!(
                "MaskClaim needs a decoder with a background slot, e.g. PerConceptMlp with `combine: Masks, \
                 background: Colour` (no extras `{MASK_CLAIMS}`)"
            ))
        })?;
        let per_sample = weighted_concept_sum(claims, &self.concepts, "MaskClaim concepts")?;
        Ok((per_sample.mean_all()? * self.weight)?)
    }
}

/// Σ_i f_i · values_i over the concepts of `[n, X]` per-concept values → `[X]`, with `factors` f (empty: every
/// factor 1).
pub(crate) fn weighted_concept_sum(
    values: &Tensor,
    factors: &[f64],
    context: &str,
) -> Result<Tensor> {
    let n = values.dim(0)?;
    match factors.len() {
        0 => Ok(values.sum(0)?),
        len if len == n => {
            let f: Vec<f32> = factors.iter().map(|&c| c as f32).collect();
            let f = Tensor::from_vec(f, (n, 1), values.device())?;
            Ok(values.broadcast_mul(&f)?.sum(0)?)
        }
        len => Err(Error::Shape {
            context: context.into(),
            expected: format!("one factor per concept decoder ({n})"),
            got: len.to_string(),
        }),
    }
}

impl Objective for MaskClaim {
    fn terms(
        &self,
        fwd: &ForwardOutputs,
        _parts: &Parts,
        _batch: &Batch,
        _step: usize,
    ) -> Result<Vec<Term>> {
        Ok(vec![Term {
            name: "mask_claim".into(),
            value: self.penalty(fwd)?,
        }])
    }
}

/// Forward outputs that hold only `extras` (2×2 zeros elsewhere), for testing objectives that read them.
#[cfg(test)]
pub(crate) fn outputs_with(extras: std::collections::BTreeMap<String, Tensor>) -> ForwardOutputs {
    let t = Tensor::zeros((2, 2), candle_core::DType::F32, &candle_core::Device::Cpu).unwrap();
    ForwardOutputs {
        posterior: carve::dist::DiagGaussian::new(t.clone(), t.clone()).unwrap(),
        eps: t.clone(),
        z: t.clone(),
        decoded: t,
        extras,
    }
}

#[cfg(test)]
mod tests {
    use super::outputs_with as fwd;
    use super::*;
    use candle_core::Device;
    use std::collections::BTreeMap;

    #[test]
    fn the_price_is_the_weighted_batch_mean_of_the_claims() {
        // Two decoders, two samples: decoder 0 claims 10 and 30 pixels, decoder 1 claims 2 and 6.
        let claims = Tensor::new(&[[10f32, 30.0], [2.0, 6.0]], &Device::Cpu).unwrap();
        let f = fwd(BTreeMap::from([(MASK_CLAIMS.to_string(), claims)]));
        let price = |concepts: Vec<f64>| {
            MaskClaim {
                weight: 0.5,
                concepts,
            }
            .penalty(&f)
            .map(|v| v.to_scalar::<f32>().unwrap())
        };
        assert_eq!(price(vec![]).unwrap(), 12.0);
        assert_eq!(price(vec![0.0, 1.0]).unwrap(), 2.0);
        let err = price(vec![1.0]).unwrap_err().to_string();
        assert!(err.contains("one factor per concept decoder (2)"), "{err}");
    }

    #[test]
    fn a_decoder_without_a_background_slot_is_a_clear_error() {
        let err = MaskClaim {
            weight: 0.5,
            concepts: vec![],
        }
        .penalty(&fwd(BTreeMap::new()))
        .unwrap_err()
        .to_string();
        assert!(err.contains("background: Colour"), "{err}");
    }
}

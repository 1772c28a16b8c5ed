//! `mask_claim` = weight · E_B[Σ_i Σ_p σ(m_i,p − m_bg,p)]: a price per pixel a concept's decoder claims from the
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
}

#[typetag::serde(name = "MaskClaim")]
impl ObjectiveConfig for MaskClaim {
    fn build(&self, _ctx: &BuildContext) -> Result<Box<dyn Objective>> {
        Error::check_non_negative("MaskClaim weight", self.weight)?;
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
        Ok((claims.mean_all()? * self.weight)?)
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

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use carve::dist::DiagGaussian;
    use std::collections::BTreeMap;

    fn fwd(extras: BTreeMap<String, Tensor>) -> ForwardOutputs {
        let t = Tensor::zeros((2, 2), candle_core::DType::F32, &Device::Cpu).unwrap();
        ForwardOutputs {
            posterior: DiagGaussian::new(t.clone(), t.clone()).unwrap(),
            eps: t.clone(),
            z: t.clone(),
            decoded: t,
            extras,
        }
    }

    #[test]
    fn the_price_is_the_weighted_batch_mean_of_the_claims() {
        let claims = Tensor::new(&[10f32, 30.0], &Device::Cpu).unwrap();
        let f = fwd(BTreeMap::from([(MASK_CLAIMS.to_string(), claims)]));
        let v = MaskClaim { weight: 0.5 }.penalty(&f).unwrap();
        assert_eq!(v.to_scalar::<f32>().unwrap(), 10.0);
    }

    #[test]
    fn a_decoder_without_a_background_slot_is_a_clear_error() {
        let err = MaskClaim { weight: 0.5 }
            .penalty(&fwd(BTreeMap::new()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("background: Colour"), "{err}");
    }
}

//! `support_area` = weight · Σ_i f_i Σ_p σ(s_i,p): a price per pixel of each concept's support, the
//! input-independent region a layered decoder may draw its object in (`PerConceptMlp { combine: Layers,
//! support: true }`). Unlike `MaskClaim`, which prices every sample's drawing and so makes decoders draw less
//! of what do() asks for, this prices where a concept may ever draw: a pixel stays in the support while drawing
//! there pays on the data, and the pixels no sample needs close, so do() values the data never pairs cannot make
//! a decoder paint there.

use crate::decoder::SUPPORT_AREA;
use crate::mask_claim::weighted_concept_sum;
use candle_core::Tensor;
use carve::components::{BuildContext, ForwardOutputs, Objective, ObjectiveConfig, Parts, Term};
use carve::data::Batch;
use carve::{Error, Result};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SupportArea {
    /// Nats per pixel of support (the reconstruction is a sum over pixels, so keep this well below one).
    pub weight: f64,
    /// Per-concept factors on the weight (default: 1 for every concept).
    #[serde(default)]
    pub concepts: Vec<f64>,
}

#[typetag::serde(name = "SupportArea")]
impl ObjectiveConfig for SupportArea {
    fn build(&self, _ctx: &BuildContext) -> Result<Box<dyn Objective>> {
        Error::check_non_negative("SupportArea weight", self.weight)?;
        for &c in &self.concepts {
            Error::check_non_negative("SupportArea concept factor", c)?;
        }
        Ok(Box::new(self.clone()))
    }
}
carve::register_component!(
    Objective,
    "SupportArea",
    "support_area: weight · Σ pixels of each concept decoder's learned support (PerConceptMlp layers, support: true)"
);

impl SupportArea {
    fn penalty(&self, fwd: &ForwardOutputs) -> Result<Tensor> {
        let area = fwd.extras.get(SUPPORT_AREA).ok_or_else(|| {
            Error::msg(format!(
                "SupportArea needs a decoder with supports, e.g. PerConceptMlp with `combine: Layers, \
                 background: Colour, support: true` (no extras `{SUPPORT_AREA}`)"
            ))
        })?;
        let total = weighted_concept_sum(area, &self.concepts, "SupportArea concepts")?;
        Ok((total.sum_all()? * self.weight)?)
    }
}

impl Objective for SupportArea {
    fn terms(
        &self,
        fwd: &ForwardOutputs,
        _parts: &Parts,
        _batch: &Batch,
        _step: usize,
    ) -> Result<Vec<Term>> {
        Ok(vec![Term {
            name: "support_area".into(),
            value: self.penalty(fwd)?,
        }])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mask_claim::outputs_with as fwd;
    use candle_core::Device;
    use std::collections::BTreeMap;

    #[test]
    fn the_price_is_the_weighted_support_area() {
        // Two concepts: supports of 10 and 4 pixels.
        let area = Tensor::new(&[[10f32], [4.0]], &Device::Cpu).unwrap();
        let f = fwd(BTreeMap::from([(SUPPORT_AREA.to_string(), area)]));
        let price = |concepts: Vec<f64>| {
            SupportArea {
                weight: 0.5,
                concepts,
            }
            .penalty(&f)
            .map(|v| v.to_scalar::<f32>().unwrap())
        };
        assert_eq!(price(vec![]).unwrap(), 7.0);
        assert_eq!(price(vec![0.0, 1.0]).unwrap(), 2.0);
        let err = price(vec![1.0]).unwrap_err().to_string();
        assert!(err.contains("one factor per concept decoder (2)"), "{err}");
        let err = SupportArea {
            weight: 0.5,
            concepts: vec![],
        }
        .penalty(&fwd(BTreeMap::new()))
        .unwrap_err()
        .to_string();
        assert!(err.contains("support: true"), "{err}");
    }
}

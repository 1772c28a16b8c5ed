//! CausalVAE's extra loss terms (official code): `mask_kl` = Σ_i ½‖z̃_i − ũ_i‖² on the mask layer's output,
//! and `label` = MSE between the label branch g_u(Aᵀu) and the raw labels (optionally in the prior's label scale).

use crate::labels::{half_sq_dist, LabelScale};
use candle_core::Tensor;
use carve::components::{
    BuildContext, Feature, ForwardOutputs, Need, Objective, ObjectiveConfig, Parts, Term,
};
use carve::data::Batch;
use carve::{Error, Result};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaskKl {
    /// Number of concepts, each an equal block of the latents; 0 (the default): the model's layout.
    #[serde(default)]
    pub concepts: usize,
    #[serde(default = "one")]
    pub weight: f64,
    pub label_scale: LabelScale,
}

fn one() -> f64 {
    1.0
}

#[typetag::serde(name = "MaskKl")]
impl ObjectiveConfig for MaskKl {
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Objective>> {
        self.label_scale.check("MaskKl")?;
        let layout = ctx
            .concepts
            .for_part("the MaskKl objective", self.concepts, ctx.latent_dim)?
            .without_free("the MaskKl objective")?;
        Ok(Box::new(Self {
            concepts: layout.concepts(),
            ..self.clone()
        }))
    }
    fn needs(&self) -> Vec<Need> {
        self.label_scale.needs(Feature::MaskedLatents)
    }
}
carve::register_component!(
    Objective,
    "MaskKl",
    "mask_kl: Σ_i ½‖z̃_i − ũ_i‖² on the mask layer output (CausalVAE)",
    needs: [Labels, Part(MaskedLatents)]
);

impl Objective for MaskKl {
    fn terms(
        &self,
        fwd: &ForwardOutputs,
        _parts: &Parts,
        batch: &Batch,
        _step: usize,
    ) -> Result<Vec<Term>> {
        let zm = fwd.feature(Feature::MaskedLatents, "MaskKl")?;
        let (b, n) = (zm.dims()[0], self.concepts);
        let k = zm.dims()[1] / n;
        let zm = zm.reshape((b, n, k))?;
        let u = self
            .label_scale
            .prior_means(batch.labels.as_ref(), b, n, k, zm.device())?;
        Ok(vec![Term {
            name: "mask_kl".into(),
            value: (half_sq_dist(&zm, &u)?.mean_all()? * self.weight)?,
        }])
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelReconstruction {
    #[serde(default = "one")]
    pub weight: f64,
    /// Empty (the code): MSE on raw labels, where a concept weighs by its squared range, so the light and the
    /// pendulum (half-ranges 40, 44) outweigh the shadow (3.5, 5) about 100×. Given: each concept's error is
    /// divided by its half-range, i.e. the MSE is taken in the prior's normalised label scale.
    #[serde(default)]
    pub label_scale: LabelScale,
}

#[typetag::serde(name = "LabelReconstruction")]
impl ObjectiveConfig for LabelReconstruction {
    fn build(&self, _ctx: &BuildContext) -> Result<Box<dyn Objective>> {
        self.label_scale.check("LabelReconstruction")?;
        Ok(Box::new(self.clone()))
    }
}
carve::register_component!(
    Objective,
    "LabelReconstruction",
    "label: MSE(g_u(Aᵀu), u) on raw labels (CausalVAE l_u), or per concept over its half-range",
    needs: [Labels, Part(LabelPrediction)]
);

impl LabelReconstruction {
    /// Mean over batch and concepts of ((pred − u) / half_range)², half_range = 1 without a label scale.
    fn mse(&self, pred: &Tensor, u: &Tensor) -> Result<Tensor> {
        let diff = (pred - u)?;
        let diff = if self.label_scale.is_unsupervised() {
            diff
        } else {
            let n = u.dims2()?.1;
            if self.label_scale.0.len() != n {
                return Err(Error::Shape {
                    context: "LabelReconstruction label_scale".into(),
                    expected: format!("{n} entries, one per label column"),
                    got: self.label_scale.0.len().to_string(),
                });
            }
            diff.broadcast_div(&self.label_scale.half_ranges(u.device())?)?
        };
        Ok(diff.sqr()?.mean_all()?)
    }
}

impl Objective for LabelReconstruction {
    fn terms(
        &self,
        fwd: &ForwardOutputs,
        _parts: &Parts,
        batch: &Batch,
        _step: usize,
    ) -> Result<Vec<Term>> {
        let pred = fwd.feature(Feature::LabelPrediction, "LabelReconstruction")?;
        let u = batch.labels.as_ref().ok_or_else(|| {
            Error::Data("LabelReconstruction needs labels; this dataset has none".into())
        })?;
        Ok(vec![Term {
            name: "label".into(),
            value: (self.mse(pred, u)? * self.weight)?,
        }])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn loss(scale: Vec<(f64, f64)>) -> Result<f32> {
        let pred = Tensor::new(&[[110f32, 8.0]], &Device::Cpu)?;
        let u = Tensor::new(&[[100f32, 10.0]], &Device::Cpu)?;
        let l = LabelReconstruction {
            weight: 1.0,
            label_scale: LabelScale(scale),
        };
        Ok(l.mse(&pred, &u)?.to_scalar::<f32>()?)
    }

    #[test]
    fn raw_labels_weigh_concepts_by_their_range_and_the_label_scale_evens_them() {
        // Raw: (10² + 2²) / 2.
        assert!((loss(vec![]).unwrap() - 52.0).abs() < 1e-4);
        // Over half-ranges 40 and 5: ((10/40)² + (2/5)²) / 2.
        let scaled = loss(vec![(100.0, 40.0), (10.0, 5.0)]).unwrap();
        assert!((scaled - (0.0625 + 0.16) / 2.0).abs() < 1e-6, "{scaled}");
    }

    #[test]
    fn a_zero_half_range_is_a_clear_error() {
        let err = LabelScale(vec![(0.0, 1.0), (10.0, 0.0)])
            .check("LabelReconstruction")
            .unwrap_err()
            .to_string();
        assert!(err.contains("finite and > 0, got 0"), "{err}");
    }

    #[test]
    fn a_label_scale_of_the_wrong_length_is_a_clear_error() {
        let err = loss(vec![(0.0, 1.0)]).unwrap_err().to_string();
        assert!(err.contains("one per label column"), "{err}");
    }
}

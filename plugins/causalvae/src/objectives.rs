//! CausalVAE's extra loss terms (official code): `mask_kl` = Σ_i ½‖z̃_i − ũ_i‖² on the mask layer's output,
//! and `label` = MSE between the label branch g_u(Aᵀu) and the raw labels.

use crate::labels::{half_sq_dist, LabelScale};
use carve::components::{BuildContext, ForwardOutputs, Objective, ObjectiveConfig, Parts, Term};
use carve::data::Batch;
use carve::{Error, Result};
use serde::{Deserialize, Serialize};

fn extra<'a>(fwd: &'a ForwardOutputs, key: &str, who: &str) -> Result<&'a candle_core::Tensor> {
    fwd.extras.get(key).ok_or_else(|| {
        Error::msg(format!(
            "{who} needs the CausalVaeMask causal layer (extras `{key}`)"
        ))
    })
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaskKl {
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
    fn build(&self, _ctx: &BuildContext) -> Result<Box<dyn Objective>> {
        Ok(Box::new(self.clone()))
    }
}
carve::register_component!(
    Objective,
    "MaskKl",
    "mask_kl: Σ_i ½‖z̃_i − ũ_i‖² on the mask layer output (CausalVAE)"
);

impl Objective for MaskKl {
    fn terms(
        &self,
        fwd: &ForwardOutputs,
        _parts: &Parts,
        batch: &Batch,
        _step: usize,
    ) -> Result<Vec<Term>> {
        let zm = extra(fwd, "causal.z_mask", "MaskKl")?;
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
}

#[typetag::serde(name = "LabelReconstruction")]
impl ObjectiveConfig for LabelReconstruction {
    fn build(&self, _ctx: &BuildContext) -> Result<Box<dyn Objective>> {
        Ok(Box::new(self.clone()))
    }
}
carve::register_component!(
    Objective,
    "LabelReconstruction",
    "label: MSE(g_u(Aᵀu), u) on raw labels (CausalVAE l_u)"
);

impl Objective for LabelReconstruction {
    fn terms(
        &self,
        fwd: &ForwardOutputs,
        _parts: &Parts,
        batch: &Batch,
        _step: usize,
    ) -> Result<Vec<Term>> {
        let pred = extra(fwd, "causal.label_pred", "LabelReconstruction")?;
        let u = batch.labels.as_ref().ok_or_else(|| {
            Error::Data("LabelReconstruction needs labels; this dataset has none".into())
        })?;
        Ok(vec![Term {
            name: "label".into(),
            value: ((pred - u)?.sqr()?.mean_all()? * self.weight)?,
        }])
    }
}

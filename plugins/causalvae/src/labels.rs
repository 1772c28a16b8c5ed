//! The label normalisation of the conditional prior: ũ_i = (u_i − centre_i) / half_range_i, broadcast to
//! the k dims of concept i (code: `condition_prior`, pendulum scale [[0,44],[100,40],[6.5,3.5],[10,5]]).

use candle_core::Tensor;
use carve::{Error, Result};
use serde::{Deserialize, Serialize};

/// Ok when the data has no labels or one label column per concept; otherwise an error naming `who`'s
/// `concepts` and the label columns. Components that read the labels call it in `build`.
pub fn check_concepts(who: &str, concepts: usize, spec: &carve::data::DataSpec) -> Result<()> {
    let labels = &spec.label_names;
    if labels.is_empty() || labels.len() == concepts {
        return Ok(());
    }
    Err(Error::Config {
        location: format!("model {who}"),
        message: format!(
            "`concepts` is {concepts} but the data has {} label columns ({}): concepts are matched to labels one to one",
            labels.len(),
            labels.join(", ")
        ),
    })
}

/// `(centre, half_range)` per concept; empty = no labels (the unsupervised ablation: ũ = 0).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LabelScale(pub Vec<(f64, f64)>);

impl LabelScale {
    pub fn is_unsupervised(&self) -> bool {
        self.0.is_empty()
    }

    /// A part reading `feature` and, unless the scale is empty (unsupervised), the labels.
    pub fn needs(&self, feature: carve::components::Feature) -> Vec<carve::components::Need> {
        let mut needs = vec![carve::components::Need::Part(feature)];
        if !self.is_unsupervised() {
            needs.push(carve::components::Need::Labels);
        }
        needs
    }

    /// Every half-range finite and > 0 (they divide the labels); `who` names the component in the error.
    pub fn check(&self, who: &str) -> Result<()> {
        match self.0.iter().find(|s| !(s.1.is_finite() && s.1 > 0.0)) {
            Some(&(_, h)) => Err(Error::msg(format!(
                "{who} label_scale: every half-range must be finite and > 0, got {h}"
            ))),
            None => Ok(()),
        }
    }

    /// Half-ranges as a `[1, n]` row.
    pub fn half_ranges(&self, dev: &candle_core::Device) -> Result<Tensor> {
        let half: Vec<f32> = self.0.iter().map(|c| c.1 as f32).collect();
        Ok(Tensor::from_vec(half, (1, self.0.len()), dev)?)
    }

    /// Prior means `[B, n, k]`: normalised labels per concept, or zeros without labels.
    pub fn prior_means(
        &self,
        labels: Option<&Tensor>,
        b: usize,
        n: usize,
        k: usize,
        dev: &candle_core::Device,
    ) -> Result<Tensor> {
        if self.is_unsupervised() {
            return Ok(Tensor::zeros((b, n, k), candle_core::DType::F32, dev)?);
        }
        let labels = labels.ok_or_else(|| {
            Error::Data("the label-conditioned prior needs labels; this dataset has none (use label_scale: [])".into())
        })?;
        let (lb, ln) = labels.dims2()?;
        if ln != n || self.0.len() != n {
            return Err(Error::Shape {
                context: "CausalVAE label scale".into(),
                expected: format!("{n} concepts = label columns = label_scale entries"),
                got: format!("{ln} label columns, {} label_scale entries", self.0.len()),
            });
        }
        let centre = Tensor::from_vec(self.0.iter().map(|c| c.0 as f32).collect(), (1, n), dev)?;
        let u = labels
            .broadcast_sub(&centre)?
            .broadcast_div(&self.half_ranges(dev)?)?;
        Ok(u.reshape((lb, n, 1))?
            .broadcast_as((lb, n, k))?
            .contiguous()?)
    }
}

/// Σ over concepts and dims of ½‖a − b‖², per sample `[B]` (KL between unit-variance Gaussians).
pub fn half_sq_dist(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let bsz = a.dims()[0];
    Ok(((a - b)?.sqr()?.reshape((bsz, ()))?.sum(1)? * 0.5)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concepts_must_match_the_label_columns_when_there_are_labels() {
        let mut spec = carve::data::DataSpec::default();
        check_concepts("CausalVaeMask", 2, &spec).unwrap();
        spec.label_names = ["a", "b", "c", "d"].map(String::from).to_vec();
        check_concepts("CausalVaeMask", 4, &spec).unwrap();
        let e = check_concepts("CausalVaeMask", 2, &spec)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("CausalVaeMask")
                && e.contains("`concepts` is 2")
                && e.contains("4 label columns (a, b, c, d)"),
            "{e}"
        );
    }
}

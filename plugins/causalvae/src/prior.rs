//! CausalVAE's priors: ε ~ N(0, I) and z | u ~ N(ũ, I), with all posterior variances fixed to 1 as in the
//! official code, so the KL is α·½‖ε̂‖² + β·Σ_i ½‖z_i − ũ_i‖² (z = the linear SCM's output).
//! α and β may also be given per concept (α_i·½‖ε̂_i‖², β_i·½‖z_i − ũ_i‖²): a large α on the effects keeps their
//! noise small, so the mask layer, not the noise, carries their mechanism (see `ConceptWeights`).

use crate::labels::LabelScale;
use candle_core::{Device, Tensor};
use carve::components::{BuildContext, Feature, ForwardOutputs, Need, Prior, PriorConfig};
use carve::data::Batch;
use carve::rng::Rng;
use carve::{Error, Result};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelConditional {
    /// Number of concepts, each an equal block of the latents; 0 (the default): the model's layout.
    #[serde(default)]
    pub concepts: usize,
    #[serde(default = "default_alpha")]
    pub alpha: ConceptWeights,
    #[serde(default = "default_beta")]
    pub beta: ConceptWeights,
    pub label_scale: LabelScale,
}

/// One weight for every concept (`0.3`), or one per concept (`[0.3, 0.3, 100.0, 100.0]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ConceptWeights {
    All(f64),
    PerConcept(Vec<f64>),
}

impl ConceptWeights {
    fn check(&self, n: usize) -> Result<()> {
        match self {
            ConceptWeights::PerConcept(w) if w.len() != n => Err(Error::Shape {
                context: "LabelConditional alpha / beta".into(),
                expected: format!("one weight or {n} (one per concept)"),
                got: format!("{} weights", w.len()),
            }),
            _ => Ok(()),
        }
    }

    /// `[1, n, 1]` weights to broadcast over `[B, n, k]`.
    fn tensor(&self, n: usize, dev: &Device) -> Result<Tensor> {
        let w = match self {
            ConceptWeights::All(a) => vec![*a as f32; n],
            ConceptWeights::PerConcept(w) => w.iter().map(|&a| a as f32).collect(),
        };
        Ok(Tensor::from_vec(w, (1, n, 1), dev)?)
    }
}

/// Σ_i w_i·½‖t_i‖² per sample, for `t` = `[B, n, k]`.
fn weighted_half_sq(t: &Tensor, w: &ConceptWeights, n: usize) -> Result<Tensor> {
    let b = t.dims()[0];
    let weighted = t.sqr()?.broadcast_mul(&w.tensor(n, t.device())?)?;
    Ok((weighted.reshape((b, ()))?.sum(1)? * 0.5)?)
}

fn default_alpha() -> ConceptWeights {
    ConceptWeights::All(0.3)
}
fn default_beta() -> ConceptWeights {
    ConceptWeights::All(1.0)
}

#[typetag::serde(name = "LabelConditional")]
impl PriorConfig for LabelConditional {
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Prior>> {
        let n = ctx
            .concepts
            .for_part("the LabelConditional prior", self.concepts, ctx.latent_dim)?
            .without_free("the LabelConditional prior")?
            .concepts();
        self.alpha.check(n)?;
        self.beta.check(n)?;
        self.label_scale.check("LabelConditional")?;
        if !self.label_scale.is_unsupervised() {
            crate::labels::check_concepts("LabelConditional", n, ctx.spec)?;
        }
        Ok(Box::new(Self {
            concepts: n,
            ..self.clone()
        }))
    }
    fn needs(&self) -> Vec<Need> {
        self.label_scale.needs(Feature::ScmLatents)
    }
}
carve::register_component!(
    Prior,
    "LabelConditional",
    "CausalVAE: ε ~ N(0,I), z|u ~ N(scaled u, I); α·KL_ε + β·KL_z|u",
    needs: [Labels, Part(ScmLatents)]
);

impl Prior for LabelConditional {
    fn kl(&self, fwd: &ForwardOutputs, batch: &Batch) -> Result<Tensor> {
        let (b, d) = fwd.eps.dims2()?;
        let (n, k) = (self.concepts, d / self.concepts);
        let eps = fwd.eps.reshape((b, n, k))?;
        let kl_eps = weighted_half_sq(&eps, &self.alpha, n)?;
        let z = fwd
            .feature(Feature::ScmLatents, "the LabelConditional prior")?
            .reshape((b, n, k))?;
        let u = self
            .label_scale
            .prior_means(batch.labels.as_ref(), b, n, k, z.device())?;
        Ok((kl_eps + weighted_half_sq(&(z - u)?, &self.beta, n)?)?)
    }

    /// ε ~ N(0, I) whatever the labels: the labels condition z, which the causal layer computes from ε.
    fn sample(
        &self,
        n: usize,
        d: usize,
        _labels: Option<&Tensor>,
        rng: &mut Rng,
        device: &Device,
    ) -> Result<Tensor> {
        rng.normal(&[n, d], device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use carve::dist::DiagGaussian;

    /// KL per sample for ε̂ = `eps`, z = ε̂ and labels at the scale's centres (ũ = 0), 2 concepts × 1 dim.
    fn kl(alpha: ConceptWeights, eps: &[f32]) -> Vec<f32> {
        let prior = LabelConditional {
            concepts: 2,
            alpha,
            beta: ConceptWeights::All(2.0),
            label_scale: LabelScale(vec![(0.0, 1.0), (0.0, 1.0)]),
        };
        let e = Tensor::from_slice(eps, (eps.len() / 2, 2), &Device::Cpu).unwrap();
        let fwd = ForwardOutputs {
            posterior: DiagGaussian::unit(e.clone()).unwrap(),
            eps: e.clone(),
            causal: carve::components::CausalOutput {
                scm_latents: Some(e.clone()),
                ..carve::components::CausalOutput::latents(e.clone())
            },
            decoded: e.clone(),
        };
        let batch = Batch {
            x: e.clone(),
            labels: Some(e.zeros_like().unwrap()),
            factors: None,
            actions: None,
        };
        prior.kl(&fwd, &batch).unwrap().to_vec1().unwrap()
    }

    #[test]
    fn alpha_weighs_each_concepts_noise() {
        // ½(α_0·1² + α_1·2²) + β·½(1² + 2²), β = 2.
        let per = kl(ConceptWeights::PerConcept(vec![3.0, 10.0]), &[1.0, 2.0]);
        assert!(
            (per[0] - (0.5 * (3.0 + 40.0) + 5.0)).abs() < 1e-4,
            "{per:?}"
        );
        let same = kl(
            ConceptWeights::PerConcept(vec![0.3, 0.3]),
            &[1.0, -2.0, 0.5, 3.0],
        );
        let all = kl(ConceptWeights::All(0.3), &[1.0, -2.0, 0.5, 3.0]);
        assert_eq!(same, all);
    }

    #[test]
    fn alpha_per_concept_must_match_the_concepts() {
        let cfg: LabelConditional =
            ron::from_str("(concepts: 4, alpha: [0.3, 0.3, 100.0], beta: 1.0, label_scale: [])")
                .unwrap();
        assert_eq!(cfg.alpha, ConceptWeights::PerConcept(vec![0.3, 0.3, 100.0]));
        let err = cfg.alpha.check(4).unwrap_err().to_string();
        assert!(err.contains("one per concept"), "{err}");
        let scalar: LabelConditional =
            ron::from_str("(concepts: 4, alpha: 0.3, label_scale: [])").unwrap();
        assert_eq!(scalar.alpha, ConceptWeights::All(0.3));
    }
}

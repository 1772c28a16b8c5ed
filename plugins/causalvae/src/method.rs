//! `{"CausalVAE": (latent_dim: 16, concepts: 4, label_scale: [...])}`: the method by name, a shorthand that
//! expands to the official code's parts in the generic ELBO model (docs/methods/causalvae.md). Any part may be
//! given to replace its official default; the rest stay official.

use crate::labels::LabelScale;
use crate::mask_layer::{CausalVaeLayer, InitialGraph, MaskInput};
use crate::objectives::{LabelReconstruction, MaskKl};
use crate::prior::{ConceptWeights, LabelConditional};
use carve::components::{
    CausalLayerConfig, ConceptLayout, DagPenalty, DecoderConfig, EncoderConfig, MlpEncoder,
    ObjectiveConfig, PerConceptMlp, PriorConfig, PriorKl, Reconstruction,
};
use carve::dist::Likelihood;
use carve::method::{located, ElboMethod, ElboParts, Method, MethodConfig, MethodContext};
use carve::nn::Activation;
use carve::Result;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CausalVae {
    pub latent_dim: usize,
    /// Number of concepts n (one per label); each gets latent_dim / n dims.
    pub concepts: usize,
    /// `(centre, half_range)` of each label, for the label-conditioned prior and the mask-layer term.
    pub label_scale: LabelScale,
    /// Default: MLP 900 → 300, ELU.
    #[serde(
        default,
        deserialize_with = "given",
        serialize_with = "as_given",
        skip_serializing_if = "Option::is_none"
    )]
    pub encoder: Option<Box<dyn EncoderConfig>>,
    /// Default: `CausalVaeMask` with the code's initial graph and attention noise.
    #[serde(
        default,
        deserialize_with = "given",
        serialize_with = "as_given",
        skip_serializing_if = "Option::is_none"
    )]
    pub causal: Option<Box<dyn CausalLayerConfig>>,
    /// Default: `LabelConditional` with α = 0.3, β = 1.
    #[serde(
        default,
        deserialize_with = "given",
        serialize_with = "as_given",
        skip_serializing_if = "Option::is_none"
    )]
    pub prior: Option<Box<dyn PriorConfig>>,
    /// Default: `PerConceptMlp` 300 → 300 → 1024, ELU, Bernoulli, outputs averaged.
    #[serde(
        default,
        deserialize_with = "given",
        serialize_with = "as_given",
        skip_serializing_if = "Option::is_none"
    )]
    pub decoder: Option<Box<dyn DecoderConfig>>,
    /// Default: reconstruction, KL, mask KL, label loss and the DAG penalty 3h + 0.5h².
    #[serde(
        default,
        deserialize_with = "given",
        serialize_with = "as_given",
        skip_serializing_if = "Option::is_none"
    )]
    pub objectives: Option<Vec<Box<dyn ObjectiveConfig>>>,
}

/// A field written as its value (no `Some(..)`), absent when not given.
fn given<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> std::result::Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

fn as_given<S: Serializer, T: Serialize>(
    v: &Option<T>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    match v {
        Some(v) => v.serialize(s),
        None => s.serialize_none(),
    }
}

/// The official parts for a label scale; they take the number of concepts from the model's layout.
pub struct OfficialParts {
    pub encoder: Box<dyn EncoderConfig>,
    pub causal: Box<dyn CausalLayerConfig>,
    pub prior: Box<dyn PriorConfig>,
    pub decoder: Box<dyn DecoderConfig>,
    pub objectives: Vec<Box<dyn ObjectiveConfig>>,
}

impl OfficialParts {
    pub fn new(label_scale: &LabelScale) -> Self {
        Self {
            encoder: Box::new(MlpEncoder {
                hidden: vec![900, 300],
                activation: Activation::Elu,
                variance: Default::default(),
            }),
            causal: Box::new(CausalVaeLayer {
                concepts: 0,
                hidden: 32,
                initial_graph: InitialGraph::Official,
                sample_variance: 1e-3,
                attention: true,
                mask_input: MaskInput::Sum,
                label_input: MaskInput::Sum,
                normalise_parents: false,
                normalise_layers: false,
            }),
            prior: Box::new(LabelConditional {
                concepts: 0,
                alpha: ConceptWeights::All(0.3),
                beta: ConceptWeights::All(1.0),
                label_scale: label_scale.clone(),
            }),
            decoder: Box::new(PerConceptMlp {
                concepts: 0,
                hidden: vec![300, 300, 1024],
                activation: Activation::Elu,
                likelihood: Likelihood::Bernoulli,
                combine: Default::default(),
                background: Default::default(),
                input: Default::default(),
            }),
            objectives: vec![
                Box::new(Reconstruction {}),
                Box::new(PriorKl {
                    weight: 1.0,
                    warmup_steps: 0,
                }),
                Box::new(MaskKl {
                    concepts: 0,
                    weight: 1.0,
                    label_scale: label_scale.clone(),
                }),
                Box::new(LabelReconstruction {
                    weight: 1.0,
                    label_scale: LabelScale::default(),
                }),
                Box::new(DagPenalty {
                    linear: 3.0,
                    quadratic: 0.5,
                }),
            ],
        }
    }
}

impl CausalVae {
    /// The ELBO parts this shorthand stands for: the given ones, and the official ones for the rest.
    pub fn parts<'a>(&'a self, official: &'a OfficialParts) -> Result<ElboParts<'a>> {
        Ok(ElboParts {
            latent_dim: self.latent_dim,
            concepts: ConceptLayout::blocks(self.latent_dim, self.concepts)?,
            layers: Default::default(),
            encoder: self.encoder.as_deref().unwrap_or(official.encoder.as_ref()),
            causal: self.causal.as_deref().unwrap_or(official.causal.as_ref()),
            prior: self.prior.as_deref().unwrap_or(official.prior.as_ref()),
            decoder: self.decoder.as_deref().unwrap_or(official.decoder.as_ref()),
            objectives: match &self.objectives {
                Some(list) => located("model.objectives", list),
                None => located(
                    "model (CausalVAE's official objectives)",
                    &official.objectives,
                ),
            },
            // The code passes the posterior mean to the causal layer.
            sample_posterior: false,
        })
    }
}

#[typetag::serde(name = "CausalVAE")]
impl MethodConfig for CausalVae {
    fn build(&self, ctx: &MethodContext) -> Result<Box<dyn Method>> {
        let official = OfficialParts::new(&self.label_scale);
        Ok(Box::new(ElboMethod::new(&self.parts(&official)?, ctx)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shorthand with no parts given is `configs/causalvae/official.ron`'s model, part by part.
    #[test]
    fn the_shorthand_expands_to_the_official_config() {
        let text = include_str!("../../../configs/causalvae/official.ron");
        let exp = carve::config::Experiment::parse(text, "official.ron", &[]).unwrap();
        let official = ron::to_string(&exp.model).unwrap();
        let short: CausalVae = ron::from_str(
            "(latent_dim: 16, concepts: 4, label_scale: [(0.0, 44.0), (100.0, 40.0), (6.5, 3.5), (10.0, 5.0)])",
        )
        .unwrap();
        let parts = OfficialParts::new(&short.label_scale);
        let p = short.parts(&parts).unwrap();
        let expanded = format!(
            r#"{{"Elbo":(latent_dim:{},concepts:{},encoder:{},causal:{},prior:{},decoder:{},objectives:{},sample_posterior:false)}}"#,
            p.latent_dim,
            p.concepts.concepts(),
            ron::to_string(p.encoder).unwrap(),
            ron::to_string(p.causal).unwrap(),
            ron::to_string(p.prior).unwrap(),
            ron::to_string(p.decoder).unwrap(),
            ron::to_string(&p.objectives.iter().map(|(_, o)| *o).collect::<Vec<_>>()).unwrap(),
        );
        assert_eq!(expanded, official);
    }
}

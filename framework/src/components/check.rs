//! The build-time check of a model's parts: every part's [`Need`]s against the data and the other parts'
//! [`Feature`]s, before any parameter is created.

use super::{
    CausalLayerConfig, DecoderConfig, EncoderConfig, Feature, Need, ObjectiveConfig, PriorConfig,
};
use crate::data::DataSpec;
use crate::error::{Error, Result};
use crate::registry::ComponentKind;
use crate::requirements::{check, DataOffers, PartDecl};

/// What `spec` offers to parts that need labels, a graph, actions, sequences, images or rows.
pub fn data_offers(spec: &DataSpec) -> DataOffers {
    let frame_rank =
        spec.obs_shape.len() - usize::from(spec.sequence && !spec.obs_shape.is_empty());
    DataOffers {
        labels: !spec.label_names.is_empty(),
        graph: spec.graph.is_some(),
        actions: spec.action_dim > 0,
        sequence: spec.sequence,
        images: frame_rank == 3,
        rows: frame_rank == 1,
    }
}

/// The parts of one model, by config location, as the check sees them.
#[derive(Default)]
pub struct PartList {
    parts: Vec<PartDecl>,
}

impl PartList {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a part by hand (e.g. a method's own needs, or a part of a kind the framework does not know).
    pub fn push(
        &mut self,
        location: impl Into<String>,
        kind: &'static str,
        name: impl Into<String>,
        needs: Vec<Need>,
        provides: Vec<Feature>,
    ) -> &mut Self {
        self.parts.push(PartDecl {
            location: location.into(),
            kind,
            name: name.into(),
            needs,
            provides,
        });
        self
    }

    pub fn encoder(&mut self, location: &str, c: &dyn EncoderConfig) -> &mut Self {
        self.push(
            location,
            ComponentKind::Encoder.label(),
            c.typetag_name(),
            c.needs(),
            c.provides(),
        )
    }
    pub fn decoder(&mut self, location: &str, c: &dyn DecoderConfig) -> &mut Self {
        self.push(
            location,
            ComponentKind::Decoder.label(),
            c.typetag_name(),
            c.needs(),
            c.provides(),
        )
    }
    pub fn prior(&mut self, location: &str, c: &dyn PriorConfig) -> &mut Self {
        self.push(
            location,
            ComponentKind::Prior.label(),
            c.typetag_name(),
            c.needs(),
            c.provides(),
        )
    }
    pub fn causal(&mut self, location: &str, c: &dyn CausalLayerConfig) -> &mut Self {
        self.push(
            location,
            ComponentKind::CausalLayer.label(),
            c.typetag_name(),
            c.needs(),
            c.provides(),
        )
    }
    pub fn objective(&mut self, location: &str, c: &dyn ObjectiveConfig) -> &mut Self {
        self.push(
            location,
            ComponentKind::Objective.label(),
            c.typetag_name(),
            c.needs(),
            c.provides(),
        )
    }

    /// Checks every need against `spec` and the parts' features: an error listing every unmet need, each with
    /// the part's location, what it needs and the registered parts that provide it.
    pub fn check(&self, spec: &DataSpec) -> Result<()> {
        let unmet = check(&self.parts, &data_offers(spec), "the data", |f| {
            crate::registry::providers(f)
                .into_iter()
                .map(String::from)
                .collect()
        });
        let Some(first) = unmet.first() else {
            return Ok(());
        };
        if unmet.len() == 1 {
            return Err(Error::Config {
                location: first.location.clone(),
                message: first.message.clone(),
            });
        }
        let list: String = unmet
            .iter()
            .map(|u| format!("\n  {}: {}", u.location, u.message))
            .collect();
        Err(Error::Config {
            location: "model".into(),
            message: format!(
                "{} requirements of its parts are not met:{list}",
                unmet.len()
            ),
        })
    }
}

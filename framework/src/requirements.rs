//! What a part of a model needs (from the data, or from another part) and what it provides, declared next to
//! its registration, so a model is checked when it is built: a missing pairing is an error that names the part,
//! what it needs and the registered parts that provide it, never a silent no-op or a failure at step 1.

use std::fmt;

/// A typed output or property one part provides and another may need.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Feature {
    /// A learned weighted adjacency over the causal nodes (`CausalLayer::graph`).
    LearnedGraph,
    /// The causal layer's SCM latents before any mask layer (CausalVAE's z).
    ScmLatents,
    /// The mask layer's output z̃ (CausalVAE).
    MaskedLatents,
    /// The causal layer's prediction of the labels from their parents.
    LabelPrediction,
    /// The causal layer can be inverted: ε from z (abduction).
    Abduction,
    /// The prior has a tractable density `log p(ε)`.
    PriorDensity,
}

impl Feature {
    pub fn describe(self) -> &'static str {
        match self {
            Feature::LearnedGraph => "a learned causal graph",
            Feature::ScmLatents => "the SCM's latents before the mask layer",
            Feature::MaskedLatents => "the mask layer's output",
            Feature::LabelPrediction => "a label prediction",
            Feature::Abduction => "an invertible causal layer (abduction z → ε)",
            Feature::PriorDensity => "a prior with a tractable density",
        }
    }

    /// The part kind that provides this feature.
    pub fn provided_by(self) -> &'static str {
        match self {
            Feature::PriorDensity => "prior",
            _ => "causal layer",
        }
    }
}

/// A requirement of a part.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Need {
    /// The data has labels (weak supervision).
    Labels,
    /// The data has a known causal graph over its labels.
    KnownGraph,
    /// The data has actions.
    Actions,
    /// The data rows are sequences of frames.
    Sequence,
    /// Sequence data or actions (either gives a latent transition its parents).
    SequenceOrActions,
    /// Observations are images `[C, H, W]`.
    Images,
    /// Observations are flat rows `[d]` (or sequences of them).
    Rows,
    /// Another part's output.
    Part(Feature),
}

impl Need {
    pub fn describe(self) -> String {
        match self {
            Need::Labels => "labels".into(),
            Need::KnownGraph => "the data's causal graph".into(),
            Need::Actions => "actions".into(),
            Need::Sequence => "sequence data".into(),
            Need::SequenceOrActions => "sequence data or actions".into(),
            Need::Images => "image observations [C, H, W]".into(),
            Need::Rows => "tabular observations [d]".into(),
            Need::Part(f) => f.describe().into(),
        }
    }
}

impl fmt::Display for Need {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

/// What the data offers, for checking [`Need`]s that are not part outputs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DataOffers {
    pub labels: bool,
    pub graph: bool,
    pub actions: bool,
    pub sequence: bool,
    pub images: bool,
    pub rows: bool,
}

impl DataOffers {
    /// Whether the data meets `need`; `None` for needs that are part outputs.
    pub fn meets(&self, need: Need) -> Option<bool> {
        Some(match need {
            Need::Labels => self.labels,
            Need::KnownGraph => self.graph,
            Need::Actions => self.actions,
            Need::Sequence => self.sequence,
            Need::SequenceOrActions => self.sequence || self.actions,
            Need::Images => self.images,
            Need::Rows => self.rows,
            Need::Part(_) => return None,
        })
    }
}

/// One part of a model as the check sees it: where it is in the config, its kind and name, its declarations.
#[derive(Clone, Debug)]
pub struct PartDecl {
    /// Config location, e.g. `model.objectives[3]`.
    pub location: String,
    /// Kind label, e.g. `objective`.
    pub kind: &'static str,
    /// Registered name, e.g. `DagPenalty`.
    pub name: String,
    pub needs: Vec<Need>,
    pub provides: Vec<Feature>,
}

/// A requirement a model does not meet.
#[derive(Clone, Debug, PartialEq)]
pub struct Unmet {
    pub location: String,
    pub message: String,
}

/// Checks every part's needs against the data and the other parts' outputs. `providers(feature)` lists the
/// registered parts that provide a feature (for the error's advice); `data_name` names the dataset.
pub fn check(
    parts: &[PartDecl],
    data: &DataOffers,
    data_name: &str,
    providers: impl Fn(Feature) -> Vec<String>,
) -> Vec<Unmet> {
    let mut unmet = Vec::new();
    for part in parts {
        for &need in &part.needs {
            let ok = match data.meets(need) {
                Some(ok) => ok,
                None => parts.iter().any(|p| match need {
                    Need::Part(f) => p.provides.contains(&f),
                    _ => false,
                }),
            };
            if ok {
                continue;
            }
            let message = match need {
                Need::Part(f) => {
                    let kind = f.provided_by();
                    let current = parts
                        .iter()
                        .find(|p| p.kind == kind)
                        .map(|p| format!(" ({} is {})", p.location, p.name))
                        .unwrap_or_default();
                    let list = providers(f);
                    let advice = if list.is_empty() {
                        format!("no registered {kind} provides it")
                    } else {
                        format!("{kind}s that provide it: {}", list.join(", "))
                    };
                    format!(
                        "{} `{}` needs {}, which no part of this model provides{current}; {advice}",
                        part.kind,
                        part.name,
                        f.describe()
                    )
                }
                _ => format!(
                    "{} `{}` needs {}, which {data_name} does not have",
                    part.kind,
                    part.name,
                    need.describe()
                ),
            };
            unmet.push(Unmet {
                location: part.location.clone(),
                message,
            });
        }
    }
    unmet
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(
        location: &str,
        kind: &'static str,
        name: &str,
        needs: &[Need],
        provides: &[Feature],
    ) -> PartDecl {
        PartDecl {
            location: location.into(),
            kind,
            name: name.into(),
            needs: needs.to_vec(),
            provides: provides.to_vec(),
        }
    }

    #[test]
    fn a_graph_objective_without_a_graph_is_unmet_and_names_the_providers() {
        let parts = [
            part("model.causal", "causal layer", "Independent", &[], &[]),
            part(
                "model.objectives[2]",
                "objective",
                "DagPenalty",
                &[Need::Part(Feature::LearnedGraph)],
                &[],
            ),
        ];
        let unmet = check(&parts, &DataOffers::default(), "the data", |_| {
            vec!["CausalVaeMask".into(), "Scm".into()]
        });
        assert_eq!(unmet.len(), 1);
        assert_eq!(unmet[0].location, "model.objectives[2]");
        let m = &unmet[0].message;
        assert!(
            m.contains("DagPenalty") && m.contains("a learned causal graph"),
            "{m}"
        );
        assert!(m.contains("model.causal is Independent"), "{m}");
        assert!(m.contains("CausalVaeMask, Scm"), "{m}");
    }

    #[test]
    fn data_needs_name_the_data_and_part_outputs_pair_up() {
        let parts = [
            part(
                "model.causal",
                "causal layer",
                "Scm",
                &[Need::KnownGraph],
                &[Feature::LearnedGraph],
            ),
            part(
                "model.objectives[0]",
                "objective",
                "GraphSparsity",
                &[Need::Part(Feature::LearnedGraph)],
                &[],
            ),
            part(
                "model.prior",
                "prior",
                "LabelConditional",
                &[Need::Labels],
                &[],
            ),
        ];
        let data = DataOffers {
            graph: true,
            ..Default::default()
        };
        let unmet = check(&parts, &data, "the data", |_| vec![]);
        assert_eq!(unmet.len(), 1, "{unmet:?}");
        assert_eq!(unmet[0].location, "model.prior");
        assert!(unmet[0]
            .message
            .contains("needs labels, which the data does not have"));
    }
}

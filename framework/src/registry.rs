//! The plugin registry: methods and components submit a one-line description through `inventory`.
//!
//! Registration of the config *types* happens through `typetag` (so configs can name them); the entries here
//! add what `carve list` prints, what "did you mean" suggests, and what each part needs and provides.

pub use crate::requirements::{Feature, Need};

/// The kinds of registered parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ComponentKind {
    Encoder,
    Decoder,
    Prior,
    CausalLayer,
    Objective,
    Discriminator,
    Transition,
    Dataset,
    Metric,
}

impl ComponentKind {
    pub const ALL: [ComponentKind; 9] = [
        ComponentKind::Encoder,
        ComponentKind::Decoder,
        ComponentKind::Prior,
        ComponentKind::CausalLayer,
        ComponentKind::Objective,
        ComponentKind::Discriminator,
        ComponentKind::Transition,
        ComponentKind::Dataset,
        ComponentKind::Metric,
    ];

    pub fn label(self) -> &'static str {
        match self {
            ComponentKind::Encoder => "encoder",
            ComponentKind::Decoder => "decoder",
            ComponentKind::Prior => "prior",
            ComponentKind::CausalLayer => "causal layer",
            ComponentKind::Objective => "objective",
            ComponentKind::Discriminator => "discriminator",
            ComponentKind::Transition => "transition",
            ComponentKind::Dataset => "dataset",
            ComponentKind::Metric => "metric",
        }
    }
}

/// A registered component: `name` is the typetag name used in configs.
pub struct ComponentInfo {
    pub kind: ComponentKind,
    pub name: &'static str,
    pub summary: &'static str,
    /// What the part needs from the data or from other parts (its default; a config may refine it).
    pub needs: &'static [Need],
    /// What the part provides to other parts.
    pub provides: &'static [Feature],
}

/// A registered method: a named training protocol with a default config (RON text).
pub struct MethodInfo {
    pub name: &'static str,
    pub summary: &'static str,
    /// A complete, runnable experiment config for this method.
    pub default_config: &'static str,
    /// The part kinds a config of this method may name (its slots).
    pub slots: &'static [ComponentKind],
    /// What the method itself needs of the data.
    pub needs: &'static [Need],
}

inventory::collect!(ComponentInfo);

/// The registration of `name` of `kind`, if any.
pub fn component(kind: ComponentKind, name: &str) -> Option<&'static ComponentInfo> {
    inventory::iter::<ComponentInfo>
        .into_iter()
        .find(|c| c.kind == kind && c.name == name)
}

/// The registered parts that provide `feature`.
pub fn providers(feature: Feature) -> Vec<&'static str> {
    components()
        .into_iter()
        .filter(|c| c.provides.contains(&feature))
        .map(|c| c.name)
        .collect()
}
inventory::collect!(MethodInfo);

pub fn components() -> Vec<&'static ComponentInfo> {
    let mut v: Vec<_> = inventory::iter::<ComponentInfo>.into_iter().collect();
    v.sort_by_key(|c| (c.kind, c.name));
    v
}

pub fn methods() -> Vec<&'static MethodInfo> {
    let mut v: Vec<_> = inventory::iter::<MethodInfo>.into_iter().collect();
    v.sort_by_key(|m| m.name);
    v
}

/// Names registered for a kind.
pub fn names(kind: ComponentKind) -> Vec<&'static str> {
    components()
        .into_iter()
        .filter(|c| c.kind == kind)
        .map(|c| c.name)
        .collect()
}

/// Up to three registered names closest to `name`, best first: case-insensitive, scored by the better of
/// Jaro-Winkler and normalised optimal-string-alignment distance (so `Mpl` finds `Mlp`).
pub fn closest<'a>(name: &str, candidates: &[&'a str]) -> Vec<&'a str> {
    let lower = name.to_lowercase();
    let mut scored: Vec<(f64, &str)> = candidates
        .iter()
        .map(|c| {
            let c_lower = c.to_lowercase();
            let osa = strsim::osa_distance(&lower, &c_lower) as f64;
            let len = lower.chars().count().max(c_lower.chars().count()).max(1) as f64;
            (
                strsim::jaro_winkler(&lower, &c_lower).max(1.0 - osa / len),
                *c,
            )
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored
        .into_iter()
        .filter(|(s, _)| *s >= 0.6)
        .take(3)
        .map(|(_, c)| c)
        .collect()
}

/// Registers a component's one-line description and, optionally, what it needs and provides
/// ([`Need`], [`Feature`] variants by name). Use next to its `#[typetag::serde]` impl:
///
/// ```ignore
/// register_component!(Objective, "DagPenalty", "acyclicity of the learned graph", needs: [Part(LearnedGraph)]);
/// register_component!(CausalLayer, "Scm", "linear SCM", needs: [KnownGraph], provides: [LearnedGraph, Abduction]);
/// ```
#[macro_export]
macro_rules! register_component {
    ($kind:ident, $name:literal, $summary:literal
        $(, needs: [$($need:expr),* $(,)?])? $(, provides: [$($feature:expr),* $(,)?])? $(,)?) => {
        $crate::prelude::inventory::submit! {
            $crate::registry::ComponentInfo {
                kind: $crate::registry::ComponentKind::$kind,
                name: $name,
                summary: $summary,
                needs: {
                    #[allow(unused_imports)]
                    use $crate::requirements::{Feature::*, Need::*};
                    &[$($($need),*)?]
                },
                provides: {
                    #[allow(unused_imports)]
                    use $crate::requirements::Feature::*;
                    &[$($($feature),*)?]
                },
            }
        }
    };
}

/// Registers a method with its default experiment config and, optionally, the part kinds it takes
/// ([`ComponentKind`] variants) and what it needs of the data ([`Need`] variants).
#[macro_export]
macro_rules! register_method {
    ($name:literal, $summary:literal, $config:expr
        $(, slots: [$($slot:ident),* $(,)?])? $(, needs: [$($need:expr),* $(,)?])? $(,)?) => {
        $crate::prelude::inventory::submit! {
            $crate::registry::MethodInfo {
                name: $name,
                summary: $summary,
                default_config: $config,
                slots: &[$($($crate::registry::ComponentKind::$slot),*)?],
                needs: {
                    #[allow(unused_imports)]
                    use $crate::requirements::{Feature::*, Need::*};
                    &[$($($need),*)?]
                },
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_ranks_typos_first() {
        let c = closest("Mpl", &["Mlp", "Conv", "StdNormal"]);
        assert_eq!(c.first(), Some(&"Mlp"));
        assert!(closest("zzzz", &["Mlp", "Conv"]).is_empty());
    }
}

//! A config tree as flat leaves keyed by override-style paths (`model.encoder.hidden`), and the keys on which
//! runs differ: the columns that tell configurations apart.
//!
//! Paths step through component maps as `--set` does, so a column reads as the override that would reproduce
//! it: `{"model": {"Dear": {"prior": {"StdNormal": {}}}}}` gives `model = Dear` and `model.prior = StdNormal`.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Keys that never tell configurations apart: runs differing only in these are repeats of one configuration.
pub const IGNORED: [&str; 2] = ["train.seed", "name"];

/// One config value as the table shows it, and as a number when it is one (a swept `model.beta`).
#[derive(Clone, Debug, PartialEq)]
pub struct Leaf {
    pub text: String,
    pub number: Option<f64>,
}

pub type Leaves = BTreeMap<String, Leaf>;

/// The leaves of a config tree. A single-entry map whose key starts with an uppercase letter is a component
/// (or an enum variant): its name is the leaf at the path and its fields continue below it. A variant holding
/// something other than fields (`LeakyRelu(0.2)`, `Means([[0], [1]])`) is one leaf, written as RON would.
/// Lists are leaves (compact JSON): their entries have no override path of their own that reads well.
pub fn leaves(tree: &Value) -> Leaves {
    let mut out = Leaves::new();
    walk(tree, String::new(), &mut out);
    out
}

fn walk(v: &Value, path: String, out: &mut Leaves) {
    let join = |key: &str| {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    };
    match v {
        Value::Object(map) => {
            if let Some((name, inner)) = component(v) {
                match inner {
                    Value::Object(fields) => {
                        out.insert(path.clone(), text(name));
                        for (k, f) in fields {
                            walk(f, join(k), out);
                        }
                    }
                    other => {
                        out.insert(path, text(&format!("{name}({})", compact(other))));
                    }
                }
            } else if map.is_empty() {
                out.insert(path, text("()"));
            } else {
                for (k, f) in map {
                    walk(f, join(k), out);
                }
            }
        }
        Value::Null => {
            out.insert(path, text("None"));
        }
        Value::String(s) => {
            out.insert(path, text(s));
        }
        Value::Number(n) => {
            out.insert(
                path,
                Leaf {
                    text: n.to_string(),
                    number: n.as_f64(),
                },
            );
        }
        Value::Bool(_) | Value::Array(_) => {
            out.insert(path, text(&compact(v)));
        }
    }
}

/// `(name, inner)` when `v` is a component map `{"Name": inner}`.
fn component(v: &Value) -> Option<(&str, &Value)> {
    let map = v.as_object()?;
    let (name, inner) = map.iter().next()?;
    (map.len() == 1 && name.starts_with(|c: char| c.is_ascii_uppercase()))
        .then_some((name.as_str(), inner))
}

fn text(s: &str) -> Leaf {
    Leaf {
        text: s.to_string(),
        number: None,
    }
}

fn compact(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| v.to_string())
}

/// The keys whose values differ between runs (a key some run lacks differs), without [`IGNORED`] keys and
/// without the fields of a component that is itself swapped: when `model.causal` is `Scm` in one run and
/// `MechanismScm` in another, `model.causal.f2` and `model.causal.hidden` only restate that.
pub fn differing_keys(runs: &[Leaves]) -> Vec<String> {
    let all: BTreeSet<&String> = runs.iter().flat_map(|r| r.keys()).collect();
    let differs: BTreeSet<&String> = all
        .into_iter()
        .filter(|k| !IGNORED.contains(&k.as_str()))
        .filter(|k| {
            let first = runs.first().and_then(|r| r.get(*k));
            runs.iter().any(|r| r.get(*k) != first)
        })
        .collect();
    differs
        .iter()
        .filter(|k| !differs.iter().any(|a| is_ancestor(a, k)))
        .map(|k| k.to_string())
        .collect()
}

/// Whether `a` is a strict ancestor path of `k` (`model.causal` of `model.causal.f2`, not of `model.causal2`).
fn is_ancestor(a: &str, k: &str) -> bool {
    k.len() > a.len() && k.starts_with(a) && k.as_bytes()[a.len()] == b'.'
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_tree;

    fn config(causal: &str, seed: u64, beta: f64) -> Leaves {
        let text = format!(
            r#"(
            name: "run-{seed}",
            data: {{"Pendulum": (size: 32)}},
            model: {{"Dear": (
                latent_dim: 4,
                encoder: {{"Conv": (channels: [32, 64], activation: LeakyRelu(0.2))}},
                causal: {causal},
                prior: {{"StdNormal": ()}},
                beta: {beta},
                fraction: Some(0.5),
                cache: None,
            )}},
            train: (steps: 10, seed: {seed}),
        )"#
        );
        leaves(&parse_tree(&text).unwrap())
    }

    #[test]
    fn leaves_step_through_components() {
        let l = config(r#"{"Scm": (f2: Affine)}"#, 1, 2.0);
        let get = |k: &str| l.get(k).map(|l| l.text.as_str());
        assert_eq!(get("data"), Some("Pendulum"));
        assert_eq!(get("data.size"), Some("32"));
        assert_eq!(get("model"), Some("Dear"));
        assert_eq!(get("model.encoder"), Some("Conv"));
        assert_eq!(get("model.encoder.channels"), Some("[32,64]"));
        assert_eq!(get("model.encoder.activation"), Some("LeakyRelu(0.2)"));
        assert_eq!(get("model.causal"), Some("Scm"));
        assert_eq!(get("model.causal.f2"), Some("Affine"));
        assert_eq!(get("model.prior"), Some("StdNormal"));
        assert_eq!(get("model.fraction"), Some("0.5"));
        assert_eq!(get("model.cache"), Some("None"));
        assert_eq!(l["model.beta"].number, Some(2.0));
        assert_eq!(l["model.prior"].number, None);
        assert_eq!(get("train.seed"), Some("1"));
    }

    #[test]
    fn differing_keys_skip_seeds_names_and_a_swapped_components_fields() {
        let runs = [
            config(r#"{"Scm": (f2: Affine)}"#, 1, 1.0),
            config(r#"{"Scm": (f2: Affine)}"#, 2, 1.0),
            config(r#"{"MechanismScm": (hidden: [32])}"#, 1, 1.0),
            config(r#"{"Independent": ()}"#, 1, 4.0),
        ];
        assert_eq!(differing_keys(&runs), ["model.beta", "model.causal"]);
        // Seeds alone: one configuration.
        assert!(differing_keys(&runs[..2]).is_empty());
        // The same component with a different field: the field is the column.
        let runs = [
            config(r#"{"Scm": (f2: Affine)}"#, 1, 1.0),
            config(r#"{"Scm": (f2: Quadratic)}"#, 1, 1.0),
        ];
        assert_eq!(differing_keys(&runs), ["model.causal.f2"]);
    }

    #[test]
    fn ancestors_are_whole_segments() {
        assert!(is_ancestor("model.causal", "model.causal.f2"));
        assert!(!is_ancestor("model.causal", "model.causal2"));
        assert!(!is_ancestor("model.causal", "model.causal"));
    }
}

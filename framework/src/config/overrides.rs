//! `--set a.b.c=value`: edits the config as a JSON tree (see `tree`), then the typed config is rebuilt from it.
//! Component maps (`{"Mlp": {...}}`) are stepped through, so `model.encoder.hidden=[512]` works whatever the
//! encoder type is. In a list of metric entries a segment may name an entry: `eval.metrics.intervention.rows=64`.

use crate::error::{Error, Result};
use crate::eval_context::MetricEntry;
use serde_json::Value;

/// One edit of a config tree: the value at a dotted path. `--set` text and a sweep's values both become one.
#[derive(Clone, Debug, PartialEq)]
pub struct Assignment {
    /// Dotted path, e.g. `model.encoder.hidden`.
    pub path: String,
    pub value: Value,
    /// How error messages name the edit: `--set model.beta=4`, or a sweep axis.
    pub origin: String,
}

impl Assignment {
    /// `KEY.PATH=VALUE` as `--set` takes it (VALUE read as RON, see [`parse_value`]).
    pub fn parse(assignment: &str) -> Result<Self> {
        let origin = format!("--set {assignment}");
        let err = |message: String| Error::Config {
            location: origin.clone(),
            message,
        };
        let (path, raw) = assignment
            .split_once('=')
            .ok_or_else(|| err("expected KEY.PATH=VALUE".into()))?;
        let value = parse_value(raw.trim()).map_err(err)?;
        Ok(Self {
            path: path.trim().to_string(),
            value,
            origin,
        })
    }

    /// Writes the value into `root`, stepping through component maps.
    pub fn apply(&self, root: &mut Value) -> Result<()> {
        set_value(root, &self.path, self.value.clone()).map_err(|message| Error::Config {
            location: self.origin.clone(),
            message,
        })
    }
}

/// Applies one `KEY.PATH=VALUE` to `root`.
pub fn apply_override(root: &mut Value, assignment: &str) -> Result<()> {
    Assignment::parse(assignment)?.apply(root)
}

/// Sets the value at a dotted `path` of `root`; the message says which segment failed.
fn set_value(root: &mut Value, path: &str, value: Value) -> std::result::Result<(), String> {
    if path.is_empty() {
        return Err("empty key: expected KEY.PATH=VALUE".into());
    }
    let keys: Vec<&str> = path.split('.').collect();
    if keys.iter().any(|k| k.is_empty()) {
        return Err(format!("`{path}` has an empty segment between dots"));
    }
    let mut node = root;
    for (i, key) in keys.iter().enumerate() {
        node = step_into(node, key).map_err(|m| format!("at `{}`: {m}", keys[..=i].join(".")))?;
    }
    *node = value;
    Ok(())
}

/// Finds `key` in `node`, looking through a single-entry component map if needed.
fn step_into<'a>(node: &'a mut Value, key: &str) -> std::result::Result<&'a mut Value, String> {
    if let Value::Array(items) = node {
        let n = items.len();
        let Ok(idx) = key.parse::<usize>() else {
            return named_entry(items, key);
        };
        return items
            .get_mut(idx)
            .ok_or(format!("index {idx} out of range (length {n})"));
    }
    let Value::Object(map) = node else {
        return Err(format!("cannot descend into a value to set `{key}`"));
    };
    if map.contains_key(key) {
        return Ok(map.get_mut(key).expect("checked"));
    }
    // A component map `{"Mlp": {...}}`: look inside its single entry.
    let through = map.len() == 1 && map.values().next().is_some_and(|v| v.is_object());
    if through {
        let inner = map
            .values_mut()
            .next()
            .and_then(|v| v.as_object_mut())
            .expect("checked");
        if inner.contains_key(key) {
            return Ok(inner.get_mut(key).expect("checked"));
        }
        return Err(no_field(key, inner.keys()));
    }
    Err(no_field(key, map.keys()))
}

/// The settings of the entry named `key` in a list of metric entries (`eval.metrics`, where a metric with settings
/// is `{"name": {...}}`); a bare name is first written out with the metric's default settings.
fn named_entry<'a>(
    items: &'a mut [Value],
    key: &str,
) -> std::result::Result<&'a mut Value, String> {
    let named = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Object(m) if m.len() == 1 => m.keys().next().cloned(),
        _ => None,
    };
    let names: Vec<String> = items.iter().filter_map(named).collect();
    let Some(at) = items.iter().position(|v| named(v).as_deref() == Some(key)) else {
        let known = if names.is_empty() {
            String::new()
        } else {
            format!(" (entries: {})", names.join(", "))
        };
        return Err(format!(
            "expected a list index or an entry's name, got `{key}`{known}"
        ));
    };
    if items[at].is_string() {
        let entry: MetricEntry =
            serde_json::from_value(serde_json::json!({ key: {} })).map_err(|e| e.to_string())?;
        items[at] = serde_json::to_value(&entry).map_err(|e| e.to_string())?;
    }
    match &mut items[at] {
        Value::Object(m) => Ok(m.values_mut().next().expect("one entry")),
        _ => unreachable!("a named entry is a name or a one-entry map"),
    }
}

pub(super) fn no_field<'a>(key: &str, keys: impl Iterator<Item = &'a String>) -> String {
    let keys: Vec<&str> = keys.map(|k| k.as_str()).collect();
    let close = crate::registry::closest(key, &keys);
    let mut m = format!("no field `{key}`");
    if !close.is_empty() {
        m.push_str(&format!("; did you mean `{}`?", close.join("`, `")));
    }
    m + &format!(" (fields: {})", keys.join(", "))
}

/// RON value (number, string, list, map, component, enum variant, `()`), read as the config file reads it
/// (see `tree`); `None` is the empty option. A bare word such as `Elu` or `cuda`, or other text that does not
/// read as RON (`my-run`), is taken as a string. Text opening a list, map, tuple, string or `Name(` must read.
fn parse_value(raw: &str) -> std::result::Result<Value, String> {
    let bare_word = raw.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && raw.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && raw != "true"
        && raw != "false";
    if raw == "None" {
        return Ok(Value::Null);
    }
    if bare_word {
        return Ok(Value::String(raw.to_string()));
    }
    match super::tree::parse(raw) {
        Ok(v) => Ok(v),
        Err(e) if raw.starts_with(['[', '{', '(', '"']) || is_variant(raw) => Err(format!(
            "`{raw}` is not a RON or JSON value: {} (at column {})",
            e.code, e.span.start.col
        )),
        Err(_) => Ok(Value::String(raw.to_string())),
    }
}

/// `Name(...`: an enum variant or `Some(...)`, which must read.
fn is_variant(raw: &str) -> bool {
    raw.split_once('(').is_some_and(|(name, _)| {
        name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sets_nested_fields_through_component_maps() {
        let mut v = json!({"train": {"steps": 10}, "model": {"Elbo": {"encoder": {"Mlp": {"hidden": [1]}}}}});
        apply_override(&mut v, "train.steps=200").unwrap();
        apply_override(&mut v, "model.encoder.hidden=[512, 256]").unwrap();
        apply_override(&mut v, "model.encoder.activation=Elu").unwrap_err();
        assert_eq!(v["train"]["steps"], json!(200));
        assert_eq!(
            v["model"]["Elbo"]["encoder"]["Mlp"]["hidden"],
            json!([512, 256])
        );
    }

    #[test]
    fn malformed_assignments_are_named() {
        let mut v = json!({"train": {"steps": 10, "hidden": [1, 2]}});
        for (bad, needle) in [
            ("train.steps", "KEY.PATH=VALUE"),
            ("=3", "empty key"),
            ("train..steps=3", "empty segment"),
            ("train.hidden.2=3", "index 2 out of range (length 2)"),
            (
                "train.hidden.x=3",
                "expected a list index or an entry's name",
            ),
            ("train.steps.deep=3", "cannot descend"),
            ("train.hidden=[1,", "not a RON or JSON value"),
        ] {
            let e = apply_override(&mut v, bad).unwrap_err().to_string();
            assert!(e.contains(bad) && e.contains(needle), "{bad}: {e}");
        }
    }

    #[test]
    fn unknown_field_suggests_the_closest() {
        let mut v = json!({"train": {"steps": 10, "seed": 1}});
        let e = apply_override(&mut v, "train.stpes=3")
            .unwrap_err()
            .to_string();
        assert!(e.contains("did you mean `steps`"), "{e}");
    }
}

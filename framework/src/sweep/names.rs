//! Run names from overrides: `axis=label` parts joined by `_` (which is why a label holds none: `batch_size` is
//! written `batch-size`), each part made of characters that are safe in a
//! path on every system and in a shell word.

use super::spec::Axis;
use serde_json::Value;

/// The axis in run names: its `name`, or the last segment of its path (`model.beta` → `beta`).
pub fn axis_label(axis: &Axis) -> String {
    let raw = axis
        .name
        .clone()
        .unwrap_or_else(|| axis.set.rsplit('.').next().unwrap_or(&axis.set).to_string());
    sanitize(&raw)
}

/// The labels of an axis's values: its `labels`, or each value's own short text. Two values with the same
/// label are an error, since their runs would share a name.
pub fn value_labels(axis: &Axis) -> Result<Vec<String>, String> {
    let labels: Vec<String> = if axis.labels.is_empty() {
        axis.values.iter().map(value_label).collect()
    } else if axis.labels.len() != axis.values.len() {
        return Err(format!(
            "{} values but {} labels",
            axis.values.len(),
            axis.labels.len()
        ));
    } else {
        axis.labels.iter().map(|l| sanitize(l)).collect()
    };
    for (i, l) in labels.iter().enumerate() {
        if labels[..i].contains(l) {
            return Err(format!(
                "two values get the label `{l}` twice in run names: give the axis `labels`"
            ));
        }
    }
    Ok(labels)
}

/// A value's short text: a number or word as written, a component by its name, anything else as compact JSON.
fn value_label(v: &Value) -> String {
    let text = match v {
        // As written: a sign or exponent is part of the number.
        Value::Number(n) => return n.to_string(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "None".into(),
        Value::Object(m) if m.len() == 1 => m.keys().next().expect("one key").clone(),
        other => other.to_string(),
    };
    sanitize(&text)
}

/// The run name of `parts` (`base` for a sweep of one unnamed run).
pub fn run_name(parts: &[String]) -> String {
    if parts.is_empty() {
        "base".into()
    } else {
        parts.join("_")
    }
}

/// Keeps letters, digits and `.+-`; any other run of characters becomes one `-`.
fn sanitize(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '-') {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_matches('-').to_string();
    if out.is_empty() || out == "." || out == ".." {
        "x".into()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn labels_are_short_and_path_safe() {
        assert_eq!(value_label(&json!({"Additive": {}})), "Additive");
        assert_eq!(value_label(&json!(0.001)), "0.001");
        assert_eq!(value_label(&json!(-2)), "-2");
        assert_eq!(value_label(&json!([512, 256])), "512-256");
        assert_eq!(value_label(&json!("a/b c")), "a-b-c");
        assert_eq!(value_label(&json!("..")), "x");
        assert_eq!(run_name(&[]), "base");
    }
}

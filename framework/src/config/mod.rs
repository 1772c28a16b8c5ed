//! Experiment configs in RON: `data`, `model` (the method and its parts), `train`, `eval`.
//!
//! Components are named in typetag's map form, `{"Mlp": (hidden: [900, 300])}`, everywhere. `--set a.b=value`
//! overrides any field; parse errors carry line and column; unknown component names list the closest
//! registered names. A config is checked when it is read and again against its data and model before step 1
//! (see `validate`): nothing is clamped, a bad size or name fails before training.
//!
//! `extends: "base.ron"` (relative to the file) starts from another config: the base is read as a typed config,
//! serialised into a tree (see `tree`), the file's other keys are merged into it, and the typed config is rebuilt
//! from the result, which is what a run saves and what `--set` edits.

mod overrides;
mod tree;
mod validate;

pub use overrides::{apply_override, Assignment};
pub use validate::{check_metrics, check_run};

use crate::data::{DatasetConfig, Split};
use crate::error::{Error, IoContext, Result};
pub use crate::eval_context::MetricEntry;
use crate::method::MethodConfig;
use crate::optim::AdamConfig;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    #[serde(default = "default_name")]
    pub name: String,
    pub data: Box<dyn DatasetConfig>,
    pub model: Box<dyn MethodConfig>,
    #[serde(default)]
    pub train: TrainConfig,
    #[serde(default)]
    pub eval: EvalConfig,
}

fn default_name() -> String {
    "run".into()
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    pub steps: usize,
    pub batch_size: usize,
    /// Drives data generation, initialisation, shuffling and sampling.
    pub seed: u64,
    pub optimizer: AdamConfig,
    pub lr_schedule: LrSchedule,
    /// Steps between checkpoints (the last step is always checkpointed).
    pub checkpoint_every: usize,
    /// Steps between lines of `metrics.jsonl` and progress-bar updates.
    pub log_every: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            steps: 1000,
            batch_size: 64,
            seed: 0,
            optimizer: AdamConfig::default(),
            lr_schedule: LrSchedule::Constant,
            checkpoint_every: 500,
            log_every: 10,
        }
    }
}

/// Learning-rate multiplier over training.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub enum LrSchedule {
    #[default]
    Constant,
    /// × `factor` every `every` steps, never below `floor` × the base rate.
    StepDecay {
        every: usize,
        factor: f64,
        floor: f64,
    },
    /// Linear warm-up from 0 over `steps`.
    Warmup { steps: usize },
}

impl LrSchedule {
    pub fn scale(&self, step: usize) -> f64 {
        match *self {
            LrSchedule::Constant => 1.0,
            LrSchedule::StepDecay {
                every,
                factor,
                floor,
            } => factor.powi((step / every.max(1)) as i32).max(floor),
            LrSchedule::Warmup { steps } => ((step + 1) as f64 / steps.max(1) as f64).min(1.0),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalConfig {
    /// The metrics (see `carve list`), each a name (`"mcc"`) or, for a metric with settings, its name with
    /// them (`{"intervention": (calibration: Quantile)}`); a name alone takes the metric's default settings.
    pub metrics: Vec<MetricEntry>,
    pub split: Split,
    /// At most this many rows of the split are scored.
    pub max_samples: usize,
    /// The former home of the `intervention` metric's settings: reading it is an error naming the new form.
    #[serde(default, skip_serializing, rename = "intervention")]
    _intervention: RemovedKey<0>,
    /// The former home of `betavae_score`, `factorvae_score` and `iw_loglik`'s settings (as `intervention`).
    #[serde(default, skip_serializing, rename = "scores")]
    _scores: RemovedKey<1>,
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            metrics: vec!["elbo".into()],
            split: Split::Test,
            max_samples: 10_000,
            _intervention: RemovedKey,
            _scores: RemovedKey,
        }
    }
}

/// The `eval` keys that held metric settings before they moved into the metrics' entries, with what to write
/// instead.
const REMOVED_EVAL_KEYS: [(&str, &str); 2] = [
    (
        "intervention",
        "the `intervention` metric's settings go with it in `eval.metrics`, e.g. \
         `metrics: [\"mcc\", {\"intervention\": (calibration: Quantile)}]`",
    ),
    (
        "scores",
        "the settings of `betavae_score`, `factorvae_score` and `iw_loglik` go with each metric in \
         `eval.metrics`, e.g. `metrics: [{\"betavae_score\": (train_points: 1000)}, {\"iw_loglik\": (samples: 5000)}]`",
    ),
];

/// The message for a removed `eval.<key>`, if `key` is one.
fn removed_eval_key(key: &str) -> Option<String> {
    REMOVED_EVAL_KEYS
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(k, instead)| format!("`eval.{k}` is no longer read: {instead}"))
}

/// A removed key of `eval` (see [`REMOVED_EVAL_KEYS`]): reading one fails with a message naming the new form.
#[derive(Clone, Debug, Default)]
struct RemovedKey<const I: usize>;

impl<'de, const I: usize> Deserialize<'de> for RemovedKey<I> {
    fn deserialize<D: serde::Deserializer<'de>>(_: D) -> std::result::Result<Self, D::Error> {
        let (key, _) = REMOVED_EVAL_KEYS[I];
        Err(serde::de::Error::custom(
            removed_eval_key(key).expect("a removed key"),
        ))
    }
}

impl Experiment {
    /// Reads a config file (UTF-8; a leading byte-order mark is skipped, as some editors write one), resolves
    /// its `extends` chain and applies `--set` overrides.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Self> {
        Self::load_assigned(path, &parse_assignments(overrides)?)
    }

    /// [`Experiment::load`] with edits already read (a sweep's values).
    pub fn load_assigned(path: &Path, edits: &[Assignment]) -> Result<Self> {
        let text = read_text(path)?;
        Self::parse_file(&text, &path.display().to_string(), path, edits)
    }

    /// Parses RON text and checks it ([`Experiment::check`]); `origin` names it in error messages and is the
    /// path an `extends` in it is relative to.
    pub fn parse(text: &str, origin: &str, overrides: &[String]) -> Result<Self> {
        let edits = parse_assignments(overrides)?;
        Self::parse_file(text, origin, Path::new(origin), &edits)
    }

    fn parse_file(text: &str, origin: &str, file: &Path, overrides: &[Assignment]) -> Result<Self> {
        let exp = resolve(text, origin, file, &mut Vec::new())?;
        let exp = if overrides.is_empty() {
            exp
        } else {
            apply_overrides(&exp, overrides)?
        };
        exp.check().map_err(|e| match e {
            Error::Config { location, message } => Error::Config {
                location: format!("{origin}: {location}"),
                message,
            },
            other => other,
        })?;
        Ok(exp)
    }

    /// The resolved config as RON, as saved in a run directory.
    pub fn to_ron(&self) -> Result<String> {
        let pretty = ron::ser::PrettyConfig::default().struct_names(false);
        ron::ser::to_string_pretty(self, pretty)
            .map_err(|e| Error::msg(format!("serialising config: {e}")))
    }
}

/// A config file's text; not UTF-8 is an error located by line and column.
fn read_text(path: &Path) -> Result<String> {
    let origin = path.display().to_string();
    if path.is_dir() {
        return Err(Error::Config {
            location: origin,
            message: "is a directory, not a config file".into(),
        });
    }
    let bytes = std::fs::read(path).at(path)?;
    String::from_utf8(bytes).map_err(|e| {
        let (line, col) = line_col(&e.as_bytes()[..e.utf8_error().valid_up_to()]);
        Error::Config {
            location: format!("{origin}:{line}:{col}"),
            message: "the file is not UTF-8 text (a config is RON, written in UTF-8)".into(),
        }
    })
}

/// The experiment `text` describes, its `extends` chain merged. `chain` holds the files that extend this one,
/// to refuse a cycle.
fn resolve(text: &str, origin: &str, file: &Path, chain: &mut Vec<PathBuf>) -> Result<Experiment> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Err(Error::Config {
            location: origin.to_string(),
            message: "the config is empty: it needs at least `data` and `model` (see `carve list` for a method's default config)".into(),
        });
    }
    match extending(text, origin)? {
        None => ron::Options::default()
            .from_str(text)
            .map_err(|e| describe_ron_error(origin, text, &e)),
        Some(tree) => extend(tree, text, origin, file, chain),
    }
}

/// The file as a tree when it names a base config in `extends`. A file that cannot be read as a tree is left
/// to the typed parser (whose errors suggest names), unless it says `extends`.
fn extending(text: &str, origin: &str) -> Result<Option<serde_json::Map<String, Value>>> {
    match tree::parse(text) {
        Ok(Value::Object(map)) if map.contains_key(EXTENDS) => Ok(Some(map)),
        Ok(_) => Ok(None),
        Err(e) if extends_position(text).is_some() => Err(describe_ron_error(origin, text, &e)),
        Err(_) => Ok(None),
    }
}

const EXTENDS: &str = "extends";

/// Line and column of the `extends` key, for error messages.
fn extends_position(text: &str) -> Option<(usize, usize)> {
    text.lines().enumerate().find_map(|(i, line)| {
        let code = line.split("//").next().unwrap_or("");
        let at = code.find(EXTENDS)?;
        let rest = code[at + EXTENDS.len()..].trim_start();
        rest.starts_with(':')
            .then(|| (i + 1, 1 + code[..at].chars().count()))
    })
}

fn extend(
    mut over: serde_json::Map<String, Value>,
    text: &str,
    origin: &str,
    file: &Path,
    chain: &mut Vec<PathBuf>,
) -> Result<Experiment> {
    let at_extends = match extends_position(text) {
        Some((line, col)) => format!("{origin}:{line}:{col}"),
        None => origin.to_string(),
    };
    let fail = |location: &str, message: String| Error::Config {
        location: location.to_string(),
        message,
    };
    let rel = match over.remove(EXTENDS) {
        Some(Value::String(rel)) if !rel.trim().is_empty() => rel,
        other => {
            let got = other.map(|v| v.to_string()).unwrap_or_default();
            return Err(fail(
                &at_extends,
                format!("`extends` takes the base config's path as a string, relative to this file (got `{got}`)"),
            ));
        }
    };
    let base_path = file.parent().unwrap_or(Path::new("")).join(&rel);
    if !base_path.is_file() {
        return Err(fail(
            &at_extends,
            format!(
                "`extends: \"{rel}\"`: no config file at {}",
                base_path.display()
            ),
        ));
    }
    let here = file.canonicalize().unwrap_or_else(|_| file.to_path_buf());
    let base_id = base_path
        .canonicalize()
        .unwrap_or_else(|_| base_path.clone());
    chain.push(here);
    if let Some(first) = chain.iter().position(|p| *p == base_id) {
        let mut cycle: Vec<String> = chain[first..]
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        cycle.push(base_id.display().to_string());
        return Err(fail(
            &at_extends,
            format!("`extends` makes a cycle: {}", cycle.join(" → ")),
        ));
    }
    let base_origin = base_path.display().to_string();
    let base_text = read_text(&base_path)?;
    let base = resolve(&base_text, &base_origin, &base_path, chain)?;
    chain.pop();

    if let Some(Value::Object(eval)) = over.get("eval") {
        if let Some(message) = eval.keys().find_map(|k| removed_eval_key(k)) {
            return Err(fail(origin, message));
        }
    }
    let mut tree = serde_json::to_value(&base).map_err(|e| Error::msg(e.to_string()))?;
    tree::merge(&mut tree, Value::Object(over), "").map_err(|m| fail(origin, m))?;
    tree::from_tree(&tree).map_err(|e| fail(origin, describe_serde_error(&e)))
}

/// RON text as the JSON tree configs are edited in (enum and component names kept; see `tree`).
pub fn parse_tree(text: &str) -> std::result::Result<Value, ron::error::SpannedError> {
    tree::parse(text)
}

fn parse_assignments(overrides: &[String]) -> Result<Vec<Assignment>> {
    overrides.iter().map(|o| Assignment::parse(o)).collect()
}

/// `exp` with `overrides` applied in order. A value the config cannot take is blamed on the first override after
/// which the config no longer reads back.
fn apply_overrides(exp: &Experiment, overrides: &[Assignment]) -> Result<Experiment> {
    let mut value = serde_json::to_value(exp).map_err(|e| Error::msg(e.to_string()))?;
    let mut states = Vec::with_capacity(overrides.len());
    for o in overrides {
        let mut segments = o.path.split('.');
        if segments.next() == Some("eval") {
            if let Some(message) = segments.next().and_then(removed_eval_key) {
                return Err(Error::Config {
                    location: o.origin.clone(),
                    message,
                });
            }
        }
        o.apply(&mut value)?;
        states.push(value.clone());
    }
    tree::from_tree(&value).map_err(|e| {
        let culprit = states
            .into_iter()
            .position(|v| tree::from_tree::<Experiment>(&v).is_err())
            .map(|i| overrides[i].origin.clone())
            .unwrap_or_else(|| {
                let all: Vec<&str> = overrides.iter().map(|o| o.origin.as_str()).collect();
                all.join(" ")
            });
        Error::Config {
            location: culprit,
            message: describe_serde_error(&e),
        }
    })
}

/// A rebuild error, with "did you mean" for unknown names.
fn describe_serde_error(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match parse_unknown(&text) {
        Some((what, found, expected)) => {
            let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
            unknown_name(what, &found, &expected)
        }
        None => text,
    }
}

/// 1-based line and column just after `prefix`.
fn line_col(prefix: &[u8]) -> (usize, usize) {
    let line = 1 + prefix.iter().filter(|&&b| b == b'\n').count();
    let last_line = prefix
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(prefix, |i| &prefix[i + 1..]);
    let col = 1 + String::from_utf8_lossy(last_line).chars().count();
    (line, col)
}

/// `file:line:col: message`, with "did you mean" for unknown names.
fn describe_ron_error(origin: &str, text: &str, e: &ron::error::SpannedError) -> Error {
    let pos = e.span.start;
    let location = format!("{origin}:{}:{}", pos.line, pos.col);
    // The line at fault, so that a bare "Expected integer" shows its field and value.
    let line = text
        .lines()
        .nth(pos.line.saturating_sub(1))
        .map(str::trim)
        .filter(|l| !l.is_empty() && l.chars().count() <= 120)
        .map(|l| format!(" (in `{l}`)"))
        .unwrap_or_default();
    let message = match &e.code {
        ron::Error::NoSuchEnumVariant {
            expected, found, ..
        } => unknown_name("name", found, expected),
        ron::Error::NoSuchStructField {
            expected, found, ..
        } => unknown_name("field", found, expected),
        // Errors raised through typetag arrive as text with the same wording: recover the names from it.
        other => {
            let text = other.to_string();
            match parse_unknown(&text) {
                Some((what, found, expected)) => {
                    let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
                    unknown_name(what, &found, &expected)
                }
                None => format!("{text}{line}"),
            }
        }
    };
    Error::Config { location, message }
}

/// `Unexpected enum variant named `X`, expected either `A` or `B` instead` (RON) or `unknown variant `X`,
/// expected one of `A`, `B`` (serde, as through `--set`) → ("name", X, [A, B]).
fn parse_unknown(text: &str) -> Option<(&'static str, String, Vec<String>)> {
    let prefixes = [
        ("Unexpected enum variant named `", "name"),
        ("unknown variant `", "name"),
        ("Unexpected field named `", "field"),
        ("unknown field `", "field"),
    ];
    let (what, rest) = prefixes
        .iter()
        .find_map(|(p, what)| text.strip_prefix(p).map(|r| (*what, r)))?;
    let (found, rest) = rest.split_once('`')?;
    let expected = rest
        .split('`')
        .skip(1)
        .step_by(2)
        .map(String::from)
        .collect();
    Some((what, found.to_string(), expected))
}

fn unknown_name(what: &str, found: &str, expected: &[&str]) -> String {
    let close = crate::registry::closest(found, expected);
    let mut m = format!("unknown {what} `{found}`");
    if !close.is_empty() {
        m.push_str(&format!("; did you mean {}?", quote_list(&close)));
    }
    m.push_str(&format!(" (registered: {})", quote_list(expected)));
    m
}

fn quote_list(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"// the base
(
    name: "base",
    data: {"Synthetic": (n_train: 64, n_test: 16)},
    model: {"Elbo": (latent_dim: 2, encoder: {"Mlp": (hidden: [4])}, decoder: {"Mlp": (hidden: [4], likelihood: Gaussian(std: 0.5))})},
    train: (steps: 3, batch_size: 2, lr_schedule: StepDecay(every: 10, factor: 0.5, floor: 0.1)),
    eval: (metrics: ["mcc"]),
)"#;

    /// Writes `files` (relative path, text) into a fresh folder.
    fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        dir
    }

    fn load(dir: &tempfile::TempDir, name: &str, sets: &[&str]) -> Result<Experiment> {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        Experiment::load(&dir.path().join(name), &sets)
    }

    fn load_err(dir: &tempfile::TempDir, name: &str) -> String {
        load(dir, name, &[]).unwrap_err().to_string()
    }

    /// `text` parsed on its own, as RON.
    fn typed(text: &str) -> String {
        Experiment::parse(text, "full.ron", &[])
            .unwrap()
            .to_ron()
            .unwrap()
    }

    #[test]
    fn an_override_merges_fields_and_names_replace() {
        let dir = folder(&[
            ("base.ron", BASE),
            (
                "ablations/child.ron",
                r#"// the child
(
    extends: "../base.ron",
    name: "child",
    data: {"Synthetic": (n_train: 128)},
    model: {"Elbo": (decoder: {"Mlp": (hidden: [8])}, prior: {"StdNormal": ()})},
    train: (lr_schedule: StepDecay(factor: 0.25)),
)"#,
            ),
        ]);
        let exp = load(&dir, "ablations/child.ron", &[]).unwrap();
        let want = typed(
            r#"(
    name: "child",
    data: {"Synthetic": (n_train: 128, n_test: 16)},
    model: {"Elbo": (latent_dim: 2, encoder: {"Mlp": (hidden: [4])}, decoder: {"Mlp": (hidden: [8], likelihood: Gaussian(std: 0.5))}, prior: {"StdNormal": ()})},
    train: (steps: 3, batch_size: 2, lr_schedule: StepDecay(every: 10, factor: 0.25, floor: 0.1)),
    eval: (metrics: ["mcc"]),
)"#,
        );
        assert_eq!(exp.to_ron().unwrap(), want);
        // A different component name replaces the whole value; a list replaces the list.
        let dir = folder(&[
            ("base.ron", BASE),
            (
                "child.ron",
                r#"(extends: "base.ron", model: {"Elbo": (encoder: {"Conv": ()})}, eval: (metrics: ["elbo"]))"#,
            ),
        ]);
        let text = load(&dir, "child.ron", &[]).unwrap().to_ron().unwrap();
        assert!(
            text.contains("\"Conv\"") && !text.contains("hidden: [4],\n            activation"),
            "{text}"
        );
        assert!(
            text.contains("metrics: [\n            \"elbo\",\n        ]"),
            "{text}"
        );
    }

    #[test]
    fn a_child_with_the_former_settings_keys_is_an_error_naming_the_new_form() {
        let dir = folder(&[
            ("base.ron", BASE),
            (
                "child.ron",
                r#"(extends: "base.ron", eval: (intervention: (rows: 8)))"#,
            ),
        ]);
        let err = load(&dir, "child.ron", &[]).unwrap_err();
        let shown = err.to_string();
        assert!(matches!(err, Error::Config { .. }), "{shown}");
        assert!(
            shown.contains("`eval.intervention` is no longer read")
                && shown.contains("{\"intervention\": (calibration: Quantile)}"),
            "{shown}"
        );
    }

    #[test]
    fn chains_resolve_and_set_applies_on_top() {
        let dir = folder(&[
            ("a/base.ron", BASE),
            (
                "b/mid.ron",
                r#"(extends: "../a/base.ron", train: (steps: 5))"#,
            ),
            (
                "top.ron",
                r#"(extends: "b/mid.ron", train: (batch_size: 4))"#,
            ),
        ]);
        let exp = load(&dir, "top.ron", &["train.seed=7"]).unwrap();
        assert_eq!(
            (exp.train.steps, exp.train.batch_size, exp.train.seed),
            (5, 4, 7)
        );
        assert_eq!(exp.name, "base");
    }

    #[test]
    fn bad_chains_are_errors_naming_the_file() {
        let dir = folder(&[
            ("base.ron", BASE),
            ("missing.ron", "(\n    extends: \"nope.ron\",\n)"),
            ("self.ron", r#"(extends: "self.ron")"#),
            ("a.ron", r#"(extends: "b.ron")"#),
            ("b.ron", r#"(extends: "a.ron")"#),
            ("number.ron", "(extends: 3)"),
            ("broken_base.ron", r#"(extends: "broken.ron")"#),
            (
                "broken.ron",
                "(\n    name: \"x\",\n    data: {\"Synthetic\": (n_train: [}\n)",
            ),
            ("unknown.ron", r#"(extends: "base.ron", train: (stpes: 3))"#),
            (
                "unnamed.ron",
                r#"(extends: "base.ron", model: (latent_dim: 3))"#,
            ),
            (
                "typo.ron",
                r#"(extends: "base.ron", model: {"Elbo": (decoder: {"Mpl": (hidden: [2])})})"#,
            ),
            (
                "syntax.ron",
                "(\n    extends: \"base.ron\",\n    train: (steps: ,\n)",
            ),
        ]);
        for (file, needles) in [
            (
                "missing.ron",
                &["missing.ron:2:5", "nope.ron", "no config file"][..],
            ),
            ("self.ron", &["self.ron", "cycle"]),
            ("a.ron", &["a.ron", "cycle", "b.ron"]),
            ("number.ron", &["number.ron:1:2", "string", "`3`"]),
            ("broken_base.ron", &["broken.ron:3:"]),
            (
                "unknown.ron",
                &["unknown.ron", "at `train`", "did you mean `steps`"],
            ),
            ("unnamed.ron", &["unnamed.ron", "`model` is a `Elbo`"]),
            (
                "typo.ron",
                &["typo.ron", "unknown name `Mpl`", "did you mean `Mlp`"],
            ),
            ("syntax.ron", &["syntax.ron:3:"]),
        ] {
            let e = load_err(&dir, file);
            for n in needles {
                assert!(e.contains(n), "{file}: `{n}` not in: {e}");
            }
        }
    }

    #[test]
    fn set_takes_inline_components_and_variants() {
        let dir = folder(&[("base.ron", BASE)]);
        let exp = load(
            &dir,
            "base.ron",
            &[
                r#"model.prior={"StdNormal": ()}"#,
                r#"model.decoder={"Mlp": (hidden: [6], likelihood: Bernoulli)}"#,
                "train.lr_schedule=Warmup(steps: 4)",
            ],
        )
        .unwrap();
        let text = exp.to_ron().unwrap();
        for n in ["\"StdNormal\"", "Bernoulli", "Warmup(", "6,"] {
            assert!(text.contains(n), "{n} not in {text}");
        }
        let e = load(&dir, "base.ron", &["train.lr_schedule=Warmup(steps: 4"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a RON or JSON value"), "{e}");
    }

    #[test]
    fn a_saved_config_reads_back_the_same() {
        let dir = folder(&[
            ("base.ron", BASE),
            ("child.ron", r#"(extends: "base.ron", name: "c")"#),
        ]);
        let text = load(&dir, "child.ron", &[]).unwrap().to_ron().unwrap();
        assert!(!text.contains("extends"));
        assert_eq!(typed(&text), text);
    }
}

//! Experiment configs in RON: `data`, `model` (the method and its parts), `train`, `eval`.
//!
//! Components are named in typetag's map form, `{"Mlp": (hidden: [900, 300])}`, everywhere. `--set a.b=value`
//! overrides any field; parse errors carry line and column; unknown component names list the closest
//! registered names. A config is checked when it is read and again against its data and model before step 1
//! (see `validate`): nothing is clamped, a bad size or name fails before training.

mod overrides;
mod validate;

pub use overrides::apply_override;
pub use validate::{check_metrics, check_run};

use crate::data::{DatasetConfig, Split};
use crate::error::{Error, IoContext, Result};
use crate::method::MethodConfig;
use crate::optim::AdamConfig;
use serde::{Deserialize, Serialize};
use std::path::Path;

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
    /// Metric names (see `carve list`).
    pub metrics: Vec<String>,
    pub split: Split,
    /// At most this many rows of the split are scored.
    pub max_samples: usize,
    /// Settings of the `intervention` metric.
    pub intervention: crate::oracle::InterventionEvalConfig,
    /// Settings of the `betavae_score`, `factorvae_score` and `iw_loglik` metrics.
    pub scores: crate::metrics::ScoreEvalConfig,
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            metrics: vec!["elbo".into()],
            split: Split::Test,
            max_samples: 10_000,
            intervention: Default::default(),
            scores: Default::default(),
        }
    }
}

impl Experiment {
    /// Reads a config file (UTF-8; a leading byte-order mark is skipped, as some editors write one) and applies
    /// `--set` overrides.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Self> {
        let origin = path.display().to_string();
        if path.is_dir() {
            return Err(Error::Config {
                location: origin,
                message: "is a directory, not a config file".into(),
            });
        }
        let bytes = std::fs::read(path).at(path)?;
        let text = String::from_utf8(bytes).map_err(|e| {
            let (line, col) = line_col(&e.as_bytes()[..e.utf8_error().valid_up_to()]);
            Error::Config {
                location: format!("{origin}:{line}:{col}"),
                message: "the file is not UTF-8 text (a config is RON, written in UTF-8)".into(),
            }
        })?;
        Self::parse(&text, &origin, overrides)
    }

    /// Parses RON text and checks it ([`Experiment::check`]); `origin` names it in error messages.
    pub fn parse(text: &str, origin: &str, overrides: &[String]) -> Result<Self> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        if text.trim().is_empty() {
            return Err(Error::Config {
                location: origin.to_string(),
                message: "the config is empty: it needs at least `data` and `model` (see `carve list` for a method's default config)".into(),
            });
        }
        let exp: Experiment = ron::Options::default()
            .from_str(text)
            .map_err(|e| describe_ron_error(origin, text, &e))?;
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

/// `exp` with `overrides` applied in order. A value the config cannot take is blamed on the first override after
/// which the config no longer reads back.
fn apply_overrides(exp: &Experiment, overrides: &[String]) -> Result<Experiment> {
    let mut value = serde_json::to_value(exp).map_err(|e| Error::msg(e.to_string()))?;
    let mut states = Vec::with_capacity(overrides.len());
    for o in overrides {
        apply_override(&mut value, o)?;
        states.push(value.clone());
    }
    serde_json::from_value(value).map_err(|e| {
        let culprit = states
            .into_iter()
            .position(|v| serde_json::from_value::<Experiment>(v).is_err())
            .map(|i| overrides[i].clone())
            .unwrap_or_else(|| overrides.join(" --set "));
        let text = e.to_string();
        let message = match parse_unknown(&text) {
            Some((what, found, expected)) => {
                let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
                unknown_name(what, &found, &expected)
            }
            None => text,
        };
        Error::Config {
            location: format!("--set {culprit}"),
            message,
        }
    })
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

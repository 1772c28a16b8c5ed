//! Experiment configs in RON: `data`, `model` (the method and its parts), `train`, `eval`.
//!
//! Components are named in typetag's map form, `{"Mlp": (hidden: [900, 300])}`, everywhere. `--set a.b=value`
//! overrides any field; parse errors carry line and column; unknown component names list the closest
//! registered names.

mod overrides;

pub use overrides::apply_override;

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
    /// Reads a config file and applies `--set` overrides.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Self> {
        let text = std::fs::read_to_string(path).at(path)?;
        Self::parse(&text, &path.display().to_string(), overrides)
    }

    /// Parses RON text; `origin` names it in error messages.
    pub fn parse(text: &str, origin: &str, overrides: &[String]) -> Result<Self> {
        let exp: Experiment = ron::Options::default()
            .from_str(text)
            .map_err(|e| describe_ron_error(origin, &e))?;
        if overrides.is_empty() {
            return Ok(exp);
        }
        let mut value = serde_json::to_value(&exp).map_err(|e| Error::msg(e.to_string()))?;
        for o in overrides {
            apply_override(&mut value, o)?;
        }
        serde_json::from_value(value).map_err(|e| Error::Config {
            location: format!("--set {}", overrides.join(" --set ")),
            message: e.to_string(),
        })
    }

    /// The resolved config as RON, as saved in a run directory.
    pub fn to_ron(&self) -> Result<String> {
        let pretty = ron::ser::PrettyConfig::default().struct_names(false);
        ron::ser::to_string_pretty(self, pretty)
            .map_err(|e| Error::msg(format!("serialising config: {e}")))
    }
}

/// `file:line:col: message`, with "did you mean" for unknown names.
fn describe_ron_error(origin: &str, e: &ron::error::SpannedError) -> Error {
    let pos = e.span.start;
    let location = format!("{origin}:{}:{}", pos.line, pos.col);
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
                None => text,
            }
        }
    };
    Error::Config { location, message }
}

/// `Unexpected enum variant named `X`, expected either `A` or `B` instead` → ("name", X, [A, B]).
fn parse_unknown(text: &str) -> Option<(&'static str, String, Vec<String>)> {
    let (what, rest) = if let Some(r) = text.strip_prefix("Unexpected enum variant named `") {
        ("name", r)
    } else if let Some(r) = text.strip_prefix("Unexpected field named `") {
        ("field", r)
    } else {
        return None;
    };
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

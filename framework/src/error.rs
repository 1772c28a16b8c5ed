//! The framework's error type: every message says what was expected and where.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Tensor(#[from] candle_core::Error),

    /// The OS error is part of the message, not a `source`: a report that prints the chain (`{e:#}`) then
    /// names the file once and the OS text once.
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },

    #[error("config {location}: {message}")]
    Config { location: String, message: String },

    #[error("unknown {kind} `{name}`{suggestion}")]
    UnknownComponent {
        kind: &'static str,
        name: String,
        suggestion: String,
    },

    #[error("shape mismatch in {context}: expected {expected}, got {got}")]
    Shape {
        context: String,
        expected: String,
        got: String,
    },

    #[error("data: {0}")]
    Data(String),

    /// A loss term that is NaN or infinite; `step` counts from 0 (the index passed to `train_step`), the
    /// message from 1 as `metrics.jsonl` does.
    #[error("non-finite loss at step {}: term `{term}` is {value}", .step + 1)]
    NonFinite {
        step: usize,
        term: String,
        value: f32,
    },

    /// Training stopped because the loss or the weights went non-finite somewhere in steps `first..=last`
    /// (counted from 1); `kept` says which checkpoint survives.
    #[error("training diverged {}: {cause}; {kept}", step_range(*.first, *.last))]
    Diverged {
        first: usize,
        last: usize,
        cause: String,
        kept: String,
    },

    /// Parameters or optimizer state with NaN or infinite values, found before they are written anywhere.
    #[error("{group} `{name}` has {count} non-finite values of {total}")]
    NonFiniteState {
        group: &'static str,
        name: String,
        count: usize,
        total: usize,
    },

    #[error("device: {0}")]
    Device(String),

    #[error("{0}")]
    Msg(String),
}

fn step_range(first: usize, last: usize) -> String {
    if first == last {
        format!("at step {last}")
    } else {
        format!("between step {first} and step {last}")
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn msg(m: impl Into<String>) -> Self {
        Error::Msg(m.into())
    }

    /// Ok for a finite `v` ≥ 0; otherwise an error naming `what` (e.g. "GraphSparsity weight").
    pub fn check_non_negative(what: &str, v: f64) -> Result<()> {
        if v.is_finite() && v >= 0.0 {
            Ok(())
        } else {
            Err(Error::msg(format!(
                "{what} must be finite and ≥ 0, got {v}"
            )))
        }
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            error: source,
        }
    }
}

/// Attach a path to an `std::io::Result`.
pub trait IoContext<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::io(path, e))
    }
}

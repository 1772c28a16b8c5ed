//! The framework's error type: every message says what was expected and where.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Tensor(#[from] candle_core::Error),

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
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

    #[error("non-finite loss at step {step}: term `{term}` is {value}; the last good checkpoint is kept")]
    NonFinite {
        step: usize,
        term: String,
        value: f32,
    },

    #[error("device: {0}")]
    Device(String),

    #[error("{0}")]
    Msg(String),
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
            source,
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

//! Bad-input cases: config.

//! Bad-input cases: data.

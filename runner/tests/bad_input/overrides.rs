//! Bad-input cases: overrides.

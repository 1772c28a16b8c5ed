//! Bad-input cases: figures.

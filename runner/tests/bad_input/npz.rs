//! Bad-input cases: npz.

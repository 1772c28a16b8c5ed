//! Bad-input cases: faults.

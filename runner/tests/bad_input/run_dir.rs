//! Bad-input cases: run_dir.

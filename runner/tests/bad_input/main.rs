//! The bad-input corpus: every case runs the `carve` binary as a careless or hostile user would and asserts a
//! clear error (exit code ≠ 0, no panic, a message naming the offending file, field or value) or a documented
//! correct acceptance. One module per kind of input.

mod support;

mod config;
mod data;
mod faults;
mod figures;
mod npz;
mod overrides;
mod requirements;
mod run_dir;

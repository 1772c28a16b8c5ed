//! End-to-end tests live in `tests/`; this crate only links the framework and every plugin.

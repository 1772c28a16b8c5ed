//! Facade linking every plugin: a plugin crate that nothing references registers nothing.
//! Add a line here (and a dependency) for each new plugin.

extern crate carve_betavae;
extern crate carve_causalvae;
extern crate carve_dear;
extern crate carve_sparsity;

/// Call once (e.g. at the start of `main` or a test) to make sure the linker keeps every plugin.
pub fn link() {}

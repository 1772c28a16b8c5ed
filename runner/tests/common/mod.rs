//! Helpers shared by the sweep tests: the `carve` binary with an environment, and its whole output.

use std::process::{Command, Output};

/// Runs `carve` with `args`, info logging (what a run's log holds) and the extra `env`.
pub fn carve(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_carve"));
    cmd.args(args).env("RUST_LOG", "info");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run carve")
}

/// stdout then stderr.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

//! Runs the `carve` binary and judges its answer to bad input.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A small, fast β-VAE config on 32×32 pendulum images: the base that cases break one thing of.
pub const SMALL_CONFIG: &str = r#"(
    name: "bad-input",
    data: {"Pendulum": (size: 32, channels: 3)},
    model: {"BetaVae": (
        latent_dim: 4,
        beta: 4.0,
        encoder: {"Mlp": (hidden: [16])},
        decoder: {"Mlp": (hidden: [16])},
    )},
    train: (steps: 2, batch_size: 8, checkpoint_every: 1, log_every: 1),
    eval: (metrics: ["recon", "mcc"], max_samples: 64),
)"#;

/// Runs `carve ARGS` with `envs` set, in `cwd` (the test's folder when `None`).
pub fn run_in(cwd: Option<&Path>, args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_carve"));
    cmd.args(args)
        .env("RUST_LOG", "warn")
        .env_remove("RUST_BACKTRACE");
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("run carve")
}

/// Runs `carve ARGS`.
pub fn carve(args: &[&str]) -> Output {
    run_in(None, args, &[])
}

/// Asserts that `out` is a clear error: a normal exit with a non-zero code (not a signal such as an abort), no
/// panic, and a message that contains every one of `needles` (the offending file, field or value). Returns the
/// message.
pub fn assert_clear_error(what: &str, out: &Output, needles: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let code = out.status.code();
    assert!(
        code.is_some(),
        "{what}: killed by a signal ({:?}), not an error\nstderr:\n{stderr}",
        out.status
    );
    assert_ne!(
        code,
        Some(0),
        "{what}: succeeded but should fail\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    for bad in ["panicked at", "RUST_BACKTRACE", "memory allocation of"] {
        assert!(
            !stderr.contains(bad),
            "{what}: `{bad}` in the message:\n{stderr}"
        );
    }
    for n in needles {
        assert!(
            stderr.contains(n),
            "{what}: the message does not name `{n}`:\n{stderr}"
        );
    }
    stderr
}

/// Runs `carve ARGS` and asserts a clear error naming every one of `needles`; returns the message.
pub fn fails_clearly(args: &[&str], needles: &[&str]) -> String {
    assert_clear_error(&format!("carve {args:?}"), &carve(args), needles)
}

/// Runs `carve ARGS` and asserts success; returns stdout.
pub fn succeeds(args: &[&str]) -> String {
    let out = carve(args);
    assert!(
        out.status.success(),
        "carve {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Writes `contents` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create folder");
    }
    std::fs::write(&path, contents).expect("write test input");
    path
}

/// A path as a `&str` argument.
pub fn arg(path: &Path) -> &str {
    path.to_str().expect("UTF-8 test path")
}

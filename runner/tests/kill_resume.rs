//! Crash safety: `carve train` killed with SIGKILL at several points (between checkpoints, before a
//! checkpoint, and at each stage of the checkpoint's swap), then continued with `carve train --resume`, ends
//! exactly as an uninterrupted run: the same parameters and optimizer state byte for byte, and the same log
//! lines, each step once. The kill points are reached with the `CARVE_FAULT_KILL_AT=<point>:<step>` hook.

#[path = "bad_input/support.rs"]
mod support;

use serde_json::Value;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;
use support::{arg as s, run_in};

/// Six steps, a checkpoint every second one, a log line every step.
const CONFIG: &str = r#"(
    name: "kill-resume",
    data: {"Pendulum": (size: 32, channels: 3)},
    model: {"BetaVae": (
        latent_dim: 4,
        beta: 4.0,
        encoder: {"Mlp": (hidden: [16])},
        decoder: {"Mlp": (hidden: [16])},
    )},
    train: (steps: 6, batch_size: 8, checkpoint_every: 2, log_every: 1),
    eval: (metrics: ["recon"], max_samples: 32),
)"#;

fn assert_success(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed ({:?}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A fresh folder for one case, with the config written into it.
fn case_dir(name: &str) -> (PathBuf, PathBuf) {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("kill_resume")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("config.ron");
    std::fs::write(&config, CONFIG).unwrap();
    (config, dir.join("run"))
}

/// The uninterrupted run, trained once for every case.
fn reference() -> &'static Path {
    static RUN: OnceLock<PathBuf> = OnceLock::new();
    RUN.get_or_init(|| {
        let (config, run) = case_dir("reference");
        let out = run_in(None, &["train", s(&config), "--out", s(&run)], &[]);
        assert_success("the uninterrupted run", &out);
        run
    })
}

fn checkpoint_step(dir: &Path) -> u64 {
    let text = std::fs::read_to_string(dir.join("state.json")).unwrap();
    serde_json::from_str::<Value>(&text).unwrap()["step"]
        .as_u64()
        .unwrap()
}

/// The log lines without their throughput, which depends on the machine's load.
fn log_lines(run: &Path) -> Vec<Value> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().remove("samples_per_sec");
            v
        })
        .collect()
}

/// Kills a run at `point:step`, checks what the kill left on disk with `left`, resumes it and compares the
/// result with the uninterrupted run.
fn kill_then_resume(point: &str, step: usize, left: impl Fn(&Path)) {
    let reference = reference();
    let (config, run) = case_dir(&format!("{point}-{step}"));
    let spec = format!("{point}:{step}");
    let out = run_in(
        None,
        &["train", s(&config), "--out", s(&run)],
        &[("CARVE_FAULT_KILL_AT", &spec)],
    );
    assert_eq!(
        out.status.signal(),
        Some(9),
        "{spec}: expected death by SIGKILL, got {:?}:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!run.join("summary.json").exists());
    left(&run);

    // The lock died with the process: resuming right away works.
    let out = run_in(None, &["train", "--resume", s(&run)], &[]);
    assert_success(&format!("resume after {spec}"), &out);

    for file in ["model.safetensors", "optimizer.safetensors"] {
        let a = std::fs::read(reference.join("checkpoint").join(file)).unwrap();
        let b = std::fs::read(run.join("checkpoint").join(file)).unwrap();
        assert!(
            a == b,
            "{spec}: {file} differs from the uninterrupted run's"
        );
    }
    let state = |r: &Path| -> Value {
        serde_json::from_str(&std::fs::read_to_string(r.join("checkpoint/state.json")).unwrap())
            .unwrap()
    };
    let (a, b) = (state(reference), state(&run));
    assert_eq!((&a["step"], &a["rng"]), (&b["step"], &b["rng"]), "{spec}");
    assert_eq!(
        log_lines(reference),
        log_lines(&run),
        "{spec}: metrics.jsonl"
    );
    let steps: Vec<u64> = log_lines(&run)
        .iter()
        .map(|l| l["step"].as_u64().unwrap())
        .collect();
    assert_eq!(steps, [1, 2, 3, 4, 5, 6], "{spec}: each step logged once");
    for leftover in ["checkpoint.tmp", "checkpoint.old"] {
        assert!(!run.join(leftover).exists(), "{spec}: {leftover} remains");
    }
    assert!(run.join("summary.json").exists());
}

/// Between two checkpoints: step 3 is trained and logged, the newest checkpoint is step 2's.
#[test]
fn killed_between_checkpoints() {
    kill_then_resume("step", 3, |run| {
        assert_eq!(checkpoint_step(&run.join("checkpoint")), 2);
        assert_eq!(log_lines(run).len(), 3);
    });
}

/// Step 4 is trained and logged; its checkpoint is not begun.
#[test]
fn killed_before_a_checkpoint() {
    kill_then_resume("step", 4, |run| {
        assert_eq!(checkpoint_step(&run.join("checkpoint")), 2);
        assert!(!run.join("checkpoint.tmp").exists());
    });
}

/// Step 4's checkpoint is complete in `checkpoint.tmp/`, step 2's still in place.
#[test]
fn killed_after_the_new_checkpoint_is_written() {
    kill_then_resume("tmp-written", 4, |run| {
        assert_eq!(checkpoint_step(&run.join("checkpoint")), 2);
        assert_eq!(checkpoint_step(&run.join("checkpoint.tmp")), 4);
    });
}

/// Between the swap's two renames: step 2's checkpoint is `checkpoint.old/`, there is no `checkpoint/`.
#[test]
fn killed_between_the_two_renames() {
    kill_then_resume("mid-swap", 4, |run| {
        assert!(!run.join("checkpoint").exists());
        assert_eq!(checkpoint_step(&run.join("checkpoint.old")), 2);
        assert_eq!(checkpoint_step(&run.join("checkpoint.tmp")), 4);
    });
}

/// After the swap, before the old checkpoint is removed.
#[test]
fn killed_before_the_old_checkpoint_is_removed() {
    kill_then_resume("swapped", 4, |run| {
        assert_eq!(checkpoint_step(&run.join("checkpoint")), 4);
        assert_eq!(checkpoint_step(&run.join("checkpoint.old")), 2);
    });
}

/// The last checkpoint is written; killed before the figures, evaluation and summary. Resuming trains
/// nothing and finishes them.
#[test]
fn killed_after_the_last_checkpoint() {
    kill_then_resume("swapped", 6, |run| {
        assert_eq!(checkpoint_step(&run.join("checkpoint")), 6);
    });
}

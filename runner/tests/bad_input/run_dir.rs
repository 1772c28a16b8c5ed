//! Bad-input cases: run directories that are missing, empty, incomplete or corrupt. Each error names the
//! directory or the file at fault.

use crate::support::*;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A finished two-step run of [`SMALL_CONFIG`], trained once; cases corrupt copies of it.
fn template() -> &'static Path {
    static RUN: OnceLock<PathBuf> = OnceLock::new();
    RUN.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bad_input_run_dir_template");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let config = write(&dir, "small.ron", SMALL_CONFIG);
        let run = dir.join("run");
        succeeds(&["train", arg(&config), "--out", arg(&run)]);
        run
    })
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A copy of the finished run in a fresh temporary folder.
fn finished_run() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    copy_dir(template(), &run);
    (tmp, run)
}

fn checkpoint_file(run: &Path, name: &str) -> PathBuf {
    run.join("checkpoint").join(name)
}

#[test]
fn a_missing_run_directory_is_named_by_every_command() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("no-such-run");
    for cmd in [
        vec!["eval", arg(&missing)],
        vec!["figures", arg(&missing)],
        vec!["train", "--resume", arg(&missing)],
    ] {
        fails_clearly(&cmd, &[arg(&missing), "no such run directory"]);
    }
}

#[test]
fn an_empty_directory_is_not_a_run() {
    let tmp = tempfile::tempdir().unwrap();
    fails_clearly(&["eval", arg(tmp.path())], &["config.ron"]);
    fails_clearly(&["figures", arg(tmp.path())], &["config.ron"]);
    fails_clearly(
        &["train", "--resume", arg(tmp.path())],
        &[arg(tmp.path()), "not a run directory", "config.ron"],
    );
}

#[test]
fn a_run_without_a_checkpoint_says_so() {
    let (_tmp, run) = finished_run();
    std::fs::remove_dir_all(run.join("checkpoint")).unwrap();
    for cmd in [
        vec!["eval", arg(&run)],
        vec!["train", "--resume", arg(&run)],
    ] {
        fails_clearly(&cmd, &[arg(&run), "no checkpoint found"]);
    }
}

#[test]
fn a_truncated_model_file_is_named() {
    let (_tmp, run) = finished_run();
    let model = checkpoint_file(&run, "model.safetensors");
    let bytes = std::fs::read(&model).unwrap();
    std::fs::write(&model, &bytes[..bytes.len() / 2]).unwrap();
    for cmd in [
        vec!["eval", arg(&run)],
        vec!["figures", arg(&run)],
        vec!["train", "--resume", arg(&run)],
    ] {
        fails_clearly(&cmd, &[arg(&model), "SHA-256", "truncated"]);
    }
}

#[test]
fn a_garbage_model_file_is_named() {
    let (_tmp, run) = finished_run();
    let model = checkpoint_file(&run, "model.safetensors");
    std::fs::write(&model, b"\xff\xff\xff\xff\xff\xff\xff\x7fgarbage").unwrap();
    fails_clearly(&["eval", arg(&run)], &[arg(&model), "SHA-256"]);
}

/// Without the hash list (a checkpoint of an older carve), the file still fails by name when it is read.
#[test]
fn a_garbage_model_file_without_hashes_is_named() {
    let (_tmp, run) = finished_run();
    std::fs::remove_file(checkpoint_file(&run, "sha256.json")).unwrap();
    let model = checkpoint_file(&run, "model.safetensors");
    std::fs::write(&model, b"\xff\xff\xff\xff\xff\xff\xff\x7fgarbage").unwrap();
    fails_clearly(
        &["eval", arg(&run)],
        &[arg(&model), "not a readable safetensors file"],
    );
}

/// One byte changed, the length kept: a file that still parses but is not what was written.
#[test]
fn an_edited_model_file_is_caught_by_its_hash() {
    let (_tmp, run) = finished_run();
    let model = checkpoint_file(&run, "model.safetensors");
    let mut bytes = std::fs::read(&model).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    std::fs::write(&model, &bytes).unwrap();
    fails_clearly(&["figures", arg(&run)], &[arg(&model), "SHA-256", "edited"]);
}

#[test]
fn a_garbage_state_file_is_named() {
    let (_tmp, run) = finished_run();
    let state = checkpoint_file(&run, "state.json");
    std::fs::write(&state, "{ not json").unwrap();
    fails_clearly(&["eval", arg(&run)], &[arg(&state), "SHA-256"]);
    // and without the hash list, by its parse error
    std::fs::remove_file(checkpoint_file(&run, "sha256.json")).unwrap();
    fails_clearly(
        &["eval", arg(&run)],
        &[arg(&state), "not a valid train state"],
    );
}

#[test]
fn a_garbage_optimizer_file_is_named_on_resume() {
    let (_tmp, run) = finished_run();
    let opt = checkpoint_file(&run, "optimizer.safetensors");
    std::fs::write(&opt, [0u8; 40]).unwrap();
    fails_clearly(
        &["train", "--resume", arg(&run), "--set", "train.steps=3"],
        &[arg(&opt), "SHA-256"],
    );
    std::fs::remove_file(checkpoint_file(&run, "sha256.json")).unwrap();
    fails_clearly(
        &["train", "--resume", arg(&run)],
        &[arg(&opt), "not a readable safetensors file"],
    );
}

#[test]
fn a_garbage_hash_list_is_named() {
    let (_tmp, run) = finished_run();
    let hashes = checkpoint_file(&run, "sha256.json");
    std::fs::write(&hashes, "\u{feff}[1, 2").unwrap();
    fails_clearly(
        &["eval", arg(&run)],
        &[arg(&hashes), "not a valid hash list"],
    );
}

#[test]
fn a_config_edited_to_another_architecture_names_the_parameter() {
    let (_tmp, run) = finished_run();
    let config = run.join("config.ron");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("16"), "{text}");
    std::fs::write(&config, text.replace("16", "24")).unwrap();
    for cmd in [
        vec!["eval", arg(&run)],
        vec!["train", "--resume", arg(&run)],
    ] {
        fails_clearly(
            &cmd,
            &[
                "shape mismatch",
                "parameter `",
                "model.safetensors",
                "24]",
                "16]",
            ],
        );
    }
}

/// Documented acceptance: a run killed between the checkpoint swap's two renames has only
/// `checkpoint.old/`; eval reads it and resume continues from it.
#[test]
fn a_run_left_mid_swap_reads_its_previous_checkpoint() {
    let (_tmp, run) = finished_run();
    std::fs::rename(run.join("checkpoint"), run.join("checkpoint.old")).unwrap();
    succeeds(&["eval", arg(&run)]);
    succeeds(&["train", "--resume", arg(&run), "--set", "train.steps=3"]);
    assert!(run.join("checkpoint/state.json").exists());
    assert!(!run.join("checkpoint.old").exists());
}

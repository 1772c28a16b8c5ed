//! Bad-input cases: faults and careless use of run directories — writing over a finished run, two writers
//! at once, resuming with fewer steps, run names that leave `runs/`, a diverging run, a full disk.

use crate::support::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// [`SMALL_CONFIG`] with another `train` section.
fn with_train(train: &str) -> String {
    let base = "train: (steps: 2, batch_size: 8, checkpoint_every: 1, log_every: 1)";
    assert!(SMALL_CONFIG.contains(base));
    SMALL_CONFIG.replace(base, train)
}

/// Trains [`SMALL_CONFIG`] into `tmp/run`; returns the config and the run.
fn trained(tmp: &Path) -> (PathBuf, PathBuf) {
    let config = write(tmp, "small.ron", SMALL_CONFIG);
    let run = tmp.join("run");
    succeeds(&["train", arg(&config), "--out", arg(&run)]);
    (config, run)
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn checkpoint_step(run: &Path) -> u64 {
    json(&run.join("checkpoint/state.json"))["step"]
        .as_u64()
        .unwrap()
}

#[test]
fn out_onto_a_finished_run_is_refused_and_the_run_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let (config, run) = trained(tmp.path());
    let before = std::fs::read(run.join("metrics.jsonl")).unwrap();
    fails_clearly(
        &["train", arg(&config), "--out", arg(&run)],
        &[arg(&run), "already holds a run", "--resume", "--overwrite"],
    );
    assert_eq!(std::fs::read(run.join("metrics.jsonl")).unwrap(), before);
    assert!(run.join("summary.json").exists() && run.join("checkpoint").exists());
}

/// Documented acceptance: `--overwrite` replaces the run deliberately (its log, checkpoint and summary are
/// the new run's); files that are not the run's stay.
#[test]
fn overwrite_replaces_a_finished_run() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, run) = trained(tmp.path());
    write(&run, "notes.txt", "mine");
    let longer = write(
        tmp.path(),
        "longer.ron",
        with_train("train: (steps: 3, batch_size: 8, checkpoint_every: 1, log_every: 1)"),
    );
    succeeds(&["train", arg(&longer), "--out", arg(&run), "--overwrite"]);
    let log = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 3, "{log}");
    assert_eq!(checkpoint_step(&run), 3);
    assert_eq!(json(&run.join("summary.json"))["steps"], 3);
    assert!(run.join("notes.txt").exists());
}

#[test]
fn overwrite_and_resume_together_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (config, run) = trained(tmp.path());
    fails_clearly(
        &["train", arg(&config), "--resume", arg(&run), "--overwrite"],
        &["--overwrite", "--resume"],
    );
    assert_eq!(checkpoint_step(&run), 2);
}

/// Holds a run directory's lock as a running `carve train` does.
fn hold_lock(run: &Path) -> std::fs::File {
    let lock = std::fs::File::options()
        .write(true)
        .open(run.join("carve.lock"))
        .unwrap();
    lock.try_lock().unwrap();
    lock
}

#[test]
fn a_second_writer_on_a_locked_run_fails_naming_the_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let (config, run) = trained(tmp.path());
    let lock = hold_lock(&run);
    let before = std::fs::read(run.join("metrics.jsonl")).unwrap();
    for cmd in [
        vec!["train", "--resume", arg(&run), "--set", "train.steps=4"],
        vec!["train", arg(&config), "--out", arg(&run), "--overwrite"],
    ] {
        fails_clearly(&cmd, &[arg(&run), "another carve process", "carve.lock"]);
    }
    // Nothing of the run was touched, not even by --overwrite.
    assert_eq!(std::fs::read(run.join("metrics.jsonl")).unwrap(), before);
    assert_eq!(checkpoint_step(&run), 2);
    drop(lock);
    succeeds(&["train", "--resume", arg(&run), "--set", "train.steps=3"]);
}

/// Two real processes: a long training holds the lock while a second one tries the same directory.
#[test]
fn a_second_training_process_on_the_same_out_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let long = write(
        tmp.path(),
        "long.ron",
        with_train("train: (steps: 100000, batch_size: 8, checkpoint_every: 100000, log_every: 1)"),
    );
    let run = tmp.path().join("run");
    let mut first = Command::new(env!("CARGO_BIN_EXE_carve"))
        .args(["train", arg(&long), "--out", arg(&run)])
        .env("RUST_LOG", "warn")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the first one trains (its log has a line).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while std::fs::read_to_string(run.join("metrics.jsonl"))
        .map(|l| l.is_empty())
        .unwrap_or(true)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the first training never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let second = run_in(
        None,
        &["train", arg(&long), "--out", arg(&run), "--overwrite"],
        &[],
    );
    first.kill().unwrap();
    first.wait().unwrap();
    assert_clear_error(
        "a second training on a busy --out",
        &second,
        &[
            arg(&run),
            "another carve process",
            &format!("pid {}", first.id()),
        ],
    );
}

#[test]
fn resuming_with_fewer_steps_than_done_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, run) = trained(tmp.path());
    let config = write(
        tmp.path(),
        "shorter.ron",
        with_train("train: (steps: 1, batch_size: 8, checkpoint_every: 1, log_every: 1)"),
    );
    fails_clearly(
        &["train", arg(&config), "--resume", arg(&run)],
        &[
            arg(&run),
            "already at step 2",
            "train.steps = 1",
            "cannot be shortened",
        ],
    );
    assert_eq!(checkpoint_step(&run), 2);
    assert_eq!(json(&run.join("summary.json"))["steps"], 2);
}

/// Documented acceptance: resuming a finished run with its own step count trains nothing, redoes the
/// summary, and keeps its training time.
#[test]
fn resuming_a_finished_run_trains_nothing_and_keeps_its_time() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, run) = trained(tmp.path());
    let before = json(&run.join("summary.json"));
    let log = std::fs::read(run.join("metrics.jsonl")).unwrap();
    succeeds(&["train", "--resume", arg(&run)]);
    let after = json(&run.join("summary.json"));
    assert_eq!(after["steps"], 2);
    let (a, b) = (
        before["wall_seconds"].as_f64().unwrap(),
        after["wall_seconds"].as_f64().unwrap(),
    );
    assert!(a > 0.0 && (b - a).abs() < 0.05 * a + 0.05, "{a} then {b}");
    assert_eq!(std::fs::read(run.join("metrics.jsonl")).unwrap(), log);
}

/// Documented acceptance: more steps extend the run; the new budget is recorded in its config and the
/// summary's time adds up over both sessions.
#[test]
fn resuming_with_more_steps_records_them_and_adds_up_the_time() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, run) = trained(tmp.path());
    let first = json(&run.join("summary.json"))["wall_seconds"]
        .as_f64()
        .unwrap();
    succeeds(&["train", "--resume", arg(&run), "--set", "train.steps=4"]);
    let config = std::fs::read_to_string(run.join("config.ron")).unwrap();
    assert!(config.contains("steps: 4"), "{config}");
    let summary = json(&run.join("summary.json"));
    assert_eq!(summary["steps"], 4);
    assert!(
        summary["wall_seconds"].as_f64().unwrap() > first,
        "{summary}"
    );
    assert_eq!(checkpoint_step(&run), 4);
    let log = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 4, "{log}");
}

#[test]
fn run_names_that_leave_runs_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path().join("work");
    std::fs::create_dir_all(&cwd).unwrap();
    for name in [
        "../escape",
        "/abs/run",
        "a/b",
        "",
        r"back\\slash",
        r"nul\u{0}",
    ] {
        let text = SMALL_CONFIG.replace(r#"name: "bad-input""#, &format!("name: \"{name}\""));
        let config = write(tmp.path(), "named.ron", text);
        let out = run_in(Some(&cwd), &["train", arg(&config)], &[]);
        assert_clear_error(&format!("name {name:?}"), &out, &["field `name`"]);
    }
    let written: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(written.len(), 2, "something was written: {written:?}");
    assert!(!cwd.join("runs").exists());
}

/// The learning rate grows ×100 every 3 steps: the weights go non-finite within a few dozen steps. The
/// error names the steps and the kept checkpoint, which is finite and evaluates.
#[test]
fn a_diverging_run_stops_clearly_and_keeps_a_finite_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write(
        tmp.path(),
        "diverge.ron",
        with_train(
            "train: (steps: 200, batch_size: 8, checkpoint_every: 1, log_every: 1, \
             lr_schedule: StepDecay(every: 3, factor: 100, floor: 0))",
        ),
    );
    let run = tmp.path().join("run");
    let err = fails_clearly(
        &["train", arg(&config), "--out", arg(&run)],
        &["training diverged", "is finite and kept in", arg(&run)],
    );
    let kept = checkpoint_step(&run);
    assert!(
        err.contains(&format!("the last checkpoint, at step {kept},"))
            && err.contains(&format!("step {}", kept + 1)),
        "{err}"
    );
    // The log counts steps as the message does: its last line is the last step trained.
    let log = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let last: Value = serde_json::from_str(log.lines().last().unwrap()).unwrap();
    assert!(
        err.contains(&format!("step {}", last["step"])),
        "{err}\n{log}"
    );
    let scores: Value = serde_json::from_str(&succeeds(&["eval", arg(&run)])).unwrap();
    for (name, v) in scores["metrics"].as_object().unwrap() {
        assert!(v.as_f64().is_some_and(f64::is_finite), "{name}: {v}");
    }
    succeeds(&["figures", arg(&run)]);
}

/// A run trained into an 8 MiB tmpfs, then resumed after the disk is filled: the error names the file and
/// the OS error once, and the run keeps its last complete checkpoint. Needs root (`mount`); skipped with a
/// printed reason otherwise.
#[test]
fn a_full_disk_is_named_once_and_the_last_checkpoint_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let mnt = tmp.path().join("small-disk");
    std::fs::create_dir_all(&mnt).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=8m", "tmpfs", arg(&mnt)])
        .output();
    match mounted {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            eprintln!(
                "skipped: cannot mount a tmpfs ({})",
                String::from_utf8_lossy(&o.stderr).trim()
            );
            return;
        }
        Err(e) => {
            eprintln!("skipped: cannot run mount ({e})");
            return;
        }
    }
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(self.0).status();
        }
    }
    let _unmount = Unmount(&mnt);

    let config = write(tmp.path(), "small.ron", SMALL_CONFIG);
    let run = mnt.join("run");
    succeeds(&["train", arg(&config), "--out", arg(&run)]);
    let model = std::fs::read(run.join("checkpoint/model.safetensors")).unwrap();
    // Fill the disk, then free 64 KiB: room for the config and log lines, not for a checkpoint.
    let filler_path = mnt.join("filler");
    let mut filler = std::fs::File::create(&filler_path).unwrap();
    let chunk = vec![0u8; 4096];
    let mut filled = 0u64;
    while std::io::Write::write_all(&mut filler, &chunk).is_ok() {
        filled += chunk.len() as u64;
    }
    assert!(
        model.len() > 128 << 10,
        "the model is too small for this test"
    );
    filler.set_len(filled.saturating_sub(64 << 10)).unwrap();
    drop(filler);
    let out = run_in(
        None,
        &["train", "--resume", arg(&run), "--set", "train.steps=4"],
        &[],
    );
    let err = assert_clear_error(
        "training onto a full disk",
        &out,
        &[arg(&run), "No space left on device"],
    );
    assert_eq!(
        err.matches("No space left on device").count(),
        1,
        "the OS error is repeated:\n{err}"
    );
    // The kept checkpoint is the complete one of step 2, and it still loads.
    assert_eq!(checkpoint_step(&run), 2);
    assert_eq!(
        std::fs::read(run.join("checkpoint/model.safetensors")).unwrap(),
        model
    );
    assert!(!run.join("checkpoint.tmp").exists());
    std::fs::remove_file(&filler_path).unwrap();
    succeeds(&["eval", arg(&run)]);
}

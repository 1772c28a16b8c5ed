//! `carve sweep --slurm` against a real single-node Slurm cluster (slurmctld, slurmd, munge, slurmdbd), which
//! `scripts/slurm-local.sh start` installs, configures and starts (`.ci/run` calls it first). Where that
//! script says Slurm cannot be had here (not root, no apt), the test prints why and passes without running.
//!
//! Eight tiny runs go through one job array. Half of them are killed by a fault point at step 15, past their
//! step-10 checkpoint; Slurm records those tasks as failed, `--rerun-failed` submits only them, and they resume
//! and finish. Then every run's summary and the aggregated report are checked.

mod common;

use common::{carve, text};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Starts the local cluster; `None` (after printing why) where Slurm cannot be had on this machine.
fn local_slurm() -> Option<()> {
    let out = Command::new("bash")
        .arg(repo().join("scripts/slurm-local.sh"))
        .arg("start")
        .output()
        .expect("run scripts/slurm-local.sh");
    let said = text(&out);
    match out.status.code() {
        Some(0) => Some(()),
        Some(2) => {
            eprintln!("skipped: no local Slurm here: {}", said.trim());
            None
        }
        _ => panic!("scripts/slurm-local.sh start failed:\n{said}"),
    }
}

/// Polls `carve sweep --status` until no run is queued or running and Slurm's accounting knows every
/// submitted task's final state (sacct lags squeue by a few seconds).
fn wait_for_array(file: &str, out: &str, timeout: Duration) -> String {
    let start = Instant::now();
    loop {
        let status = carve(&["sweep", file, "--out", out, "--status"], &[]);
        let table = text(&status);
        assert!(status.status.success(), "{table}");
        let live = [
            "PENDING",
            "RUNNING",
            "COMPLETING",
            "unknown to Slurm",
            " queued ",
            " running ",
        ]
        .iter()
        .any(|w| table.contains(w));
        if !live {
            return table;
        }
        assert!(
            start.elapsed() < timeout,
            "the array did not finish in {timeout:?}:\n{table}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn a_sweep_runs_as_a_slurm_job_array_and_failed_tasks_are_resubmitted() {
    if local_slurm().is_none() {
        return;
    }
    let t0 = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let base = repo().join("configs/sparsity/action_nontrivial.ron");
    // 20-step runs are killed at step 15 on the first submission; 12-step runs never reach it.
    let sweep = format!(
        r#"(
    name: "slurm_e2e",
    base: "{}",
    set: ["data.n_train=512", "data.n_test=256", "train.batch_size=32", "train.log_every=5",
          "train.checkpoint_every=10", "eval.max_samples=256"],
    grid: [(set: "train.steps", values: [12, 20])],
    seeds: [1, 2, 3, 4],
)"#,
        base.display()
    );
    let file = tmp.path().join("slurm_e2e.ron");
    std::fs::write(&file, sweep).unwrap();
    let out = tmp.path().join("out");
    let (f, o) = (file.to_str().unwrap(), out.to_str().unwrap());

    let submit = carve(
        &["sweep", f, "--out", o, "--slurm", "--cpus-per-task", "1"],
        &[("CARVE_FAULT_KILL_AT", "step:15")],
    );
    let said = text(&submit);
    assert!(submit.status.success(), "{said}");
    assert!(said.contains("array 0-7"), "{said}");
    let script = std::fs::read_to_string(out.join("slurm/array-1.sbatch")).unwrap();
    assert!(script.contains("#SBATCH --array=0-7"), "{script}");
    assert!(
        script.contains("--run-index \"$SLURM_ARRAY_TASK_ID\""),
        "{script}"
    );

    let first = wait_for_array(f, o, Duration::from_secs(180));
    eprintln!("after the first array:\n{first}");
    for seed in 1..=4 {
        assert!(
            first.contains(&format!("steps=12_seed={seed}  done")),
            "{first}"
        );
        assert!(
            first.contains(&format!("steps=20_seed={seed}  failed")),
            "{first}"
        );
    }
    assert!(
        first.contains("FAILED"),
        "Slurm's state of the killed tasks: {first}"
    );

    let rerun = carve(&["sweep", f, "--out", o, "--slurm", "--rerun-failed"], &[]);
    let said = text(&rerun);
    assert!(rerun.status.success(), "{said}");
    assert!(said.contains("array 4-7"), "only the failed runs: {said}");
    let second = wait_for_array(f, o, Duration::from_secs(180));
    eprintln!("after --rerun-failed:\n{second}");
    assert!(second.contains("8 runs: 8 done"), "{second}");

    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("sweep.json")).unwrap()).unwrap();
    assert_eq!(manifest["slurm"].as_array().unwrap().len(), 2);
    for run in manifest["runs"].as_array().unwrap() {
        let dir = out.join(run["dir"].as_str().unwrap());
        let summary: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap())
                .unwrap();
        let steps = summary["steps"].as_u64().unwrap();
        assert!(summary["metrics"]["mcc"].as_f64().is_some(), "{summary}");
        let log = std::fs::read_to_string(dir.join("carve.log")).unwrap();
        if steps == 20 {
            // Killed after step 15 by the first array, resumed from step 10 by the second.
            assert!(
                log.contains("resuming") && log.contains("at step 10"),
                "{log}"
            );
        }
        assert!(run["slurm_job"].as_str().unwrap().contains('_'));
    }

    let report_dir = tmp.path().join("report");
    let report = carve(
        &[
            "report",
            o,
            "--metrics",
            "mcc",
            "--out",
            report_dir.to_str().unwrap(),
        ],
        &[],
    );
    let said = text(&report);
    assert!(report.status.success(), "{said}");
    let table = std::fs::read_to_string(report_dir.join("report.md")).unwrap();
    for row in ["| 12 |", "| 20 |"] {
        let line = table
            .lines()
            .find(|l| l.starts_with(row))
            .unwrap_or_else(|| panic!("no row {row}:\n{table}"));
        assert!(
            line.contains(" ± ") && line.trim_end().ends_with("| 4 |"),
            "{line}"
        );
    }
    eprintln!(
        "local Slurm sweep test: {:.1} s",
        t0.elapsed().as_secs_f64()
    );
}

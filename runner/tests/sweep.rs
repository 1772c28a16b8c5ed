//! `carve sweep` on this machine, end to end: parallel runs, the manifest, a failing run that leaves the others
//! going, skipping finished runs, resuming a killed one, shards, and a metric the data cannot support caught
//! before any run starts. Each run is a second-long mechanism-sparsity job on small synthetic data.

mod common;

use common::{carve, text};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// A sweep of the sparsity config at a few seconds a run; `axes` is the sweep file's text after `set`.
fn sweep_file(dir: &Path, name: &str, extra_set: &str, axes: &str) -> PathBuf {
    let base =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/sparsity/action_nontrivial.ron");
    let text = format!(
        r#"(
    name: "{name}",
    base: "{}",
    set: ["data.n_train=512", "data.n_test=256", "train.steps=20", "train.batch_size=32", "train.log_every=5",
          "train.checkpoint_every=10", "eval.max_samples=256"{extra_set}],
    {axes}
)"#,
        base.display()
    );
    let path = dir.join(format!("{name}.ron"));
    std::fs::write(&path, text).unwrap();
    path
}

fn manifest(out: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("sweep.json")).unwrap()).unwrap()
}

fn statuses(out: &Path) -> Vec<(String, String)> {
    manifest(out)["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_string(),
                r["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn a_sweep_runs_in_parallel_reports_a_failing_run_and_skips_finished_runs() {
    let tmp = tempfile::tempdir().unwrap();
    // lr = 1e30 diverges at step 2: a run that fails while the others go on.
    let file = sweep_file(
        tmp.path(),
        "lr",
        "",
        r#"grid: [(set: "train.optimizer.lr", values: [1e-3, 1e30], labels: ["small", "huge"], name: "lr")],
    seeds: [1, 2],"#,
    );
    let out = tmp.path().join("out");
    let (f, o) = (file.to_str().unwrap(), out.to_str().unwrap());
    let first = carve(&["sweep", f, "--out", o, "--jobs", "2", "--quiet"], &[]);
    let log = text(&first);
    assert!(!first.status.success(), "{log}");
    assert!(log.contains("2 runs failed (the others finished)"), "{log}");
    assert!(log.contains("lr=huge_seed=1: training diverged"), "{log}");
    assert_eq!(
        statuses(&out),
        [
            ("lr=small_seed=1", "done"),
            ("lr=small_seed=2", "done"),
            ("lr=huge_seed=1", "failed"),
            ("lr=huge_seed=2", "failed"),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    let m = manifest(&out);
    assert_eq!(
        m["runs"][1]["overrides"],
        serde_json::json!(["train.optimizer.lr=0.001", "train.seed=2"])
    );
    assert!(m["runs"][2]["exit"].as_str().unwrap().contains("diverged"));
    for run in ["lr=small_seed=1", "lr=small_seed=2"] {
        let dir = out.join("runs").join(run);
        let summary: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap())
                .unwrap();
        assert!(summary["metrics"]["mcc"].as_f64().is_some(), "{summary}");
        let config = std::fs::read_to_string(dir.join("config.ron")).unwrap();
        let seed = &run[run.len() - 1..];
        assert!(config.contains(&format!("seed: {seed}")), "{config}");
        assert!(dir.join("carve.log").is_file());
    }

    let again = carve(&["sweep", f, "--out", o, "--jobs", "2", "--quiet"], &[]);
    let log = text(&again);
    assert!(
        log.contains("2 of 4 runs already finished, skipped"),
        "{log}"
    );
    assert!(
        log.contains("0 trained, 2 already finished, 2 failed"),
        "{log}"
    );

    let status = carve(&["sweep", f, "--out", o, "--status"], &[]);
    let table = text(&status);
    assert!(status.status.success(), "{table}");
    assert!(table.contains("4 runs: 2 done, 2 failed"), "{table}");
    assert!(table.contains("└ training diverged"), "{table}");
}

#[test]
fn a_killed_run_resumes_from_its_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let file = sweep_file(tmp.path(), "kill", "", "seeds: [1],");
    let out = tmp.path().join("out");
    let (f, o) = (file.to_str().unwrap(), out.to_str().unwrap());
    // The run's process is killed (SIGKILL) after step 15; its checkpoint of step 10 survives.
    let killed = carve(
        &["sweep", f, "--out", o, "--quiet"],
        &[("CARVE_FAULT_KILL_AT", "step:15")],
    );
    assert!(!killed.status.success());
    assert!(
        text(&killed).contains("killed by signal 9"),
        "{}",
        text(&killed)
    );
    assert_eq!(statuses(&out)[0].1, "failed");

    let resumed = carve(&["sweep", f, "--out", o, "--quiet"], &[]);
    assert!(resumed.status.success(), "{}", text(&resumed));
    assert_eq!(statuses(&out)[0].1, "done");
    let dir = out.join("runs/seed=1");
    let log = std::fs::read_to_string(dir.join("carve.log")).unwrap();
    assert!(log.contains("at step 10"), "{log}");
    let steps: Vec<u64> = std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["step"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(steps, [5, 10, 15, 20]);
}

#[test]
fn shards_dry_runs_and_unsupported_metrics() {
    let tmp = tempfile::tempdir().unwrap();
    let file = sweep_file(tmp.path(), "shard", "", "seeds: [1, 2, 3, 4],");
    let out = tmp.path().join("out");
    let (f, o) = (file.to_str().unwrap(), out.to_str().unwrap());
    let dry = carve(&["sweep", f, "--out", o, "--dry-run"], &[]);
    assert!(dry.status.success(), "{}", text(&dry));
    assert!(text(&dry).contains("4 runs checked"), "{}", text(&dry));
    assert!(!out.exists(), "a dry run writes nothing");

    let second = carve(&["sweep", f, "--out", o, "--shard", "2/2", "--quiet"], &[]);
    assert!(second.status.success(), "{}", text(&second));
    let done: Vec<String> = statuses(&out)
        .into_iter()
        .filter(|(_, s)| s == "done")
        .map(|(n, _)| n)
        .collect();
    assert_eq!(done, ["seed=3", "seed=4"]);

    // The synthetic data have no interventional simulator: refused before any run starts.
    let bad = sweep_file(
        tmp.path(),
        "bad",
        r#", "eval.metrics=[\"mcc\", \"intervention\"]""#,
        "seeds: [1, 2],",
    );
    let bad_out = tmp.path().join("bad_out");
    let refused = carve(
        &[
            "sweep",
            bad.to_str().unwrap(),
            "--out",
            bad_out.to_str().unwrap(),
        ],
        &[],
    );
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("metric `intervention` needs a simulator of interventions"),
        "{}",
        text(&refused)
    );
    assert!(!bad_out.exists(), "nothing is written before the check");
}

#[test]
fn bad_sweep_input_gets_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let good = sweep_file(tmp.path(), "good", "", "seeds: [1],");
    let write = |name: &str, text: &str| {
        let p = tmp.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let cases = [
        (
            vec![
                "sweep".into(),
                good.display().to_string(),
                "--jobs".into(),
                "0".into(),
            ],
            "--jobs 0: give at least 1",
        ),
        (
            vec![
                "sweep".into(),
                write("typo.ron", r#"(name: "t", base: "x.ron", sedes: [1])"#),
            ],
            "unknown field `sedes`",
        ),
        (
            vec![
                "sweep".into(),
                write("nobase.ron", r#"(name: "t", base: "missing.ron")"#),
            ],
            "no config file at",
        ),
        (
            vec![
                "sweep".into(),
                write("syntax.ron", "(name: \"t\",\n base: [)"),
            ],
            "syntax.ron:2:",
        ),
        (
            vec![
                "sweep".into(),
                tmp.path().join("absent.ron").display().to_string(),
            ],
            "no such sweep file",
        ),
        (
            vec![
                "sweep".into(),
                good.display().to_string(),
                "--set".into(),
                "train.stpes=3".into(),
            ],
            "did you mean `steps`",
        ),
    ];
    for (args, needle) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = carve(&args, &[]);
        let said = text(&out);
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(said.contains(needle), "{args:?}: {said}");
        assert!(!said.contains("panicked"), "{args:?}: {said}");
    }
}

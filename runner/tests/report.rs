//! `carve report` end to end: four fake runs (two configurations × two seeds) in a sweep-like folder, and one
//! unfinished run, read by the binary into report.md, report.csv and plots.

use std::path::Path;
use std::process::{Command, Output};

fn carve(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_carve"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run carve")
}

/// A small config in the form a run saves: components in typetag's map form.
fn config(prior: &str, seed: u64) -> String {
    format!(
        r#"(
    name: "dear-s{seed}",
    data: {{"Pendulum": (size: 32, channels: 3)}},
    model: {{"Dear": (
        latent_dim: 4,
        encoder: {{"Conv": (channels: [32, 64], hidden: 256, activation: LeakyRelu(0.2))}},
        prior: {prior},
    )}},
    train: (steps: 100, batch_size: 64, seed: {seed}),
)"#
    )
}

fn write_run(dir: &Path, prior: &str, seed: u64, mcc: f64, mae: f64, wall: f64) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("config.ron"), config(prior, seed)).unwrap();
    let summary = format!(
        r#"{{"steps": 100, "wall_seconds": {wall}, "samples_per_sec": 10.0,
            "metrics": {{"mcc": {mcc}, "mcc_aligned_0": 0.5, "intervention_mae": {mae}, "edge_auroc": null}}}}"#
    );
    std::fs::write(dir.join("summary.json"), summary).unwrap();
}

#[test]
fn report_tabulates_configurations_over_seeds() {
    let tmp = tempfile::tempdir().unwrap();
    let sweep = tmp.path().join("sweep");
    let runs = sweep.join("runs");
    let additive = r#"{"Additive": (hidden: [16])}"#;
    let normal = r#"{"StdNormal": ()}"#;
    write_run(&runs.join("a-s1"), additive, 1, 0.98, 1.0, 50.0);
    write_run(&runs.join("a-s2"), additive, 2, 0.96, 2.0, 70.0);
    write_run(&runs.join("n-s1"), normal, 1, 0.70, 3.0, 40.0);
    write_run(&runs.join("n-s2"), normal, 2, 0.80, 5.0, 60.0);
    let unfinished = runs.join("n-s3");
    std::fs::create_dir_all(&unfinished).unwrap();
    std::fs::write(unfinished.join("config.ron"), config(normal, 3)).unwrap();

    let out = carve(&["report", sweep.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("skipped") && stderr.contains(unfinished.to_str().unwrap()),
        "{stderr}"
    );
    let dir = sweep.join("report");
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(
        stdout.contains(&md) && stdout.contains(dir.to_str().unwrap()),
        "{stdout}"
    );
    // The prior is swapped, so its fields (hidden) are no column; seeds and names fold; details of mcc are not
    // headline metrics; a metric that is null everywhere has no value to show.
    assert!(
        md.contains("| model.prior | intervention_mae | mcc | wall_seconds | n |"),
        "{md}"
    );
    assert!(
        md.contains("| Additive | 1.50 ± 0.71 | 0.970 ± 0.014 | 60.0 ± 14.1 | 2 |"),
        "{md}"
    );
    assert!(
        md.contains("| StdNormal | 4.00 ± 1.41 | 0.750 ± 0.071 | 50.0 ± 14.1 | 2 |"),
        "{md}"
    );
    assert!(
        md.contains("best mcc: model.prior=Additive (0.970 ± 0.014")
            && md.contains("best intervention_mae: model.prior=Additive")
            && md.contains("best wall_seconds: model.prior=StdNormal"),
        "{md}"
    );
    let csv = std::fs::read_to_string(dir.join("report.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "model.prior,intervention_mae_mean,intervention_mae_sd,mcc_mean,mcc_sd,wall_seconds_mean,wall_seconds_sd,n"
    );
    assert!(
        lines[1].starts_with("Additive,1.5,0.7071067811865476,"),
        "{csv}"
    );
    assert!(
        lines[2].starts_with("StdNormal,4,1.4142135623730951,"),
        "{csv}"
    );
    for png in [
        "plot_mcc.png",
        "plot_intervention_mae.png",
        "plot_wall_seconds.png",
    ] {
        assert!(dir.join(png).is_file(), "{png}");
    }

    // --metrics picks and --group-by folds; unknown names are errors that say what exists.
    let out_dir = tmp.path().join("by-seed");
    let out = carve(&[
        "report",
        runs.to_str().unwrap(),
        "--metrics",
        "mcc_aligned_0",
        "--group-by",
        "train.seed",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let md = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    assert!(
        md.contains("| train.seed | mcc_aligned_0 | wall_seconds | n |"),
        "{md}"
    );
    assert!(
        md.contains("| 1 | 0.500 ± 0.000 | 45.0 ± 7.1 | 2 |"),
        "{md}"
    );

    let out = carve(&["report", runs.to_str().unwrap(), "--metrics", "mc"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("did you mean `mcc`"),
        "{err}"
    );
    let out = carve(&["report", runs.to_str().unwrap(), "--group-by", "model.prio"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("differ on: model.prior"),
        "{err}"
    );
    let out = carve(&["report", tmp.path().join("nothing").to_str().unwrap()]);
    assert!(!out.status.success());
}

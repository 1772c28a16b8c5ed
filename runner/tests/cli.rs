//! The `carve` binary end to end: list, train, eval (with latent export), traverse, data, and CLI errors.

use std::path::Path;
use std::process::{Command, Output};

fn carve(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_carve"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run carve")
}

fn ok(args: &[&str]) -> String {
    let out = carve(args);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "carve {args:?} failed:\n{}\n{}",
        text,
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

fn fails(args: &[&str]) -> String {
    let out = carve(args);
    assert!(!out.status.success(), "carve {args:?} should fail");
    String::from_utf8_lossy(&out.stderr).to_string()
}

fn config() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../configs/betavae/pendulum.ron")
        .display()
        .to_string()
}

#[test]
fn list_shows_methods_components_and_metrics() {
    let text = ok(&["list"]);
    for name in [
        "BetaVae",
        "Elbo",
        "Mlp",
        "Conv",
        "StdNormal",
        "Independent",
        "PriorKl",
        "Pendulum",
        "mcc",
    ] {
        assert!(text.contains(name), "`carve list` lacks {name}:\n{text}");
    }
}

#[test]
fn train_eval_traverse_on_a_small_run() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let run_s = run.to_str().unwrap();
    let cfg = config();
    ok(&[
        "train",
        &cfg,
        "--out",
        run_s,
        "--set",
        "data.size=32",
        "--set",
        "train.steps=4",
        "--set",
        "train.batch_size=8",
        "--set",
        "eval.max_samples=64",
    ]);
    let npz = dir.path().join("latents.npz");
    let text = ok(&[
        "eval",
        run_s,
        "--metrics",
        "elbo,mcc",
        "--export-latents",
        npz.to_str().unwrap(),
    ]);
    assert!(
        text.contains("\"mcc\"") && text.contains("\"elbo\""),
        "{text}"
    );
    assert!(run.join("eval.json").exists());
    let mut archive = npyz::npz::NpzArchive::open(&npz).unwrap();
    let mut shape = |name: &str| archive.by_name(name).unwrap().map(|a| a.shape().to_vec());
    assert_eq!(shape("codes"), Some(vec![64, 16]));
    assert_eq!(shape("factors"), Some(vec![64, 4]));
    assert_eq!(shape("labels"), Some(vec![64, 4]));
    let scores = ok(&["metrics", npz.to_str().unwrap(), "--metrics", "mcc,mig"]);
    let scores: serde_json::Value = serde_json::from_str(scores.trim()).unwrap();
    assert!(
        scores["mcc"].as_f64().is_some() && scores["mig"].as_f64().is_some(),
        "{scores}"
    );
    let png = dir.path().join("traverse.png");
    ok(&["traverse", run_s, "--out", png.to_str().unwrap()]);
    assert!(png.exists());
    let grid = dir.path().join("do.png");
    ok(&[
        "intervene",
        run_s,
        "--do",
        "light_angle=0.5",
        "--n",
        "4",
        "--out",
        grid.to_str().unwrap(),
    ]);
    assert!(grid.exists());
    let e = fails(&[
        "intervene",
        run_s,
        "--do",
        "ligth_angle=0.5",
        "--out",
        grid.to_str().unwrap(),
    ]);
    assert!(e.contains("did you mean light_angle"), "{e}");
    let e = fails(&["eval", run_s, "--metrics", "mccc"]);
    assert!(e.contains("did you mean mcc"), "{e}");
    // A model metric cannot be computed from exported codes alone: it says where to compute it.
    let e = fails(&[
        "metrics",
        npz.to_str().unwrap(),
        "--metrics",
        "intervention",
    ]);
    assert!(e.contains("carve eval"), "{e}");
    std::fs::remove_dir_all(run.join("figures")).unwrap();
    ok(&["figures", run_s]);
    assert!(run.join("figures/reconstructions.png").exists());
}

#[test]
fn data_writes_the_pendulum_with_the_original_split_and_names() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pendulum");
    ok(&[
        "data",
        "pendulum",
        "--out",
        out.to_str().unwrap(),
        "--set",
        "size=16",
        "--set",
        "channels=3",
    ]);
    let count = |d: &str| std::fs::read_dir(out.join(d)).unwrap().count();
    assert_eq!((count("train"), count("test")), (5482, 1826));
    assert!(out.join("train/a_-40_60_3_2.png").exists());
    let labels = std::fs::read_to_string(out.join("labels.csv")).unwrap();
    assert_eq!(labels.lines().count(), 7309);
    let e = fails(&["data", "pendulm", "--out", out.to_str().unwrap()]);
    assert!(e.contains("did you mean Pendulum"), "{e}");
}

#[test]
fn cuda_without_the_feature_or_a_gpu_is_a_clear_error() {
    if cfg!(feature = "cuda") {
        return;
    }
    let e = fails(&[
        "train",
        &config(),
        "--device",
        "cuda",
        "--set",
        "train.steps=1",
    ]);
    assert!(
        e.contains("without CUDA support") && e.contains("--device cpu"),
        "{e}"
    );
}

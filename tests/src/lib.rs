//! Shared helpers of the end-to-end tests (in `tests/tests/`). Linking this crate links every plugin.

use carve::config::Experiment;
use carve::train::{train, TrainOptions};
use std::path::{Path, PathBuf};

pub use carve_plugins::link;

/// The repository's `configs/` folder.
pub fn configs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs")
}

/// Every `.ron` file under `configs/`, sorted.
pub fn all_configs() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).expect("configs dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "ron") {
                out.push(p);
            }
        }
    }
    let mut v = Vec::new();
    walk(&configs_dir(), &mut v);
    v.sort();
    v
}

/// Overrides that make any pendulum config a few-second job: 32×32 images, tiny batches, few steps. (A config
/// that lists the `intervention` metric also wants [`small_intervention`]; [`small_for`] adds it.)
pub fn small(steps: usize) -> Vec<String> {
    vec![
        "data.size=32".into(),
        format!("train.steps={steps}"),
        "train.batch_size=8".into(),
        "train.log_every=1".into(),
        format!("train.checkpoint_every={steps}"),
        "eval.max_samples=64".into(),
    ]
}

/// Overrides that make the `intervention` metric of a config that lists it a few-second job.
pub fn small_intervention() -> Vec<String> {
    vec![
        "eval.metrics.intervention.rows=8".into(),
        "eval.metrics.intervention.values=2".into(),
        "eval.metrics.intervention.regressor.steps=3".into(),
        "eval.metrics.intervention.regressor.batch_size=8".into(),
    ]
}

/// Overrides that make any shipped config a few-second job, chosen by its dataset: [`small`] for the
/// pendulum, a few hundred rows for the synthetic tabular data.
pub fn small_for(config: &Path, steps: usize) -> Vec<String> {
    link();
    // The resolved config: a file that `extends` a base may not name its dataset.
    let text = Experiment::load(config, &[])
        .and_then(|e| e.to_ron())
        .expect("config file");
    if text.contains("\"Mnist\"") {
        return small_mnist(steps);
    }
    if text.contains("\"Dsprites\"") {
        return small_dsprites(steps);
    }
    if text.contains("\"Synthetic\"") {
        vec![
            "data.n_train=512".into(),
            "data.n_test=256".into(),
            format!("train.steps={steps}"),
            "train.batch_size=32".into(),
            "train.log_every=1".into(),
            format!("train.checkpoint_every={steps}"),
            "eval.max_samples=256".into(),
        ]
    } else {
        let mut o = small(steps);
        let exp = Experiment::load(config, &[]).expect("config file");
        if exp.eval.metrics.iter().any(|m| m.name() == "intervention") {
            o.extend(small_intervention());
        }
        o
    }
}

/// Overrides that make an MNIST config a few-second job: the shipped images (a config's relative path is
/// resolved against the current directory, which is not the repository root under `cargo test`), small batches
/// and few importance samples and rows in evaluation.
pub fn small_mnist(steps: usize) -> Vec<String> {
    let images = configs_dir().join("../data/mnist");
    vec![
        format!("data.path={}", images.display()),
        format!("train.steps={steps}"),
        "train.batch_size=16".into(),
        "train.log_every=1".into(),
        format!("train.checkpoint_every={steps}"),
        "eval.max_samples=64".into(),
        "eval.metrics.iw_loglik.samples=8".into(),
        "eval.metrics.iw_loglik.rows=16".into(),
        "eval.metrics.latent_units.rows=64".into(),
    ]
}

/// Overrides that make a dSprites config a few-second job: a few hundred scenes, small batches, and few points
/// in the simulator scores (their factor draws still cover the whole grid).
pub fn small_dsprites(steps: usize) -> Vec<String> {
    let mut o: Vec<String> = vec![
        "data.n_train=Some(256)".into(),
        "data.n_test=Some(64)".into(),
        format!("train.steps={steps}"),
        "train.batch_size=16".into(),
        "train.log_every=1".into(),
        format!("train.checkpoint_every={steps}"),
        "eval.max_samples=64".into(),
    ];
    for score in ["betavae_score", "factorvae_score"] {
        o.push(format!("eval.metrics.{score}.batch_size=4"));
        o.push(format!("eval.metrics.{score}.train_points=40"));
        o.push(format!("eval.metrics.{score}.eval_points=20"));
    }
    o.push("eval.metrics.factorvae_score.variance_points=64".into());
    o
}

/// Trains `config` with `overrides` into `out` on the CPU.
pub fn train_into(config: &Path, overrides: &[String], out: &Path) -> carve::Result<PathBuf> {
    link();
    let exp = Experiment::load(config, overrides)?;
    train(
        Some(exp),
        TrainOptions {
            out_dir: Some(out.to_path_buf()),
            resume: None,
            overwrite: false,
            device: candle_core::Device::Cpu,
            progress: false,
        },
    )
}

/// `summary.json` of a run.
pub fn summary(run: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(run.join("summary.json")).expect("summary.json");
    serde_json::from_str(&text).expect("summary json")
}

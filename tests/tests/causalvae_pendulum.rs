//! CausalVAE on the pendulum, scored against the simulator.
//!
//! CI runs a short version: the shipped config trains a few hundred steps, every metric in `summary.json` is
//! finite, and the concepts move the right way (MIC/TIC well above the untrained model's, the mask KL falls).
//! The full reproduction is ignored by default (about 15 minutes on 2 cores):
//!
//! ```text
//! cargo test --release -p carve-tests --test causalvae_pendulum -- --ignored --nocapture
//! ```

use carve_tests::{summary, train_into};
use std::path::PathBuf;

fn config() -> PathBuf {
    carve_tests::configs_dir().join("causalvae/pendulum.ron")
}

fn metric(s: &serde_json::Value, name: &str) -> f64 {
    s["metrics"][name]
        .as_f64()
        .unwrap_or_else(|| panic!("summary lacks {name}: {s}"))
}

/// Overrides that keep the evaluation quick: fewer intervened images and a smaller factor regressor.
fn quick_eval() -> Vec<String> {
    vec![
        "eval.metrics.intervention.rows=64".into(),
        "eval.metrics.intervention.values=3".into(),
        "eval.metrics.intervention.regressor.steps=300".into(),
        "train.checkpoint_every=100000".into(),
        "train.log_every=25".into(),
    ]
}

#[test]
fn short_run_learns_concepts_and_scores_finite() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("oracle");
    let run = |steps: usize, name: &str| {
        let mut o = quick_eval();
        o.push(format!("train.steps={steps}"));
        o.push(format!(
            "eval.metrics.intervention.cache_dir=\"{}\"",
            cache.display()
        ));
        let out = dir.path().join(name);
        summary(&train_into(&config(), &o, &out).unwrap())
    };
    let untrained = run(1, "untrained");
    let trained = run(300, "trained");
    eprintln!("untrained: {untrained}\ntrained: {trained}");
    for (k, v) in trained["metrics"].as_object().unwrap() {
        assert!(v.as_f64().is_some_and(f64::is_finite), "{k} = {v}");
    }
    for name in [
        "mic",
        "tic",
        "intervention_acc",
        "shd_classical",
        "intervention_acc_floor",
        "intervention_drift_floor",
    ] {
        assert!(trained["metrics"].get(name).is_some(), "{name} missing");
    }
    // The simulator's own renders of the intervened scenes score better than a 300-step model's.
    assert!(
        metric(&trained, "intervention_acc_floor") > metric(&trained, "intervention_acc"),
        "the instrument's floor is no better than the model"
    );
    assert!(
        metric(&trained, "mic") > metric(&untrained, "mic") + 0.2,
        "MIC did not rise"
    );
    assert!(metric(&trained, "tic") > metric(&untrained, "tic") + 0.2);
    // The mask KL ties each concept's mechanism output to its label: it must fall.
    let log = std::fs::read_to_string(dir.path().join("trained/metrics.jsonl")).unwrap();
    let mask_kl: Vec<f64> = log
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["mask_kl"]
                .as_f64()
                .unwrap()
        })
        .collect();
    assert!(
        mask_kl.last().unwrap() < &(mask_kl[0] / 2.0),
        "mask KL {mask_kl:?}"
    );
}

/// Trains `config` full length and asserts the reproduction targets (docs/results/causalvae.md).
fn reaches_the_targets(config: PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let run = train_into(&config, &[], dir.path()).unwrap();
    let s = summary(&run);
    eprintln!("{}", serde_json::to_string_pretty(&s).unwrap());
    assert!(metric(&s, "mic") >= 0.93);
    assert!(metric(&s, "tic") >= 0.85);
    assert!(metric(&s, "shd_classical") <= 1.0);
    assert!(metric(&s, "intervention_acc") >= 0.9);
    assert!(metric(&s, "intervention_drift") < 1.0);
}

/// The reproduction targets from the shipped config, full length. Seed 1 gives drift 0.45, SHD 0 and MIC / TIC
/// 99.8 / 95.0, but intervention accuracy 0.89, 0.01 short of the target (it was 0.95 before the fused linear
/// layer changed the order of floating-point sums): this test fails until the config gains it back
/// (docs/results/causalvae.md).
#[test]
#[ignore = "full reproduction: ~20 min on 2 cores"]
fn full_run_reaches_the_targets() {
    reaches_the_targets(config());
}

/// The same targets from the wide-decoder ablation: seed 1 reaches accuracy 0.91, drift 0.95, SHD 0 and MIC / TIC
/// 99.8 / 94.9 (docs/results/causalvae.md).
#[test]
#[ignore = "full run: ~25 min on 2 cores"]
fn layered_run_reaches_the_targets() {
    reaches_the_targets(
        carve_tests::configs_dir().join("causalvae/ablations/wide_decoders_global_pruning.ron"),
    );
}

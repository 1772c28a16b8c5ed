//! Checkpoints restore a model exactly, and a resumed run continues where it stopped.

use carve::data::Split;
use carve::train::{train, Session, TrainOptions};
use carve_tests::{configs_dir, small, small_for, train_into};

fn encode_test_rows(run: &std::path::Path) -> Vec<f32> {
    encode_with(&Session::open(run, candle_core::Device::Cpu).unwrap())
}

fn encode_with(s: &Session) -> Vec<f32> {
    let batch = s.sample_batch(Split::Test, 16).unwrap();
    s.method
        .encode(&batch.x)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

#[test]
fn save_then_load_gives_identical_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = configs_dir().join("betavae/pendulum.ron");
    let run = train_into(&cfg, &small(4), dir.path()).unwrap();
    let a = encode_test_rows(&run);
    let b = encode_test_rows(&run);
    assert_eq!(a, b);
    // and they are the trained values, not a fresh initialisation
    let fresh = {
        let exp = carve::config::Experiment::load(&cfg, &small(4)).unwrap();
        encode_with(&Session::new(exp, candle_core::Device::Cpu, dir.path().join("x")).unwrap())
    };
    assert_ne!(a, fresh);
}

#[test]
fn resume_continues_from_the_last_checkpoint_to_the_same_end() {
    resume_matches_uninterrupted("betavae/pendulum.ron", &[]);
}

/// A method with its own state beyond one Adam: two optimizers and a Lagrange multiplier that has grown
/// (a short bound schedule makes the constraint bind within the first steps).
#[test]
fn resume_restores_constraint_multipliers_and_both_optimizers() {
    resume_matches_uninterrupted(
        "sparsity/action_nontrivial.ron",
        &[
            "model.sparsity_a.bound=5.0".into(),
            "model.sparsity_a.schedule_steps=1".into(),
            "model.sparsity_a.dual_lr=1.0".into(),
        ],
    );
}

/// DEAR: five optimizers (two with β1 = 0, one at default betas) and the spectral norms' power-iteration
/// vectors, which are state but not trained.
#[test]
fn resume_restores_every_gan_optimizer_and_spectral_norm_state() {
    resume_matches_uninterrupted("dear/pendulum.ron", &[]);
}

fn resume_matches_uninterrupted(config: &str, extra: &[String]) {
    let cfg = configs_dir().join(config);
    let overrides = |steps: usize| -> Vec<String> {
        let mut o = small_for(&cfg, steps);
        o.extend_from_slice(extra);
        o
    };
    let dir = tempfile::tempdir().unwrap();
    // Uninterrupted: 6 steps.
    let full = train_into(&cfg, &overrides(6), &dir.path().join("full")).unwrap();
    // Interrupted after step 3 (its last checkpoint), then resumed to 6.
    let part = train_into(&cfg, &overrides(3), &dir.path().join("part")).unwrap();
    let exp = carve::config::Experiment::load(&cfg, &overrides(6)).unwrap();
    train(
        Some(exp),
        TrainOptions {
            out_dir: None,
            resume: Some(part.clone()),
            device: candle_core::Device::Cpu,
            progress: false,
        },
    )
    .unwrap();
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(part.join("checkpoint/state.json")).unwrap())
            .unwrap();
    assert_eq!(state["step"], 6);
    let steps: Vec<u64> = std::fs::read_to_string(part.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["step"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(steps, vec![1, 2, 3, 4, 5, 6]);
    // Same batches and same noise after resuming: the losses match the uninterrupted run.
    let loss = |run: &std::path::Path| -> Vec<f64> {
        std::fs::read_to_string(run.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["loss"]
                    .as_f64()
                    .unwrap()
            })
            .collect()
    };
    let (a, b) = (loss(&full), loss(&part));
    for (x, y) in a.iter().zip(&b) {
        assert!(
            (x - y).abs() <= 1e-3 * x.abs().max(1.0),
            "losses diverge: {a:?} vs {b:?}"
        );
    }
    let (ea, eb) = (encode_test_rows(&full), encode_test_rows(&part));
    let max_diff = ea
        .iter()
        .zip(&eb)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    assert!(max_diff < 1e-3, "resumed model differs by {max_diff}");
}

//! Checkpoints restore a model exactly, and a resumed run continues where it stopped.

use carve::data::Split;
use carve::train::{checkpoint, train, Session, TrainOptions};
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
            overwrite: false,
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
    // The extended budget is the run's own now, and its training time adds up over both sessions.
    let saved = std::fs::read_to_string(part.join("config.ron")).unwrap();
    assert!(saved.contains("steps: 6"), "{saved}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(part.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["steps"], 6);
    let part_seconds = state["train_seconds"].as_f64().unwrap();
    assert!(
        summary["wall_seconds"].as_f64().unwrap() >= part_seconds && part_seconds > 0.0,
        "{summary} {state}"
    );
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

/// A checkpoint is never written with a non-finite parameter or optimizer state: `save` fails naming the
/// tensor, and the checkpoint on disk stays the previous, finite one.
#[test]
fn non_finite_parameters_or_optimizer_state_are_never_checkpointed() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = configs_dir().join("betavae/pendulum.ron");
    let run = train_into(&cfg, &small(2), dir.path()).unwrap();
    let before = std::fs::read(run.join("checkpoint/model.safetensors")).unwrap();
    let state = carve::train::TrainState {
        step: 3,
        rng: carve::rng::Rng::derived(0, 1),
        train_seconds: 0.0,
        samples: 0,
    };

    let mut s = Session::open(&run, candle_core::Device::Cpu).unwrap();
    let mut opt = s.method.optimizer_state().unwrap();
    let (name, t) = opt
        .iter_mut()
        .find(|(_, t)| t.dtype().is_float() && t.elem_count() > 1)
        .unwrap();
    let name = name.clone();
    *t = (t.ones_like().unwrap() * f64::INFINITY).unwrap();
    s.method.load_optimizer_state(&opt).unwrap();
    let err = checkpoint::save(&run, s.method.as_ref(), &state).unwrap_err();
    assert!(
        matches!(
            err,
            carve::Error::NonFiniteState {
                group: "optimizer state",
                ..
            }
        ) && err.to_string().contains(&format!("`{name}`")),
        "{err}"
    );

    let s = Session::open(&run, candle_core::Device::Cpu).unwrap();
    let vm = s.method.varmaps()[0];
    let data = vm.data().lock().unwrap();
    let (name, var) = data.iter().next().unwrap();
    let poisoned = (var.as_tensor().zeros_like().unwrap() / 0.0).unwrap();
    var.set(&poisoned).unwrap();
    let name = name.clone();
    drop(data);
    let err = checkpoint::save(&run, s.method.as_ref(), &state).unwrap_err();
    let n = poisoned.elem_count();
    assert!(
        err.to_string().contains(&format!(
            "parameter `{name}` has {n} non-finite values of {n}"
        )),
        "{err}"
    );
    assert_eq!(
        std::fs::read(run.join("checkpoint/model.safetensors")).unwrap(),
        before
    );
    assert!(!run.join("checkpoint.tmp").exists());
}

/// Every checkpoint file is listed with its SHA-256, and the list matches the files.
#[test]
fn checkpoints_record_the_hash_of_each_file() {
    let dir = tempfile::tempdir().unwrap();
    let run = train_into(
        &configs_dir().join("betavae/pendulum.ron"),
        &small(1),
        dir.path(),
    )
    .unwrap();
    let ckpt = run.join(checkpoint::DIR);
    let hashes: std::collections::BTreeMap<String, String> =
        serde_json::from_str(&std::fs::read_to_string(ckpt.join(checkpoint::HASHES)).unwrap())
            .unwrap();
    let names: Vec<&str> = hashes.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [checkpoint::MODEL, checkpoint::OPTIMIZER, checkpoint::STATE]
    );
    for h in hashes.values() {
        assert!(
            h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit()),
            "{h}"
        );
    }
}

//! DEAR on the pendulum, scored against the simulator.
//!
//! CI runs a short version: a few hundred steps of the shipped config align the supervised latents with
//! their factors (aligned MCC far above the untrained model's), the SCM prior learns weights on the known
//! graph's edges and nowhere else, the independent-prior ablation has no graph to propagate through, and every
//! metric (intervention accuracy included) is finite. The reproduction against its targets
//! (docs/results/dear.md) is ignored by default:
//!
//! ```text
//! cargo test --release -p carve-tests --test dear -- --ignored --nocapture
//! ```

use carve::train::Session;
use carve_tests::{summary, train_into};
use std::path::{Path, PathBuf};

fn config(name: &str) -> PathBuf {
    carve_tests::configs_dir().join("dear").join(name)
}

fn metric(s: &serde_json::Value, name: &str) -> f64 {
    s["metrics"][name]
        .as_f64()
        .unwrap_or_else(|| panic!("summary lacks {name}: {s}"))
}

/// The learned weighted adjacency of a run, row-major `[m, m]`.
fn learned_graph(run: &Path) -> Vec<Vec<f32>> {
    let s = Session::open(run, candle_core::Device::Cpu).unwrap();
    s.method.graph().unwrap().unwrap().to_vec2::<f32>().unwrap()
}

#[test]
fn short_run_aligns_latents_and_learns_weights_on_the_known_graph() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("oracle");
    let run = |cfg: &str, steps: usize, name: &str| -> PathBuf {
        let o: Vec<String> = vec![
            format!("train.steps={steps}"),
            "train.batch_size=32".into(),
            "train.log_every=10".into(),
            "train.checkpoint_every=100000".into(),
            "eval.max_samples=512".into(),
            "eval.metrics.intervention.rows=32".into(),
            "eval.metrics.intervention.values=3".into(),
            "eval.metrics.intervention.regressor.steps=200".into(),
            format!(
                "eval.metrics.intervention.cache_dir=\"{}\"",
                cache.display()
            ),
        ];
        train_into(&config(cfg), &o, &dir.path().join(name)).unwrap()
    };
    let untrained = summary(&run("pendulum.ron", 1, "untrained"));
    let scm_run = run("pendulum.ron", 200, "scm");
    let indep_run = run("ablations/independent_prior.ron", 20, "indep");
    let trained = summary(&scm_run);
    eprintln!("untrained: {untrained}\ntrained: {trained}");
    for s in [&trained, &summary(&indep_run)] {
        for (k, v) in s["metrics"].as_object().unwrap() {
            assert!(v.as_f64().is_some_and(f64::is_finite), "{k} = {v}");
        }
        assert!(s["metrics"].get("intervention_acc").is_some());
    }
    // Supervision ties latent i to factor i (BCE on the min–max-scaled label).
    let (before, after) = (
        metric(&untrained, "mcc_aligned"),
        metric(&trained, "mcc_aligned"),
    );
    assert!(
        after > 0.8 && after > before + 0.3,
        "aligned MCC {before} → {after}"
    );
    // A is trained on the support of angle, light → shadow length, shadow position only.
    let a = learned_graph(&scm_run);
    let support = |p: usize, c: usize| p < 2 && c >= 2;
    for (p, row) in a.iter().enumerate() {
        for (c, &w) in row.iter().enumerate() {
            if support(p, c) {
                assert!(w.abs() > 1e-3, "edge {p}→{c} never moved from 0: {a:?}");
            } else {
                assert_eq!(w, 0.0, "off-support entry {p}→{c} moved: {a:?}");
            }
        }
    }
    let indep = learned_graph(&indep_run);
    assert!(indep.iter().flatten().all(|&w| w == 0.0), "{indep:?}");
}

/// The reproduction targets (docs/results/dear.md) from the shipped configs, full length. It fails: the
/// accuracy target cannot be met by DEAR's prior class on this pendulum: `pendulum_additive_scm.rs` puts that class's ceiling at about 0.70.
#[test]
#[ignore = "full reproduction: two runs of ~5 min each on 2 cores"]
fn full_runs_reach_the_targets_and_the_ablation_falls_short() {
    let dir = tempfile::tempdir().unwrap();
    let scm = summary(&train_into(&config("pendulum.ron"), &[], &dir.path().join("scm")).unwrap());
    let indep = summary(
        &train_into(
            &config("ablations/independent_prior.ron"),
            &[],
            &dir.path().join("indep"),
        )
        .unwrap(),
    );
    eprintln!(
        "SCM prior: {}\nindependent prior: {}",
        serde_json::to_string_pretty(&scm).unwrap(),
        serde_json::to_string_pretty(&indep).unwrap()
    );
    assert!(metric(&scm, "mcc_aligned") >= 0.9);
    assert!(metric(&scm, "intervention_acc") >= 0.8);
    assert!(metric(&scm, "intervention_drift") < 1.0);
    assert!(metric(&indep, "intervention_acc") < metric(&scm, "intervention_acc") - 0.1);
}

/// The layered generator with each causal layer, swapped alone (docs/results/dear.md): every run keeps its
/// latents on their labels, the independent prior falls below both SCMs on intervention accuracy and on the
/// shadow position, and the model's own ceiling (exact SCM, its encoder and generator) stays under 0.85 — the
/// reason the 0.85 target for nonlinear mechanisms is out of reach at this budget.
#[test]
#[ignore = "three runs of ~17-20 min each on 2 cores"]
fn layered_generator_orders_the_causal_layers_under_its_ceiling() {
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str, out: &str| {
        summary(&train_into(&config(name), &[], &dir.path().join(out)).unwrap())
    };
    let mech = run("layered.ron", "mechanism");
    let additive = run("ablations/layered_additive_scm.ron", "additive");
    let indep = run("ablations/layered_independent_prior.ron", "indep");
    for (name, s) in [
        ("mechanism", &mech),
        ("additive", &additive),
        ("indep", &indep),
    ] {
        eprintln!("{name}: {}", serde_json::to_string_pretty(s).unwrap());
        assert!(metric(s, "mcc_aligned") >= 0.95, "{name}");
        assert!(metric(s, "intervention_acc_ceiling") < 0.85, "{name}");
        assert!(
            metric(s, "intervention_acc") <= metric(s, "intervention_acc_ceiling"),
            "{name}"
        );
    }
    assert!(metric(&mech, "intervention_acc") >= 0.55);
    for scm in [&mech, &additive] {
        assert!(metric(&indep, "intervention_acc") < metric(scm, "intervention_acc") - 0.05);
        assert!(
            metric(&indep, "intervention_acc_shadow_position")
                < metric(scm, "intervention_acc_shadow_position") - 0.05
        );
    }
}

/// The full-size architectures (`official.ron`: ResNet encoder, SAGAN generator and discriminator) at
/// tiny widths train with finite losses; batch norm's running statistics move, are checkpointed, and a loaded
/// model evaluates with them (one image encodes the same alone as in a batch).
#[test]
fn tiny_resnet_and_sagan_dear_trains_and_checkpoints_batch_norm_state() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = carve_tests::small(4);
    o.extend([
        "data.size=16".to_string(),
        "model.encoder.blocks=[1, 1]".into(),
        "model.encoder.base_channels=4".into(),
        "model.encoder.hidden=16".into(),
        "model.generator.conv_dim=4".into(),
        "model.discriminator.Sagan.conv_dim=4".into(),
        "model.discriminator.Sagan.fc=16".into(),
        "model.discriminator.Sagan.res_blocks=1".into(),
        "eval.metrics=[\"mcc_aligned\"]".into(),
    ]);
    let run = train_into(&config("official.ron"), &o, dir.path()).unwrap();
    let lines = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 4);
    for line in lines.lines() {
        let m: serde_json::Value = serde_json::from_str(line).unwrap();
        for term in ["loss_d", "loss_e", "loss_g", "sup"] {
            assert!(
                m[term].as_f64().is_some_and(f64::is_finite),
                "{term}: {line}"
            );
        }
    }
    assert!(metric(&summary(&run), "mcc_aligned").is_finite());

    let s = Session::open(&run, candle_core::Device::Cpu).unwrap();
    let saved = candle_core::safetensors::load(
        run.join("checkpoint/model.safetensors"),
        &candle_core::Device::Cpu,
    )
    .unwrap();
    for name in [
        "encoder.conv1_bn.running_mean",
        "encoder.fc_bn.running_var",
        "generator.block1.bn1.running_var",
    ] {
        let v = saved[name].to_vec1::<f32>().unwrap();
        let init = if name.ends_with("mean") { 0.0 } else { 1.0 };
        assert!(
            v.iter().any(|x| (x - init).abs() > 1e-4),
            "{name} never updated: {v:?}"
        );
    }
    let batch = s.sample_batch(carve::data::Split::Test, 4).unwrap();
    let all = s.method.encode(&batch.x).unwrap();
    let one = s.method.encode(&batch.x.narrow(0, 0, 1).unwrap()).unwrap();
    let (a, b) = (
        all.narrow(0, 0, 1).unwrap().to_vec2::<f32>().unwrap(),
        one.to_vec2::<f32>().unwrap(),
    );
    for (u, v) in a[0].iter().zip(&b[0]) {
        assert!((u - v).abs() < 1e-5, "{a:?} vs {b:?}");
    }
    // Evaluation is repeatable: the generator's evaluation noise is a fixed stream.
    let reconstruct = || {
        s.method
            .reconstruct(&batch.x)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
    };
    assert_eq!(reconstruct(), reconstruct());
}

/// The ResNet encoder is a generic component: in an `Elbo` model too it trains with batch statistics (its
/// running averages move) and evaluates with the running ones.
#[test]
fn resnet_encoder_in_an_elbo_model_switches_batch_norm_modes() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = carve_tests::configs_dir().join("vae/pendulum_conv64.ron");
    let mut o = carve_tests::small(2);
    o.extend([
        "data.size=16".to_string(),
        "model.encoder={\"ResNet\": (blocks: [1], base_channels: 4, hidden: 8)}".into(),
        "model.decoder.channels=[8, 8]".into(),
        "eval.metrics=[\"elbo\"]".into(),
    ]);
    let run = train_into(&cfg, &o, dir.path()).unwrap();
    let saved = candle_core::safetensors::load(
        run.join("checkpoint/model.safetensors"),
        &candle_core::Device::Cpu,
    )
    .unwrap();
    let rm = saved["encoder.conv1_bn.running_mean"]
        .to_vec1::<f32>()
        .unwrap();
    assert!(
        rm.iter().any(|v| v.abs() > 1e-4),
        "running mean never updated: {rm:?}"
    );
    let s = Session::open(&run, candle_core::Device::Cpu).unwrap();
    let batch = s.sample_batch(carve::data::Split::Test, 3).unwrap();
    let all = s.method.encode(&batch.x).unwrap().to_vec2::<f32>().unwrap();
    let one = s
        .method
        .encode(&batch.x.narrow(0, 2, 1).unwrap())
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    for (u, v) in all[2].iter().zip(&one[0]) {
        assert!((u - v).abs() < 1e-5, "{all:?} vs {one:?}");
    }
}

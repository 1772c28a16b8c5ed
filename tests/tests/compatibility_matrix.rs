//! The compatibility matrix as a test: every registered part in every method slot that takes its kind, on each
//! kind of shipped data. A combination either builds and trains 2 steps, or fails while the model is built
//! with a requirement error (the part, what it needs, who provides it). Nothing else is allowed: no panic, no
//! failure at step 1 or 2, no other build error. So a part that under-declares its needs fails here.

use candle_core::Device;
use carve::config::Experiment;
use carve::data::{make_batch, Dataset, LabelStats, Split};
use carve::method::MethodContext;
use carve::registry::{self, ComponentKind};
use carve::rng::Rng;
use std::sync::Arc;

const LABEL_SCALE: &str = "[(0.0, 44.0), (100.0, 40.0), (6.5, 3.5), (10.0, 5.0)]";

/// One small example config per registered part. A newly registered part must be added here.
fn examples() -> Vec<(ComponentKind, &'static str, String)> {
    use ComponentKind::*;
    let s = |t: &str| t.to_string();
    vec![
        (Encoder, "Mlp", s(r#"{"Mlp": (hidden: [16])}"#)),
        (
            Encoder,
            "Mlp",
            s(r#"{"Mlp": (hidden: [16], activation: LeakyRelu(0.2), variance: Softplus)}"#),
        ),
        (
            Encoder,
            "Conv",
            s(r#"{"Conv": (channels: [8, 8], hidden: 16)}"#),
        ),
        (
            Encoder,
            "ResNet",
            s(r#"{"ResNet": (blocks: [1, 1], base_channels: 4, hidden: 16)}"#),
        ),
        (Encoder, "BottomUp", s(r#"{"BottomUp": (hidden: [8])}"#)),
        (
            Encoder,
            "Ladder",
            s(r#"{"Ladder": (hidden: [8], only_mu_up: true)}"#),
        ),
        (Decoder, "Mlp", s(r#"{"Mlp": (hidden: [16])}"#)),
        (
            Decoder,
            "Mlp",
            s(r#"{"Mlp": (hidden: [16], batch_norm: true)}"#),
        ),
        (
            Decoder,
            "Mlp",
            s(
                r#"{"Mlp": (hidden: [16], likelihood: LearnedGaussian(init_logvar: -10.0), reduction: Mean)}"#,
            ),
        ),
        (Decoder, "Sagan", s(r#"{"Sagan": (conv_dim: 4)}"#)),
        (
            Decoder,
            "Conv",
            s(r#"{"Conv": (channels: [8, 8], hidden: 16)}"#),
        ),
        (
            Decoder,
            "PerConceptMlp",
            s(r#"{"PerConceptMlp": (concepts: 4, hidden: [8])}"#),
        ),
        (Prior, "StdNormal", s(r#"{"StdNormal": ()}"#)),
        (Prior, "TopDown", s(r#"{"TopDown": (hidden: [8])}"#)),
        (
            Prior,
            "LabelConditional",
            format!(r#"{{"LabelConditional": (concepts: 4, label_scale: {LABEL_SCALE})}}"#),
        ),
        (CausalLayer, "Independent", s(r#"{"Independent": ()}"#)),
        (
            CausalLayer,
            "CausalVaeMask",
            s(r#"{"CausalVaeMask": (concepts: 4, hidden: 8)}"#),
        ),
        (CausalLayer, "Scm", s(r#"{"Scm": (f2: Affine)}"#)),
        (
            CausalLayer,
            "MechanismScm",
            s(r#"{"MechanismScm": (hidden: [8])}"#),
        ),
        (
            Discriminator,
            "Small",
            s(
                r#"{"Small": (channels: [8, 8], features: 16, latent_hidden: [16], joint_hidden: [16])}"#,
            ),
        ),
        (
            Discriminator,
            "Sagan",
            s(r#"{"Sagan": (conv_dim: 4, fc: 16, res_blocks: 1)}"#),
        ),
        (
            Transition,
            "GumbelMasked",
            s(r#"{"GumbelMasked": (hidden: [8], masks: (init_logit: 3.0))}"#),
        ),
        (Objective, "Reconstruction", s(r#"{"Reconstruction": ()}"#)),
        (Objective, "PriorKl", s(r#"{"PriorKl": (weight: 1.0)}"#)),
        (Objective, "DagPenalty", s(r#"{"DagPenalty": ()}"#)),
        (
            Objective,
            "GraphSparsity",
            s(r#"{"GraphSparsity": (weight: 0.1)}"#),
        ),
        (
            Objective,
            "GraphPruning",
            s(r#"{"GraphPruning": (at_step: 1, threshold: 0.1, weight: 1.0)}"#),
        ),
        (
            Objective,
            "MaskKl",
            format!(r#"{{"MaskKl": (concepts: 4, label_scale: {LABEL_SCALE})}}"#),
        ),
        (
            Objective,
            "LabelReconstruction",
            s(r#"{"LabelReconstruction": ()}"#),
        ),
    ]
}

/// The kinds of data, small.
fn datasets() -> Vec<(&'static str, &'static str)> {
    vec![
        ("Pendulum", r#"{"Pendulum": (size: 16, channels: 3)}"#),
        (
            "Synthetic action",
            r#"{"Synthetic": (dataset: action_sparsity_trivial, z_dim: 4, x_dim: 8, n_train: 128, n_test: 64)}"#,
        ),
        (
            "Synthetic temporal",
            r#"{"Synthetic": (dataset: temporal_sparsity_trivial, z_dim: 4, x_dim: 8, n_train: 128, n_test: 64)}"#,
        ),
    ]
}

/// A method's base model with its slots' current parts; `with` replaces one slot (objectives are added).
struct Base {
    method: &'static str,
    fixed: &'static str,
    slots: Vec<(ComponentKind, &'static str, String)>,
}

fn bases() -> Vec<Base> {
    use ComponentKind::*;
    let mlp = r#"{"Mlp": (hidden: [16])}"#.to_string();
    let elbo_objectives = r#"{"Reconstruction": ()}, {"PriorKl": ()}"#.to_string();
    vec![
        Base {
            method: "Elbo",
            fixed: "latent_dim: 8",
            slots: vec![
                (Encoder, "encoder", mlp.clone()),
                (CausalLayer, "causal", r#"{"Independent": ()}"#.into()),
                (Prior, "prior", r#"{"StdNormal": ()}"#.into()),
                (Decoder, "decoder", mlp.clone()),
                (Objective, "objectives", elbo_objectives),
            ],
        },
        Base {
            method: "LadderVae",
            fixed: "latents: [4, 4]",
            slots: vec![
                (Encoder, "encoder", r#"{"Ladder": (hidden: [8])}"#.into()),
                (Prior, "prior", r#"{"TopDown": (hidden: [8])}"#.into()),
                (Decoder, "decoder", mlp.clone()),
                (Objective, "objectives", String::new()),
            ],
        },
        Base {
            method: "BetaVae",
            fixed: "latent_dim: 8, beta: 2.0",
            slots: vec![
                (Encoder, "encoder", mlp.clone()),
                (Decoder, "decoder", mlp.clone()),
                (Objective, "objectives", String::new()),
            ],
        },
        Base {
            method: "Dear",
            fixed: "latent_dim: 8",
            slots: vec![
                (
                    Discriminator,
                    "discriminator",
                    r#"{"Small": (channels: [8, 8], features: 16, latent_hidden: [16], joint_hidden: [16])}"#.into(),
                ),
                (Encoder, "encoder", mlp.clone()),
                (Decoder, "generator", mlp.clone()),
                (CausalLayer, "causal", r#"{"Scm": (f2: Affine)}"#.into()),
                (Prior, "prior", r#"{"StdNormal": ()}"#.into()),
                (Objective, "objectives", String::new()),
            ],
        },
        Base {
            method: "CausalVAE",
            fixed: "latent_dim: 8, concepts: 4, label_scale: [(0.0, 44.0), (100.0, 40.0), (6.5, 3.5), (10.0, 5.0)]",
            slots: vec![
                (Encoder, "encoder", mlp.clone()),
                (
                    Decoder,
                    "decoder",
                    r#"{"PerConceptMlp": (concepts: 4, hidden: [8])}"#.into(),
                ),
                (CausalLayer, "causal", r#"{"CausalVaeMask": (concepts: 4, hidden: 8)}"#.into()),
                (
                    Prior,
                    "prior",
                    format!(r#"{{"LabelConditional": (concepts: 4, label_scale: {LABEL_SCALE})}}"#),
                ),
                (
                    Objective,
                    "objectives",
                    format!(
                        r#"{{"Reconstruction": ()}}, {{"PriorKl": ()}}, {{"MaskKl": (concepts: 4, label_scale: {LABEL_SCALE})}}, {{"LabelReconstruction": ()}}, {{"DagPenalty": ()}}"#
                    ),
                ),
            ],
        },
        Base {
            method: "MechanismSparsity",
            fixed: "latent_dim: 4",
            slots: vec![
                (
                    Encoder,
                    "encoder",
                    r#"{"Mlp": (hidden: [16], activation: LeakyRelu(0.2), variance: Softplus)}"#.into(),
                ),
                (
                    Decoder,
                    "decoder",
                    r#"{"Mlp": (hidden: [16], likelihood: LearnedGaussian(init_logvar: -10.0), reduction: Mean)}"#.into(),
                ),
                (Transition, "transition", r#"{"GumbelMasked": (hidden: [8])}"#.into()),
            ],
        },
    ]
}

fn model(base: &Base, replace: Option<(ComponentKind, &str)>) -> String {
    let mut fields = vec![base.fixed.to_string()];
    for (kind, field, current) in &base.slots {
        let value = match replace {
            Some((k, part)) if k == *kind && k == ComponentKind::Objective => {
                format!(
                    "[{current}{}{part}]",
                    if current.is_empty() { "" } else { ", " }
                )
            }
            Some((k, part)) if k == *kind => part.to_string(),
            _ if *kind == ComponentKind::Objective => format!("[{current}]"),
            _ => current.clone(),
        };
        fields.push(format!("{field}: {value}"));
    }
    format!(r#"{{"{}": ({})}}"#, base.method, fields.join(", "))
}

enum Outcome {
    Trained,
    Unmet(String),
}

fn run(data: &Arc<dyn Dataset>, data_cfg: &str, model: &str) -> Result<Outcome, String> {
    let text = format!("(data: {data_cfg}, model: {model}, train: (steps: 2, batch_size: 8))");
    let exp = Experiment::parse(&text, "matrix", &[]).map_err(|e| format!("parse: {e}"))?;
    let device = Device::Cpu;
    let built = exp.model.build(&MethodContext {
        spec: data.spec(),
        device: device.clone(),
        seed: 1,
        optimizer: &exp.train.optimizer,
        label_stats: LabelStats::of(data.as_ref(), Split::Train),
    });
    let mut method = match built {
        Ok(m) => m,
        Err(e) => {
            let msg = e.to_string();
            return if msg.contains(" needs ") && msg.starts_with("config model") {
                Ok(Outcome::Unmet(msg))
            } else {
                Err(format!("build failed without a requirement error: {msg}"))
            };
        }
    };
    let rows: Vec<usize> = data.split(Split::Train)[..8].to_vec();
    let batch =
        make_batch(data.as_ref(), &rows, &device, &mut Vec::new()).map_err(|e| e.to_string())?;
    let mut rng = Rng::new(1);
    for step in 0..2 {
        method
            .train_step(&batch, step, &mut rng)
            .map_err(|e| format!("built, then failed at step {step}: {e}"))?;
    }
    Ok(Outcome::Trained)
}

#[test]
fn every_part_in_every_slot_trains_or_fails_at_build_with_its_requirement() {
    carve_tests::link();
    let examples = examples();
    // Every registered model part has an example, so it joins the matrix.
    for c in registry::components() {
        if matches!(c.kind, ComponentKind::Dataset | ComponentKind::Metric) {
            continue;
        }
        assert!(
            examples
                .iter()
                .any(|(k, n, _)| *k == c.kind && *n == c.name),
            "registered {} `{}` has no example in the compatibility matrix",
            c.kind.label(),
            c.name
        );
    }
    let mut failures = Vec::new();
    let (mut trained, mut unmet) = (0, 0);
    let mut cells = Vec::new();
    for (data_name, data_cfg) in datasets() {
        let exp = Experiment::parse(
            &format!(r#"(data: {data_cfg}, model: {{"Elbo": (latent_dim: 2, encoder: {{"Mlp": (hidden: [4])}}, decoder: {{"Mlp": (hidden: [4])}})}})"#),
            "matrix data",
            &[],
        )
        .unwrap();
        let data = exp.data.build(1).unwrap();
        for base in bases() {
            let mut combos: Vec<(String, String)> = vec![("(base)".into(), model(&base, None))];
            for (kind, name, example) in &examples {
                if base.slots.iter().any(|(k, _, _)| k == kind) {
                    combos.push((name.to_string(), model(&base, Some((*kind, example)))));
                }
            }
            for (part, cfg) in combos {
                let cell = format!("{data_name} × {} × {part}", base.method);
                match run(&data, data_cfg, &cfg) {
                    Ok(Outcome::Trained) => {
                        trained += 1;
                        cells.push((cell, true, String::new()));
                    }
                    Ok(Outcome::Unmet(m)) => {
                        unmet += 1;
                        cells.push((cell, false, m));
                    }
                    Err(e) => failures.push(format!("{cell}: {e}\n    model: {cfg}")),
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} combinations broke:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // The check is not vacuous: known pairings fail and known fits train.
    let verdict = |cell: &str| {
        cells
            .iter()
            .find(|(c, _, _)| c == cell)
            .unwrap_or_else(|| panic!("no cell {cell}"))
            .1
    };
    assert!(!verdict("Pendulum × Elbo × DagPenalty"));
    assert!(verdict("Pendulum × CausalVAE × DagPenalty"));
    assert!(!verdict("Synthetic action × Elbo × Conv"));
    assert!(verdict("Pendulum × Elbo × Conv"));
    assert!(!verdict("Synthetic action × CausalVAE × (base)"));
    assert!(verdict("Pendulum × Elbo × Scm"));
    assert!(!verdict("Synthetic temporal × Elbo × Scm"));
    assert!(verdict("Pendulum × Dear × GraphSparsity"));
    assert!(verdict("Pendulum × Dear × Independent"));
    assert!(!verdict("Pendulum × Dear × CausalVaeMask"));
    assert!(!verdict("Synthetic action × Dear × (base)"));
    assert!(verdict("Synthetic action × MechanismSparsity × (base)"));
    assert!(verdict("Synthetic temporal × MechanismSparsity × (base)"));
    assert!(verdict(
        "Synthetic temporal × MechanismSparsity × GumbelMasked"
    ));
    assert!(!verdict("Pendulum × MechanismSparsity × (base)"));
    assert!(!verdict("Synthetic action × MechanismSparsity × Conv"));
    eprintln!("{trained} combinations trained, {unmet} refused at build");
    assert!(
        trained >= 40 && unmet >= 20,
        "{trained} trained, {unmet} refused"
    );
}

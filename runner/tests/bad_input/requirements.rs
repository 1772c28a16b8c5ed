//! Bad-input cases: parts that do not fit together or do not fit the data. Each fails while the model is built,
//! before any folder is made, with the part's config location, what it needs and which registered parts
//! provide it.

use crate::support::*;

/// Trains `config` into `DIR/run` and asserts a clear error naming `needles`, with no run folder made.
fn build_fails(what: &str, config: &str, needles: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(dir.path(), "config.ron", config);
    let run = dir.path().join("run");
    let out = carve(&["train", arg(&cfg), "--out", arg(&run)]);
    let msg = assert_clear_error(what, &out, needles);
    assert!(
        !run.exists(),
        "{what}: the run folder was made before the error"
    );
    msg
}

/// An ELBO model on the 32-px pendulum with `causal` and `objectives`.
fn elbo(causal: &str, prior: &str, objectives: &str) -> String {
    format!(
        r#"(
    data: {{"Pendulum": (size: 32, channels: 3)}},
    model: {{"Elbo": (
        latent_dim: 4,
        encoder: {{"Mlp": (hidden: [16])}},
        causal: {causal},
        prior: {prior},
        decoder: {{"Mlp": (hidden: [16])}},
        objectives: [{objectives}],
    )}},
    train: (steps: 2, batch_size: 8),
    eval: (metrics: ["recon"]),
)"#
    )
}

#[test]
fn a_graph_objective_on_a_model_without_a_graph_is_an_error_not_a_no_op() {
    for (objective, name) in [
        (r#"{"DagPenalty": ()}"#, "DagPenalty"),
        (r#"{"GraphSparsity": (weight: 1.0)}"#, "GraphSparsity"),
        (
            r#"{"GraphPruning": (at_step: 1, threshold: 0.1, weight: 1.0)}"#,
            "GraphPruning",
        ),
    ] {
        let cfg = elbo(
            r#"{"Independent": ()}"#,
            r#"{"StdNormal": ()}"#,
            &format!(r#"{{"Reconstruction": ()}}, {objective}"#),
        );
        build_fails(
            name,
            &cfg,
            &[
                "model.objectives[1]",
                name,
                "needs a learned causal graph",
                "model.causal is Independent",
                "CausalVaeMask",
                "Scm",
            ],
        );
    }
}

#[test]
fn a_causalvae_part_without_its_layer_names_the_missing_output() {
    let cfg = elbo(
        r#"{"Independent": ()}"#,
        r#"{"StdNormal": ()}"#,
        r#"{"Reconstruction": ()}, {"LabelReconstruction": ()}"#,
    );
    build_fails(
        "LabelReconstruction without the mask layer",
        &cfg,
        &[
            "model.objectives[1]",
            "LabelReconstruction",
            "a label prediction",
            "CausalVaeMask",
        ],
    );
    let cfg = elbo(
        r#"{"Independent": ()}"#,
        r#"{"LabelConditional": (concepts: 4, label_scale: [(0.0, 1.0), (0.0, 1.0), (0.0, 1.0), (0.0, 1.0)])}"#,
        r#"{"Reconstruction": ()}"#,
    );
    build_fails(
        "LabelConditional without the mask layer",
        &cfg,
        &[
            "model.prior",
            "LabelConditional",
            "the SCM's latents",
            "CausalVaeMask",
        ],
    );
}

/// The misleading case of old: the mask layer is there and the data has no labels. The error says labels.
#[test]
fn a_label_loss_on_unlabelled_data_says_labels() {
    let cfg = r#"(
    data: {"Synthetic": (dataset: action_sparsity_trivial, manifold: nn, z_dim: 4, x_dim: 8, n_train: 64, n_test: 32)},
    model: {"Elbo": (
        latent_dim: 4,
        encoder: {"Mlp": (hidden: [16])},
        causal: {"CausalVaeMask": (concepts: 4)},
        decoder: {"Mlp": (hidden: [16])},
        objectives: [{"Reconstruction": ()}, {"LabelReconstruction": ()}],
    )},
    train: (steps: 2, batch_size: 8),
    eval: (metrics: ["recon"]),
)"#;
    let msg = build_fails(
        "LabelReconstruction on unlabelled data",
        cfg,
        &[
            "model.objectives[1]",
            "LabelReconstruction",
            "needs labels",
            "the data does not have",
        ],
    );
    assert!(!msg.contains("causal layer"), "{msg}");
}

#[test]
fn a_conv_encoder_on_rows_and_an_scm_without_a_graph_are_data_errors() {
    let cfg = r#"(
    data: {"Synthetic": (dataset: action_sparsity_trivial, manifold: nn, z_dim: 4, x_dim: 8, n_train: 64, n_test: 32)},
    model: {"Elbo": (
        latent_dim: 4,
        encoder: {"Conv": (channels: [8])},
        causal: {"Scm": ()},
        decoder: {"Mlp": (hidden: [16])},
    )},
    train: (steps: 2, batch_size: 8),
    eval: (metrics: ["recon"]),
)"#;
    build_fails(
        "Conv encoder and Scm on rows without a graph",
        cfg,
        &[
            "model.encoder",
            "encoder `Conv` needs image observations",
            "model.causal",
            "causal layer `Scm` needs the data's causal graph",
        ],
    );
}

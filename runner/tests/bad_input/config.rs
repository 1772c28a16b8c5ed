//! Bad-input cases: config files. Most fail while the file is read and parsed; the rest (sizes the model or
//! data must judge, metrics the data cannot serve) fail when the run is checked, before step 1: no checkpoint
//! and no `summary.json` are written.
//!
//! Documented acceptances: a UTF-8 byte-order mark at the start of a config is skipped (some editors write
//! one). `train.steps: 0` is an error, like every other zero size: a run that trains nothing writes no
//! checkpoint to evaluate or resume.

use crate::support::*;
use std::path::Path;

/// `SMALL_CONFIG` with `from` replaced by `to` (which must occur).
fn edited(from: &str, to: &str) -> String {
    assert!(SMALL_CONFIG.contains(from), "`{from}` not in SMALL_CONFIG");
    SMALL_CONFIG.replace(from, to)
}

/// Trains `config` (written to a fresh folder) into `DIR/run` and asserts a clear error naming `needles`, with
/// no checkpoint or summary left behind.
fn train_fails_before_step_one(what: &str, config: impl AsRef<[u8]>, needles: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(dir.path(), "config.ron", config);
    let run = dir.path().join("run");
    let out = carve(&["train", arg(&cfg), "--out", arg(&run)]);
    let msg = assert_clear_error(what, &out, needles);
    assert_nothing_trained(what, &run);
    msg
}

fn assert_nothing_trained(what: &str, run: &Path) {
    for left in ["checkpoint", "summary.json", "metrics.jsonl"] {
        assert!(
            !run.join(left).exists(),
            "{what}: `{left}` was written before the error"
        );
    }
}

#[test]
fn empty_and_blank_files_say_the_config_is_empty() {
    for (name, text) in [("empty.ron", ""), ("blank.ron", "  \n\t\n")] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = write(dir.path(), name, text);
        fails_clearly(&["train", arg(&cfg)], &[name, "empty"]);
    }
}

#[test]
fn garbage_text_is_a_parse_error_with_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(dir.path(), "garbage.ron", "this is not a config at all {{{");
    fails_clearly(&["train", arg(&cfg)], &["garbage.ron:1:"]);
}

#[test]
fn non_utf8_bytes_are_located_by_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = b"(\n    name: \"x\",\n    data: \xff\xfe,\n)".to_vec();
    let cfg = write(dir.path(), "latin1.ron", &bytes);
    fails_clearly(&["train", arg(&cfg)], &["latin1.ron:3:11", "UTF-8"]);
    // Binary noise from the first byte.
    bytes = vec![0x89, b'P', b'N', b'G', 0, 0, 0xff, 0x10];
    let cfg = write(dir.path(), "binary.ron", &bytes);
    fails_clearly(&["train", arg(&cfg)], &["binary.ron:1:1", "UTF-8"]);
}

#[test]
fn a_byte_order_mark_is_skipped() {
    // The config behind the mark is read: the error is about its (deliberately zero) steps, not the mark.
    let mut bytes = "\u{feff}".as_bytes().to_vec();
    bytes.extend(edited("steps: 2,", "steps: 0,").as_bytes());
    train_fails_before_step_one("BOM", bytes, &["train.steps", "at least 1"]);
}

#[test]
fn a_truncated_file_is_a_parse_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let cut = &SMALL_CONFIG[..SMALL_CONFIG.len() / 2];
    let cfg = write(dir.path(), "truncated.ron", cut);
    fails_clearly(&["train", arg(&cfg)], &["truncated.ron:"]);
}

#[test]
fn wrong_types_name_the_file_position_and_value() {
    for (from, to, needle) in [
        ("latent_dim: 4,", "latent_dim: \"four\",", "four"),
        ("steps: 2,", "steps: [2],", "steps: [2]"),
        ("beta: 4.0,", "beta: \"high\",", "high"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = write(dir.path(), "types.ron", edited(from, to));
        fails_clearly(&["train", arg(&cfg)], &["types.ron:", needle]);
    }
}

#[test]
fn a_negative_latent_dim_is_a_parse_error() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "neg.ron",
        edited("latent_dim: 4,", "latent_dim: -1,"),
    );
    fails_clearly(&["train", arg(&cfg)], &["neg.ron:5:", "latent_dim: -1"]);
}

#[test]
fn a_float_latent_dim_is_a_parse_error() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "float.ron",
        edited("latent_dim: 4,", "latent_dim: 1e9,"),
    );
    fails_clearly(&["train", arg(&cfg)], &["float.ron:5:", "latent_dim: 1e9"]);
}

#[test]
fn latent_dim_zero_is_refused_before_step_one() {
    train_fails_before_step_one(
        "latent_dim 0",
        edited("latent_dim: 4,", "latent_dim: 0,"),
        &["model.latent_dim", "got 0"],
    );
}

#[test]
fn a_huge_latent_dim_is_refused_before_allocating() {
    train_fails_before_step_one(
        "latent_dim 1e9",
        edited("latent_dim: 4,", "latent_dim: 1000000000,"),
        &["model.latent_dim", "65536", "1000000000"],
    );
}

#[test]
fn huge_hidden_layers_exceed_the_parameter_budget() {
    train_fails_before_step_one(
        "hidden 1e6 × 1e6",
        edited(
            r#"encoder: {"Mlp": (hidden: [16])}"#,
            r#"encoder: {"Mlp": (hidden: [1000000, 1000000])}"#,
        ),
        &["encoder", "536870912 parameters"],
    );
}

#[test]
fn zero_sizes_are_errors_not_clamped() {
    for (from, to, field) in [
        ("steps: 2,", "steps: 0,", "train.steps"),
        ("batch_size: 8,", "batch_size: 0,", "train.batch_size"),
        (
            "checkpoint_every: 1,",
            "checkpoint_every: 0,",
            "train.checkpoint_every",
        ),
        ("log_every: 1)", "log_every: 0)", "train.log_every"),
        ("max_samples: 64)", "max_samples: 0)", "eval.max_samples"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = write(dir.path(), "zero.ron", edited(from, to));
        let run = dir.path().join("run");
        let out = carve(&["train", arg(&cfg), "--out", arg(&run)]);
        assert_clear_error(field, &out, &["zero.ron", field, "at least 1"]);
        assert!(!run.exists(), "{field}: the run directory was created");
    }
}

#[test]
fn a_batch_larger_than_the_training_split_is_refused() {
    train_fails_before_step_one(
        "batch 10^6",
        edited("batch_size: 8,", "batch_size: 1000000,"),
        &["train.batch_size", "1000000", "train split"],
    );
}

#[test]
fn unknown_component_names_suggest_the_closest() {
    for (from, to, needles) in [
        (
            r#"encoder: {"Mlp""#,
            r#"encoder: {"Mpl""#,
            ["unknown name `Mpl`", "did you mean `Mlp`"],
        ),
        (
            r#"{"BetaVae""#,
            r#"{"BetaVea""#,
            ["unknown name `BetaVea`", "did you mean `BetaVae`"],
        ),
        (
            r#"{"Pendulum""#,
            r#"{"Pendelum""#,
            ["unknown name `Pendelum`", "did you mean `Pendulum`"],
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = write(dir.path(), "names.ron", edited(from, to));
        let mut all = vec!["names.ron:"];
        all.extend(needles);
        fails_clearly(&["train", arg(&cfg)], &all);
    }
}

#[test]
fn unknown_fields_suggest_the_closest() {
    for (from, to, needles) in [
        (
            "beta: 4.0,",
            "betta: 4.0,",
            ["unknown field `betta`", "did you mean `beta`"],
        ),
        (
            "train: (",
            "trian: (",
            ["unknown field `trian`", "did you mean `train`"],
        ),
        (
            "batch_size: 8,",
            "batchsize: 8,",
            ["unknown field `batchsize`", "did you mean `batch_size`"],
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = write(dir.path(), "fields.ron", edited(from, to));
        let mut all = vec!["fields.ron:"];
        all.extend(needles);
        fails_clearly(&["train", arg(&cfg)], &all);
    }
}

#[test]
fn non_finite_hyper_parameters_are_named() {
    for (from, to, needles) in [
        ("beta: 4.0,", "beta: NaN,", ["model.BetaVae.beta", "NaN"]),
        (
            "log_every: 1)",
            "log_every: 1, optimizer: (lr: inf))",
            ["train.optimizer.lr", "inf"],
        ),
        (
            "log_every: 1)",
            "log_every: 1, optimizer: (weight_decay: -inf))",
            ["train.optimizer.weight_decay", "-inf"],
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = write(dir.path(), "nan.ron", edited(from, to));
        let mut all = vec!["nan.ron"];
        all.extend(needles);
        fails_clearly(&["train", arg(&cfg)], &all);
    }
}

#[test]
fn a_directory_as_the_config_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("configs.d");
    std::fs::create_dir(&sub).unwrap();
    fails_clearly(&["train", arg(&sub)], &["configs.d", "directory"]);
}

#[test]
fn a_missing_config_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nowhere.ron");
    fails_clearly(&["train", arg(&missing)], &["nowhere.ron"]);
}

#[test]
fn a_metric_name_typo_fails_at_parse_with_a_suggestion() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "typo.ron",
        edited(r#"["recon", "mcc"]"#, r#"["recon", "mccc"]"#),
    );
    let run = dir.path().join("run");
    let out = carve(&["train", arg(&cfg), "--out", arg(&run)]);
    assert_clear_error(
        "metric typo",
        &out,
        &["eval.metrics", "`mccc`", "did you mean mcc"],
    );
    assert!(!run.exists(), "the run directory was created");
}

#[test]
fn a_metric_the_model_cannot_serve_fails_before_step_one() {
    // A β-VAE has no learned graph to compare with the pendulum's true graph.
    train_fails_before_step_one(
        "shd on a beta-VAE",
        edited(r#"["recon", "mcc"]"#, r#"["recon", "shd_classical"]"#),
        &["eval.metrics", "shd_classical", "learned causal graph"],
    );
    // Nor causal nodes to intervene on.
    train_fails_before_step_one(
        "intervention on a beta-VAE",
        edited(r#"["recon", "mcc"]"#, r#"["intervention"]"#),
        &["eval.metrics", "intervention", "causal nodes"],
    );
}

#[test]
fn cuda_without_a_gpu_is_a_clear_error() {
    if std::path::Path::new("/dev/nvidia0").exists() {
        return; // a GPU is present: nothing to refuse
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(dir.path(), "ok.ron", SMALL_CONFIG);
    fails_clearly(
        &["train", arg(&cfg), "--device", "cuda"],
        &["device", "CUDA"],
    );
    fails_clearly(
        &["train", arg(&cfg), "--device", "tpu"],
        &["unknown device `tpu`", "cuda:N"],
    );
}

#[test]
fn a_gaussian_likelihood_without_its_std_lists_the_forms() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "gauss.ron",
        edited(
            r#"decoder: {"Mlp": (hidden: [16])}"#,
            r#"decoder: {"Mlp": (hidden: [16], likelihood: Gaussian)}"#,
        ),
    );
    fails_clearly(
        &["train", arg(&cfg)],
        &["gauss.ron:", "`Bernoulli`", "Gaussian(std: 0.1)"],
    );
}

#[test]
fn concepts_that_do_not_match_the_labels_are_named() {
    // The pendulum has four labels; a two-concept CausalVAE layer cannot read them.
    let config = r#"(
        data: {"Pendulum": (size: 32, channels: 3)},
        model: {"Elbo": (
            latent_dim: 4,
            encoder: {"Mlp": (hidden: [16])},
            causal: {"CausalVaeMask": (concepts: 2, hidden: 4)},
            decoder: {"Mlp": (hidden: [16])},
        )},
        train: (steps: 2, batch_size: 8),
        eval: (metrics: ["recon"]),
    )"#;
    train_fails_before_step_one(
        "concepts 2",
        config,
        &["CausalVaeMask", "`concepts` is 2", "4 label columns"],
    );
}

#[test]
fn every_shipped_config_passes_the_config_checks() {
    // The checks refuse bad input only: every config the project ships reads and checks clean.
    carve_plugins::link();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs");
    let mut pending = vec![root];
    let mut seen = 0;
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "ron") {
                carve::config::Experiment::load(&path, &[])
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                seen += 1;
            }
        }
    }
    assert!(seen > 0, "no configs found");
}

/// A folder with `SMALL_CONFIG` as `base.ron` and `child` as `child.ron`; fails to train `child.ron`, naming
/// `needles`, before a run directory is made.
fn extends_fails(child: &str, extra: &[(&str, &str)], needles: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "base.ron", SMALL_CONFIG);
    for (name, text) in extra {
        write(dir.path(), name, text);
    }
    let cfg = write(dir.path(), "child.ron", child);
    let run = dir.path().join("run");
    let msg = assert_clear_error(
        child,
        &carve(&["train", arg(&cfg), "--out", arg(&run)]),
        needles,
    );
    assert!(!run.exists(), "{child}: a run directory was made");
    msg
}

#[test]
fn extends_a_missing_base_names_the_path() {
    extends_fails(
        "(\n    extends: \"nowhere/base.ron\",\n)",
        &[],
        &["child.ron:2:5", "nowhere/base.ron", "no config file"],
    );
}

#[test]
fn an_extends_cycle_is_refused() {
    extends_fails(r#"(extends: "child.ron")"#, &[], &["child.ron", "cycle"]);
    extends_fails(
        r#"(extends: "other.ron")"#,
        &[("other.ron", r#"(extends: "child.ron")"#)],
        &["other.ron", "cycle", "child.ron"],
    );
}

#[test]
fn a_base_that_does_not_parse_is_named_with_its_position() {
    let mut broken = SMALL_CONFIG.replace("latent_dim: 4,", "latent_dim: [,");
    broken.push('\n');
    extends_fails(
        r#"(extends: "broken.ron", name: "child")"#,
        &[("broken.ron", &broken)],
        &["broken.ron:5:"],
    );
}

#[test]
fn an_unknown_field_in_an_override_suggests_the_closest() {
    extends_fails(
        r#"(extends: "base.ron", train: (stpes: 3))"#,
        &[],
        &[
            "child.ron",
            "at `train`",
            "no field `stpes`",
            "did you mean `steps`",
        ],
    );
    extends_fails(
        r#"(extends: "base.ron", model: {"BetaVae": (betta: 3.0)})"#,
        &[],
        &["child.ron", "did you mean `beta`"],
    );
    extends_fails(
        r#"(extends: "base.ron", model: (beta: 3.0))"#,
        &[],
        &[
            "child.ron",
            "`model` is a `BetaVae`",
            "{\"BetaVae\": (beta: ...)}",
        ],
    );
}

#[test]
fn extends_that_is_not_a_string_is_refused() {
    for value in ["3", "[\"base.ron\"]", "None"] {
        extends_fails(
            &format!("(\n    extends: {value},\n)"),
            &[],
            &[
                "child.ron:2:5",
                "`extends` takes the base config's path as a string",
            ],
        );
    }
}

#[test]
fn an_extending_config_trains_and_saves_the_resolved_config() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "base.ron", SMALL_CONFIG);
    let cfg = write(
        dir.path(),
        "child.ron",
        r#"(extends: "base.ron", name: "child", model: {"BetaVae": (beta: 2.0)})"#,
    );
    let run = dir.path().join("run");
    succeeds(&[
        "train",
        arg(&cfg),
        "--out",
        arg(&run),
        "--set",
        "train.steps=1",
    ]);
    let saved = std::fs::read_to_string(run.join("config.ron")).unwrap();
    assert!(!saved.contains("extends"), "{saved}");
    for needle in ["\"child\"", "beta: 2.0", "steps: 1,", "latent_dim: 4"] {
        assert!(
            saved.contains(needle),
            "`{needle}` not in the saved config:\n{saved}"
        );
    }
}

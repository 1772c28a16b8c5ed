//! Bad-input cases: `--set KEY.PATH=VALUE` overrides. Every message names the override at fault, and all of
//! them fail before a run directory is made.

use crate::support::*;

/// `carve train SMALL_CONFIG --set ...` fails clearly, naming `needles`, and makes no run directory.
fn set_fails(sets: &[&str], needles: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(dir.path(), "small.ron", SMALL_CONFIG);
    let run = dir.path().join("run");
    let mut args = vec!["train", arg(&cfg), "--out", arg(&run)];
    for s in sets {
        args.extend(["--set", s]);
    }
    let msg = assert_clear_error(&format!("--set {sets:?}"), &carve(&args), needles);
    assert!(!run.exists(), "--set {sets:?}: a run directory was made");
    msg
}

#[test]
fn a_misspelt_path_suggests_the_field() {
    set_fails(
        &["train.stpes=3"],
        &[
            "--set train.stpes=3",
            "no field `stpes`",
            "did you mean `steps`",
        ],
    );
    set_fails(
        &["model.encoder.hiden=[8]"],
        &["--set model.encoder.hiden=[8]", "did you mean `hidden`"],
    );
}

#[test]
fn a_value_of_the_wrong_type_names_that_override() {
    let msg = set_fails(
        &["train.seed=3", "train.steps=many", "train.log_every=1"],
        &["--set train.steps=many", "many"],
    );
    assert!(
        !msg.contains("train.seed=3"),
        "blames a good override:\n{msg}"
    );
    set_fails(&["train.batch_size=-4"], &["--set train.batch_size=-4"]);
}

#[test]
fn an_assignment_without_equals_is_refused() {
    set_fails(&["train.steps"], &["--set train.steps", "KEY.PATH=VALUE"]);
}

#[test]
fn an_empty_key_is_refused() {
    set_fails(&["=3"], &["--set =3", "empty key"]);
    set_fails(
        &["train..steps=3"],
        &["--set train..steps=3", "empty segment"],
    );
}

#[test]
fn a_list_index_out_of_range_gives_the_length() {
    set_fails(
        &["model.encoder.hidden.5=3"],
        &[
            "--set model.encoder.hidden.5=3",
            "index 5 out of range (length 1)",
        ],
    );
    set_fails(
        &["model.encoder.hidden.first=3"],
        &["expected a list index", "`first`"],
    );
}

#[test]
fn descending_into_a_number_is_refused() {
    set_fails(
        &["train.steps.max=3"],
        &["--set train.steps.max=3", "cannot descend"],
    );
}

#[test]
fn an_unknown_component_in_a_value_lists_the_names() {
    set_fails(
        &[r#"model.encoder={"Mpl": {"hidden": [8]}}"#],
        &[
            "unknown name `Mpl`",
            "did you mean `Mlp`",
            "registered:",
            "`Conv`",
        ],
    );
    set_fails(
        &[r#"data={"Pendullum": {}}"#],
        &["unknown name `Pendullum`", "did you mean `Pendulum`"],
    );
}

#[test]
fn a_value_that_is_not_ron_or_json_names_the_override() {
    set_fails(&["train.steps=[1,"], &["--set train.steps=[1,"]);
    set_fails(
        &["model.encoder.hidden={8"],
        &["--set model.encoder.hidden={8"],
    );
}

#[test]
fn overrides_to_invalid_sizes_name_the_field() {
    set_fails(&["train.batch_size=0"], &["train.batch_size", "at least 1"]);
    set_fails(
        &["eval.metrics=[\"elbo\", \"sapp\"]"],
        &["eval.metrics", "`sapp`", "did you mean sap"],
    );
}

#[test]
fn a_non_finite_override_is_refused() {
    set_fails(&["model.beta=NaN"], &["--set model.beta=NaN"]);
    set_fails(
        &["train.optimizer.lr=inf"],
        &["--set train.optimizer.lr=inf"],
    );
}

#[test]
fn an_inline_component_with_a_bad_variant_names_the_override() {
    set_fails(
        &[r#"model.decoder={"Mlp": (hidden: [8], likelihood: Bernouli)}"#],
        &[
            "--set model.decoder=",
            "`Bernouli`",
            "did you mean `Bernoulli`",
        ],
    );
    set_fails(
        &["train.lr_schedule=Warmup(steps: 4"],
        &[
            "--set train.lr_schedule=Warmup(steps: 4",
            "not a RON or JSON value",
        ],
    );
}

//! Bad input gets a clear error naming where and what, never a panic.

use carve::config::Experiment;

const GOOD: &str = r#"(
    name: "t",
    data: {"Pendulum": (size: 32, channels: 3)},
    model: {"BetaVae": (
        latent_dim: 4,
        beta: 4.0,
        encoder: {"Mlp": (hidden: [16])},
        decoder: {"Mlp": (hidden: [16])},
    )},
    train: (steps: 2, batch_size: 4),
)"#;

fn parse_err(text: &str, overrides: &[&str]) -> String {
    carve_tests::link();
    let o: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    Experiment::parse(text, "test.ron", &o)
        .unwrap_err()
        .to_string()
}

#[test]
fn the_reference_config_parses() {
    carve_tests::link();
    Experiment::parse(GOOD, "test.ron", &[]).unwrap();
}

#[test]
fn syntax_error_reports_line_and_column() {
    let e = parse_err(&GOOD.replace("latent_dim: 4,", "latent_dim: 4,,"), &[]);
    assert!(e.contains("test.ron:5:"), "{e}");
}

#[test]
fn unknown_component_suggests_the_closest_registered_name() {
    let e = parse_err(
        &GOOD.replace(r#"encoder: {"Mlp""#, r#"encoder: {"Mpl""#),
        &[],
    );
    assert!(e.contains("test.ron:7:"), "{e}");
    assert!(e.contains("unknown name `Mpl`; did you mean `Mlp`"), "{e}");
    let e = parse_err(&GOOD.replace("BetaVae", "BetaVAE"), &[]);
    assert!(e.contains("did you mean `BetaVae`"), "{e}");
}

#[test]
fn unknown_field_is_named_with_a_suggestion() {
    let e = parse_err(&GOOD.replace("beta: 4.0", "betta: 4.0"), &[]);
    assert!(
        e.contains("unknown field `betta`; did you mean `beta`"),
        "{e}"
    );
    let e = parse_err(GOOD, &["train.stesp=3"]);
    assert!(
        e.contains("--set train.stesp=3") && e.contains("did you mean `steps`"),
        "{e}"
    );
}

#[test]
fn overrides_change_any_field() {
    carve_tests::link();
    let o = vec![
        "train.steps=7".to_string(),
        "model.encoder.hidden=[8, 8]".to_string(),
    ];
    let exp = Experiment::parse(GOOD, "test.ron", &o).unwrap();
    assert_eq!(exp.train.steps, 7);
    assert!(exp.to_ron().unwrap().contains("8,"));
}

#[test]
fn missing_file_names_the_path() {
    let e = Experiment::load(std::path::Path::new("no/such/config.ron"), &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("no/such/config.ron"), "{e}");
}

#[test]
fn impossible_shapes_are_reported_before_training() {
    carve_tests::link();
    let text = GOOD.replace(
        r#"{"Mlp": (hidden: [16])}"#,
        r#"{"Conv": (channels: [8, 8, 8, 8, 8, 8])}"#,
    );
    let exp = Experiment::parse(&text, "test.ron", &[]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let err = carve::train::train(
        Some(exp),
        carve::train::TrainOptions {
            out_dir: Some(dir.path().to_path_buf()),
            resume: None,
            overwrite: false,
            device: candle_core::Device::Cpu,
            progress: false,
        },
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("divisible by 64") && err.contains("32"),
        "{err}"
    );
}

#[test]
fn divergence_stops_with_the_step_and_term_and_keeps_the_last_good_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("diverge.ron");
    // A huge learning rate makes the loss overflow within a few steps.
    std::fs::write(
        &cfg,
        GOOD.replace(
            "(steps: 2, batch_size: 4)",
            "(steps: 200, batch_size: 4, checkpoint_every: 1, optimizer: (lr: 1e12))",
        ),
    )
    .unwrap();
    let run = dir.path().join("run");
    let err = carve_tests::train_into(&cfg, &[], &run).unwrap_err();
    let carve::Error::Diverged { first, last, .. } = &err else {
        panic!("expected a divergence error, got {err}");
    };
    let msg = err.to_string();
    assert!(msg.contains(&format!("step {last}")), "{msg}");
    // The steps count from 1; the kept checkpoint is the one before the range, and it is finite.
    if carve::train::checkpoint::find(&run).is_some() {
        let state: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(run.join("checkpoint/state.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(state["step"].as_u64().unwrap() as usize, first - 1, "{msg}");
        carve::train::Session::open(&run, candle_core::Device::Cpu).unwrap();
    } else {
        assert_eq!(*first, 1, "{msg}");
    }
}

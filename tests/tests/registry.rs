//! The facade links every plugin: their methods and components are listed.

use carve::registry::{self, ComponentKind};

#[test]
fn every_plugin_and_framework_component_is_registered() {
    carve_tests::link();
    let methods: Vec<&str> = registry::methods().iter().map(|m| m.name).collect();
    for m in ["BetaVae", "Elbo"] {
        assert!(methods.contains(&m), "method {m} missing from {methods:?}");
    }
    let expect = [
        (ComponentKind::Encoder, &["Mlp", "Conv"][..]),
        (ComponentKind::Decoder, &["Mlp", "Conv"][..]),
        (ComponentKind::Prior, &["StdNormal"][..]),
        (ComponentKind::CausalLayer, &["Independent"][..]),
        (ComponentKind::Objective, &["Reconstruction", "PriorKl"][..]),
        (ComponentKind::Transition, &["GumbelMasked"][..]),
        (ComponentKind::Dataset, &["Pendulum", "ImageFolder"][..]),
    ];
    for (kind, names) in expect {
        let got = registry::names(kind);
        for n in names {
            assert!(
                got.contains(n),
                "{} `{n}` missing from {got:?}",
                kind.label()
            );
        }
    }
    let metrics: Vec<&str> = carve::metrics::registered()
        .iter()
        .map(|m| m.name)
        .collect();
    for m in ["elbo", "mcc"] {
        assert!(metrics.contains(&m), "metric {m} missing");
    }
}

#[test]
fn every_method_default_config_parses() {
    carve_tests::link();
    for m in registry::methods() {
        carve::config::Experiment::parse(m.default_config, m.name, &[])
            .unwrap_or_else(|e| panic!("default config of {}: {e}", m.name));
    }
}

/// The compatibility matrix of docs/components.md is `carve list --matrix` of the registry as it is.
#[test]
fn the_docs_show_the_current_compatibility_matrix() {
    carve_tests::link();
    let path = carve_tests::configs_dir().join("../docs/components.md");
    let docs = std::fs::read_to_string(path).unwrap();
    let matrix = carve::compatibility::matrix();
    assert!(
        docs.contains(&matrix),
        "docs/components.md's matrix is out of date: replace it with the output of `carve list --matrix`:\n{matrix}"
    );
}

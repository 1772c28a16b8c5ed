//! β-VAE (β = 4) against the plain VAE (β = 1) on dSprites, scored on the simulator (docs/results/betavae.md).
//!
//! CI trains both configs a few steps with every shipped config (tests/tests/configs.rs). The comparison at
//! the shipped budget (two trainings of about 12 min at one thread each, then the β-VAE and FactorVAE scores
//! with disentanglement_lib's point counts, on 2 cores) is ignored by default:
//!
//! ```text
//! cargo test --release -p carve-tests --test betavae_dsprites -- --ignored --nocapture
//! ```

use carve_tests::{summary, train_into};

fn metric(s: &serde_json::Value, name: &str) -> f64 {
    s["metrics"][name]
        .as_f64()
        .unwrap_or_else(|| panic!("summary lacks {name}: {}", s["metrics"]))
}

/// The β-VAE paper's claim at the shipped budget, seed 1: the β-VAE score of β = 4 at least 0.85 and at least
/// 0.10 above β = 1's, and the FactorVAE score ordered the same way.
#[test]
#[ignore = "two 12-minute trainings and the full simulator scores; run with --ignored"]
fn betavae_disentangles_dsprites_better_than_the_vae() {
    let dir = tempfile::tempdir().unwrap();
    let configs = carve_tests::configs_dir();
    let run = |path: &str, name: &str| {
        summary(&train_into(&configs.join(path), &[], &dir.path().join(name)).unwrap())
    };
    let beta = run("betavae/dsprites.ron", "betavae");
    let vae = run("vae/dsprites.ron", "vae");
    let (b, v) = (
        metric(&beta, "betavae_score"),
        metric(&vae, "betavae_score"),
    );
    let (fb, fv) = (
        metric(&beta, "factorvae_score"),
        metric(&vae, "factorvae_score"),
    );
    println!("β-VAE score: β = 4 {b:.3}, β = 1 {v:.3}; FactorVAE score: {fb:.3} vs {fv:.3}");
    assert!(b >= 0.85, "β-VAE score of the β-VAE {b:.3} < 0.85");
    assert!(
        b >= v + 0.10,
        "β-VAE score {b:.3} is not 0.10 above the VAE's {v:.3}"
    );
    assert!(fb > fv, "FactorVAE score: β-VAE {fb:.3}, VAE {fv:.3}");
}

//! The mechanism-sparsity VAE on the synthetic benchmarks of docs/methods/sparsity.md, scored against the true
//! latents and graphs.
//!
//! CI runs a short version on a small dataset: the constraint drives the expected edge count down to its
//! bound, the learned graph is far closer to the truth than the unregularised all-ones graph, MCC rises
//! above the unregularised run's, and every metric is finite. The reproduction against the targets in
//! docs/results/sparsity.md (four CPU-budget configs, ~10 minutes each on 2 cores) is ignored by default:
//!
//! ```text
//! cargo test --release -p carve-tests --test sparsity -- --ignored --nocapture
//! ```

use carve_tests::{summary, train_into};
use std::path::PathBuf;

fn config(name: &str) -> PathBuf {
    carve_tests::configs_dir().join("sparsity").join(name)
}

fn metric(s: &serde_json::Value, name: &str) -> f64 {
    s["metrics"][name]
        .as_f64()
        .unwrap_or_else(|| panic!("summary lacks {name}: {s}"))
}

fn last_log(run: &std::path::Path) -> serde_json::Value {
    let text = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    serde_json::from_str(text.lines().last().unwrap()).unwrap()
}

#[test]
fn short_constrained_run_finds_a_sparse_graph() {
    let dir = tempfile::tempdir().unwrap();
    // action_sparsity_trivial (G^a = I) on 4,096 rows for 1,500 steps. The sparse run cuts the graph within
    // 600 steps, with a 10× mask learning rate so a short run can reach the bound (the shipped config uses 1×
    // over 30k steps). Measured: MCC .715 / SHD 7 sparse, .582 / 90 unregularised.
    let short = |sparse: bool| -> Vec<String> {
        let mut o: Vec<String> = [
            "data.n_train=4096",
            "data.n_test=1024",
            "train.steps=1500",
            "train.log_every=50",
            "train.checkpoint_every=100000",
            "eval.max_samples=1024",
        ]
        .map(String::from)
        .to_vec();
        if sparse {
            o.push("model.sparsity_a.schedule_steps=600".into());
            o.push("model.mask_lr_scale=10.0".into());
        }
        o
    };
    let sparse = train_into(
        &config("action_trivial.ron"),
        &short(true),
        &dir.path().join("sparse"),
    )
    .unwrap();
    let unreg = train_into(
        &config("ablations/action_trivial_unregularised.ron"),
        &short(false),
        &dir.path().join("unreg"),
    )
    .unwrap();
    let (s, u) = (summary(&sparse), summary(&unreg));
    eprintln!("sparse: {s}\nunregularised: {u}");
    for run in [&s, &u] {
        for (k, v) in run["metrics"].as_object().unwrap() {
            assert!(v.as_f64().is_some_and(f64::is_finite), "{k} = {v}");
        }
    }
    assert!(sparse.join("figures/graph_a.png").exists());
    // The constraint binds: Σσ(α) follows the bound from 100 down towards the 10 true edges (13.3 measured,
    // λ still pushing), and the thresholded graph keeps about 10 (11 measured).
    let expected = last_log(&sparse)["edges_a"].as_f64().unwrap();
    assert!(
        expected < 16.0,
        "expected edges {expected} did not approach the bound 10"
    );
    assert!(
        metric(&s, "edges_a") <= 12.0,
        "learned graph has {} edges",
        metric(&s, "edges_a")
    );
    assert_eq!(
        metric(&u, "edges_a"),
        100.0,
        "unregularised graph keeps every edge"
    );
    assert_eq!(metric(&u, "shd_a"), 90.0);
    // A random 10-edge graph scores SHD ≈ 18 against the identity; the learned one is closer.
    assert!(
        metric(&s, "shd_a") <= 12.0,
        "sparse graph SHD {}",
        metric(&s, "shd_a")
    );
    assert!(
        metric(&s, "mcc") > metric(&u, "mcc") + 0.05,
        "sparsity did not raise MCC: {} vs {}",
        metric(&s, "mcc"),
        metric(&u, "mcc")
    );
}

/// One CPU-budget config: its MCC and SHD against its reproduction targets (docs/results/sparsity.md).
fn reproduce(name: &str) -> (f64, f64, f64) {
    let dir = tempfile::tempdir().unwrap();
    let run = train_into(&config(name), &[], dir.path()).unwrap();
    let s = summary(&run);
    let graph = if name.contains("temporal") {
        "shd_z"
    } else {
        "shd_a"
    };
    let out = (
        metric(&s, "mcc"),
        metric(&s, graph),
        s["wall_seconds"].as_f64().unwrap(),
    );
    eprintln!(
        "{name}: MCC {:.3}  SHD {}  wall {:.0} s  {s}",
        out.0, out.1, out.2
    );
    out
}

#[test]
#[ignore = "reproduction: about 40 minutes on 2 cores"]
fn cpu_budget_configs_reach_the_targets() {
    let (mcc, shd, _) = reproduce("action_nontrivial.ron");
    assert!(
        mcc >= 0.95 && shd <= 2.0,
        "action non-trivial: MCC {mcc}, SHD {shd}"
    );
    // The "clearly lower" target fails here: the unregularised run reaches MCC 0.956
    // (reference 0.758) while its graph is the all-ones one (docs/results/sparsity.md).
    let (mcc_unreg, _, _) = reproduce("ablations/action_nontrivial_unregularised.ron");
    assert!(
        mcc_unreg < mcc - 0.1,
        "unregularised MCC {mcc_unreg} not clearly lower"
    );
    let (mcc, shd, _) = reproduce("temporal_trivial.ron");
    assert!(
        mcc >= 0.93 && shd <= 1.0,
        "temporal trivial: MCC {mcc}, SHD {shd}"
    );
    let (mcc_unreg, _, _) = reproduce("ablations/temporal_trivial_unregularised.ron");
    assert!(
        mcc_unreg < mcc - 0.1,
        "unregularised MCC {mcc_unreg} not clearly lower"
    );
}

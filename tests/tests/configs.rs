//! Every shipped config parses and trains a few steps on small data, producing a complete run directory.

use carve_tests::{all_configs, small_for, summary, train_into};

#[test]
fn every_shipped_config_trains_a_few_steps() {
    let configs = all_configs();
    assert!(!configs.is_empty(), "no configs found");
    for cfg in configs {
        let dir = tempfile::tempdir().unwrap();
        let run = train_into(&cfg, &small_for(&cfg, 3), dir.path())
            .unwrap_or_else(|e| panic!("{}: {e}", cfg.display()));
        for file in [
            "config.ron",
            "metrics.jsonl",
            "summary.json",
            "checkpoint/model.safetensors",
            "checkpoint/optimizer.safetensors",
            "checkpoint/state.json",
        ] {
            assert!(run.join(file).exists(), "{}: {file} missing", cfg.display());
        }
        // The resolved config (a file that `extends` a base may not name its dataset or parts).
        let text = std::fs::read_to_string(run.join("config.ron")).unwrap();
        let figures: &[&str] = if text.contains("\"Synthetic\"") {
            // tabular data: the learned mechanism graphs (actions or time lags, by dataset)
            if text.contains("temporal_") {
                &["figures/graph_z.png"]
            } else {
                &["figures/graph_a.png"]
            }
        } else {
            &["figures/reconstructions.png"]
        };
        for file in figures {
            assert!(run.join(file).exists(), "{}: {file} missing", cfg.display());
        }
        if text.contains("CausalVaeMask") {
            for file in ["figures/graph.png", "figures/interventions.png"] {
                assert!(run.join(file).exists(), "{}: {file} missing", cfg.display());
            }
        }
        let s = summary(&run);
        assert_eq!(s["steps"], 3, "{}", cfg.display());
        assert!(s["samples_per_sec"].as_f64().unwrap() > 0.0);
        let metrics = s["metrics"].as_object().unwrap();
        assert!(!metrics.is_empty(), "{}: no metrics", cfg.display());
        for (k, v) in metrics {
            assert!(
                v.as_f64().is_some_and(f64::is_finite),
                "{}: metric {k} = {v}",
                cfg.display()
            );
        }
        let lines = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
        let first: serde_json::Value = serde_json::from_str(lines.lines().next().unwrap()).unwrap();
        for key in ["step", "loss", "samples_per_sec"] {
            assert!(
                first.get(key).is_some(),
                "{}: metrics.jsonl lacks {key}",
                cfg.display()
            );
        }
    }
}

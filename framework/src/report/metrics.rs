//! Which metrics a report shows, and which way each one is better.

use super::runs::Run;
use crate::error::{Error, Result};
use std::collections::BTreeSet;

/// Always the last column: what a configuration costs.
pub const WALL: &str = "wall_seconds";

/// Whether a smaller value of `metric` is better, from its name: errors, distances, losses, divergences,
/// structural Hamming distances and times (names containing `mae`, `drift`, `loss`, `nll`, `error`, `kl`,
/// `shd`, `seconds` or `recon`, a reconstruction error) are; scores such as `mcc`, accuracies and AUROCs are not. The one place this rule lives,
/// so that a new metric is judged the same way in the table's "best" lines and wherever else it is asked.
pub fn lower_is_better(metric: &str) -> bool {
    const LOWER: [&str; 9] = [
        "mae", "drift", "loss", "nll", "error", "kl", "shd", "seconds", "recon",
    ];
    LOWER.iter().any(|w| metric.contains(w))
}

/// The metrics of the summaries that are not a detail of another: `k` is kept unless another metric `p`
/// present has `k = p_...` (`mcc` is kept, `mcc_aligned_0` is a detail of `mcc_aligned` and of `mcc`;
/// `intervention_acc_ceiling` one of `intervention_acc`). Only metrics with a value in some run count.
pub fn headline(runs: &[Run]) -> Vec<String> {
    let present = with_values(runs);
    present
        .iter()
        .filter(|k| {
            !present.iter().any(|p| {
                k.len() > p.len() + 1 && k.starts_with(p.as_str()) && k[p.len()..].starts_with('_')
            })
        })
        .cloned()
        .collect()
}

/// Metrics with a finite value in at least one run.
fn with_values(runs: &[Run]) -> BTreeSet<String> {
    runs.iter()
        .flat_map(|r| r.metrics.iter())
        .filter(|(_, v)| v.is_some_and(f64::is_finite))
        .map(|(k, _)| k.clone())
        .collect()
}

/// The metrics to show: `requested` (in its order), or the [`headline`] ones, then [`WALL`] when the
/// summaries have it. A requested name no run has a value for is an error naming the closest ones.
pub fn select(runs: &[Run], requested: Option<&[String]>) -> Result<Vec<String>> {
    let mut available = with_values(runs);
    available.extend(
        runs.iter()
            .flat_map(|r| r.totals.keys())
            .filter(|k| runs.iter().any(|r| r.value(k).is_some()))
            .cloned(),
    );
    let mut chosen: Vec<String> = match requested {
        None => headline(runs),
        Some(names) => {
            for name in names {
                if !available.contains(name) {
                    return Err(unknown(name, &available));
                }
            }
            let mut seen = BTreeSet::new();
            names.iter().filter(|n| seen.insert(*n)).cloned().collect()
        }
    };
    chosen.retain(|m| m != WALL);
    if available.contains(WALL) {
        chosen.push(WALL.to_string());
    }
    if chosen.is_empty() {
        return Err(Error::msg(
            "the runs' summaries hold no metrics with a value (every one is missing or null)",
        ));
    }
    Ok(chosen)
}

fn unknown(name: &str, available: &BTreeSet<String>) -> Error {
    let names: Vec<&str> = available.iter().map(String::as_str).collect();
    let close = crate::registry::closest(name, &names);
    let hint = if close.is_empty() {
        String::new()
    } else {
        format!("; did you mean `{}`?", close.join("`, `"))
    };
    Error::msg(format!(
        "no run has a value for metric `{name}`{hint} (available: {})",
        names.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    fn run(metrics: &[(&str, Option<f64>)]) -> Run {
        Run {
            dir: PathBuf::from("r"),
            config: Default::default(),
            metrics: metrics.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            totals: BTreeMap::from([(WALL.to_string(), 3.0)]),
        }
    }

    #[test]
    fn headline_metrics_drop_details_of_others() {
        let runs = [run(&[
            ("mcc", Some(0.9)),
            ("mcc_aligned", Some(0.9)),
            ("mcc_aligned_0", Some(0.9)),
            ("mccx", Some(0.1)),
            ("intervention_acc", Some(0.5)),
            ("intervention_acc_ceiling", Some(0.6)),
            ("intervention_desc_mae", Some(1.0)),
            ("nothing", None),
        ])];
        assert_eq!(
            headline(&runs),
            ["intervention_acc", "intervention_desc_mae", "mcc", "mccx"]
        );
        assert_eq!(select(&runs, None).unwrap().last().unwrap(), WALL);
    }

    #[test]
    fn requested_metrics_keep_their_order_and_unknown_ones_are_named() {
        let runs = [run(&[("mcc", Some(0.9)), ("edge_auroc", Some(1.0))])];
        let names = ["edge_auroc".to_string(), "mcc".to_string()];
        assert_eq!(
            select(&runs, Some(&names)).unwrap(),
            ["edge_auroc", "mcc", WALL]
        );
        let e = select(&runs, Some(&["mc".to_string()]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`mc`") && e.contains("did you mean `mcc`") && e.contains("edge_auroc"),
            "{e}"
        );
    }

    #[test]
    fn direction_follows_the_name() {
        for lower in [
            "intervention_desc_mae",
            "shd_classical",
            "wall_seconds",
            "recon_nll",
            "kl",
        ] {
            assert!(lower_is_better(lower), "{lower}");
        }
        for higher in [
            "mcc",
            "edge_auroc",
            "intervention_acc",
            "dci_disentanglement",
        ] {
            assert!(!lower_is_better(higher), "{higher}");
        }
    }
}

//! Threshold-free score of a weighted learned graph: the AUROC of |A_ij| (off-diagonal) as a detector of the
//! true edges i → j, i.e. the probability that a random true edge outweighs a random non-edge (ties count half).
//! SHD needs a threshold on |A|, and where a method's edge weights have no fixed scale (CausalVAE's masked
//! mechanism input) the fixed 0.3 says less than the ranking: 1.0 means some threshold recovers the graph exactly.

use super::shd::weighted_and_true;
use super::EvalInputs;
use crate::error::{Error, Result};
use std::collections::BTreeMap;

/// AUROC of `scores` for the positives in `truth` (Mann–Whitney U / (positives · negatives)).
pub fn auroc(scores: &[f64], truth: &[bool]) -> Option<f64> {
    let pos: Vec<f64> = scores
        .iter()
        .zip(truth)
        .filter(|(_, &t)| t)
        .map(|(&s, _)| s)
        .collect();
    let neg: Vec<f64> = scores
        .iter()
        .zip(truth)
        .filter(|(_, &t)| !t)
        .map(|(&s, _)| s)
        .collect();
    if pos.is_empty() || neg.is_empty() {
        return None;
    }
    let wins: f64 = pos
        .iter()
        .flat_map(|p| neg.iter().map(move |n| (p, n)))
        .map(|(p, n)| match p.partial_cmp(n) {
            Some(std::cmp::Ordering::Greater) => 1.0,
            Some(std::cmp::Ordering::Equal) => 0.5,
            _ => 0.0,
        })
        .sum();
    Some(wins / (pos.len() * neg.len()) as f64)
}

fn edge_auroc(inputs: &EvalInputs) -> Result<BTreeMap<String, f64>> {
    const NAME: &str = "edge_auroc";
    let (abs, truth, m) = weighted_and_true(inputs, NAME)?;
    let off: Vec<usize> = (0..m * m).filter(|k| k / m != k % m).collect();
    let scores: Vec<f64> = off.iter().map(|&k| abs[k]).collect();
    let t: Vec<bool> = off.iter().map(|&k| truth[k]).collect();
    let v = auroc(&scores, &t).ok_or_else(|| {
        Error::Data(format!(
            "metric `{NAME}` needs a true graph with at least one edge and one non-edge"
        ))
    })?;
    Ok(BTreeMap::from([(NAME.to_string(), v)]))
}

crate::register_metric!(
    "edge_auroc",
    "learned vs true graph without a threshold: AUROC of |A_ij| for the true edges (1 = some threshold is exact)",
    edge_auroc
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auroc_ranks_edges_over_non_edges() {
        let truth = [true, true, false, false];
        assert_eq!(auroc(&[0.9, 0.1, 0.05, 0.0], &truth), Some(1.0));
        assert_eq!(auroc(&[0.0, 0.05, 0.1, 0.9], &truth), Some(0.0));
        // one of four pairs is a tie, one is lost: (1 + 1 + 0.5 + 0) / 4
        assert_eq!(auroc(&[0.5, 0.2, 0.2, 0.3], &truth), Some(0.625));
        assert_eq!(auroc(&[0.5, 0.2], &[true, true]), None);
    }

    #[test]
    fn the_metric_ignores_the_diagonal_and_needs_both_graphs() {
        // truth 0 → 1 over 2 nodes; a large self-loop weight must not count as a non-edge beating the edge.
        let mut inputs = EvalInputs {
            learned_graph: Some(vec![5.0, 0.4, 0.1, 5.0]),
            true_graph: Some(vec![false, true, false, false]),
            ..Default::default()
        };
        assert_eq!(edge_auroc(&inputs).unwrap()["edge_auroc"], 1.0);
        inputs.true_graph = None;
        let err = edge_auroc(&inputs).unwrap_err().to_string();
        assert!(err.contains("edge_auroc"), "{err}");
    }
}

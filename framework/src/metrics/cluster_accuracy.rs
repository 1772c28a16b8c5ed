//! Cluster accuracy (VaDE, Jiang et al. 2017; docs/methods/metrics.md, "Cluster accuracy"): the fraction of
//! points whose predicted cluster maps
//! to their label under the best one-to-one cluster→label map, found by the Hungarian algorithm
//! (`pathfinding::kuhn_munkres`) on the confusion matrix. The registered metric reads the predicted cluster as the
//! argmax over code dimensions (cluster responsibilities or logits) and the label from the first label column
//! (or, without labels, the first factor).

use super::EvalInputs;
use crate::error::{Error, Result};
use pathfinding::prelude::{kuhn_munkres, Matrix};
use std::collections::BTreeMap;

/// Best one-to-one matched fraction between `pred` clusters and `truth` labels.
pub fn cluster_accuracy(pred: &[usize], truth: &[usize]) -> Result<f64> {
    if pred.len() != truth.len() || pred.is_empty() {
        return Err(Error::Shape {
            context: "cluster accuracy".into(),
            expected: "as many (≥ 1) predictions as labels".into(),
            got: format!("{} and {}", pred.len(), truth.len()),
        });
    }
    let nc = pred.iter().max().unwrap() + 1;
    let nl = truth.iter().max().unwrap() + 1;
    let mut conf = vec![vec![0i64; nl]; nc];
    for (&p, &t) in pred.iter().zip(truth) {
        conf[p][t] += 1;
    }
    let (rows, cols) = (nc.min(nl), nc.max(nl));
    let w = Matrix::from_fn(
        rows,
        cols,
        |(r, c)| {
            if nc <= nl {
                conf[r][c]
            } else {
                conf[c][r]
            }
        },
    );
    let (total, _) = kuhn_munkres(&w);
    Ok(total as f64 / pred.len() as f64)
}

fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (j, v) in row.iter().enumerate() {
        if *v > row[best] {
            best = j;
        }
    }
    best
}

fn cluster_metric(inputs: &EvalInputs) -> Result<BTreeMap<String, f64>> {
    let (lab, m) = match &inputs.labels {
        Some(l) if inputs.n_labels > 0 => (l.as_slice(), inputs.n_labels),
        _ => (inputs.require_factors("cluster_accuracy")?, inputs.k),
    };
    let truth: Vec<usize> = lab
        .chunks(m)
        .map(|r| r[0].max(0.0).round() as usize)
        .collect();
    let pred: Vec<usize> = inputs.codes.chunks(inputs.d.max(1)).map(argmax).collect();
    Ok(BTreeMap::from([(
        "cluster_accuracy".to_string(),
        cluster_accuracy(&pred, &truth)?,
    )]))
}

crate::register_metric!(
    "cluster_accuracy",
    "accuracy of argmax-code clusters under the best one-to-one cluster→label map (Hungarian)",
    cluster_metric
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relabelled_clusters_score_one() {
        assert_eq!(
            cluster_accuracy(&[2, 2, 0, 0, 1], &[0, 0, 1, 1, 2]).unwrap(),
            1.0
        );
        assert!((cluster_accuracy(&[0, 0, 0, 1], &[0, 1, 2, 2]).unwrap() - 0.5).abs() < 1e-12);
    }
}

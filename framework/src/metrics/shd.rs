//! Structural Hamming distance between a true and a learned directed graph (docs/methods/metrics.md, "SHD"),
//! two conventions:
//!
//! - **element-wise** (`shd_elementwise`, mechanism-sparsity code, Lachapelle et al. 2022 `metrics.py`): the learned
//!   graph is aligned to the truth with the MCC assignment (rows and columns for latent→latent graphs, rows only for
//!   latent→action graphs), then `SHD = FN + FP` over all entries; a reversed edge counts 2;
//! - **classical** (`shd_classical`, insert/delete/reverse, as in the causal-discovery toolbox's `SHD` without
//!   `double_for_anticausal`): each unordered node pair whose edge state differs costs 1 (so a reversal costs 1),
//!   and each differing self-loop costs 1.
//!
//! Graphs are row-major `0/1` adjacency matrices, `g[i·m + j] = 1` for an edge `i → j`. A learned graph of edge
//! probabilities is binarised first (`σ(α) > 0.5`, i.e. `p > threshold`). The registered metrics compare a
//! method's weighted adjacency (|A| > 0.3) with the dataset's true graph, nodes aligned by supervision.

use super::EvalInputs;
use crate::error::{Error, Result};
use std::collections::BTreeMap;

/// `1[p > threshold]` for each entry.
pub fn binarize(p: &[f64], threshold: f64) -> Vec<bool> {
    p.iter().map(|&v| v > threshold).collect()
}

/// Aligns a learned latent→latent graph (`d × d`, over code dimensions) to the true one (`k × k`, over factors):
/// `aligned[i][j] = learned[assignment[i]][assignment[j]]`; unmatched factors get no edges.
pub fn align_square<T: Copy + Default>(
    learned: &[T],
    d: usize,
    assignment: &[Option<usize>],
) -> Vec<T> {
    let k = assignment.len();
    let mut out = vec![T::default(); k * k];
    for i in 0..k {
        for j in 0..k {
            if let (Some(a), Some(b)) = (assignment[i], assignment[j]) {
                out[i * k + j] = learned[a * d + b];
            }
        }
    }
    out
}

/// Aligns the rows of a learned latent→action graph (`d × m`) to the factors: `aligned[i] = learned[assignment[i]]`.
pub fn align_rows<T: Copy + Default>(
    learned: &[T],
    m: usize,
    assignment: &[Option<usize>],
) -> Vec<T> {
    let k = assignment.len();
    let mut out = vec![T::default(); k * m];
    for (i, a) in assignment.iter().enumerate() {
        if let Some(a) = a {
            out[i * m..(i + 1) * m].copy_from_slice(&learned[a * m..(a + 1) * m]);
        }
    }
    out
}

fn same_len(a: &[bool], b: &[bool]) -> Result<()> {
    if a.len() == b.len() {
        Ok(())
    } else {
        Err(Error::Shape {
            context: "shd".into(),
            expected: format!("{} entries in both graphs", a.len()),
            got: format!("{}", b.len()),
        })
    }
}

/// Element-wise SHD = FN + FP of two aligned graphs of the same shape.
pub fn shd_elementwise(truth: &[bool], learned: &[bool]) -> Result<usize> {
    same_len(truth, learned)?;
    Ok(truth.iter().zip(learned).filter(|(a, b)| a != b).count())
}

/// Classical SHD of two `m × m` graphs: insertions + deletions + reversals (a reversal costs 1).
pub fn shd_classical(truth: &[bool], learned: &[bool], m: usize) -> Result<usize> {
    same_len(truth, learned)?;
    if truth.len() != m * m {
        return Err(Error::Shape {
            context: "shd_classical".into(),
            expected: format!("{m} × {m} graphs"),
            got: format!("{} entries", truth.len()),
        });
    }
    let mut count = 0;
    for i in 0..m {
        count += usize::from(truth[i * m + i] != learned[i * m + i]);
        for j in i + 1..m {
            let t = (truth[i * m + j], truth[j * m + i]);
            let l = (learned[i * m + j], learned[j * m + i]);
            count += usize::from(t != l);
        }
    }
    Ok(count)
}

/// |A| above this counts as an edge (CausalVAE code's prune helper uses 0.3).
pub const EDGE_THRESHOLD: f64 = 0.3;

/// The method's learned graph as |A|, the dataset's true graph, and their node count m, checked to have the
/// same size. The graph's nodes are the factors in order (supervised methods align them), so no permutation is
/// applied here.
pub(crate) fn weighted_and_true<'a>(
    inputs: &'a EvalInputs,
    name: &str,
) -> Result<(Vec<f64>, &'a [bool], usize)> {
    let (Some(learned), Some(truth)) = (&inputs.learned_graph, &inputs.true_graph) else {
        return Err(Error::Data(format!(
            "metric `{name}` needs a method with a learned graph and a dataset with a true graph"
        )));
    };
    let m = (truth.len() as f64).sqrt() as usize;
    if learned.len() != truth.len() {
        return Err(Error::Shape {
            context: format!("metric `{name}`"),
            expected: format!("a learned graph over the {m} factors"),
            got: format!("{} entries", learned.len()),
        });
    }
    Ok((learned.iter().map(|v| v.abs() as f64).collect(), truth, m))
}

/// SHD of the method's learned graph (|A| > [`EDGE_THRESHOLD`]) against the dataset's true graph.
fn learned_vs_true(inputs: &EvalInputs, name: &str) -> Result<BTreeMap<String, f64>> {
    let (abs, truth, m) = weighted_and_true(inputs, name)?;
    let l = binarize(&abs, EDGE_THRESHOLD);
    let v = if name == "shd_classical" {
        shd_classical(truth, &l, m)?
    } else {
        shd_elementwise(truth, &l)?
    };
    Ok(BTreeMap::from([(name.to_string(), v as f64)]))
}

crate::register_metric!(
    "shd_elementwise",
    "learned vs true graph (|A| > 0.3): FN + FP, a reversal counts 2",
    |i| learned_vs_true(i, "shd_elementwise")
);
crate::register_metric!(
    "shd_classical",
    "learned vs true graph (|A| > 0.3): insertions + deletions + reversals (a reversal counts 1)",
    |i| learned_vs_true(i, "shd_classical")
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reversal_costs_two_elementwise_and_one_classically() {
        // truth 0 → 1, 1 → 2; learned 1 → 0 (reversed), 1 → 2, 0 → 2 (extra)
        let t = [false, true, false, false, false, true, false, false, false];
        let l = [false, false, true, true, false, true, false, false, false];
        assert_eq!(shd_elementwise(&t, &l).unwrap(), 3);
        assert_eq!(shd_classical(&t, &l, 3).unwrap(), 2);
    }

    #[test]
    fn alignment_permutes_rows_and_columns() {
        // learned over codes: code 1 → code 0; factor 0 ↔ code 1, factor 1 ↔ code 0
        let l = [false, false, true, false];
        let a = align_square(&l, 2, &[Some(1), Some(0)]);
        assert_eq!(a, vec![false, true, false, false]);
        assert_eq!(
            align_rows(&[true, false, false, true], 2, &[Some(1), Some(0)]),
            vec![false, true, true, false]
        );
    }
}

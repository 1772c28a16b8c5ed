//! Metrics of learned latent-mechanism graphs (mechanism-sparsity code, `train.py` and `metrics.py`;
//! docs/methods/metrics.md, "R and consistent-R" and "SHD"), registered as:
//!
//! - `latent_graph_shd`: for every learned graph (`EvalInputs::learned_latent_graphs`, edge probabilities over the
//!   code dimensions) named like a true one (`EvalInputs::true_latent_graphs`): binarise at `p > 0.5`, permute with
//!   the MCC assignment `π` (factor `i` ↔ code `π(i)`), i.e. `Ĝ^z ← P Ĝ^z Pᵀ` (`aligned[i][j] = Ĝ[π(i)][π(j)]`) for a
//!   latent→latent graph and `Ĝ^a ← P Ĝ^a` (`aligned[i] = Ĝ[π(i)]`) for a latent→action graph, with `P[i][π(i)] = 1`
//!   (the reference's `perm_mat`), and count `SHD = FN + FP` elementwise (a reversed edge costs 2). Keys:
//!   `shd_<name>`, `edges_<name>` (edges of the binarised learned graph) and `true_edges_<name>`;
//! - `consistent_r`: consistent-R ([`consistent_r`]) with the consistency pattern of the true graphs:
//!   `C = C^z ⊙ C^a` (elementwise AND) when both exist, as the reference's `test_consistency`.
//!
//! For sequence data the codes and factors hold one row per frame; the graphs are over the per-frame latents.

use super::{align_rows, align_square, shd_elementwise, EvalInputs};
use super::{consistency_pattern_a, consistency_pattern_z, consistent_r, mcc, Correlation};
use crate::data::LatentGraph;
use crate::error::{Error, Result};
use std::collections::BTreeMap;

/// Edge probabilities above this are edges (`σ(α) > 0.5`).
pub const LATENT_EDGE_THRESHOLD: f32 = 0.5;

/// SHD of one learned latent graph (`d × cols` edge probabilities over code dimensions, row-major) against the
/// true graph over factors, after alignment with `assignment` (`assignment[i]` = the code matched to factor `i`).
/// Returns `(shd, learned edges)`.
pub fn latent_graph_shd(
    truth: &LatentGraph,
    learned: &[f32],
    rows: usize,
    cols: usize,
    assignment: &[Option<usize>],
) -> Result<(usize, usize)> {
    let k = truth.rows();
    let expected_cols = if truth.cols_are_latents {
        rows
    } else {
        truth.cols()
    };
    if learned.len() != rows * cols || cols != expected_cols || assignment.len() != k {
        return Err(Error::Shape {
            context: format!("latent graph `{}`", truth.name),
            expected: format!(
                "a learned graph of (codes = {rows}) × {} and an assignment of {k} factors",
                if truth.cols_are_latents {
                    format!("(codes = {rows})")
                } else {
                    format!("(actions = {})", truth.cols())
                }
            ),
            got: format!(
                "{rows} × {cols} ({} values) and {} factors",
                learned.len(),
                assignment.len()
            ),
        });
    }
    if let Some(&bad) = assignment.iter().flatten().find(|&&a| a >= rows) {
        return Err(Error::Shape {
            context: format!("latent graph `{}`", truth.name),
            expected: format!("codes matched to factors below {rows}"),
            got: format!("code {bad}"),
        });
    }
    let binary: Vec<bool> = learned.iter().map(|&p| p > LATENT_EDGE_THRESHOLD).collect();
    let aligned = if truth.cols_are_latents {
        align_square(&binary, rows, assignment)
    } else {
        align_rows(&binary, cols, assignment)
    };
    let shd = shd_elementwise(&truth.flat(), &aligned)?;
    Ok((shd, binary.iter().filter(|&&e| e).count()))
}

/// The consistency pattern (`k × k`, row-major) of the true graphs: `C^z` for latent→latent graphs, `C^a` for
/// latent→action graphs, combined by elementwise AND.
pub fn consistency_pattern(graphs: &[LatentGraph], k: usize) -> Result<Vec<bool>> {
    let mut pattern = vec![true; k * k];
    for g in graphs {
        if g.rows() != k || (g.cols_are_latents && g.cols() != k) {
            return Err(Error::Shape {
                context: format!("true latent graph `{}`", g.name),
                expected: format!(
                    "{k} rows (one per factor){}",
                    if g.cols_are_latents {
                        format!(" × {k}")
                    } else {
                        String::new()
                    }
                ),
                got: format!("{} × {}", g.rows(), g.cols()),
            });
        }
        let c = if g.cols_are_latents {
            consistency_pattern_z(&g.flat(), k)
        } else {
            consistency_pattern_a(&g.flat(), k, g.cols())
        };
        pattern.iter_mut().zip(c).for_each(|(p, c)| *p &= c);
    }
    Ok(pattern)
}

fn require_true_graphs<'a>(inputs: &'a EvalInputs, metric: &str) -> Result<&'a [LatentGraph]> {
    if inputs.true_latent_graphs.is_empty() {
        return Err(Error::Data(format!(
            "metric `{metric}` needs a dataset with true latent-mechanism graphs (e.g. `Synthetic`); this data has none"
        )));
    }
    Ok(&inputs.true_latent_graphs)
}

/// The MCC assignment of factors to codes (Pearson, as the reference).
fn assignment(inputs: &EvalInputs, metric: &str) -> Result<Vec<Option<usize>>> {
    let f = inputs.require_factors(metric)?;
    Ok(mcc(f, inputs.k, &inputs.codes, inputs.d, Correlation::Pearson)?.assignment)
}

fn shd_metric(inputs: &EvalInputs) -> Result<BTreeMap<String, f64>> {
    const NAME: &str = "latent_graph_shd";
    let truths = require_true_graphs(inputs, NAME)?;
    if inputs.learned_latent_graphs.is_empty() {
        return Err(Error::Data(format!(
            "metric `{NAME}` needs a method that learns latent-mechanism graphs (e.g. mechanism sparsity); this \
             one reported none"
        )));
    }
    let pairs: Vec<_> = inputs
        .learned_latent_graphs
        .iter()
        .filter_map(|l| truths.iter().find(|t| t.name == l.0).map(|t| (t, l)))
        .collect();
    if pairs.is_empty() {
        let names = |v: Vec<&str>| v.join(", ");
        return Err(Error::Data(format!(
            "metric `{NAME}`: no learned latent graph is named like a true one (learned: {}; true: {})",
            names(inputs.learned_latent_graphs.iter().map(|l| l.0.as_str()).collect()),
            names(truths.iter().map(|t| t.name.as_str()).collect()),
        )));
    }
    let assign = assignment(inputs, NAME)?;
    let mut out = BTreeMap::new();
    for (truth, (name, rows, cols, probs)) in pairs {
        if *rows != inputs.d {
            return Err(Error::Shape {
                context: format!("metric `{NAME}`, learned graph `{name}`"),
                expected: format!("one row per code dimension ({})", inputs.d),
                got: format!("{rows} rows"),
            });
        }
        let (shd, edges) = latent_graph_shd(truth, probs, *rows, *cols, &assign)?;
        out.insert(format!("shd_{name}"), shd as f64);
        out.insert(format!("edges_{name}"), edges as f64);
        out.insert(format!("true_edges_{name}"), truth.edges() as f64);
    }
    Ok(out)
}

fn consistent_r_metric(inputs: &EvalInputs) -> Result<BTreeMap<String, f64>> {
    const NAME: &str = "consistent_r";
    let truths = require_true_graphs(inputs, NAME)?;
    let pattern = consistency_pattern(truths, inputs.k)?;
    let assign = assignment(inputs, NAME)?;
    let f: Vec<f64> = inputs
        .require_factors(NAME)?
        .iter()
        .map(|&v| v.into())
        .collect();
    let c: Vec<f64> = inputs.codes.iter().map(|&v| v.into()).collect();
    let r = consistent_r(&f, inputs.k, &c, inputs.d, &assign, &pattern)?;
    Ok(BTreeMap::from([(NAME.to_string(), r)]))
}

crate::register_metric!(
    "latent_graph_shd",
    "learned vs true latent-mechanism graphs (p > 0.5, aligned by the MCC assignment): FN + FP per graph",
    shd_metric
);
crate::register_metric!(
    "consistent_r",
    "consistent-R: mean sqrt(R²) of each factor on the matched codes its true graphs' consistency pattern allows",
    consistent_r_metric
);

#[cfg(test)]
mod tests {
    use super::*;

    /// `k` factors, `n` rows; codes = factors permuted by `perm` (code `perm[i]` holds factor `i`) with signs and
    /// scales flipped.
    fn permuted_codes(k: usize, n: usize, perm: &[usize]) -> (Vec<f32>, Vec<f32>) {
        let mut rng = crate::rng::Rng::new(11);
        let z = rng.normal_vec(n * k);
        let mut codes = vec![0.0; n * k];
        for r in 0..n {
            for i in 0..k {
                let s = if i % 2 == 0 { -1.5 } else { 0.7 };
                codes[r * k + perm[i]] = s * z[r * k + i] + 0.3;
            }
        }
        (z, codes)
    }

    fn graph(name: &str, adj: Vec<Vec<bool>>, cols_are_latents: bool) -> LatentGraph {
        LatentGraph {
            name: name.into(),
            adj,
            cols_are_latents,
        }
    }

    /// The learned probabilities that represent `truth` exactly over the permuted codes.
    fn learned_for(truth: &LatentGraph, perm: &[usize]) -> Vec<f32> {
        let (k, m) = (truth.rows(), truth.cols());
        let mut p = vec![0.1f32; k * m];
        for i in 0..k {
            for j in 0..m {
                let col = if truth.cols_are_latents { perm[j] } else { j };
                p[perm[i] * m + col] = if truth.adj[i][j] { 0.9 } else { 0.1 };
            }
        }
        p
    }

    fn inputs(k: usize, perm: &[usize], truths: Vec<LatentGraph>) -> EvalInputs {
        let (z, codes) = permuted_codes(k, 300, perm);
        let learned = truths
            .iter()
            .map(|t| (t.name.clone(), k, t.cols(), learned_for(t, perm)))
            .collect();
        EvalInputs {
            codes,
            d: k,
            factors: Some(z),
            k,
            learned_latent_graphs: learned,
            true_latent_graphs: truths,
            ..Default::default()
        }
    }

    fn lower_triangular(k: usize) -> Vec<Vec<bool>> {
        (0..k).map(|i| (0..k).map(|j| j <= i).collect()).collect()
    }

    fn cyclic(k: usize) -> Vec<Vec<bool>> {
        (0..k)
            .map(|i| (0..k).map(|j| j == i || j == (i + k - 1) % k).collect())
            .collect()
    }

    const PERM: [usize; 4] = [2, 0, 3, 1];

    #[test]
    fn perfect_graphs_under_permuted_sign_flipped_codes_score_zero() {
        let truths = vec![
            graph("z", lower_triangular(4), true),
            graph("a", cyclic(4), false),
        ];
        let m = shd_metric(&inputs(4, &PERM, truths)).unwrap();
        assert_eq!(m["shd_z"], 0.0);
        assert_eq!(m["shd_a"], 0.0);
        assert_eq!((m["edges_z"], m["true_edges_z"]), (10.0, 10.0));
        assert_eq!((m["edges_a"], m["true_edges_a"]), (8.0, 8.0));
    }

    #[test]
    fn a_flipped_edge_costs_one_and_a_reversed_edge_two() {
        let truth = graph("z", lower_triangular(4), true);
        let mut inp = inputs(4, &PERM, vec![truth]);
        // remove the true edge z1 → z3 (truth adj[3][1]): learned entry [π(3)][π(1)]
        let p = &mut inp.learned_latent_graphs[0].3;
        p[PERM[3] * 4 + PERM[1]] = 0.2;
        let m = shd_metric(&inp).unwrap();
        assert_eq!((m["shd_z"], m["edges_z"]), (1.0, 9.0));
        // reverse it: add z3 → z1 (adj[1][3], absent in the truth)
        let p = &mut inp.learned_latent_graphs[0].3;
        p[PERM[1] * 4 + PERM[3]] = 0.8;
        assert_eq!(shd_metric(&inp).unwrap()["shd_z"], 2.0);

        // actions: rows permuted only; moving one edge to another action costs 2, dropping one costs 1
        let mut inp = inputs(4, &PERM, vec![graph("a", cyclic(4), false)]);
        let p = &mut inp.learned_latent_graphs[0].3;
        p[PERM[2] * 4 + 1] = 0.0;
        assert_eq!(shd_metric(&inp).unwrap()["shd_a"], 1.0);
        let p = &mut inp.learned_latent_graphs[0].3;
        p[PERM[2] * 4 + 3] = 1.0;
        assert_eq!(shd_metric(&inp).unwrap()["shd_a"], 2.0);
    }

    #[test]
    fn a_wrong_permutation_is_penalised() {
        // the same learned graph read without the permutation is not the truth
        let truth = graph("z", lower_triangular(4), true);
        let mut inp = inputs(4, &PERM, vec![truth]);
        let (z, codes) = permuted_codes(4, 300, &[0, 1, 2, 3]);
        inp.factors = Some(z);
        inp.codes = codes;
        assert!(shd_metric(&inp).unwrap()["shd_z"] > 0.0);
    }

    #[test]
    fn missing_graphs_are_clear_errors() {
        let mut inp = inputs(4, &PERM, vec![graph("z", lower_triangular(4), true)]);
        inp.learned_latent_graphs.clear();
        let e = shd_metric(&inp).unwrap_err().to_string();
        assert!(e.contains("reported none"), "{e}");
        inp.true_latent_graphs.clear();
        for e in [shd_metric(&inp), consistent_r_metric(&inp)] {
            let e = e.unwrap_err().to_string();
            assert!(e.contains("true latent-mechanism graphs"), "{e}");
        }
        let mut inp = inputs(4, &PERM, vec![graph("z", lower_triangular(4), true)]);
        inp.learned_latent_graphs[0].0 = "g".into();
        let e = shd_metric(&inp).unwrap_err().to_string();
        assert!(e.contains("learned: g; true: z"), "{e}");
        let mut inp = inputs(4, &PERM, vec![graph("z", lower_triangular(4), true)]);
        inp.learned_latent_graphs[0].2 = 3;
        assert!(shd_metric(&inp).is_err());
    }

    #[test]
    fn consistent_r_is_one_on_identity_codes_and_patterns_combine() {
        let truths = vec![
            graph("z", lower_triangular(4), true),
            graph("a", cyclic(4), false),
        ];
        let inp = inputs(4, &[0, 1, 2, 3], truths.clone());
        let r = consistent_r_metric(&inp).unwrap()["consistent_r"];
        assert!((r - 1.0).abs() < 1e-9, "{r}");
        let inp = inputs(4, &PERM, truths.clone());
        let r = consistent_r_metric(&inp).unwrap()["consistent_r"];
        assert!((r - 1.0).abs() < 1e-9, "{r}");
        // the AND of the patterns of both graphs
        let both = consistency_pattern(&truths, 4).unwrap();
        let cz = consistency_pattern_z(&truths[0].flat(), 4);
        let ca = consistency_pattern_a(&truths[1].flat(), 4, 4);
        let and: Vec<bool> = cz.iter().zip(&ca).map(|(a, b)| *a && *b).collect();
        assert_eq!(both, and);
        // a diagonal graph isolates each latent: mixed codes are penalised
        let diag: Vec<Vec<bool>> = (0..2).map(|i| (0..2).map(|j| i == j).collect()).collect();
        let mut inp = inputs(2, &[0, 1], vec![graph("z", diag, true)]);
        let z = inp.factors.clone().unwrap();
        inp.codes = z
            .chunks(2)
            .flat_map(|r| [r[0] + 0.8 * r[1], r[1] - 0.8 * r[0]])
            .collect();
        let r = consistent_r_metric(&inp).unwrap()["consistent_r"];
        assert!(r < 0.9, "{r}");
    }
}

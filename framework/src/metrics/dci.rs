//! DCI: disentanglement, completeness and informativeness (Eastwood & Williams, ICLR 2018, "A framework for the
//! quantitative evaluation of disentangled representations"), computed as disentanglement_lib's `dci.py`:
//!
//! - per factor `j`, a gradient-boosted tree classifier ([`super::gbt`], scikit-learn's `GradientBoostingClassifier`
//!   defaults) predicts the factor labels from all codes on the training split; `R[i][j]` = importance of code `i`;
//! - disentanglement `D = Σ_i ρ_i (1 − H_k(P_i·))` with `P_ij = R_ij / Σ_j R_ij`, `ρ_i = Σ_j R_ij / Σ R`, entropies
//!   base `k` (number of factors) after adding `1e-11` to every entry (as `scipy.stats.entropy`);
//! - completeness `C = Σ_j ρ_j (1 − H_d(P̃_·j))` likewise over codes, base `d`;
//! - informativeness = mean over factors of the classifier's accuracy on the test split (`dci_informativeness`)
//!   and training split (`dci_informativeness_train`), as disentanglement_lib reports it.
//!
//! Factors are labelled as in [`super::discretize`] (over all rows, then split).

use super::discretize::{Columns, DlibConfig, LabelledSplit};
use super::gbt::GradientBoosting;
use super::EvalInputs;
use crate::error::Result;
use rayon::prelude::*;
use std::collections::BTreeMap;

#[derive(Clone, Debug)]
pub struct DciResult {
    /// `importance[i][j]` for code `i`, factor `j`.
    pub importance: Vec<Vec<f64>>,
    pub disentanglement: f64,
    pub completeness: f64,
    pub informativeness_train: f64,
    pub informativeness_test: f64,
}

/// `1 − H(p + 1e-11)` in base `base`, `p` normalised (scipy.stats.entropy conventions).
fn one_minus_entropy(p: &[f64], base: usize) -> f64 {
    let q: Vec<f64> = p.iter().map(|v| v + 1e-11).collect();
    let s: f64 = q.iter().sum();
    let h: f64 = q
        .iter()
        .map(|v| {
            let r = v / s;
            if r > 0.0 {
                -r * r.ln()
            } else {
                0.0
            }
        })
        .sum();
    1.0 - h / (base as f64).ln()
}

/// Disentanglement of a `codes × factors` importance matrix.
pub fn disentanglement(r: &[Vec<f64>]) -> f64 {
    disentanglement_base(r, r.first().map_or(0, Vec::len))
}

/// Completeness of a `codes × factors` importance matrix.
pub fn completeness(r: &[Vec<f64>]) -> f64 {
    let k = r.first().map_or(0, Vec::len);
    let t: Vec<Vec<f64>> = (0..k)
        .map(|j| r.iter().map(|row| row[j]).collect())
        .collect();
    disentanglement_base(&t, r.len())
}

/// Σ_rows (1 − H_base(row)) · row weight; rows weighted by their share of the total importance.
fn disentanglement_base(r: &[Vec<f64>], base: usize) -> f64 {
    let total: f64 = r.iter().flatten().sum();
    r.iter()
        .map(|row| {
            let weight = if total == 0.0 {
                1.0 / r.len() as f64
            } else {
                row.iter().sum::<f64>() / total
            };
            one_minus_entropy(row, base) * weight
        })
        .sum()
}

/// DCI of `data` with the split of `cfg`.
pub fn dci(data: &Columns, cfg: &DlibConfig) -> DciResult {
    let split = LabelledSplit::new(data, cfg);
    let d = split.train_codes.len();
    let per_factor: Vec<(Vec<f64>, f64, f64)> = split
        .train_labels
        .par_iter()
        .zip(&split.test_labels)
        .map(|(ytr, yte)| {
            // the training labels come with the fit (the same as predicting the training codes)
            let (model, train_pred) =
                GradientBoosting::fit_with_train_predictions(&split.train_codes, ytr);
            let acc = |p: &[usize], y: &[usize]| {
                p.iter().zip(y).filter(|(a, b)| a == b).count() as f64 / y.len() as f64
            };
            (
                model.importances.iter().map(|v| v.abs()).collect(),
                acc(&train_pred, ytr),
                acc(&model.predict(&split.test_codes), yte),
            )
        })
        .collect();
    let k = per_factor.len();
    let importance: Vec<Vec<f64>> = (0..d)
        .map(|i| per_factor.iter().map(|f| f.0[i]).collect())
        .collect();
    DciResult {
        disentanglement: disentanglement(&importance),
        completeness: completeness(&importance),
        informativeness_train: per_factor.iter().map(|f| f.1).sum::<f64>() / k as f64,
        informativeness_test: per_factor.iter().map(|f| f.2).sum::<f64>() / k as f64,
        importance,
    }
}

fn dci_metric(inputs: &EvalInputs) -> Result<BTreeMap<String, f64>> {
    let data = Columns::from_rows(
        &inputs.codes,
        inputs.d,
        inputs.require_factors("dci")?,
        inputs.k,
    )?;
    let r = dci(&data, &DlibConfig::for_inputs(inputs));
    Ok(BTreeMap::from([
        ("dci_disentanglement".to_string(), r.disentanglement),
        ("dci_completeness".to_string(), r.completeness),
        ("dci_informativeness".to_string(), r.informativeness_test),
        (
            "dci_informativeness_train".to_string(),
            r.informativeness_train,
        ),
    ]))
}

crate::register_metric!(
    "dci",
    "DCI disentanglement, completeness, informativeness (test accuracy) from gradient-boosted tree importances",
    dci_metric
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagonal_importance_is_fully_disentangled_and_uniform_is_not() {
        let diag = vec![vec![1.0, 0.0], vec![0.0, 1.0]];
        assert!((disentanglement(&diag) - 1.0).abs() < 1e-8);
        assert!((completeness(&diag) - 1.0).abs() < 1e-8);
        let flat = vec![vec![1.0, 1.0], vec![1.0, 1.0]];
        assert!(disentanglement(&flat).abs() < 1e-8);
    }
}

//! Modularity (Ridgeway & Mozer, NeurIPS 2018, "Learning deep disentangled embeddings with the F-statistic loss"),
//! computed as disentanglement_lib's `modularity_explicitness.py`: on the training split, `m[i][j] = I(code i;
//! factor j)` of the histogram-discretised training codes and the factor labels ([`super::discretize`]; factors are
//! labelled over all rows, then split); per code
//! `δ_i = (Σ_j m_ij² − max_j m_ij²) / (max_j m_ij² · (k − 1))`, score `1 − δ_i` (0 for a code with no information),
//! averaged over codes. (Explicitness, the logistic-regression half of that file, is not computed here.)

use super::discretize::{
    discrete_mutual_info, make_discretizer, Columns, DlibConfig, LabelledSplit,
};
use super::EvalInputs;
use crate::error::Result;
use std::collections::BTreeMap;

/// Modularity of `data` (training split of `cfg`).
pub fn modularity(data: &Columns, cfg: &DlibConfig) -> f64 {
    let split = LabelledSplit::new(data, cfg);
    let codes = make_discretizer(&split.train_codes, cfg.bins);
    modularity_of(&discrete_mutual_info(&codes, &split.train_labels))
}

/// Modularity of a `codes × factors` mutual-information matrix.
pub fn modularity_of(mi: &[Vec<f64>]) -> f64 {
    let scores: Vec<f64> = mi
        .iter()
        .map(|row| {
            let sq: Vec<f64> = row.iter().map(|v| v * v).collect();
            let max = sq.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            if max == 0.0 {
                return 0.0;
            }
            let delta = (sq.iter().sum::<f64>() - max) / (max * (sq.len() as f64 - 1.0));
            1.0 - delta
        })
        .collect();
    scores.iter().sum::<f64>() / scores.len() as f64
}

fn modularity_metric(inputs: &EvalInputs) -> Result<BTreeMap<String, f64>> {
    let data = Columns::from_rows(
        &inputs.codes,
        inputs.d,
        inputs.require_factors("modularity")?,
        inputs.k,
    )?;
    Ok(BTreeMap::from([(
        "modularity".to_string(),
        modularity(&data, &DlibConfig::for_inputs(inputs)),
    )]))
}

crate::register_metric!(
    "modularity",
    "modularity of the code–factor mutual information (disentanglement_lib; 20 bins, training 80%)",
    modularity_metric
);

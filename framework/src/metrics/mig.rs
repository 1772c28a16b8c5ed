//! MIG, the mutual information gap (Chen et al., NeurIPS 2018, "Isolating sources of disentanglement in VAEs"),
//! computed as disentanglement_lib's `mig.py` (`_compute_mig`): over all rows, codes histogram-discretised
//! ([`super::discretize`]), `m[i][j] = I(code i; factor j)`, and
//! `MIG = mean_j (m_(1)j − m_(2)j) / H(factor j)` with `m_(1)j ≥ m_(2)j` the two largest entries of column `j`.

use super::discretize::{
    discrete_mutual_info, discretize_factor, entropy, make_discretizer, Columns, DlibConfig,
};
use super::EvalInputs;
use crate::error::Result;
use std::collections::BTreeMap;

/// MIG of all rows of `data` with `bins` histogram bins. disentanglement_lib scores MIG on `num_train` freshly
/// sampled points; given a fixed sample, the reference computation scores all its rows (no split), and so do we.
pub fn mig(data: &Columns, bins: usize) -> f64 {
    let codes = make_discretizer(&data.codes, bins);
    let factors: Vec<Vec<usize>> = data
        .factors
        .iter()
        .map(|f| discretize_factor(f, bins))
        .collect();
    let m = discrete_mutual_info(&codes, &factors);
    let k = factors.len();
    let mut total = 0.0;
    for (j, f) in factors.iter().enumerate() {
        let mut col: Vec<f64> = m.iter().map(|row| row[j]).collect();
        col.sort_by(|a, b| b.total_cmp(a));
        let gap = col[0] - col.get(1).copied().unwrap_or(0.0);
        total += gap / entropy(f);
    }
    total / k as f64
}

fn mig_metric(inputs: &EvalInputs) -> Result<BTreeMap<String, f64>> {
    let data = Columns::from_rows(
        &inputs.codes,
        inputs.d,
        inputs.require_factors("mig")?,
        inputs.k,
    )?;
    Ok(BTreeMap::from([(
        "mig".to_string(),
        mig(&data, DlibConfig::default().bins),
    )]))
}

crate::register_metric!(
    "mig",
    "mutual information gap (disentanglement_lib; 20 histogram bins, all rows)",
    mig_metric
);

//! Fréchet distance between two feature sets (Heusel et al., NeurIPS 2017, FID; docs/methods/metrics.md,
//! "Fréchet distance"): with means `m₁, m₂`
//! and covariances `S₁, S₂` (ddof 1), `d² = ‖m₁ − m₂‖² + tr S₁ + tr S₂ − 2 tr (S₁^{1/2} S₂ S₁^{1/2})^{1/2}`.
//! The trace of the matrix square root is taken from the eigenvalues of the symmetric matrix
//! `S₁^{1/2} S₂ S₁^{1/2}` (`nalgebra` symmetric eigendecomposition, negative round-off eigenvalues clipped to 0),
//! which is stable where `sqrtm(S₁ S₂)` of a non-symmetric product is not. The registered metric compares the
//! distributions of codes and factors (same dimension required).

use super::discretize::columns_of;
use super::EvalInputs;
use crate::error::{Error, Result};
use nalgebra::DMatrix;
use std::collections::BTreeMap;

fn mean_cov(x: &[f64], dim: usize) -> (Vec<f64>, DMatrix<f64>) {
    let cols = columns_of(x, dim);
    let n = cols[0].len();
    let means: Vec<f64> = cols
        .iter()
        .map(|c| c.iter().sum::<f64>() / n as f64)
        .collect();
    let mut cov = DMatrix::<f64>::zeros(dim, dim);
    for a in 0..dim {
        for b in a..dim {
            let s: f64 = (0..n)
                .map(|i| (cols[a][i] - means[a]) * (cols[b][i] - means[b]))
                .sum::<f64>()
                / (n as f64 - 1.0);
            cov[(a, b)] = s;
            cov[(b, a)] = s;
        }
    }
    (means, cov)
}

/// Symmetric positive semi-definite square root by eigendecomposition.
fn sqrt_psd(m: &DMatrix<f64>) -> DMatrix<f64> {
    let sym = (m + m.transpose()) * 0.5;
    let e = sym.symmetric_eigen();
    let d = DMatrix::from_diagonal(&e.eigenvalues.map(|v| v.max(0.0).sqrt()));
    &e.eigenvectors * d * e.eigenvectors.transpose()
}

/// Fréchet distance between feature sets `a` (`n_a × dim`) and `b` (`n_b × dim`), row-major.
pub fn frechet_distance(a: &[f64], b: &[f64], dim: usize) -> Result<f64> {
    if dim == 0
        || !a.len().is_multiple_of(dim)
        || !b.len().is_multiple_of(dim)
        || a.len() < 2 * dim
        || b.len() < 2 * dim
    {
        return Err(Error::Shape {
            context: "frechet distance".into(),
            expected: format!("two sets of ≥ 2 rows of dimension {dim}"),
            got: format!("{} and {} values", a.len(), b.len()),
        });
    }
    let (m1, s1) = mean_cov(a, dim);
    let (m2, s2) = mean_cov(b, dim);
    let r1 = sqrt_psd(&s1);
    let inner = &r1 * &s2 * &r1;
    let inner = (&inner + inner.transpose()) * 0.5;
    let tr_sqrt: f64 = inner
        .symmetric_eigen()
        .eigenvalues
        .iter()
        .map(|v| v.max(0.0).sqrt())
        .sum();
    let dm: f64 = m1.iter().zip(&m2).map(|(x, y)| (x - y) * (x - y)).sum();
    Ok((dm + s1.trace() + s2.trace() - 2.0 * tr_sqrt).max(0.0))
}

fn frechet_metric(inputs: &EvalInputs) -> Result<BTreeMap<String, f64>> {
    let f: Vec<f64> = inputs
        .require_factors("frechet")?
        .iter()
        .map(|&v| v.into())
        .collect();
    if inputs.k != inputs.d {
        return Err(Error::Data(format!(
            "metric `frechet` compares codes and factors of one dimension; got d = {} and k = {}",
            inputs.d, inputs.k
        )));
    }
    let c: Vec<f64> = inputs.codes.iter().map(|&v| v.into()).collect();
    Ok(BTreeMap::from([(
        "frechet".to_string(),
        frechet_distance(&c, &f, inputs.d)?,
    )]))
}

crate::register_metric!(
    "frechet",
    "Fréchet distance between the Gaussian fits of codes and factors (the FID formula)",
    frechet_metric
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_closed_form_for_gaussians_and_is_zero_on_itself() {
        let mut rng = crate::rng::Rng::new(9);
        let n = 20000;
        let a: Vec<f64> = rng.normal_vec(n * 2).into_iter().map(f64::from).collect();
        assert!(frechet_distance(&a, &a, 2).unwrap() < 1e-9);
        // b = 2·a + (1, 0): d² = 1 + tr(I + 4I − 2·2I) = 1 + 2 (up to sampling error)
        let b: Vec<f64> = a
            .iter()
            .enumerate()
            .map(|(i, v)| 2.0 * v + if i % 2 == 0 { 1.0 } else { 0.0 })
            .collect();
        let d = frechet_distance(&a, &b, 2).unwrap();
        assert!((d - 3.0).abs() < 0.1, "{d}");
    }
}

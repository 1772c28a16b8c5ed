//! R, the linear identifiability score, and consistent-R (Lachapelle et al., CLeaR 2022, mechanism-sparsity code
//! `metrics.py`; docs/methods/metrics.md): factors and codes are standardised, each factor `z_i` is regressed on
//! the codes by
//! ordinary least squares with an intercept, and `R = mean_i sqrt(R²_i)`. Consistent-R restricts the regressors of
//! factor `i` to the codes matched (by the MCC assignment) to factors `j` with `C_ij = 1`, `C` the consistency
//! pattern of the true graph: `C = [1 − G(1 − G)ᵀ]_+ ⊙ [1 − Gᵀ(1 − G)]_+` for a latent graph `G^z`,
//! `[1 − G^a(1 − G^a)ᵀ]_+` for a latent→action graph `G^a`. Least squares via `nalgebra`'s SVD.

use super::discretize::columns_of;
use super::EvalInputs;
use crate::error::{Error, Result};
use nalgebra::{DMatrix, DVector};
use std::collections::BTreeMap;

fn standardise(mut c: Vec<f64>) -> Vec<f64> {
    let n = c.len() as f64;
    let m = c.iter().sum::<f64>() / n;
    let sd = (c.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / n).sqrt();
    for v in &mut c {
        *v = if sd > 0.0 { (*v - m) / sd } else { 0.0 };
    }
    c
}

/// R² of the OLS fit (with intercept) of `y` on the columns `xs`.
fn r2(y: &[f64], xs: &[&Vec<f64>]) -> f64 {
    let n = y.len();
    let p = xs.len() + 1;
    // normal equations on [1, x]: (XᵀX) β = Xᵀy, solved by SVD (robust to collinear codes)
    let mut xtx = DMatrix::<f64>::zeros(p, p);
    let mut xty = DVector::<f64>::zeros(p);
    let col = |j: usize, i: usize| if j == 0 { 1.0 } else { xs[j - 1][i] };
    for a in 0..p {
        for b in a..p {
            let s: f64 = (0..n).map(|i| col(a, i) * col(b, i)).sum();
            xtx[(a, b)] = s;
            xtx[(b, a)] = s;
        }
        xty[a] = (0..n).map(|i| col(a, i) * y[i]).sum();
    }
    let beta = match xtx.svd(true, true).solve(&xty, 1e-12) {
        Ok(b) => b,
        Err(_) => return 0.0,
    };
    let my = y.iter().sum::<f64>() / n as f64;
    let (mut ss_res, mut ss_tot) = (0.0, 0.0);
    for (i, yi) in y.iter().enumerate() {
        let pred: f64 = (0..p).map(|j| beta[j] * col(j, i)).sum();
        ss_res += (yi - pred).powi(2);
        ss_tot += (yi - my).powi(2);
    }
    if ss_tot == 0.0 {
        0.0
    } else {
        (1.0 - ss_res / ss_tot).max(0.0)
    }
}

fn check(factors: &[f64], k: usize, codes: &[f64], d: usize) -> Result<()> {
    if k == 0 || d == 0 || factors.len() / k != codes.len() / d {
        return Err(Error::Shape {
            context: "linear R".into(),
            expected: format!("the same number of rows in factors (k = {k}) and codes (d = {d})"),
            got: format!("{} and {} values", factors.len(), codes.len()),
        });
    }
    Ok(())
}

/// R: mean over factors of sqrt(R²) of the OLS regression of the factor on all codes.
pub fn linear_r(factors: &[f64], k: usize, codes: &[f64], d: usize) -> Result<f64> {
    check(factors, k, codes, d)?;
    let z: Vec<Vec<f64>> = columns_of(factors, k)
        .into_iter()
        .map(standardise)
        .collect();
    let c: Vec<Vec<f64>> = columns_of(codes, d).into_iter().map(standardise).collect();
    let all: Vec<&Vec<f64>> = c.iter().collect();
    Ok(z.iter().map(|zi| r2(zi, &all).sqrt()).sum::<f64>() / k as f64)
}

/// Consistent-R: factor `i` regressed on the codes `assignment[j]` for the `j` with `pattern[i·k + j]`.
pub fn consistent_r(
    factors: &[f64],
    k: usize,
    codes: &[f64],
    d: usize,
    assignment: &[Option<usize>],
    pattern: &[bool],
) -> Result<f64> {
    check(factors, k, codes, d)?;
    if assignment.len() != k || pattern.len() != k * k {
        return Err(Error::Shape {
            context: "consistent R".into(),
            expected: format!("an assignment of {k} factors and a {k} × {k} pattern"),
            got: format!("{} and {}", assignment.len(), pattern.len()),
        });
    }
    let z: Vec<Vec<f64>> = columns_of(factors, k)
        .into_iter()
        .map(standardise)
        .collect();
    let c: Vec<Vec<f64>> = columns_of(codes, d).into_iter().map(standardise).collect();
    let mut total = 0.0;
    for (i, zi) in z.iter().enumerate() {
        let xs: Vec<&Vec<f64>> = (0..k)
            .filter(|&j| pattern[i * k + j])
            .filter_map(|j| assignment[j].map(|a| &c[a]))
            .collect();
        total += r2(zi, &xs).sqrt();
    }
    Ok(total / k as f64)
}

/// `C = [1 − G(1 − G)ᵀ]_+ ⊙ [1 − Gᵀ(1 − G)]_+` for a `k × k` latent graph.
pub fn consistency_pattern_z(g: &[bool], k: usize) -> Vec<bool> {
    let at = |i: usize, j: usize| f64::from(u8::from(g[i * k + j]));
    let mut out = vec![false; k * k];
    for i in 0..k {
        for j in 0..k {
            let a: f64 = (0..k).map(|l| at(i, l) * (1.0 - at(j, l))).sum();
            let b: f64 = (0..k).map(|l| at(l, i) * (1.0 - at(l, j))).sum();
            out[i * k + j] = (1.0 - a).max(0.0) * (1.0 - b).max(0.0) > 0.0;
        }
    }
    out
}

/// `C = [1 − G^a(1 − G^a)ᵀ]_+` for a `k × m` latent→action graph.
pub fn consistency_pattern_a(g: &[bool], k: usize, m: usize) -> Vec<bool> {
    let at = |i: usize, j: usize| f64::from(u8::from(g[i * m + j]));
    let mut out = vec![false; k * k];
    for i in 0..k {
        for j in 0..k {
            let a: f64 = (0..m).map(|l| at(i, l) * (1.0 - at(j, l))).sum();
            out[i * k + j] = 1.0 - a > 0.0;
        }
    }
    out
}

fn r_metric(inputs: &EvalInputs) -> Result<BTreeMap<String, f64>> {
    let f: Vec<f64> = inputs
        .require_factors("r")?
        .iter()
        .map(|&v| v.into())
        .collect();
    let c: Vec<f64> = inputs.codes.iter().map(|&v| v.into()).collect();
    Ok(BTreeMap::from([(
        "r".to_string(),
        linear_r(&f, inputs.k, &c, inputs.d)?,
    )]))
}

crate::register_metric!(
    "r",
    "linear identifiability score: mean sqrt(R²) of OLS regressions of each factor on all codes",
    r_metric
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_mixtures_score_one_and_the_diagonal_graph_allows_only_the_match() {
        let mut rng = crate::rng::Rng::new(5);
        let n = 400;
        let z: Vec<f64> = rng.normal_vec(n * 2).into_iter().map(f64::from).collect();
        let codes: Vec<f64> = (0..n)
            .flat_map(|r| [z[r * 2] + z[r * 2 + 1], z[r * 2] - 2.0 * z[r * 2 + 1] + 1.0])
            .collect();
        assert!((linear_r(&z, 2, &codes, 2).unwrap() - 1.0).abs() < 1e-9);
        // the empty (and the full) graph leaves everything mixed; the diagonal graph isolates each latent
        assert_eq!(consistency_pattern_z(&[false; 4], 2), vec![true; 4]);
        let pattern = consistency_pattern_z(&[true, false, false, true], 2);
        assert_eq!(pattern, vec![true, false, false, true]);
        let cr = consistent_r(&z, 2, &codes, 2, &[Some(0), Some(1)], &pattern).unwrap();
        assert!(cr < 0.9, "{cr}");
    }
}

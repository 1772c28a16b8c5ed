//! R, the linear identifiability score, and consistent-R (Lachapelle et al., CLeaR 2022, mechanism-sparsity code
//! `metrics.py`; docs/methods/metrics.md): factors and codes are standardised, each factor `z_i` is regressed on
//! the codes by
//! ordinary least squares with an intercept, and `R = mean_i sqrt(R²_i)`. Consistent-R restricts the regressors of
//! factor `i` to the codes matched (by the MCC assignment) to factors `j` with `C_ij = 1`, `C` the consistency
//! pattern of the true graph: `C = [1 − G(1 − G)ᵀ]_+ ⊙ [1 − Gᵀ(1 − G)]_+` for a latent graph `G^z`,
//! `[1 − G^a(1 − G^a)ᵀ]_+` for a latent→action graph `G^a`. Least squares via `nalgebra` (gemm-backed Gram
//! matrix, one Cholesky factorisation for all factors).

use super::EvalInputs;
use crate::error::{Error, Result};
use nalgebra::DMatrix;
use std::collections::BTreeMap;

/// The columns of a row-major `n × m` matrix, each standardised (mean 0, population sd 1; a constant column
/// becomes 0), as an `n × m` matrix.
fn standardised(x: &[f64], m: usize) -> DMatrix<f64> {
    let n = x.len() / m;
    let mut out = DMatrix::from_row_slice(n, m, x);
    for mut col in out.column_iter_mut() {
        let mean = col.sum() / n as f64;
        let sd = (col.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n as f64).sqrt();
        for v in col.iter_mut() {
            *v = if sd > 0.0 { (*v - mean) / sd } else { 0.0 };
        }
    }
    out
}

/// A code counts as a linear combination of the others when the part of it they leave unexplained is below this
/// fraction of its variance; Cholesky's pivots measure exactly that.
const COLLINEAR: f64 = 1e-8;

/// R² of the OLS fit (with intercept) of every column of `ys` on the columns of `x`, both standardised.
///
/// Centred columns make the intercept's coefficient 0, so `R²_j = bⱼᵀ G⁺ bⱼ / ‖yⱼ‖²` with `G = XᵀX` and
/// `bⱼ = Xᵀyⱼ`: one Gram matrix (a gemm) and one factorisation, shared by all factors. `G = LLᵀ` gives
/// `bᵀG⁻¹b = ‖L⁻¹b‖²`; where codes are (numerically) collinear, the pseudo-inverse from `G`'s eigendecomposition
/// takes over, dropping the directions with no variance.
fn r2_all(ys: &DMatrix<f64>, x: &DMatrix<f64>) -> Vec<f64> {
    let informative: Vec<usize> = (0..x.ncols())
        .filter(|&j| x.column(j).iter().any(|&v| v != 0.0))
        .collect();
    if informative.is_empty() {
        return vec![0.0; ys.ncols()];
    }
    let x = x.select_columns(&informative);
    let xt = x.transpose();
    let gram = &xt * &x;
    let b = &xt * ys;
    let explained: Vec<f64> = cholesky_if_independent(&gram)
        .and_then(|l| l.solve_lower_triangular(&b))
        .map(|w| w.column_iter().map(|c| c.norm_squared()).collect())
        .unwrap_or_else(|| pseudo_inverse_quadratic_forms(gram, &b));
    ys.column_iter()
        .zip(explained)
        .map(|(y, e)| {
            let total = y.norm_squared();
            if total == 0.0 {
                0.0
            } else {
                (e / total).clamp(0.0, 1.0)
            }
        })
        .collect()
}

/// `L` of `gram = LLᵀ`, or `None` where some code is (up to [`COLLINEAR`]) a linear combination of the others.
fn cholesky_if_independent(gram: &DMatrix<f64>) -> Option<DMatrix<f64>> {
    let l = gram.clone().cholesky()?.unpack();
    // L_ii² / G_ii = 1 − R² of code i on the codes before it
    let independent = (0..gram.nrows()).all(|i| l[(i, i)] * l[(i, i)] >= COLLINEAR * gram[(i, i)]);
    independent.then_some(l)
}

/// `bⱼᵀ G⁺ bⱼ` for every column of `b`, the pseudo-inverse over eigenvalues above `COLLINEAR · λ_max`.
fn pseudo_inverse_quadratic_forms(gram: DMatrix<f64>, b: &DMatrix<f64>) -> Vec<f64> {
    let eig = gram.symmetric_eigen();
    let cut = COLLINEAR * eig.eigenvalues.max();
    let c = eig.eigenvectors.tr_mul(b);
    c.column_iter()
        .map(|cj| {
            cj.iter()
                .zip(eig.eigenvalues.iter())
                .filter(|(_, &lambda)| lambda > cut)
                .map(|(v, lambda)| v * v / lambda)
                .sum()
        })
        .collect()
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
    let z = standardised(factors, k);
    let c = standardised(codes, d);
    Ok(r2_all(&z, &c).iter().map(|r2| r2.sqrt()).sum::<f64>() / k as f64)
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
    let z = standardised(factors, k);
    let c = standardised(codes, d);
    let mut total = 0.0;
    for i in 0..k {
        let regressors: Vec<usize> = (0..k)
            .filter(|&j| pattern[i * k + j])
            .filter_map(|j| assignment[j])
            .collect();
        total += r2_all(
            &z.columns(i, 1).into_owned(),
            &c.select_columns(&regressors),
        )[0]
        .sqrt();
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

    #[test]
    fn collinear_constant_and_surplus_codes_fall_back_to_the_pseudo_inverse() {
        let mut rng = crate::rng::Rng::new(6);
        let n = 300;
        let z: Vec<f64> = rng.normal_vec(n * 2).into_iter().map(f64::from).collect();
        // a mixture, its exact copy (collinear) and a constant code: R still 1, the copy and constant add nothing
        let codes: Vec<f64> = (0..n)
            .flat_map(|r| {
                let (a, b) = (z[r * 2], z[r * 2 + 1]);
                [a + b, a - 2.0 * b, a + b, 5.0]
            })
            .collect();
        assert!((linear_r(&z, 2, &codes, 4).unwrap() - 1.0).abs() < 1e-9);
        // only one of the two factors in the codes: R² = 1 for it, ≈ 0 for the other
        let one: Vec<f64> = (0..n).flat_map(|r| [z[r * 2], z[r * 2]]).collect();
        let r = linear_r(&z, 2, &one, 2).unwrap();
        assert!((0.5..0.6).contains(&r), "{r}");
        // more codes than rows: every factor is fitted exactly
        let wide: Vec<f64> = rng.normal_vec(6 * 10).into_iter().map(f64::from).collect();
        let r = linear_r(&z[..12], 2, &wide, 10).unwrap();
        assert!((r - 1.0).abs() < 1e-6, "{r}");
    }
}

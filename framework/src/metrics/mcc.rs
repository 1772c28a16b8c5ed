//! MCC, the mean correlation coefficient (docs/methods/metrics.md, "MCC"; as in the mechanism-sparsity reference code):
//! |corr| between every true factor and every code dimension, a one-to-one assignment maximising the summed
//! |corr| (Hungarian, `pathfinding::kuhn_munkres`), and the mean over factors. Rectangular d ≠ k is allowed.

use super::EvalInputs;
use crate::error::{Error, Result};
use pathfinding::prelude::{kuhn_munkres, Matrix};
use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Correlation {
    Pearson,
    Spearman,
}

#[derive(Clone, Debug)]
pub struct MccResult {
    pub mcc: f64,
    /// `assignment[i]` = the code dimension matched to factor `i` (None when d < k left it unmatched).
    pub assignment: Vec<Option<usize>>,
}

/// Column `j` of a row-major `n × m` matrix.
fn column(x: &[f32], m: usize, j: usize) -> Vec<f64> {
    x.iter().skip(j).step_by(m).map(|&v| v as f64).collect()
}

/// Average ranks (0-based; ties share the mean of their ranks).
pub(crate) fn ranks(v: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut r = vec![0.0; v.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && v[idx[j + 1]] == v[idx[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0;
        for &k in &idx[i..=j] {
            r[k] = avg;
        }
        i = j + 1;
    }
    r
}

/// Pearson correlation (0 when either side is constant).
pub(crate) fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma) * (x - ma);
        sbb += (y - mb) * (y - mb);
    }
    if saa == 0.0 || sbb == 0.0 {
        0.0
    } else {
        sab / (saa * sbb).sqrt()
    }
}

/// Spearman rank correlation (0 when either side is constant).
pub(crate) fn spearman(a: &[f64], b: &[f64]) -> f64 {
    pearson(&ranks(a), &ranks(b))
}

/// MCC between `factors` (`n × k`) and `codes` (`n × d`).
pub fn mcc(
    factors: &[f32],
    k: usize,
    codes: &[f32],
    d: usize,
    corr: Correlation,
) -> Result<MccResult> {
    if k == 0 || d == 0 || factors.len() / k != codes.len() / d || !factors.len().is_multiple_of(k)
    {
        return Err(Error::Shape {
            context: "mcc".into(),
            expected: format!("the same number of rows in factors (k = {k}) and codes (d = {d})"),
            got: format!("{} and {} values", factors.len(), codes.len()),
        });
    }
    let prep = |v: Vec<f64>| {
        if corr == Correlation::Spearman {
            ranks(&v)
        } else {
            v
        }
    };
    let fs: Vec<Vec<f64>> = (0..k).map(|i| prep(column(factors, k, i))).collect();
    let cs: Vec<Vec<f64>> = (0..d).map(|j| prep(column(codes, d, j))).collect();
    let c: Vec<Vec<f64>> = fs
        .iter()
        .map(|f| cs.iter().map(|c| pearson(f, c).abs()).collect())
        .collect();
    // kuhn_munkres needs rows ≤ columns and integer weights: scale |corr| by 1e9.
    let scale = 1e9;
    let transpose = k > d;
    let (rows, cols) = if transpose { (d, k) } else { (k, d) };
    let weights = Matrix::from_fn(rows, cols, |(r, q)| {
        let v = if transpose { c[q][r] } else { c[r][q] };
        (v * scale).round() as i64
    });
    let (_, assign) = kuhn_munkres(&weights);
    let mut assignment = vec![None; k];
    let mut total = 0.0;
    for (r, &q) in assign.iter().enumerate() {
        let (fi, cj) = if transpose { (q, r) } else { (r, q) };
        assignment[fi] = Some(cj);
        total += c[fi][cj];
    }
    Ok(MccResult {
        mcc: total / k as f64,
        assignment,
    })
}

fn mcc_metric(inputs: &EvalInputs) -> Result<BTreeMap<String, f64>> {
    let f = inputs.require_factors("mcc")?;
    let p = mcc(f, inputs.k, &inputs.codes, inputs.d, Correlation::Pearson)?;
    let s = mcc(f, inputs.k, &inputs.codes, inputs.d, Correlation::Spearman)?;
    Ok(BTreeMap::from([
        ("mcc".to_string(), p.mcc),
        ("mcc_spearman".to_string(), s.mcc),
    ]))
}

crate::register_metric!(
    "mcc",
    "mean |correlation| between factors and codes after Hungarian matching (Pearson; also Spearman)",
    mcc_metric
);

/// Mean |corr(code i, factor i)| over the factors, without matching: for supervised methods, whose first
/// latents are tied to the factors by index (DEAR), matching could hide a latent that tracks the wrong factor.
pub fn mcc_aligned(factors: &[f32], k: usize, codes: &[f32], d: usize) -> Result<Vec<f64>> {
    if k == 0 || d < k || factors.len() / k != codes.len() / d {
        return Err(Error::Shape {
            context: "mcc_aligned".into(),
            expected: format!(
                "at least as many code dimensions as factors ({k}) and the same rows"
            ),
            got: format!("d = {d}, {} and {} values", factors.len(), codes.len()),
        });
    }
    Ok((0..k)
        .map(|i| pearson(&column(factors, k, i), &column(codes, d, i)).abs())
        .collect())
}

fn mcc_aligned_metric(inputs: &EvalInputs) -> Result<BTreeMap<String, f64>> {
    let f = inputs.require_factors("mcc_aligned")?;
    let per = mcc_aligned(f, inputs.k, &inputs.codes, inputs.d)?;
    let mut out = BTreeMap::from([(
        "mcc_aligned".to_string(),
        per.iter().sum::<f64>() / per.len() as f64,
    )]);
    for (i, v) in per.into_iter().enumerate() {
        out.insert(format!("mcc_aligned_{i}"), v);
    }
    Ok(out)
}

crate::register_metric!(
    "mcc_aligned",
    "mean |Pearson correlation| of code i with factor i (no matching; for supervised latents)",
    mcc_aligned_metric
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permuted_rescaled_codes_score_one_and_noise_scores_low() {
        let mut rng = crate::rng::Rng::new(3);
        let n = 500;
        let f = rng.normal_vec(n * 3);
        // codes = factors permuted (2, 0, 1), scaled and sign-flipped, plus one extra noise column
        let noise = rng.normal_vec(n);
        let codes: Vec<f32> = (0..n)
            .flat_map(|r| {
                [
                    f[r * 3 + 2] * -2.0,
                    noise[r],
                    f[r * 3] * 0.5,
                    f[r * 3 + 1] + 3.0,
                ]
            })
            .collect();
        let m = mcc(&f, 3, &codes, 4, Correlation::Pearson).unwrap();
        assert!((m.mcc - 1.0).abs() < 1e-6, "{}", m.mcc);
        assert_eq!(m.assignment, vec![Some(2), Some(3), Some(0)]);
        let other = rng.normal_vec(n * 3);
        assert!(mcc(&f, 3, &other, 3, Correlation::Spearman).unwrap().mcc < 0.2);
    }

    #[test]
    fn aligned_mcc_does_not_match() {
        let f = [0.0f32, 1.0, 1.0, 0.0, 2.0, 2.0];
        // codes: column 0 tracks factor 1, column 1 factor 0.
        let swapped = [1.0f32, 0.0, 7.0, 0.0, 1.0, 7.0, 2.0, 2.0, 7.0];
        let per = mcc_aligned(&f, 2, &swapped, 3).unwrap();
        assert!(per.iter().all(|&v| v < 0.6), "{per:?}");
        let same = [0.0f32, 2.0, 3.0, 1.0, 0.5, 3.0, 2.0, 4.0, 3.0];
        let per = mcc_aligned(&f, 2, &same, 3).unwrap();
        assert!(per.iter().all(|&v| v > 0.99), "{per:?}");
        assert!(mcc_aligned(&f, 2, &f[..3], 1).is_err());
    }
}

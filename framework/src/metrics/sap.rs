//! SAP, the separated attribute predictability score (Kumar et al., ICLR 2018, "Variational inference of
//! disentangled latent concepts from unlabeled observations", §3), computed as disentanglement_lib's `sap_score.py`:
//! a `codes × factors` score matrix, then `SAP = mean_j (s_(1)j − s_(2)j)` over the two largest scores of each
//! factor's column.
//!
//! - **continuous** (`sap_continuous`): `s_ij = cov(code i, factor j)² / (var code i · var factor j)` (ddof 1) on the
//!   training split, 0 when `var code i ≤ 1e-12`. Factors are used as they are (not discretised).
//! - **discrete** (`sap_discrete`): `s_ij` = test accuracy of a one-feature linear SVM trained on code `i` to predict
//!   the factor-`j` labels (factors labelled as in [`super::discretize`]). disentanglement_lib uses scikit-learn's
//!   `LinearSVC(C=0.01, class_weight="balanced")` (liblinear: squared hinge, L2 penalty on weight *and* intercept,
//!   one-vs-rest with the class weight on the positive class only). [`linear_svc_1d`] minimises that same objective
//!   exactly (Newton's method on the piecewise-quadratic primal), where liblinear stops at tolerance 1e-4, so test
//!   accuracies can differ by a few test points.

use super::discretize::{Columns, DlibConfig, LabelledSplit};
use super::EvalInputs;
use crate::error::Result;
use std::collections::BTreeMap;

/// Mean over factors of the gap between the two largest entries of each column of `s` (`codes × factors`).
pub fn avg_diff_top_two(s: &[Vec<f64>]) -> f64 {
    let k = s.first().map_or(0, Vec::len);
    let mut total = 0.0;
    for j in 0..k {
        let mut col: Vec<f64> = s.iter().map(|row| row[j]).collect();
        col.sort_by(|a, b| b.total_cmp(a));
        total += col[0] - col.get(1).copied().unwrap_or(0.0);
    }
    total / k as f64
}

fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len() as f64
}

/// Squared correlation as disentanglement_lib computes it from `np.cov(mu, y, ddof=1)`.
fn r2(mu: &[f64], y: &[f64]) -> f64 {
    let (mm, my) = (mean(mu), mean(y));
    let (mut c, mut vm, mut vy) = (0.0, 0.0, 0.0);
    for (a, b) in mu.iter().zip(y) {
        c += (a - mm) * (b - my);
        vm += (a - mm) * (a - mm);
        vy += (b - my) * (b - my);
    }
    let dof = (mu.len() - 1) as f64;
    let (c, vm, vy) = (c / dof, vm / dof, vy / dof);
    if vm > 1e-12 {
        c * c / (vm * vy)
    } else {
        0.0
    }
}

/// SAP with continuous factors (score = squared correlation), on the training split.
pub fn sap_continuous(data: &Columns, cfg: &DlibConfig) -> f64 {
    let (train, _) = data.split(cfg);
    let s: Vec<Vec<f64>> = train
        .codes
        .iter()
        .map(|c| train.factors.iter().map(|f| r2(c, f)).collect())
        .collect();
    avg_diff_top_two(&s)
}

/// SAP with discrete factors (score = test accuracy of a linear SVM on one code).
pub fn sap_discrete(data: &Columns, cfg: &DlibConfig) -> f64 {
    let split = LabelledSplit::new(data, cfg);
    let s: Vec<Vec<f64>> = split
        .train_codes
        .iter()
        .zip(&split.test_codes)
        .map(|(ctr, cte)| {
            split
                .train_labels
                .iter()
                .zip(&split.test_labels)
                .map(|(ytr, yte)| {
                    let model = linear_svc_1d(ctr, ytr, 0.01);
                    let hits = cte
                        .iter()
                        .zip(yte)
                        .filter(|(x, y)| model.predict(**x) == **y)
                        .count();
                    hits as f64 / yte.len() as f64
                })
                .collect()
        })
        .collect();
    avg_diff_top_two(&s)
}

/// A linear SVM on one feature: per class `(w, b)`, prediction = argmax of `w·x + b`.
#[derive(Clone, Debug)]
pub struct LinearSvc1d {
    pub classes: Vec<usize>,
    pub coef: Vec<(f64, f64)>,
}

impl LinearSvc1d {
    pub fn predict(&self, x: f64) -> usize {
        if self.classes.len() == 2 {
            let (w, b) = self.coef[0];
            return self.classes[usize::from(w * x + b > 0.0)];
        }
        let mut best = (f64::NEG_INFINITY, self.classes[0]);
        for (c, &(w, b)) in self.classes.iter().zip(&self.coef) {
            let v = w * x + b;
            if v > best.0 {
                best = (v, *c);
            }
        }
        best.1
    }
}

/// `min_{w,b} ½(w² + b²) + Σ_i C_i max(0, 1 − y_i(w x_i + b))²` by Newton's method with backtracking.
fn squared_hinge_newton(x: &[f64], pos: &[bool], c_pos: f64, c_neg: f64) -> (f64, f64) {
    let obj = |w: f64, b: f64| {
        let mut f = 0.5 * (w * w + b * b);
        for (&xi, &p) in x.iter().zip(pos) {
            let (y, c) = if p { (1.0, c_pos) } else { (-1.0, c_neg) };
            let m = 1.0 - y * (w * xi + b);
            if m > 0.0 {
                f += c * m * m;
            }
        }
        f
    };
    let (mut w, mut b) = (0.0, 0.0);
    let mut f = obj(w, b);
    for _ in 0..100 {
        // gradient and generalised Hessian over the active set
        let (mut gw, mut gb) = (w, b);
        let (mut hww, mut hwb, mut hbb) = (1.0, 0.0, 1.0);
        for (&xi, &p) in x.iter().zip(pos) {
            let (y, c) = if p { (1.0, c_pos) } else { (-1.0, c_neg) };
            let m = 1.0 - y * (w * xi + b);
            if m > 0.0 {
                gw -= 2.0 * c * m * y * xi;
                gb -= 2.0 * c * m * y;
                hww += 2.0 * c * xi * xi;
                hwb += 2.0 * c * xi;
                hbb += 2.0 * c;
            }
        }
        if (gw * gw + gb * gb).sqrt() < 1e-12 * (1.0 + f) {
            break;
        }
        let det = hww * hbb - hwb * hwb;
        let (dw, db) = (-(hbb * gw - hwb * gb) / det, -(hww * gb - hwb * gw) / det);
        let slope = gw * dw + gb * db;
        let mut t = 1.0;
        let mut moved = false;
        for _ in 0..60 {
            let fnew = obj(w + t * dw, b + t * db);
            if fnew <= f + 1e-4 * t * slope {
                w += t * dw;
                b += t * db;
                moved = fnew < f;
                f = fnew;
                break;
            }
            t *= 0.5;
        }
        if !moved {
            break;
        }
    }
    (w, b)
}

/// scikit-learn's `LinearSVC(C, class_weight="balanced")` (liblinear conventions: intercept penalised like a weight;
/// one-vs-rest with `C · weight(class)` on the class's own samples and plain `C` on the rest; with two classes, one
/// problem with `C · weight` on both sides) fitted to one feature, solved to optimality.
pub fn linear_svc_1d(x: &[f64], y: &[usize], c: f64) -> LinearSvc1d {
    let mut classes: Vec<usize> = y.to_vec();
    classes.sort_unstable();
    classes.dedup();
    let n = y.len() as f64;
    let nc = classes.len() as f64;
    let weight = |cls: usize| n / (nc * y.iter().filter(|&&v| v == cls).count() as f64);
    let coef = if classes.len() <= 1 {
        vec![(0.0, 1.0)]
    } else if classes.len() == 2 {
        let pos: Vec<bool> = y.iter().map(|&v| v == classes[1]).collect();
        vec![squared_hinge_newton(
            x,
            &pos,
            c * weight(classes[1]),
            c * weight(classes[0]),
        )]
    } else {
        classes
            .iter()
            .map(|&cls| {
                let pos: Vec<bool> = y.iter().map(|&v| v == cls).collect();
                squared_hinge_newton(x, &pos, c * weight(cls), c)
            })
            .collect()
    };
    LinearSvc1d { classes, coef }
}

fn sap_metric(inputs: &EvalInputs) -> Result<BTreeMap<String, f64>> {
    let data = Columns::from_rows(
        &inputs.codes,
        inputs.d,
        inputs.require_factors("sap")?,
        inputs.k,
    )?;
    let cfg = DlibConfig::for_inputs(inputs);
    Ok(BTreeMap::from([
        ("sap_continuous".to_string(), sap_continuous(&data, &cfg)),
        ("sap_discrete".to_string(), sap_discrete(&data, &cfg)),
    ]))
}

crate::register_metric!(
    "sap",
    "SAP score, continuous (squared correlation) and discrete (linear-SVM accuracy) variants (disentanglement_lib)",
    sap_metric
);

//! Shared machinery of the disentanglement_lib-style metrics (MIG, SAP, Modularity, DCI), following
//! `disentanglement_lib/evaluation/metrics/utils.py` (Locatello et al., ICML 2019):
//!
//! - **histogram discretiser** (`_histogram_discretize`): per column, `np.digitize(x, np.histogram(x, bins)[1][:-1])`,
//!   i.e. `bins` equal-width bins between the column's min and max, labels `1..=bins` (the max falls in bin `bins`);
//! - **discrete mutual information** (`sklearn.metrics.mutual_info_score`, natural log) and **entropy** (`H(y) = I(y; y)`);
//! - **factors**: a factor column with at most `bins` distinct values is used as labels as it is (discrete factor),
//!   otherwise it is histogram-discretised the same way as the codes (continuous factor);
//! - **split** (`split_train_test`): the first `ceil(train_frac · n)` rows are the training split, the rest the test
//!   split, in the given order; a `seed` shuffles the rows once first (for data whose order carries structure).

use super::EvalInputs;
use crate::error::{Error, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::collections::HashMap;

/// Settings of the disentanglement_lib-style metrics.
#[derive(Clone, Debug, PartialEq)]
pub struct DlibConfig {
    /// Equal-width histogram bins for codes and continuous factors (disentanglement_lib: 20).
    pub bins: usize,
    /// Fraction of rows in the training split (the rest is the test split).
    pub train_frac: f64,
    /// Shuffle the rows once with this seed before the split; `None` keeps the given order (disentanglement_lib).
    pub seed: Option<u64>,
}

impl Default for DlibConfig {
    fn default() -> Self {
        Self {
            bins: 20,
            train_frac: 0.8,
            seed: None,
        }
    }
}

impl DlibConfig {
    /// The default settings with the split that `inputs` ask for ([`EvalInputs::split_seed`]).
    pub fn for_inputs(inputs: &EvalInputs) -> Self {
        Self {
            seed: inputs.split_seed,
            ..Self::default()
        }
    }
}

/// Codes and factors stored column-wise (`codes[j]` = code dimension `j` over all rows), as disentanglement_lib does.
#[derive(Clone, Debug, Default)]
pub struct Columns {
    pub codes: Vec<Vec<f64>>,
    pub factors: Vec<Vec<f64>>,
}

/// Columns of a row-major `n × m` matrix.
pub fn columns_of<T: Copy + Into<f64>>(x: &[T], m: usize) -> Vec<Vec<f64>> {
    if m == 0 {
        return Vec::new();
    }
    let n = x.len() / m;
    (0..m)
        .map(|j| (0..n).map(|r| x[r * m + j].into()).collect())
        .collect()
}

impl Columns {
    /// From row-major `n × d` codes and `n × k` factors.
    pub fn from_rows<T: Copy + Into<f64>>(
        codes: &[T],
        d: usize,
        factors: &[T],
        k: usize,
    ) -> Result<Self> {
        if d == 0
            || k == 0
            || !codes.len().is_multiple_of(d)
            || !factors.len().is_multiple_of(k)
            || codes.len() / d != factors.len() / k
            || codes.len() / d < 2
        {
            return Err(Error::Shape {
                context: "codes/factors".into(),
                expected: format!(
                    "the same number (≥ 2) of rows in codes (d = {d}) and factors (k = {k})"
                ),
                got: format!("{} and {} values", codes.len(), factors.len()),
            });
        }
        Ok(Self {
            codes: columns_of(codes, d),
            factors: columns_of(factors, k),
        })
    }

    pub fn n(&self) -> usize {
        self.codes.first().map_or(0, Vec::len)
    }

    fn take(&self, rows: &[usize]) -> Self {
        let pick = |cols: &Vec<Vec<f64>>| {
            cols.iter()
                .map(|c| rows.iter().map(|&r| c[r]).collect())
                .collect()
        };
        Self {
            codes: pick(&self.codes),
            factors: pick(&self.factors),
        }
    }

    /// The (train, test) splits of [`DlibConfig`].
    pub fn split(&self, cfg: &DlibConfig) -> (Self, Self) {
        let n = self.n();
        let mut rows: Vec<usize> = (0..n).collect();
        if let Some(seed) = cfg.seed {
            rows.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
        }
        let n_train = n_train(n, cfg.train_frac);
        (self.take(&rows[..n_train]), self.take(&rows[n_train..]))
    }
}

/// A split with factor labels: factors are labelled ([`discretize_factor`]) over *all* rows before the split,
/// as the reference computation does, so train and test share one labelling.
#[derive(Clone, Debug)]
pub struct LabelledSplit {
    pub train_codes: Vec<Vec<f64>>,
    pub train_labels: Vec<Vec<usize>>,
    pub test_codes: Vec<Vec<f64>>,
    pub test_labels: Vec<Vec<usize>>,
}

impl LabelledSplit {
    pub fn new(data: &Columns, cfg: &DlibConfig) -> Self {
        let labelled = Columns {
            codes: data.codes.clone(),
            factors: data
                .factors
                .iter()
                .map(|f| {
                    discretize_factor(f, cfg.bins)
                        .into_iter()
                        .map(|v| v as f64)
                        .collect()
                })
                .collect(),
        };
        let (train, test) = labelled.split(cfg);
        let to_labels = |cols: Vec<Vec<f64>>| -> Vec<Vec<usize>> {
            cols.into_iter()
                .map(|c| c.into_iter().map(|v| v as usize).collect())
                .collect()
        };
        Self {
            train_codes: train.codes,
            train_labels: to_labels(train.factors),
            test_codes: test.codes,
            test_labels: to_labels(test.factors),
        }
    }
}

/// `ceil(train_frac · n)` clamped to `1..=n` (5,000 → 4,000; 7,308 → 5,847).
pub fn n_train(n: usize, train_frac: f64) -> usize {
    ((n as f64 * train_frac - 1e-9).ceil().max(1.0) as usize).min(n)
}

/// `np.digitize(x, np.histogram(x, bins)[1][:-1])`: equal-width bins over `[min, max]`, labels `1..=bins`.
pub fn histogram_discretize(x: &[f64], bins: usize) -> Vec<usize> {
    let bins = bins.max(1);
    let (mut lo, mut hi) = x
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    if lo == hi {
        // numpy widens a degenerate range by ±0.5
        lo -= 0.5;
        hi += 0.5;
    }
    // np.linspace(lo, hi, bins + 1): edge_i = i · ((hi − lo) / bins) + lo
    let step = (hi - lo) / bins as f64;
    let edges: Vec<f64> = (0..bins).map(|i| i as f64 * step + lo).collect();
    x.iter()
        .map(|&v| edges.partition_point(|&e| e <= v))
        .collect()
}

/// disentanglement_lib's `make_discretizer` with the histogram discretiser, applied per column.
pub fn make_discretizer(columns: &[Vec<f64>], bins: usize) -> Vec<Vec<usize>> {
    columns
        .iter()
        .map(|c| histogram_discretize(c, bins))
        .collect()
}

/// Labels `0..` of the distinct values of `x` (in order of first appearance).
fn relabel(x: &[f64]) -> (Vec<usize>, usize) {
    let mut map: HashMap<u64, usize> = HashMap::new();
    let labels = x
        .iter()
        .map(|v| {
            let next = map.len();
            *map.entry(v.to_bits()).or_insert(next)
        })
        .collect();
    (labels, map.len())
}

/// Whether a factor column counts as discrete: at most `bins` distinct values.
pub fn is_discrete(x: &[f64], bins: usize) -> bool {
    relabel(x).1 <= bins
}

/// Factor labels: discrete factors as they are, continuous ones histogram-discretised.
pub fn discretize_factor(x: &[f64], bins: usize) -> Vec<usize> {
    let (labels, distinct) = relabel(x);
    if distinct <= bins {
        labels
    } else {
        histogram_discretize(x, bins)
    }
}

/// Contingency counts of two label vectors, as a dense `(max a + 1) × (max b + 1)` table.
fn contingency(a: &[usize], b: &[usize]) -> (Vec<f64>, usize, usize) {
    let ra = a.iter().max().map_or(0, |m| m + 1);
    let rb = b.iter().max().map_or(0, |m| m + 1);
    let mut c = vec![0.0; ra * rb];
    for (&i, &j) in a.iter().zip(b) {
        c[i * rb + j] += 1.0;
    }
    (c, ra, rb)
}

/// `sklearn.metrics.mutual_info_score(a, b)` in nats.
pub fn mutual_info(a: &[usize], b: &[usize]) -> f64 {
    let (c, ra, rb) = contingency(a, b);
    let n = a.len() as f64;
    let pi: Vec<f64> = (0..ra)
        .map(|i| c[i * rb..(i + 1) * rb].iter().sum())
        .collect();
    let pj: Vec<f64> = (0..rb)
        .map(|j| (0..ra).map(|i| c[i * rb + j]).sum())
        .collect();
    let mut mi = 0.0;
    for i in 0..ra {
        for j in 0..rb {
            let nij = c[i * rb + j];
            if nij > 0.0 {
                let term =
                    nij / n * ((nij.ln() - n.ln()) + (n.ln() + n.ln() - (pi[i] * pj[j]).ln()));
                if term.abs() >= f64::EPSILON {
                    mi += term;
                }
            }
        }
    }
    mi.max(0.0)
}

/// Discrete entropy in nats, computed as disentanglement_lib does: `mutual_info_score(y, y)`.
pub fn entropy(y: &[usize]) -> f64 {
    mutual_info(y, y)
}

/// `m[i][j]` = I(code i; factor j) between discretised codes and factor labels.
pub fn discrete_mutual_info(codes: &[Vec<usize>], factors: &[Vec<usize>]) -> Vec<Vec<f64>> {
    codes
        .iter()
        .map(|c| factors.iter().map(|f| mutual_info(f, c)).collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_matches_numpy_digitize_conventions() {
        // np.digitize([0, 1, 2.5, 10], np.histogram([0, 1, 2.5, 10], 4)[1][:-1]) == [1, 1, 2, 4]
        assert_eq!(
            histogram_discretize(&[0.0, 1.0, 2.5, 10.0], 4),
            vec![1, 1, 2, 4]
        );
        assert_eq!(histogram_discretize(&[3.0, 3.0], 20), vec![11, 11]);
    }

    #[test]
    fn mutual_info_of_identical_labels_is_entropy() {
        let a = [0, 0, 1, 1, 2, 2, 2, 2];
        let h = -(2.0 * 0.25 * 0.25f64.ln() + 0.5 * 0.5f64.ln());
        assert!((entropy(&a) - h).abs() < 1e-12);
        assert!(mutual_info(&a, &[0, 1, 0, 1, 0, 1, 0, 1]).abs() < 1e-12);
    }

    #[test]
    fn split_sizes_follow_ceil_of_train_fraction() {
        assert_eq!(n_train(5000, 0.8), 4000);
        assert_eq!(n_train(7308, 0.8), 5847);
    }
}

//! Per-column statistics of a split's supervision labels, for methods that scale labels (min–max for a BCE
//! target, mean/std for an L2 one) from the training data rather than from constants in a config.

use super::{Dataset, Split};

#[derive(Clone, Debug, PartialEq)]
pub struct LabelStats {
    pub min: Vec<f32>,
    pub max: Vec<f32>,
    pub mean: Vec<f32>,
    /// Population standard deviation.
    pub std: Vec<f32>,
}

impl LabelStats {
    /// Statistics of `split`'s labels; `None` when the data has no labels or the split is empty.
    pub fn of(data: &dyn Dataset, split: Split) -> Option<Self> {
        let rows = data.split(split);
        let n_cols = data.spec().label_names.len();
        if rows.is_empty() || n_cols == 0 {
            return None;
        }
        let labels = data.labels(rows)?;
        Some(Self::from_rows(&labels, n_cols))
    }

    /// Statistics of row-major `values` with `n_cols` columns.
    pub fn from_rows(values: &[f32], n_cols: usize) -> Self {
        let n = (values.len() / n_cols) as f64;
        let mut s = Self {
            min: vec![f32::INFINITY; n_cols],
            max: vec![f32::NEG_INFINITY; n_cols],
            mean: vec![0.0; n_cols],
            std: vec![0.0; n_cols],
        };
        let mut sum = vec![0f64; n_cols];
        let mut sq = vec![0f64; n_cols];
        for row in values.chunks_exact(n_cols) {
            for (j, &v) in row.iter().enumerate() {
                s.min[j] = s.min[j].min(v);
                s.max[j] = s.max[j].max(v);
                sum[j] += v as f64;
                sq[j] += (v as f64).powi(2);
            }
        }
        for j in 0..n_cols {
            let mean = sum[j] / n;
            s.mean[j] = mean as f32;
            s.std[j] = (sq[j] / n - mean * mean).max(0.0).sqrt() as f32;
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_summarised_separately() {
        let s = LabelStats::from_rows(&[0.0, 10.0, 2.0, 30.0], 2);
        assert_eq!(s.min, vec![0.0, 10.0]);
        assert_eq!(s.max, vec![2.0, 30.0]);
        assert_eq!(s.mean, vec![1.0, 20.0]);
        assert_eq!(s.std, vec![1.0, 10.0]);
    }
}

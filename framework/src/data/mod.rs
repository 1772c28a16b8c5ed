//! Datasets: the `Dataset` trait, batches, splits, the true causal graph, and the registered dataset configs.

mod array;
pub mod dsprites;
pub mod export;
mod graph;
pub mod image_folder;
mod intervention;
mod label_stats;
pub mod mnist;
pub mod pendulum;
pub mod synthetic;

pub use array::{ArrayDataset, Observations};
pub use export::write_image_dataset;
pub use graph::{CausalGraph, LatentGraph};
pub use intervention::Do;
pub use label_stats::LabelStats;

use crate::error::{Error, Result};
use candle_core::{Device, Tensor};
use std::sync::Arc;

/// The most bytes a dataset may hold in memory (8 GiB): a config asking for more is refused before anything
/// is allocated, instead of aborting on a failed allocation.
pub const MAX_DATASET_BYTES: usize = 8 << 30;

/// Ok when `rows` rows of `bytes_per_row` bytes each fit in [`MAX_DATASET_BYTES`]; otherwise an error naming
/// `what` and the size it would take.
pub fn check_dataset_bytes(what: &str, rows: usize, bytes_per_row: usize) -> Result<()> {
    match rows.checked_mul(bytes_per_row) {
        Some(total) if total <= MAX_DATASET_BYTES => Ok(()),
        total => Err(Error::Data(format!(
            "{what}: {rows} rows × {bytes_per_row} bytes = {} would exceed the {} GiB bound on a dataset held in memory",
            total.map_or("more than 2^64 bytes".to_string(), |t| format!("{:.1} GiB", t as f64 / (1u64 << 30) as f64)),
            MAX_DATASET_BYTES >> 30
        ))),
    }
}

/// Which rows of a dataset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, Default)]
pub enum Split {
    #[default]
    Train,
    Test,
    All,
}

impl std::str::FromStr for Split {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "train" => Ok(Split::Train),
            "test" => Ok(Split::Test),
            "all" => Ok(Split::All),
            other => Err(Error::Data(format!(
                "unknown split `{other}`: expected train, test or all"
            ))),
        }
    }
}

/// Static facts about a dataset that components need to size themselves.
#[derive(Clone, Debug, Default)]
pub struct DataSpec {
    /// Shape of one observation: `[C, H, W]` for images, `[D]` for vectors.
    pub obs_shape: Vec<usize>,
    /// Names of the true generative factors (columns of `factors`).
    pub factor_names: Vec<String>,
    /// Names of the supervision labels (columns of `labels`); empty when the data has none.
    pub label_names: Vec<String>,
    /// True causal graph over the factors, where known.
    pub graph: Option<CausalGraph>,
    /// Rows are sequences: `obs_shape[0]` is the number of time steps (frames) of one row, and `factors`
    /// holds one `factor_names.len()` block per frame.
    pub sequence: bool,
    /// Length of the auxiliary ("action") vector of each row; 0 when the data has none.
    pub action_dim: usize,
    /// True graphs of the latent mechanisms (e.g. z^{t−1} → z^t and a → z), where known.
    pub latent_graphs: Vec<LatentGraph>,
}

impl DataSpec {
    pub fn obs_len(&self) -> usize {
        self.obs_shape.iter().product()
    }
    pub fn is_image(&self) -> bool {
        self.obs_shape.len() == 3 && !self.sequence
    }
    /// Time steps per row (1 unless `sequence`).
    pub fn frames(&self) -> usize {
        if self.sequence {
            self.obs_shape[0]
        } else {
            1
        }
    }
    /// Factor values stored per row: one block per frame.
    pub fn factors_per_row(&self) -> usize {
        self.frames() * self.factor_names.len()
    }
}

/// A batch on a device. `x` has shape `[B, ..obs_shape]`, values in [0, 1] for images.
#[derive(Clone, Debug)]
pub struct Batch {
    pub x: Tensor,
    pub labels: Option<Tensor>,
    pub factors: Option<Tensor>,
    /// `[B, action_dim]` auxiliary variables, for data that has them.
    pub actions: Option<Tensor>,
}

impl Batch {
    pub fn size(&self) -> usize {
        self.x.dims()[0]
    }
}

/// A dataset held or generated on the host. Rows are addressed by global index; splits are index lists.
pub trait Dataset: Send + Sync {
    fn spec(&self) -> &DataSpec;
    /// Number of rows over all splits.
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Global row indices of a split, in a fixed order.
    fn split(&self, split: Split) -> &[usize];
    /// Appends the observations of `rows` (row-major, f32) to `out`.
    fn fill_observations(&self, rows: &[usize], out: &mut Vec<f32>);
    /// True factors of `rows`, row-major `rows.len() × k`.
    fn factors(&self, rows: &[usize]) -> Option<Vec<f32>>;
    /// Supervision labels of `rows`, row-major `rows.len() × n_labels`.
    fn labels(&self, rows: &[usize]) -> Option<Vec<f32>>;
    /// Auxiliary variables ("actions") of `rows`, row-major `rows.len() × action_dim`.
    fn actions(&self, rows: &[usize]) -> Option<Vec<f32>> {
        let _ = rows;
        None
    }
    /// Renders observations from factor vectors (simulators only), row-major `n × obs_len`.
    fn render(&self, factors: &[f32]) -> Result<Vec<f32>> {
        let _ = factors;
        Err(Error::Data(
            "this dataset has no simulator to render from factors".into(),
        ))
    }
    /// Whether `render` is available.
    fn can_render(&self) -> bool {
        false
    }
    /// The true factors of one scene (`factors`, one row) after do(...) in the data's own SCM: intervened
    /// factors take their values, descendants follow, everything else is unchanged (simulators only).
    fn simulate_do(&self, factors: &[f32], dos: &[Do]) -> Result<Vec<f32>> {
        let _ = (factors, dos);
        Err(Error::Data(
            "this dataset has no simulator to compute interventions".into(),
        ))
    }
    /// Whether `simulate_do` is available.
    fn can_simulate(&self) -> bool {
        false
    }
    /// A file name per row for export (defaults to the row index).
    fn file_name(&self, row: usize) -> String {
        format!("{row:06}.png")
    }
    /// The observations of `rows` as training step `step` sees them. Only data that redraw per step (MNIST's
    /// dynamic binarisation) override it; [`Dataset::fill_observations`] stays fixed, for evaluation.
    fn fill_observations_at(&self, rows: &[usize], step: usize, out: &mut Vec<f32>) {
        let _ = step;
        self.fill_observations(rows, out);
    }
}

/// Gathers `rows` into a batch on `device`. `scratch` is reused between calls to avoid per-step allocation.
pub fn make_batch(
    data: &dyn Dataset,
    rows: &[usize],
    device: &Device,
    scratch: &mut Vec<f32>,
) -> Result<Batch> {
    gather_batch(data, rows, None, device, scratch)
}

/// [`make_batch`] for training step `step`: observations from [`Dataset::fill_observations_at`].
pub fn make_batch_at(
    data: &dyn Dataset,
    rows: &[usize],
    step: usize,
    device: &Device,
    scratch: &mut Vec<f32>,
) -> Result<Batch> {
    gather_batch(data, rows, Some(step), device, scratch)
}

fn gather_batch(
    data: &dyn Dataset,
    rows: &[usize],
    step: Option<usize>,
    device: &Device,
    scratch: &mut Vec<f32>,
) -> Result<Batch> {
    let spec = data.spec();
    scratch.clear();
    match step {
        Some(step) => data.fill_observations_at(rows, step, scratch),
        None => data.fill_observations(rows, scratch),
    }
    let mut shape = vec![rows.len()];
    shape.extend_from_slice(&spec.obs_shape);
    let x = Tensor::from_slice(scratch.as_slice(), shape, device)?;
    let to_tensor = |v: Option<Vec<f32>>| -> Result<Option<Tensor>> {
        match v {
            Some(v) if !rows.is_empty() => {
                let k = v.len() / rows.len();
                Ok(Some(Tensor::from_vec(v, (rows.len(), k), device)?))
            }
            _ => Ok(None),
        }
    };
    Ok(Batch {
        x,
        labels: to_tensor(data.labels(rows))?,
        factors: to_tensor(data.factors(rows))?,
        actions: to_tensor(data.actions(rows))?,
    })
}

/// A dataset as named in a config, e.g. `{"Pendulum": (size: 96)}`.
#[typetag::serde]
pub trait DatasetConfig: std::fmt::Debug + Send + Sync {
    /// Builds (generates or loads) the dataset. `seed` drives any randomness.
    fn build(&self, seed: u64) -> Result<Arc<dyn Dataset>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dataset_bytes_are_bounded_without_overflow() {
        check_dataset_bytes("small", 1000, 1000).unwrap();
        check_dataset_bytes("edge", MAX_DATASET_BYTES, 1).unwrap();
        let e = check_dataset_bytes("big", MAX_DATASET_BYTES, 2)
            .unwrap_err()
            .to_string();
        assert!(e.contains("big") && e.contains("8 GiB"), "{e}");
        let e = check_dataset_bytes("vast", usize::MAX, 3)
            .unwrap_err()
            .to_string();
        assert!(e.contains("vast") && e.contains("2^64"), "{e}");
    }
}

//! A built experiment: its dataset, method and run directory. Training, evaluation and the picture commands
//! all start from one.

use super::CONFIG_FILE;
use crate::config::Experiment;
use crate::data::{make_batch, Dataset, Split};
use crate::error::{Error, IoContext, Result};
use crate::eval_context::EvalContext;
use crate::method::{Method, MethodContext};
use candle_core::Device;
use std::path::{Path, PathBuf};
use std::sync::Arc;

mod figures;

pub struct Session {
    pub exp: Experiment,
    pub data: Arc<dyn Dataset>,
    pub method: Box<dyn Method>,
    pub device: Device,
    pub run_dir: PathBuf,
}

impl Session {
    /// Builds the dataset and a freshly initialised method.
    pub fn new(exp: Experiment, device: Device, run_dir: PathBuf) -> Result<Self> {
        let seed = exp.train.seed;
        let data = exp.data.build(seed)?;
        let method = exp.model.build(&MethodContext {
            spec: data.spec(),
            device: device.clone(),
            seed,
            optimizer: &exp.train.optimizer,
            label_stats: crate::data::LabelStats::of(data.as_ref(), Split::Train),
        })?;
        Ok(Self {
            exp,
            data,
            method,
            device,
            run_dir,
        })
    }

    /// Rebuilds a run from its directory and loads its last checkpoint's parameters.
    pub fn open(run_dir: &Path, device: Device) -> Result<Self> {
        let mut s = Self::build(run_dir, device)?;
        let device = s.device.clone();
        super::checkpoint::load(run_dir, s.method.as_mut(), &device, false)?;
        Ok(s)
    }

    /// Rebuilds a run from its directory's config, freshly initialised.
    pub(super) fn build(run_dir: &Path, device: Device) -> Result<Self> {
        if !run_dir.is_dir() {
            return Err(crate::error::Error::Data(format!(
                "{}: no such run directory",
                run_dir.display()
            )));
        }
        let cfg = run_dir.join(CONFIG_FILE);
        let text = std::fs::read_to_string(&cfg).at(&cfg)?;
        let exp = Experiment::parse(&text, &cfg.display().to_string(), &[])?;
        Self::new(exp, device, run_dir.to_path_buf())
    }

    /// What evaluation reads of this run.
    pub fn eval_context(&self) -> EvalContext<'_> {
        EvalContext {
            method: self.method.as_ref(),
            data: self.data.as_ref(),
            data_config: self.exp.data.as_ref(),
            device: &self.device,
            run_dir: &self.run_dir,
            seed: self.exp.train.seed,
            split: self.exp.eval.split,
        }
    }

    /// `n` rows spread evenly over a split (its first rows are often near-duplicates, e.g. one pendulum
    /// angle under neighbouring lights), as a batch; an error naming the split when it is empty.
    pub fn sample_batch(&self, split: Split, n: usize) -> Result<crate::data::Batch> {
        let rows = self.split_rows(split)?;
        let picked: Vec<usize> = spread(rows.len(), n).map(|i| rows[i]).collect();
        make_batch(self.data.as_ref(), &picked, &self.device, &mut Vec::new())
    }

    /// The rows of `split`; an error naming the split when it has none.
    pub fn split_rows(&self, split: Split) -> Result<&[usize]> {
        let rows = self.data.split(split);
        if rows.is_empty() {
            let name = format!("{split:?}").to_lowercase();
            return Err(Error::Data(format!(
                "the {name} split has no images; figures and evaluation draw from it, so give the data at \
                 least one {name} row (for an ImageFolder, PNGs in its {name}/ folder)"
            )));
        }
        Ok(rows)
    }
}

/// `n` (at least 1, at most `len`) positions in `0..len`, evenly spread.
fn spread(len: usize, n: usize) -> impl Iterator<Item = usize> {
    let n = n.clamp(1, len.max(1));
    (0..n).map(move |i| i * len / n)
}

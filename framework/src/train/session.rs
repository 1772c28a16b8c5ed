//! A built experiment: its dataset, method and run directory. Training, evaluation and the picture commands
//! all start from one.

use super::CONFIG_FILE;
use crate::config::Experiment;
use crate::data::{make_batch, Dataset, Split};
use crate::error::{IoContext, Result};
use crate::method::{Method, MethodContext};
use candle_core::{Device, Tensor};
use std::path::{Path, PathBuf};
use std::sync::Arc;

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

    /// `n` rows spread evenly over a split (its first rows are often near-duplicates, e.g. one pendulum
    /// angle under neighbouring lights), as a batch.
    pub fn sample_batch(&self, split: Split, n: usize) -> Result<crate::data::Batch> {
        let rows = self.data.split(split);
        let n = n.clamp(1, rows.len());
        let picked: Vec<usize> = (0..n).map(|i| rows[i * rows.len() / n]).collect();
        make_batch(self.data.as_ref(), &picked, &self.device, &mut Vec::new())
    }

    /// `figures/reconstructions.png` (originals above, reconstructions below) and `figures/traversal.png`.
    pub fn write_figures(&self) -> Result<()> {
        let figures = self.run_dir.join("figures");
        std::fs::create_dir_all(&figures).at(&figures)?;
        self.write_latent_graphs(&figures)?;
        if !self.data.spec().is_image() {
            return Ok(());
        }
        let batch = self.sample_batch(Split::Test, 8)?;
        let recon = self.method.reconstruct(&batch.x)?;
        let both = Tensor::cat(&[&batch.x, &recon], 0)?;
        crate::viz::save_tensor_grid(&figures.join("reconstructions.png"), &both, batch.size())?;
        self.traverse(&figures.join("traversal.png"), 0, 10, 3.0)?;
        if let Some(a) = self.method.graph()? {
            let n = a.dims()[0];
            let values = a
                .flatten_all()?
                .to_dtype(candle_core::DType::F32)?
                .to_vec1::<f32>()?;
            crate::viz::save_heatmap(&figures.join("graph.png"), &values, n, 48)?;
            let ranges = self.node_ranges(n)?;
            let middle = self.data.split(Split::Test).len() / 2;
            self.intervention_sweep(&figures.join("interventions.png"), middle, &ranges, 8)?;
        }
        Ok(())
    }

    /// `figures/graph_<name>.png` for each learned latent-mechanism graph: edge probabilities σ(α). Where the
    /// data has the true graph and factors, rows (and latent columns) are put in the true factors' order by
    /// the MCC matching on the test split, and the true graph is drawn to the right for comparison.
    pub fn write_latent_graphs(&self, figures: &Path) -> Result<()> {
        let learned = self.method.latent_graphs()?;
        if learned.is_empty() {
            return Ok(());
        }
        let truths = &self.data.spec().latent_graphs;
        let assignment = if truths.is_empty() {
            None
        } else {
            let inputs = crate::eval::collect(self, Split::Test, 10_000)?;
            match &inputs.factors {
                Some(f) => Some(
                    crate::metrics::mcc(
                        f,
                        inputs.k,
                        &inputs.codes,
                        inputs.d,
                        crate::metrics::Correlation::Pearson,
                    )?
                    .assignment,
                ),
                None => None,
            }
        };
        for (name, probs) in learned {
            let (r, c) = probs.dims2()?;
            let mut values = probs
                .to_dtype(candle_core::DType::F32)?
                .flatten_all()?
                .to_vec1::<f32>()?;
            let mut cols = c;
            let truth = truths.iter().find(|t| t.name == name);
            if let (Some(truth), Some(a)) = (truth, &assignment) {
                if truth.rows() == a.len() && r == a.len() {
                    let aligned = if truth.cols_are_latents {
                        crate::metrics::align_square(&values, r, a)
                    } else {
                        crate::metrics::align_rows(&values, c, a)
                    };
                    // learned | blank column | truth
                    cols = 2 * c + 1;
                    values = (0..r)
                        .flat_map(|i| {
                            let row = &aligned[i * c..(i + 1) * c];
                            let true_row = truth.adj[i].iter().map(|&e| if e { 1.0 } else { 0.0 });
                            row.iter().copied().chain([0.0]).chain(true_row)
                        })
                        .collect();
                }
            }
            let path = figures.join(format!("graph_{name}.png"));
            crate::viz::save_matrix_heatmap(&path, &values, r, cols, 24)?;
        }
        Ok(())
    }

    /// Per causal node, the 5% and 95% quantiles of the model's node values over (up to) 512 test images, so a
    /// sweep stays where the model has seen data; ±1.5 for methods that do not report node values.
    pub fn node_ranges(&self, nodes: usize) -> Result<Vec<(f32, f32)>> {
        let batch = self.sample_batch(Split::Test, 512)?;
        let Some(v) = self.method.node_values(&batch.x)? else {
            return Ok(vec![(-1.5, 1.5); nodes]);
        };
        let (b, n) = v.dims2()?;
        let v = v.to_vec2::<f32>()?;
        Ok((0..n.min(nodes))
            .map(|i| {
                let mut col: Vec<f32> = v.iter().map(|r| r[i]).collect();
                col.sort_by(f32::total_cmp);
                (col[b / 20], col[b - 1 - b / 20])
            })
            .collect())
    }

    /// One row per causal node: do(node = v) on test image `row`, v sweeping `ranges[node]` over `steps`
    /// columns (as the intervention figure of the CausalVAE paper).
    pub fn intervention_sweep(
        &self,
        path: &Path,
        row: usize,
        ranges: &[(f32, f32)],
        steps: usize,
    ) -> Result<()> {
        let rows = self.data.split(Split::Test);
        let r = rows.get(row).copied().unwrap_or(rows[0]);
        let x = make_batch(self.data.as_ref(), &[r], &self.device, &mut Vec::new())?.x;
        let mut images = Vec::with_capacity(ranges.len() * steps);
        for (node, &(lo, hi)) in ranges.iter().enumerate() {
            for s in 0..steps {
                let value = lo + (hi - lo) * s as f32 / (steps - 1).max(1) as f32;
                images.push(
                    self.method
                        .intervene(&x, &[crate::components::Do { node, value }])?,
                );
            }
        }
        crate::viz::save_tensor_grid(path, &Tensor::cat(&images, 0)?, steps)
    }

    /// Originals, reconstructions and counterfactuals under `dos` for the first `n` test images, one row each.
    pub fn intervention_grid(
        &self,
        path: &Path,
        dos: &[crate::components::Do],
        n: usize,
    ) -> Result<()> {
        let batch = self.sample_batch(Split::Test, n)?;
        let recon = self.method.reconstruct(&batch.x)?;
        let done = self.method.intervene(&batch.x, dos)?;
        let all = Tensor::cat(&[&batch.x, &recon, &done], 0)?;
        crate::viz::save_tensor_grid(path, &all, batch.size())
    }

    /// Latent traversal of test image `row`: one row per latent, `steps` values of it in ±`range`.
    pub fn traverse(&self, path: &Path, row: usize, steps: usize, range: f32) -> Result<()> {
        let rows = self.data.split(Split::Test);
        let r = rows.get(row).copied().unwrap_or(rows[0]);
        let batch = make_batch(self.data.as_ref(), &[r], &self.device, &mut Vec::new())?;
        let z = self.method.encode(&batch.x)?.to_vec2::<f32>()?.remove(0);
        let d = z.len();
        let mut codes = Vec::with_capacity(d * steps * d);
        for i in 0..d {
            for s in 0..steps {
                let mut zz = z.clone();
                zz[i] = -range + 2.0 * range * s as f32 / (steps - 1).max(1) as f32;
                codes.extend(zz);
            }
        }
        let codes = Tensor::from_vec(codes, (d * steps, d), &self.device)?;
        let images = self.method.decode(&codes)?;
        crate::viz::save_tensor_grid(path, &images, steps)
    }
}

//! The figures of a run, drawn from its session: training curves, reconstructions, latent traversals, the
//! learned graphs and interventions, each titled and labelled so it reads without the code.

use super::{spread, Session};
use crate::components::Do;
use crate::data::{make_batch, Batch, Split};
use crate::error::{Error, IoContext, Result};
use crate::viz::text::sweep;
use crate::viz::{
    save_unit_kl, ColourScale, GridRow, Heatmap, HeatmapPanel, Image, LabelledGrid, LayerKl,
};
use candle_core::{DType, Tensor};
use std::path::Path;

impl Session {
    /// Most values a traversal or intervention sweep takes per row.
    pub const MAX_SWEEP_STEPS: usize = 100;
    /// Most images a traversal decodes (latents × steps).
    pub const MAX_TRAVERSAL_IMAGES: usize = 2_000;
    /// Most test images of an intervention grid.
    pub const MAX_INTERVENTION_IMAGES: usize = 64;

    /// The figures in `RUN_DIR/figures/`: `loss.png` (the logged training terms), `graph_<name>.png` (learned
    /// latent-mechanism graphs) and, for image data, `reconstructions.png`, `traversal.png`, `samples.png` (for
    /// a method that generates from its prior), `kl_per_unit.png` (for Gaussian posteriors and priors) and, for a
    /// method with a causal graph, `graph.png` and `interventions.png`.
    pub fn write_figures(&self) -> Result<()> {
        let figures = self.run_dir.join("figures");
        std::fs::create_dir_all(&figures).at(&figures)?;
        let log = self.run_dir.join(crate::train::METRICS_FILE);
        if log.is_file() {
            let title = format!("Training log of {}", self.exp.name);
            crate::viz::save_training_curves(&log, &figures.join("loss.png"), &title)?;
        }
        self.write_latent_graphs(&figures)?;
        if !self.data.spec().is_image() {
            return Ok(());
        }
        self.write_reconstructions(&figures.join("reconstructions.png"), 8)?;
        self.write_samples(&figures.join("samples.png"), 4, 8)?;
        self.write_unit_kl(&figures.join("kl_per_unit.png"))?;
        let latents = self.method.latent_dim();
        if latents * 10 <= Self::MAX_TRAVERSAL_IMAGES {
            self.traverse(&figures.join("traversal.png"), 0, 10, 3.0)?;
        } else {
            log::warn!(
                "traversal.png left out: {latents} latents × 10 steps exceed {} images",
                Self::MAX_TRAVERSAL_IMAGES
            );
        }
        if let Some(a) = self.method.graph()? {
            let n = a.dims()[0];
            self.write_graph(&figures.join("graph.png"), &a)?;
            let ranges = self.node_ranges(n)?;
            let middle = self.split_rows(Split::Test)?.len() / 2;
            self.intervention_sweep(&figures.join("interventions.png"), middle, &ranges, 8)?;
        }
        Ok(())
    }

    /// Names of the `n` causal nodes: the true graph's nodes, or the data's factors or labels, when there are
    /// `n` of them (supervised methods order their nodes so); `node<i>` otherwise.
    pub fn node_names(&self, n: usize) -> Vec<String> {
        let spec = self.data.spec();
        let graph_nodes = spec.graph.as_ref().map(|g| g.nodes.clone());
        [
            graph_nodes,
            Some(spec.factor_names.clone()),
            Some(spec.label_names.clone()),
        ]
        .into_iter()
        .flatten()
        .find(|names| names.len() == n)
        .unwrap_or_else(|| (0..n).map(|i| format!("node{i}")).collect())
    }

    /// The test images at `positions` of the test split, as a batch.
    fn test_batch(&self, positions: &[usize]) -> Result<Batch> {
        let rows = self.split_rows(Split::Test)?;
        let picked = positions
            .iter()
            .map(|&p| self.test_row(rows, p))
            .collect::<Result<Vec<_>>>()?;
        make_batch(self.data.as_ref(), &picked, &self.device, &mut Vec::new())
    }

    /// The dataset row of test image `index`, or an error giving the split's size.
    fn test_row(&self, rows: &[usize], index: usize) -> Result<usize> {
        rows.get(index).copied().ok_or_else(|| {
            Error::msg(format!(
                "test image {index} is past the test split, which has {} images (0..={})",
                rows.len(),
                rows.len() - 1
            ))
        })
    }

    /// `n` test images spread over the split (top row) and their reconstructions (bottom row).
    fn write_reconstructions(&self, path: &Path, n: usize) -> Result<()> {
        let positions: Vec<usize> = spread(self.split_rows(Split::Test)?.len(), n).collect();
        let batch = self.test_batch(&positions)?;
        let recon = self.method.reconstruct(&batch.x)?;
        LabelledGrid {
            title: "Reconstructions".into(),
            subtitle: "test images and the model's reconstructions of them (decoder mean)".into(),
            column_labels: positions.iter().map(|p| format!("test #{p}")).collect(),
            rows: vec![
                row("original", Image::batch(&batch.x)?, Vec::new()),
                row("reconstruction", Image::batch(&recon)?, Vec::new()),
            ],
        }
        .save(path)
    }

    /// `rows × columns` images generated from the prior, for methods that can ([`crate::method::Method::generate`]).
    fn write_samples(&self, path: &Path, rows: usize, columns: usize) -> Result<()> {
        let mut rng = crate::rng::Rng::new(self.exp.train.seed);
        let Some(x) = self.method.generate(rows * columns, &mut rng)? else {
            return Ok(());
        };
        let images = Image::batch(&x)?;
        LabelledGrid {
            title: "Samples".into(),
            subtitle: "images generated from the prior (decoder mean)".into(),
            column_labels: Vec::new(),
            rows: images
                .chunks(columns)
                .enumerate()
                .map(|(i, chunk)| row(&format!("samples {}", i + 1), chunk.to_vec(), Vec::new()))
                .collect(),
        }
        .save(path)
    }

    /// `kl_per_unit.png`: the KL of every latent unit, layer by layer, on the test split, for methods with
    /// Gaussian posteriors and priors unit by unit ([`crate::metrics::latent_units_of`]).
    fn write_unit_kl(&self, path: &Path) -> Result<()> {
        let cfg = crate::metrics::LatentUnitsConfig {
            rows: 1000,
            ..Default::default()
        };
        let probe = self.test_batch(&[0])?;
        if self
            .method
            .unit_kl(&probe.x, &mut crate::rng::Rng::new(0))?
            .is_none()
        {
            return Ok(());
        }
        let layers = crate::metrics::latent_units_of(
            self.data.as_ref(),
            self.method.as_ref(),
            &self.device,
            Split::Test,
            &cfg,
        )?;
        let layers: Vec<LayerKl> = layers
            .into_iter()
            .map(|l| LayerKl {
                name: l.name,
                unit_kl: l.unit_kl,
                active: l.active,
            })
            .collect();
        let title = format!(
            "KL per latent unit of {} (test split, {} rows)",
            self.exp.name, cfg.rows
        );
        save_unit_kl(&layers, &title, path)
    }

    /// `graph.png`: the learned weighted adjacency A (rows cause, columns effect) with its values, beside the
    /// data's true graph when it has one over the same nodes.
    fn write_graph(&self, path: &Path, a: &Tensor) -> Result<()> {
        let n = a.dims()[0];
        let values = a.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
        let mut panels = vec![HeatmapPanel {
            title: "learned A".into(),
            values,
            edges: false,
        }];
        if let Some(truth) = self
            .data
            .spec()
            .graph
            .as_ref()
            .filter(|g| g.nodes.len() == n)
        {
            panels.push(HeatmapPanel {
                title: "true graph".into(),
                values: truth
                    .adj
                    .iter()
                    .flatten()
                    .map(|&e| f32::from(u8::from(e)))
                    .collect(),
                edges: true,
            });
        }
        let names = self.node_names(n);
        Heatmap {
            title: "Causal graph: A[i][j] ≠ 0 is an edge i → j".into(),
            subtitle: "rows: cause, columns: effect; each cell prints the learned edge weight"
                .into(),
            row_names: names.clone(),
            col_names: names,
            row_axis: "cause i (parent)".into(),
            col_axis: "effect j (child)".into(),
            panels,
            scale: ColourScale::Signed,
            bar_label: "A[i][j]".into(),
        }
        .save(path)
    }

    /// `figures/graph_<name>.png` for each learned latent-mechanism graph: edge probabilities σ(α), rows the
    /// latents at t, columns their parents (latents at t−1, or actions). Where the data has the true graph and
    /// factors, rows (and latent columns) are put in the true factors' order by the MCC matching on the test
    /// split, and the true graph is drawn beside it.
    pub fn write_latent_graphs(&self, figures: &Path) -> Result<()> {
        let learned = self.method.latent_graphs()?;
        if learned.is_empty() {
            return Ok(());
        }
        let spec = self.data.spec();
        let truths = &spec.latent_graphs;
        let assignment = if truths.is_empty() {
            None
        } else {
            let inputs = crate::eval::collect(&self.eval_context(), Split::Test, 10_000)?;
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
            let values = probs
                .to_dtype(DType::F32)?
                .flatten_all()?
                .to_vec1::<f32>()?;
            let truth = truths.iter().find(|t| t.name == name);
            let latents_in_cols = truth.map_or(c == r, |t| t.cols_are_latents);
            let latent = |i: usize| format!("z{i}");
            let mut row_names: Vec<String> = (0..r).map(latent).collect();
            let mut col_names: Vec<String> = if latents_in_cols {
                (0..c).map(latent).collect()
            } else {
                (0..c).map(|j| format!("a{j}")).collect()
            };
            let mut panels = vec![HeatmapPanel {
                title: "learned σ(α)".into(),
                values: values.clone(),
                edges: false,
            }];
            let mut subtitle =
                "latents z<i> as learned (the data has no true graph to match them to)";
            if let (Some(truth), Some(a)) = (truth, &assignment) {
                if truth.rows() == a.len() && r == a.len() && truth.cols() == c {
                    let aligned = if truth.cols_are_latents {
                        crate::metrics::align_square(&values, r, a)
                    } else {
                        crate::metrics::align_rows(&values, c, a)
                    };
                    let matched = |i: usize| match a[i] {
                        Some(l) => format!("{} (latent {l})", spec.factor_names[i]),
                        None => format!("{} (no latent)", spec.factor_names[i]),
                    };
                    row_names = (0..r).map(matched).collect();
                    if truth.cols_are_latents {
                        col_names = (0..c).map(matched).collect();
                    }
                    panels[0].values = aligned;
                    panels.push(HeatmapPanel {
                        title: "true graph".into(),
                        values: truth
                            .flat()
                            .iter()
                            .map(|&e| f32::from(u8::from(e)))
                            .collect(),
                        edges: true,
                    });
                    subtitle = "true factors, each with the learned latent matched to it (MCC on the test split)";
                }
            }
            let parents = if latents_in_cols {
                "cause j: latent at t−1"
            } else {
                "cause j: action"
            };
            Heatmap {
                title: format!("Latent mechanism graph G^{name}: G[i][j] = 1 is an edge j → i"),
                subtitle: subtitle.into(),
                row_names,
                col_names,
                row_axis: "effect i: latent at t".into(),
                col_axis: parents.into(),
                panels,
                scale: ColourScale::Unit,
                bar_label: "edge probability".into(),
            }
            .save(&figures.join(format!("graph_{name}.png")))?;
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

    /// One row per causal node: do(node = v) on test image `index`, v sweeping `ranges[node]` over `steps`
    /// columns (as the intervention figure of the CausalVAE paper), under a row with the image and its
    /// reconstruction.
    pub fn intervention_sweep(
        &self,
        path: &Path,
        index: usize,
        ranges: &[(f32, f32)],
        steps: usize,
    ) -> Result<()> {
        check_steps(steps)?;
        let x = self.test_batch(&[index])?.x;
        let names = self.node_names(ranges.len());
        let mut rows = vec![row(
            "test image",
            Image::batch(&Tensor::cat(&[&x, &self.method.reconstruct(&x)?], 0)?)?,
            vec!["original".into(), "reconstruction".into()],
        )];
        for (node, &(lo, hi)) in ranges.iter().enumerate() {
            let values: Vec<f32> = (0..steps).map(|s| lerp(lo, hi, s, steps)).collect();
            let images = values
                .iter()
                .map(|&value| self.method.intervene(&x, &[Do { node, value }]))
                .collect::<Result<Vec<_>>>()?;
            let captions = sweep(&values.iter().map(|&v| v as f64).collect::<Vec<_>>());
            let label = format!("do({} = …)", names[node]);
            rows.push(row(
                &label,
                Image::batch(&Tensor::cat(&images, 0)?)?,
                captions,
            ));
        }
        LabelledGrid {
            title: format!("Interventions on test image #{index}"),
            subtitle: "row do(node = …): the node set to the value under each image, from the 5% to the 95% \
                       quantile of its test values, in the model's node units"
                .into(),
            column_labels: Vec::new(),
            rows,
        }
        .save(path)
    }

    /// Originals, reconstructions and counterfactuals under `dos` for `n` test images spread over the split,
    /// one row each; `names[node]` names the nodes in the row label.
    pub fn intervention_grid(
        &self,
        path: &Path,
        dos: &[Do],
        names: &[String],
        n: usize,
    ) -> Result<()> {
        let test = self.split_rows(Split::Test)?.len();
        if n == 0 || n > Self::MAX_INTERVENTION_IMAGES.min(test) {
            return Err(Error::msg(format!(
                "the intervention grid draws 1..={} test images (at most {}, and the \
                 test split has {test}), got {n}",
                Self::MAX_INTERVENTION_IMAGES.min(test),
                Self::MAX_INTERVENTION_IMAGES,
            )));
        }
        let positions: Vec<usize> = spread(test, n).collect();
        let batch = self.test_batch(&positions)?;
        let recon = self.method.reconstruct(&batch.x)?;
        let done = self.method.intervene(&batch.x, dos)?;
        let settings: Vec<String> = dos
            .iter()
            .map(|d| {
                let name = names
                    .get(d.node)
                    .cloned()
                    .unwrap_or_else(|| d.node.to_string());
                format!("{name} = {}", d.value)
            })
            .collect();
        LabelledGrid {
            title: format!("Counterfactuals under do({})", settings.join(", ")),
            subtitle: "values in the model's node units".into(),
            column_labels: positions.iter().map(|p| format!("test #{p}")).collect(),
            rows: vec![
                row("original", Image::batch(&batch.x)?, Vec::new()),
                row("reconstruction", Image::batch(&recon)?, Vec::new()),
                row(
                    &format!("do({})", settings.join(", ")),
                    Image::batch(&done)?,
                    Vec::new(),
                ),
            ],
        }
        .save(path)
    }

    /// Latent traversal of test image `index`: one row per latent `z<i>`, set to `steps` values evenly over
    /// ±`range` while the other latents keep the image's encoding.
    pub fn traverse(&self, path: &Path, index: usize, steps: usize, range: f32) -> Result<()> {
        check_steps(steps)?;
        if !(range.is_finite() && range > 0.0) {
            return Err(Error::msg(format!(
                "the traversal range must be a finite number > 0, got {range}"
            )));
        }
        let x = self.test_batch(&[index])?.x;
        let z = self.method.encode(&x)?.to_vec2::<f32>()?.remove(0);
        let d = z.len();
        if d * steps > Self::MAX_TRAVERSAL_IMAGES {
            return Err(Error::msg(format!(
                "a traversal of {d} latents × {steps} steps is {} images, above {}; use fewer steps",
                d * steps,
                Self::MAX_TRAVERSAL_IMAGES,
            )));
        }
        let values: Vec<f32> = (0..steps).map(|s| lerp(-range, range, s, steps)).collect();
        let mut codes = Vec::with_capacity(d * steps * d);
        for i in 0..d {
            for &v in &values {
                let mut code = z.clone();
                code[i] = v;
                codes.extend(code);
            }
        }
        let codes = Tensor::from_vec(codes, (d * steps, d), &self.device)?;
        let mut images = Image::batch(&self.method.decode(&codes)?)?.into_iter();
        let rows = (0..d)
            .map(|i| {
                row(
                    &format!("z{i}"),
                    images.by_ref().take(steps).collect(),
                    Vec::new(),
                )
            })
            .collect();
        LabelledGrid {
            title: format!("Latent traversal of test image #{index}"),
            subtitle: format!(
                "row z<i>: latent i set to the value over each column, the other {} kept at the image's encoding",
                d.saturating_sub(1)
            ),
            column_labels: sweep(&values.iter().map(|&v| v as f64).collect::<Vec<_>>()),
            rows,
        }
        .save(path)
    }
}

fn row(label: &str, images: Vec<Image>, captions: Vec<String>) -> GridRow {
    GridRow {
        label: label.into(),
        images,
        captions,
    }
}

/// Step `s` of `steps` evenly from `lo` to `hi`.
fn lerp(lo: f32, hi: f32, s: usize, steps: usize) -> f32 {
    lo + (hi - lo) * s as f32 / (steps - 1).max(1) as f32
}

fn check_steps(steps: usize) -> Result<()> {
    let max = Session::MAX_SWEEP_STEPS;
    if (2..=max).contains(&steps) {
        Ok(())
    } else {
        Err(Error::msg(format!(
            "a sweep takes 2..={max} steps, got {steps}"
        )))
    }
}

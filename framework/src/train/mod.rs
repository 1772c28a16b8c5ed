//! The training loop and the run directory.
//!
//! ```text
//! RUN_DIR/config.ron        resolved config          RUN_DIR/metrics.jsonl   one JSON object per logged step
//! RUN_DIR/checkpoint/       params, optimizer, step, RNG (atomic)
//! RUN_DIR/figures/*.png     reconstructions, traversals     RUN_DIR/summary.json   steps, time, throughput, metrics
//! ```

pub mod checkpoint;
mod sampler;
mod session;

pub use checkpoint::TrainState;
pub use sampler::EpochSampler;
pub use session::Session;

use crate::config::Experiment;
use crate::data::{make_batch, Split};
use crate::error::{Error, IoContext, Result};
use crate::method::StepReport;
use crate::rng::Rng;
use candle_core::Device;
use serde_json::{json, Map, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

pub const CONFIG_FILE: &str = "config.ron";
pub const METRICS_FILE: &str = "metrics.jsonl";
pub const SUMMARY_FILE: &str = "summary.json";

/// How to run a training job.
pub struct TrainOptions {
    /// Run directory; default `runs/<name>-<timestamp>`.
    pub out_dir: Option<PathBuf>,
    /// Continue the run in this directory from its last checkpoint (its saved config is used).
    pub resume: Option<PathBuf>,
    pub device: Device,
    pub progress: bool,
}

/// Writes `contents` to `path` via a temporary file and a rename.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!(
        "{}.tmp",
        path.extension().and_then(|e| e.to_str()).unwrap_or("")
    ));
    std::fs::write(&tmp, contents).at(&tmp)?;
    std::fs::rename(&tmp, path).at(path)
}

fn default_run_dir(name: &str) -> PathBuf {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    PathBuf::from("runs").join(format!("{name}-{secs}"))
}

/// Trains `exp` (or resumes `opts.resume`) to `exp.train.steps`; returns the run directory.
pub fn train(exp: Option<Experiment>, opts: TrainOptions) -> Result<PathBuf> {
    crate::runtime::init_cpu();
    let (mut session, start) = match &opts.resume {
        Some(dir) => {
            let mut s = Session::open(dir, opts.device.clone())?;
            if let Some(exp) = exp {
                // A resumed run keeps its own config except for the step budget, which may be extended.
                s.exp.train.steps = exp.train.steps;
            }
            let state = checkpoint::load(dir, s.method.as_mut(), &opts.device, true)?;
            log::info!("resuming {} at step {}", dir.display(), state.step);
            (s, Some(state))
        }
        None => {
            let exp = exp.ok_or_else(|| Error::msg("train needs a config or --resume RUN_DIR"))?;
            let dir = opts
                .out_dir
                .clone()
                .unwrap_or_else(|| default_run_dir(&exp.name));
            std::fs::create_dir_all(dir.join("figures")).at(&dir)?;
            write_atomic(&dir.join(CONFIG_FILE), exp.to_ron()?.as_bytes())?;
            (Session::new(exp, opts.device.clone(), dir)?, None)
        }
    };
    crate::config::check_run(
        &session.exp,
        session.data.as_ref(),
        session.method.as_ref(),
        &session.device,
    )?;
    let tc = session.exp.train.clone();
    let (first_step, mut rng) = match start {
        Some(s) => (s.step, s.rng),
        None => (0, Rng::derived(tc.seed, 1)),
    };
    let metrics_path = session.run_dir.join(METRICS_FILE);
    truncate_metrics(&metrics_path, first_step)?;
    let mut metrics = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&metrics_path)
        .at(&metrics_path)?;

    let train_rows = session.data.split(Split::Train).to_vec();
    let mut sampler = EpochSampler::new(train_rows, tc.batch_size, tc.seed);
    let bar = progress_bar(opts.progress, tc.steps, first_step);
    let mut scratch = Vec::new();
    let t_start = Instant::now();
    let mut window = (Instant::now(), 0usize);
    let mut trained_samples = 0usize;
    let mut last_report = StepReport::default();

    for step in first_step..tc.steps {
        session.method.set_lr_scale(tc.lr_schedule.scale(step));
        let rows = sampler.batch(step);
        let batch = make_batch(session.data.as_ref(), rows, &session.device, &mut scratch)?;
        let report = session.method.train_step(&batch, step, &mut rng)?;
        window.1 += rows.len();
        trained_samples += rows.len();
        let done = step + 1;
        if done % tc.log_every.max(1) == 0 || done == tc.steps {
            let sps = window.1 as f64 / window.0.elapsed().as_secs_f64().max(1e-9);
            let mut line = Map::new();
            line.insert("step".into(), json!(done));
            for (k, v) in &report.terms {
                line.insert(k.clone(), json!(v));
            }
            line.insert("samples_per_sec".into(), json!(sps));
            writeln!(metrics, "{}", Value::Object(line)).at(&metrics_path)?;
            bar.set_position(done as u64);
            bar.set_message(format!("{:.0} samples/s  {}", sps, format_terms(&report)));
            window = (Instant::now(), 0);
        }
        last_report = report;
        if done % tc.checkpoint_every.max(1) == 0 || done == tc.steps {
            checkpoint::save(
                &session.run_dir,
                session.method.as_ref(),
                &TrainState {
                    step: done,
                    rng: rng.clone(),
                },
            )?;
        }
    }
    bar.finish_and_clear();
    let wall = t_start.elapsed().as_secs_f64();
    log::info!(
        "trained {} steps in {:.1}s; last: {}",
        tc.steps - first_step,
        wall,
        format_terms(&last_report)
    );

    session.write_figures()?;
    let eval = session.exp.eval.clone();
    let scores = crate::eval::evaluate(&session, &eval.metrics, eval.split, eval.max_samples)?;
    let summary = json!({
        "steps": tc.steps,
        "wall_seconds": wall,
        "samples_per_sec": trained_samples as f64 / wall.max(1e-9),
        "metrics": scores,
    });
    write_atomic(
        &session.run_dir.join(SUMMARY_FILE),
        serde_json::to_string_pretty(&summary)
            .expect("json")
            .as_bytes(),
    )?;
    Ok(session.run_dir)
}

fn format_terms(r: &StepReport) -> String {
    r.terms
        .iter()
        .map(|(k, v)| format!("{k} {v:.4}"))
        .collect::<Vec<_>>()
        .join("  ")
}

/// Drops log lines past the checkpoint a run resumes from, so the log has each step once.
fn truncate_metrics(path: &Path, keep_upto: usize) -> Result<()> {
    if !path.exists() {
        return Ok(());
    }
    let text = std::fs::read_to_string(path).at(path)?;
    let kept: String = text
        .lines()
        .filter(|l| {
            serde_json::from_str::<Value>(l)
                .ok()
                .and_then(|v| v["step"].as_u64())
                .is_some_and(|s| s as usize <= keep_upto)
        })
        .map(|l| format!("{l}\n"))
        .collect();
    write_atomic(path, kept.as_bytes())
}

fn progress_bar(show: bool, total: usize, start: usize) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}")
            .expect("template")
            .progress_chars("=> "),
    );
    bar.set_position(start as u64);
    bar
}

//! The training loop and the run directory.
//!
//! ```text
//! RUN_DIR/config.ron        resolved config          RUN_DIR/metrics.jsonl   one JSON object per logged step
//! RUN_DIR/checkpoint/       params, optimizer, step, RNG, SHA-256 of each (atomic, always finite)
//! RUN_DIR/carve.lock        held by the one process that trains into the directory
//! RUN_DIR/figures/*.png     reconstructions, traversals     RUN_DIR/summary.json   steps, time, throughput, metrics
//! ```

pub mod checkpoint;
pub mod run_dir;
mod sampler;
mod session;

pub use checkpoint::TrainState;
pub use run_dir::RunLock;
pub use sampler::EpochSampler;
pub use session::Session;

use crate::config::Experiment;
use crate::data::{make_batch_at, Split};
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
    /// Replace the run already in `out_dir`; without it, a directory that holds a run is refused.
    pub overwrite: bool,
    pub device: Device,
    pub progress: bool,
}

/// Writes `contents` to `path` via a temporary file and a rename.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!(
        "{}.tmp",
        path.extension().and_then(|e| e.to_str()).unwrap_or("")
    ));
    if let Err(e) = std::fs::write(&tmp, contents).at(&tmp) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, path).at(path)
}

fn default_run_dir(name: &str) -> PathBuf {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    PathBuf::from("runs").join(format!("{name}-{secs}"))
}

/// A session ready to train, holding its run directory's lock, and where it starts.
struct Start {
    session: Session,
    state: Option<TrainState>,
    _lock: RunLock,
}

/// Opens `dir` to continue it: locks it, loads its last checkpoint with the optimizer state, and takes the
/// step budget of `exp` (if given), recording it in the run's config. The budget may grow, not shrink; a
/// budget equal to the checkpoint's step trains nothing and redoes the figures, evaluation and summary.
fn resume(dir: &Path, exp: Option<Experiment>, device: &Device) -> Result<Start> {
    if !dir.join(CONFIG_FILE).is_file() {
        return Err(Error::Data(if dir.is_dir() {
            format!("{}: not a run directory (no {CONFIG_FILE})", dir.display())
        } else {
            format!("{}: no such run directory", dir.display())
        }));
    }
    let lock = RunLock::acquire(dir)?;
    let mut session = Session::build(dir, device.clone())?;
    check_before_step_one(&session)?;
    let state = checkpoint::load(dir, session.method.as_mut(), device, true)?;
    checkpoint::tidy(dir)?;
    if let Some(mut given) = exp {
        let steps = given.train.steps;
        given.train.steps = session.exp.train.steps;
        if given.to_ron()? != session.exp.to_ron()? {
            log::warn!(
                "the given config differs from {} beyond train.steps; the run's own config is used",
                dir.join(CONFIG_FILE).display()
            );
        }
        if steps != session.exp.train.steps {
            session.exp.train.steps = steps;
            if state.step <= steps {
                write_atomic(&dir.join(CONFIG_FILE), session.exp.to_ron()?.as_bytes())?;
            }
        }
    }
    let steps = session.exp.train.steps;
    if state.step > steps {
        return Err(Error::msg(format!(
            "{}: the run is already at step {}, past train.steps = {steps}; a run cannot be shortened \
             (give train.steps >= {}, or evaluate the run as it is)",
            dir.display(),
            state.step,
            state.step
        )));
    }
    if state.step == steps {
        log::info!(
            "{} is already at step {steps}: nothing to train; redoing its figures, evaluation and summary",
            dir.display()
        );
    } else {
        log::info!("resuming {} at step {}", dir.display(), state.step);
    }
    Ok(Start {
        session,
        state: Some(state),
        _lock: lock,
    })
}

/// Creates and locks the run directory of a new run of `exp`.
fn start_new(exp: Experiment, opts: &TrainOptions) -> Result<Start> {
    run_dir::check_run_name(&exp.name)?;
    let dir = opts
        .out_dir
        .clone()
        .unwrap_or_else(|| default_run_dir(&exp.name));
    // Built and checked before anything is written, so a config its data cannot train leaves no folder.
    let session = Session::new(exp, opts.device.clone(), dir.clone())?;
    check_before_step_one(&session)?;
    std::fs::create_dir_all(&dir).at(&dir)?;
    let lock = RunLock::acquire(&dir)?;
    run_dir::prepare_new_run(&dir, opts.overwrite)?;
    std::fs::create_dir_all(dir.join("figures")).at(&dir)?;
    write_atomic(&dir.join(CONFIG_FILE), session.exp.to_ron()?.as_bytes())?;
    Ok(Start {
        session,
        state: None,
        _lock: lock,
    })
}

/// The config against its data, method and metrics: splits, batch size, each metric's needs.
fn check_before_step_one(session: &Session) -> Result<()> {
    crate::config::check_run(
        &session.exp,
        session.data.as_ref(),
        session.method.as_ref(),
        &session.device,
    )
}

/// The error of a run whose state was last known finite at step `kept_step` (its newest checkpoint) and went
/// non-finite by step `last`, saying which checkpoint survives.
fn diverged(run_dir: &Path, kept_step: usize, last: usize, cause: String) -> Error {
    let kept = match checkpoint::find(run_dir) {
        Some(dir) => format!(
            "the last checkpoint, at step {kept_step}, is finite and kept in {}",
            dir.display()
        ),
        None => "no checkpoint had been written yet".to_string(),
    };
    Error::Diverged {
        first: kept_step + 1,
        last,
        cause,
        kept,
    }
}

/// Trains `exp` (or resumes `opts.resume`) to `exp.train.steps`; returns the run directory.
///
/// The run directory is locked for the whole call. Parameters and optimizer state are checked finite at
/// every checkpoint (and so before the final figures and evaluation); a non-finite loss or state stops the
/// run with [`Error::Diverged`] and leaves the last finite checkpoint in place.
pub fn train(exp: Option<Experiment>, opts: TrainOptions) -> Result<PathBuf> {
    crate::runtime::init_cpu();
    let Start {
        mut session,
        state,
        _lock,
    } = match &opts.resume {
        Some(dir) => {
            if opts.overwrite {
                return Err(Error::msg(
                    "overwrite replaces a run and resume continues one: give only one of them",
                ));
            }
            resume(dir, exp, &opts.device)?
        }
        None => start_new(
            exp.ok_or_else(|| Error::msg("train needs a config or --resume RUN_DIR"))?,
            &opts,
        )?,
    };
    let tc = session.exp.train.clone();
    let (first_step, mut rng, prior_seconds, prior_samples) = match state {
        Some(s) => (s.step, s.rng, s.train_seconds, s.samples),
        None => (0, Rng::derived(tc.seed, 1), 0.0, 0),
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
    let mut trained_samples = prior_samples;
    let mut last_report = StepReport::default();
    // The step of the newest checkpoint, whose parameters and optimizer state are known to be finite.
    let mut finite_at = first_step;
    // Training time of the run up to its newest checkpoint: what the summary reports, so that a resumed run,
    // which starts from the checkpoint's time, never reports less than the session before it.
    let mut wall = prior_seconds;

    for step in first_step..tc.steps {
        let done = step + 1;
        session.method.set_lr_scale(tc.lr_schedule.scale(step));
        let rows = sampler.batch(step);
        // With the step, data that redraw per step (MNIST's dynamic binarisation) resume identically.
        let (data, device) = (session.data.as_ref(), &session.device);
        let batch = make_batch_at(data, rows, step, device, &mut scratch)?;
        let report = match session.method.train_step(&batch, step, &mut rng) {
            Err(Error::NonFinite { term, value, .. }) => {
                let cause = format!("the loss term `{term}` is {value} at step {done}");
                return Err(diverged(&session.run_dir, finite_at, done, cause));
            }
            other => other?,
        };
        window.1 += rows.len();
        trained_samples += rows.len() as u64;
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
        checkpoint::fault::kill_point("step", done);
        if done % tc.checkpoint_every.max(1) == 0 || done == tc.steps {
            let state = TrainState {
                step: done,
                rng: rng.clone(),
                train_seconds: prior_seconds + t_start.elapsed().as_secs_f64(),
                samples: trained_samples,
            };
            match checkpoint::save(&session.run_dir, session.method.as_ref(), &state) {
                Err(e @ Error::NonFiniteState { .. }) => {
                    let cause = format!("after the update of step {done}, {e}");
                    return Err(diverged(&session.run_dir, finite_at, done, cause));
                }
                other => other?,
            }
            finite_at = done;
            wall = state.train_seconds;
        }
    }
    bar.finish_and_clear();
    let session_seconds = t_start.elapsed().as_secs_f64();
    log::info!(
        "trained {} steps in {:.1}s; last: {}",
        tc.steps - first_step,
        session_seconds,
        format_terms(&last_report)
    );

    session.write_figures()?;
    let eval = &session.exp.eval;
    let scores = crate::eval::evaluate(
        &session.eval_context(),
        &eval.metrics,
        eval.split,
        eval.max_samples,
    )?;
    let summary = json!({
        "steps": tc.steps,
        // Training time over every session of the run, each counted up to its last checkpoint.
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
    if kept.len() == text.len() {
        return Ok(());
    }
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

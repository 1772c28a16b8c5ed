//! One run of a sweep, in this process: what `carve sweep SWEEP --run-index I` does, whether a local sweep or
//! a Slurm array task started it. A finished run is skipped; an interrupted one resumes from its checkpoint.

use super::manifest::{self, Manifest, Status, RUNS_DIR};
use super::spec::Sweep;
use crate::config::Experiment;
use crate::error::{Error, Result};
use crate::train::{self, TrainOptions, CONFIG_FILE, SUMMARY_FILE};
use candle_core::Device;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What became of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Trained,
    /// Already finished: its summary covers the configured steps.
    Skipped,
}

/// The directory of the run named `name` in the sweep folder `out`.
pub fn run_dir(out: &Path, name: &str) -> PathBuf {
    out.join(RUNS_DIR).join(name)
}

/// Whether `dir` holds a finished run of at least `steps` steps.
pub fn is_finished(dir: &Path, steps: usize) -> bool {
    std::fs::read_to_string(dir.join(SUMMARY_FILE))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["steps"].as_u64())
        .is_some_and(|s| s as usize >= steps)
}

/// Trains run `index` of `sweep` into its directory under `out`, recording its status in the manifest.
pub fn run_one(
    sweep: &Sweep,
    out: &Path,
    index: usize,
    device: Device,
    progress: bool,
) -> Result<Outcome> {
    let run = sweep.run(index)?;
    Manifest::open(out, sweep)?;
    let exp = sweep.experiment(run)?;
    let dir = run_dir(out, &run.name);
    if let Err(e) = check_same_config(&dir, &exp) {
        manifest::set_status(out, sweep, index, Status::Failed, Some(e.to_string()), None)?;
        return Err(e);
    }
    if is_finished(&dir, exp.train.steps) {
        manifest::set_status(out, sweep, index, Status::Done, None, None)?;
        return Ok(Outcome::Skipped);
    }
    manifest::set_status(out, sweep, index, Status::Running, None, None)?;
    let started = Instant::now();
    let interrupted = train::checkpoint::find(&dir).is_some();
    let opts = TrainOptions {
        out_dir: (!interrupted).then(|| dir.clone()),
        resume: interrupted.then(|| dir.clone()),
        // A run killed before its first checkpoint left a config and log but nothing to resume: start over.
        overwrite: !interrupted,
        device,
        progress,
    };
    match train::train(Some(exp), opts) {
        Ok(_) => {
            let seconds = Some(started.elapsed().as_secs_f64());
            manifest::set_status(out, sweep, index, Status::Done, None, seconds)?;
            Ok(Outcome::Trained)
        }
        Err(e) => {
            let seconds = Some(started.elapsed().as_secs_f64());
            manifest::set_status(
                out,
                sweep,
                index,
                Status::Failed,
                Some(e.to_string()),
                seconds,
            )?;
            Err(e)
        }
    }
}

/// A run directory left by an earlier version of the sweep (its base config edited since) must not pass as
/// this sweep's run: its saved config has to match the one the sweep gives now, step budget aside.
fn check_same_config(dir: &Path, exp: &Experiment) -> Result<()> {
    let saved = dir.join(CONFIG_FILE);
    let Ok(text) = std::fs::read_to_string(&saved) else {
        return Ok(());
    };
    let mut then = Experiment::parse(&text, &saved.display().to_string(), &[])?;
    then.train.steps = exp.train.steps;
    if then.to_ron()? == exp.to_ron()? {
        return Ok(());
    }
    Err(Error::msg(format!(
        "{}: holds a run of another config than the sweep gives now (its base config or sweep file changed \
         since): move the run away to train it afresh, or write the sweep to another --out",
        dir.display()
    )))
}

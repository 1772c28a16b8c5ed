//! Sweeps: a base config × a grid (and/or zip) of overrides × seeds, one run directory per run.
//!
//! ```text
//! OUT/sweep.json              every run: index, name, overrides, status, exit reason, Slurm task
//! OUT/runs/<run name>/        a run directory (config.ron, checkpoint/, summary.json, ...) and its carve.log
//! OUT/slurm/array-N.sbatch    the job arrays submitted; Slurm's own output in OUT/slurm/<job>_<task>.out
//! OUT/oracle/                 the intervention metric's factor regressor, trained once for all runs
//! ```
//!
//! Every run, local or on Slurm, is `carve sweep SWEEP --run-index I` ([`run_one`]): a finished run is
//! skipped, an interrupted one resumes from its checkpoint, so a sweep is resumable by running it again.

pub mod local;
pub mod manifest;
mod names;
pub mod run_one;
pub mod slurm;
mod spec;

pub use local::{run_local, LocalOptions, Tally};
pub use manifest::{Manifest, RunEntry, Status};
pub use run_one::{run_one, Outcome};
pub use slurm::{submit, SlurmOptions};
pub use spec::{Axis, RunSpec, Sweep};

use crate::error::{Error, Result};
use crate::train::{RunLock, Session};
use candle_core::Device;
use std::path::{Path, PathBuf};

/// The runs' shared cache of the intervention metric's factor regressor, in the sweep's folder.
pub const ORACLE_DIR: &str = "oracle";

/// The default folder of a sweep: `runs/<sweep name>`.
pub fn default_out(sweep: &Sweep) -> PathBuf {
    PathBuf::from("runs").join(&sweep.name)
}

/// `K/N` (1 ≤ K ≤ N): the K-th of N contiguous slices of the run indices.
pub fn shard(spec: &str, runs: usize) -> Result<Vec<usize>> {
    let bad = || {
        Error::msg(format!(
            "--shard {spec}: expected K/N with 1 <= K <= N, e.g. --shard 2/4"
        ))
    };
    let (k, n) = spec.split_once('/').ok_or_else(bad)?;
    let (k, n): (usize, usize) = (
        k.trim().parse().map_err(|_| bad())?,
        n.trim().parse().map_err(|_| bad())?,
    );
    if k == 0 || k > n {
        return Err(bad());
    }
    Ok(((k - 1) * runs / n..k * runs / n).collect())
}

/// Builds every distinct configuration of `indices` (seeds aside) with its data and model, and checks it as
/// training would before step 1: splits, batch size, and that the data and model give what each metric
/// reads. So a sweep whose metric the data cannot support fails before any run starts.
pub fn check_runs(sweep: &Sweep, indices: &[usize], device: &Device) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    for &i in indices {
        let run = sweep.run(i)?;
        let mut exp = sweep.experiment(run)?;
        let seed = exp.train.seed;
        exp.train.seed = 0;
        exp.name = String::new();
        if !seen.insert(exp.to_ron()?) {
            continue;
        }
        exp.train.seed = seed;
        let session = Session::new(exp, device.clone(), PathBuf::new())?;
        crate::config::check_run(
            &session.exp,
            session.data.as_ref(),
            session.method.as_ref(),
            device,
        )
        .map_err(|e| Error::msg(format!("run {i} (`{}`): {e}", run.name)))?;
    }
    Ok(())
}

/// A table of the runs: index, name, status (with Slurm's state where a task was submitted), and the exit
/// reason of failed runs.
pub fn status_table(sweep: &Sweep, out: &Path) -> Result<String> {
    let manifest = Manifest::read(out)?;
    let states = manifest
        .as_ref()
        .map(slurm::task_states)
        .unwrap_or_default();
    let width = sweep
        .runs
        .iter()
        .map(|r| r.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut text = format!(
        "{:>5}  {:<width$}  {:<8}  slurm\n",
        "index", "run", "status"
    );
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for run in &sweep.runs {
        let entry = manifest.as_ref().and_then(|m| m.runs.get(run.index));
        let mut status = entry.map_or(Status::Pending, |e| e.status);
        let task = states.get(&run.index);
        // A task Slurm ended (time limit, memory, a signal) before carve could record it.
        let killed = matches!(status, Status::Queued | Status::Running)
            && task.is_some_and(|t| t.is_failure());
        if killed {
            status = Status::Failed;
        }
        let mut status = format!("{status:?}").to_lowercase();
        // "running" with nobody holding the run's lock: its process died (a local sweep stopped by Ctrl-C).
        let dir = out.join(manifest::RUNS_DIR).join(&run.name);
        if status == "running" && task.is_none() && dir.is_dir() && RunLock::acquire(&dir).is_ok() {
            status = "stopped".into();
        }
        *counts.entry(status.clone()).or_default() += 1;
        let slurm = match (entry.and_then(|e| e.slurm_job.as_ref()), task) {
            (Some(id), Some(s)) if s.exit_code.is_empty() => format!("{id} {}", s.state),
            (Some(id), Some(s)) => format!("{id} {} (exit {})", s.state, s.exit_code),
            (Some(id), None) => format!("{id} (unknown to Slurm here)"),
            (None, _) => String::new(),
        };
        text += &format!(
            "{:>5}  {:<width$}  {status:<8}  {slurm}\n",
            run.index, run.name
        );
        let exit = match entry.and_then(|e| e.exit.clone()) {
            Some(exit) => Some(exit),
            None if killed => {
                Some("ended by Slurm before carve could record why (see its state)".into())
            }
            None => None,
        };
        if let Some(exit) = exit {
            text += &format!("{:>5}  {:<width$}  └ {}\n", "", "", first_line(&exit));
        }
    }
    let counts: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
    text += &format!("{} runs: {}\n", sweep.runs.len(), counts.join(", "));
    Ok(text)
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_every_run_once() {
        let all: Vec<usize> = (1..=3)
            .flat_map(|k| shard(&format!("{k}/3"), 8).unwrap())
            .collect();
        assert_eq!(all, (0..8).collect::<Vec<_>>());
        assert_eq!(shard("1/1", 5).unwrap(), vec![0, 1, 2, 3, 4]);
        for bad in ["0/2", "3/2", "x/2", "2"] {
            assert!(
                shard(bad, 4).unwrap_err().to_string().contains("K/N"),
                "{bad}"
            );
        }
    }
}

//! `sweep.json`: every run of a sweep with its overrides, status and exit reason, and the Slurm jobs that ran
//! them. Several processes update it (a local sweep's runs, a job array's tasks): each change is a
//! read-modify-write under an exclusive lock on `sweep.lock`, written atomically.

use super::spec::{RunSpec, Sweep};
use crate::error::{Error, IoContext, Result};
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

pub const MANIFEST_FILE: &str = "sweep.json";
const LOCK_FILE: &str = "sweep.lock";
/// Run directories live under `<out>/runs/`.
pub const RUNS_DIR: &str = "runs";

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Pending,
    /// Submitted to Slurm, not started yet.
    Queued,
    Running,
    Done,
    Failed,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RunEntry {
    pub index: usize,
    pub name: String,
    /// The run directory, relative to the sweep's folder.
    pub dir: PathBuf,
    pub overrides: Vec<String>,
    pub status: Status,
    /// Why the run stopped, when it failed (the error, or the signal or exit status of its process).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit: Option<String>,
    /// Training and evaluation time of the last attempt, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
    /// The Slurm array task (`<job>_<index>`) of the last submission.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slurm_job: Option<String>,
}

/// One `sbatch` of the sweep.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Submission {
    pub job_id: String,
    /// The array indices, as given to `--array`.
    pub array: String,
    pub script: PathBuf,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub sweep: String,
    pub file: PathBuf,
    pub base: PathBuf,
    /// The overrides of every run.
    pub set: Vec<String>,
    pub runs: Vec<RunEntry>,
    #[serde(default)]
    pub slurm: Vec<Submission>,
}

impl Manifest {
    fn fresh(sweep: &Sweep) -> Self {
        Self {
            sweep: sweep.name.clone(),
            file: sweep.file.clone(),
            base: sweep.base.clone(),
            set: sweep.set.clone(),
            runs: sweep.runs.iter().map(entry).collect(),
            slurm: Vec::new(),
        }
    }

    pub fn path(out: &Path) -> PathBuf {
        out.join(MANIFEST_FILE)
    }

    /// The manifest in `out`, if there is one.
    pub fn read(out: &Path) -> Result<Option<Self>> {
        let path = Self::path(out);
        if !path.is_file() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path).at(&path)?;
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| Error::Data(format!("{}: not a sweep manifest ({e})", path.display())))
    }

    /// Creates `out` and its manifest for `sweep`, or checks that the one there was written for the same runs
    /// (a sweep file edited since would give an index another run's meaning).
    pub fn open(out: &Path, sweep: &Sweep) -> Result<Self> {
        std::fs::create_dir_all(out.join(RUNS_DIR)).at(out)?;
        update(out, sweep, |_| Ok(()))
    }
}

fn entry(run: &RunSpec) -> RunEntry {
    RunEntry {
        index: run.index,
        name: run.name.clone(),
        dir: PathBuf::from(RUNS_DIR).join(&run.name),
        overrides: run.overrides.clone(),
        status: Status::Pending,
        exit: None,
        seconds: None,
        slurm_job: None,
    }
}

/// Applies `change` to the manifest in `out` (created for `sweep` if missing) under the lock, and writes it.
pub fn update<T>(
    out: &Path,
    sweep: &Sweep,
    change: impl FnOnce(&mut Manifest) -> Result<T>,
) -> Result<Manifest> {
    let _lock = lock(out)?;
    let mut manifest = match Manifest::read(out)? {
        Some(m) => {
            check_same_runs(&m, sweep, out)?;
            m
        }
        None => Manifest::fresh(sweep),
    };
    change(&mut manifest)?;
    let text = serde_json::to_string_pretty(&manifest).expect("json");
    crate::train::write_atomic(&Manifest::path(out), text.as_bytes())?;
    Ok(manifest)
}

/// Sets the status (and exit reason, time) of run `index`.
pub fn set_status(
    out: &Path,
    sweep: &Sweep,
    index: usize,
    status: Status,
    exit: Option<String>,
    seconds: Option<f64>,
) -> Result<()> {
    update(out, sweep, |m| {
        let e = &mut m.runs[index];
        e.status = status;
        e.exit = exit;
        if seconds.is_some() {
            e.seconds = seconds;
        }
        Ok(())
    })
    .map(|_| ())
}

fn check_same_runs(m: &Manifest, sweep: &Sweep, out: &Path) -> Result<()> {
    let now: Vec<(&str, &[String])> = sweep
        .runs
        .iter()
        .map(|r| (r.name.as_str(), r.overrides.as_slice()))
        .collect();
    let then: Vec<(&str, &[String])> = m
        .runs
        .iter()
        .map(|r| (r.name.as_str(), r.overrides.as_slice()))
        .collect();
    if now == then {
        return Ok(());
    }
    let differ = now
        .iter()
        .zip(&then)
        .position(|(a, b)| a != b)
        .unwrap_or(now.len().min(then.len()));
    Err(Error::msg(format!(
        "{}: written for other runs than {} now expands to ({} then, {} now; they first differ at index {differ}). \
         The sweep file changed since: write to another --out, or move the old folder away",
        Manifest::path(out).display(),
        sweep.file.display(),
        then.len(),
        now.len()
    )))
}

/// The exclusive lock on the manifest; released when dropped or when the process dies.
fn lock(out: &Path) -> Result<File> {
    std::fs::create_dir_all(out).at(out)?;
    let path = out.join(LOCK_FILE);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .at(&path)?;
    file.lock().map_err(|e| Error::io(&path, e))?;
    Ok(file)
}

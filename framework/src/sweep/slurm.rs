//! A sweep as a Slurm job array: one array task per run, each calling `carve sweep SWEEP --run-index
//! $SLURM_ARRAY_TASK_ID` with the thread count Slurm gave it. `sacct` (with `squeue` for live tasks) tells
//! what became of each task; failed indices can be submitted again.

use super::manifest::{self, Manifest, Status, Submission};
use super::spec::Sweep;
use crate::error::{Error, IoContext, Result};
use crate::oracle::SWEEP_CACHE_ENV;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where a sweep's scripts and Slurm's own output files go.
pub const SLURM_DIR: &str = "slurm";

#[derive(Clone, Debug, Default)]
pub struct SlurmOptions {
    pub partition: Option<String>,
    /// `--time`, e.g. `02:00:00`.
    pub time: Option<String>,
    pub cpus_per_task: usize,
    /// `--gpus` per task.
    pub gpus: Option<String>,
    /// At most this many tasks at once (`--array=...%N`).
    pub array_parallelism: Option<usize>,
    /// `--device` of each run.
    pub device: String,
    /// The `carve` binary the tasks run.
    pub exe: PathBuf,
    /// Write the script, don't submit it.
    pub emit_only: bool,
    /// Submit only the runs that failed (in the manifest or in Slurm's accounting).
    pub rerun_failed: bool,
    /// The run indices to consider (a shard, or all).
    pub indices: Vec<usize>,
}

/// A written (and maybe submitted) array.
#[derive(Debug)]
pub struct Submitted {
    pub script: PathBuf,
    pub array: String,
    /// `None` with `emit_only`.
    pub job_id: Option<String>,
}

/// Writes the array script for the runs to do and, unless `emit_only`, submits it with `sbatch`.
pub fn submit(sweep: &Sweep, out: &Path, opts: &SlurmOptions) -> Result<Option<Submitted>> {
    let manifest = Manifest::open(out, sweep)?;
    let states = task_states(&manifest);
    let live: Vec<usize> = opts
        .indices
        .iter()
        .copied()
        .filter(|&i| states.get(&i).is_some_and(|s| s.is_live()))
        .collect();
    let todo: Vec<usize> = opts
        .indices
        .iter()
        .copied()
        .filter(|i| !live.contains(i))
        .filter(|&i| {
            let e = &manifest.runs[i];
            let failed_in_slurm = states.get(&i).is_some_and(|s| s.is_failure());
            if opts.rerun_failed {
                e.status == Status::Failed || (failed_in_slurm && e.status != Status::Done)
            } else {
                e.status != Status::Done
            }
        })
        .collect();
    if !live.is_empty() && !todo.is_empty() {
        return Err(Error::msg(format!(
            "runs {} are still queued or running in Slurm: wait for them (carve sweep {} --status) or scancel them",
            ranges(&live),
            sweep.file.display()
        )));
    }
    if todo.is_empty() {
        return Ok(None);
    }
    let slurm_dir = out.join(SLURM_DIR);
    std::fs::create_dir_all(&slurm_dir).at(&slurm_dir)?;
    let mut array = ranges(&todo);
    if let Some(p) = opts.array_parallelism {
        array.push_str(&format!("%{p}"));
    }
    let script_path = slurm_dir.join(format!("array-{}.sbatch", manifest.slurm.len() + 1));
    let text = script(sweep, out, &array, opts)?;
    crate::train::write_atomic(&script_path, text.as_bytes())?;
    if opts.emit_only {
        return Ok(Some(Submitted {
            script: script_path,
            array,
            job_id: None,
        }));
    }
    let job_id = sbatch(&script_path)?;
    manifest::update(out, sweep, |m| {
        for &i in &todo {
            let e = &mut m.runs[i];
            e.status = Status::Queued;
            e.exit = None;
            e.slurm_job = Some(format!("{job_id}_{i}"));
        }
        m.slurm.push(Submission {
            job_id: job_id.clone(),
            array: array.clone(),
            script: script_path.clone(),
        });
        Ok(())
    })?;
    Ok(Some(Submitted {
        script: script_path,
        array,
        job_id: Some(job_id),
    }))
}

/// The sbatch script: absolute paths throughout, since the tasks may start elsewhere.
fn script(sweep: &Sweep, out: &Path, array: &str, opts: &SlurmOptions) -> Result<String> {
    let abs = |p: &Path| -> Result<PathBuf> { std::path::absolute(p).at(p) };
    let out_abs = abs(out)?;
    let quote = |p: &Path| shell_quote(&p.display().to_string());
    let mut s = String::from("#!/bin/bash\n");
    s += &format!("#SBATCH --job-name=carve-{}\n", sweep.name);
    s += &format!("#SBATCH --array={array}\n");
    s += &format!("#SBATCH --cpus-per-task={}\n", opts.cpus_per_task.max(1));
    s += &format!(
        "#SBATCH --output={}\n",
        out_abs.join(SLURM_DIR).join("%A_%a.out").display()
    );
    if let Some(p) = &opts.partition {
        s += &format!("#SBATCH --partition={p}\n");
    }
    if let Some(t) = &opts.time {
        s += &format!("#SBATCH --time={t}\n");
    }
    if let Some(g) = &opts.gpus {
        s += &format!("#SBATCH --gpus={g}\n");
    }
    s += "set -euo pipefail\n";
    s += &format!(
        "# Written by carve for the sweep {}; task i trains run i.\n",
        sweep.file.display()
    );
    s += "RUNS=(\n";
    for r in &sweep.runs {
        s += &format!("  {}\n", shell_quote(&r.name));
    }
    s += ")\n";
    s += &format!("cd {}\n", quote(&abs(Path::new("."))?));
    let runs = out_abs.join(super::manifest::RUNS_DIR);
    s += &format!(
        "dir={}/\"${{RUNS[$SLURM_ARRAY_TASK_ID]}}\"\nmkdir -p \"$dir\"\n",
        quote(&runs)
    );
    s += "export RAYON_NUM_THREADS=\"${SLURM_CPUS_PER_TASK:-1}\"\n";
    s += &format!(
        "export {SWEEP_CACHE_ENV}={}\n",
        quote(&out_abs.join(super::ORACLE_DIR))
    );
    let set: String = sweep
        .extra_set
        .iter()
        .map(|o| format!(" --set {}", shell_quote(o)))
        .collect();
    s += &format!(
        "exec {} sweep {}{set} --out {} --run-index \"$SLURM_ARRAY_TASK_ID\" --threads \"$RAYON_NUM_THREADS\" \
         --device {} --quiet >>\"$dir/{}\" 2>&1\n",
        quote(&abs(&opts.exe)?),
        quote(&abs(&sweep.file)?),
        quote(&out_abs),
        shell_quote(&opts.device),
        super::local::LOG_FILE
    );
    Ok(s)
}

fn sbatch(script: &Path) -> Result<String> {
    let output = Command::new("sbatch")
        .arg("--parsable")
        .arg(script)
        .output()
        .map_err(|e| {
            Error::msg(format!(
                "running sbatch: {e} (is Slurm installed here? --emit-only writes the script without submitting)"
            ))
        })?;
    if !output.status.success() {
        return Err(Error::msg(format!(
            "sbatch {} failed: {}",
            script.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    // `--parsable` prints `jobid` or `jobid;cluster`.
    let text = String::from_utf8_lossy(&output.stdout);
    let id = text.trim().split(';').next().unwrap_or("").to_string();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        return Err(Error::msg(format!(
            "sbatch printed no job id: `{}`",
            text.trim()
        )));
    }
    Ok(id)
}

/// A Slurm task's state, as `sacct` or `squeue` say it (`COMPLETED`, `FAILED`, `TIMEOUT`, `PENDING`, ...), and
/// its exit code.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskState {
    pub state: String,
    pub exit_code: String,
}

impl TaskState {
    pub fn is_live(&self) -> bool {
        matches!(
            self.state.as_str(),
            "PENDING"
                | "RUNNING"
                | "CONFIGURING"
                | "COMPLETING"
                | "REQUEUED"
                | "RESIZING"
                | "SUSPENDED"
        )
    }

    pub fn is_failure(&self) -> bool {
        !self.is_live() && self.state != "COMPLETED"
    }
}

/// The newest Slurm state of each run index that was submitted, keyed by index. Empty when Slurm cannot be
/// asked (not installed here, or no job recorded).
pub fn task_states(manifest: &Manifest) -> BTreeMap<usize, TaskState> {
    let jobs: Vec<&str> = manifest.slurm.iter().map(|s| s.job_id.as_str()).collect();
    let mut by_task: BTreeMap<String, TaskState> = BTreeMap::new();
    if jobs.is_empty() {
        return BTreeMap::new();
    }
    let list = jobs.join(",");
    // Finished tasks from accounting; tasks still queued or running from the controller, which knows best.
    let sacct = query(
        "sacct",
        &[
            "-j",
            &list,
            "-X",
            "-n",
            "-P",
            "--format=JobID,State,ExitCode",
        ],
    );
    for line in sacct.lines() {
        let f: Vec<&str> = line.split('|').collect();
        if f.len() >= 3 {
            by_task.insert(f[0].to_string(), task_state(f[1], f[2]));
        }
    }
    for line in query("squeue", &["-h", "-r", "-j", &list, "-o", "%i|%T"]).lines() {
        if let Some((id, state)) = line.split_once('|') {
            by_task.insert(id.to_string(), task_state(state, ""));
        }
    }
    manifest
        .runs
        .iter()
        .filter_map(|e| {
            let id = e.slurm_job.as_ref()?;
            Some((e.index, by_task.get(id)?.clone()))
        })
        .collect()
}

/// `CANCELLED by 0` → `CANCELLED`.
fn task_state(state: &str, exit_code: &str) -> TaskState {
    TaskState {
        state: state.split_whitespace().next().unwrap_or("").to_string(),
        exit_code: exit_code.to_string(),
    }
}

/// A command's stdout, or nothing if it cannot run or fails (Slurm's state is then unknown, not an error).
fn query(program: &str, args: &[&str]) -> String {
    match Command::new(program).args(args).output() {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
        _ => String::new(),
    }
}

/// Sorted indices as Slurm's `--array` list: `0-3,5,7-8`.
pub fn ranges(indices: &[usize]) -> String {
    let mut sorted = indices.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let mut j = i;
        while j + 1 < sorted.len() && sorted[j + 1] == sorted[j] + 1 {
            j += 1;
        }
        parts.push(if i == j {
            sorted[i].to_string()
        } else {
            format!("{}-{}", sorted[i], sorted[j])
        });
        i = j + 1;
    }
    parts.join(",")
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-+/=:,@%".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_lists_fold_runs_of_indices() {
        assert_eq!(ranges(&[0, 1, 2, 3]), "0-3");
        assert_eq!(ranges(&[7, 0, 1, 5, 8, 3, 2]), "0-3,5,7-8");
        assert_eq!(ranges(&[4]), "4");
    }

    #[test]
    fn states_tell_live_from_failed() {
        assert!(task_state("PENDING", "").is_live());
        assert!(task_state("CANCELLED by 0", "0:15").is_failure());
        assert!(task_state("TIMEOUT", "0:0").is_failure());
        assert!(!task_state("COMPLETED", "0:0").is_failure());
    }

    #[test]
    fn shell_words_are_quoted_only_when_needed() {
        assert_eq!(shell_quote("beta=4_seed=1"), "beta=4_seed=1");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}

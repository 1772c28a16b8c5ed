//! A sweep on this machine: up to `jobs` runs at a time, each a child process (`carve sweep SWEEP --run-index
//! I`) with its thread count pinned, its output in `RUN_DIR/carve.log`. A failed run is reported and the others
//! go on. Progress: a line per active run (step/total, samples/s, ETA) under a total bar, read from each run's
//! `metrics.jsonl`.

use super::manifest::{self, Manifest, Status};
use super::run_one::{is_finished, run_dir};
use super::spec::Sweep;
use super::ORACLE_DIR;
use crate::error::{Error, IoContext, Result};
use crate::oracle::SWEEP_CACHE_ENV;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The log of a run's process, in its run directory.
pub const LOG_FILE: &str = "carve.log";

pub struct LocalOptions {
    /// Runs at a time.
    pub jobs: usize,
    /// CPU threads of each run.
    pub threads: usize,
    /// The `carve` binary that runs each run (the one running now, so a plugin's binary runs its own parts).
    pub exe: PathBuf,
    /// `--device` of each run.
    pub device: String,
    /// The run indices to do (a shard, or all).
    pub indices: Vec<usize>,
    /// No bars: one line per finished run.
    pub quiet: bool,
}

/// How a local sweep ended.
#[derive(Debug, Default)]
pub struct Tally {
    pub trained: usize,
    pub skipped: usize,
    /// Name and reason of each failed run.
    pub failed: Vec<(String, String)>,
}

struct Active {
    index: usize,
    child: Child,
    bar: ProgressBar,
    metrics: PathBuf,
    started: Instant,
    /// The first step this process logged, and when it was seen: the rate for the ETA counts from there (a
    /// resumed run starts past step 0).
    first: Option<(u64, Instant)>,
}

pub fn run_local(sweep: &Sweep, out: &Path, opts: &LocalOptions) -> Result<Tally> {
    Manifest::open(out, sweep)?;
    let mut tally = Tally::default();
    let mut todo = Vec::new();
    for &i in &opts.indices {
        let run = sweep.run(i)?;
        let steps = sweep.experiment(run)?.train.steps;
        if is_finished(&run_dir(out, &run.name), steps) {
            manifest::set_status(out, sweep, i, Status::Done, None, None)?;
            tally.skipped += 1;
        } else {
            todo.push((i, steps));
        }
    }
    let multi = MultiProgress::with_draw_target(if opts.quiet {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    });
    let say = |line: String| {
        if multi.is_hidden() {
            eprintln!("{line}");
        } else {
            let _ = multi.println(line);
        }
    };
    if tally.skipped > 0 {
        say(format!(
            "{}: {} of {} runs already finished, skipped",
            sweep.name,
            tally.skipped,
            opts.indices.len()
        ));
    }
    let total = multi.add(ProgressBar::new(todo.len() as u64));
    total.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} runs  {msg}  {elapsed}")
            .expect("template")
            .progress_chars("=> "),
    );
    total.set_prefix(format!("sweep {}", sweep.name));
    let run_style = ProgressStyle::with_template("  {prefix:32!} [{bar:20}] {pos}/{len} {msg}")
        .expect("template")
        .progress_chars("=> ");

    let mut queue = todo.into_iter();
    let mut active: Vec<Active> = Vec::new();
    loop {
        while active.len() < opts.jobs.max(1) {
            let Some((index, steps)) = queue.next() else {
                break;
            };
            let name = &sweep.runs[index].name;
            let dir = run_dir(out, name);
            let child = spawn(sweep, out, index, &dir, opts)?;
            let bar = multi.insert_before(&total, ProgressBar::new(steps as u64));
            bar.set_style(run_style.clone());
            bar.set_prefix(name.clone());
            active.push(Active {
                index,
                child,
                bar,
                metrics: dir.join(crate::train::METRICS_FILE),
                started: Instant::now(),
                first: None,
            });
        }
        if active.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
        let mut still = Vec::new();
        for mut a in active {
            let name = sweep.runs[a.index].name.clone();
            match a.child.try_wait().at(&opts.exe)? {
                None => {
                    show_progress(&mut a);
                    still.push(a);
                }
                Some(status) => {
                    a.bar.finish_and_clear();
                    multi.remove(&a.bar);
                    total.inc(1);
                    let secs = a.started.elapsed().as_secs_f64();
                    if status.success() {
                        tally.trained += 1;
                        say(format!("done    {name} ({secs:.0} s)"));
                    } else {
                        let reason = failure_reason(out, sweep, a.index, status)?;
                        say(format!(
                            "FAILED  {name} ({secs:.0} s): {reason} (log: {})",
                            run_dir(out, &name).join(LOG_FILE).display()
                        ));
                        tally.failed.push((name, reason));
                    }
                    if !tally.failed.is_empty() {
                        total.set_message(format!("{} failed", tally.failed.len()));
                    }
                }
            }
        }
        active = still;
    }
    total.finish_and_clear();
    Ok(tally)
}

fn spawn(
    sweep: &Sweep,
    out: &Path,
    index: usize,
    dir: &Path,
    opts: &LocalOptions,
) -> Result<Child> {
    std::fs::create_dir_all(dir).at(dir)?;
    let log_path = dir.join(LOG_FILE);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .at(&log_path)?;
    let err_log = log.try_clone().at(&log_path)?;
    Command::new(&opts.exe)
        .arg("sweep")
        .arg(&sweep.file)
        .arg("--out")
        .arg(out)
        .args(sweep.extra_set.iter().flat_map(|s| ["--set", s]))
        .args(["--run-index", &index.to_string()])
        .args(["--threads", &opts.threads.to_string()])
        .args(["--device", &opts.device, "--quiet"])
        .env("RAYON_NUM_THREADS", opts.threads.to_string())
        .env(SWEEP_CACHE_ENV, out.join(ORACLE_DIR))
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err_log)
        .spawn()
        .map_err(|e| Error::msg(format!("starting {}: {e}", opts.exe.display())))
}

/// The reason a run's process failed: the error it recorded, or (killed before it could) how it ended, which
/// is then recorded.
fn failure_reason(
    out: &Path,
    sweep: &Sweep,
    index: usize,
    status: std::process::ExitStatus,
) -> Result<String> {
    let recorded = Manifest::read(out)?
        .and_then(|m| m.runs.get(index).cloned())
        .filter(|e| e.status == Status::Failed)
        .and_then(|e| e.exit);
    if let Some(reason) = recorded {
        return Ok(reason);
    }
    let reason = describe_exit(status);
    manifest::set_status(
        out,
        sweep,
        index,
        Status::Failed,
        Some(reason.clone()),
        None,
    )?;
    Ok(reason)
}

fn describe_exit(status: std::process::ExitStatus) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = status.signal() {
            return format!("killed by signal {sig}");
        }
    }
    match status.code() {
        Some(c) => format!("exited with status {c}"),
        None => "ended without an exit status".into(),
    }
}

/// The run's newest logged step and samples/s, from the tail of its `metrics.jsonl`.
fn show_progress(a: &mut Active) {
    let Some((step, sps)) = last_logged(&a.metrics) else {
        a.bar.set_message("starting");
        return;
    };
    a.bar.set_position(step);
    let (first, seen) = *a.first.get_or_insert((step, Instant::now()));
    let left = a.bar.length().unwrap_or(step).saturating_sub(step);
    let elapsed = seen.elapsed().as_secs_f64();
    let eta = if step > first && elapsed > 0.0 {
        let rate = (step - first) as f64 / elapsed;
        format!("  ETA {}", clock(left as f64 / rate))
    } else {
        String::new()
    };
    a.bar.set_message(format!("{sps:.0} samples/s{eta}"));
}

fn clock(secs: f64) -> String {
    let s = secs.round() as u64;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

fn last_logged(path: &Path) -> Option<(u64, f64)> {
    let mut f = std::fs::File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(4096))).ok()?;
    let mut tail = String::new();
    f.read_to_string(&mut tail).ok()?;
    tail.lines().rev().find_map(|l| {
        let v: serde_json::Value = serde_json::from_str(l).ok()?;
        Some((v["step"].as_u64()?, v["samples_per_sec"].as_f64()?))
    })
}

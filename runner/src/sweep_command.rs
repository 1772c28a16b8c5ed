//! `carve sweep`: runs a sweep here (parallel child processes) or submits it as a Slurm job array.

use anyhow::{bail, Context, Result};
use carve::sweep::{self, LocalOptions, SlurmOptions, Sweep};
use clap::Args;
use std::path::PathBuf;

#[derive(Args)]
pub struct SweepArgs {
    /// The sweep file (RON): a base config, a grid and/or zip of overrides, and seeds.
    pub sweep: PathBuf,
    /// Override a field of every run after the sweep's own `set`, e.g. --set train.steps=100 (repeatable). Give
    /// the same ones to later calls on the sweep (--status, a resume).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// The sweep's folder (default runs/<sweep name>): sweep.json, runs/<run>/, slurm/.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Runs at a time (default: CPU cores ÷ --threads).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// CPU threads of each run (default: CPU cores ÷ --jobs, or 1 when neither is given).
    #[arg(long)]
    pub threads: Option<usize>,
    /// List the runs and check every configuration against its data and metrics; train nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Do only the K-th of N contiguous slices of the runs, e.g. --shard 2/4.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<String>,
    /// Train this one run (what each local job and Slurm array task calls).
    #[arg(long, value_name = "I", conflicts_with_all = ["shard", "slurm", "status", "dry_run"])]
    pub run_index: Option<usize>,
    /// No progress bars: one line per finished run (for batch jobs).
    #[arg(long)]
    pub quiet: bool,
    /// Print each run's status, from sweep.json and (for submitted runs) sacct and squeue.
    #[arg(long, conflicts_with_all = ["slurm", "dry_run"])]
    pub status: bool,
    /// cpu, cuda or cuda:N, for every run.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Submit the runs as one Slurm job array (sbatch) instead of running them here.
    #[arg(long)]
    pub slurm: bool,
    /// Slurm partition.
    #[arg(long, requires = "slurm")]
    pub partition: Option<String>,
    /// Slurm time limit per run, e.g. 02:00:00.
    #[arg(long, requires = "slurm")]
    pub time: Option<String>,
    /// CPUs per array task (default: --threads, or 1); each run uses that many threads.
    #[arg(long, requires = "slurm")]
    pub cpus_per_task: Option<usize>,
    /// GPUs per array task (e.g. 1); give --device cuda with it.
    #[arg(long, requires = "slurm")]
    pub gpus: Option<String>,
    /// At most this many array tasks at once.
    #[arg(long, requires = "slurm")]
    pub array_parallelism: Option<usize>,
    /// Write the sbatch script without submitting it.
    #[arg(long, requires = "slurm")]
    pub emit_only: bool,
    /// Submit only the runs that failed (in sweep.json or in Slurm's accounting).
    #[arg(long, requires = "slurm")]
    pub rerun_failed: bool,
}

impl SweepArgs {
    /// The thread count this process must start its pool with: a single run's, when it is told one.
    pub fn threads_of_this_process(&self) -> Option<usize> {
        self.run_index.and(self.threads)
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

pub fn sweep(args: SweepArgs) -> Result<()> {
    for (flag, value) in [
        ("--jobs", args.jobs),
        ("--threads", args.threads),
        ("--cpus-per-task", args.cpus_per_task),
        ("--array-parallelism", args.array_parallelism),
    ] {
        if value == Some(0) {
            bail!("{flag} 0: give at least 1");
        }
    }
    let sweep = Sweep::load(&args.sweep, &args.set)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| sweep::default_out(&sweep));
    let device = carve::runtime::device(&args.device)?;
    if let Some(i) = args.run_index {
        let outcome = sweep::run_one(&sweep, &out, i, device, !args.quiet)?;
        let name = &sweep.run(i)?.name;
        match outcome {
            sweep::Outcome::Skipped => println!("{name}: already finished, skipped"),
            sweep::Outcome::Trained => println!("{name}: done"),
        }
        return Ok(());
    }
    if args.status {
        print!("{}", sweep::status_table(&sweep, &out)?);
        return Ok(());
    }
    let indices = match &args.shard {
        Some(s) => sweep::shard(s, sweep.runs.len())?,
        None => (0..sweep.runs.len()).collect(),
    };
    sweep::check_runs(&sweep, &indices, &device)?;
    if args.dry_run {
        println!("every run: {}", sweep.set.join(" "));
        for &i in &indices {
            let r = &sweep.runs[i];
            println!("{:>4}  {}  {}", i, r.name, r.overrides.join(" "));
        }
        println!(
            "{} runs checked against their data and metrics; folder {}",
            indices.len(),
            out.display()
        );
        return Ok(());
    }
    let exe = std::env::current_exe().context("finding the carve binary")?;
    if args.slurm {
        let opts = SlurmOptions {
            partition: args.partition,
            time: args.time,
            cpus_per_task: args.cpus_per_task.or(args.threads).unwrap_or(1),
            gpus: args.gpus,
            array_parallelism: args.array_parallelism,
            device: args.device,
            exe,
            emit_only: args.emit_only,
            rerun_failed: args.rerun_failed,
            indices,
        };
        match sweep::submit(&sweep, &out, &opts)? {
            None => println!(
                "nothing to submit: every run is done (carve sweep {} --status)",
                args.sweep.display()
            ),
            Some(s) => match s.job_id {
                Some(id) => println!(
                    "submitted job {id}: array {} ({}); follow it with carve sweep {} --status",
                    s.array,
                    s.script.display(),
                    args.sweep.display()
                ),
                None => println!(
                    "wrote {} (array {}); submit it with sbatch",
                    s.script.display(),
                    s.array
                ),
            },
        }
        return Ok(());
    }
    let (jobs, threads) = match (args.jobs, args.threads) {
        (Some(j), Some(t)) => (j, t),
        (Some(j), None) => (j, (cores() / j.max(1)).max(1)),
        (None, Some(t)) => ((cores() / t.max(1)).max(1), t),
        (None, None) => (cores(), 1),
    };
    let opts = LocalOptions {
        jobs,
        threads,
        exe,
        device: args.device,
        indices,
        quiet: args.quiet,
    };
    let tally = sweep::run_local(&sweep, &out, &opts)?;
    println!(
        "sweep {}: {} trained, {} already finished, {} failed; {}",
        sweep.name,
        tally.trained,
        tally.skipped,
        tally.failed.len(),
        carve::sweep::Manifest::path(&out).display()
    );
    if !tally.failed.is_empty() {
        let list: Vec<String> = tally
            .failed
            .iter()
            .map(|(n, why)| format!("  {n}: {}", why.lines().next().unwrap_or("")))
            .collect();
        let n = tally.failed.len();
        bail!(
            "{n} {} failed (the others finished):\n{}",
            if n == 1 { "run" } else { "runs" },
            list.join("\n")
        );
    }
    Ok(())
}

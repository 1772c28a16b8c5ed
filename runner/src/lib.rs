//! The `carve` command line as a library: parse arguments, call the framework.
//!
//! The `carve` binary of this package is [`main`] with the shipped plugins linked. A plugin crate builds its own
//! `carve`, with its components next to (or instead of) the shipped ones, from a two-line `main`:
//!
//! ```ignore
//! fn main() {
//!     my_plugin::link(); // keeps the plugin's registrations in the binary
//!     carve_runner::main()
//! }
//! ```
//!
//! This crate registers no method itself: what `carve list` shows is what the binary links. Registrations
//! (`inventory`, `typetag`) live in the plugin crates' statics, and a crate that the binary's code never
//! names is not linked at all, so `main` must name each plugin crate: call a function of it (`link()`, as
//! `carve-plugins` has) or write `use my_plugin as _;`.

mod commands;
mod report_command;
mod sweep_command;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::ffi::OsString;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "carve",
    version,
    about = "Causal representation learning: train, evaluate and intervene"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List registered methods, components, datasets and metrics.
    List {
        /// Print the compatibility matrix instead: every part, what it needs and provides, the shipped data it
        /// fits and the methods that take it (Markdown).
        #[arg(long)]
        matrix: bool,
    },
    /// Train a config (or resume a run) and write a run directory.
    Train {
        /// Experiment config (RON). Optional with --resume.
        config: Option<PathBuf>,
        /// Override a config field, e.g. --set train.steps=200 (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Run directory (default runs/<name>-<timestamp>). A directory that already holds a run is refused
        /// unless --overwrite is given.
        #[arg(long, conflicts_with = "resume")]
        out: Option<PathBuf>,
        /// Continue this run from its last checkpoint. With a CONFIG, its train.steps becomes the run's step
        /// budget (recorded in RUN_DIR/config.ron): it may grow but not shrink, and a budget the run has
        /// reached trains nothing and redoes the figures, evaluation and summary.
        #[arg(long, value_name = "RUN_DIR")]
        resume: Option<PathBuf>,
        /// Replace the run already in --out (its checkpoint, log, summary, evaluation and figures).
        #[arg(long, requires = "out", conflicts_with = "resume")]
        overwrite: bool,
        /// cpu, cuda or cuda:N.
        #[arg(long, default_value = "cpu")]
        device: String,
    },
    /// Recompute metrics of a run into RUN_DIR/eval.json.
    Eval {
        run_dir: PathBuf,
        #[arg(long, default_value = "test")]
        split: String,
        /// Comma-separated metric names (default: the config's eval.metrics).
        #[arg(long, value_delimiter = ',')]
        metrics: Option<Vec<String>>,
        /// Also write encoder means, true factors and labels to this new .npz file (not one of the run's own).
        #[arg(long, value_name = "FILE.npz")]
        export_latents: Option<PathBuf>,
        #[arg(long, default_value = "cpu")]
        device: String,
    },
    /// Score any representation: an .npz with `codes` (N×d) and `factors` (N×k), any integer, float or bool
    /// dtype, at least 2 rows; prints one JSON object. NaN or ±inf values are an error naming the array. SAP,
    /// Modularity and DCI train on the first 80% of the rows in file order and test on the rest, as
    /// disentanglement_lib splits fixed data.
    Metrics {
        /// The .npz file (e.g. written by `carve eval --export-latents`).
        file: PathBuf,
        /// Comma-separated metric names (default: mcc, mig, sap, modularity, r).
        #[arg(long, value_delimiter = ',')]
        metrics: Option<Vec<String>>,
        /// Leave out rows with NaN or ±inf in codes, factors or labels (their count goes to stderr) instead of
        /// failing.
        #[arg(long)]
        drop_nonfinite_rows: bool,
    },
    /// Write a dataset to disk (PNGs in train/ and test/, plus labels.csv).
    Data {
        /// Dataset name, e.g. Pendulum (see `carve list`).
        name: String,
        #[arg(long)]
        out: PathBuf,
        /// Override a dataset field, e.g. --set size=64.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
    /// Counterfactual images under do(NODE = VALUE): labelled rows of originals, reconstructions and intervened.
    Intervene {
        run_dir: PathBuf,
        /// NAME=VALUE, NAME a factor name (e.g. light_angle) or a node index; repeatable.
        #[arg(long = "do", value_name = "NAME=VALUE", required = true)]
        dos: Vec<String>,
        /// Number of test images (1..=64), spread over the test split.
        #[arg(long, default_value_t = 8)]
        n: usize,
        /// PNG file to write (its folder must exist).
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value = "cpu")]
        device: String,
    },
    /// Redraws a run's figures (loss curves, reconstructions, traversal, graphs, interventions) from its files.
    Figures {
        run_dir: PathBuf,
        #[arg(long, default_value = "cpu")]
        device: String,
    },
    /// Training throughput of a config: steps on fixed batches of its data, without evaluation or checkpoints;
    /// prints samples/s, GFLOP/s from the layer shapes, the share of this machine's GEMM throughput, peak
    /// memory and what a step allocates.
    Bench {
        config: PathBuf,
        /// Override a config field, e.g. --set train.batch_size=128 (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Timed steps.
        #[arg(long, default_value_t = 20)]
        steps: usize,
        /// Untimed steps first (allocator, caches, lazy state).
        #[arg(long, default_value_t = 3)]
        warmup: usize,
        /// CPU threads (default: rayon's, i.e. RAYON_NUM_THREADS or the core count).
        #[arg(long)]
        threads: Option<usize>,
        /// Print one JSON object instead of the table.
        #[arg(long)]
        json: bool,
        #[arg(long, default_value = "cpu")]
        device: String,
    },
    /// Run a sweep: a base config × a grid (and/or zip) of overrides × seeds, each run in its own directory,
    /// in parallel here or as a Slurm job array. Resumable: finished runs are skipped, interrupted ones resume.
    Sweep(sweep_command::SweepArgs),
    /// Tables (Markdown, CSV) and plots of runs: one row per configuration, seeds folded into mean ± sd.
    Report(report_command::ReportArgs),
    /// Latent traversal grid of a trained run: one labelled row per latent, the swept values over the columns.
    Traverse {
        run_dir: PathBuf,
        /// PNG file to write (its folder must exist).
        #[arg(long)]
        out: PathBuf,
        /// Test image to start from (an index into the test split).
        #[arg(long, default_value_t = 0)]
        index: usize,
        /// Values per latent (2..=100).
        #[arg(long, default_value_t = 10)]
        steps: usize,
        /// Values sweep ±range (a finite number > 0).
        #[arg(long, default_value_t = 3.0, allow_negative_numbers = true)]
        range: f32,
        #[arg(long, default_value = "cpu")]
        device: String,
    },
}

/// The whole `carve` program: sets up the CPU runtime and logging (`RUST_LOG`, `info` by default), runs the
/// command line of the process, and exits with status 1 after printing the error, if any.
pub fn main() {
    let cli = Cli::parse();
    // Before the thread pool exists: `bench --threads T` (and a sweep's single run) sizes it and gemm's split.
    let threads = match &cli.command {
        Command::Bench { threads, .. } => *threads,
        Command::Sweep(args) => args.threads_of_this_process(),
        _ => None,
    };
    if let Some(t) = threads {
        std::env::set_var("RAYON_NUM_THREADS", t.max(1).to_string());
    }
    carve::runtime::init_cpu();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    if let Err(e) = dispatch(cli) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

/// Runs one command line (`args[0]` is the program name). `--help`, `--version` and usage errors print and exit
/// the process, as any command line does; every other failure is returned. Call
/// [`carve::runtime::init_cpu`] first, as [`main`] does, for its speed and reproducibility.
pub fn run<I, T>(args: I) -> Result<()>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    dispatch(Cli::parse_from(args))
}

fn dispatch(cli: Cli) -> Result<()> {
    match cli.command {
        Command::List { matrix } => commands::list(matrix),
        Command::Train {
            config,
            set,
            out,
            resume,
            overwrite,
            device,
        } => commands::train(config, &set, out, resume, overwrite, &device),
        Command::Eval {
            run_dir,
            split,
            metrics,
            export_latents,
            device,
        } => commands::eval(&run_dir, &split, metrics, export_latents, &device),
        Command::Metrics {
            file,
            metrics,
            drop_nonfinite_rows,
        } => commands::metrics(&file, metrics, drop_nonfinite_rows),
        Command::Data { name, out, set } => commands::data(&name, &out, &set),
        Command::Intervene {
            run_dir,
            dos,
            n,
            out,
            device,
        } => commands::intervene(&run_dir, &dos, n, &out, &device),
        Command::Figures { run_dir, device } => commands::figures(&run_dir, &device),
        Command::Bench {
            config,
            set,
            steps,
            warmup,
            threads,
            json,
            device,
        } => commands::bench(&config, &set, steps, warmup, threads, json, &device),
        Command::Traverse {
            run_dir,
            out,
            index,
            steps,
            range,
            device,
        } => commands::traverse(&run_dir, &out, index, steps, range, &device),
        Command::Sweep(args) => sweep_command::sweep(args),
        Command::Report(args) => report_command::report(args),
    }
}

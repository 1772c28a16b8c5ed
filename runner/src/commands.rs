//! One function per subcommand.

use anyhow::{bail, Context, Result};
use carve::config::{apply_override, Experiment};
use carve::data::{DatasetConfig, Split};
use carve::registry::{self, ComponentKind};
use carve::train::{Session, TrainOptions};
use std::path::{Path, PathBuf};

pub fn list(matrix: bool) -> Result<()> {
    if matrix {
        print!("{}", carve::compatibility::matrix());
        return Ok(());
    }
    println!("methods:");
    for m in registry::methods() {
        println!("  {:<18} {}", m.name, m.summary);
    }
    for kind in ComponentKind::ALL {
        let items: Vec<_> = registry::components()
            .into_iter()
            .filter(|c| c.kind == kind)
            .collect();
        if items.is_empty() {
            continue;
        }
        println!("{}s:", kind.label());
        for c in items {
            println!("  {:<18} {}", c.name, c.summary);
        }
    }
    println!("metrics (eval.metrics, --metrics):");
    for m in carve::metrics::registered() {
        let run = if m.needs_model() {
            " [needs a run]"
        } else {
            ""
        };
        println!("  {:<18} {}{run}", m.name, m.summary);
    }
    Ok(())
}

pub fn train(
    config: Option<PathBuf>,
    set: &[String],
    out: Option<PathBuf>,
    resume: Option<PathBuf>,
    overwrite: bool,
    device: &str,
) -> Result<()> {
    let exp = match (&config, &resume) {
        (Some(path), _) => Some(Experiment::load(path, set)?),
        (None, None) => bail!("give a CONFIG to train, or --resume RUN_DIR"),
        // `--resume RUN --set train.steps=N` extends a run without its config file at hand.
        (None, Some(run)) if !set.is_empty() => {
            let saved = run.join(carve::train::CONFIG_FILE);
            if !saved.is_file() {
                bail!(
                    "{}: not a run directory (no {})",
                    run.display(),
                    saved.display()
                );
            }
            Some(Experiment::load(&saved, set)?)
        }
        (None, Some(_)) => None,
    };
    let opts = TrainOptions {
        out_dir: out,
        resume,
        overwrite,
        device: carve::runtime::device(device)?,
        progress: true,
    };
    let dir = carve::train::train(exp, opts)?;
    let summary_path = dir.join(carve::train::SUMMARY_FILE);
    let summary = std::fs::read_to_string(&summary_path)
        .with_context(|| format!("reading {}", summary_path.display()))?;
    println!("run directory: {}\n{summary}", dir.display());
    Ok(())
}

pub fn eval(
    run_dir: &Path,
    split: &str,
    metrics: Option<Vec<String>>,
    export: Option<PathBuf>,
    device: &str,
) -> Result<()> {
    let split: Split = split.parse()?;
    if let Some(path) = &export {
        carve::eval::check_export_path(run_dir, path)?;
    }
    let session = Session::open(run_dir, carve::runtime::device(device)?)?;
    // Names given here take the settings the run's config gives the metric of that name, if any.
    let configured = &session.exp.eval.metrics;
    let entries = match metrics {
        Some(names) => carve::config::MetricEntry::resolve(&names, configured),
        None => configured.clone(),
    };
    carve::config::check_metrics(
        &session.exp,
        &entries,
        session.data.as_ref(),
        session.method.as_ref(),
        &session.device,
    )?;
    let ctx = session.eval_context();
    let inputs = carve::eval::collect(&ctx, split, session.exp.eval.max_samples)?;
    let scores =
        carve::metrics::compute_with_model(&entries, &inputs, &ctx).with_context(|| {
            format!(
                "scoring {} on the {} split",
                run_dir.display(),
                format!("{split:?}").to_lowercase()
            )
        })?;
    let text = serde_json::to_string_pretty(
        &serde_json::json!({ "split": format!("{split:?}").to_lowercase(), "metrics": scores }),
    )?;
    carve::train::write_atomic(&run_dir.join("eval.json"), text.as_bytes())?;
    println!("{text}");
    if let Some(path) = export {
        carve::eval::export_latents(&path, &inputs)?;
        println!("latents written to {}", path.display());
    }
    Ok(())
}

/// Builds a registered dataset config from its name and `key=value` overrides.
fn dataset_config(name: &str, set: &[String]) -> Result<Box<dyn DatasetConfig>> {
    let names = registry::names(ComponentKind::Dataset);
    let Some(canonical) = names.iter().find(|n| n.eq_ignore_ascii_case(name)) else {
        let close = registry::closest(name, &names);
        bail!(
            "unknown dataset `{name}`{} (available: {})",
            if close.is_empty() {
                String::new()
            } else {
                format!("; did you mean {}?", close.join(", "))
            },
            names.join(", ")
        );
    };
    let mut value = serde_json::json!({ *canonical: {} });
    for s in set {
        apply_override(&mut value, s).or_else(|_| {
            // Fields left at their defaults are absent from `{}`: add them directly.
            let (k, v) = s
                .split_once('=')
                .with_context(|| format!("--set {s}: expected KEY=VALUE"))?;
            let parsed: serde_json::Value =
                v.parse().unwrap_or(serde_json::Value::String(v.into()));
            value[*canonical][k] = parsed;
            anyhow::Ok(())
        })?;
    }
    serde_json::from_value(value).with_context(|| {
        format!(
            "dataset `{canonical}` settings (--set {})",
            set.join(" --set ")
        )
    })
}

pub fn data(name: &str, out: &Path, set: &[String]) -> Result<()> {
    let cfg = dataset_config(name, set)?;
    let data = cfg.build(0)?;
    carve::data::write_image_dataset(data.as_ref(), out)?;
    println!(
        "{} images ({} train, {} test) written to {}",
        data.len(),
        data.split(Split::Train).len(),
        data.split(Split::Test).len(),
        out.display()
    );
    Ok(())
}

pub fn figures(run_dir: &Path, device: &str) -> Result<()> {
    let session = Session::open(run_dir, carve::runtime::device(device)?)?;
    session.write_figures()?;
    println!("figures written to {}", run_dir.join("figures").display());
    Ok(())
}

/// An `--out` image path: its folder must exist and the path must not be a folder.
fn check_out(out: &Path) -> Result<()> {
    if out.is_dir() {
        bail!(
            "--out {}: is a folder; give a file name such as {}",
            out.display(),
            out.join("figure.png").display()
        );
    }
    match out.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(folder) if !folder.is_dir() => bail!(
            "--out {}: the folder {} does not exist; create it first",
            out.display(),
            folder.display()
        ),
        _ => Ok(()),
    }
}

pub fn traverse(
    run_dir: &Path,
    out: &Path,
    index: usize,
    steps: usize,
    range: f32,
    device: &str,
) -> Result<()> {
    check_out(out)?;
    if !(2..=Session::MAX_SWEEP_STEPS).contains(&steps) {
        bail!(
            "--steps {steps}: a traversal takes 2..={} steps",
            Session::MAX_SWEEP_STEPS
        );
    }
    if !(range.is_finite() && range > 0.0) {
        bail!("--range {range}: the traversal range must be a finite number > 0");
    }
    let session = Session::open(run_dir, carve::runtime::device(device)?)?;
    session
        .traverse(out, index, steps, range)
        .with_context(|| format!("--index {index}"))?;
    println!("traversal written to {}", out.display());
    Ok(())
}

/// `NAME=VALUE` → do(node = value); NAME is one of `names` (the data's factors) or a node index below `nodes`.
fn parse_do(s: &str, names: &[String], nodes: usize) -> Result<carve::components::Do> {
    let (name, value) = s.split_once('=').context("expected --do NAME=VALUE")?;
    let value: f32 = value
        .trim()
        .parse()
        .with_context(|| format!("--do {s}: `{value}` is not a number"))?;
    if !value.is_finite() {
        bail!("--do {s}: the value must be a finite number, got {value}");
    }
    let node = match name.trim().parse::<usize>() {
        Ok(i) => i,
        Err(_) => names
            .iter()
            .position(|n| n == name.trim())
            .with_context(|| {
                let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                let close = registry::closest(name, &refs);
                format!(
                    "--do {s}: unknown node `{name}`{} (nodes: {}, or an index below {nodes})",
                    if close.is_empty() {
                        String::new()
                    } else {
                        format!("; did you mean {}?", close.join(", "))
                    },
                    names.join(", ")
                )
            })?,
    };
    if node >= nodes {
        bail!(
            "--do {s}: node {node} does not exist; the model has {nodes} nodes (0..={})",
            nodes - 1
        );
    }
    Ok(carve::components::Do { node, value })
}

pub fn intervene(run_dir: &Path, dos: &[String], n: usize, out: &Path, device: &str) -> Result<()> {
    check_out(out)?;
    let max = Session::MAX_INTERVENTION_IMAGES;
    if n == 0 || n > max {
        bail!("--n {n}: the grid draws 1..={max} test images");
    }
    let session = Session::open(run_dir, carve::runtime::device(device)?)?;
    let names = session.data.spec().factor_names.clone();
    // Without a causal graph, interventions set latents directly.
    let nodes = match session.method.graph()? {
        Some(a) => a.dims()[0],
        None => session.method.latent_dim(),
    };
    let dos = dos
        .iter()
        .map(|d| parse_do(d, &names, nodes))
        .collect::<Result<Vec<_>>>()?;
    session
        .intervention_grid(out, &dos, &names, n)
        .with_context(|| format!("--n {n}"))?;
    println!(
        "interventions written to {} (rows: originals, reconstructions, counterfactuals)",
        out.display()
    );
    Ok(())
}

pub fn metrics(file: &Path, names: Option<Vec<String>>, drop_nonfinite_rows: bool) -> Result<()> {
    let names = names.unwrap_or_else(|| {
        ["mcc", "mig", "sap", "modularity", "r"]
            .map(String::from)
            .to_vec()
    });
    for n in &names {
        carve::metrics::find(n)?;
    }
    let nonfinite = if drop_nonfinite_rows {
        carve::eval::NonFiniteRows::Drop
    } else {
        carve::eval::NonFiniteRows::Reject
    };
    let (inputs, dropped) = carve::eval::load_latents(file, nonfinite)?;
    if dropped > 0 {
        eprintln!(
            "{}: left out {dropped} rows with NaN or ±inf values ({} remain)",
            file.display(),
            inputs.n()
        );
    }
    let scores = carve::metrics::compute(&names, &inputs)
        .with_context(|| format!("scoring {}", file.display()))?;
    println!("{}", serde_json::to_string(&scores)?);
    Ok(())
}

pub fn bench(
    config: &Path,
    set: &[String],
    steps: usize,
    warmup: usize,
    threads: Option<usize>,
    json: bool,
    device: &str,
) -> Result<()> {
    let exp = Experiment::load(config, set)?;
    let opts = carve::bench::BenchOptions {
        steps,
        warmup,
        device: carve::runtime::device(device)?,
    };
    let label = config.display().to_string();
    let report = match threads {
        // The pool `main` sized from --threads; a separate one when called as a library.
        Some(t) if rayon::current_num_threads() != t => {
            carve::runtime::thread_pool(t)?.install(|| carve::bench::run(exp, &label, &opts))?
        }
        _ => carve::bench::run(exp, &label, &opts)?,
    };
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("{report}");
    }
    Ok(())
}

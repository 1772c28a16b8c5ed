//! A sweep file and the runs it expands into.
//!
//! ```ron
//! (
//!     name: "betavae_beta",
//!     base: "../configs/betavae/pendulum.ron",     // relative to this file
//!     set: ["train.steps=2500"],                   // applied to every run, as --set
//!     grid: [(set: "model.beta", values: [1, 2, 4, 8, 16])],
//!     zip: [],                                     // axes that vary together, one value of each per run
//!     seeds: [1, 2, 3],                            // train.seed, the innermost axis
//! )
//! ```
//!
//! Runs are the product of the grid axes (the first varies slowest), then the zipped values, then the seeds.
//! A value is any RON value, whole components included (`{"Additive": ()}`), and an axis may name its values
//! with `labels`. Each run's name joins `axis=label` pairs (`beta=4_seed=2`): stable and readable.

use super::names::{axis_label, run_name, value_labels};
use crate::config::{Assignment, Experiment};
use crate::error::{Error, IoContext, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SweepFile {
    name: String,
    base: String,
    #[serde(default)]
    set: Vec<String>,
    #[serde(default)]
    grid: Vec<Axis>,
    #[serde(default)]
    zip: Vec<Axis>,
    #[serde(default)]
    seeds: Vec<u64>,
}

/// One swept config field.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Axis {
    /// The dotted config path, as `--set` takes it.
    pub set: String,
    pub values: Vec<Value>,
    /// Names of the values in run names (default: the value itself, or a component's name).
    #[serde(default)]
    pub labels: Vec<String>,
    /// The axis in run names (default: the path's last segment).
    #[serde(default)]
    pub name: Option<String>,
}

/// A read and expanded sweep.
#[derive(Debug)]
pub struct Sweep {
    pub name: String,
    /// The sweep file, as given.
    pub file: PathBuf,
    /// The base config (resolved against the sweep file's folder).
    pub base: PathBuf,
    /// The overrides of every run, as `--set` text: the file's `set`, then `extra_set`.
    pub set: Vec<String>,
    /// The `--set` overrides given on the command line, which each run's process is given again.
    pub extra_set: Vec<String>,
    pub runs: Vec<RunSpec>,
}

/// One run of a sweep.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RunSpec {
    pub index: usize,
    pub name: String,
    /// What this run's axes set, as `path=value` text.
    pub overrides: Vec<String>,
    /// Every edit of the base config: the sweep's `set`, then the axes'.
    #[serde(skip)]
    pub edits: Vec<Assignment>,
}

impl Sweep {
    /// Reads a sweep file and expands its runs, with `extra_set` (`--set` text) applied to every run after the
    /// file's own `set`; every run's config is read and checked here (not its data).
    pub fn load(file: &Path, extra_set: &[String]) -> Result<Self> {
        let origin = file.display().to_string();
        let bad = |message: String| Error::Config {
            location: origin.clone(),
            message,
        };
        if !file.is_file() {
            return Err(bad("no such sweep file".into()));
        }
        let text = std::fs::read_to_string(file).at(file)?;
        let tree = crate::config::parse_tree(&text).map_err(|e| Error::Config {
            location: format!("{origin}:{}:{}", e.span.start.line, e.span.start.col),
            message: e.code.to_string(),
        })?;
        let mut spec: SweepFile =
            serde_json::from_value(tree).map_err(|e| bad(format!("not a sweep file: {e}")))?;
        spec.set.extend(extra_set.iter().cloned());
        crate::train::run_dir::check_run_name(&spec.name).map_err(|e| bad(e.to_string()))?;
        let base = file.parent().unwrap_or(Path::new("")).join(&spec.base);
        if !base.is_file() {
            return Err(bad(format!(
                "`base: \"{}\"`: no config file at {}",
                spec.base,
                base.display()
            )));
        }
        let runs = expand(&spec).map_err(bad)?;
        let sweep = Self {
            name: spec.name,
            file: file.to_path_buf(),
            base,
            set: spec.set,
            extra_set: extra_set.to_vec(),
            runs,
        };
        for run in &sweep.runs {
            sweep.experiment(run)?;
        }
        Ok(sweep)
    }

    /// The config of `run`: the base with the run's edits, named after the run.
    pub fn experiment(&self, run: &RunSpec) -> Result<Experiment> {
        let mut exp = Experiment::load_assigned(&self.base, &run.edits).map_err(|e| match e {
            Error::Config { location, message } => Error::Config {
                location: format!("{} run `{}`: {location}", self.file.display(), run.name),
                message,
            },
            other => other,
        })?;
        exp.name = run.name.clone();
        Ok(exp)
    }

    /// The run at `index`, or an error naming the range.
    pub fn run(&self, index: usize) -> Result<&RunSpec> {
        self.runs.get(index).ok_or_else(|| {
            Error::msg(format!(
                "--run-index {index}: {} has {} runs (0..={})",
                self.file.display(),
                self.runs.len(),
                self.runs.len().saturating_sub(1)
            ))
        })
    }
}

/// One choice on an axis: the edits it makes and its `axis=label` name part.
struct Choice {
    edits: Vec<Assignment>,
    name: Vec<String>,
}

fn expand(spec: &SweepFile) -> std::result::Result<Vec<RunSpec>, String> {
    let common: Vec<Assignment> = spec
        .set
        .iter()
        .map(|s| Assignment::parse(s).map_err(|e| format!("set: {e}")))
        .collect::<std::result::Result<_, _>>()?;
    let axes: Vec<&Axis> = spec.grid.iter().chain(&spec.zip).collect();
    for (i, a) in axes.iter().enumerate() {
        if let Some(b) = axes[..i].iter().find(|b| axis_label(b) == axis_label(a)) {
            return Err(format!(
                "the axes `{}` and `{}` are both `{}` in run names: give one of them a `name`",
                b.set,
                a.set,
                axis_label(a)
            ));
        }
    }
    let mut dimensions: Vec<Vec<Choice>> = Vec::new();
    for (i, axis) in spec.grid.iter().enumerate() {
        dimensions.push(axis_choices(axis, &format!("grid[{i}]"))?);
    }
    if !spec.zip.is_empty() {
        dimensions.push(zip_choices(&spec.zip)?);
    }
    if !spec.seeds.is_empty() {
        let mut seen = std::collections::HashSet::new();
        if let Some(s) = spec.seeds.iter().find(|s| !seen.insert(**s)) {
            return Err(format!("seeds: {s} is listed twice"));
        }
        dimensions.push(
            spec.seeds
                .iter()
                .map(|s| Choice {
                    edits: vec![Assignment {
                        path: "train.seed".into(),
                        value: Value::from(*s),
                        origin: format!("seeds: {s}"),
                    }],
                    name: vec![format!("seed={s}")],
                })
                .collect(),
        );
    }
    let mut runs = Vec::new();
    let counts: Vec<usize> = dimensions.iter().map(Vec::len).collect();
    let total: usize = counts.iter().product();
    for flat in 0..total {
        // Mixed-radix digits of `flat`, the first dimension most significant.
        let mut rest = flat;
        let mut picks = vec![0; counts.len()];
        for (d, &n) in counts.iter().enumerate().rev() {
            picks[d] = rest % n;
            rest /= n;
        }
        let mut own = Vec::new();
        let mut parts = Vec::new();
        for (d, &p) in picks.iter().enumerate() {
            own.extend(dimensions[d][p].edits.iter().cloned());
            parts.extend(dimensions[d][p].name.iter().cloned());
        }
        runs.push(RunSpec {
            index: flat,
            name: run_name(&parts),
            overrides: own.iter().map(describe).collect(),
            edits: common.iter().cloned().chain(own).collect(),
        });
    }
    let mut seen = std::collections::HashMap::new();
    for r in &runs {
        if let Some(first) = seen.insert(r.name.clone(), r.index) {
            return Err(format!(
                "runs {first} and {} are both named `{}`: give the axes `labels` (or `name`) that tell them apart",
                r.index, r.name
            ));
        }
    }
    Ok(runs)
}

fn axis_choices(axis: &Axis, at: &str) -> std::result::Result<Vec<Choice>, String> {
    if axis.values.is_empty() {
        return Err(format!("{at} (`{}`): `values` is empty", axis.set));
    }
    let labels = value_labels(axis).map_err(|m| format!("{at} (`{}`): {m}", axis.set))?;
    let key = axis_label(axis);
    Ok(axis
        .values
        .iter()
        .zip(labels)
        .map(|(value, label)| Choice {
            edits: vec![Assignment {
                path: axis.set.clone(),
                value: value.clone(),
                origin: format!("{at}: {}={label}", axis.set),
            }],
            name: vec![format!("{key}={label}")],
        })
        .collect())
}

/// The zipped axes as one dimension: choice i takes value i of every axis.
fn zip_choices(axes: &[Axis]) -> std::result::Result<Vec<Choice>, String> {
    let per_axis: Vec<Vec<Choice>> = axes
        .iter()
        .enumerate()
        .map(|(i, a)| axis_choices(a, &format!("zip[{i}]")))
        .collect::<std::result::Result<_, _>>()?;
    let n = per_axis[0].len();
    if let Some((i, a)) = axes.iter().enumerate().find(|(_, a)| a.values.len() != n) {
        return Err(format!(
            "zip[{i}] (`{}`) has {} values but zip[0] (`{}`) has {n}: zipped axes vary together and need as many values",
            a.set,
            a.values.len(),
            axes[0].set
        ));
    }
    Ok((0..n)
        .map(|j| Choice {
            edits: per_axis.iter().flat_map(|c| c[j].edits.clone()).collect(),
            name: per_axis.iter().flat_map(|c| c[j].name.clone()).collect(),
        })
        .collect())
}

/// `path=value`, the value as compact JSON (a string bare).
fn describe(a: &Assignment) -> String {
    match &a.value {
        Value::String(s) => format!("{}={s}", a.path),
        v => format!("{}={v}", a.path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(text: &str) -> SweepFile {
        serde_json::from_value(crate::config::parse_tree(text).unwrap()).unwrap()
    }

    #[test]
    fn grid_zip_and_seeds_expand_in_order_with_readable_names() {
        let s = spec(
            r#"(name: "s", base: "b.ron", set: ["train.steps=5"],
                grid: [(set: "model.beta", values: [1, 4]), (set: "model.prior", values: [{"Additive": ()}, {"Nonlinear": (hidden: [8])}])],
                zip: [(set: "train.batch_size", values: [8, 16]), (set: "train.optimizer.lr", values: [1e-3, 2e-3], name: "lr")],
                seeds: [1, 2])"#,
        );
        let runs = expand(&s).unwrap();
        assert_eq!(runs.len(), 2 * 2 * 2 * 2);
        assert_eq!(
            runs[0].name,
            "beta=1_prior=Additive_batch-size=8_lr=0.001_seed=1"
        );
        assert_eq!(
            runs[1].name,
            "beta=1_prior=Additive_batch-size=8_lr=0.001_seed=2"
        );
        assert_eq!(
            runs[15].name,
            "beta=4_prior=Nonlinear_batch-size=16_lr=0.002_seed=2"
        );
        assert_eq!(runs[15].overrides[0], "model.beta=4");
        assert_eq!(runs[15].edits[0].path, "train.steps");
        assert!(runs[15]
            .overrides
            .contains(&r#"model.prior={"Nonlinear":{"hidden":[8]}}"#.to_string()));
        let seed = runs[15].edits.last().unwrap();
        assert_eq!((seed.path.as_str(), &seed.value), ("train.seed", &json!(2)));
        assert!(runs.iter().enumerate().all(|(i, r)| r.index == i));
    }

    #[test]
    fn bad_sweeps_are_named() {
        for (text, needle) in [
            (
                r#"(name: "s", base: "b", zip: [(set: "a", values: [1, 2]), (set: "b", values: [1])])"#,
                "zipped axes vary together",
            ),
            (
                r#"(name: "s", base: "b", grid: [(set: "a", values: [])])"#,
                "`values` is empty",
            ),
            (r#"(name: "s", base: "b", seeds: [1, 1])"#, "listed twice"),
            (
                r#"(name: "s", base: "b", grid: [(set: "x.a", values: [1, 2]), (set: "y.a", values: [1, 2])])"#,
                "give one of them a `name`",
            ),
            (
                r#"(name: "s", base: "b", grid: [(set: "a", values: [0.5, "0.5"])])"#,
                "label `0.5` twice",
            ),
            (
                r#"(name: "s", base: "b", grid: [(set: "a", values: [1, 2], labels: ["one"])])"#,
                "2 values but 1 labels",
            ),
        ] {
            let e = expand(&spec(text)).unwrap_err();
            assert!(e.contains(needle), "{text}: {e}");
        }
    }

    #[test]
    fn a_sweep_without_axes_is_one_run() {
        let runs = expand(&spec(r#"(name: "s", base: "b")"#)).unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].name, "base");
    }
}

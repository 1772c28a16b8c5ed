//! Finding run directories under the folders a report is asked for, and reading each one's config and summary.

use super::flatten::{self, Leaves};
use crate::error::{Error, IoContext, Result};
use crate::train::{CONFIG_FILE, SUMMARY_FILE};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A finished run: where it is, its configuration as leaves, and the numbers its summary holds.
#[derive(Clone, Debug)]
pub struct Run {
    pub dir: PathBuf,
    pub config: Leaves,
    /// The summary's `metrics`, `None` where one was not finite (written as `null`).
    pub metrics: BTreeMap<String, Option<f64>>,
    /// The summary's other numbers (`wall_seconds`, `samples_per_sec`, `steps`).
    pub totals: BTreeMap<String, f64>,
}

impl Run {
    /// The value of `metric` in this run: a metric, else one of the summary's totals; `None` when absent or not
    /// finite.
    pub fn value(&self, metric: &str) -> Option<f64> {
        match self.metrics.get(metric) {
            Some(v) => *v,
            None => self.totals.get(metric).copied(),
        }
        .filter(|v| v.is_finite())
    }
}

/// The runs found, and the run directories left out because they have no summary yet (unfinished).
pub struct Found {
    pub runs: Vec<Run>,
    pub unfinished: Vec<PathBuf>,
}

/// Every directory holding a `config.ron` at or below `dirs`, sorted by path and each read once. A directory
/// without `summary.json` is unfinished, not an error; a summary or config that cannot be read is.
pub fn find(dirs: &[PathBuf]) -> Result<Found> {
    let mut found = BTreeSet::new();
    for dir in dirs {
        if !dir.is_dir() {
            return Err(Error::msg(format!(
                "{}: not a directory (give run directories or folders holding them)",
                dir.display()
            )));
        }
        collect(dir, &mut found)?;
    }
    if found.is_empty() {
        let names: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
        return Err(Error::msg(format!(
            "no run directories (folders with a {CONFIG_FILE}) in {}",
            names.join(", ")
        )));
    }
    let mut runs = Vec::new();
    let mut unfinished = Vec::new();
    for dir in found {
        if dir.join(SUMMARY_FILE).is_file() {
            runs.push(read(&dir)?);
        } else {
            unfinished.push(dir);
        }
    }
    Ok(Found { runs, unfinished })
}

/// Adds `dir` and the directories below it that hold a config. It keeps looking below a run directory, since
/// a sweep's folder may hold its own config next to its runs. Symbolic links are not followed below the
/// folders given (no cycles); a path seen twice (a folder and its subfolder both given) counts once.
fn collect(dir: &Path, found: &mut BTreeSet<PathBuf>) -> Result<()> {
    if dir.join(CONFIG_FILE).is_file() {
        found.insert(dir.to_path_buf());
    }
    let mut subdirs = Vec::new();
    for entry in std::fs::read_dir(dir).at(dir)? {
        let entry = entry.at(dir)?;
        let kind = entry.file_type().at(entry.path())?;
        if kind.is_dir() {
            subdirs.push(entry.path());
        }
    }
    for sub in subdirs {
        collect(&sub, found)?;
    }
    Ok(())
}

/// Reads the run in `dir`: its config as leaves and its summary's numbers. Errors name the file.
pub fn read(dir: &Path) -> Result<Run> {
    let config_path = dir.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&config_path).at(&config_path)?;
    let tree = crate::config::parse_tree(&text).map_err(|e| Error::Config {
        location: format!(
            "{}:{}:{}",
            config_path.display(),
            e.span.start.line,
            e.span.start.col
        ),
        message: e.code.to_string(),
    })?;
    let summary_path = dir.join(SUMMARY_FILE);
    let text = std::fs::read_to_string(&summary_path).at(&summary_path)?;
    let bad = |why: String| Error::Data(format!("{}: {why}", summary_path.display()));
    let summary: Value = serde_json::from_str(&text).map_err(|e| bad(format!("not JSON ({e})")))?;
    let object = summary
        .as_object()
        .ok_or_else(|| bad("not a JSON object".into()))?;
    let metrics = match object.get("metrics") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(Value::Object(m)) => m.iter().map(|(k, v)| (k.clone(), v.as_f64())).collect(),
        Some(_) => return Err(bad("`metrics` is not a map of names to numbers".into())),
    };
    let totals = object
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), v.as_f64()?)))
        .collect();
    Ok(Run {
        dir: dir.to_path_buf(),
        config: flatten::leaves(&tree),
        metrics,
        totals,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Writes a run directory `dir/name` with a small config and, when `metrics` is given, a summary.
    pub(crate) fn fake_run(
        dir: &Path,
        name: &str,
        config: &str,
        metrics: Option<&str>,
        wall: f64,
    ) -> PathBuf {
        let run = dir.join(name);
        std::fs::create_dir_all(&run).unwrap();
        std::fs::write(run.join(CONFIG_FILE), config).unwrap();
        if let Some(m) = metrics {
            let summary = format!(r#"{{"steps": 10, "wall_seconds": {wall}, "metrics": {{{m}}}}}"#);
            std::fs::write(run.join(SUMMARY_FILE), summary).unwrap();
        }
        run
    }

    const CONFIG: &str = r#"(name: "x", model: {"Elbo": (beta: 1.0)}, train: (seed: 1))"#;

    #[test]
    fn finds_runs_at_any_depth_sorted_and_skips_unfinished() {
        let tmp = tempfile::tempdir().unwrap();
        let sweep = tmp.path().join("sweep");
        fake_run(&sweep, "runs/b", CONFIG, Some(r#""mcc": 0.5"#), 2.0);
        fake_run(&sweep, "runs/a", CONFIG, Some(r#""mcc": null"#), 1.0);
        fake_run(&sweep, "runs/c", CONFIG, None, 0.0);
        let found = find(&[sweep.clone(), sweep.join("runs")]).unwrap();
        let names: Vec<_> = found
            .runs
            .iter()
            .map(|r| r.dir.file_name().unwrap())
            .collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(found.unfinished, [sweep.join("runs/c")]);
        assert_eq!(found.runs[0].value("mcc"), None);
        assert_eq!(found.runs[1].value("mcc"), Some(0.5));
        assert_eq!(found.runs[1].value("wall_seconds"), Some(2.0));
        assert_eq!(found.runs[1].config["model.beta"].number, Some(1.0));
    }

    #[test]
    fn errors_name_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let e = find(&[tmp.path().to_path_buf()]).err().unwrap().to_string();
        assert!(e.contains("no run directories"), "{e}");
        let run = fake_run(tmp.path(), "bad", "(name: ", Some(""), 1.0);
        let e = find(&[tmp.path().to_path_buf()]).err().unwrap().to_string();
        assert!(
            e.contains(&run.join(CONFIG_FILE).display().to_string()),
            "{e}"
        );
        std::fs::write(run.join(CONFIG_FILE), CONFIG).unwrap();
        std::fs::write(run.join(SUMMARY_FILE), "{").unwrap();
        let e = find(&[tmp.path().to_path_buf()]).err().unwrap().to_string();
        assert!(
            e.contains(&run.join(SUMMARY_FILE).display().to_string()),
            "{e}"
        );
    }
}

//! Reports over run directories: which configurations did best, by how much, and how sure that is.
//!
//! A configuration is a run's config without its seed and name, so runs repeating one configuration over seeds
//! fold into one row, `mean ± sd` per metric. The columns are the config keys the runs differ on (or the keys
//! asked for), named by the paths `--set` takes. Written into the output folder:
//!
//! ```text
//! report.md            the table, then the best configuration per metric
//! report.csv           the table as numbers: <metric>_mean, <metric>_sd, n
//! plot_<metric>.png    per metric: lines over a numeric column (a β sweep), else a bar per configuration
//! ```

pub mod flatten;
pub mod metrics;
pub mod plot;
pub mod runs;
pub mod table;

use crate::error::{IoContext, Result};
use crate::train::write_atomic;
use std::path::PathBuf;

pub use table::Table;

/// What to report on.
#[derive(Clone, Debug, Default)]
pub struct ReportOptions {
    /// Run directories, or folders holding them at any depth.
    pub dirs: Vec<PathBuf>,
    /// The metrics to show; default the headline ones ([`metrics::headline`]). `wall_seconds` is always added.
    pub metrics: Option<Vec<String>>,
    /// Config paths to group by (everything else folds); default the keys the runs differ on.
    pub group_by: Option<Vec<String>>,
    /// Output folder; default `<DIR>/report` for one DIR, else `./report`.
    pub out: Option<PathBuf>,
}

/// A written report.
pub struct Report {
    pub out: PathBuf,
    pub markdown: String,
    pub table: Table,
    /// Run directories without a summary (unfinished), left out.
    pub unfinished: Vec<PathBuf>,
    /// The files written, in `out`.
    pub files: Vec<PathBuf>,
}

/// Reads the runs under `opts.dirs`, tabulates them and writes the report's files.
pub fn run(opts: &ReportOptions) -> Result<Report> {
    let found = runs::find(&opts.dirs)?;
    if found.runs.is_empty() {
        let names: Vec<String> = found
            .unfinished
            .iter()
            .map(|d| d.display().to_string())
            .collect();
        return Err(crate::Error::msg(format!(
            "no finished runs: every run directory lacks a {} ({})",
            crate::train::SUMMARY_FILE,
            names.join(", ")
        )));
    }
    let metrics = metrics::select(&found.runs, opts.metrics.as_deref())?;
    let columns = table::columns(&found.runs, opts.group_by.as_deref())?;
    let table = table::build(&found.runs, &columns, &metrics);
    let markdown = table.markdown(found.runs.len());

    let out = opts.out.clone().unwrap_or_else(|| match &opts.dirs[..] {
        [one] => one.join("report"),
        _ => PathBuf::from("report"),
    });
    std::fs::create_dir_all(&out).at(&out)?;
    let mut files = Vec::new();
    let md = out.join("report.md");
    write_atomic(&md, markdown.as_bytes())?;
    files.push(md);
    let csv = out.join("report.csv");
    write_atomic(&csv, &table.csv()?)?;
    files.push(csv);
    for (m, name) in metrics.iter().enumerate() {
        let png = out.join(format!("plot_{}.png", file_safe(name)));
        plot::save(&table, m, &png)?;
        files.push(png);
    }
    Ok(Report {
        out,
        markdown,
        table,
        unfinished: found.unfinished,
        files,
    })
}

/// A metric name as part of a file name (metric names are identifiers; anything else becomes `_`).
fn file_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::runs::tests::fake_run;
    use super::*;

    fn config(prior: &str, seed: u64) -> String {
        format!(
            r#"(name: "r", model: {{"Dear": (latent_dim: 4, prior: {{"{prior}": ()}})}}, train: (steps: 5, seed: {seed}))"#
        )
    }

    #[test]
    fn writes_the_table_and_a_plot_per_metric() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("sweep");
        fake_run(
            &root,
            "runs/a1",
            &config("Additive", 1),
            Some(r#""mcc": 0.9, "mcc_aligned_0": 0.1"#),
            10.0,
        );
        fake_run(
            &root,
            "runs/a2",
            &config("Additive", 2),
            Some(r#""mcc": 0.8"#),
            12.0,
        );
        fake_run(
            &root,
            "runs/s1",
            &config("StdNormal", 1),
            Some(r#""mcc": 0.5"#),
            11.0,
        );
        fake_run(&root, "runs/s2", &config("StdNormal", 2), None, 0.0);
        let report = run(&ReportOptions {
            dirs: vec![root.clone()],
            ..Default::default()
        })
        .unwrap();
        assert_eq!(report.out, root.join("report"));
        assert_eq!(report.unfinished, [root.join("runs/s2")]);
        assert_eq!(report.table.metrics, ["mcc", "wall_seconds"]);
        assert!(
            report.markdown.contains("| model.prior | mcc |"),
            "{}",
            report.markdown
        );
        assert!(report
            .markdown
            .contains("- best mcc: model.prior=Additive (0.850 ± 0.071"));
        for f in [
            "report.md",
            "report.csv",
            "plot_mcc.png",
            "plot_wall_seconds.png",
        ] {
            assert!(report.out.join(f).is_file(), "{f}");
        }
        // Unknown metrics and keys are errors before anything is drawn.
        let bad = |opts: ReportOptions| run(&opts).err().unwrap().to_string();
        let e = bad(ReportOptions {
            dirs: vec![root.clone()],
            metrics: Some(vec!["mcx".into()]),
            ..Default::default()
        });
        assert!(e.contains("did you mean `mcc`"), "{e}");
        let e = bad(ReportOptions {
            dirs: vec![root.clone()],
            group_by: Some(vec!["model.prio".into()]),
            ..Default::default()
        });
        assert!(e.contains("differ on: model.prior"), "{e}");
    }
}

//! `carve report`: tables and plots of run directories.

use anyhow::Result;
use carve::report::{self, ReportOptions};
use clap::Args;
use std::path::PathBuf;

#[derive(Args)]
pub struct ReportArgs {
    /// Run directories, or folders holding them (searched recursively, e.g. a sweep's folder).
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// Comma-separated metrics (default: the headline ones, those not a detail of another, e.g. `mcc` but not
    /// `mcc_aligned_0`). `wall_seconds` is always added.
    #[arg(long, value_delimiter = ',', value_name = "A,B")]
    pub metrics: Option<Vec<String>>,
    /// Comma-separated config paths to group runs by, e.g. model.beta (default: the keys the runs differ on,
    /// seed and name aside). Everything else folds into mean ± sd.
    #[arg(long, value_delimiter = ',', value_name = "KEY[,KEY]")]
    pub group_by: Option<Vec<String>>,
    /// Output folder (default DIR/report for one DIR, else ./report).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn report(args: ReportArgs) -> Result<()> {
    let written = report::run(&ReportOptions {
        dirs: args.dirs,
        metrics: args.metrics,
        group_by: args.group_by,
        out: args.out,
    })?;
    for dir in &written.unfinished {
        eprintln!(
            "skipped {} (no {}: unfinished)",
            dir.display(),
            carve::train::SUMMARY_FILE
        );
    }
    print!("{}", written.markdown);
    println!(
        "\nreport written to {} ({} files)",
        written.out.display(),
        written.files.len()
    );
    Ok(())
}

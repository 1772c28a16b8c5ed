//! Runs grouped into configurations, each metric folded over a configuration's seeds into mean ± sd, written
//! as Markdown and CSV, with the best configuration per metric.

use super::flatten::{self, Leaf};
use super::metrics::lower_is_better;
use super::runs::Run;
use crate::error::{Error, Result};
use std::cmp::Ordering;
use std::collections::BTreeSet;

/// The header of the one column a table has when every run shares its configuration.
pub const ALL: &str = "config";

/// A metric over the runs of one configuration that have it.
#[derive(Clone, Debug, PartialEq)]
pub struct Stat {
    pub n: usize,
    /// `None` without runs.
    pub mean: Option<f64>,
    /// Sample standard deviation (n − 1); `None` below two runs.
    pub sd: Option<f64>,
}

impl Stat {
    pub fn of(values: &[f64]) -> Self {
        let n = values.len();
        let mean = (n > 0).then(|| values.iter().sum::<f64>() / n as f64);
        let sd = mean.filter(|_| n > 1).map(|m| {
            let ss: f64 = values.iter().map(|v| (v - m) * (v - m)).sum();
            (ss / (n - 1) as f64).sqrt()
        });
        Stat { n, mean, sd }
    }
}

/// One configuration.
#[derive(Clone, Debug)]
pub struct Row {
    /// One value per column; `None` where the configuration has no such key.
    pub values: Vec<Option<Leaf>>,
    /// How many runs it has.
    pub runs: usize,
    /// One per metric.
    pub stats: Vec<Stat>,
}

#[derive(Clone, Debug)]
pub struct Table {
    /// Config paths telling the rows apart; empty when all runs share one configuration.
    pub columns: Vec<String>,
    pub metrics: Vec<String>,
    pub rows: Vec<Row>,
}

/// The columns of a table over `runs`: `group_by` (each a key of some run's config) or else the keys the
/// runs differ on ([`flatten::differing_keys`]).
pub fn columns(runs: &[Run], group_by: Option<&[String]>) -> Result<Vec<String>> {
    let leaves: Vec<_> = runs.iter().map(|r| r.config.clone()).collect();
    let differing = flatten::differing_keys(&leaves);
    let Some(keys) = group_by else {
        return Ok(differing);
    };
    let known: BTreeSet<&str> = runs
        .iter()
        .flat_map(|r| r.config.keys())
        .map(String::as_str)
        .collect();
    let mut out: Vec<String> = Vec::new();
    for key in keys {
        if !known.contains(key.as_str()) {
            let names: Vec<&str> = known.iter().copied().collect();
            let close = crate::registry::closest(key, &names);
            let hint = if close.is_empty() {
                String::new()
            } else {
                format!("; did you mean `{}`?", close.join("`, `"))
            };
            let listed = if differing.is_empty() {
                "the runs differ on no key but the seed".to_string()
            } else {
                format!("the runs differ on: {}", differing.join(", "))
            };
            return Err(Error::msg(format!(
                "--group-by: no config has the key `{key}`{hint} ({listed})"
            )));
        }
        if !out.contains(key) {
            out.push(key.clone());
        }
    }
    Ok(out)
}

/// Groups `runs` by their values of `columns` (rows sorted by those values, numbers as numbers) and folds
/// each metric over a group's runs that have a value for it.
pub fn build(runs: &[Run], columns: &[String], metrics: &[String]) -> Table {
    let mut groups: Vec<(Vec<Option<Leaf>>, Vec<&Run>)> = Vec::new();
    for run in runs {
        let key: Vec<Option<Leaf>> = columns.iter().map(|c| run.config.get(c).cloned()).collect();
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, members)) => members.push(run),
            None => groups.push((key, vec![run])),
        }
    }
    groups.sort_by(|(a, _), (b, _)| compare(a, b));
    let rows = groups
        .into_iter()
        .map(|(values, members)| {
            let stats = metrics
                .iter()
                .map(|m| {
                    let values: Vec<f64> = members.iter().filter_map(|r| r.value(m)).collect();
                    Stat::of(&values)
                })
                .collect();
            Row {
                values,
                runs: members.len(),
                stats,
            }
        })
        .collect();
    Table {
        columns: columns.to_vec(),
        metrics: metrics.to_vec(),
        rows,
    }
}

fn compare(a: &[Option<Leaf>], b: &[Option<Leaf>]) -> Ordering {
    let one = |x: &Option<Leaf>, y: &Option<Leaf>| match (x, y) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(x), Some(y)) => match (x.number, y.number) {
            (Some(p), Some(q)) => p.total_cmp(&q),
            _ => x.text.cmp(&y.text),
        },
    };
    a.iter()
        .zip(b)
        .map(|(x, y)| one(x, y))
        .find(|o| o.is_ne())
        .unwrap_or(Ordering::Equal)
}

/// A column's value as the table shows it: "–" where a configuration lacks the key.
pub fn cell(value: &Option<Leaf>) -> &str {
    value.as_ref().map_or("–", |l| l.text.as_str())
}

/// `mean ± sd` with three significant digits of the mean (the sd to as many decimals), "–" for the sd of a
/// single run and "n/a" without runs.
pub fn mean_sd(stat: &Stat) -> String {
    let Some(mean) = stat.mean else {
        return "n/a".into();
    };
    let show = digits(mean);
    match stat.sd {
        // A spread below the mean's last digit keeps one digit of its own rather than read as none.
        Some(sd) if sd > 0.0 && show(sd).chars().all(|c| c == '0' || c == '.') => {
            let decimals = (-sd.log10().floor()).clamp(0.0, 6.0) as usize;
            format!("{} ± {}", show(mean), crate::viz::text::fixed(sd, decimals))
        }
        Some(sd) => format!("{} ± {}", show(mean), show(sd)),
        None => format!("{} ± –", show(mean)),
    }
}

/// `mean` as [`mean_sd`] writes it.
pub fn mean_text(mean: f64) -> String {
    digits(mean)(mean)
}

/// Writes numbers with the decimals that give `mean` three significant digits (0 to 6 of them), or in
/// scientific notation outside [1e-4, 1e6).
fn digits(mean: f64) -> impl Fn(f64) -> String {
    let a = mean.abs();
    let sci = a != 0.0 && !(1e-4..1e6).contains(&a);
    let decimals = if a == 0.0 {
        3
    } else {
        (2 - a.log10().floor() as i64).clamp(0, 6) as usize
    };
    move |v: f64| {
        if sci {
            format!("{v:.2e}")
        } else {
            crate::viz::text::fixed(v, decimals)
        }
    }
}

/// The best configuration of one metric.
#[derive(Clone, Debug, PartialEq)]
pub struct Best {
    pub metric: String,
    pub row: usize,
    /// Other rows with the very same mean (an AUROC of 1 reached by several configurations).
    pub ties: Vec<usize>,
}

impl Table {
    /// `key=value, …` naming a row, or "all" for the one row of a table without columns.
    pub fn label(&self, row: &Row) -> String {
        if self.columns.is_empty() {
            return "all".into();
        }
        let parts: Vec<String> = self
            .columns
            .iter()
            .zip(&row.values)
            .map(|(c, v)| format!("{c}={}", cell(v)))
            .collect();
        parts.join(", ")
    }

    /// The header names of the configuration columns.
    pub fn config_headers(&self) -> Vec<String> {
        if self.columns.is_empty() {
            vec![ALL.to_string()]
        } else {
            self.columns.clone()
        }
    }

    /// The configuration cells of `row`, matching [`Table::config_headers`].
    pub fn config_cells(&self, row: &Row) -> Vec<String> {
        if self.columns.is_empty() {
            vec!["all".to_string()]
        } else {
            row.values.iter().map(|v| cell(v).to_string()).collect()
        }
    }

    /// Per metric, the row with the best mean ([`lower_is_better`] says which way); first of equals. Metrics
    /// without a value anywhere have none.
    pub fn best(&self) -> Vec<Best> {
        self.metrics
            .iter()
            .enumerate()
            .filter_map(|(m, name)| {
                let lower = lower_is_better(name);
                let mut best: Option<(usize, f64)> = None;
                for (i, row) in self.rows.iter().enumerate() {
                    let Some(v) = row.stats[m].mean else { continue };
                    let better = match best {
                        None => true,
                        Some((_, b)) if lower => v < b,
                        Some((_, b)) => v > b,
                    };
                    if better {
                        best = Some((i, v));
                    }
                }
                best.map(|(row, v)| Best {
                    metric: name.clone(),
                    row,
                    ties: (0..self.rows.len())
                        .filter(|&i| i != row && self.rows[i].stats[m].mean == Some(v))
                        .collect(),
                })
            })
            .collect()
    }

    /// The table in Markdown: configuration columns, `mean ± sd` per metric (with the metric's own n where some
    /// runs lack it), the runs per configuration, then a "best" line per metric.
    pub fn markdown(&self, runs: usize) -> String {
        let esc = |s: &str| s.replace('|', "\\|");
        let configs = self.rows.len();
        let mut out = format!(
            "# Report\n\n{runs} run{} in {configs} configuration{}; each metric is the mean ± sample sd over a \
             configuration's runs (seeds), n runs.\n\n",
            plural(runs),
            plural(configs)
        );
        let headers = self.config_headers();
        let mut head: Vec<String> = headers.iter().map(|h| esc(h)).collect();
        head.extend(self.metrics.iter().map(|m| esc(m)));
        head.push("n".into());
        let mut rule: Vec<&str> = headers.iter().map(|_| "---").collect();
        rule.extend(self.metrics.iter().map(|_| "---:"));
        rule.push("---:");
        out += &format!("| {} |\n|{}|\n", head.join(" | "), rule.join("|"));
        for row in &self.rows {
            let mut cells: Vec<String> = self.config_cells(row).iter().map(|c| esc(c)).collect();
            for stat in &row.stats {
                let mut text = mean_sd(stat);
                if stat.n != row.runs && stat.n > 0 {
                    text += &format!(" (n={})", stat.n);
                }
                cells.push(text);
            }
            cells.push(row.runs.to_string());
            out += &format!("| {} |\n", cells.join(" | "));
        }
        out.push('\n');
        for best in self.best() {
            let row = &self.rows[best.row];
            let m = self
                .metrics
                .iter()
                .position(|m| *m == best.metric)
                .expect("a metric");
            let way = if lower_is_better(&best.metric) {
                "lower"
            } else {
                "higher"
            };
            let ties: Vec<String> = best
                .ties
                .iter()
                .map(|&i| self.label(&self.rows[i]))
                .collect();
            let tied = if ties.is_empty() {
                String::new()
            } else {
                format!("; tied with {}", ties.join(" and "))
            };
            out += &format!(
                "- best {}: {} ({}; {way} is better{tied})\n",
                best.metric,
                self.label(row),
                mean_sd(&row.stats[m])
            );
        }
        out
    }

    /// The table as CSV: configuration columns, `<metric>_mean,<metric>_sd` per metric (empty where there is no
    /// value), `n`. Numbers at full precision.
    pub fn csv(&self) -> Result<Vec<u8>> {
        let fail = |e: csv::Error| Error::msg(format!("writing the CSV table: {e}"));
        let mut w = csv::Writer::from_writer(Vec::new());
        let mut head = self.config_headers();
        for m in &self.metrics {
            head.push(format!("{m}_mean"));
            head.push(format!("{m}_sd"));
        }
        head.push("n".into());
        w.write_record(&head).map_err(fail)?;
        let num = |v: Option<f64>| v.map_or(String::new(), |v| v.to_string());
        for row in &self.rows {
            let mut record = self.config_cells(row);
            for stat in &row.stats {
                record.push(num(stat.mean));
                record.push(num(stat.sd));
            }
            record.push(row.runs.to_string());
            w.write_record(&record).map_err(fail)?;
        }
        w.into_inner()
            .map_err(|e| Error::msg(format!("writing the CSV table: {e}")))
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

#[cfg(test)]
mod tests {
    use super::super::flatten::leaves;
    use super::*;
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    fn run(prior: &str, beta: f64, seed: u64, metrics: &[(&str, f64)]) -> Run {
        let tree = serde_json::json!({
            "name": format!("r{seed}"),
            "model": {"Elbo": {"prior": {prior: {}}, "beta": beta}},
            "train": {"seed": seed},
        });
        Run {
            dir: PathBuf::from(format!("{prior}-{beta}-{seed}")),
            config: leaves(&tree),
            metrics: metrics
                .iter()
                .map(|(k, v)| (k.to_string(), Some(*v)))
                .collect(),
            totals: BTreeMap::from([("wall_seconds".to_string(), 10.0 * seed as f64)]),
        }
    }

    fn runs() -> Vec<Run> {
        vec![
            run("StdNormal", 2.0, 1, &[("mcc", 0.5), ("mae", 3.0)]),
            run("Additive", 16.0, 1, &[("mcc", 0.9), ("mae", 1.0)]),
            run("StdNormal", 2.0, 2, &[("mcc", 0.7), ("mae", 2.0)]),
            run("Additive", 16.0, 2, &[("mcc", 0.8)]),
            run("Additive", 4.0, 3, &[("mcc", 0.6), ("mae", 4.0)]),
        ]
    }

    fn metrics() -> Vec<String> {
        ["mcc", "mae", "wall_seconds"].map(String::from).to_vec()
    }

    #[test]
    fn groups_fold_seeds_into_mean_and_sample_sd() {
        let runs = runs();
        let columns = columns(&runs, None).unwrap();
        assert_eq!(columns, ["model.beta", "model.prior"]);
        let t = build(&runs, &columns, &metrics());
        // Sorted by beta as a number: 2, 4, 16.
        let labels: Vec<String> = t.rows.iter().map(|r| t.label(r)).collect();
        assert_eq!(
            labels,
            [
                "model.beta=2.0, model.prior=StdNormal",
                "model.beta=4.0, model.prior=Additive",
                "model.beta=16.0, model.prior=Additive",
            ]
        );
        // mcc over 0.5, 0.7: mean 0.6, sd sqrt(((−0.1)² + 0.1²) / 1) = 0.1414….
        let s = &t.rows[0].stats[0];
        assert_eq!(s.n, 2);
        assert!((s.mean.unwrap() - 0.6).abs() < 1e-12);
        assert!((s.sd.unwrap() - 0.02f64.sqrt()).abs() < 1e-12);
        assert_eq!(mean_sd(s), "0.600 ± 0.141");
        // One run: no sd.
        assert_eq!(t.rows[1].stats[0].sd, None);
        assert_eq!(mean_sd(&t.rows[1].stats[0]), "0.600 ± –");
        // mae is missing from one of beta=16's runs: its n counts the run that has it.
        assert_eq!(t.rows[2].runs, 2);
        assert_eq!(
            t.rows[2].stats[1],
            Stat {
                n: 1,
                mean: Some(1.0),
                sd: None
            }
        );
        // wall_seconds 10, 20 → 15 ± 7.07.
        assert_eq!(mean_sd(&t.rows[0].stats[2]), "15.0 ± 7.1");
        let md = t.markdown(runs.len());
        assert!(
            md.contains("| model.beta | model.prior | mcc | mae | wall_seconds | n |"),
            "{md}"
        );
        assert!(
            md.contains("| 16.0 | Additive | 0.850 ± 0.071 | 1.00 ± – (n=1) | 15.0 ± 7.1 | 2 |"),
            "{md}"
        );
    }

    #[test]
    fn best_follows_each_metrics_direction() {
        let runs = runs();
        let t = build(&runs, &columns(&runs, None).unwrap(), &metrics());
        let best: Vec<(String, usize)> = t.best().into_iter().map(|b| (b.metric, b.row)).collect();
        // mcc: higher (beta 16: 0.85); mae: lower (beta 16: 1.0); wall: lower (beta 4 has 30, others 15).
        assert_eq!(
            best,
            [
                ("mcc".into(), 2),
                ("mae".into(), 2),
                ("wall_seconds".into(), 0)
            ]
        );
        let md = t.markdown(runs.len());
        assert!(
            md.contains("- best mcc: model.beta=16.0, model.prior=Additive (0.850 ± 0.071; higher is better)"),
            "{md}"
        );
        assert!(md.contains("- best mae: model.beta=16.0"), "{md}");
        assert!(
            md.contains("- best wall_seconds: model.beta=2.0, model.prior=StdNormal (15.0 ± 7.1; lower is better; tied with model.beta=16.0, model.prior=Additive)"),
            "{md}"
        );
    }

    #[test]
    fn group_by_folds_the_other_keys_and_unknown_keys_list_the_differing_ones() {
        let runs = runs();
        let by = ["model.prior".to_string()];
        let t = build(&runs, &columns(&runs, Some(&by)).unwrap(), &metrics());
        assert_eq!(t.rows.len(), 2);
        assert_eq!(t.rows[0].runs, 3); // Additive
        let e = columns(&runs, Some(&["model.prio".to_string()]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`model.prio`")
                && e.contains("did you mean `model.prior`")
                && e.contains("differ on: model.beta, model.prior"),
            "{e}"
        );
    }

    #[test]
    fn one_configuration_is_one_row_named_all() {
        let runs: Vec<Run> = runs()
            .into_iter()
            .filter(|r| r.dir.to_string_lossy().starts_with("StdNormal"))
            .collect();
        let columns = columns(&runs, None).unwrap();
        assert!(columns.is_empty());
        let t = build(&runs, &columns, &metrics());
        assert_eq!(t.rows.len(), 1);
        assert!(t.markdown(2).contains("| config | mcc |"));
        assert!(t.markdown(2).contains("- best mcc: all (0.600 ± 0.141"));
    }

    #[test]
    fn csv_has_mean_and_sd_per_metric_then_n() {
        let runs = runs();
        let t = build(&runs, &columns(&runs, None).unwrap(), &metrics());
        let text = String::from_utf8(t.csv().unwrap()).unwrap();
        let mut lines = text.lines();
        assert_eq!(
            lines.next().unwrap(),
            "model.beta,model.prior,mcc_mean,mcc_sd,mae_mean,mae_sd,wall_seconds_mean,wall_seconds_sd,n"
        );
        assert_eq!(lines.nth(1).unwrap(), "4.0,Additive,0.6,,4,,30,,1");
    }

    #[test]
    fn mean_sd_keeps_three_significant_digits() {
        let s = |mean, sd| Stat {
            n: 2,
            mean: Some(mean),
            sd: Some(sd),
        };
        assert_eq!(mean_sd(&s(0.981, 0.004)), "0.981 ± 0.004");
        assert_eq!(mean_sd(&s(1080.13, 15.9)), "1080 ± 16");
        assert_eq!(mean_sd(&s(0.0123, 0.0004)), "0.0123 ± 0.0004");
        assert_eq!(mean_sd(&s(0.0, 0.0)), "0.000 ± 0.000");
        assert_eq!(mean_sd(&s(396.2, 0.4)), "396 ± 0.4");
        assert_eq!(mean_sd(&s(0.0655, 0.00002)), "0.0655 ± 0.00002");
        assert_eq!(mean_sd(&s(2.5e-6, 1e-6)), "2.50e-6 ± 1.00e-6");
        assert_eq!(mean_sd(&Stat::of(&[])), "n/a");
    }
}

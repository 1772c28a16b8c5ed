//! Checks that run before anything trains, so a bad config fails in seconds with the field named instead of
//! after training with no summary.
//!
//! - [`Experiment::check`] (at parse time): sizes ≥ 1 (never clamped), finite hyper-parameters, a valid
//!   optimizer and schedule, registered metric names.
//! - [`check_run`] (once the dataset and method are built, before step 1): non-empty splits, a batch that
//!   fits the training split, and what each metric reads (factors, labels, graphs, a simulator, model terms).

use super::{Experiment, LrSchedule};
use crate::data::{make_batch, Dataset, Split};
use crate::error::{Error, Result};
use crate::eval_context::MetricEntry;
use crate::method::Method;
use crate::metrics::{self, Need};
use candle_core::Device;

fn invalid(field: &str, message: String) -> Error {
    Error::Config {
        location: field.to_string(),
        message,
    }
}

fn at_least_one(field: &str, v: usize) -> Result<()> {
    if v == 0 {
        return Err(invalid(field, "must be at least 1, got 0".into()));
    }
    Ok(())
}

fn finite_in(field: &str, v: f64, ok: impl Fn(f64) -> bool, range: &str) -> Result<()> {
    if v.is_finite() && ok(v) {
        Ok(())
    } else {
        Err(invalid(
            field,
            format!("must be finite and {range}, got {v}"),
        ))
    }
}

impl Experiment {
    /// The rules a config must meet by itself; errors name the field.
    pub fn check(&self) -> Result<()> {
        let t = &self.train;
        at_least_one("train.steps", t.steps)?;
        at_least_one("train.batch_size", t.batch_size)?;
        at_least_one("train.checkpoint_every", t.checkpoint_every)?;
        at_least_one("train.log_every", t.log_every)?;
        let o = &t.optimizer;
        finite_in("train.optimizer.lr", o.lr, |v| v > 0.0, "> 0")?;
        let unit = |v: f64| (0.0..1.0).contains(&v);
        finite_in("train.optimizer.beta1", o.beta1, unit, "in [0, 1)")?;
        finite_in("train.optimizer.beta2", o.beta2, unit, "in [0, 1)")?;
        finite_in("train.optimizer.eps", o.eps, |v| v > 0.0, "> 0")?;
        let non_negative = |v: f64| v >= 0.0;
        finite_in(
            "train.optimizer.weight_decay",
            o.weight_decay,
            non_negative,
            "≥ 0",
        )?;
        match t.lr_schedule {
            LrSchedule::Constant => {}
            LrSchedule::StepDecay {
                every,
                factor,
                floor,
            } => {
                at_least_one("train.lr_schedule.StepDecay.every", every)?;
                finite_in(
                    "train.lr_schedule.StepDecay.factor",
                    factor,
                    non_negative,
                    "≥ 0",
                )?;
                finite_in(
                    "train.lr_schedule.StepDecay.floor",
                    floor,
                    non_negative,
                    "≥ 0",
                )?;
            }
            LrSchedule::Warmup { steps } => at_least_one("train.lr_schedule.Warmup.steps", steps)?,
        }
        at_least_one("eval.max_samples", self.eval.max_samples)?;
        for entry in &self.eval.metrics {
            metrics::find(entry.name()).map_err(|e| invalid("eval.metrics", e.to_string()))?;
        }
        if let Some(field) = first_non_finite(self)? {
            return Err(invalid(
                &field.0,
                format!("is {}: hyper-parameters must be finite numbers", field.1),
            ));
        }
        Ok(())
    }
}

/// The path and value of the first NaN or infinite number anywhere in the config (the model's and the
/// components' fields included), found by walking the config as a RON value tree.
fn first_non_finite(exp: &Experiment) -> Result<Option<(String, f64)>> {
    let text = exp.to_ron()?;
    let tree: ron::Value =
        ron::from_str(&text).map_err(|e| Error::msg(format!("re-reading the config: {e}")))?;
    Ok(find_non_finite(&tree, &mut Vec::new()))
}

fn find_non_finite(v: &ron::Value, path: &mut Vec<String>) -> Option<(String, f64)> {
    match v {
        ron::Value::Number(n) => {
            let f = n.into_f64();
            (!f.is_finite()).then(|| (path.join("."), f))
        }
        ron::Value::Map(map) => map.iter().find_map(|(k, v)| {
            path.push(match k {
                ron::Value::String(s) => s.clone(),
                other => format!("{other:?}"),
            });
            let hit = find_non_finite(v, path);
            path.pop();
            hit
        }),
        ron::Value::Seq(items) => items.iter().enumerate().find_map(|(i, v)| {
            path.push(i.to_string());
            let hit = find_non_finite(v, path);
            path.pop();
            hit
        }),
        ron::Value::Option(Some(v)) => find_non_finite(v, path),
        _ => None,
    }
}

/// The registered name of a component config, e.g. `ImageFolder`, for messages.
fn component_name(config: &impl serde::Serialize, fallback: &str) -> String {
    serde_json::to_value(config)
        .ok()
        .and_then(|v| v.as_object().and_then(|m| m.keys().next().cloned()))
        .unwrap_or_else(|| fallback.into())
}

fn dataset_name(exp: &Experiment) -> String {
    component_name(&exp.data, "the dataset")
}

/// Checks `exp` against its built dataset and method, before the first training step: the splits it trains,
/// draws figures and evaluates on are non-empty, a batch fits the training split, and every metric of
/// `eval.metrics` finds what it reads.
pub fn check_run(
    exp: &Experiment,
    data: &dyn Dataset,
    method: &dyn Method,
    device: &Device,
) -> Result<()> {
    let name = dataset_name(exp);
    for split in [Split::Train, Split::Test, exp.eval.split] {
        if data.split(split).is_empty() {
            return Err(Error::Data(format!(
                "{name}: the {} split is empty ({} rows in all); training, figures and evaluation need rows in both splits",
                format!("{split:?}").to_lowercase(),
                data.len()
            )));
        }
    }
    let train_rows = data.split(Split::Train).len();
    if exp.train.batch_size > train_rows {
        return Err(invalid(
            "train.batch_size",
            format!(
                "{} is larger than the {train_rows} rows of {name}'s train split",
                exp.train.batch_size
            ),
        ));
    }
    check_metrics(exp, &exp.eval.metrics, data, method, device)
}

/// Checks that every metric of `entries` is registered and finds what it reads in `data` and `method` (one test
/// row is pushed through the method to see the terms and nodes it reports).
pub fn check_metrics(
    exp: &Experiment,
    entries: &[MetricEntry],
    data: &dyn Dataset,
    method: &dyn Method,
    device: &Device,
) -> Result<()> {
    for entry in entries {
        metrics::find(entry.name()).map_err(|e| invalid("eval.metrics", e.to_string()))?;
    }
    let name = dataset_name(exp);
    if data.split(Split::Test).is_empty() {
        return Err(Error::Data(format!("{name}: the test split is empty")));
    }
    let probe = Probe::new(data, method, device)?;
    for entry in entries {
        let metric = entry.name();
        let info = metrics::find(metric)?;
        for need in info.needs() {
            if let Some(missing) = probe.lacks(*need)? {
                return Err(invalid(
                    "eval.metrics",
                    format!(
                        "metric `{metric}` needs {missing}, which this run ({name} data, {} model) lacks",
                        component_name(&exp.model, "its")
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// One test row pushed through the method, to see what it reports.
struct Probe<'a> {
    data: &'a dyn Dataset,
    method: &'a dyn Method,
    batch: crate::data::Batch,
}

impl<'a> Probe<'a> {
    fn new(data: &'a dyn Dataset, method: &'a dyn Method, device: &Device) -> Result<Self> {
        let row = data.split(Split::Test)[0];
        let batch = make_batch(data, &[row], device, &mut Vec::new())?;
        Ok(Self {
            data,
            method,
            batch,
        })
    }

    /// `Some(what is missing)` when `need` is not met.
    fn lacks(&self, need: Need) -> Result<Option<String>> {
        let spec = self.data.spec();
        let k = spec.factor_names.len();
        let missing = |ok: bool, what: &str| (!ok).then(|| what.to_string());
        Ok(match need {
            Need::Factors => missing(k > 0, "true factors"),
            Need::LabelsOrFactors => missing(
                k > 0 || !spec.label_names.is_empty(),
                "labels or true factors",
            ),
            Need::TrueGraph => missing(spec.graph.is_some(), "the data's true causal graph"),
            Need::LearnedGraph => match self.method.graph()? {
                None => Some("a learned causal graph (a causal layer with a graph)".into()),
                Some(a) if spec.graph.is_some() && a.dims().first() != Some(&k) => Some(format!(
                    "a learned graph over the {k} factors (the model's graph has {} nodes)",
                    a.dims()[0]
                )),
                Some(_) => None,
            },
            Need::TrueLatentGraphs => missing(
                !spec.latent_graphs.is_empty(),
                "the data's true latent-mechanism graphs",
            ),
            Need::LearnedLatentGraphs => missing(
                !self.method.latent_graphs()?.is_empty(),
                "learned latent-mechanism graphs",
            ),
            Need::ModelTerm(term) => missing(
                self.method.evaluate(&self.batch)?.get(term).is_some(),
                &format!("the model's `{term}` evaluation term"),
            ),
            Need::Simulator => missing(
                self.data.can_render() && k > 0,
                "a simulator that renders scenes from factors (e.g. Pendulum)",
            ),
            Need::InterventionSimulator => missing(
                self.data.can_render() && self.data.can_simulate() && spec.graph.is_some(),
                "a simulator of interventions with a true graph (e.g. Pendulum)",
            ),
            Need::CausalNodes => match self.method.node_values(&self.batch.x)? {
                None => Some("a model with causal nodes (a causal layer with a graph)".into()),
                Some(v) if v.dims().get(1) != Some(&k) => Some(format!(
                    "one causal node per factor ({k}; the model has {})",
                    v.dims().get(1).copied().unwrap_or(0)
                )),
                Some(_) => None,
            },
            Need::ImportanceWeights => missing(
                self.method
                    .log_importance_weights(&self.batch.x, 1, &mut crate::rng::Rng::new(0))?
                    .is_some(),
                "a model with tractable prior and posterior densities (importance weights)",
            ),
            Need::UnitKl => missing(
                self.method
                    .unit_kl(&self.batch.x, &mut crate::rng::Rng::new(0))?
                    .is_some(),
                "a model with Gaussian posteriors and priors unit by unit (an identity causal layer)",
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"(
        data: {"Synthetic": (n_train: 64, n_test: 16)},
        model: {"Elbo": (latent_dim: 2, encoder: {"Mlp": (hidden: [4])}, decoder: {"Mlp": (hidden: [4])})},
        train: (steps: 1, batch_size: 2),
        eval: (metrics: ["mcc"]),
    )"#;

    fn parse_err(overrides: &[&str]) -> String {
        let o: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
        Experiment::parse(GOOD, "t.ron", &o)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn the_base_config_passes() {
        Experiment::parse(GOOD, "t.ron", &[]).unwrap();
    }

    #[test]
    fn zero_sizes_are_errors_naming_the_field() {
        for field in [
            "train.steps",
            "train.batch_size",
            "train.checkpoint_every",
            "train.log_every",
            "eval.max_samples",
        ] {
            let e = parse_err(&[&format!("{field}=0")]);
            assert!(e.contains(field) && e.contains("at least 1"), "{e}");
        }
    }

    #[test]
    fn optimizer_settings_are_range_checked() {
        for (set, field) in [
            ("train.optimizer.lr=0", "lr"),
            ("train.optimizer.lr=-1e-3", "lr"),
            ("train.optimizer.beta1=1.0", "beta1"),
            ("train.optimizer.beta2=-0.1", "beta2"),
            ("train.optimizer.eps=0", "eps"),
            ("train.optimizer.weight_decay=-1", "weight_decay"),
            (
                "train.lr_schedule={\"Warmup\": {\"steps\": 0}}",
                "Warmup.steps",
            ),
        ] {
            let e = parse_err(&[set]);
            assert!(e.contains(field), "{set}: {e}");
        }
    }

    #[test]
    fn non_finite_numbers_anywhere_are_named() {
        let text = GOOD.replace("batch_size: 2", "batch_size: 2, optimizer: (lr: inf)");
        let e = Experiment::parse(&text, "t.ron", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("train.optimizer.lr") && e.contains("inf"), "{e}");
        let text = GOOD.replace(
            r#"(hidden: [4])})}"#,
            r#"(hidden: [4])}, objectives: [{"PriorKl": (weight: NaN)}])}"#,
        );
        let e = Experiment::parse(&text, "t.ron", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("weight") && e.contains("NaN"), "{e}");
    }

    #[test]
    fn unknown_metric_names_get_a_suggestion() {
        let text = GOOD.replace(r#"["mcc"]"#, r#"["mcc", "mgi"]"#);
        let e = Experiment::parse(&text, "t.ron", &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("eval.metrics") && e.contains("did you mean mig"),
            "{e}"
        );
    }

    #[test]
    fn a_run_whose_metrics_the_data_cannot_serve_is_refused() {
        let text = GOOD.replace(r#"["mcc"]"#, r#"["mcc", "shd_classical"]"#);
        let exp = Experiment::parse(&text, "t.ron", &[]).unwrap();
        let data = exp.data.build(0).unwrap();
        let method = exp
            .model
            .build(&crate::method::MethodContext {
                spec: data.spec(),
                device: Device::Cpu,
                seed: 0,
                optimizer: &exp.train.optimizer,
                label_stats: None,
            })
            .unwrap();
        let e = check_run(&exp, data.as_ref(), method.as_ref(), &Device::Cpu)
            .unwrap_err()
            .to_string();
        assert!(e.contains("shd_classical") && e.contains("graph"), "{e}");
        let mut big = exp;
        big.eval.metrics = vec!["mcc".into()];
        big.train.batch_size = 1 << 30;
        let e = check_run(&big, data.as_ref(), method.as_ref(), &Device::Cpu)
            .unwrap_err()
            .to_string();
        assert!(e.contains("train.batch_size"), "{e}");
    }

    #[test]
    fn an_empty_split_is_refused_by_name() {
        use crate::data::{ArrayDataset, DataSpec, Observations};
        let exp = Experiment::parse(GOOD, "t.ron", &[]).unwrap();
        let spec = DataSpec {
            obs_shape: vec![3],
            factor_names: vec!["f".into()],
            ..Default::default()
        };
        let method = exp
            .model
            .build(&crate::method::MethodContext {
                spec: &spec,
                device: Device::Cpu,
                seed: 0,
                optimizer: &exp.train.optimizer,
                label_stats: None,
            })
            .unwrap();
        let obs = || Observations::F32(vec![0.5; 12]);
        let factors = Some(vec![0.0; 4]);
        let no_test =
            ArrayDataset::new(spec.clone(), obs(), factors.clone(), None, vec![]).unwrap();
        let e = check_run(&exp, &no_test, method.as_ref(), &Device::Cpu)
            .unwrap_err()
            .to_string();
        assert!(e.contains("Synthetic: the test split is empty"), "{e}");
        let no_train = ArrayDataset::new(spec, obs(), factors, None, vec![0, 1, 2, 3]).unwrap();
        let e = check_run(&exp, &no_train, method.as_ref(), &Device::Cpu)
            .unwrap_err()
            .to_string();
        assert!(e.contains("the train split is empty"), "{e}");
    }
}

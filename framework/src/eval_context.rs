//! What evaluation reads of a run: the [`EvalContext`] (method, dataset, device, run directory, seed and the
//! evaluation split) and the entries of `eval.metrics` ([`MetricEntry`]), each a metric's name with, for metrics
//! that take them, its own settings ([`MetricSettings`]).
//!
//! Evaluation sits below training: `train` builds an `EvalContext` from its run, and the metrics, the oracle and
//! `eval` read nothing else of it.

use crate::data::{Dataset, DatasetConfig, Split};
use crate::error::{Error, Result};
use crate::method::Method;
use candle_core::Device;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::any::Any;
use std::path::Path;

/// A trained method with its data, as the metrics that need the model see it.
#[derive(Clone, Copy)]
pub struct EvalContext<'a> {
    pub method: &'a dyn Method,
    pub data: &'a dyn Dataset,
    /// The data as configured (part of the oracle's cache key).
    pub data_config: &'a dyn DatasetConfig,
    pub device: &'a Device,
    /// The run directory (the oracle caches its regressor under `<run>/oracle`).
    pub run_dir: &'a Path,
    /// The run's seed (`train.seed`).
    pub seed: u64,
    /// The config's `eval.split`: the split model metrics score unless their settings name another.
    pub split: Split,
}

/// The settings of one metric, written with its name in `eval.metrics`: `{"intervention": (rows: 64)}`. The
/// name under which a settings type is registered (`#[typetag::serde(name = "...")]`) is its metric's name.
#[typetag::serde]
pub trait MetricSettings: std::fmt::Debug + Send + Sync + Any {
    fn clone_box(&self) -> Box<dyn MetricSettings>;
}

impl Clone for Box<dyn MetricSettings> {
    fn clone(&self) -> Self {
        self.clone_box()
    }
}

/// One entry of `eval.metrics`: a metric by name (`"mcc"`, default settings), or a metric with its settings
/// (`{"betavae_score": (train_points: 1000)}`).
#[derive(Clone, Debug)]
pub enum MetricEntry {
    Name(String),
    Settings(Box<dyn MetricSettings>),
}

impl MetricEntry {
    /// The metric's name.
    pub fn name(&self) -> &str {
        match self {
            MetricEntry::Name(n) => n,
            MetricEntry::Settings(s) => s.typetag_name(),
        }
    }

    /// The settings given, if any.
    pub fn given(&self) -> Option<&dyn MetricSettings> {
        match self {
            MetricEntry::Name(_) => None,
            MetricEntry::Settings(s) => Some(s.as_ref()),
        }
    }

    /// The settings of this entry as `T`: those given, else `T`'s defaults.
    pub fn settings<T: MetricSettings + Clone + Default>(&self) -> Result<T> {
        match self.given() {
            None => Ok(T::default()),
            Some(s) => (s as &dyn Any).downcast_ref::<T>().cloned().ok_or_else(|| {
                Error::msg(format!(
                    "metric `{}`: its settings are not of the type the metric reads",
                    self.name()
                ))
            }),
        }
    }

    /// The entries of `names`, each with the settings `configured` gives the metric of that name, if any.
    pub fn resolve(names: &[String], configured: &[MetricEntry]) -> Vec<MetricEntry> {
        names
            .iter()
            .map(|n| {
                configured
                    .iter()
                    .find(|e| e.name() == n)
                    .cloned()
                    .unwrap_or_else(|| MetricEntry::Name(n.clone()))
            })
            .collect()
    }
}

impl From<&str> for MetricEntry {
    fn from(name: &str) -> Self {
        MetricEntry::Name(name.to_string())
    }
}

impl From<String> for MetricEntry {
    fn from(name: String) -> Self {
        MetricEntry::Name(name)
    }
}

impl Serialize for MetricEntry {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            MetricEntry::Name(n) => s.serialize_str(n),
            MetricEntry::Settings(settings) => settings.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for MetricEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        d.deserialize_any(EntryVisitor)
    }
}

struct EntryVisitor;

impl<'de> Visitor<'de> for EntryVisitor {
    type Value = MetricEntry;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(
            "a metric name (\"mcc\") or a metric with its settings ({\"intervention\": (rows: 64)})",
        )
    }

    fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<MetricEntry, E> {
        Ok(MetricEntry::Name(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> std::result::Result<MetricEntry, E> {
        Ok(MetricEntry::Name(v))
    }

    fn visit_map<A: MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<MetricEntry, A::Error> {
        let Some(name) = map.next_key::<String>()? else {
            return Err(de::Error::custom(
                "an empty map is no metric: give a name, \"mcc\", or a name with settings, {\"intervention\": (rows: 64)}",
            ));
        };
        let settings = Box::<dyn MetricSettings>::deserialize(de::value::MapAccessDeserializer::new(
            OneEntry {
                key: Some(name.clone()),
                map,
            },
        ))
        .map_err(|e: A::Error| {
            let text = e.to_string();
            // serde's wording, and RON's
            let unknown = [
                format!("unknown variant `{name}`"),
                format!("Unexpected enum variant named `{name}`"),
            ];
            if unknown.iter().any(|u| text.starts_with(u)) {
                let with: Vec<&str> = text.split('`').skip(3).step_by(2).collect();
                de::Error::custom(format!(
                    "metric `{name}` takes no settings (metrics with settings: {}); name it alone, as \"{name}\"",
                    with.join(", ")
                ))
            } else {
                de::Error::custom(format!("metric `{name}`: {text}"))
            }
        })?;
        Ok(MetricEntry::Settings(settings))
    }
}

/// A map whose first key has been read already: hands it out again, then the rest of the map.
struct OneEntry<A> {
    key: Option<String>,
    map: A,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for OneEntry<A> {
    type Error = A::Error;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> std::result::Result<Option<K::Value>, A::Error> {
        match self.key.take() {
            Some(k) => seed
                .deserialize(de::value::StringDeserializer::<A::Error>::new(k))
                .map(Some),
            None => self.map.next_key_seed(seed),
        }
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> std::result::Result<V::Value, A::Error> {
        self.map.next_value_seed(seed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct Probe {
        rows: usize,
        kind: Option<Split>,
    }

    #[typetag::serde(name = "probe_metric")]
    impl MetricSettings for Probe {
        fn clone_box(&self) -> Box<dyn MetricSettings> {
            Box::new(self.clone())
        }
    }

    #[test]
    fn entries_read_as_names_or_names_with_settings() {
        let v: Vec<MetricEntry> = ron::from_str(
            r#"["mcc", {"probe_metric": (rows: 3, kind: Some(Train))}, {"probe_metric": ()}]"#,
        )
        .unwrap();
        assert_eq!(v[0].name(), "mcc");
        assert!(v[0].given().is_none());
        assert_eq!(v[0].settings::<Probe>().unwrap(), Probe::default());
        assert_eq!(v[1].name(), "probe_metric");
        assert_eq!(
            v[1].settings::<Probe>().unwrap(),
            Probe {
                rows: 3,
                kind: Some(Split::Train)
            }
        );
        assert_eq!(v[2].settings::<Probe>().unwrap(), Probe::default());
        // Through JSON and back, as `--set` and `extends` edit a config.
        let json = serde_json::to_value(&v).unwrap();
        assert_eq!(json[0], serde_json::json!("mcc"));
        let back: Vec<MetricEntry> = serde_json::from_value(json).unwrap();
        assert_eq!(back[1].settings::<Probe>().unwrap().rows, 3);
        let text = ron::to_string(&v).unwrap();
        let again: Vec<MetricEntry> = ron::from_str(&text).unwrap();
        assert_eq!(again[1].settings::<Probe>().unwrap().rows, 3);
    }

    #[test]
    fn settings_for_a_metric_without_them_are_an_error_naming_it() {
        let err = ron::from_str::<Vec<MetricEntry>>(r#"[{"mcc": (rows: 3)}]"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("metric `mcc` takes no settings"), "{err}");
        assert!(err.contains("probe_metric"), "{err}");
        let err = ron::from_str::<Vec<MetricEntry>>(r#"[{"probe_metric": (nope: 3)}]"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("probe_metric") && err.contains("nope"),
            "{err}"
        );
    }

    #[test]
    fn resolve_takes_configured_settings_by_name() {
        let configured: Vec<MetricEntry> =
            ron::from_str(r#"["mcc", {"probe_metric": (rows: 9)}]"#).unwrap();
        let r = MetricEntry::resolve(&["probe_metric".into(), "mig".into()], &configured);
        assert_eq!(r[0].settings::<Probe>().unwrap().rows, 9);
        assert_eq!(r[1].name(), "mig");
        assert!(r[1].given().is_none());
    }
}

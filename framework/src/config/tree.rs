//! The config as a JSON tree, the form `--set` and `extends` edit: a typed config is serialised into it, RON text
//! (an override value, a file that extends another) is read into it, and the typed config is rebuilt from it.
//!
//! The tree keeps RON's meaning. `ron::Value` cannot: it reads a bare `Affine` as unit and `Scm(f2: Affine)` as a
//! nameless struct, so enum variant names are lost. Text is therefore buffered through serde's untagged-enum
//! path, for which RON keeps names in serde's own enum encoding (the one `serde_json` uses for a typed config):
//! a unit variant is its name as a string, `Scm(f2: Affine)` is `{"Scm": {"f2": "Affine"}}`, `Some(x)` is `x`,
//! `None` is null, and `()` (unit or an empty struct, as in `{"StdNormal": ()}`) is `{}`. A non-finite number
//! stays its text (`"NaN"`, `"inf"`), so that it reads back as what was written. The rebuild ([`from_tree`])
//! takes `{}` and null as unit and as an empty struct, as RON does.

use serde::de::{self, DeserializeSeed, IntoDeserializer, Unexpected, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

type Error = serde_json::Error;

/// RON text as a tree; errors carry RON's position.
pub(crate) fn parse(text: &str) -> Result<Value, ron::error::SpannedError> {
    ron::Options::default()
        .from_str::<Buffered>(text)
        .map(|Buffered::Tree(Tree(v))| v)
}

/// The typed config from a tree.
pub(crate) fn from_tree<T: de::DeserializeOwned>(value: &Value) -> Result<T, Error> {
    T::deserialize(TreeDe(value))
}

/// An untagged enum makes serde buffer the input in its own content type, for which RON keeps the names of
/// enum variants (see the module comment).
#[derive(Deserialize)]
#[serde(untagged, expecting = "a value with text map keys")]
enum Buffered {
    Tree(Tree),
}

struct Tree(Value);

impl<'de> Deserialize<'de> for Tree {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TreeVisitor).map(Tree)
    }
}

struct TreeVisitor;

impl<'de> Visitor<'de> for TreeVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a RON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        match (i64::try_from(v), u64::try_from(v)) {
            (Ok(i), _) => Ok(Value::from(i)),
            (_, Ok(u)) => Ok(Value::from(u)),
            _ => Ok(Value::from(v as f64)),
        }
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        Ok(u64::try_from(v).map_or(Value::from(v as f64), Value::from))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or_else(
            || {
                let text = if v.is_nan() {
                    "NaN"
                } else if v > 0.0 {
                    "inf"
                } else {
                    "-inf"
                };
                Value::String(text.into())
            },
            Value::Number,
        ))
    }
    fn visit_char<E>(self, v: char) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Object(Map::new()))
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(TreeVisitor)
    }
    fn visit_newtype_struct<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(TreeVisitor)
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Tree(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(Key(k)) = map.next_key()? {
            let Tree(v) = map.next_value()?;
            out.insert(k, v);
        }
        Ok(Value::Object(out))
    }
}

/// A map key as text (numbers and the like are written out).
struct Key(String);

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match d.deserialize_any(TreeVisitor)? {
            Value::String(s) => Ok(Key(s)),
            Value::Object(m) if m.is_empty() => Ok(Key("()".into())),
            Value::Array(_) | Value::Object(_) => Err(de::Error::custom("a map key must be text")),
            other => Ok(Key(other.to_string())),
        }
    }
}

/// Merges `over` into `base`: maps merge key by key; a single-entry map (a component or enum variant) whose
/// name differs from the base's replaces it whole; everything else replaces. `path` names `base` in errors.
pub(crate) fn merge(base: &mut Value, over: Value, path: &str) -> Result<(), String> {
    let (Value::Object(b), Value::Object(o)) = (&mut *base, &over) else {
        *base = over;
        return Ok(());
    };
    // A different name in a single-entry map replaces the component, unless it is one of the component's
    // fields (the name was left out).
    let renamed = b.len() == 1
        && o.len() == 1
        && o.keys()
            .all(|k| !b.contains_key(k) && !b.values().any(|inner| inner.get(k).is_some()));
    if renamed {
        *base = over;
        return Ok(());
    }
    let Value::Object(o) = over else {
        unreachable!("matched above")
    };
    for (k, v) in o {
        let at = if path.is_empty() {
            k.clone()
        } else {
            format!("{path}.{k}")
        };
        match b.get_mut(&k) {
            Some(slot) => merge(slot, v, &at)?,
            None => return Err(missing_field(b, &k, path)),
        }
    }
    Ok(())
}

fn missing_field(b: &Map<String, Value>, key: &str, path: &str) -> String {
    // Fields given without the component's name: say how to name it.
    if let (1, Some((name, Value::Object(inner)))) = (b.len(), b.iter().next()) {
        if inner.contains_key(key) {
            let place = if path.is_empty() { "the config" } else { path };
            return format!(
                "`{place}` is a `{name}`: to change its fields, name it as the file does, \
                 `{{\"{name}\": ({key}: ...)}}` (a different name replaces it)"
            );
        }
    }
    let at = if path.is_empty() {
        String::new()
    } else {
        format!("at `{path}`: ")
    };
    format!("{at}{}", super::overrides::no_field(key, b.keys()))
}

struct TreeDe<'a>(&'a Value);

fn unexpected(v: &Value) -> Unexpected<'_> {
    match v {
        Value::Null => Unexpected::Option,
        Value::Bool(b) => Unexpected::Bool(*b),
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => Unexpected::Unsigned(u),
            (_, Some(i)) => Unexpected::Signed(i),
            _ => Unexpected::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => Unexpected::Str(s),
        Value::Array(_) => Unexpected::Seq,
        Value::Object(_) => Unexpected::Map,
    }
}

/// `()` in RON: unit, an empty struct or an empty tuple.
fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

const EMPTY: &[Value] = &[];

impl<'de> de::Deserializer<'de> for TreeDe<'_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => v.visit_unit(),
            Value::Bool(b) => v.visit_bool(*b),
            Value::Number(n) => match (n.as_u64(), n.as_i64()) {
                (Some(u), _) => v.visit_u64(u),
                (_, Some(i)) => v.visit_i64(i),
                _ => v.visit_f64(n.as_f64().unwrap_or(f64::NAN)),
            },
            Value::String(s) => v.visit_str(s),
            Value::Array(items) => visit_seq(items, v),
            Value::Object(map) => visit_map(map, v),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => v.visit_none(),
            _ => v.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        if is_empty(self.0) {
            v.visit_unit()
        } else {
            Err(de::Error::invalid_type(unexpected(self.0), &v))
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        v: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_unit(v)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        v: V,
    ) -> Result<V::Value, Error> {
        v.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Array(items) => visit_seq(items, v),
            other if is_empty(other) => visit_seq(EMPTY, v),
            other => Err(de::Error::invalid_type(unexpected(other), &v)),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, v: V) -> Result<V::Value, Error> {
        self.deserialize_seq(v)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        v: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(v)
    }

    fn deserialize_map<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Object(map) => visit_map(map, v),
            Value::Null => visit_map(&Map::new(), v),
            other => Err(de::Error::invalid_type(unexpected(other), &v)),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Error> {
        match self.0 {
            Value::Array(items) => visit_seq(items, v),
            _ => self.deserialize_map(v),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Error> {
        match self.0 {
            Value::String(s) => v.visit_enum(Variant {
                name: s,
                value: None,
            }),
            Value::Object(map) if map.len() == 1 => {
                let (name, value) = map.iter().next().expect("one entry");
                v.visit_enum(Variant {
                    name,
                    value: Some(value),
                })
            }
            Value::Object(_) => Err(de::Error::invalid_value(
                Unexpected::Map,
                &"a variant name, or a map with a single name",
            )),
            other => Err(de::Error::invalid_type(
                unexpected(other),
                &"an enum variant",
            )),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf identifier
    }
}

fn visit_seq<'de, V: Visitor<'de>>(items: &[Value], v: V) -> Result<V::Value, Error> {
    let mut seq = Seq(items.iter());
    let out = v.visit_seq(&mut seq)?;
    match seq.0.len() {
        0 => Ok(out),
        left => Err(de::Error::invalid_length(
            items.len(),
            &format!("{} elements", items.len() - left).as_str(),
        )),
    }
}

fn visit_map<'de, V: Visitor<'de>>(map: &Map<String, Value>, v: V) -> Result<V::Value, Error> {
    v.visit_map(Entries {
        iter: map.iter(),
        value: None,
    })
}

struct Seq<'a>(std::slice::Iter<'a, Value>);

impl<'de> de::SeqAccess<'de> for Seq<'_> {
    type Error = Error;
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        self.0
            .next()
            .map(|v| seed.deserialize(TreeDe(v)))
            .transpose()
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

struct Entries<'a> {
    iter: serde_json::map::Iter<'a>,
    value: Option<&'a Value>,
}

impl<'de> de::MapAccess<'de> for Entries<'_> {
    type Error = Error;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let Some((k, v)) = self.iter.next() else {
            return Ok(None);
        };
        self.value = Some(v);
        seed.deserialize(k.as_str().into_deserializer()).map(Some)
    }
    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, Error> {
        let v = self
            .value
            .take()
            .ok_or_else(|| <Error as de::Error>::custom("a map value without its key"))?;
        seed.deserialize(TreeDe(v))
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

struct Variant<'a> {
    name: &'a str,
    value: Option<&'a Value>,
}

impl<'de, 'a> de::EnumAccess<'de> for Variant<'a> {
    type Error = Error;
    type Variant = VariantValue<'a>;
    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self::Variant), Error> {
        let name = seed.deserialize(self.name.into_deserializer())?;
        Ok((name, VariantValue(self.value)))
    }
}

struct VariantValue<'a>(Option<&'a Value>);

impl<'de> de::VariantAccess<'de> for VariantValue<'_> {
    type Error = Error;
    fn unit_variant(self) -> Result<(), Error> {
        match self.0 {
            None => Ok(()),
            Some(v) if is_empty(v) => Ok(()),
            Some(v) => Err(de::Error::invalid_type(unexpected(v), &"a unit variant")),
        }
    }
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        match self.0 {
            Some(v) => seed.deserialize(TreeDe(v)),
            None => Err(de::Error::invalid_type(
                Unexpected::UnitVariant,
                &"a variant with a value, `Name(value)`",
            )),
        }
    }
    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, v: V) -> Result<V::Value, Error> {
        match self.0 {
            Some(value) => de::Deserializer::deserialize_seq(TreeDe(value), v),
            None => Err(de::Error::invalid_type(Unexpected::UnitVariant, &v)),
        }
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Error> {
        match self.0 {
            Some(value) => de::Deserializer::deserialize_map(TreeDe(value), v),
            None => Err(de::Error::invalid_type(Unexpected::UnitVariant, &v)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;
    use serde_json::json;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum Mech {
        Affine,
        Scm { f2: Box<Mech> },
        Means(Vec<Vec<usize>>),
        Pair(f64, f64),
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize, Default)]
    #[serde(deny_unknown_fields, default)]
    struct Empty {}

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Parts {
        mech: Mech,
        other: Mech,
        input: Mech,
        pair: Mech,
        relative: Option<f64>,
        none: Option<f64>,
        empty: Empty,
        unit: (),
        scale: Vec<(f64, f64)>,
        name: String,
    }

    const TEXT: &str = r#"(
        mech: Affine, other: Scm(f2: Affine), input: Means([[0], [2, 3]]), pair: Pair(1.0, 2.5),
        relative: Some(0.3), none: None, empty: (), unit: (), scale: [(0.0, 44.0)], name: "x",
    )"#;

    #[test]
    fn ron_meaning_survives_the_tree() {
        let tree = parse(TEXT).unwrap();
        assert_eq!(tree["mech"], json!("Affine"));
        assert_eq!(tree["other"], json!({"Scm": {"f2": "Affine"}}));
        assert_eq!(tree["input"], json!({"Means": [[0], [2, 3]]}));
        assert_eq!(tree["relative"], json!(0.3));
        assert_eq!(tree["none"], Value::Null);
        assert_eq!(tree["empty"], json!({}));
        let typed: Parts = from_tree(&tree).unwrap();
        assert_eq!(typed, ron::from_str::<Parts>(TEXT).unwrap());
        // And the typed value's own tree reads back the same.
        let again: Parts = from_tree(&serde_json::to_value(&typed).unwrap()).unwrap();
        assert_eq!(again, typed);
    }

    #[test]
    fn components_keep_their_names_and_units() {
        let tree = parse(r#"{"StdNormal": ()}"#).unwrap();
        assert_eq!(tree, json!({"StdNormal": {}}));
        let tree = parse(r#"{"Mlp": (hidden: [64], likelihood: Bernoulli)}"#).unwrap();
        assert_eq!(
            tree,
            json!({"Mlp": {"hidden": [64], "likelihood": "Bernoulli"}})
        );
        assert_eq!(parse("NaN").unwrap(), json!("NaN"));
    }

    #[test]
    fn syntax_errors_keep_their_position() {
        let e = parse("(\n  a: [1,\n").unwrap_err();
        assert!(e.span.start.line >= 2, "{e}");
    }

    #[test]
    fn merge_follows_names() {
        let mut base = json!({
            "data": {"Pendulum": {"size": 96, "channels": 4}},
            "model": {"Elbo": {"latent_dim": 16, "prior": {"LabelConditional": {"beta": 1.0}}, "objectives": [1, 2]}},
            "train": {"steps": 10, "seed": 1},
        });
        let over = parse(
            r#"(
            data: {"Pendulum": (size: 32)},
            model: {"Elbo": (prior: {"StdNormal": ()}, objectives: [3])},
            train: (steps: 20),
        )"#,
        )
        .unwrap();
        merge(&mut base, over, "").unwrap();
        assert_eq!(
            base,
            json!({
                "data": {"Pendulum": {"size": 32, "channels": 4}},
                "model": {"Elbo": {"latent_dim": 16, "prior": {"StdNormal": {}}, "objectives": [3]}},
                "train": {"steps": 20, "seed": 1},
            })
        );
    }

    #[test]
    fn merge_names_unknown_fields() {
        let mut base =
            json!({"train": {"steps": 10, "seed": 1}, "model": {"Elbo": {"latent_dim": 3}}});
        let e = merge(&mut base.clone(), json!({"train": {"stpes": 3}}), "").unwrap_err();
        assert!(
            e.contains("at `train`") && e.contains("did you mean `steps`"),
            "{e}"
        );
        let e = merge(&mut base, json!({"model": {"latent_dim": 4}}), "").unwrap_err();
        assert!(e.contains("`model` is a `Elbo`"), "{e}");
    }
}

//! Property tests over the config parser and `--set` overrides: whatever the text, parsing returns a config
//! or an error, never a panic.
//!
//! Inputs are the shipped configs with random edits (characters and RON tokens inserted, replaced and
//! deleted, the text cut short), random text, and random `--set` assignments built from the configs'
//! own field paths. Cases per property: `PROPTEST_CASES`, default 20,000 (see [`config`]); a longer campaign
//! is `PROPTEST_CASES=1000000 cargo test --release -p carve-tests --test config_fuzz`.

use carve::config::Experiment;
use proptest::prelude::*;
use std::sync::OnceLock;

/// The text of every shipped config.
fn shipped() -> &'static [String] {
    static TEXTS: OnceLock<Vec<String>> = OnceLock::new();
    TEXTS.get_or_init(|| {
        carve_tests::all_configs()
            .iter()
            .map(|p| std::fs::read_to_string(p).expect("config text"))
            .collect()
    })
}

/// Every shipped config with its path, which an `extends` in it is relative to.
fn shipped_with_origin() -> &'static [(String, String)] {
    static TEXTS: OnceLock<Vec<(String, String)>> = OnceLock::new();
    TEXTS.get_or_init(|| {
        carve_tests::all_configs()
            .iter()
            .zip(shipped())
            .map(|(p, text)| (p.display().to_string(), text.clone()))
            .collect()
    })
}

/// Every field path of every shipped config as `--set` writes it (component maps stepped through), so
/// random overrides reach real fields and not only the "no field" error.
fn field_paths() -> &'static [String] {
    static PATHS: OnceLock<Vec<String>> = OnceLock::new();
    PATHS.get_or_init(|| {
        carve_tests::link();
        let mut out = Vec::new();
        for (origin, text) in shipped_with_origin() {
            let exp = Experiment::parse(text, origin, &[]).expect("shipped config parses");
            let value = serde_json::to_value(&exp).expect("config as JSON");
            collect_paths(&value, String::new(), &mut out);
        }
        out.sort();
        out.dedup();
        out
    })
}

fn collect_paths(node: &serde_json::Value, prefix: String, out: &mut Vec<String>) {
    let join = |k: &str| {
        if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}.{k}")
        }
    };
    match node {
        serde_json::Value::Object(map) => {
            let component = map.len() == 1 && map.values().all(|v| v.is_object());
            for (k, v) in map {
                if component {
                    collect_paths(v, prefix.clone(), out);
                } else {
                    collect_paths(v, join(k), out);
                }
            }
        }
        serde_json::Value::Array(items) => {
            for (i, v) in items.iter().enumerate().take(3) {
                collect_paths(v, join(&i.to_string()), out);
            }
        }
        _ => {}
    }
    if !prefix.is_empty() {
        out.push(prefix);
    }
}

/// Tokens a careless edit of a RON config would produce.
const TOKENS: &[&str] = &[
    "(",
    ")",
    "{",
    "}",
    "[",
    "]",
    ":",
    ",",
    "\"",
    "\"Mlp\"",
    "\"BetaVae\"",
    "\"Pendulum\"",
    "Some(",
    "None",
    "0",
    "-1",
    "1e9",
    "1e308",
    "-1e308",
    "NaN",
    "inf",
    "-inf",
    "18446744073709551616",
    "0.0",
    "true",
    "//",
    "/*",
    "'",
    "\\",
    "\u{feff}",
    "é",
    "\0",
    "r#\"",
    "#",
    "hidden",
    "latent_dim",
    "steps",
    "size",
    "name",
];

/// Field names and component names that `--set` paths are built from.
const KEYS: &[&str] = &[
    "model",
    "data",
    "train",
    "eval",
    "encoder",
    "decoder",
    "prior",
    "causal",
    "objectives",
    "hidden",
    "latent_dim",
    "beta",
    "steps",
    "batch_size",
    "seed",
    "optimizer",
    "lr",
    "lr_schedule",
    "size",
    "channels",
    "metrics",
    "max_samples",
    "intervention",
    "regressor",
    "0",
    "1",
    "99",
    "Mlp",
    "",
    " ",
    "..",
    "-1",
    "activation",
    "likelihood",
    "name",
    "concepts",
    "n_train",
];

/// `--set` values: numbers at the edges, strings, lists, maps, malformed RON.
const VALUES: &[&str] = &[
    "0",
    "1",
    "-1",
    "1e9",
    "1e400",
    "NaN",
    "inf",
    "[]",
    "[1,2]",
    "[[[[1]]]]",
    "{}",
    "{\"Mlp\": ()}",
    "{\"Nope\": ()}",
    "(",
    ")",
    "\"x\"",
    "Elu",
    "true",
    "null",
    "()",
    "[1,",
    "1.5",
    "-0",
    "\u{0}",
    "",
    "18446744073709551616",
    "{\"StdNormal\": ()}",
    "Bernoulli",
    "Gaussian",
    "\"../x\"",
];

#[derive(Debug, Clone)]
enum Edit {
    Insert(usize, usize),
    Replace(usize, usize, usize),
    Delete(usize, usize),
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), 0..TOKENS.len()).prop_map(|(at, t)| Edit::Insert(at, t)),
        (any::<usize>(), 1usize..12, 0..TOKENS.len())
            .prop_map(|(at, n, t)| Edit::Replace(at, n, t)),
        (any::<usize>(), 1usize..40).prop_map(|(at, n)| Edit::Delete(at, n)),
        any::<usize>().prop_map(Edit::Truncate),
    ]
}

/// Applies `edit` at character boundaries (positions are taken modulo the text's length).
fn apply(text: &mut String, edit: &Edit) {
    let bounds: Vec<usize> = text
        .char_indices()
        .map(|(i, _)| i)
        .chain([text.len()])
        .collect();
    let at = |p: usize| bounds[p % bounds.len()];
    let span = |p: usize, n: usize| {
        let i = p % bounds.len();
        (bounds[i], bounds[(i + n).min(bounds.len() - 1)])
    };
    match *edit {
        Edit::Insert(p, t) => text.insert_str(at(p), TOKENS[t]),
        Edit::Replace(p, n, t) => {
            let (a, b) = span(p, n);
            text.replace_range(a..b, TOKENS[t]);
        }
        Edit::Delete(p, n) => {
            let (a, b) = span(p, n);
            text.replace_range(a..b, "");
        }
        Edit::Truncate(p) => text.truncate(at(p)),
    }
}

/// A `--set` assignment: mostly a real field path, sometimes a path of random keys, with a value from
/// [`VALUES`] (rarely no `=` at all).
fn assignment() -> impl Strategy<Value = String> {
    let random_path = prop::collection::vec(0..KEYS.len(), 1..5)
        .prop_map(|keys| keys.iter().map(|&k| KEYS[k]).collect::<Vec<_>>().join("."));
    let real_path = any::<prop::sample::Index>().prop_map(|i| i.get(field_paths()).clone());
    (
        prop_oneof![4 => real_path, 1 => random_path],
        0..VALUES.len(),
        prop::bool::weighted(0.03),
    )
        .prop_map(|(key, v, no_equals)| {
            if no_equals {
                key
            } else {
                format!("{key}={}", VALUES[v])
            }
        })
}

/// Parses and, on success, serialises the config again (what a run directory stores), so both directions
/// meet the input.
fn parse_never_panics(text: &str, overrides: &[String]) {
    parse_at_never_panics(text, "fuzz.ron", overrides)
}

fn parse_at_never_panics(text: &str, origin: &str, overrides: &[String]) {
    carve_tests::link();
    if let Ok(exp) = Experiment::parse(text, origin, overrides) {
        let _ = exp.to_ron();
    }
}

/// Cases per property: `PROPTEST_CASES`, or 20,000 (the three properties take about 15 s together in the
/// test profile on 2 cores).
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(20_000);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn edited_shipped_configs_parse_or_fail_cleanly(
        which in any::<prop::sample::Index>(),
        edits in prop::collection::vec(edit(), 1..6),
    ) {
        let mut text: String = which.get::<String>(shipped()).clone();
        for e in &edits {
            apply(&mut text, e);
        }
        parse_never_panics(&text, &[]);
    }

    #[test]
    fn arbitrary_text_parses_or_fails_cleanly(text in "\\PC{0,300}") {
        parse_never_panics(&text, &[]);
    }

    #[test]
    fn random_overrides_apply_or_fail_cleanly(
        which in any::<prop::sample::Index>(),
        overrides in prop::collection::vec(assignment(), 1..4),
    ) {
        let (origin, text) = which.get(shipped_with_origin());
        parse_at_never_panics(text, origin, &overrides);
    }
}

#[test]
fn deeply_nested_text_is_an_error_not_a_stack_overflow() {
    carve_tests::link();
    for open in ["(", "[", "{\"Mlp\": "] {
        let text = format!("(name: {})", open.repeat(100_000));
        assert!(Experiment::parse(&text, "deep.ron", &[]).is_err());
    }
    let deep_value = format!("train.steps={}", "[".repeat(100_000));
    assert!(Experiment::parse(&shipped()[0], "deep.ron", &[deep_value]).is_err());
}

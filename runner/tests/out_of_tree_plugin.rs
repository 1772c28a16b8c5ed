//! A plugin outside the workspace (`examples/out_of_tree_plugin`, its own Cargo workspace, depending on carve
//! by path) builds its own `carve` binary with `carve_runner::main`; that binary lists the plugin's component
//! and trains a config that uses it.
//!
//! The example is built offline with this workspace's target directory as its build directory, so the
//! registry dependencies compiled here are reused (about 6 s in all once built). carve's own crates compile
//! once more: Cargo keys a path crate's artifacts by its path relative to the workspace root, which differs
//! between the two workspaces. So do, once, the registry crates whose features `cargo test --workspace`
//! widens through other members' dev-dependencies (getrandom, plotters) and those built on them (candle).
//! The example's binary goes to `<target>/out-of-tree-plugin/`, not next to this workspace's `carve`, which
//! other tests run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("runner/ has a parent")
        .to_path_buf()
}

fn example() -> PathBuf {
    repo().join("examples/out_of_tree_plugin")
}

/// `(target dir, profile folder name)` of this test binary (`<target>/<profile>/deps/out_of_tree_plugin-…`).
fn target_and_profile() -> (PathBuf, String) {
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary lies in <target>/<profile>/deps");
    let profile = profile_dir
        .file_name()
        .expect("profile folder")
        .to_string_lossy()
        .to_string();
    let target = profile_dir.parent().expect("target folder").to_path_buf();
    (target, profile)
}

/// The cargo that runs this test, else the one on PATH; `None` when there is none.
fn cargo() -> Option<PathBuf> {
    let cargo = std::env::var_os("CARGO")
        .map(PathBuf::from)
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("cargo"));
    match Command::new(&cargo).arg("--version").output() {
        Ok(out) if out.status.success() => Some(cargo),
        _ => None,
    }
}

/// `(name, version)` → source of every registry or git package in a Cargo.lock.
fn locked_packages(lock: &str) -> BTreeMap<(String, String), String> {
    let mut out = BTreeMap::new();
    for block in lock.split("[[package]]").skip(1) {
        let field = |key: &str| {
            block.lines().find_map(|l| {
                l.strip_prefix(key)
                    .and_then(|v| v.trim().strip_prefix('='))
                    .map(|v| v.trim().trim_matches('"').to_string())
            })
        };
        if let (Some(name), Some(version), Some(source)) =
            (field("name "), field("version "), field("source "))
        {
            out.insert((name, version), source);
        }
    }
    out
}

fn show(what: &str, out: &Output) -> String {
    format!(
        "{what} ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The example pins the workspace's versions: it reuses their builds, and `--offline` finds them in the cache.
#[test]
fn example_lock_matches_the_workspace_lock() {
    let read =
        |p: PathBuf| std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let main = locked_packages(&read(repo().join("Cargo.lock")));
    let example = locked_packages(&read(example().join("Cargo.lock")));
    assert!(
        example.len() > 50,
        "examples/out_of_tree_plugin/Cargo.lock lists only {} packages",
        example.len()
    );
    let stray: Vec<String> = example
        .keys()
        .filter(|k| !main.contains_key(*k))
        .map(|(n, v)| format!("{n} {v}"))
        .collect();
    assert!(
        stray.is_empty(),
        "examples/out_of_tree_plugin/Cargo.lock pins versions that Cargo.lock does not: {}.\nRefresh it from the \
         workspace's lock: cp Cargo.lock examples/out_of_tree_plugin/ && cargo metadata --offline --format-version 1 \
         --filter-platform x86_64-unknown-linux-gnu --manifest-path examples/out_of_tree_plugin/Cargo.toml >/dev/null",
        stray.join(", ")
    );
}

#[test]
fn out_of_tree_plugin_builds_its_own_carve_that_lists_and_trains_its_component() {
    let Some(cargo) = cargo() else {
        eprintln!("SKIPPED: no `cargo` on PATH to build examples/out_of_tree_plugin");
        return;
    };
    let (target, profile) = target_and_profile();
    let artifacts = target.join("out-of-tree-plugin");
    let cargo_profile = if profile == "debug" { "dev" } else { &profile };
    let build = Command::new(&cargo)
        .args(["build", "--offline", "--locked", "--profile", cargo_profile])
        .arg("--manifest-path")
        .arg(example().join("Cargo.toml"))
        .env("CARGO_BUILD_BUILD_DIR", &target)
        .env("CARGO_TARGET_DIR", &artifacts)
        .output()
        .expect("run cargo");
    assert!(
        build.status.success(),
        "{}",
        show("cargo build of examples/out_of_tree_plugin", &build)
    );

    let bin = artifacts.join(&profile).join("carve");
    let carve = |args: &[&str]| {
        let out = Command::new(&bin)
            .args(args)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", bin.display()));
        assert!(
            out.status.success(),
            "{}",
            show(&format!("carve {args:?}"), &out)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };

    // Its component and, through `carve_plugins::link()`, the shipped ones.
    let list = carve(&["list"]);
    for name in ["LearnedNormal", "BetaVae", "Mlp", "StdNormal"] {
        assert!(list.contains(name), "`carve list` lacks {name}:\n{list}");
    }

    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let config = example().join("configs/learned_prior.ron");
    carve(&[
        "train",
        config.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
    ]);
    let summary = std::fs::read_to_string(run.join("summary.json")).expect("summary.json");
    assert!(summary.contains("\"steps\": 2"), "{summary}");
    // The prior's parameters were trained with the model: both start at 0 (`init_logvar: 0.0`).
    let model = std::fs::read(run.join("checkpoint/model.safetensors")).expect("checkpoint");
    for name in ["prior.mean", "prior.logvar"] {
        let values = safetensors_f32(&model, name);
        assert_eq!(values.len(), 4, "{name}: {values:?}");
        assert!(
            values.iter().any(|v| *v != 0.0) && values.iter().all(|v| v.is_finite()),
            "{name} did not train: {values:?}"
        );
    }
}

/// The f32 tensor `name` of a safetensors file: an 8-byte header length, a JSON header, the data.
fn safetensors_f32(file: &[u8], name: &str) -> Vec<f32> {
    let n = u64::from_le_bytes(file[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&file[8..8 + n]).unwrap();
    let entry = &header[name];
    assert_eq!(entry["dtype"], "F32", "{name} in the checkpoint: {entry}");
    let offset = |i: usize| 8 + n + entry["data_offsets"][i].as_u64().unwrap() as usize;
    file[offset(0)..offset(1)]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

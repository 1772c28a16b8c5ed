//! Bad-input cases: data. ImageFolder trees broken one way each (the folder, a split, an image, the labels),
//! Pendulum sizes out of range, and `carve data` misused. Every error names the folder, file, line or field
//! and comes before step 1: no checkpoint or summary is written.

use crate::support::*;
use carve::data::{write_image_dataset, ArrayDataset, DataSpec, Observations};
use std::path::{Path, PathBuf};

/// Writes an ImageFolder of `n` RGB images `side`×`side` (every 4th in test/), with two label columns `c0, c1`
/// in labels.csv when `labels`.
fn image_folder(dir: &Path, n: usize, side: usize, labels: bool) -> PathBuf {
    let names: Vec<String> = if labels {
        vec!["c0".into(), "c1".into()]
    } else {
        Vec::new()
    };
    let spec = DataSpec {
        obs_shape: vec![3, side, side],
        factor_names: names.clone(),
        label_names: names,
        ..Default::default()
    };
    let pixels = (0..n * 3 * side * side)
        .map(|i| (i * 37 % 251) as u8)
        .collect();
    let values: Vec<f32> = (0..n).flat_map(|i| [i as f32, (i % 3) as f32]).collect();
    let values = labels.then_some(values);
    let test_rows = (0..n).filter(|i| i % 4 == 3).collect();
    let files = (0..n).map(|i| format!("img{i:03}.png")).collect();
    let data = ArrayDataset::new(
        spec,
        Observations::U8(pixels),
        values.clone(),
        values,
        test_rows,
    )
    .unwrap()
    .with_file_names(files);
    let root = dir.join("images");
    write_image_dataset(&data, &root).unwrap();
    if !labels {
        std::fs::remove_file(root.join("labels.csv")).ok();
    }
    root
}

/// A small β-VAE config on the ImageFolder at `path`, evaluating `metrics`.
fn folder_config(path: &Path, metrics: &str) -> String {
    format!(
        r#"(
    data: {{"ImageFolder": (path: "{}")}},
    model: {{"BetaVae": (
        latent_dim: 2,
        beta: 1.0,
        encoder: {{"Mlp": (hidden: [8])}},
        decoder: {{"Mlp": (hidden: [8])}},
    )}},
    train: (steps: 2, batch_size: 2, checkpoint_every: 1, log_every: 1),
    eval: (metrics: {metrics}, max_samples: 8),
)"#,
        path.display()
    )
}

/// Trains `config` and asserts a clear error naming `needles`, with nothing trained.
fn train_fails(dir: &Path, config: &str, needles: &[&str]) -> String {
    let cfg = write(dir, "config.ron", config);
    let run = dir.join("run");
    let out = carve(&["train", arg(&cfg), "--out", arg(&run)]);
    let msg = assert_clear_error(&format!("train {}", cfg.display()), &out, needles);
    for left in ["checkpoint", "summary.json", "metrics.jsonl"] {
        assert!(
            !run.join(left).exists(),
            "`{left}` written before the error"
        );
    }
    msg
}

/// Trains a β-VAE on the ImageFolder at `folder` and asserts the error names `needles`.
fn folder_fails(dir: &Path, folder: &Path, needles: &[&str]) -> String {
    train_fails(dir, &folder_config(folder, r#"["recon"]"#), needles)
}

#[test]
fn the_intact_folder_trains() {
    // The base every other ImageFolder case breaks one thing of.
    let dir = tempfile::tempdir().unwrap();
    let folder = image_folder(dir.path(), 12, 4, true);
    let cfg = write(
        dir.path(),
        "ok.ron",
        folder_config(&folder, r#"["recon", "mcc"]"#),
    );
    let run = dir.path().join("run");
    succeeds(&["train", arg(&cfg), "--out", arg(&run)]);
    assert!(run.join("summary.json").exists());
}

#[test]
fn a_missing_folder_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let gone = dir.path().join("no_such_images");
    folder_fails(
        dir.path(),
        &gone,
        &["no_such_images", "no such image folder"],
    );
}

#[test]
fn an_empty_folder_has_no_images() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty_images");
    std::fs::create_dir(&empty).unwrap();
    folder_fails(dir.path(), &empty, &["empty_images", "no PNG files"]);
}

#[test]
fn an_empty_split_folder_is_named() {
    for split in ["train", "test"] {
        let dir = tempfile::tempdir().unwrap();
        let folder = image_folder(dir.path(), 12, 4, true);
        for f in std::fs::read_dir(folder.join(split)).unwrap() {
            std::fs::remove_file(f.unwrap().path()).unwrap();
        }
        let named = format!("images/{split}");
        folder_fails(
            dir.path(),
            &folder,
            &[&named, "no PNG files in this split folder"],
        );
    }
}

#[test]
fn a_missing_split_folder_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let folder = image_folder(dir.path(), 12, 4, true);
    std::fs::remove_dir_all(folder.join("test")).unwrap();
    folder_fails(dir.path(), &folder, &["images", "no test/ folder"]);
}

#[test]
fn a_corrupt_png_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let folder = image_folder(dir.path(), 12, 4, true);
    std::fs::write(folder.join("train/img001.png"), "not a png at all").unwrap();
    folder_fails(dir.path(), &folder, &["img001.png"]);
}

#[test]
fn a_truncated_png_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let folder = image_folder(dir.path(), 12, 4, true);
    let path = folder.join("test/img003.png");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    folder_fails(dir.path(), &folder, &["img003.png"]);
}

#[test]
fn mixed_image_sizes_name_the_file_and_both_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let folder = image_folder(dir.path(), 12, 4, true);
    let other = image_folder(&dir.path().join("other"), 12, 6, true);
    std::fs::copy(
        other.join("train/img002.png"),
        folder.join("train/img002.png"),
    )
    .unwrap();
    folder_fails(
        dir.path(),
        &folder,
        &["img002.png", "[3, 4, 4]", "[3, 6, 6]", "img000.png"],
    );
}

/// The folder with line `line` (1 = header) of labels.csv replaced by `edit(old line)`.
fn with_label_line(dir: &Path, line: usize, edit: impl Fn(&str) -> String) -> PathBuf {
    let folder = image_folder(dir, 12, 4, true);
    let csv = folder.join("labels.csv");
    let text = std::fs::read_to_string(&csv).unwrap();
    let lines: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i + 1 == line {
                edit(l)
            } else {
                l.to_string()
            }
        })
        .collect();
    std::fs::write(&csv, lines.join("\n") + "\n").unwrap();
    folder
}

#[test]
fn a_label_that_is_not_a_number_names_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let folder = with_label_line(dir.path(), 3, |l| {
        let mut f: Vec<&str> = l.split(',').collect();
        f[3] = "abc";
        f.join(",")
    });
    folder_fails(
        dir.path(),
        &folder,
        &[
            "labels.csv",
            "line 3",
            "column `c1`",
            "`abc` is not a number",
        ],
    );
}

#[test]
fn a_nan_label_names_file_line_and_column() {
    for (bad, needle) in [("NaN", "NaN"), ("inf", "inf")] {
        let dir = tempfile::tempdir().unwrap();
        let folder = with_label_line(dir.path(), 5, |l| {
            let mut f: Vec<&str> = l.split(',').collect();
            f[2] = bad;
            f.join(",")
        });
        folder_fails(
            dir.path(),
            &folder,
            &["labels.csv", "line 5", "column `c0`", needle, "finite"],
        );
    }
}

#[test]
fn a_row_with_the_wrong_number_of_columns_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let folder = with_label_line(dir.path(), 4, |l| format!("{l},7"));
    folder_fails(dir.path(), &folder, &["labels.csv", "line 4"]);
}

#[test]
fn an_image_without_a_label_row_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let folder = image_folder(dir.path(), 12, 4, true);
    let csv = folder.join("labels.csv");
    let text = std::fs::read_to_string(&csv).unwrap();
    let kept: String = text
        .lines()
        .filter(|l| !l.starts_with("img005.png"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&csv, kept).unwrap();
    folder_fails(
        dir.path(),
        &folder,
        &["labels.csv", "no row for `img005.png`"],
    );
}

#[test]
fn a_labels_header_without_file_and_split_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let folder = with_label_line(dir.path(), 1, |_| "name,c0,c1,c2".into());
    folder_fails(
        dir.path(),
        &folder,
        &["labels.csv", "file,split,<labels...>"],
    );
}

#[test]
fn non_finite_labels_in_file_names_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("named");
    for (split, file) in [
        ("train", "a_1_2.png"),
        ("train", "a_NaN_3.png"),
        ("test", "a_5_6.png"),
    ] {
        let from = image_folder(&dir.path().join(file), 4, 4, false);
        std::fs::create_dir_all(folder.join(split)).unwrap();
        std::fs::copy(from.join("train/img000.png"), folder.join(split).join(file)).unwrap();
    }
    folder_fails(dir.path(), &folder, &["a_NaN_3.png", "finite"]);
}

/// A folder of `n` images with no train/ and test/ subfolders.
fn flat_folder(dir: &Path, n: usize) -> PathBuf {
    let from = image_folder(&dir.join("source"), n, 4, false);
    let flat = dir.join("flat");
    std::fs::create_dir_all(&flat).unwrap();
    for split in ["train", "test"] {
        for f in std::fs::read_dir(from.join(split)).unwrap() {
            let p = f.unwrap().path();
            std::fs::copy(&p, flat.join(p.file_name().unwrap())).unwrap();
        }
    }
    flat
}

#[test]
fn a_flat_folder_with_test_every_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let flat = flat_folder(dir.path(), 8);
    let config =
        folder_config(&flat, r#"["recon"]"#).replace(r#"(path: "#, r#"(test_every: 1, path: "#);
    train_fails(
        dir.path(),
        &config,
        &["flat", "test_every must be at least 2"],
    );
}

#[test]
fn a_flat_folder_too_small_for_a_test_split_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let flat = flat_folder(dir.path(), 3);
    folder_fails(
        dir.path(),
        &flat,
        &["flat", "3 PNG files", "test_every = 4"],
    );
}

#[test]
fn a_metric_unlabelled_images_cannot_serve_fails_before_step_one() {
    let dir = tempfile::tempdir().unwrap();
    let folder = image_folder(dir.path(), 12, 4, false);
    train_fails(
        dir.path(),
        &folder_config(&folder, r#"["recon", "mcc"]"#),
        &["eval.metrics", "`mcc` needs true factors", "ImageFolder"],
    );
}

/// SMALL_CONFIG on a pendulum of `settings`.
fn pendulum_fails(settings: &str, needles: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let config = SMALL_CONFIG.replace("(size: 32, channels: 3)", settings);
    assert_ne!(config, SMALL_CONFIG);
    train_fails(dir.path(), &config, needles);
}

#[test]
fn pendulum_sizes_below_16_are_refused() {
    pendulum_fails(
        "(size: 0, channels: 3)",
        &["Pendulum", "size", "at least 16, got 0"],
    );
    pendulum_fails(
        "(size: 7, channels: 3)",
        &["Pendulum", "size", "at least 16, got 7"],
    );
}

#[test]
fn a_huge_pendulum_is_refused_before_allocating() {
    pendulum_fails(
        "(size: 10000, channels: 3)",
        &["Pendulum", "size", "at most 1024", "10000"],
    );
    // Within the side bound but not the memory bound: 7,308 × 4 × 1000² bytes.
    pendulum_fails(
        "(size: 1000, channels: 4)",
        &["Pendulum at size 1000", "8 GiB"],
    );
}

#[test]
fn pendulum_channels_other_than_3_or_4_are_refused() {
    pendulum_fails(
        "(size: 32, channels: 2)",
        &["Pendulum", "channels", "got 2"],
    );
}

#[test]
fn carve_data_with_an_unknown_dataset_suggests_the_closest() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    fails_clearly(
        &["data", "Pendullum", "--out", arg(&out)],
        &["unknown dataset `Pendullum`", "did you mean Pendulum"],
    );
    assert!(!out.exists());
}

#[test]
fn carve_data_with_a_bad_set_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    for (set, needles) in [
        ("size=abc", vec!["--set size=abc", "abc"]),
        ("size=10000", vec!["size", "at most 1024"]),
        ("colour=3", vec!["--set colour=3", "unknown field `colour`"]),
        ("size", vec!["size", "KEY=VALUE"]),
    ] {
        fails_clearly(
            &["data", "Pendulum", "--out", arg(&out), "--set", set],
            &needles,
        );
        assert!(!out.exists(), "--set {set}: data written");
    }
}

#[test]
fn a_synthetic_dataset_past_the_memory_bound_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = SMALL_CONFIG.replace(
        r#"{"Pendulum": (size: 32, channels: 3)}"#,
        r#"{"Synthetic": (n_train: 100000000, n_test: 1000)}"#,
    );
    train_fails(dir.path(), &config, &["Synthetic", "n_train", "8 GiB"]);
}

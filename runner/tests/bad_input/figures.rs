//! Bad-input cases: the figure commands (`traverse`, `intervene`, `figures`) on a trained run.

use crate::support::*;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A scratch folder for this module, emptied once per test process.
fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bad_input_figures");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch folder");
        dir
    })
}

/// One small trained run (SMALL_CONFIG, 2 steps), shared by the cases that break one argument of a command.
fn run() -> &'static str {
    static RUN: OnceLock<PathBuf> = OnceLock::new();
    let dir = RUN.get_or_init(|| {
        let config = write(scratch(), "small.ron", SMALL_CONFIG);
        let run = scratch().join("run");
        succeeds(&["train", arg(&config), "--out", arg(&run)]);
        run
    });
    arg(dir)
}

/// A PNG path in the scratch folder (its folder exists).
fn png(name: &str) -> String {
    arg(&scratch().join(name)).to_string()
}

#[test]
fn traverse_refuses_step_counts_outside_its_bound() {
    let out = png("steps.png");
    // A billion steps would once allocate every image before failing; zero and one cannot sweep.
    for steps in ["1000000000", "101", "0", "1"] {
        fails_clearly(
            &["traverse", run(), "--out", &out, "--steps", steps],
            &["--steps", steps, "2..=100"],
        );
    }
    assert!(!Path::new(&out).exists());
}

#[test]
fn traverse_refuses_a_step_count_that_is_not_an_integer() {
    let out = png("steps_text.png");
    fails_clearly(
        &["traverse", run(), "--out", &out, "--steps", "1e9"],
        &["--steps", "1e9"],
    );
}

#[test]
fn traverse_refuses_an_index_past_the_test_split() {
    let out = png("index.png");
    let msg = fails_clearly(
        &["traverse", run(), "--out", &out, "--index", "5000000"],
        &["--index 5000000", "past the test split", "images"],
    );
    assert!(!msg.contains("min > max"), "{msg}");
}

#[test]
fn traverse_refuses_a_range_that_is_not_a_positive_number() {
    let out = png("range.png");
    for range in ["NaN", "0", "-1", "inf"] {
        fails_clearly(
            &["traverse", run(), "--out", &out, "--range", range],
            &["--range", "finite number > 0"],
        );
    }
}

#[test]
fn intervene_refuses_zero_or_too_many_images() {
    let out = png("n.png");
    for n in ["0", "65", "100000000"] {
        fails_clearly(
            &[
                "intervene",
                run(),
                "--do",
                "light_angle=0.5",
                "--n",
                n,
                "--out",
                &out,
            ],
            &["--n", n, "1..=64"],
        );
    }
}

#[test]
fn intervene_refuses_an_unknown_node_and_suggests_one() {
    fails_clearly(
        &[
            "intervene",
            run(),
            "--do",
            "ligth_angle=0.5",
            "--out",
            &png("node.png"),
        ],
        &[
            "unknown node `ligth_angle`",
            "did you mean light_angle",
            "nodes:",
        ],
    );
}

#[test]
fn intervene_refuses_a_node_index_the_model_lacks() {
    // SMALL_CONFIG has 4 latents: node 4 is one past the last.
    fails_clearly(
        &[
            "intervene",
            run(),
            "--do",
            "4=1.0",
            "--out",
            &png("index.png"),
        ],
        &["--do 4=1.0", "node 4 does not exist", "4 nodes"],
    );
}

#[test]
fn intervene_refuses_a_value_that_is_not_a_number() {
    fails_clearly(
        &[
            "intervene",
            run(),
            "--do",
            "light_angle=bright",
            "--out",
            &png("v.png"),
        ],
        &["--do light_angle=bright", "`bright` is not a number"],
    );
}

#[test]
fn intervene_refuses_non_finite_values() {
    for value in ["NaN", "inf", "-inf"] {
        let d = format!("light_angle={value}");
        fails_clearly(
            &["intervene", run(), "--do", &d, "--out", &png("nan.png")],
            &[&format!("--do {d}"), "finite number"],
        );
    }
}

#[test]
fn intervene_refuses_a_setting_without_a_value() {
    fails_clearly(
        &[
            "intervene",
            run(),
            "--do",
            "light_angle",
            "--out",
            &png("eq.png"),
        ],
        &["expected --do NAME=VALUE"],
    );
}

#[test]
fn figure_commands_refuse_an_out_path_in_a_missing_folder() {
    let out = scratch().join("no/such/folder/fig.png");
    let out = arg(&out);
    fails_clearly(&["traverse", run(), "--out", out], &[out, "does not exist"]);
    fails_clearly(
        &["intervene", run(), "--do", "0=1", "--out", out],
        &[out, "does not exist"],
    );
}

#[test]
fn figure_commands_refuse_a_folder_as_the_out_path() {
    let out = arg(scratch());
    fails_clearly(&["traverse", run(), "--out", out], &[out, "is a folder"]);
}

#[test]
fn figure_commands_on_a_missing_run_name_it() {
    let missing = scratch().join("no-such-run");
    let missing = arg(&missing);
    fails_clearly(&["figures", missing], &[missing]);
    fails_clearly(
        &["traverse", missing, "--out", &png("missing.png")],
        &[missing],
    );
}

#[test]
fn figure_commands_on_a_run_whose_test_split_was_emptied_name_the_folder() {
    // An image-folder run trained with test images, whose test/ folder was emptied afterwards.
    let root = scratch().join("empty_test");
    let full = root.join("full");
    succeeds(&["data", "Pendulum", "--out", arg(&full), "--set", "size=16"]);
    let folder = root.join("images");
    for (split, keep) in [("train", 32), ("test", 4)] {
        std::fs::create_dir_all(folder.join(split)).unwrap();
        let mut files: Vec<_> = std::fs::read_dir(full.join(split))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for f in files.iter().take(keep) {
            std::fs::copy(f, folder.join(split).join(f.file_name().unwrap())).unwrap();
        }
    }
    std::fs::copy(full.join("labels.csv"), folder.join("labels.csv")).unwrap();
    let data = format!(r#"data: {{"ImageFolder": (path: "{}")}},"#, arg(&folder));
    let config = SMALL_CONFIG.replace(r#"data: {"Pendulum": (size: 32, channels: 3)},"#, &data);
    let config = write(
        &root,
        "folder.ron",
        config.replace(r#""recon", "mcc""#, r#""recon""#),
    );
    let run = root.join("run");
    succeeds(&["train", arg(&config), "--out", arg(&run)]);
    for f in std::fs::read_dir(folder.join("test")).unwrap() {
        std::fs::remove_file(f.unwrap().path()).unwrap();
    }
    let run = arg(&run);
    let out = png("empty_split.png");
    for args in [
        vec!["figures", run],
        vec!["traverse", run, "--out", &out],
        vec!["intervene", run, "--do", "0=0.5", "--out", &out],
    ] {
        // The dataset itself refuses to load, naming the emptied folder.
        fails_clearly(&args, &["images/test", "no PNG files"]);
    }
}

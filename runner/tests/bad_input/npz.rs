//! Bad-input cases: `.npz` files given to `carve metrics`, and `carve eval --export-latents` targets.

use crate::support::*;
use npyz::WriterBuilder;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Rows of the well-formed arrays below.
const N: usize = 200;

/// Factor `j` of row `r`: five levels per factor, no two factors alike.
fn factor(r: usize, j: usize) -> usize {
    (r * (j + 1) + r / (j + 2)) % 5
}

/// `N × 2` factors, row-major.
fn factors() -> Vec<f64> {
    (0..N)
        .flat_map(|r| (0..2).map(move |j| factor(r, j) as f64))
        .collect()
}

/// `N × 2` codes that identify the factors up to permutation and scale (MCC 1).
fn codes() -> Vec<f64> {
    (0..N)
        .flat_map(|r| [3.0 * factor(r, 1) as f64, -2.0 * factor(r, 0) as f64])
        .collect()
}

/// One array of an `.npz`: name, shape and values (converted to the element type `T` when written).
struct Array<T> {
    name: &'static str,
    shape: Vec<u64>,
    values: Vec<T>,
}

fn array<T>(name: &'static str, shape: &[u64], values: Vec<T>) -> Array<T> {
    Array {
        name,
        shape: shape.to_vec(),
        values,
    }
}

/// Writes `arrays` (all of element type `T`, numpy's default dtype for it) to `dir/name`.
fn write_npz<T: npyz::AutoSerialize + Copy>(
    dir: &Path,
    name: &str,
    arrays: &[Array<T>],
) -> PathBuf {
    write_npz_with(dir, name, arrays, T::default_dtype(), npyz::Order::C)
}

fn write_npz_with<T: npyz::Serialize + Copy>(
    dir: &Path,
    name: &str,
    arrays: &[Array<T>],
    dtype: npyz::DType,
    order: npyz::Order,
) -> PathBuf {
    let path = dir.join(name);
    let mut npz = npyz::npz::NpzWriter::create(&path).expect("create npz");
    for a in arrays {
        let mut w = npz
            .array::<T>(a.name, Default::default())
            .expect("npz entry")
            .dtype(dtype.clone())
            .shape(&a.shape)
            .order(order)
            .begin_nd()
            .expect("npz array");
        w.extend(a.values.iter().copied()).expect("npz values");
        w.finish().expect("finish npz array");
    }
    npz.zip_writer().finish().expect("finish npz");
    path
}

/// The well-formed pair: `codes` and `factors`, `N × 2` each, float64.
fn good(dir: &Path) -> PathBuf {
    write_npz(
        dir,
        "good.npz",
        &[
            array("codes", &[N as u64, 2], codes()),
            array("factors", &[N as u64, 2], factors()),
        ],
    )
}

/// The MCC `carve metrics FILE --metrics mcc ARGS…` prints, asserting success.
fn mcc_of(file: &Path, extra: &[&str]) -> f64 {
    let mut args = vec!["metrics", arg(file), "--metrics", "mcc"];
    args.extend_from_slice(extra);
    let out = succeeds(&args);
    let json: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON object");
    json["mcc"].as_f64().expect("an mcc value")
}

#[test]
fn the_well_formed_file_scores_every_default_metric() {
    let dir = tempfile::tempdir().unwrap();
    let out = succeeds(&["metrics", arg(&good(dir.path()))]);
    let json: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    for key in [
        "mcc",
        "mig",
        "sap_continuous",
        "sap_discrete",
        "modularity",
        "r",
    ] {
        let v = json[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{key} in {out}"));
        assert!((-1e-9..=1.0 + 1e-9).contains(&v), "{key} = {v}");
    }
    assert!(json["mcc"].as_f64().unwrap() > 0.999, "{out}");
}

#[test]
fn a_missing_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nowhere.npz");
    fails_clearly(&["metrics", arg(&path)], &["nowhere.npz", "No such file"]);
}

#[test]
fn a_file_that_is_not_a_zip_is_named() {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in [
        ("garbage.npz", b"codes,factors\n1,2\n".to_vec()),
        ("empty.npz", Vec::new()),
    ] {
        let path = write(dir.path(), name, bytes);
        fails_clearly(&["metrics", arg(&path)], &[name, "not a readable .npz"]);
    }
}

#[test]
fn a_folder_is_not_an_npz() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("latents.npz");
    std::fs::create_dir(&folder).unwrap();
    fails_clearly(&["metrics", arg(&folder)], &["latents.npz", "is a folder"]);
}

#[test]
fn missing_codes_lists_the_arrays_present() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_npz(
        dir.path(),
        "no_codes.npz",
        &[
            array("z", &[N as u64, 2], codes()),
            array("factors", &[N as u64, 2], factors()),
        ],
    );
    fails_clearly(
        &["metrics", arg(&path)],
        &["no_codes.npz", "no `codes` array", "factors, z"],
    );
}

#[test]
fn missing_factors_names_the_metric_and_the_array() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_npz(
        dir.path(),
        "no_factors.npz",
        &[array("codes", &[N as u64, 2], codes())],
    );
    fails_clearly(
        &["metrics", arg(&path), "--metrics", "mcc"],
        &["no_factors.npz", "`mcc`", "`factors`"],
    );
}

#[test]
fn a_row_count_mismatch_names_both_counts() {
    let dir = tempfile::tempdir().unwrap();
    let mut f = factors();
    f.truncate((N - 1) * 2);
    let path = write_npz(
        dir.path(),
        "rows.npz",
        &[
            array("codes", &[N as u64, 2], codes()),
            array("factors", &[N as u64 - 1, 2], f),
        ],
    );
    fails_clearly(
        &["metrics", arg(&path)],
        &[
            "rows.npz",
            "`factors`",
            &format!("{N} rows"),
            &format!("{} rows", N - 1),
        ],
    );
}

#[test]
fn labels_with_another_row_count_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_npz(
        dir.path(),
        "labels.npz",
        &[
            array("codes", &[N as u64, 2], codes()),
            array("factors", &[N as u64, 2], factors()),
            array("labels", &[3, 1], vec![0.0, 1.0, 2.0]),
        ],
    );
    fails_clearly(
        &["metrics", arg(&path)],
        &["labels.npz", "`labels`", "3 rows"],
    );
}

#[test]
fn zero_or_one_row_is_too_few() {
    let dir = tempfile::tempdir().unwrap();
    for rows in [0usize, 1] {
        let name = format!("rows{rows}.npz");
        let path = write_npz(
            dir.path(),
            &name,
            &[
                array("codes", &[rows as u64, 2], codes()[..rows * 2].to_vec()),
                array("factors", &[rows as u64, 2], factors()[..rows * 2].to_vec()),
            ],
        );
        fails_clearly(
            &["metrics", arg(&path)],
            &[&name, &format!("{rows} row(s)"), "at least 2"],
        );
    }
}

#[test]
fn an_array_without_columns_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_npz(
        dir.path(),
        "nocols.npz",
        &[
            array("codes", &[N as u64, 0], Vec::<f64>::new()),
            array("factors", &[N as u64, 2], factors()),
        ],
    );
    fails_clearly(
        &["metrics", arg(&path)],
        &["nocols.npz", "`codes`", "no columns"],
    );
}

#[test]
fn a_3d_array_is_named_with_its_shape() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_npz(
        dir.path(),
        "cube.npz",
        &[
            array("codes", &[N as u64, 1, 2], codes()),
            array("factors", &[N as u64, 2], factors()),
        ],
    );
    fails_clearly(
        &["metrics", arg(&path)],
        &["cube.npz", "`codes`", "1-D or 2-D", &format!("[{N}, 1, 2]")],
    );
}

#[test]
fn two_nan_codes_are_an_error_naming_the_array_and_count() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = codes();
    c[7] = f64::NAN;
    c[300] = f64::NAN;
    let path = write_npz(
        dir.path(),
        "nan.npz",
        &[
            array("codes", &[N as u64, 2], c),
            array("factors", &[N as u64, 2], factors()),
        ],
    );
    fails_clearly(
        &["metrics", arg(&path)],
        &[
            "nan.npz",
            "`codes`",
            "2 non-finite values",
            "2 NaN",
            "row 3, column 1",
        ],
    );
}

#[test]
fn nan_rows_can_be_left_out_on_request() {
    // documented acceptance: `--drop-nonfinite-rows` scores the finite rows and says how many went
    let dir = tempfile::tempdir().unwrap();
    let mut c = codes();
    c[7] = f64::NAN;
    c[300] = f64::INFINITY;
    let path = write_npz(
        dir.path(),
        "nan.npz",
        &[
            array("codes", &[N as u64, 2], c),
            array("factors", &[N as u64, 2], factors()),
        ],
    );
    let out = run_in(
        None,
        &[
            "metrics",
            arg(&path),
            "--metrics",
            "mcc",
            "--drop-nonfinite-rows",
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "left out 2 rows with NaN or ±inf values ({} remain)",
            N - 2
        )),
        "{stderr}"
    );
    assert!(mcc_of(&path, &["--drop-nonfinite-rows"]) > 0.999);
}

#[test]
fn infinite_factors_are_an_error_naming_the_array() {
    let dir = tempfile::tempdir().unwrap();
    let mut f = factors();
    f[11] = f64::NEG_INFINITY;
    let path = write_npz(
        dir.path(),
        "inf.npz",
        &[
            array("codes", &[N as u64, 2], codes()),
            array("factors", &[N as u64, 2], f),
        ],
    );
    fails_clearly(
        &["metrics", arg(&path)],
        &["inf.npz", "`factors`", "1 non-finite value", "1 ±inf"],
    );
}

#[test]
fn all_nan_codes_do_not_score_zero() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_npz(
        dir.path(),
        "all_nan.npz",
        &[
            array("codes", &[N as u64, 2], vec![f64::NAN; N * 2]),
            array("factors", &[N as u64, 2], factors()),
        ],
    );
    fails_clearly(
        &["metrics", arg(&path)],
        &[
            "all_nan.npz",
            "`codes`",
            &format!("{} non-finite values of {}", N * 2, N * 2),
        ],
    );
}

#[test]
fn float64_beyond_the_float32_range_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = codes();
    c[5] = 1e300;
    let path = write_npz(
        dir.path(),
        "huge.npz",
        &[
            array("codes", &[N as u64, 2], c),
            array("factors", &[N as u64, 2], factors()),
        ],
    );
    fails_clearly(
        &["metrics", arg(&path)],
        &[
            "huge.npz",
            "`codes`",
            "1e300",
            "row 2, column 1",
            "float32 range",
        ],
    );
}

/// Writes the good pair with both arrays of element type `T` and returns the MCC carve prints.
fn mcc_as<T: npyz::AutoSerialize + Copy>(dir: &Path, name: &str, cast: impl Fn(f64) -> T) -> f64 {
    let to = |v: Vec<f64>| v.into_iter().map(&cast).collect::<Vec<T>>();
    let path = write_npz(
        dir,
        name,
        &[
            array(
                "codes",
                &[N as u64, 2],
                to(codes().iter().map(|v| v.abs()).collect()),
            ),
            array("factors", &[N as u64, 2], to(factors())),
        ],
    );
    mcc_of(&path, &[])
}

#[test]
fn every_integer_and_float_dtype_is_read() {
    // documented acceptance: bool, int8–int64, uint8–uint64, float16, float32 and float64 all score the same
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let scores = [
        ("int8", mcc_as(d, "i1.npz", |v| v as i8)),
        ("int16", mcc_as(d, "i2.npz", |v| v as i16)),
        ("int32", mcc_as(d, "i4.npz", |v| v as i32)),
        ("int64", mcc_as(d, "i8.npz", |v| v as i64)),
        ("uint8", mcc_as(d, "u1.npz", |v| v as u8)),
        ("uint16", mcc_as(d, "u2.npz", |v| v as u16)),
        ("uint32", mcc_as(d, "u4.npz", |v| v as u32)),
        ("uint64", mcc_as(d, "u8.npz", |v| v as u64)),
        ("float16", mcc_as(d, "f2.npz", half::f16::from_f64)),
        ("float32", mcc_as(d, "f4.npz", |v| v as f32)),
        ("float64", mcc_as(d, "f8.npz", |v| v)),
    ];
    for (dtype, mcc) in scores {
        assert!(mcc > 0.999, "{dtype}: mcc {mcc}");
    }
}

#[test]
fn bool_factors_are_read_as_zero_and_one() {
    let dir = tempfile::tempdir().unwrap();
    let f: Vec<bool> = (0..N).map(|r| factor(r, 0) >= 2).collect();
    let c: Vec<f64> = f.iter().map(|&b| if b { 2.5 } else { -1.0 }).collect();
    let codes_path = dir.path().join("codes_part.npz");
    // bool and float arrays in one file: write the pieces with their own element types
    let mut npz = npyz::npz::NpzWriter::create(&codes_path).unwrap();
    let mut w = npz
        .array::<f64>("codes", Default::default())
        .unwrap()
        .default_dtype()
        .shape(&[N as u64, 1])
        .begin_nd()
        .unwrap();
    w.extend(c).unwrap();
    w.finish().unwrap();
    let mut w = npz
        .array::<bool>("factors", Default::default())
        .unwrap()
        .default_dtype()
        .shape(&[N as u64, 1])
        .begin_nd()
        .unwrap();
    w.extend(f).unwrap();
    w.finish().unwrap();
    npz.zip_writer().finish().unwrap();
    assert!(mcc_of(&codes_path, &[]) > 0.999);
}

#[test]
fn fortran_order_and_1d_arrays_read_like_c_order() {
    // documented acceptance: column-major arrays are transposed on reading; a 1-D array is one column
    let dir = tempfile::tempdir().unwrap();
    let c = codes();
    let column_major: Vec<f64> = (0..2)
        .flat_map(|j| (0..N).map(move |r| (r, j)))
        .map(|(r, j)| c[r * 2 + j])
        .collect();
    let f = factors();
    let f_column_major: Vec<f64> = (0..2)
        .flat_map(|j| (0..N).map(move |r| (r, j)))
        .map(|(r, j)| f[r * 2 + j])
        .collect();
    let fortran = write_npz_with(
        dir.path(),
        "fortran.npz",
        &[
            array("codes", &[N as u64, 2], column_major),
            array("factors", &[N as u64, 2], f_column_major),
        ],
        <f64 as npyz::AutoSerialize>::default_dtype(),
        npyz::Order::Fortran,
    );
    assert!(mcc_of(&fortran, &[]) > 0.999);
    let one_d = write_npz(
        dir.path(),
        "one_d.npz",
        &[
            array("codes", &[N as u64], (0..N).map(|r| c[r * 2 + 1]).collect()),
            array("factors", &[N as u64], (0..N).map(|r| f[r * 2]).collect()),
        ],
    );
    assert!(mcc_of(&one_d, &[]) > 0.999);
}

#[test]
fn an_unsupported_dtype_lists_the_accepted_ones() {
    let dir = tempfile::tempdir().unwrap();
    let dates: npyz::DType = npyz::DType::new_scalar("<M8[D]".parse().unwrap());
    let path = write_npz_with(
        dir.path(),
        "dates.npz",
        &[array(
            "codes",
            &[N as u64, 1],
            (0..N as i64).collect::<Vec<i64>>(),
        )],
        dates,
        npyz::Order::C,
    );
    fails_clearly(
        &["metrics", arg(&path)],
        &["dates.npz", "`codes`", "<M8[D]", "float16"],
    );
}

#[test]
fn an_unknown_metric_name_suggests_the_closest() {
    let dir = tempfile::tempdir().unwrap();
    fails_clearly(
        &["metrics", arg(&good(dir.path())), "--metrics", "mcx"],
        &["mcx", "did you mean mcc"],
    );
}

#[test]
fn a_model_metric_points_to_carve_eval() {
    let dir = tempfile::tempdir().unwrap();
    let out = carve(&["list"]);
    let list = String::from_utf8_lossy(&out.stdout);
    let Some(line) = list.lines().find(|l| l.contains("[needs a run]")) else {
        return; // no registered metric needs a run
    };
    let name = line.split_whitespace().next().unwrap();
    fails_clearly(
        &["metrics", arg(&good(dir.path())), "--metrics", name],
        &[name, "carve eval"],
    );
}

/// A trained two-step run, shared by the `--export-latents` cases (training once keeps the corpus fast).
fn trained_run() -> &'static Path {
    static RUN: OnceLock<PathBuf> = OnceLock::new();
    RUN.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        let config = write(&dir, "small.ron", SMALL_CONFIG);
        let run = dir.join("run");
        succeeds(&["train", arg(&config), "--out", arg(&run)]);
        run
    })
}

#[test]
fn export_latents_onto_the_runs_config_is_refused() {
    let run = trained_run();
    let config = run.join("config.ron");
    let before = std::fs::read(&config).unwrap();
    fails_clearly(
        &["eval", arg(run), "--export-latents", arg(&config)],
        &["config.ron", "one of the run's own files"],
    );
    assert_eq!(
        std::fs::read(&config).unwrap(),
        before,
        "config.ron changed"
    );
}

#[test]
fn export_latents_needs_an_npz_name() {
    let run = trained_run();
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("latents.csv");
    fails_clearly(
        &["eval", arg(run), "--export-latents", arg(&target)],
        &["latents.csv", "must end in .npz"],
    );
    assert!(!target.exists());
}

#[test]
fn exported_latents_score_with_carve_metrics() {
    // documented acceptance: an export inside the run folder under a new .npz name, scored by `carve metrics`
    let run = trained_run();
    let target = run.join("latents.npz");
    succeeds(&[
        "eval",
        arg(run),
        "--metrics",
        "mcc",
        "--export-latents",
        arg(&target),
    ]);
    let mcc = mcc_of(&target, &[]);
    assert!((0.0..=1.0).contains(&mcc), "{mcc}");
}

//! Every metric on every shared reference case (`tests/data/metrics/*.npz`, values computed by disentanglement_lib
//! 1.5 and the mechanism-sparsity code in `*.expected.json`). Run with `--nocapture` for the comparison table.

use carve::metrics::{self, Columns, DlibConfig};
use std::path::PathBuf;

const CASES: [&str; 6] = [
    "cont_identity",
    "cont_monotone_nonlinear",
    "cont_random",
    "disc_identity",
    "disc_perm_scale",
    "pend_identity",
];

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/metrics")
}

/// A row-major `n × m` f64 matrix from the npz (any order, f64 or i64).
fn load_array(
    npz: &mut npyz::npz::NpzArchive<std::io::BufReader<std::fs::File>>,
    name: &str,
) -> (Vec<f64>, usize) {
    let arr = npz.by_name(name).unwrap().expect(name);
    let shape = arr.shape().to_vec();
    let fortran = arr.order() == npyz::Order::Fortran;
    let (n, m) = (shape[0] as usize, shape[1] as usize);
    let flat: Vec<f64> = match arr.dtype() {
        npyz::DType::Plain(t) if t.type_char() == npyz::TypeChar::Int => arr
            .into_vec::<i64>()
            .unwrap()
            .into_iter()
            .map(|v| v as f64)
            .collect(),
        _ => arr.into_vec::<f64>().unwrap(),
    };
    let rows = if fortran {
        (0..n * m).map(|i| flat[(i % m) * n + i / m]).collect()
    } else {
        flat
    };
    (rows, m)
}

struct Case {
    name: &'static str,
    codes: Vec<f64>,
    d: usize,
    factors: Vec<f64>,
    k: usize,
    expected: serde_json::Value,
}

fn load(name: &'static str) -> Case {
    let mut npz = npyz::npz::NpzArchive::open(dir().join(format!("{name}.npz"))).unwrap();
    let (codes, d) = load_array(&mut npz, "codes");
    let (factors, k) = load_array(&mut npz, "factors");
    let expected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir().join(format!("{name}.expected.json"))).unwrap(),
    )
    .unwrap();
    Case {
        name,
        codes,
        d,
        factors,
        k,
        expected,
    }
}

/// The reference split: the cases' rows are already in the order the reference used (first 80 % = training split).
fn reference_cfg() -> DlibConfig {
    DlibConfig {
        bins: 20,
        train_frac: 0.8,
        seed: None,
    }
}

#[test]
fn explore() {
    for name in CASES {
        let c = load(name);
        let data = Columns::from_rows(&c.codes, c.d, &c.factors, c.k).unwrap();
        let cfg = reference_cfg();
        let t = std::time::Instant::now();
        let r = metrics::dci(&data, &cfg);
        println!(
            "{name}: dci {:?} {:?} {:?} {:?} ({:?}) ref {}",
            r.disentanglement,
            r.completeness,
            r.informativeness_train,
            r.informativeness_test,
            t.elapsed(),
            c.expected["DCI"]
        );
    }
}

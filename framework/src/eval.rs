//! Evaluation of a trained run: codes, factors and model terms over a split, then the configured metrics.

use crate::data::{make_batch, Split};
use crate::error::{Error, Result};
use crate::eval_context::{EvalContext, MetricEntry};
use crate::metrics::{self, EvalInputs};
use std::collections::BTreeMap;
use std::path::Path;

const EVAL_BATCH: usize = 256;

/// `max` rows of `rows` spread evenly over it (all of them when there are no more). Rows come in generation
/// order (Dsprites: the factor grid, shape first), so a prefix would hold one corner of the data.
pub fn evenly_spaced(rows: &[usize], max: usize) -> Vec<usize> {
    if rows.len() <= max {
        return rows.to_vec();
    }
    (0..max).map(|i| rows[i * rows.len() / max]).collect()
}

/// Encodes up to `max_samples` rows of `split`, spread evenly over it, and averages the model's evaluation terms.
pub fn collect(ctx: &EvalContext, split: Split, max_samples: usize) -> Result<EvalInputs> {
    let rows = evenly_spaced(ctx.data.split(split), max_samples);
    if rows.is_empty() {
        return Err(Error::Data(format!("the {split:?} split is empty")));
    }
    let mut inputs = EvalInputs {
        k: ctx.data.spec().factor_names.len(),
        n_labels: ctx.data.spec().label_names.len(),
        // a dataset's rows come in generation order (Pendulum: loop order over the angles), so the split-based
        // metrics draw their train/test rows at random
        split_seed: Some(0),
        ..Default::default()
    };
    let mut factors = Vec::new();
    let mut labels = Vec::new();
    let mut sums: BTreeMap<String, f64> = BTreeMap::new();
    let mut scratch = Vec::new();
    for chunk in rows.chunks(EVAL_BATCH) {
        let batch = make_batch(ctx.data, chunk, ctx.device, &mut scratch)?;
        let codes = ctx.method.encode(&batch.x)?;
        let frames = ctx.data.spec().frames();
        if codes.dims().len() != 2 || codes.dims()[0] != chunk.len() * frames {
            return Err(Error::Shape {
                context: "method.encode output".into(),
                expected: format!(
                    "[{} rows (batch × frames), latent_dim]",
                    chunk.len() * frames
                ),
                got: format!("{:?}", codes.dims()),
            });
        }
        inputs.d = codes.dims()[1];
        inputs.codes.extend(codes.flatten_all()?.to_vec1::<f32>()?);
        if let Some(f) = ctx.data.factors(chunk) {
            factors.extend(f);
        }
        if let Some(l) = ctx.data.labels(chunk) {
            labels.extend(l);
        }
        for (k, v) in ctx.method.evaluate(&batch)?.terms {
            *sums.entry(k).or_default() += v as f64 * chunk.len() as f64;
        }
    }
    inputs.factors = (!factors.is_empty()).then_some(factors);
    inputs.labels = (!labels.is_empty()).then_some(labels);
    if let Some(a) = ctx.method.graph()? {
        inputs.learned_graph = Some(
            a.flatten_all()?
                .to_dtype(candle_core::DType::F32)?
                .to_vec1()?,
        );
    }
    inputs.true_graph = ctx.data.spec().graph.as_ref().map(|g| g.adj.concat());
    for (name, probs) in ctx.method.latent_graphs()? {
        let (r, c) = probs.dims2()?;
        let values = probs
            .to_dtype(candle_core::DType::F32)?
            .flatten_all()?
            .to_vec1()?;
        inputs.learned_latent_graphs.push((name, r, c, values));
    }
    inputs.true_latent_graphs = ctx.data.spec().latent_graphs.clone();
    inputs.model_terms = sums
        .into_iter()
        .map(|(k, v)| (k, v / rows.len() as f64))
        .collect();
    Ok(inputs)
}

/// The metrics of `entries` on `split`.
pub fn evaluate(
    ctx: &EvalContext,
    entries: &[MetricEntry],
    split: Split,
    max_samples: usize,
) -> Result<BTreeMap<String, f64>> {
    for e in entries {
        metrics::find(e.name())?;
    }
    let inputs = collect(ctx, split, max_samples)?;
    let values = metrics::compute_with_model(entries, &inputs, ctx)?;
    for (name, v) in &values {
        if !v.is_finite() {
            // JSON has no NaN: the summary would show a bare null
            log::warn!(
                "metric {name} is {v} on the {split:?} split (written as null): a factor or code that is constant over \
                 the evaluated rows leaves entropy-normalised scores undefined"
            );
        }
    }
    Ok(values)
}

/// Checks an `--export-latents` target before anything is computed: an `.npz` file name that is none of the run's
/// own files (`config.ron`, `metrics.jsonl`, … would otherwise be replaced by the export) and not a folder.
pub fn check_export_path(run_dir: &Path, path: &Path) -> Result<()> {
    let shown = path.display();
    let inside_run = path
        .parent()
        .map(|p| {
            if p.as_os_str().is_empty() {
                Path::new(".")
            } else {
                p
            }
        })
        .and_then(|p| p.canonicalize().ok())
        .zip(run_dir.canonicalize().ok())
        .is_some_and(|(parent, run)| parent.starts_with(&run));
    if path.is_dir() {
        return Err(Error::Data(format!(
            "--export-latents {shown}: is a folder; give a file name ending in .npz"
        )));
    }
    if inside_run && path.exists() && !has_npz_extension(path) {
        return Err(Error::Data(format!(
            "--export-latents {shown}: is one of the run's own files and would be overwritten; give a new file \
             name ending in .npz"
        )));
    }
    if !has_npz_extension(path) {
        return Err(Error::Data(format!(
            "--export-latents {shown}: the file name must end in .npz"
        )));
    }
    Ok(())
}

fn has_npz_extension(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "npz")
}

/// Writes `codes` (N×d), `factors` (N×k) and `labels` (N×l, where present) as float32 arrays to an `.npz`
/// (atomically: a temporary file renamed into place).
pub fn export_latents(path: &Path, inputs: &EvalInputs) -> Result<()> {
    use crate::error::IoContext;
    use npyz::WriterBuilder;
    if !has_npz_extension(path) {
        return Err(Error::Data(format!(
            "{}: latents are written to a file ending in .npz",
            path.display()
        )));
    }
    let n = inputs.n() as u64;
    let tmp = path.with_extension("npz.tmp");
    {
        let file = std::fs::File::create(&tmp).at(&tmp)?;
        let mut npz = npyz::npz::NpzWriter::new(std::io::BufWriter::new(file));
        let mut put = |name: &str, values: &[f32], cols: usize| -> std::io::Result<()> {
            let mut w = npz
                .array(name, Default::default())?
                .default_dtype()
                .shape(&[n, cols as u64])
                .begin_nd()?;
            w.extend(values.iter().copied())?;
            w.finish()
        };
        put("codes", &inputs.codes, inputs.d).at(&tmp)?;
        if let Some(f) = &inputs.factors {
            put("factors", f, inputs.k).at(&tmp)?;
        }
        if let Some(l) = &inputs.labels {
            put("labels", l, inputs.n_labels).at(&tmp)?;
        }
    }
    std::fs::rename(&tmp, path).at(path)
}

/// A 2-D array read from an `.npz`, row-major.
struct Matrix {
    values: Vec<f32>,
    rows: usize,
    cols: usize,
}

/// The element types [`read_matrix`] reads, as numpy names them.
const ACCEPTED_DTYPES: &str = "bool, int8/16/32/64, uint8/16/32/64, float16, float32 or float64";

/// The values of `arr` widened to f64, for every integer, float and bool dtype npyz reads.
fn values_f64<R: std::io::Read>(arr: npyz::NpyFile<R>) -> std::result::Result<Vec<f64>, String> {
    use npyz::TypeChar::{Bool, Float, Int, Uint};
    macro_rules! widen {
        ($t:ty, $to:expr) => {
            arr.into_vec::<$t>()
                .map(|v| v.into_iter().map($to).collect())
                .map_err(|e| e.to_string())
        };
    }
    let npyz::DType::Plain(t) = arr.dtype() else {
        return Err(format!(
            "unsupported dtype {} (use {ACCEPTED_DTYPES})",
            arr.dtype().descr()
        ));
    };
    match (t.type_char(), t.size_field()) {
        (Bool, 1) => widen!(bool, |v| f64::from(u8::from(v))),
        (Int, 1) => widen!(i8, f64::from),
        (Int, 2) => widen!(i16, f64::from),
        (Int, 4) => widen!(i32, f64::from),
        (Int, 8) => widen!(i64, |v| v as f64),
        (Uint, 1) => widen!(u8, f64::from),
        (Uint, 2) => widen!(u16, f64::from),
        (Uint, 4) => widen!(u32, f64::from),
        (Uint, 8) => widen!(u64, |v| v as f64),
        (Float, 2) => widen!(half::f16, f64::from),
        (Float, 4) => widen!(f32, f64::from),
        (Float, 8) => widen!(f64, |v| v),
        _ => Err(format!("unsupported dtype '{t}' (use {ACCEPTED_DTYPES})")),
    }
}

/// One 1-D (one column) or 2-D array of an `.npz` as row-major f32, from any dtype of [`values_f64`] in either
/// memory order; values beyond the f32 range are an error rather than a silent ±inf.
fn read_matrix<R: std::io::Read + std::io::Seek>(
    npz: &mut npyz::npz::NpzArchive<R>,
    name: &str,
    path: &Path,
) -> Result<Option<Matrix>> {
    let bad = |m: String| Error::Data(format!("{}: array `{name}`: {m}", path.display()));
    let Some(arr) = npz.by_name(name).map_err(|e| {
        bad(format!(
            "unreadable ({e}); carve reads numeric arrays ({ACCEPTED_DTYPES}), not object or string arrays"
        ))
    })?
    else {
        return Ok(None);
    };
    let shape = arr.shape().to_vec();
    let (rows, cols) = match shape.as_slice() {
        [n] => (*n as usize, 1),
        [n, m] => (*n as usize, *m as usize),
        s => {
            return Err(bad(format!(
                "expected a 1-D or 2-D array (rows × columns), got shape {s:?}"
            )))
        }
    };
    if cols == 0 {
        return Err(bad(format!("has shape {shape:?}: no columns")));
    }
    let fortran = arr.order() == npyz::Order::Fortran;
    let flat = values_f64(arr).map_err(bad)?;
    if Some(flat.len()) != rows.checked_mul(cols) {
        return Err(bad(format!(
            "holds {} values, not the {rows} × {cols} its header gives",
            flat.len()
        )));
    }
    if let Some(i) = flat
        .iter()
        .position(|v| v.is_finite() && !(*v as f32).is_finite())
    {
        let (r, c) = if fortran {
            (i % rows, i / rows)
        } else {
            (i / cols, i % cols)
        };
        return Err(bad(format!(
            "value {:e} at row {r}, column {c} is beyond the float32 range the metrics compute in",
            flat[i]
        )));
    }
    let values = if fortran {
        (0..rows * cols)
            .map(|i| flat[(i % cols) * rows + i / cols] as f32)
            .collect()
    } else {
        flat.into_iter().map(|v| v as f32).collect()
    };
    Ok(Some(Matrix { values, rows, cols }))
}

/// What [`load_latents`] does with rows that hold NaN or ±inf.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NonFiniteRows {
    /// An error naming the array and the count of bad values.
    Reject,
    /// Such rows are left out (their number is returned).
    Drop,
}

/// Reads `codes` (N×d) and `factors` (N×k), and `labels` where present, from an `.npz` such as
/// `carve eval --export-latents` writes, so representations made with other tools can be scored. Every integer,
/// float and bool dtype is read; the arrays must have the same number (≥ 2) of rows and, unless `nonfinite` drops
/// them, only finite values. Returns the inputs and the number of rows dropped.
pub fn load_latents(path: &Path, nonfinite: NonFiniteRows) -> Result<(EvalInputs, usize)> {
    let shown = path.display();
    if path.is_dir() {
        return Err(Error::Data(format!(
            "{shown}: is a folder, not an .npz file"
        )));
    }
    let mut npz = npyz::npz::NpzArchive::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => Error::io(path, e),
        _ => Error::Data(format!("{shown}: not a readable .npz (zip) file: {e}")),
    })?;
    let codes = read_matrix(&mut npz, "codes", path)?.ok_or_else(|| {
        let mut names: Vec<String> = npz.array_names().map(String::from).collect();
        names.sort();
        Error::Data(format!(
            "{shown}: no `codes` array (N×d); arrays present: {}",
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        ))
    })?;
    let n = codes.rows;
    let mut inputs = EvalInputs {
        codes: codes.values,
        d: codes.cols,
        ..Default::default()
    };
    for name in ["factors", "labels"] {
        let Some(m) = read_matrix(&mut npz, name, path)? else {
            continue;
        };
        if m.rows != n {
            return Err(Error::Shape {
                context: format!("{shown}: array `{name}`"),
                expected: format!("{n} rows like `codes`"),
                got: format!("{} rows", m.rows),
            });
        }
        if name == "factors" {
            (inputs.factors, inputs.k) = (Some(m.values), m.cols);
        } else {
            (inputs.labels, inputs.n_labels) = (Some(m.values), m.cols);
        }
    }
    let dropped = match nonfinite {
        NonFiniteRows::Reject => 0,
        NonFiniteRows::Drop => inputs.drop_nonfinite_rows(),
    };
    let left = inputs.n();
    if left < 2 {
        let after = if dropped > 0 {
            format!(" left after dropping {dropped} with non-finite values")
        } else {
            String::new()
        };
        return Err(Error::Data(format!(
            "{shown}: `codes` has {left} row(s){after}; the metrics need at least 2"
        )));
    }
    inputs
        .validate()
        .map_err(|e| Error::Data(format!("{shown}: {}", strip_data_prefix(&e))))?;
    Ok((inputs, dropped))
}

/// An error's message without the `data: ` its variant prints, for re-wrapping with a file name.
fn strip_data_prefix(e: &Error) -> String {
    match e {
        Error::Data(m) => m.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evaluation_rows_are_spread_over_the_split() {
        let rows: Vec<usize> = (100..200).collect();
        assert_eq!(evenly_spaced(&rows, 4), vec![100, 125, 150, 175]);
        assert_eq!(evenly_spaced(&rows, 500), rows);
        assert_eq!(evenly_spaced(&rows, 100), rows);
    }

    #[test]
    fn exported_latents_load_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("z.npz");
        let inputs = EvalInputs {
            codes: (0..12).map(|v| v as f32).collect(),
            d: 3,
            factors: Some(vec![1.0, 2.0, 3.0, 4.0]),
            k: 1,
            ..Default::default()
        };
        check_export_path(dir.path(), &path).unwrap();
        export_latents(&path, &inputs).unwrap();
        let (back, dropped) = load_latents(&path, NonFiniteRows::Reject).unwrap();
        assert_eq!(dropped, 0);
        assert_eq!((back.codes, back.d, back.k), (inputs.codes, 3, 1));
        assert_eq!(back.factors, inputs.factors);
        assert!(back.labels.is_none());
        assert!(
            load_latents(&dir.path().join("missing.npz"), NonFiniteRows::Reject)
                .unwrap_err()
                .to_string()
                .contains("missing.npz")
        );
    }

    #[test]
    fn exports_go_to_new_npz_files_only() {
        let run = tempfile::tempdir().unwrap();
        let config = run.path().join("config.ron");
        std::fs::write(&config, "()").unwrap();
        let err = check_export_path(run.path(), &config)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("config.ron") && err.contains("run's own files"),
            "{err}"
        );
        let err = check_export_path(run.path(), &run.path().join("z.csv"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("must end in .npz"), "{err}");
        let err = check_export_path(run.path(), run.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("is a folder"), "{err}");
        check_export_path(run.path(), &run.path().join("latents.npz")).unwrap();
        let inputs = EvalInputs {
            codes: vec![0.0; 4],
            d: 2,
            ..Default::default()
        };
        assert!(export_latents(&config, &inputs).is_err());
        assert_eq!(std::fs::read_to_string(&config).unwrap(), "()");
    }
}

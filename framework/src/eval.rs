//! Evaluation of a trained run: codes, factors and model terms over a split, then the configured metrics.

use crate::data::{make_batch, Split};
use crate::error::{Error, Result};
use crate::metrics::{self, EvalInputs};
use crate::train::Session;
use std::collections::BTreeMap;

const EVAL_BATCH: usize = 256;

/// Encodes up to `max_samples` rows of `split` and averages the model's evaluation terms.
pub fn collect(session: &Session, split: Split, max_samples: usize) -> Result<EvalInputs> {
    let rows = session.data.split(split);
    let rows = &rows[..rows.len().min(max_samples)];
    if rows.is_empty() {
        return Err(Error::Data(format!("the {split:?} split is empty")));
    }
    let mut inputs = EvalInputs {
        k: session.data.spec().factor_names.len(),
        n_labels: session.data.spec().label_names.len(),
        ..Default::default()
    };
    let mut factors = Vec::new();
    let mut labels = Vec::new();
    let mut sums: BTreeMap<String, f64> = BTreeMap::new();
    let mut scratch = Vec::new();
    for chunk in rows.chunks(EVAL_BATCH) {
        let batch = make_batch(session.data.as_ref(), chunk, &session.device, &mut scratch)?;
        let codes = session.method.encode(&batch.x)?;
        let frames = session.data.spec().frames();
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
        if let Some(f) = session.data.factors(chunk) {
            factors.extend(f);
        }
        if let Some(l) = session.data.labels(chunk) {
            labels.extend(l);
        }
        for (k, v) in session.method.evaluate(&batch)?.terms {
            *sums.entry(k).or_default() += v as f64 * chunk.len() as f64;
        }
    }
    inputs.factors = (!factors.is_empty()).then_some(factors);
    inputs.labels = (!labels.is_empty()).then_some(labels);
    if let Some(a) = session.method.graph()? {
        inputs.learned_graph = Some(
            a.flatten_all()?
                .to_dtype(candle_core::DType::F32)?
                .to_vec1()?,
        );
    }
    inputs.true_graph = session.data.spec().graph.as_ref().map(|g| g.adj.concat());
    for (name, probs) in session.method.latent_graphs()? {
        let (r, c) = probs.dims2()?;
        let values = probs
            .to_dtype(candle_core::DType::F32)?
            .flatten_all()?
            .to_vec1()?;
        inputs.learned_latent_graphs.push((name, r, c, values));
    }
    inputs.true_latent_graphs = session.data.spec().latent_graphs.clone();
    inputs.model_terms = sums
        .into_iter()
        .map(|(k, v)| (k, v / rows.len() as f64))
        .collect();
    Ok(inputs)
}

/// The named metrics on `split`.
pub fn evaluate(
    session: &Session,
    names: &[String],
    split: Split,
    max_samples: usize,
) -> Result<BTreeMap<String, f64>> {
    for n in names {
        metrics::find(n)?;
    }
    let inputs = collect(session, split, max_samples)?;
    metrics::compute_with_model(names, &inputs, session)
}

/// Writes `codes` (N×d), `factors` (N×k) and `labels` (N×l, where present) as float32 arrays to an `.npz`.
pub fn export_latents(path: &std::path::Path, inputs: &EvalInputs) -> Result<()> {
    use crate::error::IoContext;
    use npyz::WriterBuilder;
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

/// One 2-D array of an `.npz` as row-major f32 (`n × m`), from f32, f64 or integer data in either order.
fn read_matrix<R: std::io::Read + std::io::Seek>(
    npz: &mut npyz::npz::NpzArchive<R>,
    name: &str,
    path: &std::path::Path,
) -> Result<Option<(Vec<f32>, usize, usize)>> {
    let bad = |m: String| Error::Data(format!("{}: array `{name}`: {m}", path.display()));
    let Some(arr) = npz.by_name(name).map_err(|e| bad(e.to_string()))? else {
        return Ok(None);
    };
    let shape = arr.shape().to_vec();
    let (n, m) = match shape.as_slice() {
        [n] => (*n as usize, 1),
        [n, m] => (*n as usize, *m as usize),
        s => return Err(bad(format!("expected a 1-D or 2-D array, got shape {s:?}"))),
    };
    let fortran = arr.order() == npyz::Order::Fortran;
    let flat: Vec<f32> = match arr.dtype() {
        npyz::DType::Plain(t) if t.type_char() == npyz::TypeChar::Float && t.size_field() == 4 => {
            arr.into_vec::<f32>().map_err(|e| bad(e.to_string()))?
        }
        npyz::DType::Plain(t) if t.type_char() == npyz::TypeChar::Float => arr
            .into_vec::<f64>()
            .map_err(|e| bad(e.to_string()))?
            .into_iter()
            .map(|v| v as f32)
            .collect(),
        npyz::DType::Plain(t) if t.type_char() == npyz::TypeChar::Int => arr
            .into_vec::<i64>()
            .map_err(|e| bad(e.to_string()))?
            .into_iter()
            .map(|v| v as f32)
            .collect(),
        other => {
            return Err(bad(format!(
                "unsupported dtype {other:?} (use float or int)"
            )))
        }
    };
    let rows = if fortran {
        (0..n * m).map(|i| flat[(i % m) * n + i / m]).collect()
    } else {
        flat
    };
    Ok(Some((rows, n, m)))
}

/// Reads `codes` (N×d) and `factors` (N×k), and `labels` where present, from an `.npz` such as
/// `carve eval --export-latents` writes, so representations made with other tools can be scored.
pub fn load_latents(path: &std::path::Path) -> Result<EvalInputs> {
    let mut npz = npyz::npz::NpzArchive::open(path).map_err(|e| Error::io(path, e))?;
    let (codes, n, d) = read_matrix(&mut npz, "codes", path)?
        .ok_or_else(|| Error::Data(format!("{}: no `codes` array", path.display())))?;
    let mut inputs = EvalInputs {
        codes,
        d,
        ..Default::default()
    };
    for (name, is_factors) in [("factors", true), ("labels", false)] {
        if let Some((v, rows, m)) = read_matrix(&mut npz, name, path)? {
            if rows != n {
                return Err(Error::Shape {
                    context: format!("{}: `{name}`", path.display()),
                    expected: format!("{n} rows like `codes`"),
                    got: rows.to_string(),
                });
            }
            if is_factors {
                (inputs.factors, inputs.k) = (Some(v), m);
            } else {
                (inputs.labels, inputs.n_labels) = (Some(v), m);
            }
        }
    }
    Ok(inputs)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        export_latents(&path, &inputs).unwrap();
        let back = load_latents(&path).unwrap();
        assert_eq!((back.codes, back.d, back.k), (inputs.codes, 3, 1));
        assert_eq!(back.factors, inputs.factors);
        assert!(back.labels.is_none());
        assert!(load_latents(&dir.path().join("missing.npz"))
            .unwrap_err()
            .to_string()
            .contains("missing.npz"));
    }
}

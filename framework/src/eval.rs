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
    metrics::compute(names, &inputs)
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

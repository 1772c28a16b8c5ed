//! Metrics that the model itself reports on the evaluation split (averaged over batches).

use super::EvalInputs;
use crate::error::{Error, Result};
use std::collections::BTreeMap;

fn term(inputs: &EvalInputs, name: &str) -> Result<BTreeMap<String, f64>> {
    let v = inputs.model_terms.get(name).ok_or_else(|| {
        Error::Data(format!(
            "metric `{name}` needs a trained model (it is not computable from codes alone)"
        ))
    })?;
    Ok(BTreeMap::from([(name.to_string(), *v)]))
}

crate::register_metric!(
    "elbo",
    "evidence lower bound per sample at the posterior mean (nats)",
    |i| term(i, "elbo")
);
crate::register_metric!(
    "recon",
    "reconstruction −log p(x|z) per sample (nats)",
    |i| term(i, "recon")
);
crate::register_metric!("kl", "KL(q || prior) per sample (nats)", |i| term(i, "kl"));

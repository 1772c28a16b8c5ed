//! The generic ELBO method: encoder → causal layer → decoder, prior, and a list of objectives, one optimizer.

use super::{total_loss, Method, MethodConfig, MethodContext, StepReport};
use crate::components::*;
use crate::data::Batch;
use crate::error::Result;
use crate::nn::Params;
use crate::optim::AdamW;
use crate::rng::Rng;
use candle_core::Tensor;
use candle_nn::VarMap;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Any ELBO-family model from parts: `{"Elbo": (latent_dim: 10, encoder: ..., decoder: ..., objectives: [...])}`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Elbo {
    pub latent_dim: usize,
    /// Number of concepts, each an equal block of the latents, for the parts that work per concept
    /// (0: no concept layout, unless a part sets its own `concepts`).
    #[serde(default)]
    pub concepts: usize,
    pub encoder: Box<dyn EncoderConfig>,
    #[serde(default = "default_causal")]
    pub causal: Box<dyn CausalLayerConfig>,
    #[serde(default = "default_prior")]
    pub prior: Box<dyn PriorConfig>,
    pub decoder: Box<dyn DecoderConfig>,
    #[serde(default = "default_objectives")]
    pub objectives: Vec<Box<dyn ObjectiveConfig>>,
    /// Sample ε ~ q(ε|x) in training (true) or pass the posterior mean (false, as CausalVAE's code does).
    #[serde(default = "yes")]
    pub sample_posterior: bool,
}

fn yes() -> bool {
    true
}

fn default_causal() -> Box<dyn CausalLayerConfig> {
    Box::new(Independent {})
}
fn default_prior() -> Box<dyn PriorConfig> {
    Box::new(StdNormal {})
}
fn default_objectives() -> Vec<Box<dyn ObjectiveConfig>> {
    vec![
        Box::new(Reconstruction {}),
        Box::new(PriorKl {
            weight: 1.0,
            warmup_steps: 0,
        }),
    ]
}

/// Borrowed part configs of an ELBO model, so plugins can assemble one without owning an [`Elbo`].
pub struct ElboParts<'a> {
    pub latent_dim: usize,
    /// How the latents divide into concepts.
    pub concepts: ConceptLayout,
    pub encoder: &'a dyn EncoderConfig,
    pub causal: &'a dyn CausalLayerConfig,
    pub prior: &'a dyn PriorConfig,
    pub decoder: &'a dyn DecoderConfig,
    /// Each objective with its config location (for requirement errors).
    pub objectives: Vec<(String, &'a dyn ObjectiveConfig)>,
    pub sample_posterior: bool,
}

/// A config's objective list at `location` (`model.objectives` → `model.objectives[i]`).
pub fn located<'a>(
    location: &str,
    list: &'a [Box<dyn ObjectiveConfig>],
) -> Vec<(String, &'a dyn ObjectiveConfig)> {
    list.iter()
        .enumerate()
        .map(|(i, o)| (format!("{location}[{i}]"), o.as_ref()))
        .collect()
}

#[typetag::serde(name = "Elbo")]
impl MethodConfig for Elbo {
    fn build(&self, ctx: &MethodContext) -> Result<Box<dyn Method>> {
        let concepts = match self.concepts {
            0 => ConceptLayout::default(),
            n => ConceptLayout::blocks(self.latent_dim, n)?,
        };
        let parts = ElboParts {
            latent_dim: self.latent_dim,
            concepts,
            encoder: self.encoder.as_ref(),
            causal: self.causal.as_ref(),
            prior: self.prior.as_ref(),
            decoder: self.decoder.as_ref(),
            objectives: located("model.objectives", &self.objectives),
            sample_posterior: self.sample_posterior,
        };
        Ok(Box::new(ElboMethod::new(&parts, ctx)?))
    }
}
crate::register_method!(
    "Elbo",
    "any ELBO model composed from encoder, causal layer, prior, decoder and objectives",
    include_str!("../../../configs/vae/pendulum_conv64.ron"),
    slots: [Encoder, CausalLayer, Prior, Decoder, Objective]
);

pub struct ElboMethod {
    parts: Parts,
    objectives: Vec<Box<dyn Objective>>,
    varmap: VarMap,
    optimizer: AdamW,
    base_lr: f64,
    latent_dim: usize,
    sample_posterior: bool,
}

impl ElboParts<'_> {
    /// The parts as the requirement check sees them, at their config locations under `model`.
    pub fn part_list(&self) -> PartList {
        let mut list = PartList::new();
        list.encoder("model.encoder", self.encoder)
            .causal("model.causal", self.causal)
            .prior("model.prior", self.prior)
            .decoder("model.decoder", self.decoder);
        for (location, o) in &self.objectives {
            list.objective(location, *o);
        }
        list
    }
}

impl ElboMethod {
    pub fn new(cfg: &ElboParts, ctx: &MethodContext) -> Result<Self> {
        super::check_latent_dim(cfg.latent_dim)?;
        cfg.part_list().check(ctx.spec)?;
        let varmap = VarMap::new();
        let root = Params::new(varmap.clone(), ctx.device.clone(), ctx.seed);
        let bc = |name: &str| BuildContext {
            params: root.pp(name),
            spec: ctx.spec,
            latent_dim: cfg.latent_dim,
            concepts: cfg.concepts,
        };
        let parts = Parts {
            encoder: cfg.encoder.build(&bc("encoder"))?,
            causal: cfg.causal.build(&bc("causal"))?,
            prior: cfg.prior.build(&bc("prior"))?,
            decoder: cfg.decoder.build(&bc("decoder"))?,
        };
        let objectives = cfg
            .objectives
            .iter()
            .enumerate()
            .map(|(i, (_, o))| o.build(&bc(&format!("objective{i}"))))
            .collect::<Result<Vec<_>>>()?;
        let optimizer = AdamW::new(named_vars(&varmap), ctx.optimizer.clone())?;
        Ok(Self {
            parts,
            objectives,
            varmap,
            optimizer,
            base_lr: ctx.optimizer.lr,
            latent_dim: cfg.latent_dim,
            sample_posterior: cfg.sample_posterior,
        })
    }

    fn update(&mut self, batch: &Batch, step: usize, rng: &mut Rng) -> Result<StepReport> {
        let fwd = self.forward(batch, Some(rng))?;
        let terms = self.terms(&fwd, batch, step)?;
        let report = StepReport::from_terms(&terms, step)?;
        let grads = total_loss(&terms)?.backward()?;
        self.optimizer.step(&grads)?;
        Ok(report)
    }

    fn set_training(&self, training: bool) {
        self.parts.encoder.set_training(training);
        self.parts.decoder.set_training(training);
    }

    /// Encoder → (sample or mean) → causal layer → decoder.
    pub fn forward(&self, batch: &Batch, mut rng: Option<&mut Rng>) -> Result<ForwardOutputs> {
        let posterior = self.parts.encoder.encode(&batch.x)?;
        let eps = match rng.as_deref_mut() {
            Some(rng) if self.sample_posterior => posterior.rsample(rng)?,
            _ => posterior.mean.clone(),
        };
        let causal = self.parts.causal.forward(&eps, batch, rng)?;
        let decoded = self.parts.decoder.decode(&causal.z)?;
        Ok(ForwardOutputs {
            posterior,
            eps,
            causal,
            decoded,
        })
    }

    pub fn parts(&self) -> &Parts {
        &self.parts
    }

    fn terms(&self, fwd: &ForwardOutputs, batch: &Batch, step: usize) -> Result<Vec<Term>> {
        let mut terms = Vec::new();
        for o in &self.objectives {
            terms.extend(o.terms(fwd, &self.parts, batch, step)?);
        }
        Ok(terms)
    }
}

/// The variables of a map, sorted by name so optimizer order is deterministic.
pub fn named_vars(varmap: &VarMap) -> Vec<(String, candle_core::Var)> {
    let data = varmap.data().lock().expect("varmap lock");
    let mut v: Vec<_> = data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

impl Method for ElboMethod {
    fn train_step(&mut self, batch: &Batch, step: usize, rng: &mut Rng) -> Result<StepReport> {
        // Training mode (batch norm's batch statistics) only for the update: every other call evaluates.
        self.set_training(true);
        let report = self.update(batch, step, rng);
        self.set_training(false);
        report
    }

    /// `elbo` = E[log p(x|z)] − KL(q || prior) at the posterior mean (one deterministic pass), per sample.
    fn evaluate(&self, batch: &Batch) -> Result<StepReport> {
        let fwd = self.forward(batch, None)?;
        let recon = self.parts.decoder.nll(&batch.x, &fwd.decoded)?.mean_all()?;
        let kl = self.parts.prior.kl(&fwd, batch)?.mean_all()?;
        let recon = recon.to_scalar::<f32>()?;
        let kl = kl.to_scalar::<f32>()?;
        Ok(StepReport {
            terms: vec![
                ("elbo".into(), -(recon + kl)),
                ("recon".into(), recon),
                ("kl".into(), kl),
            ],
        })
    }

    fn encode(&self, x: &Tensor) -> Result<Tensor> {
        let q = self.parts.encoder.encode(x)?;
        let batch = Batch {
            x: x.clone(),
            labels: None,
            factors: None,
            actions: None,
        };
        Ok(self.parts.causal.forward(&q.mean, &batch, None)?.z)
    }

    fn decode(&self, z: &Tensor) -> Result<Tensor> {
        self.parts.decoder.mean(&self.parts.decoder.decode(z)?)
    }

    /// Abduction is the encoder's posterior mean of ε; the causal layer recomputes z under do(...).
    fn intervene(&self, x: &Tensor, dos: &[Do]) -> Result<Tensor> {
        let eps = self.parts.encoder.encode(x)?.mean;
        self.decode(&self.parts.causal.intervene(&eps, dos)?)
    }

    fn latent_dim(&self) -> usize {
        self.latent_dim
    }

    fn varmaps(&self) -> Vec<&VarMap> {
        vec![&self.varmap]
    }

    fn optimizer_state(&self) -> Result<HashMap<String, Tensor>> {
        self.optimizer.state()
    }

    fn load_optimizer_state(&mut self, state: &HashMap<String, Tensor>) -> Result<()> {
        self.optimizer.load_state(state)
    }

    fn set_lr_scale(&mut self, scale: f64) {
        self.optimizer.set_lr(self.base_lr * scale);
    }

    fn graph(&self) -> Result<Option<Tensor>> {
        self.parts.causal.graph()
    }

    fn node_values(&self, x: &Tensor) -> Result<Option<Tensor>> {
        self.parts.causal.node_values(&self.encode(x)?)
    }

    /// `log p(x|z) + log p(z) − log q(z|x)` for `k` draws `z ~ q(z|x)` per row, decoded in chunks of at most 256
    /// draws. Defined when the causal layer is the identity (`Independent`: z = ε)
    /// and the prior has a density ([`Prior::log_prob`], e.g. `StdNormal`); `None` otherwise.
    fn log_importance_weights(
        &self,
        x: &Tensor,
        k: usize,
        rng: &mut Rng,
    ) -> Result<Option<Tensor>> {
        const DRAWS_PER_CALL: usize = 256;
        let q = self.parts.encoder.encode(x)?;
        let (b, d) = q.mean.dims2()?;
        if k == 0 || b == 0 {
            return Err(crate::Error::msg(
                "importance weights need at least one row and one sample",
            ));
        }
        if self.parts.prior.log_prob(&q.mean)?.is_none() {
            return Ok(None);
        }
        if !self.parts.causal.is_identity() {
            return Ok(None);
        }
        let std = q.std()?;
        let obs: Vec<usize> = x.dims()[1..].to_vec();
        let log_2pi = (2.0 * std::f64::consts::PI).ln();
        let per_call = (DRAWS_PER_CALL / b).clamp(1, k);
        let mut chunks = Vec::new();
        let mut done = 0;
        while done < k {
            let kc = per_call.min(k - done);
            let noise = rng
                .normal(&[b, kc, d], x.device())?
                .to_dtype(q.mean.dtype())?;
            let z = (q
                .mean
                .unsqueeze(1)?
                .broadcast_add(&std.unsqueeze(1)?.broadcast_mul(&noise)?))?
            .reshape((b * kc, d))?;
            // log q(z|x) = −½ Σ (noise² + log σ² + log 2π), since (z − μ)/σ is the noise.
            let log_q =
                ((noise.sqr()?.broadcast_add(&q.logvar.unsqueeze(1)?)? + log_2pi)?.sum(2)? * -0.5)?;
            let log_p = self
                .parts
                .prior
                .log_prob(&z)?
                .ok_or_else(|| crate::Error::msg("the prior lost its log density"))?
                .reshape((b, kc))?;
            let mut shape = vec![b, kc];
            shape.extend_from_slice(&obs);
            let mut flat = vec![b * kc];
            flat.extend_from_slice(&obs);
            let xs = x.unsqueeze(1)?.broadcast_as(shape)?.reshape(flat)?;
            let nll = self
                .parts
                .decoder
                .nll(&xs, &self.parts.decoder.decode(&z)?)?
                .reshape((b, kc))?;
            chunks.push(((log_p - nll)? - log_q)?);
            done += kc;
        }
        Ok(Some(Tensor::cat(&chunks, 1)?))
    }
}

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
    /// Sizes of the stochastic layers z₁…z_L of a hierarchical model, bottom first, adding up to `latent_dim`
    /// (empty: one layer). The decoder reads z₁; hierarchical parts (e.g. `BottomUp`, `TopDown`) one block each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub latents: Vec<usize>,
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
    /// How the latents divide into stochastic layers (flat by default).
    pub layers: LatentLayers,
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
            layers: LatentLayers::new(&self.latents, self.latent_dim, "model.latents")?,
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
    layers: LatentLayers,
    sample_posterior: bool,
    device: candle_core::Device,
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
        if !cfg.layers.is_flat() && cfg.concepts.concepts() > 0 {
            return Err(crate::Error::Config {
                location: "model".into(),
                message: "a model has either concepts or latent layers, not both".into(),
            });
        }
        let bc = |name: &str| BuildContext {
            params: root.pp(name),
            spec: ctx.spec,
            latent_dim: cfg.latent_dim,
            concepts: cfg.concepts,
            layers: cfg.layers.clone(),
        };
        // The decoder reads the bottom layer only: p(x | z₁).
        let decoder_ctx = BuildContext {
            latent_dim: cfg.layers.bottom(cfg.latent_dim),
            layers: LatentLayers::default(),
            ..bc("decoder")
        };
        let parts = Parts {
            encoder: cfg.encoder.build(&bc("encoder"))?,
            causal: cfg.causal.build(&bc("causal"))?,
            prior: cfg.prior.build(&bc("prior"))?,
            decoder: cfg.decoder.build(&decoder_ctx)?,
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
            layers: cfg.layers.clone(),
            sample_posterior: cfg.sample_posterior,
            device: ctx.device.clone(),
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
        self.parts.prior.set_training(training);
        self.parts.decoder.set_training(training);
    }

    /// Encoder → (sample or mean) → causal layer → decoder (of the bottom latent layer).
    pub fn forward(&self, batch: &Batch, mut rng: Option<&mut Rng>) -> Result<ForwardOutputs> {
        let draw_rng = match rng.as_deref_mut() {
            Some(rng) if self.sample_posterior => Some(rng),
            _ => None,
        };
        let (posterior, eps) = self.parts.encoder.sample(&batch.x, 1, draw_rng)?;
        let causal = self.parts.causal.forward(&eps, batch, rng)?;
        let decoded = self
            .parts
            .decoder
            .decode(&self.layers.bottom_of(&causal.z)?)?;
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
        let decoded = self.parts.decoder.decode(&self.layers.bottom_of(z)?)?;
        self.parts.decoder.mean(&decoded)
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

    /// Prior draws through the causal layer (no interventions) and the decoder; for priors with an
    /// unconditional density only.
    fn generate(&self, n: usize, rng: &mut Rng) -> Result<Option<Tensor>> {
        let d = self.latent_dim;
        let probe = Tensor::zeros((1, d), candle_core::DType::F32, &self.device)?;
        if self.parts.prior.log_prob(&probe)?.is_none() {
            return Ok(None);
        }
        let eps = self.parts.prior.sample(n, d, None, rng, &self.device)?;
        let z = if self.parts.causal.is_identity() {
            eps
        } else {
            self.parts.causal.intervene(&eps, &[])?
        };
        Ok(Some(self.decode(&z)?))
    }

    fn latent_layers(&self) -> Vec<usize> {
        self.layers.sizes(self.latent_dim)
    }

    /// KL(q(u | ·) || p(u | ·)) of every latent unit u in closed form, both conditioned on one posterior draw of
    /// the units they depend on (for a flat model with a N(0, I) prior: the usual per-unit KL). Defined when the
    /// causal layer is the identity and the prior is Gaussian unit by unit ([`Prior::conditionals`]).
    fn unit_kl(&self, x: &Tensor, rng: &mut Rng) -> Result<Option<Tensor>> {
        if !self.parts.causal.is_identity() {
            return Ok(None);
        }
        let (q, z) = self.parts.encoder.sample(x, 1, Some(rng))?;
        let Some(p) = self.parts.prior.conditionals(&z)? else {
            return Ok(None);
        };
        Ok(Some(q.kl_per_unit(&p)?))
    }

    /// `log p(x|z) + log p(z) − log q(z|x)` for `k` draws `z ~ q(z|x)` per row (the encoder's
    /// [`Encoder::sample`]: layer by layer for a hierarchical one), decoded in chunks of at most 1024 draws.
    /// Defined when the causal layer is the identity (`Independent`: z = ε) and the prior has a density
    /// ([`Prior::log_prob`], e.g. `StdNormal`, `TopDown`); `None` otherwise.
    fn log_importance_weights(
        &self,
        x: &Tensor,
        k: usize,
        rng: &mut Rng,
    ) -> Result<Option<Tensor>> {
        const DRAWS_PER_CALL: usize = 1024;
        let b = x.dims()[0];
        if k == 0 || b == 0 {
            return Err(crate::Error::msg(
                "importance weights need at least one row and one sample",
            ));
        }
        if !self.parts.causal.is_identity() {
            return Ok(None);
        }
        let obs: Vec<usize> = x.dims()[1..].to_vec();
        let per_call = (DRAWS_PER_CALL / b).clamp(1, k);
        let mut chunks = Vec::new();
        let mut done = 0;
        while done < k {
            let kc = per_call.min(k - done);
            let (q, z) = self.parts.encoder.sample(x, kc, Some(rng))?;
            let Some(log_p) = self.parts.prior.log_prob(&z)? else {
                return Ok(None);
            };
            let log_q = q.log_prob(&z)?;
            let mut shape = vec![b, kc];
            shape.extend_from_slice(&obs);
            let mut flat = vec![b * kc];
            flat.extend_from_slice(&obs);
            let xs = x.unsqueeze(1)?.broadcast_as(shape)?.reshape(flat)?;
            let decoded = self.parts.decoder.decode(&self.layers.bottom_of(&z)?)?;
            let nll = self.parts.decoder.nll(&xs, &decoded)?;
            chunks.push(((log_p - nll)? - log_q)?.reshape((b, kc))?);
            done += kc;
        }
        Ok(Some(Tensor::cat(&chunks, 1)?))
    }
}

//! DEAR's training protocol (§5.2): per iteration one discriminator step, one encoder step and one
//! generator + prior step, each with its own optimizer (§5.4).
//!
//! The encoder sample z_E, the prior sample z and the generated image G(z) are computed once per iteration
//! and reused by the three updates: the discriminator step sees them detached, and neither the encoder nor
//! the generator or prior changes before the step that differentiates through them, so this equals
//! recomputing them (the code draws fresh noise for each step; here one draw serves all three).
//!
//! The prior is z = causal(ε), ε ~ prior: any registered causal layer that can abduct and any prior. Added
//! objectives see the encoder's pass (posterior q(z|x), z_E, ε = abduct(z_E), G(z_E)) and join both the
//! encoder's and the generator's losses, so every parameter group takes their gradient in its own update.

use crate::supervision::SupervisionLoss;
use crate::Dear;
use candle_core::{DType, Tensor};
use candle_nn::VarMap;
use carve::components::{
    BuildContext, CausalOutput, ConceptLayout, Discriminator, Do, Feature, ForwardOutputs, Need,
    Objective, PartList, Parts, Term,
};
use carve::data::Batch;
use carve::error::{Error, Result};
use carve::method::{total_loss, Method, MethodContext, StepReport};
use carve::nn::{Activation, Params};
use carve::optim::{GroupSpec, ParamGroups};
use carve::rng::Rng;
use std::collections::HashMap;

/// Parameter groups, each with its own optimizer and checkpoint prefix: the first three and `prior` by
/// path, the SCM weights A tagged `adjacency` where they are created.
const GROUPS: [&str; 5] = [
    "encoder",
    "generator",
    "discriminator",
    "prior",
    "adjacency",
];

pub struct DearMethod {
    /// Encoder, causal layer, prior and generator (as the decoder).
    parts: Parts,
    discriminator: Box<dyn Discriminator>,
    objectives: Vec<Box<dyn Objective>>,
    supervision: SupervisionLoss,
    /// Number of supervised latents (labels), the first m of k.
    m: usize,
    k: usize,
    varmap: VarMap,
    groups: ParamGroups,
}

impl DearMethod {
    pub fn new(cfg: &Dear, ctx: &MethodContext) -> Result<Self> {
        let spec = ctx.spec;
        let m = spec.label_names.len();
        let k = cfg.latent_dim;
        if m > k {
            return Err(Error::Config {
                location: "model.latent_dim".into(),
                message: format!("must be at least the number of labels ({m}), got {k}"),
            });
        }
        let mut list = PartList::new();
        list.push("model", "method", "Dear", vec![Need::Labels], vec![])
            // do() on the encoder's z abducts ε through the causal layer.
            .push(
                "model",
                "method",
                "Dear",
                vec![Need::Part(Feature::Abduction)],
                vec![],
            )
            .encoder("model.encoder", cfg.encoder.as_ref())
            .decoder("model.generator", cfg.generator.as_ref())
            .causal("model.causal", cfg.causal.as_ref())
            .prior("model.prior", cfg.prior.as_ref())
            .push(
                "model.discriminator",
                "discriminator",
                cfg.discriminator.typetag_name(),
                cfg.discriminator.needs(),
                vec![],
            );
        for (i, o) in cfg.objectives.iter().enumerate() {
            list.objective(&format!("model.objectives[{i}]"), o.as_ref());
        }
        list.check(spec)?;
        let stats = ctx.label_stats.as_ref().ok_or_else(|| {
            Error::msg("DEAR is weakly supervised: the train split must have labels")
        })?;
        if let Some(graph) = &spec.graph {
            if graph.n() != m {
                return Err(Error::Shape {
                    context: "DEAR's causal nodes".into(),
                    expected: format!("the data's graph over its {m} labels"),
                    got: format!("{} nodes", graph.n()),
                });
            }
        }
        let varmap = VarMap::new();
        let root = Params::new(varmap.clone(), ctx.device.clone(), ctx.seed);
        // The first m latents are the labelled concepts, one latent each; the rest are free.
        let concepts = ConceptLayout::singles(k, m)?;
        let build = |name: &str| BuildContext {
            params: root.pp(name),
            spec,
            latent_dim: k,
            concepts,
            layers: Default::default(),
        };
        let encoder = cfg.encoder.build(&build("encoder"))?;
        let generator = cfg.generator.build(&build("generator"))?;
        let discriminator = cfg.discriminator.build(&build("discriminator"))?;
        let causal = cfg.causal.build(&build("causal"))?;
        let prior = cfg.prior.build(&build("prior"))?;
        let objectives = cfg
            .objectives
            .iter()
            .enumerate()
            .map(|(i, o)| o.build(&build(&format!("objective{i}"))))
            .collect::<Result<Vec<_>>>()?;
        let supervision = SupervisionLoss::new(&cfg.supervision, stats, &ctx.device)?;
        let lr = &cfg.learning_rates;
        let rates = [
            lr.encoder,
            lr.generator,
            lr.discriminator,
            lr.prior,
            lr.adjacency,
        ];
        let specs = GROUPS
            .iter()
            .zip(rates)
            .map(|(&name, rate)| {
                let mut c = ctx.optimizer.clone();
                c.lr = rate;
                if name == "adjacency" {
                    c.beta1 = lr.adjacency_beta1;
                }
                GroupSpec::new(name, c, &format!("{name}/"))
            })
            .collect();
        let groups = ParamGroups::new(&root, specs, "prior")?;
        Ok(Self {
            parts: Parts {
                encoder,
                causal,
                prior,
                decoder: generator,
            },
            discriminator,
            objectives,
            supervision,
            m,
            k,
            varmap,
            groups,
        })
    }

    /// x = G(z): the generator's expected image.
    fn generate(&self, z: &Tensor) -> Result<Tensor> {
        self.parts.decoder.mean(&self.parts.decoder.decode(z)?)
    }

    /// z = causal(ε), ε ~ prior, for `batch.size()` draws.
    fn sample_prior(&self, batch: &Batch, rng: &mut Rng) -> Result<Tensor> {
        let labels = batch.labels.as_ref();
        let eps = self.parts.prior.sample(
            batch.size(),
            self.k,
            labels,
            rng,
            self.supervision.device(),
        )?;
        Ok(self.parts.causal.forward(&eps, batch, None)?.z)
    }

    /// The added objectives' terms on the encoder's pass.
    fn objective_terms(
        &self,
        batch: &Batch,
        q: &carve::dist::DiagGaussian,
        z_enc: &Tensor,
        step: usize,
    ) -> Result<Vec<Term>> {
        if self.objectives.is_empty() {
            return Ok(Vec::new());
        }
        let fwd = ForwardOutputs {
            posterior: q.clone(),
            eps: self.parts.causal.abduct(z_enc)?,
            causal: CausalOutput::latents(z_enc.clone()),
            decoded: self.parts.decoder.decode(z_enc)?,
        };
        let mut terms = Vec::new();
        for o in &self.objectives {
            terms.extend(o.terms(&fwd, &self.parts, batch, step)?);
        }
        Ok(terms)
    }

    fn labels(&self, batch: &Batch) -> Result<Tensor> {
        let labels = batch
            .labels
            .as_ref()
            .ok_or_else(|| Error::msg("DEAR needs labelled batches"))?;
        Ok(labels.narrow(1, 0, self.m)?.to_dtype(DType::F32)?)
    }

    fn set_training(&self, training: bool) {
        self.parts.encoder.set_training(training);
        self.parts.decoder.set_training(training);
    }

    /// One iteration's three updates (§5.2).
    fn update(&mut self, batch: &Batch, step: usize, rng: &mut Rng) -> Result<StepReport> {
        let x = &batch.x;
        let labels = self.labels(batch)?;
        let q = self.parts.encoder.encode(x)?;
        let z_enc = q.rsample(rng)?;
        let z_gen = self.sample_prior(batch, rng)?;
        let x_gen = self.generate(&z_gen)?;

        // 1. Discriminator: encoder pairs (x, E(x)) are the "real" class, generator pairs (G(z), z) the "fake".
        let d_fake = self
            .discriminator
            .forward(&x_gen.detach(), &z_gen.detach(), true)?;
        let d_real = self.discriminator.forward(x, &z_enc.detach(), true)?;
        let loss_d = (softplus(&d_fake)?.mean_all()? + softplus(&d_real.neg()?)?.mean_all()?)?;
        let v_d = checked(&loss_d, "loss_d", step)?;
        self.step(&[2], &loss_d)?;

        // 2. Encoder: make its pairs look generated, plus the supervised term on the first m means.
        let adv_e = self.discriminator.forward(x, &z_enc, true)?.mean_all()?;
        let sup = self
            .supervision
            .loss(&q.mean.narrow(1, 0, self.m)?, &labels)?;
        let (v_e, v_sup) = (
            checked(&adv_e, "loss_e", step)?,
            checked(&sup, "sup", step)?,
        );
        let terms = self.objective_terms(batch, &q, &z_enc, step)?;
        let added = StepReport::from_terms(&terms, step)?;
        let mut loss_e = (adv_e + (sup * self.supervision.weight())?)?;
        if !terms.is_empty() {
            loss_e = (loss_e + total_loss(&terms)?)?;
        }
        self.step(&[0], &loss_e)?;

        // 3. Generator and prior: −mean(s·D) with s = clamp(exp D, 0.5, 2) held constant (§5.2).
        let d_gen = self.discriminator.forward(&x_gen, &z_gen, true)?;
        let s = d_gen.detach().exp()?.clamp(0.5f32, 2f32)?;
        let loss_g = (s * &d_gen)?.mean_all()?.neg()?;
        let v_g = checked(&loss_g, "loss_g", step)?;
        if terms.is_empty() {
            self.step(&[1, 3, 4], &loss_g)?;
        } else {
            self.step(&[1, 3, 4], &(loss_g + total_loss(&terms)?)?)?;
        }

        let mean = |t: &Tensor| -> Result<f32> { Ok(t.mean_all()?.to_scalar::<f32>()?) };
        let extra = added.get("loss").unwrap_or(0.0);
        let mut report = StepReport {
            terms: vec![
                (
                    "loss".into(),
                    v_d + v_e + v_g + self.supervision.weight() as f32 * v_sup + extra,
                ),
                ("loss_d".into(), v_d),
                ("loss_e".into(), v_e),
                ("sup".into(), v_sup),
                ("loss_g".into(), v_g),
                ("d_real".into(), mean(&d_real)?),
                ("d_fake".into(), mean(&d_fake)?),
            ],
        };
        report
            .terms
            .extend(added.terms.into_iter().filter(|(n, _)| n != "loss"));
        Ok(report)
    }

    fn step(&mut self, groups: &[usize], loss: &Tensor) -> Result<()> {
        let grads = loss.backward()?;
        self.groups.step(groups, &grads)
    }
}

/// The scalar value of a loss term, or the NaN error naming the step and term.
fn checked(t: &Tensor, term: &str, step: usize) -> Result<f32> {
    let v = t.to_dtype(DType::F32)?.to_scalar::<f32>()?;
    if v.is_finite() {
        Ok(v)
    } else {
        Err(Error::NonFinite {
            step,
            term: term.into(),
            value: v,
        })
    }
}

fn softplus(x: &Tensor) -> Result<Tensor> {
    Activation::Softplus.apply(x)
}

impl Method for DearMethod {
    /// Encoder and generator are in training mode (batch norm's batch statistics, the code's `model.train()`)
    /// only here: every other call evaluates.
    fn train_step(&mut self, batch: &Batch, step: usize, rng: &mut Rng) -> Result<StepReport> {
        self.set_training(true);
        let report = self.update(batch, step, rng);
        self.set_training(false);
        report
    }

    /// `sup` (the supervision loss, unweighted), `recon_mse` (per-pixel squared error of G(μ_E(x)): how well
    /// generator and encoder invert each other) and `d_real` (D on encoder pairs at the mean).
    fn evaluate(&self, batch: &Batch) -> Result<StepReport> {
        let mu = self.parts.encoder.encode(&batch.x)?.mean;
        let mut terms = Vec::new();
        if batch.labels.is_some() {
            let sup = self
                .supervision
                .loss(&mu.narrow(1, 0, self.m)?, &self.labels(batch)?)?;
            terms.push(("sup".into(), sup.to_scalar::<f32>()?));
        }
        let recon = (self.generate(&mu)? - &batch.x)?.sqr()?.mean_all()?;
        terms.push(("recon_mse".into(), recon.to_scalar::<f32>()?));
        let d = self
            .discriminator
            .forward(&batch.x, &mu, false)?
            .mean_all()?;
        terms.push(("d_real".into(), d.to_scalar::<f32>()?));
        Ok(StepReport { terms })
    }

    /// The encoder means μ_E(x) `[B, k]`; the first m are aligned with the labels.
    fn encode(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.parts.encoder.encode(x)?.mean)
    }

    fn decode(&self, z: &Tensor) -> Result<Tensor> {
        self.generate(z)
    }

    /// μ_E(x) under do(...) through the causal layer (the SCM abducts ε, sets the nodes and recomputes their
    /// descendants; with `Independent` only the intervened latents change), then G.
    fn intervene(&self, x: &Tensor, dos: &[Do]) -> Result<Tensor> {
        let z = self.encode(x)?;
        self.generate(&self.parts.causal.intervene_latents(&z, dos)?)
    }

    fn latent_dim(&self) -> usize {
        self.k
    }

    fn varmaps(&self) -> Vec<&VarMap> {
        vec![&self.varmap]
    }

    fn optimizer_state(&self) -> Result<HashMap<String, Tensor>> {
        self.groups.state()
    }

    fn load_optimizer_state(&mut self, state: &HashMap<String, Tensor>) -> Result<()> {
        self.groups.load_state(state)
    }

    fn set_lr_scale(&mut self, scale: f64) {
        self.groups.set_lr_scale(scale);
    }

    /// The supervised latents' means `[B, m]`, the units do() takes.
    fn node_values(&self, x: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(self.encode(x)?.narrow(1, 0, self.m)?))
    }

    /// The causal layer's weighted adjacency (`A[p][j]`: p → j); zeros for a layer without a graph.
    fn graph(&self) -> Result<Option<Tensor>> {
        match self.parts.causal.graph()? {
            Some(a) => Ok(Some(a)),
            None => Ok(Some(Tensor::zeros(
                (self.m, self.m),
                DType::F32,
                self.supervision.device(),
            )?)),
        }
    }
}

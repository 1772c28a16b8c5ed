//! DEAR's training protocol (§5.2): per iteration one discriminator step, one encoder step and one
//! generator + prior step, each with its own optimizer (§5.4).
//!
//! The encoder sample z_E, the prior sample z and the generated image G(z) are computed once per iteration
//! and reused by the three updates: the discriminator step sees them detached, and neither the encoder nor
//! the generator or prior changes before the step that differentiates through them, so this equals
//! recomputing them (the code draws fresh noise for each step; here one draw serves all three).

use crate::supervision::SupervisionLoss;
use crate::{Dear, DearPrior};
use candle_core::{DType, Tensor};
use candle_nn::VarMap;
use carve::components::{set_columns, BuildContext, Decoder, Discriminator, Do, Encoder};
use carve::data::Batch;
use carve::error::{Error, Result};
use carve::method::{Method, MethodContext, StepReport};
use carve::nn::{Activation, Params};
use carve::optim::{GroupSpec, ParamGroups};
use carve::rng::Rng;
use carve::scm::ScmPrior;
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
    encoder: Box<dyn Encoder>,
    generator: Box<dyn Decoder>,
    discriminator: Box<dyn Discriminator>,
    /// `None`: the independent N(0, I) prior.
    scm: Option<ScmPrior>,
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
        let stats = ctx.label_stats.as_ref().ok_or_else(|| {
            Error::msg(
                "DEAR is weakly supervised: the data must have labels (one per causal latent)",
            )
        })?;
        let m = spec.label_names.len();
        let k = cfg.latent_dim;
        if m > k {
            return Err(Error::Config {
                location: "model.latent_dim".into(),
                message: format!("must be at least the number of labels ({m}), got {k}"),
            });
        }
        let varmap = VarMap::new();
        let root = Params::new(varmap.clone(), ctx.device.clone(), ctx.seed);
        let build = |name: &str| BuildContext {
            params: root.pp(name),
            spec,
            latent_dim: k,
        };
        let encoder = cfg.encoder.build(&build("encoder"))?;
        let generator = cfg.generator.build(&build("generator"))?;
        let discriminator = cfg.discriminator.build(&build("discriminator"))?;
        let scm = match &cfg.prior {
            DearPrior::Independent => None,
            DearPrior::Scm { f2 } => {
                let graph = spec.graph.as_ref().ok_or_else(|| {
                    Error::msg("DEAR's SCM prior needs the data's causal graph over the labels (the data has none): use prior: Independent")
                })?;
                if graph.n() != m {
                    return Err(Error::Shape {
                        context: "DEAR SCM prior".into(),
                        expected: format!("a graph over the {m} labels"),
                        got: format!("{} nodes", graph.n()),
                    });
                }
                let prior = root.pp("prior");
                Some(ScmPrior::with_param_groups(
                    &prior.in_group("adjacency"),
                    &prior.pp("f2"),
                    k,
                    graph,
                    f2,
                )?)
            }
        };
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
            encoder,
            generator,
            discriminator,
            scm,
            supervision,
            m,
            k,
            varmap,
            groups,
        })
    }

    /// x = G(z): the generator's expected image.
    fn generate(&self, z: &Tensor) -> Result<Tensor> {
        self.generator.mean(&self.generator.decode(z)?)
    }

    fn sample_prior(&self, n: usize, rng: &mut Rng) -> Result<Tensor> {
        match &self.scm {
            Some(scm) => scm.sample(n, rng),
            None => rng.normal(&[n, self.k], self.supervision.device()),
        }
    }

    fn labels(&self, batch: &Batch) -> Result<Tensor> {
        let labels = batch
            .labels
            .as_ref()
            .ok_or_else(|| Error::msg("DEAR needs labelled batches"))?;
        Ok(labels.narrow(1, 0, self.m)?.to_dtype(DType::F32)?)
    }

    fn set_training(&self, training: bool) {
        self.encoder.set_training(training);
        self.generator.set_training(training);
    }

    /// One iteration's three updates (§5.2).
    fn update(&mut self, batch: &Batch, step: usize, rng: &mut Rng) -> Result<StepReport> {
        let x = &batch.x;
        let labels = self.labels(batch)?;
        let q = self.encoder.encode(x)?;
        let z_enc = q.rsample(rng)?;
        let z_gen = self.sample_prior(batch.size(), rng)?;
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
        self.step(&[0], &(adv_e + (sup * self.supervision.weight())?)?)?;

        // 3. Generator and prior: −mean(s·D) with s = clamp(exp D, 0.5, 2) held constant (§5.2).
        let d_gen = self.discriminator.forward(&x_gen, &z_gen, true)?;
        let s = d_gen.detach().exp()?.clamp(0.5f32, 2f32)?;
        let loss_g = (s * &d_gen)?.mean_all()?.neg()?;
        let v_g = checked(&loss_g, "loss_g", step)?;
        self.step(&[1, 3, 4], &loss_g)?;

        let mean = |t: &Tensor| -> Result<f32> { Ok(t.mean_all()?.to_scalar::<f32>()?) };
        Ok(StepReport {
            terms: vec![
                (
                    "loss".into(),
                    v_d + v_e + v_g + self.supervision.weight() as f32 * v_sup,
                ),
                ("loss_d".into(), v_d),
                ("loss_e".into(), v_e),
                ("sup".into(), v_sup),
                ("loss_g".into(), v_g),
                ("d_real".into(), mean(&d_real)?),
                ("d_fake".into(), mean(&d_fake)?),
            ],
        })
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
        let mu = self.encoder.encode(&batch.x)?.mean;
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
        Ok(self.encoder.encode(x)?.mean)
    }

    fn decode(&self, z: &Tensor) -> Result<Tensor> {
        self.generate(z)
    }

    /// μ_E(x) under do(...) (abduct ε, set, recompute descendants through the SCM; with the independent prior
    /// only the intervened latents change), then G.
    fn intervene(&self, x: &Tensor, dos: &[Do]) -> Result<Tensor> {
        let z = self.encode(x)?;
        let z_do = match &self.scm {
            Some(scm) => scm.intervene(&z, dos)?,
            None => set_columns(&z, dos)?,
        };
        self.generate(&z_do)
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

    /// The SCM's weighted adjacency (`A[p][j]`: p → j); zeros for the independent prior.
    fn graph(&self) -> Result<Option<Tensor>> {
        match &self.scm {
            Some(scm) => Ok(Some(scm.adjacency()?)),
            None => Ok(Some(Tensor::zeros(
                (self.m, self.m),
                DType::F32,
                self.supervision.device(),
            )?)),
        }
    }
}

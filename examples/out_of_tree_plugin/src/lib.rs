//! A carve plugin that depends on nothing but `carve`: the `LearnedNormal` prior, N(μ, diag σ²) with μ and
//! log σ² trained with the model, so the prior can shrink latents the data does not use.

use carve::dist::DiagGaussian;
use carve::nn::Init;
use carve::prelude::*;
use carve::rng::Rng;

/// Call from `main` (see `src/main.rs`): a crate that the binary never names is not linked, and its
/// registrations with it.
pub fn link() {}

/// The prior's config: `{"LearnedNormal": (init_logvar: 0.0, learn_mean: true)}`.
#[derive(Debug, Serialize, Deserialize)]
// serde's derive names its crate by path; this one is carve's re-export, so no `serde` dependency is needed.
#[serde(crate = "carve::prelude::serde", deny_unknown_fields)]
pub struct LearnedNormal {
    /// Starting log-variance of every latent (0: unit variance).
    #[serde(default)]
    pub init_logvar: f64,
    /// Learn the mean too (it starts at 0); `false` keeps it at 0 and learns the variances only.
    #[serde(default = "learn_mean_default")]
    pub learn_mean: bool,
}

fn learn_mean_default() -> bool {
    true
}

/// `typetag` resolves through `carve::prelude::*`.
#[typetag::serde(name = "LearnedNormal")]
impl PriorConfig for LearnedNormal {
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Prior>> {
        if !self.init_logvar.is_finite() || self.init_logvar.abs() > 20.0 {
            return Err(Error::msg(format!(
                "LearnedNormal init_logvar must be a finite number in [-20, 20], got {}",
                self.init_logvar
            )));
        }
        let d = ctx.latent_dim;
        let mean = if self.learn_mean {
            ctx.params.get(&[d], "mean", Init::Const(0.0))?
        } else {
            Tensor::zeros(d, DType::F32, ctx.device())?
        };
        let logvar = ctx
            .params
            .get(&[d], "logvar", Init::Const(self.init_logvar as f32))?;
        Ok(Box::new(LearnedNormalPrior { mean, logvar }))
    }
}
carve::register_component!(
    Prior,
    "LearnedNormal",
    "diagonal Gaussian N(μ, diag σ²) with learned μ and σ² (out-of-tree example plugin)",
    provides: [PriorDensity]
);

struct LearnedNormalPrior {
    /// `[latent_dim]`.
    mean: Tensor,
    /// `[latent_dim]`.
    logvar: Tensor,
}

impl LearnedNormalPrior {
    /// The prior as a Gaussian of the shape of `like` (`[B, latent_dim]`).
    fn broadcast(&self, like: &Tensor) -> Result<DiagGaussian> {
        DiagGaussian::new(
            self.mean.broadcast_as(like.shape())?,
            self.logvar.broadcast_as(like.shape())?,
        )
    }
}

impl Prior for LearnedNormalPrior {
    fn kl(&self, fwd: &ForwardOutputs, _batch: &Batch) -> Result<Tensor> {
        let prior = self.broadcast(&fwd.posterior.mean)?;
        fwd.posterior.kl(&prior)
    }

    fn sample(
        &self,
        n: usize,
        d: usize,
        _labels: Option<&Tensor>,
        rng: &mut Rng,
        device: &Device,
    ) -> Result<Tensor> {
        let noise = rng.normal(&[n, d], device)?;
        let prior = self.broadcast(&noise)?;
        Ok(((noise * prior.std()?)? + prior.mean)?)
    }

    fn log_prob(&self, z: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(self.broadcast(z)?.log_prob(z)?))
    }
}

//! The mechanism-sparsity VAE (docs/methods/sparsity.md) over its registered parts: the encoder q(z^t|x^t) of
//! each frame (by default N(μ(x), softplus(ρ(x)) + 1e-4)), the decoder p(x^t|z^t) (by default one learned
//! observation variance), and the transition prior p(z^t | z^{t−1}, a) with its Gumbel-masked graphs. The ELBO
//! is normalised per observed dimension, as the code does: (1/(T·d_x)) Σ_t log p(x^t|z^t) − (β/d_x) Σ_i KL_i
//! (the default decoder's `reduction: Mean` gives the first term; the KL is divided by d_x here).

use crate::MechanismSparsity;
use candle_core::{IndexOp, Tensor, D};
use carve::components::{BuildContext, Decoder, Encoder, MaskDraw, PartList, Transition};
use carve::data::{Batch, DataSpec};
use carve::dist::softplus;
use carve::error::{Error, Result};
use carve::nn::{GumbelMask, Params};
use carve::registry::ComponentKind;
use carve::rng::Rng;

pub struct Model {
    encoder: Box<dyn Encoder>,
    decoder: Box<dyn Decoder>,
    transition: Box<dyn Transition>,
    /// Learned N(m0, softplus(v0) + 1e-6) prior of the first frame (`full_seq`).
    init_prior: Option<(Tensor, Tensor)>,
    pub z_dim: usize,
    pub x_dim: usize,
    frames: usize,
    action_dim: usize,
    beta: f64,
    freeze_graph: bool,
}

/// One pass: the ELBO's parts per sample.
pub struct Pass {
    /// The decoder's nll of the sample's frames, `[B]`: −(1/(T·d_x)) Σ log p(x|z) with the default decoder.
    pub recon: Tensor,
    /// (1/d_x) Σ_i KL_i, `[B]` (β not applied).
    pub kl: Tensor,
}

impl Model {
    pub fn new(cfg: &MechanismSparsity, spec: &DataSpec, p: &Params) -> Result<Self> {
        let mut list = PartList::new();
        list.encoder("model.encoder", cfg.encoder.as_ref())
            .decoder("model.decoder", cfg.decoder.as_ref())
            .push(
                "model.transition",
                ComponentKind::Transition.label(),
                cfg.transition.typetag_name(),
                cfg.transition.needs(),
                cfg.transition.provides(),
            );
        list.check(spec)?;
        let frames = spec.frames();
        let x_dim = match (spec.sequence, spec.obs_shape.as_slice()) {
            (false, [d]) | (true, [_, d]) => *d,
            _ => {
                return Err(Error::Shape {
                    context: "MechanismSparsity data".into(),
                    expected: "tabular rows [d_x] or sequences [T, d_x]".into(),
                    got: format!("{:?}", spec.obs_shape),
                })
            }
        };
        if cfg.full_seq && !spec.sequence {
            return Err(Error::msg("`full_seq` needs sequence data (n_lag = 1)"));
        }
        let z_dim = cfg.latent_dim;
        // The encoder and decoder see one frame at a time.
        let frame = DataSpec {
            obs_shape: vec![x_dim],
            sequence: false,
            ..spec.clone()
        };
        fn build<'a>(p: &Params, name: &str, spec: &'a DataSpec, z_dim: usize) -> BuildContext<'a> {
            BuildContext {
                params: p.pp(name),
                spec,
                latent_dim: z_dim,
                concepts: Default::default(),
                layers: Default::default(),
            }
        }
        let encoder = cfg.encoder.build(&build(p, "encoder", &frame, z_dim))?;
        let decoder = cfg.decoder.build(&build(p, "decoder", &frame, z_dim))?;
        let transition = cfg.transition.build(&build(p, "transition", spec, z_dim))?;
        let init_prior = if cfg.full_seq {
            let q = p.pp("init_prior");
            Some((
                q.get_with_values(&[z_dim], "mean", vec![0.0; z_dim])?,
                q.get_with_values(
                    &[z_dim],
                    "raw_var",
                    vec![(1f64.exp() - 1.0).ln() as f32; z_dim],
                )?,
            ))
        } else {
            None
        };
        Ok(Self {
            encoder,
            decoder,
            transition,
            init_prior,
            z_dim,
            x_dim,
            frames,
            action_dim: spec.action_dim,
            beta: cfg.beta,
            freeze_graph: cfg.freeze_graph,
        })
    }

    /// Whether every edge is kept (the unregularised baseline).
    pub fn frozen(&self) -> bool {
        self.freeze_graph
    }

    pub fn beta(&self) -> f64 {
        self.beta
    }

    /// The transition's learned graph `name` (`z` or `a`), if the data has it.
    pub fn mask(&self, name: &str) -> Option<&GumbelMask> {
        self.transition
            .masks()
            .into_iter()
            .find(|(n, _)| *n == name)
            .map(|(_, m)| m)
    }

    /// The transition's learned graphs, named `z` and `a`.
    pub fn masks(&self) -> Vec<(&'static str, &GumbelMask)> {
        self.transition.masks()
    }

    /// Posterior mean and variance of every frame, `[B·T, d_z]` each.
    pub fn posterior(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let q = self.encode_frames(x)?;
        Ok((q.mean.clone(), q.var()?))
    }

    fn encode_frames(&self, x: &Tensor) -> Result<carve::dist::DiagGaussian> {
        let rows = x.elem_count() / self.x_dim;
        self.encoder.encode(&x.reshape((rows, self.x_dim))?)
    }

    /// E[x^t | z^t] of frames `[B, d_z]` → `[B, d_x]`.
    pub fn decode(&self, z: &Tensor) -> Result<Tensor> {
        self.decoder.mean(&self.decoder.decode(z)?)
    }

    /// ELBO parts per sample. With `rng`, z is sampled and the masks are Gumbel samples (training);
    /// without, z is the posterior mean and the masks are the learned graph (evaluation).
    pub fn pass(&self, batch: &Batch, rng: Option<&mut Rng>) -> Result<Pass> {
        let x = &batch.x;
        let b = batch.size();
        let (t, dz) = (self.frames, self.z_dim);
        let q = self.encode_frames(x)?;
        let (mean, var) = (q.mean.clone(), q.var()?);
        let mut rng = rng;
        let z = match rng.as_deref_mut() {
            Some(r) => q.rsample(r)?,
            None => mean.clone(),
        };
        // The decoder scores each sample's frames as one row.
        let n = t * self.x_dim;
        let decoded = self.decoder.decode(&z)?.reshape((b, n))?;
        let recon = self.decoder.nll(&x.reshape((b, n))?, &decoded)?;

        // KL of the last frame's posterior to the transition prior given the past.
        let mean3 = mean.reshape((b, t, dz))?;
        let var3 = var.reshape((b, t, dz))?;
        let (q_mean, q_var) = (mean3.i((.., t - 1, ..))?, var3.i((.., t - 1, ..))?);
        let past = if t == 2 {
            Some(z.reshape((b, t, dz))?.i((.., 0, ..))?)
        } else {
            None
        };
        let actions = if self.action_dim > 0 {
            Some(batch.actions.as_ref().ok_or_else(|| {
                Error::Data(
                    "MechanismSparsity: the batch has no actions but the data spec says it does"
                        .into(),
                )
            })?)
        } else {
            None
        };
        let draw = match rng {
            _ if self.freeze_graph => MaskDraw::AllOnes,
            Some(r) => MaskDraw::Sample(r),
            None => MaskDraw::Graph,
        };
        let (p_mean, p_var) = self.transition.prior(past.as_ref(), actions, draw)?;
        let mut kl = gaussian_kl(&q_mean, &q_var, &p_mean, &p_var)?;
        if let Some((m0, raw_v0)) = &self.init_prior {
            let v0 = (softplus(raw_v0)? + 1e-6)?.unsqueeze(0)?;
            let kl0 = gaussian_kl(
                &mean3.i((.., 0, ..))?,
                &var3.i((.., 0, ..))?,
                &m0.unsqueeze(0)?,
                &v0,
            )?;
            kl = ((kl + kl0)? * 0.5)?;
        }
        let kl = (kl / self.x_dim as f64)?;
        Ok(Pass { recon, kl })
    }
}

/// Σ_i KL(N(μq, σq²) || N(μp, σp²)) over the last axis, `[B]`; the prior may broadcast.
fn gaussian_kl(q_mean: &Tensor, q_var: &Tensor, p_mean: &Tensor, p_var: &Tensor) -> Result<Tensor> {
    let dmu2 = q_mean.broadcast_sub(p_mean)?.sqr()?;
    let log_ratio = p_var.log()?.broadcast_sub(&q_var.log()?)?;
    let quad = (q_var + dmu2)?.broadcast_div(p_var)?;
    Ok(((log_ratio + quad)? - 1.0)?
        .affine(0.5, 0.0)?
        .sum(D::Minus1)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn kl_matches_closed_form() {
        let dev = Device::Cpu;
        let qm = Tensor::new(&[[0.5f32, -1.0]], &dev).unwrap();
        let qv = Tensor::new(&[[0.25f32, 2.0]], &dev).unwrap();
        let pm = Tensor::new(&[[0.0f32, 0.0]], &dev).unwrap();
        let pv = Tensor::new(&[[1.0f32, 0.5]], &dev).unwrap();
        let kl = gaussian_kl(&qm, &qv, &pm, &pv)
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()[0];
        let one = |mq: f64, vq: f64, mp: f64, vp: f64| {
            0.5 * ((vp / vq).ln() + (vq + (mq - mp).powi(2)) / vp - 1.0)
        };
        let want = one(0.5, 0.25, 0.0, 1.0) + one(-1.0, 2.0, 0.0, 0.5);
        assert!((kl as f64 - want).abs() < 1e-5, "{kl} vs {want}");
    }
}

//! The mechanism-sparsity VAE (docs/methods/sparsity.md): MLP encoder q(z|x) = N(μ(x), softplus(ρ(x)) + 1e-4),
//! MLP decoder with one learned observation variance, and the Gumbel-masked transition prior. The ELBO is
//! normalised per observed dimension, as the code does: (1/(T·d_x)) Σ_t log p(x^t|z^t) − (β/d_x) Σ_i KL_i.

use crate::transition::{softplus, Transition};
use crate::MechanismSparsity;
use candle_core::{IndexOp, Tensor, D};
use carve::data::{Batch, DataSpec};
use carve::error::{Error, Result};
use carve::nn::{Activation, GumbelMask, Mlp, Params};
use carve::rng::Rng;

/// ½ log 2π.
const HALF_LOG_2PI: f64 = 0.918_938_533_204_672_8;

pub struct Model {
    encoder: Mlp,
    decoder: Mlp,
    /// log σ_x², a learned scalar (or a constant when the variance is fixed).
    decoder_logvar: Tensor,
    transition: Transition,
    /// G^z (z^{t−1} → z^t), present for sequence data.
    pub mask_z: Option<GumbelMask>,
    /// G^a (a → z), present for data with actions.
    pub mask_a: Option<GumbelMask>,
    /// Learned N(m0, softplus(v0) + 1e-6) prior of the first frame (`full_seq`).
    init_prior: Option<(Tensor, Tensor)>,
    pub z_dim: usize,
    pub x_dim: usize,
    frames: usize,
    action_dim: usize,
    beta: f64,
    freeze_graph: bool,
}

/// One pass: the ELBO's parts per sample and the masks it used.
pub struct Pass {
    /// −(1/(T·d_x)) Σ log p(x|z), `[B]`.
    pub recon: Tensor,
    /// (1/d_x) Σ_i KL_i, `[B]` (β not applied).
    pub kl: Tensor,
}

impl Model {
    pub fn new(cfg: &MechanismSparsity, spec: &DataSpec, p: &Params) -> Result<Self> {
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
        if spec.sequence && frames != 2 {
            return Err(Error::msg(format!(
                "MechanismSparsity models pairs (x^{{t−1}}, x^t) (n_lag = 1): sequences must have 2 frames, got {frames}"
            )));
        }
        let lagged = frames == 2;
        let action_dim = spec.action_dim;
        if !lagged && action_dim == 0 {
            return Err(Error::msg(
                "MechanismSparsity needs a past (sequence data) or actions to condition the latents on; this data has neither",
            ));
        }
        if cfg.full_seq && !lagged {
            return Err(Error::msg("`full_seq` needs sequence data (n_lag = 1)"));
        }
        let z_dim = cfg.latent_dim;
        let act = Activation::LeakyRelu(0.2);
        let encoder = Mlp::new(&p.pp("encoder"), x_dim, &cfg.encoder_hidden, 2 * z_dim, act)?;
        let decoder = Mlp::new(&p.pp("decoder"), z_dim, &cfg.decoder_hidden, x_dim, act)?;
        let decoder_logvar = if cfg.learn_decoder_var {
            p.get_with_values(&[1], "decoder_logvar", vec![cfg.decoder_logvar_init as f32])?
        } else {
            Tensor::new(&[cfg.decoder_logvar_init as f32], p.device())?
        };
        let inputs = if lagged { z_dim } else { 0 } + action_dim;
        let transition =
            Transition::new(&p.pp("transition"), z_dim, inputs, &cfg.transition_hidden)?;
        let mask = |name: &str, cols: usize| -> Result<Option<GumbelMask>> {
            (cols > 0)
                .then(|| {
                    let masks = p.in_group(crate::method::MASKS).pp(name);
                    GumbelMask::new(&masks, z_dim, cols, cfg.masks.clone())
                })
                .transpose()
        };
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
            decoder_logvar,
            transition,
            mask_z: mask("mask_z", if lagged { z_dim } else { 0 })?,
            mask_a: mask("mask_a", action_dim)?,
            init_prior,
            z_dim,
            x_dim,
            frames,
            action_dim,
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

    /// Posterior mean and variance of every frame, `[B·T, d_z]` each.
    pub fn posterior(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let rows = x.elem_count() / self.x_dim;
        let h = self.encoder.forward(&x.reshape((rows, self.x_dim))?)?;
        let mean = h.narrow(1, 0, self.z_dim)?;
        let var = (softplus(&h.narrow(1, self.z_dim, self.z_dim)?)? + 1e-4)?;
        Ok((mean, var))
    }

    pub fn decode(&self, z: &Tensor) -> Result<Tensor> {
        self.decoder.forward(z)
    }

    /// The masks of one pass, `[d_z, inputs]` (lagged latents first, then actions): one Gumbel sample per
    /// batch in training, the thresholded graph otherwise; all ones when the graph is frozen.
    fn mask(&self, rng: Option<&mut Rng>) -> Result<Option<Tensor>> {
        let masks: Vec<&GumbelMask> = [&self.mask_z, &self.mask_a].into_iter().flatten().collect();
        if masks.is_empty() {
            return Ok(None);
        }
        let mut parts = Vec::with_capacity(masks.len());
        let mut rng = rng;
        for m in masks {
            parts.push(if self.freeze_graph {
                m.logits().ones_like()?
            } else {
                match rng.as_deref_mut() {
                    Some(r) => m.sample(r)?,
                    None => m.deterministic()?,
                }
            });
        }
        Ok(Some(Tensor::cat(&parts, 1)?))
    }

    /// ELBO parts per sample. With `rng`, z is sampled and the masks are Gumbel samples (training);
    /// without, z is the posterior mean and the masks are the learned graph (evaluation).
    pub fn pass(&self, batch: &Batch, rng: Option<&mut Rng>) -> Result<Pass> {
        let x = &batch.x;
        let b = batch.size();
        let (t, dz) = (self.frames, self.z_dim);
        let (mean, var) = self.posterior(x)?;
        let mut rng = rng;
        let z = match rng.as_deref_mut() {
            Some(r) => (&mean + var.sqrt()?.mul(&r.normal(mean.dims(), mean.device())?)?)?,
            None => mean.clone(),
        };
        // Reconstruction of every frame, averaged over frames and dimensions.
        let xr = self.decoder.forward(&z)?.reshape((b, t * self.x_dim))?;
        let std = (self.decoder_logvar.affine(0.5, 0.0)?.exp()? + 1e-4)?;
        let resid = xr
            .sub(&x.reshape((b, t * self.x_dim))?)?
            .broadcast_div(&std)?;
        let recon = ((resid.sqr()?.affine(0.5, HALF_LOG_2PI)?.mean(D::Minus1)?)
            .broadcast_add(&std.log()?.squeeze(0)?))?;

        // KL of the last frame's posterior to the transition prior given the past.
        let mean3 = mean.reshape((b, t, dz))?;
        let var3 = var.reshape((b, t, dz))?;
        let (q_mean, q_var) = (mean3.i((.., t - 1, ..))?, var3.i((.., t - 1, ..))?);
        let mut parents = Vec::new();
        if t == 2 {
            parents.push(z.reshape((b, t, dz))?.i((.., 0, ..))?);
        }
        if self.action_dim > 0 {
            let a = batch.actions.as_ref().ok_or_else(|| {
                Error::Data(
                    "MechanismSparsity: the batch has no actions but the data spec says it does"
                        .into(),
                )
            })?;
            parents.push(a.clone());
        }
        let parents = Tensor::cat(&parents, 1)?.contiguous()?;
        let mask = self
            .mask(rng)?
            .ok_or_else(|| Error::msg("no parents to condition on"))?;
        let p_mean = self.transition.mean(&parents, &mask)?;
        let p_var = self.transition.var()?.unsqueeze(0)?;
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

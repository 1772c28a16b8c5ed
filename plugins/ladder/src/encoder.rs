//! The Ladder VAE's inference (Sønderby et al. 2016, §2.2): a deterministic bottom-up pass gives each layer an
//! estimate N(μ̂ᵢ, σ̂ᵢ²); then, from the top, z_L ~ N(μ̂_L, σ̂_L²) and for i = L−1 … 1 the top-down block gives
//! N(μ_{p,i}, σ²_{p,i}) from the draw of zᵢ₊₁, which is merged with the estimate by precision weighting before
//! zᵢ is drawn. The top-down blocks of inference are its own (`down{i}`), not the prior's.

use candle_core::{DType, Tensor};
use carve::components::{block_defaults, BlockSpec, BuildContext, Encoder, EncoderConfig};
use carve::dist::{precision_weighted_merge, DiagGaussian};
use carve::nn::{Activation, GaussianMlp, TrainMode};
use carve::rng::Rng;
use carve::Result;
use serde::{Deserialize, Serialize};

/// `{"Ladder": (hidden: [512, 256, 128, 64, 32])}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ladder {
    /// Width of each layer's blocks (bottom-up and top-down), bottom first: one per latent layer, or one for all.
    pub hidden: Vec<usize>,
    /// Hidden layers per block.
    #[serde(default = "block_defaults::depth")]
    pub depth: usize,
    #[serde(default = "block_defaults::activation")]
    pub activation: Activation,
    /// Batch norm on the blocks' hidden layers (never on their outputs).
    #[serde(default = "block_defaults::batch_norm")]
    pub batch_norm: bool,
    /// Floor added to every variance.
    #[serde(default = "block_defaults::lv_eps")]
    pub lv_eps: f64,
    /// Each bottom-up block reads the estimate μ̂ of the layer below instead of its hidden activations (the
    /// reference code's `only_mu_up`).
    #[serde(default)]
    pub only_mu_up: bool,
}

struct LadderModel {
    /// `up{i}`: the bottom-up estimate of layer i, bottom first.
    up: Vec<GaussianMlp>,
    /// `down{i}`: the top-down Gaussian of layer i from zᵢ₊₁, for the layers below the top, bottom first.
    down: Vec<GaussianMlp>,
    only_mu_up: bool,
    mode: TrainMode,
}

#[typetag::serde(name = "Ladder")]
impl EncoderConfig for Ladder {
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Encoder>> {
        let sizes = ctx.layers.sizes(ctx.latent_dim);
        let spec = BlockSpec {
            depth: self.depth,
            activation: self.activation,
            batch_norm: self.batch_norm,
            lv_eps: self.lv_eps,
        };
        let widths = spec.widths(&self.hidden, sizes.len(), "model.encoder.hidden")?;
        let mode = TrainMode::default();
        let mut up = Vec::with_capacity(sizes.len());
        let mut d_in = ctx.spec.obs_len();
        for (i, (&d, &width)) in sizes.iter().zip(&widths).enumerate() {
            up.push(spec.build(
                &ctx.params.pp(format!("up{}", i + 1)),
                d_in,
                width,
                d,
                &mode,
            )?);
            d_in = match (self.only_mu_up, self.depth) {
                (true, _) => d,
                // Without hidden layers a block's "hidden activations" are its input.
                (false, 0) => d_in,
                (false, _) => width,
            };
        }
        let down = (0..sizes.len() - 1)
            .map(|i| {
                let p = ctx.params.pp(format!("down{}", i + 1));
                spec.build(&p, sizes[i + 1], widths[i], sizes[i], &mode)
            })
            .collect::<Result<_>>()?;
        Ok(Box::new(LadderModel {
            up,
            down,
            only_mu_up: self.only_mu_up,
            mode,
        }))
    }
}
carve::register_component!(
    Encoder,
    "Ladder",
    "Ladder VAE inference: deterministic bottom-up estimates merged top-down with the layer above's Gaussian by precision weighting"
);

impl Encoder for LadderModel {
    fn encode(&self, x: &Tensor) -> Result<DiagGaussian> {
        Ok(self.sample(x, 1, None)?.0)
    }

    fn sample(
        &self,
        x: &Tensor,
        draws: usize,
        mut rng: Option<&mut Rng>,
    ) -> Result<(DiagGaussian, Tensor)> {
        // The bottom-up pass is deterministic: once per row, then repeated for the draws.
        let mut input = x.flatten_from(1)?;
        let mut estimates = Vec::with_capacity(self.up.len());
        for block in &self.up {
            let (q, hidden) = block.forward_with_hidden(&input)?;
            input = if self.only_mu_up {
                q.mean.clone()
            } else {
                hidden
            };
            estimates.push(q.repeat_rows(draws)?);
        }
        let top = estimates.len() - 1;
        let mut z = estimates[top].draw(rng.as_deref_mut())?;
        let (mut qs, mut zs) = (vec![estimates[top].clone()], vec![z.clone()]);
        for i in (0..top).rev() {
            let prior = self.down[i].forward(&z)?;
            let q = precision_weighted_merge(&[&estimates[i], &prior], DType::F32)?;
            z = q.draw(rng.as_deref_mut())?;
            qs.push(q);
            zs.push(z.clone());
        }
        qs.reverse();
        zs.reverse();
        Ok((DiagGaussian::concat(&qs)?, Tensor::cat(&zs, 1)?))
    }

    fn set_training(&self, training: bool) {
        self.mode.set(training);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use carve::components::{Independent, LatentLayers, MlpDecoder, TopDown};
    use carve::data::DataSpec;
    use carve::dist::Likelihood;
    use carve::method::{ElboMethod, ElboParts, Method, MethodContext};
    use carve::optim::AdamConfig;

    fn inv_softplus(v: f64) -> f32 {
        v.exp_m1().ln() as f32
    }

    fn set(m: &ElboMethod, name: &str, values: &[f32]) {
        let map = m.varmaps()[0].data().lock().unwrap();
        let var = map
            .get(name)
            .unwrap_or_else(|| panic!("no parameter {name}"));
        var.set(&Tensor::from_slice(values, var.dims(), &Device::Cpu).unwrap())
            .unwrap();
    }

    /// z₂ ~ N(0, 1), z₁ | z₂ ~ N(a z₂ + c, s₁²), x | z₁ ~ N(W z₁ + b, s₀² I). The exact posterior is the
    /// Ladder form: p(z₂ | x) from the bottom-up statistic m(x) = Wᵀ(x − b)/WᵀW (affine blocks, `only_mu_up`),
    /// then p(z₁ | z₂, x) = the precision-weighted merge of N(m(x), s₀²/WᵀW) with p(z₁ | z₂). Set so, every
    /// importance weight is log p(x) exactly, and the merge is what makes it so.
    #[test]
    fn the_merged_posterior_of_a_linear_gaussian_model_is_exact() {
        let (a, c, s1, s0) = (0.8f64, 0.3f64, 0.6f64, 0.5f64);
        let (w, b) = ([1.2f64, -0.7], [0.1f64, -0.2]);
        let spec = DataSpec {
            obs_shape: vec![2],
            ..Default::default()
        };
        let encoder = Ladder {
            hidden: vec![1, 1],
            depth: 0,
            activation: Activation::Relu,
            batch_norm: false,
            lv_eps: 0.0,
            only_mu_up: true,
        };
        let prior = TopDown {
            hidden: vec![1, 1],
            depth: 0,
            activation: Activation::Relu,
            batch_norm: false,
            lv_eps: 0.0,
        };
        let decoder = MlpDecoder {
            hidden: vec![],
            activation: Default::default(),
            likelihood: Likelihood::Gaussian { std: s0 },
            reduction: Default::default(),
            batch_norm: false,
        };
        let parts = ElboParts {
            latent_dim: 2,
            concepts: Default::default(),
            layers: LatentLayers::new(&[1, 1], 2, "model.latents").unwrap(),
            encoder: &encoder,
            causal: &Independent {},
            prior: &prior,
            decoder: &decoder,
            objectives: Vec::new(),
            sample_posterior: true,
        };
        let optimizer = AdamConfig::default();
        let ctx = MethodContext {
            spec: &spec,
            device: Device::Cpu,
            seed: 0,
            optimizer: &optimizer,
            label_stats: None,
        };
        let m = ElboMethod::new(&parts, &ctx).unwrap();
        let names: Vec<String> = m.varmaps()[0]
            .data()
            .lock()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert!(
            names.iter().any(|n| n == "encoder.down1.fc0.weight"),
            "{names:?}"
        );
        let prior_z1 = ([a as f32, 0.0], [c as f32, inv_softplus(s1 * s1)]);
        for block in ["prior.z1", "encoder.down1"] {
            set(&m, &format!("{block}.fc0.weight"), &prior_z1.0);
            set(&m, &format!("{block}.fc0.bias"), &prior_z1.1);
        }
        set(&m, "decoder.fc0.weight", &[w[0] as f32, w[1] as f32]);
        set(&m, "decoder.fc0.bias", &[b[0] as f32, b[1] as f32]);
        let wtw = w[0] * w[0] + w[1] * w[1];
        let v = s0 * s0 / wtw;
        let wb = w[0] * b[0] + w[1] * b[1];
        set(
            &m,
            "encoder.up1.fc0.weight",
            &[(w[0] / wtw) as f32, 0.0, (w[1] / wtw) as f32, 0.0],
        );
        set(
            &m,
            "encoder.up1.fc0.bias",
            &[(-wb / wtw) as f32, inv_softplus(v)],
        );
        // m(x) | z₂ ~ N(a z₂ + c, s₁² + v): p(z₂ | x) has precision 1 + a²/(s₁² + v).
        let p2 = 1.0 + a * a / (s1 * s1 + v);
        let k2 = a / ((s1 * s1 + v) * p2);
        set(&m, "encoder.up2.fc0.weight", &[k2 as f32, 0.0]);
        set(
            &m,
            "encoder.up2.fc0.bias",
            &[(-k2 * c) as f32, inv_softplus(1.0 / p2)],
        );

        let v1 = a * a + s1 * s1;
        let exact = |x: [f64; 2]| {
            let r = [x[0] - w[0] * c - b[0], x[1] - w[1] * c - b[1]];
            let cov = [
                [v1 * w[0] * w[0] + s0 * s0, v1 * w[0] * w[1]],
                [v1 * w[0] * w[1], v1 * w[1] * w[1] + s0 * s0],
            ];
            let det = cov[0][0] * cov[1][1] - cov[0][1] * cov[1][0];
            let q = (cov[1][1] * r[0] * r[0] - 2.0 * cov[0][1] * r[0] * r[1]
                + cov[0][0] * r[1] * r[1])
                / det;
            -0.5 * (q + det.ln() + 2.0 * (2.0 * std::f64::consts::PI).ln())
        };
        let xs = [[0.5, -1.0], [1.5, 0.2], [-0.4, 0.9]];
        let flat: Vec<f32> = xs.iter().flatten().map(|&v| v as f32).collect();
        let x = Tensor::from_slice(&flat, (3, 2), &Device::Cpu).unwrap();
        let lw = m
            .log_importance_weights(&x, 40, &mut Rng::new(1))
            .unwrap()
            .unwrap();
        let lw: Vec<Vec<f32>> = lw.to_vec2().unwrap();
        for (r, row) in lw.iter().enumerate() {
            let e = exact(xs[r]);
            let off = row
                .iter()
                .map(|w| (*w as f64 - e).abs())
                .fold(0.0, f64::max);
            assert!(
                off < 1e-4,
                "row {r}: weights off log p(x) = {e} by up to {off}"
            );
        }
    }
}

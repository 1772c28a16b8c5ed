//! Decoders p(x|z): an MLP producing the flattened observation, and a transposed-conv stack for images.

use super::encoders::{default_down_channels, default_fc};
use super::{BuildContext, Decoder, DecoderConfig};
use crate::dist::{learned_gaussian_nll, Likelihood, Reduction};
use crate::error::Result;
use crate::nn::{Activation, ConvUpStack, Linear, Mlp, TrainMode};
use candle_core::Tensor;
use serde::{Deserialize, Serialize};

/// MLP decoder: z → hidden layers → the flattened observation, reshaped to `obs_shape`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MlpDecoder {
    pub hidden: Vec<usize>,
    #[serde(default)]
    pub activation: Activation,
    /// `Bernoulli` (default), `Gaussian(std: ..)`, or `LearnedGaussian(init_logvar: ..)`, whose log-variance is
    /// the parameter `logvar` of this decoder.
    #[serde(default)]
    pub likelihood: Likelihood,
    /// −log p(x|z) summed over the observed values (`Sum`, default) or averaged over them (`Mean`).
    #[serde(default, skip_serializing_if = "is_sum")]
    pub reduction: Reduction,
    /// Batch norm after every hidden layer (not the output).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub batch_norm: bool,
}

fn is_sum(r: &Reduction) -> bool {
    *r == Reduction::Sum
}

struct MlpDecoderModel {
    mlp: Mlp,
    obs_shape: Vec<usize>,
    likelihood: Likelihood,
    /// The learned log-variance of a `LearnedGaussian` likelihood, `[1]`.
    logvar: Option<Tensor>,
    reduction: Reduction,
    mode: TrainMode,
}

#[typetag::serde(name = "Mlp")]
impl DecoderConfig for MlpDecoder {
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Decoder>> {
        let mode = TrainMode::default();
        let (d_in, d_out) = (ctx.latent_dim, ctx.spec.obs_len());
        let mlp = if self.batch_norm {
            Mlp::with_batch_norm(
                &ctx.params,
                d_in,
                &self.hidden,
                d_out,
                self.activation,
                &mode,
            )?
        } else {
            Mlp::new(&ctx.params, d_in, &self.hidden, d_out, self.activation)?
        };
        let logvar = self
            .likelihood
            .learned_logvar_init()
            .map(|s| ctx.params.get_with_values(&[1], "logvar", vec![s as f32]))
            .transpose()?;
        Ok(Box::new(MlpDecoderModel {
            mlp,
            obs_shape: ctx.spec.obs_shape.clone(),
            likelihood: self.likelihood.clone(),
            logvar,
            reduction: self.reduction,
            mode,
        }))
    }
}
crate::register_component!(
    Decoder,
    "Mlp",
    "MLP z → flattened observation (Bernoulli, Gaussian, or Gaussian with a learned variance)"
);

fn with_batch(b: usize, shape: &[usize]) -> Vec<usize> {
    let mut s = vec![b];
    s.extend_from_slice(shape);
    s
}

impl Decoder for MlpDecoderModel {
    fn decode(&self, z: &Tensor) -> Result<Tensor> {
        let out = self.mlp.forward(z)?;
        Ok(out.reshape(with_batch(z.dims()[0], &self.obs_shape))?)
    }
    fn nll(&self, x: &Tensor, params: &Tensor) -> Result<Tensor> {
        if let Some(logvar) = &self.logvar {
            return learned_gaussian_nll(x, params, logvar, self.reduction);
        }
        let n = x.elem_count() / x.dims().first().copied().unwrap_or(1).max(1);
        self.reduction.of_sum(self.likelihood.nll(x, params)?, n)
    }
    fn mean(&self, params: &Tensor) -> Result<Tensor> {
        self.likelihood.mean(params)
    }
    fn set_training(&self, training: bool) {
        self.mode.set(training);
    }
}

/// Conv decoder mirroring [`super::ConvEncoder`]: FC → FC → reshape → stride-2 transposed convs.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConvDecoder {
    /// Channels of the encoder it mirrors (`[32, 32, 64, 64]` → deconvs 64, 32, 32, C).
    #[serde(default = "default_down_channels")]
    pub channels: Vec<usize>,
    #[serde(default = "default_fc")]
    pub hidden: usize,
    #[serde(default)]
    pub activation: Activation,
    #[serde(default)]
    pub likelihood: Likelihood,
    /// Pixel-normalise every hidden layer (GAN generators; no batch statistics, so one image draws the same
    /// as in a batch).
    #[serde(default)]
    pub pixel_norm: bool,
}

struct ConvDecoderModel {
    fc1: Linear,
    fc2: Linear,
    deconvs: ConvUpStack,
    base: (usize, usize, usize),
    activation: Activation,
    likelihood: Likelihood,
    pixel_norm: bool,
}

#[typetag::serde(name = "Conv")]
impl DecoderConfig for ConvDecoder {
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Decoder>> {
        let shape = &ctx.spec.obs_shape;
        let n = self.channels.len();
        let f = 1usize << n;
        if shape.len() != 3 || !shape[1].is_multiple_of(f) || !shape[2].is_multiple_of(f) || n == 0
        {
            return Err(crate::Error::Shape {
                context: "Conv decoder output".into(),
                expected: format!("image [C, H, W] with H, W divisible by {f}"),
                got: format!("{shape:?}"),
            });
        }
        self.likelihood.check_fixed("Conv")?;
        let base = (self.channels[n - 1], shape[1] / f, shape[2] / f);
        // Deconv channels: the encoder's in reverse, ending at the image channels.
        let mut up: Vec<usize> = self.channels[..n - 1].iter().rev().copied().collect();
        up.push(shape[0]);
        let p = &ctx.params;
        Ok(Box::new(ConvDecoderModel {
            fc1: Linear::new(&p.pp("fc1"), ctx.latent_dim, self.hidden)?,
            fc2: Linear::new(&p.pp("fc2"), self.hidden, base.0 * base.1 * base.2)?,
            deconvs: ConvUpStack::new(&p.pp("deconvs"), base.0, &up, self.activation)?
                .with_pixel_norm(self.pixel_norm),
            base,
            activation: self.activation,
            likelihood: self.likelihood.clone(),
            pixel_norm: self.pixel_norm,
        }))
    }
}
crate::register_component!(
    Decoder,
    "Conv",
    "FC + stride-2 transposed conv stack → image (Bernoulli or Gaussian)",
    needs: [Images]
);

impl Decoder for ConvDecoderModel {
    fn decode(&self, z: &Tensor) -> Result<Tensor> {
        let norm = |h: Tensor| -> Result<Tensor> {
            if self.pixel_norm {
                crate::nn::pixel_norm(&h)
            } else {
                Ok(h)
            }
        };
        let h = norm(self.activation.apply(&self.fc1.forward(z)?)?)?;
        let h = norm(self.activation.apply(&self.fc2.forward(&h)?)?)?;
        let (c, hh, ww) = self.base;
        self.deconvs.forward(&h.reshape((z.dims()[0], c, hh, ww))?)
    }
    fn nll(&self, x: &Tensor, params: &Tensor) -> Result<Tensor> {
        self.likelihood.nll(x, params)
    }
    fn mean(&self, params: &Tensor) -> Result<Tensor> {
        self.likelihood.mean(params)
    }
}

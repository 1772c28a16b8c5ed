//! Gaussian encoders q(·|x) = N(μ(x), diag σ²(x)): an MLP on flattened input and a strided conv stack.

use super::{BuildContext, Encoder, EncoderConfig};
use crate::dist::DiagGaussian;
use crate::error::Result;
use crate::nn::{Activation, ConvDownStack, Linear, Mlp};
use candle_core::Tensor;
use serde::{Deserialize, Serialize};

/// Splits `[B, 2d]` into mean and log-variance.
fn gaussian_head(h: &Tensor, d: usize) -> Result<DiagGaussian> {
    DiagGaussian::new(h.narrow(1, 0, d)?, h.narrow(1, d, d)?)
}

/// MLP encoder: flatten → hidden layers → `2·latent_dim` (mean, log-variance).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MlpEncoder {
    pub hidden: Vec<usize>,
    #[serde(default)]
    pub activation: Activation,
}

struct MlpEncoderModel {
    mlp: Mlp,
    d: usize,
}

#[typetag::serde(name = "Mlp")]
impl EncoderConfig for MlpEncoder {
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Encoder>> {
        let d = ctx.latent_dim;
        let mlp = Mlp::new(
            &ctx.params,
            ctx.spec.obs_len(),
            &self.hidden,
            2 * d,
            self.activation,
        )?;
        Ok(Box::new(MlpEncoderModel { mlp, d }))
    }
}
crate::register_component!(
    Encoder,
    "Mlp",
    "MLP on the flattened observation → diagonal Gaussian"
);

impl Encoder for MlpEncoderModel {
    fn encode(&self, x: &Tensor) -> Result<DiagGaussian> {
        let h = self.mlp.forward(&x.flatten_from(1)?)?;
        gaussian_head(&h, self.d)
    }
}

/// Conv encoder: stride-2 convs (kernel 4) → flatten → hidden FC → `2·latent_dim`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConvEncoder {
    #[serde(default = "default_down_channels")]
    pub channels: Vec<usize>,
    #[serde(default = "default_fc")]
    pub hidden: usize,
    #[serde(default)]
    pub activation: Activation,
}

pub(crate) fn default_down_channels() -> Vec<usize> {
    vec![32, 32, 64, 64]
}

pub(crate) fn default_fc() -> usize {
    256
}

struct ConvEncoderModel {
    convs: ConvDownStack,
    fc: Linear,
    head: Linear,
    activation: Activation,
    d: usize,
}

#[typetag::serde(name = "Conv")]
impl EncoderConfig for ConvEncoder {
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Encoder>> {
        let shape = &ctx.spec.obs_shape;
        if shape.len() != 3 {
            return Err(crate::Error::Shape {
                context: "Conv encoder".into(),
                expected: "image observations [C, H, W]".into(),
                got: format!("{shape:?}"),
            });
        }
        let p = &ctx.params;
        let convs = ConvDownStack::new(&p.pp("convs"), shape[0], &self.channels, self.activation)?;
        let (h, w) = (convs.output_size(shape[1])?, convs.output_size(shape[2])?);
        let flat = self.channels.last().copied().unwrap_or(shape[0]) * h * w;
        Ok(Box::new(ConvEncoderModel {
            convs,
            fc: Linear::new(&p.pp("fc"), flat, self.hidden)?,
            head: Linear::new(&p.pp("head"), self.hidden, 2 * ctx.latent_dim)?,
            activation: self.activation,
            d: ctx.latent_dim,
        }))
    }
}
crate::register_component!(
    Encoder,
    "Conv",
    "stride-2 conv stack (kernel 4) + FC → diagonal Gaussian",
    needs: [Images]
);

impl Encoder for ConvEncoderModel {
    fn encode(&self, x: &Tensor) -> Result<DiagGaussian> {
        let h = self.convs.forward(x)?.flatten_from(1)?;
        let h = self.activation.apply(&self.fc.forward(&h)?)?;
        gaussian_head(&self.head.forward(&h)?, self.d)
    }
}

//! Gaussian encoders q(·|x) = N(μ(x), diag σ²(x)): an MLP on flattened input and a strided conv stack.

use super::{BuildContext, Encoder, EncoderConfig};
use crate::dist::{softplus, DiagGaussian};
use crate::error::Result;
use crate::nn::{Activation, ConvDownStack, Linear, Mlp};
use candle_core::Tensor;
use serde::{Deserialize, Serialize};

/// Splits `[B, 2d]` into mean and log-variance.
fn gaussian_head(h: &Tensor, d: usize) -> Result<DiagGaussian> {
    DiagGaussian::new(h.narrow(1, 0, d)?, h.narrow(1, d, d)?)
}

/// How a Gaussian encoder's second head becomes the posterior variance.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum PosteriorVariance {
    /// The head is log σ² (clamped to [−30, 20]).
    #[default]
    LogVar,
    /// σ² = softplus(ρ) + 1e-4 from the head ρ (the mechanism-sparsity code's parametrisation).
    Softplus,
}

impl PosteriorVariance {
    fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// The posterior from a head `[B, 2d]`: mean, then the variance's parameter.
    pub fn head(self, h: &Tensor, d: usize) -> Result<DiagGaussian> {
        match self {
            PosteriorVariance::LogVar => gaussian_head(h, d),
            PosteriorVariance::Softplus => {
                let var = (softplus(&h.narrow(1, d, d)?)? + 1e-4)?;
                DiagGaussian::from_var(h.narrow(1, 0, d)?, var)
            }
        }
    }
}

/// MLP encoder: flatten → hidden layers → `2·latent_dim` (mean, then log-variance or the `variance` head).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MlpEncoder {
    pub hidden: Vec<usize>,
    #[serde(default)]
    pub activation: Activation,
    /// `LogVar` (default) or `Softplus`.
    #[serde(default, skip_serializing_if = "PosteriorVariance::is_default")]
    pub variance: PosteriorVariance,
}

struct MlpEncoderModel {
    mlp: Mlp,
    d: usize,
    variance: PosteriorVariance,
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
        Ok(Box::new(MlpEncoderModel {
            mlp,
            d,
            variance: self.variance,
        }))
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
        self.variance.head(&h, self.d)
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

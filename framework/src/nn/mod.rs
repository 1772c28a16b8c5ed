//! Building blocks with parameters: a seeded, path-scoped parameter store, linear layers, MLP and conv stacks.

mod activation;
mod affine_op;
mod batch_norm;
mod channel_bias;
mod conv;
mod conv_kernels;
mod conv_ops;
mod gaussian_mlp;
mod gumbel_mask;
mod im2col;
mod linear;
mod mlp;
mod parallel_mlp;
mod params;
mod pixel_norm;
mod resample;
mod self_attention;
mod spectral_norm;
mod strided_gemm;

pub use activation::Activation;
pub use batch_norm::{BatchNorm, TrainMode};
pub use conv::{ConvDownStack, ConvUpStack};
pub use conv_ops::add_channel_bias;
pub use conv_ops::{conv2d, conv_transpose2d};
pub use gaussian_mlp::GaussianMlp;
pub use gumbel_mask::{GumbelMask, GumbelMaskConfig};
pub use linear::Linear;
pub use mlp::Mlp;
pub use parallel_mlp::ParallelMlp;
pub use params::{Init, Params};
pub use pixel_norm::pixel_norm;
pub use resample::{max_pool2d, upsample2x};
pub use self_attention::SelfAttention;
pub use spectral_norm::{SnConv2d, SnLinear, SpectralNorm};

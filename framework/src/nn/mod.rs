//! Building blocks with parameters: a seeded, path-scoped parameter store, linear layers, MLP and conv stacks.

mod activation;
mod conv;
mod conv_ops;
mod gumbel_mask;
mod linear;
mod mlp;
mod parallel_mlp;
mod params;
mod spectral_norm;

pub use activation::Activation;
pub use conv::{ConvDownStack, ConvUpStack};
pub use conv_ops::{conv2d, conv_transpose2d};
pub use gumbel_mask::{GumbelMask, GumbelMaskConfig};
pub use linear::Linear;
pub use mlp::Mlp;
pub use parallel_mlp::ParallelMlp;
pub use params::{Init, Params};
pub use spectral_norm::{SnConv2d, SnLinear, SpectralNorm};

//! Distributions shared by every method.

mod gaussian;
mod likelihood;

pub use gaussian::DiagGaussian;
pub use likelihood::Likelihood;

//! Distributions shared by every method.

mod gaussian;
mod likelihood;

pub use gaussian::{softplus, DiagGaussian};
pub use likelihood::{learned_gaussian_nll, Likelihood, Reduction};

//! Distributions shared by every method.

mod gaussian;
mod likelihood;
mod precision_merge;

pub use gaussian::{softplus, DiagGaussian};
pub use likelihood::{learned_gaussian_nll, Likelihood, Reduction};
pub use precision_merge::precision_weighted_merge;

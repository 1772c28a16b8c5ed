//! Ladder VAE (Sønderby et al., NeurIPS 2016): a hierarchical VAE whose inference runs a deterministic bottom-up
//! pass, then the generative direction top-down, merging each layer's bottom-up estimate with its top-down
//! prior by precision weighting.
//!
//! The framework holds the hierarchical pieces (latent layers, the `TopDown` prior, `BottomUp` inference, the
//! precision-weighted merge); this plugin adds the merged inference (`Ladder`) and the `LadderVae` method,
//! the ELBO with a linear KL warm-up over those parts. Swapping `Ladder` for `BottomUp` in the same config is
//! the paper's hierarchical VAE baseline.

mod encoder;
mod method;

pub use encoder::Ladder;
pub use method::LadderVae;

//! Joint discriminators D(x, z) for adversarial methods that match the encoder's pairs (x, E(x)) against the
//! generator's (G(z), z), as bidirectional GANs do.

use super::BuildContext;
use crate::error::Result;
use candle_core::Tensor;
use std::fmt::Debug;

pub trait Discriminator: Send {
    /// Logits D(x, z) `[B]` for observations `x` `[B, ..obs_shape]` and latents `z` `[B, latent_dim]`.
    /// `training`: update training-time state (e.g. the spectral norms' power iterations).
    fn forward(&self, x: &Tensor, z: &Tensor, training: bool) -> Result<Tensor>;
}

#[typetag::serde]
pub trait DiscriminatorConfig: Debug + Send + Sync {
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Discriminator>>;
    /// What this part needs; defaults to its registration's `needs`.
    fn needs(&self) -> Vec<super::Need> {
        super::declared(
            crate::registry::ComponentKind::Discriminator,
            self.typetag_name(),
        )
        .0
    }
}

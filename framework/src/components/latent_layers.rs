//! How the latent vector divides into the stochastic layers of a hierarchical model: z = [z₁, z₂, …, z_L], the
//! bottom layer z₁ first. The decoder reads z₁ (p(x | z₁)); each zᵢ has a prior conditioned on zᵢ₊₁ and the top
//! layer a N(0, I) prior. The method sets the layout once in the [`BuildContext`]; a flat model (the default)
//! is one layer of all latents.
//!
//! [`BuildContext`]: super::BuildContext

use crate::error::{Error, Result};
use candle_core::Tensor;

/// The sizes of the stochastic layers, bottom first; empty for a flat model (one layer of every latent).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LatentLayers {
    sizes: Vec<usize>,
}

impl LatentLayers {
    /// Layers of `sizes` latents, bottom first, which must add up to `latent_dim` (reported at `location`); no
    /// sizes (or one) make a flat model.
    pub fn new(sizes: &[usize], latent_dim: usize, location: &str) -> Result<Self> {
        if sizes.is_empty() {
            return Ok(Self::default());
        }
        let total: usize = sizes.iter().sum();
        if sizes.contains(&0) || total != latent_dim {
            return Err(Error::Config {
                location: location.into(),
                message: format!(
                    "latent layers {sizes:?} must be positive sizes adding up to latent_dim {latent_dim} (they add up to {total})"
                ),
            });
        }
        Ok(Self {
            sizes: if sizes.len() > 1 {
                sizes.to_vec()
            } else {
                Vec::new()
            },
        })
    }

    /// Whether the model has one layer only.
    pub fn is_flat(&self) -> bool {
        self.sizes.is_empty()
    }

    /// The layer sizes, bottom first (`[latent_dim]` for a flat model).
    pub fn sizes(&self, latent_dim: usize) -> Vec<usize> {
        if self.is_flat() {
            vec![latent_dim]
        } else {
            self.sizes.clone()
        }
    }

    /// Size of the bottom layer, the decoder's input.
    pub fn bottom(&self, latent_dim: usize) -> usize {
        self.sizes.first().copied().unwrap_or(latent_dim)
    }

    /// The bottom layer of latents `z` `[B, latent_dim]` (z itself for a flat model).
    pub fn bottom_of(&self, z: &Tensor) -> Result<Tensor> {
        match self.sizes.first() {
            Some(&n) => Ok(z.narrow(1, 0, n)?),
            None => Ok(z.clone()),
        }
    }

    /// `(offset, size)` of every layer along the latent axis, bottom first.
    pub fn ranges(&self, latent_dim: usize) -> Vec<(usize, usize)> {
        let mut offset = 0;
        self.sizes(latent_dim)
            .into_iter()
            .map(|n| {
                offset += n;
                (offset - n, n)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_must_cover_the_latents() {
        let l = LatentLayers::new(&[4, 2, 1], 7, "model.latents").unwrap();
        assert_eq!(l.ranges(7), vec![(0, 4), (4, 2), (6, 1)]);
        assert_eq!(l.bottom(7), 4);
        assert!(LatentLayers::new(&[5], 5, "x").unwrap().is_flat());
        for bad in [&[4, 2][..], &[7, 0], &[6]] {
            let e = LatentLayers::new(bad, 7, "model.latents")
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("model.latents") && e.contains("latent_dim 7"),
                "{e}"
            );
        }
        assert_eq!(LatentLayers::default().sizes(3), vec![3]);
        assert!(LatentLayers::new(&[], 3, "x").unwrap().is_flat());
    }
}

//! How the latent vector divides into concepts. The method sets the layout once in the [`BuildContext`]
//! (`Elbo { concepts: 4 }`, CausalVAE's blocks, DEAR's one latent per label), and every part that works per
//! concept reads it from there instead of deriving it from its own settings.
//!
//! [`BuildContext`]: super::BuildContext

use crate::error::{Error, Result};

/// `concepts` blocks of `block` latents each at the front of z, then `free` latents that belong to no
/// concept. The default has no concepts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConceptLayout {
    concepts: usize,
    block: usize,
    free: usize,
}

impl ConceptLayout {
    /// `n` equal blocks that cover all `latent_dim` latents.
    pub fn blocks(latent_dim: usize, n: usize) -> Result<Self> {
        if n == 0 || !latent_dim.is_multiple_of(n) {
            return Err(Error::Config {
                location: "model".into(),
                message: format!(
                    "{n} concepts need a latent_dim divisible by {n} (one equal block each), got {latent_dim}"
                ),
            });
        }
        Ok(Self {
            concepts: n,
            block: latent_dim / n,
            free: 0,
        })
    }

    /// One latent for each of `n` concepts, then `latent_dim − n` free latents.
    pub fn singles(latent_dim: usize, n: usize) -> Result<Self> {
        if n > latent_dim {
            return Err(Error::Config {
                location: "model.latent_dim".into(),
                message: format!("{n} concepts need at least {n} latents, got {latent_dim}"),
            });
        }
        Ok(Self {
            concepts: n,
            block: usize::from(n > 0),
            free: latent_dim - n,
        })
    }

    /// Number of concepts (0: the model has no concept layout).
    pub fn concepts(&self) -> usize {
        self.concepts
    }

    /// Latents per concept.
    pub fn block(&self) -> usize {
        self.block
    }

    /// Latents after the concepts' blocks that belong to no concept.
    pub fn free(&self) -> usize {
        self.free
    }

    /// The layout a part works with: the method's, or `own` equal blocks when the method sets none (a part's
    /// `concepts: 0` means "the method's"). An error names `who` when both are set and differ, or neither is.
    pub fn for_part(&self, who: &str, own: usize, latent_dim: usize) -> Result<Self> {
        match (self.concepts, own) {
            (0, 0) => Err(Error::Config {
                location: "model".into(),
                message: format!(
                    "{who} works per concept but the model has no concept layout: set `concepts` on the method \
                     (e.g. `Elbo(concepts: 4, ...)`) or on the part"
                ),
            }),
            (0, n) => Self::blocks(latent_dim, n),
            (_, 0) => Ok(*self),
            (n, own) if n == own => Ok(*self),
            (n, own) => Err(Error::Config {
                location: "model".into(),
                message: format!(
                    "{who} says `concepts: {own}` but the model's layout has {n} concepts: drop the part's \
                     `concepts` or make them agree"
                ),
            }),
        }
    }

    /// An error naming `who` unless every latent belongs to a concept.
    pub fn without_free(self, who: &str) -> Result<Self> {
        if self.free > 0 {
            return Err(Error::Config {
                location: "model".into(),
                message: format!(
                    "{who} reads concept blocks only, but the layout has {} latents outside the {} concepts: \
                     set latent_dim to a multiple of the concepts",
                    self.free, self.concepts
                ),
            });
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_cover_the_latents_and_singles_leave_the_rest_free() {
        let b = ConceptLayout::blocks(16, 4).unwrap();
        assert_eq!((b.concepts(), b.block(), b.free()), (4, 4, 0));
        let s = ConceptLayout::singles(6, 4).unwrap();
        assert_eq!((s.concepts(), s.block(), s.free()), (4, 1, 2));
        assert!(ConceptLayout::blocks(6, 4).is_err());
        assert!(ConceptLayout::singles(3, 4).is_err());
    }

    #[test]
    fn a_part_takes_the_methods_layout_or_its_own_and_they_must_agree() {
        let none = ConceptLayout::default();
        assert_eq!(none.for_part("p", 4, 8).unwrap().block(), 2);
        let e = none
            .for_part("PerConceptMlp", 0, 8)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("PerConceptMlp") && e.contains("no concept layout"),
            "{e}"
        );
        let four = ConceptLayout::blocks(8, 4).unwrap();
        assert_eq!(four.for_part("p", 0, 8).unwrap(), four);
        assert_eq!(four.for_part("p", 4, 8).unwrap(), four);
        let e = four.for_part("MaskKl", 2, 8).unwrap_err().to_string();
        assert!(
            e.contains("`concepts: 2`") && e.contains("4 concepts"),
            "{e}"
        );
        let e = ConceptLayout::singles(6, 4)
            .unwrap()
            .without_free("PerConceptMlp")
            .unwrap_err()
            .to_string();
        assert!(e.contains("2 latents outside"), "{e}");
    }
}

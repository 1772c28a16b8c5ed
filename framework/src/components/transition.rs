//! Latent transition priors p(z^t | parents): the prior of the last frame's latents given the previous frame's
//! latents z^{t−1} (sequence rows (x^{t−1}, x^t)) and/or the row's actions a, with a learned graph over which
//! parents each latent reads.
//!
//! `GumbelMasked` (docs/methods/sparsity.md): p(z^t | z^{t−1}, a) = Π_i N(z_i^t; μ_i(G^z_i ⊙ z^{t−1}, G^a_i ⊙ a),
//! σ_i²) with Gumbel-sigmoid edge masks G^z (`d_z × d_z`) and G^a (`d_z × d_a`), one network per latent with its
//! own weights (all evaluated as one batched matmul per layer), and learned per-latent variances
//! σ_i² = softplus(ℓ_i) + 1e-6.

use super::{declared, BuildContext, Feature, Need};
use crate::dist::softplus;
use crate::error::{Error, Result};
use crate::nn::{Activation, GumbelMask, GumbelMaskConfig, ParallelMlp};
use crate::registry::ComponentKind;
use crate::rng::Rng;
use candle_core::Tensor;
use serde::{Deserialize, Serialize};
use std::fmt::Debug;

/// The optimizer group the mask logits are tagged with, so a method can give them their own learning rate.
pub const MASK_GROUP: &str = "masks";

/// How a pass draws the masks.
pub enum MaskDraw<'a> {
    /// One Gumbel-sigmoid sample per batch, shared by every row (training).
    Sample(&'a mut Rng),
    /// The thresholded graph 1[σ(α) > 0.5] (evaluation).
    Graph,
    /// Every edge kept (a frozen graph: the unregularised baseline).
    AllOnes,
}

pub trait Transition: Send {
    /// The prior of z^t from its parents — `past` z^{t−1} `[B, d]` (sequence data) and `actions` `[B, d_a]`
    /// (data with actions), each given exactly when the part was built for it: means `[B, d]` and variances
    /// `[1, d]`.
    fn prior(
        &self,
        past: Option<&Tensor>,
        actions: Option<&Tensor>,
        draw: MaskDraw,
    ) -> Result<(Tensor, Tensor)>;
    /// The learned graphs, named as the data's latent graphs: `z` (G^z, z^{t−1} → z^t) and `a` (G^a, a → z).
    fn masks(&self) -> Vec<(&'static str, &GumbelMask)>;
}

#[typetag::serde]
pub trait TransitionConfig: Debug + Send + Sync {
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Transition>>;
    /// What this part needs; defaults to its registration's `needs`.
    fn needs(&self) -> Vec<Need> {
        declared(ComponentKind::Transition, self.typetag_name()).0
    }
    /// What this part provides; defaults to its registration's `provides`.
    fn provides(&self) -> Vec<Feature> {
        declared(ComponentKind::Transition, self.typetag_name()).1
    }
}

/// `{"GumbelMasked": (hidden: [64, 64], masks: (init_logit: 5.0))}`: per-latent LeakyReLU(0.2) networks on
/// Gumbel-masked parents.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GumbelMasked {
    /// Hidden widths of each latent's network; five layers of 512 in the mechanism-sparsity code.
    #[serde(default = "default_hidden")]
    pub hidden: Vec<usize>,
    #[serde(default)]
    pub masks: GumbelMaskConfig,
}

fn default_hidden() -> Vec<usize> {
    vec![512; 5]
}

impl Default for GumbelMasked {
    fn default() -> Self {
        Self {
            hidden: default_hidden(),
            masks: GumbelMaskConfig::default(),
        }
    }
}

/// softplus(ℓ) = 1e-4 at initialisation, as the code's `independent` variance mode.
const INIT_VAR: f64 = 1e-4;

struct GumbelMaskedModel {
    net: ParallelMlp,
    /// ℓ, `[n]`: the prior variance of latent i is softplus(ℓ_i) + 1e-6.
    raw_var: Tensor,
    /// G^z, present for sequence data.
    mask_z: Option<GumbelMask>,
    /// G^a, present for data with actions.
    mask_a: Option<GumbelMask>,
    n: usize,
    inputs: usize,
}

#[typetag::serde(name = "GumbelMasked")]
impl TransitionConfig for GumbelMasked {
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Transition>> {
        Ok(Box::new(self.model(ctx)?))
    }
}

impl GumbelMasked {
    fn model(&self, ctx: &BuildContext) -> Result<GumbelMaskedModel> {
        let spec = ctx.spec;
        let lagged = spec.sequence;
        if lagged && spec.frames() != 2 {
            return Err(Error::msg(format!(
                "the GumbelMasked transition models pairs (x^{{t−1}}, x^t) (one lag): sequences must have 2 frames, got {}",
                spec.frames()
            )));
        }
        let n = ctx.latent_dim;
        let action_dim = spec.action_dim;
        let inputs = if lagged { n } else { 0 } + action_dim;
        if inputs == 0 {
            return Err(Error::msg(
                "the GumbelMasked transition needs a past (sequence data) or actions to condition the latents on; this data has neither",
            ));
        }
        let p = &ctx.params;
        let net = ParallelMlp::new(
            &p.pp("net"),
            n,
            inputs,
            &self.hidden,
            1,
            Activation::LeakyRelu(0.2),
        )?;
        let init = (INIT_VAR.exp() - 1.0).ln() as f32;
        let raw_var = p.get_with_values(&[n], "raw_var", vec![init; n])?;
        let mask = |name: &str, cols: usize| -> Result<Option<GumbelMask>> {
            (cols > 0)
                .then(|| {
                    GumbelMask::new(
                        &p.in_group(MASK_GROUP).pp(name),
                        n,
                        cols,
                        self.masks.clone(),
                    )
                })
                .transpose()
        };
        Ok(GumbelMaskedModel {
            net,
            raw_var,
            mask_z: mask("mask_z", if lagged { n } else { 0 })?,
            mask_a: mask("mask_a", action_dim)?,
            n,
            inputs,
        })
    }
}
crate::register_component!(
    Transition,
    "GumbelMasked",
    "per-latent MLP transition prior on Gumbel-sigmoid-masked past latents and actions (mechanism sparsity)",
    needs: [SequenceOrActions],
    provides: [LearnedGraph]
);

impl GumbelMaskedModel {
    /// The masks of one pass, `[n, inputs]` (lagged latents first, then actions).
    fn mask(&self, draw: MaskDraw) -> Result<Tensor> {
        let mut draw = draw;
        let mut parts = Vec::with_capacity(2);
        for m in [&self.mask_z, &self.mask_a].into_iter().flatten() {
            parts.push(match &mut draw {
                MaskDraw::Sample(rng) => m.sample(rng)?,
                MaskDraw::Graph => m.deterministic()?,
                MaskDraw::AllOnes => m.logits().ones_like()?,
            });
        }
        Ok(Tensor::cat(&parts, 1)?)
    }

    /// Prior means `[B, n]` from parents `[B, inputs]` under the mask `[n, inputs]` (shared by the batch).
    /// Masked-out parents are replaced by the code's frozen dummy, zero, so masking is a product.
    fn mean(&self, parents: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let b = parents.dims()[0];
        let x = mask
            .unsqueeze(1)?
            .broadcast_mul(&parents.unsqueeze(0)?)?
            .contiguous()?;
        debug_assert_eq!(x.dims(), &[self.n, b, self.inputs]);
        Ok(self.net.forward(&x)?.squeeze(2)?.t()?)
    }

    /// Prior variances `[n]`.
    fn var(&self) -> Result<Tensor> {
        Ok((softplus(&self.raw_var)? + 1e-6)?)
    }
}

impl Transition for GumbelMaskedModel {
    fn prior(
        &self,
        past: Option<&Tensor>,
        actions: Option<&Tensor>,
        draw: MaskDraw,
    ) -> Result<(Tensor, Tensor)> {
        let mut parents = Vec::with_capacity(2);
        for (name, given, wanted) in [
            ("past latents", past, self.mask_z.is_some()),
            ("actions", actions, self.mask_a.is_some()),
        ] {
            match (given, wanted) {
                (Some(t), true) => parents.push(t.clone()),
                (None, false) => {}
                (Some(_), false) => {
                    return Err(Error::msg(format!(
                        "GumbelMasked transition: given {name}, but it was built for data without them"
                    )))
                }
                (None, true) => {
                    return Err(Error::msg(format!(
                        "GumbelMasked transition: the batch has no {name}, but the data spec says it does"
                    )))
                }
            }
        }
        let parents = Tensor::cat(&parents, 1)?.contiguous()?;
        let mask = self.mask(draw)?;
        Ok((self.mean(&parents, &mask)?, self.var()?.unsqueeze(0)?))
    }

    fn masks(&self) -> Vec<(&'static str, &GumbelMask)> {
        [("z", &self.mask_z), ("a", &self.mask_a)]
            .into_iter()
            .filter_map(|(name, m)| m.as_ref().map(|m| (name, m)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::DataSpec;
    use crate::nn::Params;
    use candle_core::Device;
    use candle_nn::VarMap;

    fn build(latents: usize, actions: usize, hidden: &[usize]) -> GumbelMaskedModel {
        let spec = DataSpec {
            obs_shape: vec![6],
            action_dim: actions,
            ..Default::default()
        };
        let cfg = GumbelMasked {
            hidden: hidden.to_vec(),
            ..Default::default()
        };
        cfg.model(&BuildContext {
            params: Params::new(VarMap::new(), Device::Cpu, 3).pp("transition"),
            spec: &spec,
            latent_dim: latents,
            concepts: Default::default(),
            layers: Default::default(),
        })
        .unwrap()
    }

    #[test]
    fn masked_parents_do_not_move_the_mean() {
        let t = build(3, 4, &[8, 8]);
        let mut mask = vec![1f32; 12];
        mask[4 + 2] = 0.0; // latent 1 ignores parent 2
        let mask = Tensor::from_vec(mask, (3, 4), &Device::Cpu).unwrap();
        let a = Tensor::new(&[[0.1f32, 0.2, 0.3, 0.4]], &Device::Cpu).unwrap();
        let b = Tensor::new(&[[0.1f32, 0.2, -5.0, 0.4]], &Device::Cpu).unwrap();
        let ma = t.mean(&a, &mask).unwrap().to_vec2::<f32>().unwrap();
        let mb = t.mean(&b, &mask).unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(
            ma[0][1], mb[0][1],
            "latent 1 must not read its masked parent"
        );
        assert_ne!(ma[0][0], mb[0][0]);
        assert_ne!(ma[0][2], mb[0][2]);
        let err = t.prior(Some(&a), Some(&a), MaskDraw::Graph).err().unwrap();
        assert!(err.to_string().contains("past latents"), "{err}");
    }

    #[test]
    fn prior_variance_starts_at_1e_4_and_the_graphs_are_named() {
        let t = build(2, 1, &[4]);
        let a = Tensor::new(&[[0.5f32]], &Device::Cpu).unwrap();
        let (_, var) = t.prior(None, Some(&a), MaskDraw::Graph).unwrap();
        for v in var.flatten_all().unwrap().to_vec1::<f32>().unwrap() {
            assert!((v - 1.01e-4).abs() < 1e-7, "{v}");
        }
        let names: Vec<_> = t.masks().iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["a"]);
        assert_eq!(t.masks()[0].1.shape(), (2, 1));
    }
}

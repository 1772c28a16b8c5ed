//! CausalVAE (Yang et al., CVPR 2021), following the computation of the official code (docs/methods/causalvae.md):
//! a linear SCM over concept blocks, a mask layer with per-concept nonlinear g_i and a label branch, a
//! label-conditioned prior, and per-concept decoders whose outputs are averaged (the framework's `PerConceptMlp`
//! decoder). Every part is a registered component, so other configs may reuse them (e.g. the mask layer with
//! another prior).

mod labels;
mod mask_layer;
mod method;
mod objectives;
mod prior;

pub use labels::LabelScale;
pub use mask_layer::{CausalVaeLayer, InitialGraph, MaskInput};
pub use method::{CausalVae, OfficialParts};
pub use objectives::{LabelReconstruction, MaskKl};
pub use prior::{ConceptWeights, LabelConditional};

carve::register_method!(
    "CausalVAE",
    "CausalVAE: linear SCM + mask layer, label-conditioned prior, DAG penalty (Yang et al. 2021)",
    include_str!("../../../configs/causalvae/pendulum.ron"),
    slots: [Encoder, CausalLayer, Prior, Decoder, Objective]
);

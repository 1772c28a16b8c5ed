//! The intervention every layer speaks: datasets simulate it, causal layers and methods apply it.

/// do(node = value) on a latent (causal-layer node index).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Do {
    pub node: usize,
    pub value: f32,
}

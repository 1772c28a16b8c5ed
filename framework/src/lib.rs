//! carve: a framework for causal representation learning.
//!
//! The framework defines the component traits ([`components`]), the plugin [`registry`], experiment
//! [`config`]s, [`data`]sets, the [`train`]ing loop with checkpoints, metrics and pictures. It names no method:
//! methods live in plugin crates that register their parts through `inventory` and `typetag`.

pub mod alloc_count;
pub mod bench;
pub mod compatibility;
pub mod components;
pub mod config;
mod cpu;
pub mod data;
pub mod dist;
pub mod error;
pub mod eval;
pub mod eval_context;
pub mod flops;
pub mod method;
pub mod metrics;
pub mod nn;
pub mod optim;
pub mod oracle;
pub mod registry;
pub mod report;
pub mod requirements;
pub mod rng;
pub mod runtime;
pub mod scm;
pub mod sweep;
pub mod train;
pub mod viz;

pub use error::{Error, Result};

/// Re-exports plugins need, so they depend on the same versions.
pub mod prelude {
    pub use crate::components::*;
    pub use crate::data::{Batch, DataSpec};
    pub use crate::error::{Error, Result};
    pub use crate::method::{Method, MethodConfig, StepReport};
    pub use crate::registry::{ComponentInfo, ComponentKind, MethodInfo};
    pub use candle_core::{DType, Device, Tensor, D};
    pub use candle_nn::VarBuilder;
    pub use inventory;
    pub use serde::{Deserialize, Serialize};
    pub use typetag;
    // The crates themselves, so a plugin needs no dependency but `carve`: derives take
    // `#[serde(crate = "carve::prelude::serde")]`; `#[typetag::serde]` finds `typetag` through this module.
    pub use candle_core;
    pub use candle_nn;
    pub use serde;
}

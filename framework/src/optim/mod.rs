//! Optimizers over candle [`Var`](candle_core::Var)s.
//!
//! [`AdamW`] is PyTorch's AdamW (Adam when `weight_decay` is 0). On the CPU, f32 parameters are
//! updated by one fused, in-place, multi-threaded pass per tensor over (param, grad, m, v); on
//! other devices (CUDA) a chain of candle tensor ops is used instead.

mod adamw;
mod constraint;
mod param_groups;

pub use adamw::{AdamBackend, AdamConfig, AdamW};
pub use constraint::{ConstraintConfig, ConstraintHandler, ConstraintState};
pub use param_groups::{GroupSpec, ParamGroups};

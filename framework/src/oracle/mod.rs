//! Ground-truth oracles for simulator data: a [`FactorRegressor`] that reads true factors off images, and the
//! intervention-accuracy evaluator built on it (registered as the `intervention` metric).

mod intervention;
mod regressor;

pub use intervention::{
    intervention_accuracy, regressor_for, Calibration, InterventionEvalConfig, SWEEP_CACHE_ENV,
};
pub use regressor::{cache_key, FactorRegressor, RegressorConfig};

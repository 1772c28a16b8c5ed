//! Checkpoints: parameters and optimizer state as safetensors, step and RNG state as JSON, all in one
//! directory that is replaced atomically (write `checkpoint.tmp/`, then rename), so a killed run keeps its last
//! complete checkpoint.

use crate::error::{Error, IoContext, Result};
use crate::method::Method;
use crate::rng::Rng;
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub const DIR: &str = "checkpoint";
const MODEL: &str = "model.safetensors";
const OPTIMIZER: &str = "optimizer.safetensors";
const STATE: &str = "state.json";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainState {
    /// Number of completed steps.
    pub step: usize,
    pub rng: Rng,
}

fn model_tensors(method: &dyn Method) -> Result<HashMap<String, Tensor>> {
    let mut out = HashMap::new();
    for vm in method.varmaps() {
        for (name, var) in vm.data().lock().expect("varmap lock").iter() {
            if out.insert(name.clone(), var.as_tensor().clone()).is_some() {
                return Err(Error::msg(format!(
                    "parameter `{name}` appears in two groups"
                )));
            }
        }
    }
    Ok(out)
}

/// Writes the checkpoint of `method` at `state` into `run_dir/checkpoint/` atomically.
pub fn save(run_dir: &Path, method: &dyn Method, state: &TrainState) -> Result<()> {
    let final_dir = run_dir.join(DIR);
    let tmp = run_dir.join(format!("{DIR}.tmp"));
    let old = run_dir.join(format!("{DIR}.old"));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).at(&tmp)?;
    }
    std::fs::create_dir_all(&tmp).at(&tmp)?;
    candle_core::safetensors::save(&model_tensors(method)?, tmp.join(MODEL))?;
    candle_core::safetensors::save(&method.optimizer_state()?, tmp.join(OPTIMIZER))?;
    let json = serde_json::to_string(state).map_err(|e| Error::msg(e.to_string()))?;
    std::fs::write(tmp.join(STATE), json).at(tmp.join(STATE))?;
    if final_dir.exists() {
        if old.exists() {
            std::fs::remove_dir_all(&old).at(&old)?;
        }
        std::fs::rename(&final_dir, &old).at(&final_dir)?;
    }
    std::fs::rename(&tmp, &final_dir).at(&tmp)?;
    if old.exists() {
        std::fs::remove_dir_all(&old).at(&old)?;
    }
    Ok(())
}

/// The newest complete checkpoint directory (falls back to `checkpoint.old` if a swap was interrupted).
pub fn find(run_dir: &Path) -> Option<PathBuf> {
    [DIR.to_string(), format!("{DIR}.old")]
        .iter()
        .map(|d| run_dir.join(d))
        .find(|d| d.join(STATE).exists())
}

/// Loads parameters (and the optimizer state, if `with_optimizer`) into `method`; returns the train state.
pub fn load(
    run_dir: &Path,
    method: &mut dyn Method,
    device: &Device,
    with_optimizer: bool,
) -> Result<TrainState> {
    let dir = find(run_dir).ok_or_else(|| {
        Error::Data(format!(
            "{}: no checkpoint found (expected {}/{STATE})",
            run_dir.display(),
            DIR
        ))
    })?;
    let saved = candle_core::safetensors::load(dir.join(MODEL), device)?;
    for vm in method.varmaps() {
        for (name, var) in vm.data().lock().expect("varmap lock").iter() {
            let t = saved.get(name).ok_or_else(|| {
                Error::Data(format!(
                    "checkpoint {} lacks parameter `{name}`",
                    dir.display()
                ))
            })?;
            if t.dims() != var.dims() {
                return Err(Error::Shape {
                    context: format!("checkpoint parameter `{name}`"),
                    expected: format!("{:?}", var.dims()),
                    got: format!("{:?}", t.dims()),
                });
            }
            var.set(t)?;
        }
    }
    if with_optimizer {
        let opt = candle_core::safetensors::load(dir.join(OPTIMIZER), device)?;
        method.load_optimizer_state(&opt)?;
    }
    let text = std::fs::read_to_string(dir.join(STATE)).at(dir.join(STATE))?;
    serde_json::from_str(&text)
        .map_err(|e| Error::Data(format!("{}: {e}", dir.join(STATE).display())))
}

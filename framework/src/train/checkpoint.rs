//! Checkpoints: parameters and optimizer state as safetensors, step, RNG and timing as JSON, and the SHA-256
//! of each of those files, all in one directory that is replaced atomically (write `checkpoint.tmp/`, then
//! rename), so a killed run keeps its last complete checkpoint. Nothing non-finite is ever written: the
//! parameters and optimizer state are checked first.

use crate::error::{Error, IoContext, Result};
use crate::method::Method;
use crate::rng::Rng;
use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

pub const DIR: &str = "checkpoint";
pub const MODEL: &str = "model.safetensors";
pub const OPTIMIZER: &str = "optimizer.safetensors";
pub const STATE: &str = "state.json";
/// `{file name: SHA-256 hex}` of the other files; written last, checked on load.
pub const HASHES: &str = "sha256.json";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainState {
    /// Number of completed steps.
    pub step: usize,
    pub rng: Rng,
    /// Seconds spent training up to this checkpoint, summed over every session of the run.
    #[serde(default)]
    pub train_seconds: f64,
    /// Samples trained on up to this checkpoint.
    #[serde(default)]
    pub samples: u64,
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

/// Ok when every value of every tensor is finite; otherwise [`Error::NonFiniteState`] naming the first bad
/// tensor (by name). One subtraction and one sum per tensor on its device: `t − t` is 0 where `t` is finite
/// and NaN elsewhere.
pub fn check_finite(group: &'static str, tensors: &HashMap<String, Tensor>) -> Result<()> {
    let mut names: Vec<&String> = tensors.keys().collect();
    names.sort();
    for name in names {
        let t = &tensors[name];
        if !t.dtype().is_float() {
            continue;
        }
        #[allow(clippy::eq_op)] // t − t is the probe itself
        let probe = (t - t)?
            .sum_all()?
            .to_dtype(DType::F32)?
            .to_scalar::<f32>()?;
        if probe != 0.0 {
            let values = t.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
            return Err(Error::NonFiniteState {
                group,
                name: name.clone(),
                count: values.iter().filter(|v| !v.is_finite()).count(),
                total: values.len(),
            });
        }
    }
    Ok(())
}

fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

fn serialize(tensors: &HashMap<String, Tensor>, path: &Path) -> Result<Vec<u8>> {
    safetensors::serialize(tensors, None)
        .map_err(|e| Error::Data(format!("{}: cannot serialize: {e}", path.display())))
}

/// Writes the checkpoint of `method` at `state` into `run_dir/checkpoint/` atomically. Fails with
/// [`Error::NonFiniteState`], before writing anything, when a parameter or optimizer state is not finite.
pub fn save(run_dir: &Path, method: &dyn Method, state: &TrainState) -> Result<()> {
    let params = model_tensors(method)?;
    check_finite("parameter", &params)?;
    let opt = method.optimizer_state()?;
    check_finite("optimizer state", &opt)?;

    let final_dir = run_dir.join(DIR);
    let tmp = run_dir.join(format!("{DIR}.tmp"));
    let old = run_dir.join(format!("{DIR}.old"));
    let files = [
        (MODEL, serialize(&params, &tmp.join(MODEL))?),
        (OPTIMIZER, serialize(&opt, &tmp.join(OPTIMIZER))?),
        (
            STATE,
            serde_json::to_vec(state).map_err(|e| Error::msg(e.to_string()))?,
        ),
    ];
    if let Err(e) = write_dir(&tmp, &files) {
        // Leave no half-written directory behind (it would hold space on a full disk).
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    fault::kill_point("tmp-written", state.step);
    if final_dir.exists() {
        if old.exists() {
            std::fs::remove_dir_all(&old).at(&old)?;
        }
        std::fs::rename(&final_dir, &old).at(&final_dir)?;
        fault::kill_point("mid-swap", state.step);
    }
    std::fs::rename(&tmp, &final_dir).at(&tmp)?;
    fault::kill_point("swapped", state.step);
    if old.exists() {
        std::fs::remove_dir_all(&old).at(&old)?;
    }
    Ok(())
}

/// `dir/` (emptied first) with `files` and their hashes in [`HASHES`], which is written last.
fn write_dir(dir: &Path, files: &[(&str, Vec<u8>)]) -> Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).at(dir)?;
    }
    std::fs::create_dir_all(dir).at(dir)?;
    let mut hashes = BTreeMap::new();
    for (name, bytes) in files {
        let path = dir.join(name);
        std::fs::write(&path, bytes).at(&path)?;
        hashes.insert(name.to_string(), sha256_hex(bytes));
    }
    let path = dir.join(HASHES);
    let json = serde_json::to_vec_pretty(&hashes).map_err(|e| Error::msg(e.to_string()))?;
    std::fs::write(&path, json).at(&path)
}

/// The newest complete checkpoint directory (falls back to `checkpoint.old` if a swap was interrupted).
pub fn find(run_dir: &Path) -> Option<PathBuf> {
    [DIR.to_string(), format!("{DIR}.old")]
        .iter()
        .map(|d| run_dir.join(d))
        .find(|d| d.join(STATE).exists())
}

/// Removes what an interrupted save left behind once the run's checkpoint has loaded: `checkpoint.tmp/`
/// (never read) and, when `checkpoint/` is complete, `checkpoint.old/`.
pub fn tidy(run_dir: &Path) -> Result<()> {
    let tmp = run_dir.join(format!("{DIR}.tmp"));
    let old = run_dir.join(format!("{DIR}.old"));
    let stale: &[&Path] = if run_dir.join(DIR).join(STATE).exists() {
        &[&tmp, &old]
    } else {
        &[&tmp]
    };
    for dir in stale {
        if dir.exists() {
            std::fs::remove_dir_all(dir).at(dir)?;
        }
    }
    Ok(())
}

/// Reads the files of one checkpoint directory, each checked against its recorded hash.
struct Verified {
    dir: PathBuf,
    hashes: Option<BTreeMap<String, String>>,
}

impl Verified {
    fn open(dir: PathBuf) -> Result<Self> {
        let path = dir.join(HASHES);
        let hashes = if path.exists() {
            let text = std::fs::read(&path).at(&path)?;
            Some(serde_json::from_slice(&text).map_err(|e| {
                Error::Data(format!(
                    "{}: not a valid hash list ({e}); the checkpoint is corrupt",
                    path.display()
                ))
            })?)
        } else {
            log::warn!(
                "{}: no {HASHES} (a checkpoint of an older carve); its files are not verified",
                dir.display()
            );
            None
        };
        Ok(Self { dir, hashes })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn read(&self, name: &str) -> Result<Vec<u8>> {
        let path = self.path(name);
        let bytes = std::fs::read(&path).at(&path)?;
        if let Some(hashes) = &self.hashes {
            let hashes_path = self.path(HASHES);
            let expected = hashes.get(name).ok_or_else(|| {
                Error::Data(format!(
                    "{}: no hash for {name}; the checkpoint is corrupt",
                    hashes_path.display()
                ))
            })?;
            if sha256_hex(&bytes) != *expected {
                return Err(Error::Data(format!(
                    "{}: contents do not match the SHA-256 recorded in {} (the file is truncated, corrupt or \
                     was edited)",
                    path.display(),
                    hashes_path.display()
                )));
            }
        }
        Ok(bytes)
    }

    fn tensors(&self, name: &str, device: &Device) -> Result<HashMap<String, Tensor>> {
        let bytes = self.read(name)?;
        candle_core::safetensors::load_buffer(&bytes, device).map_err(|e| {
            Error::Data(format!(
                "{}: not a readable safetensors file: {e}",
                self.path(name).display()
            ))
        })
    }
}

/// Loads parameters (and the optimizer state, if `with_optimizer`) into `method`; returns the train state.
/// Every file is checked against its hash; parameters must match the model's names and shapes and be finite.
pub fn load(
    run_dir: &Path,
    method: &mut dyn Method,
    device: &Device,
    with_optimizer: bool,
) -> Result<TrainState> {
    let dir = find(run_dir).ok_or_else(|| {
        Error::Data(format!(
            "{}: no checkpoint found (expected {})",
            run_dir.display(),
            run_dir.join(DIR).join(STATE).display()
        ))
    })?;
    let files = Verified::open(dir)?;
    let model_path = files.path(MODEL);
    let saved = files.tensors(MODEL, device)?;
    check_finite("parameter", &saved).map_err(|e| {
        Error::Data(format!(
            "{}: {e}; the run diverged before this checkpoint was written",
            model_path.display()
        ))
    })?;
    let mut expected = 0;
    for vm in method.varmaps() {
        let vars = vm.data().lock().expect("varmap lock");
        // In name order, so that a mismatch is reported the same way every time.
        let mut named: Vec<_> = vars.iter().collect();
        named.sort_by(|a, b| a.0.cmp(b.0));
        for (name, var) in named {
            expected += 1;
            let t = saved.get(name).ok_or_else(|| {
                Error::Data(format!(
                    "{} lacks parameter `{name}` of the model its config describes",
                    model_path.display()
                ))
            })?;
            if t.dims() != var.dims() {
                return Err(Error::Shape {
                    context: format!(
                        "parameter `{name}` of {} (was the run's config edited?)",
                        model_path.display()
                    ),
                    expected: format!("{:?} (from the config)", var.dims()),
                    got: format!("{:?}", t.dims()),
                });
            }
            var.set(t)?;
        }
    }
    if saved.len() != expected {
        return Err(Error::Data(format!(
            "{} has {} parameters, the model its config describes {expected} (was the run's config edited?)",
            model_path.display(),
            saved.len()
        )));
    }
    if with_optimizer {
        let opt = files.tensors(OPTIMIZER, device)?;
        method
            .load_optimizer_state(&opt)
            .map_err(|e| Error::Data(format!("{}: {e}", files.path(OPTIMIZER).display())))?;
    }
    let state = files.read(STATE)?;
    serde_json::from_slice(&state).map_err(|e| {
        Error::Data(format!(
            "{}: not a valid train state: {e}",
            files.path(STATE).display()
        ))
    })
}

/// Test hook for crash safety: `CARVE_FAULT_KILL_AT=<point>:<step>` makes the process kill itself with
/// SIGKILL when it reaches `point` at `step` (counted from 1). Points: `step` (after the step's update and
/// log line, before its checkpoint), `tmp-written` (the new checkpoint is complete in `checkpoint.tmp/`),
/// `mid-swap` (the old checkpoint has been renamed to `checkpoint.old/`, the new one not yet moved in),
/// `swapped` (the new checkpoint is in place, `checkpoint.old/` not yet removed).
pub mod fault {
    use std::sync::OnceLock;

    pub const ENV: &str = "CARVE_FAULT_KILL_AT";

    fn target() -> &'static Option<(String, usize)> {
        static TARGET: OnceLock<Option<(String, usize)>> = OnceLock::new();
        TARGET.get_or_init(|| {
            let spec = std::env::var(ENV).ok()?;
            let (point, step) = spec.rsplit_once(':')?;
            Some((point.to_string(), step.parse().ok()?))
        })
    }

    /// Kills the process if `point` at `step` is the one named in [`ENV`].
    pub fn kill_point(point: &str, step: usize) {
        if let Some((p, s)) = target() {
            if p == point && *s == step {
                kill_self();
            }
        }
    }

    #[cfg(unix)]
    fn kill_self() -> ! {
        // SAFETY: kill(2) on our own pid has no memory-safety preconditions.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
        loop {
            std::thread::park();
        }
    }

    #[cfg(not(unix))]
    fn kill_self() -> ! {
        std::process::abort()
    }
}

//! A parameter store scoped by path (`encoder.fc1.weight`), so checkpoints are self-describing.
//!
//! Unlike `candle_nn::VarBuilder`, initial values come from the run's seeded RNG on the host: the same config
//! and seed give the same parameters on any device.

use crate::error::{Error, Result};
use crate::rng::Rng;
use candle_core::{Device, Tensor, Var};
use candle_nn::VarMap;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// How a parameter starts.
#[derive(Clone, Copy, Debug)]
pub enum Init {
    Const(f32),
    Normal { std: f32 },
    Uniform { bound: f32 },
}

impl Init {
    /// PyTorch's default for Linear/Conv weights and biases: U(−1/√fan_in, 1/√fan_in).
    pub fn torch_default(fan_in: usize) -> Init {
        Init::Uniform {
            bound: 1.0 / (fan_in as f32).sqrt(),
        }
    }
}

/// The most parameters one store (one model, or one optimizer group of it) may hold: 2^29, i.e. 2 GiB of f32
/// weights and 8 GiB with their gradients and Adam's two moments. A config past it is refused while the model is
/// built, before the values are allocated.
pub const MAX_PARAMETERS: usize = 1 << 29;

struct Store {
    varmap: VarMap,
    device: Device,
    rng: Mutex<Rng>,
    /// Parameters created so far.
    count: Mutex<usize>,
    /// Optimizer group of each parameter created through an [`Params::in_group`] handle, by path.
    groups: Mutex<HashMap<String, String>>,
}

/// A handle on a parameter store at some path prefix. Cloning is cheap.
#[derive(Clone)]
pub struct Params {
    store: Arc<Store>,
    prefix: String,
    /// The optimizer group parameters created through this handle join.
    group: Option<Arc<str>>,
}

impl Params {
    pub fn new(varmap: VarMap, device: Device, seed: u64) -> Self {
        Self {
            store: Arc::new(Store {
                varmap,
                device,
                rng: Mutex::new(Rng::new(seed)),
                count: Mutex::new(0),
                groups: Mutex::new(HashMap::new()),
            }),
            prefix: String::new(),
            group: None,
        }
    }

    /// A handle one level down the path.
    pub fn pp(&self, name: impl std::fmt::Display) -> Params {
        Params {
            store: self.store.clone(),
            prefix: self.path(&name.to_string()),
            group: self.group.clone(),
        }
    }

    /// The same path, with every parameter created through the handle (and those below it) tagged as a member
    /// of the optimizer group `group` (see [`crate::optim::ParamGroups`]).
    pub fn in_group(&self, group: &str) -> Params {
        Params {
            group: Some(Arc::from(group)),
            ..self.clone()
        }
    }

    /// The group the parameter at `path` was tagged with when it was created, if any.
    pub fn group_of(&self, path: &str) -> Option<String> {
        let groups = self.store.groups.lock().expect("groups lock");
        groups.get(path).cloned()
    }

    fn path(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{}", self.prefix, name)
        }
    }

    pub fn device(&self) -> &Device {
        &self.store.device
    }

    pub fn varmap(&self) -> &VarMap {
        &self.store.varmap
    }

    /// Creates the parameter `name` with `shape`, or returns it if it exists with that shape.
    pub fn get(&self, shape: &[usize], name: &str, init: Init) -> Result<Tensor> {
        if let Init::Uniform { bound } = init {
            if !bound.is_finite() {
                return Err(Error::msg(format!(
                    "parameter `{}` {shape:?} would start in U(±{bound}): its layer has no inputs (check latent_dim and the layer sizes)",
                    self.path(name)
                )));
            }
        }
        self.get_or_create(shape, name, |n| {
            let mut rng = self.store.rng.lock().expect("rng lock");
            match init {
                Init::Const(c) => vec![c; n],
                Init::Normal { std } => rng.normal_vec(n).into_iter().map(|v| v * std).collect(),
                Init::Uniform { bound } => rng.uniform_vec(n, -bound, bound),
            }
        })
    }

    /// Like [`Params::get`], starting from explicit row-major `values`.
    pub fn get_with_values(&self, shape: &[usize], name: &str, values: Vec<f32>) -> Result<Tensor> {
        let n: usize = shape.iter().product();
        if values.len() != n {
            return Err(Error::Shape {
                context: format!("initial values of `{}`", self.path(name)),
                expected: format!("{n} values for {shape:?}"),
                got: values.len().to_string(),
            });
        }
        self.get_or_create(shape, name, |_| values)
    }

    /// Counts a new parameter of `shape` against [`MAX_PARAMETERS`]; its element count, or an error naming it
    /// when the model would grow past the bound.
    fn admit(&self, path: &str, shape: &[usize]) -> Result<usize> {
        let mut count = self.store.count.lock().expect("count lock");
        let total = shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .and_then(|n| n.checked_add(*count).map(|t| (n, t)));
        match total {
            Some((n, t)) if t <= MAX_PARAMETERS => {
                *count = t;
                Ok(n)
            }
            _ => Err(Error::msg(format!(
                "parameter `{path}` of shape {shape:?} takes the model past {MAX_PARAMETERS} parameters, the bound on a model's size (check latent_dim and the layer sizes)"
            ))),
        }
    }

    /// A state tensor that is saved with the parameters but not trained (no gradient ever reaches it, so
    /// optimizers skip it), e.g. spectral norm's power-iteration vector. Returned as a `Var` to be `set`.
    pub fn buffer(&self, shape: &[usize], name: &str, init: Init) -> Result<Var> {
        self.get(shape, name, init)?;
        let vars = self.store.varmap.data().lock().expect("varmap lock");
        Ok(vars[&self.path(name)].clone())
    }

    fn get_or_create(
        &self,
        shape: &[usize],
        name: &str,
        values: impl FnOnce(usize) -> Vec<f32>,
    ) -> Result<Tensor> {
        let path = self.path(name);
        let mut vars = self.store.varmap.data().lock().expect("varmap lock");
        if let Some(v) = vars.get(&path) {
            if v.dims() != shape {
                return Err(Error::Shape {
                    context: format!("parameter `{path}`"),
                    expected: format!("{shape:?}"),
                    got: format!("{:?}", v.dims()),
                });
            }
            return Ok(v.as_tensor().clone());
        }
        let n = self.admit(&path, shape)?;
        let var = Var::from_vec(values(n), shape, &self.store.device)?;
        let t = var.as_tensor().clone();
        if let Some(group) = &self.group {
            let mut groups = self.store.groups.lock().expect("groups lock");
            groups.insert(path.clone(), group.to_string());
        }
        vars.insert(path, var);
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> Params {
        Params::new(VarMap::new(), Device::Cpu, 0)
    }

    #[test]
    fn a_layer_without_inputs_is_an_error_naming_the_parameter() {
        let e = store()
            .pp("decoder")
            .get(&[4], "bias", Init::torch_default(0))
            .unwrap_err()
            .to_string();
        assert!(e.contains("decoder.bias") && e.contains("no inputs"), "{e}");
        // An empty parameter is fine (e.g. a graph over zero nodes).
        store().get(&[0, 0], "A", Init::Const(0.0)).unwrap();
    }

    #[test]
    fn the_budget_is_checked_before_allocating() {
        let p = store();
        p.get(&[4, 4], "small", Init::Const(0.0)).unwrap();
        let e = p
            .get(&[1 << 20, 1 << 20], "huge", Init::Const(0.0))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("huge") && e.contains(&MAX_PARAMETERS.to_string()),
            "{e}"
        );
        let e = p
            .get(&[usize::MAX, 2], "overflow", Init::Const(0.0))
            .unwrap_err()
            .to_string();
        assert!(e.contains("overflow"), "{e}");
        // A refused parameter takes nothing from the budget.
        p.get(&[8], "after", Init::Const(0.0)).unwrap();
    }
}

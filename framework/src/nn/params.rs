//! A parameter store scoped by path (`encoder.fc1.weight`), so checkpoints are self-describing.
//!
//! Unlike `candle_nn::VarBuilder`, initial values come from the run's seeded RNG on the host: the same config
//! and seed give the same parameters on any device.

use crate::error::{Error, Result};
use crate::rng::Rng;
use candle_core::{Device, Tensor, Var};
use candle_nn::VarMap;
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

struct Store {
    varmap: VarMap,
    device: Device,
    rng: Mutex<Rng>,
}

/// A handle on a parameter store at some path prefix. Cloning is cheap.
#[derive(Clone)]
pub struct Params {
    store: Arc<Store>,
    prefix: String,
}

impl Params {
    pub fn new(varmap: VarMap, device: Device, seed: u64) -> Self {
        Self {
            store: Arc::new(Store {
                varmap,
                device,
                rng: Mutex::new(Rng::new(seed)),
            }),
            prefix: String::new(),
        }
    }

    /// A handle one level down the path.
    pub fn pp(&self, name: impl std::fmt::Display) -> Params {
        Params {
            store: self.store.clone(),
            prefix: self.path(&name.to_string()),
        }
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
        let var = Var::from_vec(values(shape.iter().product()), shape, &self.store.device)?;
        let t = var.as_tensor().clone();
        vars.insert(path, var);
        Ok(t)
    }
}

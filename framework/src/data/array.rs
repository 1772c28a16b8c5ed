//! An in-memory dataset: observations as bytes (images) or floats, with optional factors, labels and simulator.

use super::Do;
use super::{DataSpec, Dataset, Split};
use crate::error::{Error, Result};

/// Observation storage; images stay bytes in memory (4x smaller) and become f32 in [0, 1] per batch.
pub enum Observations {
    U8(Vec<u8>),
    F32(Vec<f32>),
}

type Renderer = Box<dyn Fn(&[f32]) -> Result<Vec<f32>> + Send + Sync>;
type Simulator = fn(&[f32], &[Do]) -> Result<Vec<f32>>;

pub struct ArrayDataset {
    spec: DataSpec,
    obs: Observations,
    factors: Option<Vec<f32>>,
    labels: Option<Vec<f32>>,
    actions: Option<Vec<f32>>,
    all: Vec<usize>,
    train: Vec<usize>,
    test: Vec<usize>,
    file_names: Option<Vec<String>>,
    renderer: Option<Renderer>,
    simulator: Option<Simulator>,
}

impl ArrayDataset {
    /// Checks that every array has one row per observation.
    pub fn new(
        spec: DataSpec,
        obs: Observations,
        factors: Option<Vec<f32>>,
        labels: Option<Vec<f32>>,
        test_rows: Vec<usize>,
    ) -> Result<Self> {
        let d = spec.obs_len();
        let n_values = match &obs {
            Observations::U8(v) => v.len(),
            Observations::F32(v) => v.len(),
        };
        if d == 0 || n_values % d != 0 {
            return Err(Error::Shape {
                context: "dataset observations".into(),
                expected: format!("a multiple of {d} values ({:?} per row)", spec.obs_shape),
                got: format!("{n_values}"),
            });
        }
        let n = n_values / d;
        let check = |what: &str, v: &Option<Vec<f32>>, k: usize| -> Result<()> {
            match v {
                Some(v) if v.len() != n * k => Err(Error::Shape {
                    context: format!("dataset {what}"),
                    expected: format!("{n} rows × {k}"),
                    got: format!("{} values", v.len()),
                }),
                _ => Ok(()),
            }
        };
        check("factors", &factors, spec.factors_per_row())?;
        check("labels", &labels, spec.label_names.len())?;
        let mut is_test = vec![false; n];
        for &r in &test_rows {
            if r >= n {
                return Err(Error::Data(format!("test row {r} out of range (n = {n})")));
            }
            is_test[r] = true;
        }
        let train = (0..n).filter(|&r| !is_test[r]).collect();
        let test = (0..n).filter(|&r| is_test[r]).collect();
        Ok(Self {
            spec,
            obs,
            factors,
            labels,
            actions: None,
            all: (0..n).collect(),
            train,
            test,
            file_names: None,
            renderer: None,
            simulator: None,
        })
    }

    /// Attaches auxiliary variables, `action_dim` per row (see [`DataSpec::action_dim`]).
    pub fn with_actions(mut self, actions: Vec<f32>) -> Result<Self> {
        let (n, m) = (self.all.len(), self.spec.action_dim);
        if m == 0 || actions.len() != n * m {
            return Err(Error::Shape {
                context: "dataset actions".into(),
                expected: format!("{n} rows × {m} (spec.action_dim, > 0)"),
                got: format!("{} values", actions.len()),
            });
        }
        self.actions = Some(actions);
        Ok(self)
    }

    pub fn with_file_names(mut self, names: Vec<String>) -> Self {
        self.file_names = Some(names);
        self
    }

    /// Attaches the generator's SCM for [`Dataset::simulate_do`].
    pub fn with_simulator(mut self, simulate: Simulator) -> Self {
        self.simulator = Some(simulate);
        self
    }

    pub fn with_renderer(
        mut self,
        render: impl Fn(&[f32]) -> Result<Vec<f32>> + Send + Sync + 'static,
    ) -> Self {
        self.renderer = Some(Box::new(render));
        self
    }
}

fn gather<T: Copy>(src: &[T], rows: &[usize], k: usize) -> Vec<T> {
    let mut out = Vec::with_capacity(rows.len() * k);
    for &r in rows {
        out.extend_from_slice(&src[r * k..(r + 1) * k]);
    }
    out
}

impl Dataset for ArrayDataset {
    fn spec(&self) -> &DataSpec {
        &self.spec
    }

    fn len(&self) -> usize {
        self.all.len()
    }

    fn split(&self, split: Split) -> &[usize] {
        match split {
            Split::Train => &self.train,
            Split::Test => &self.test,
            Split::All => &self.all,
        }
    }

    fn fill_observations(&self, rows: &[usize], out: &mut Vec<f32>) {
        let d = self.spec.obs_len();
        out.reserve(rows.len() * d);
        for &r in rows {
            match &self.obs {
                Observations::U8(v) => out.extend(
                    v[r * d..(r + 1) * d]
                        .iter()
                        .map(|&b| b as f32 * (1.0 / 255.0)),
                ),
                Observations::F32(v) => out.extend_from_slice(&v[r * d..(r + 1) * d]),
            }
        }
    }

    fn factors(&self, rows: &[usize]) -> Option<Vec<f32>> {
        let k = self.spec.factors_per_row();
        self.factors.as_ref().map(|f| gather(f, rows, k))
    }

    fn labels(&self, rows: &[usize]) -> Option<Vec<f32>> {
        let k = self.spec.label_names.len();
        self.labels.as_ref().map(|l| gather(l, rows, k))
    }

    fn actions(&self, rows: &[usize]) -> Option<Vec<f32>> {
        let m = self.spec.action_dim;
        self.actions.as_ref().map(|a| gather(a, rows, m))
    }

    fn render(&self, factors: &[f32]) -> Result<Vec<f32>> {
        match &self.renderer {
            Some(r) => r(factors),
            None => Err(Error::Data(
                "this dataset has no simulator to render from factors".into(),
            )),
        }
    }

    fn simulate_do(&self, factors: &[f32], dos: &[Do]) -> Result<Vec<f32>> {
        match self.simulator {
            Some(f) => f(factors, dos),
            None => Err(Error::Data(
                "this dataset has no simulator to compute interventions".into(),
            )),
        }
    }

    fn can_simulate(&self) -> bool {
        self.simulator.is_some()
    }

    fn can_render(&self) -> bool {
        self.renderer.is_some()
    }

    fn file_name(&self, row: usize) -> String {
        match &self.file_names {
            Some(n) => n[row].clone(),
            None => format!("{row:06}.png"),
        }
    }
}

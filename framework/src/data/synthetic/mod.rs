//! The synthetic datasets of the mechanism-sparsity paper (Lachapelle et al., CLeaR 2022 / JMLR;
//! docs/methods/sparsity.md, "Synthetic benchmarks";
//! `data/synthetic.py` of `slachapelle/disentanglement_via_mechanism_sparsity`).
//!
//! Config (RON): `data: {"Synthetic": (dataset: action_sparsity_non_trivial, manifold: nn, z_dim: 10, x_dim: 20,
//! n_train: 50000, n_test: 10000)}`; every field has a default (see [`Synthetic`]).
//!
//! Generation follows the reference's structure, per split:
//! 1. a *generator* RNG seeded `mixing_seed` (265542) draws, in order, the linear mechanism's `A` (only the
//!    `*_no_suff_var` datasets), the mixing weights (see [`mixing`]) and, for action datasets, the actions
//!    `a ~ U(−2, 2)^{a_dim}`. It is re-created for every split, as in the reference, so all splits share the
//!    mixing and the first rows of the test split's actions equal those of the training split;
//! 2. a *sampling* RNG seeded 1 (train) / 3 (test) (the reference's valid split, seed 2, is not built) draws
//!    `z⁰ ~ N(0, I)` (temporal), the transition noise `N(0, transition_var)` and the observation noise;
//! 3. the latents are mapped through the mixing, each observed dimension is standardised over the split's frames
//!    (both frames of a temporal pair together), then `N(0, obs_noise_std²)` noise is added.
//!
//! The RNG is the crate's ChaCha ([`crate::rng::Rng`]), not numpy's PCG64, so the numbers are not the reference's
//! bit for bit (they cannot be: numpy's normal sampler and LAPACK's QR signs would have to be replicated too);
//! the distributions, graphs, mixing construction and draw order are the same.
//!
//! Rows: action datasets have one frame per row (`obs_shape [x_dim]`), the row's actions (`action_dim = a_dim`) and
//! the factors `z` (`z0 … z{d−1}`), with the true graph `G^a` (named `a`, latents × actions). Temporal datasets have
//! a pair per row (`sequence: true`, `obs_shape [2, x_dim]`: `x⁰` then `x¹`), factors `z⁰` then `z¹`, and the true
//! graph `G^z` (named `z`, latents × previous latents). There are no labels and no graph over the factors.
//! The training rows come first, then the test rows (`n_train..n_train + n_test`).

pub mod mechanisms;
pub mod mixing;

use super::array::Observations;
use super::{ArrayDataset, DataSpec, Dataset, DatasetConfig, LatentGraph};
use crate::error::{Error, Result};
use crate::rng::Rng;
use mechanisms::{Family, Form, Mechanism};
use mixing::{standardise_columns, Mixing};
use rand::Rng as _;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Which dataset of the reference (`--dataset` there, with the `_non_trivial` prefix folded into the name).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SyntheticDataset {
    /// `z_i = sin(a_i) + ε`, `G^a = I`.
    ActionSparsityTrivial,
    /// `z_i = Σ_j G^a_ij sin(r_i a_j + s_i) + ε`, `G^a_ij = 1` iff `j = i` or `j = i − 1 (mod z_dim)`.
    #[default]
    ActionSparsityNonTrivial,
    /// `z = A a + ε`, `A = N(0, 1) ⊙ G^a` (non-trivial graph): no sufficient variability.
    ActionSparsityNoSuffVar,
    /// The non-trivial formula with `G^a` block-diagonal in 2 × 2 blocks: no graphical criterion.
    ActionSparsityNoGraphCrit,
    /// `z¹ = z⁰ + ½ sin(z⁰) + ε`, `G^z = I`.
    TemporalSparsityTrivial,
    /// `z¹_i = z⁰_i + ½ Σ_j G^z_ij sin(r_i z⁰_j + s_i) + ε`, `G^z` lower-triangular with the diagonal.
    TemporalSparsityNonTrivial,
    /// `z¹ = z⁰ + ½ A z⁰ + ε`, `A = N(0, 1) ⊙ G^z` (non-trivial graph): no sufficient variability.
    TemporalSparsityNoSuffVar,
    /// The non-trivial formula with `G^z` block-diagonal in two `z_dim/2` blocks: no graphical criterion.
    TemporalSparsityNoGraphCrit,
}

impl SyntheticDataset {
    pub fn family(self) -> Family {
        use SyntheticDataset::*;
        match self {
            ActionSparsityTrivial
            | ActionSparsityNonTrivial
            | ActionSparsityNoSuffVar
            | ActionSparsityNoGraphCrit => Family::Action,
            _ => Family::Temporal,
        }
    }

    pub fn form(self) -> Form {
        use SyntheticDataset::*;
        match self {
            ActionSparsityTrivial | TemporalSparsityTrivial => Form::Trivial,
            ActionSparsityNonTrivial | TemporalSparsityNonTrivial => Form::NonTrivial,
            ActionSparsityNoSuffVar | TemporalSparsityNoSuffVar => Form::NoSuffVar,
            ActionSparsityNoGraphCrit | TemporalSparsityNoGraphCrit => Form::NoGraphCrit,
        }
    }
}

/// The mixing function `x = f(z)` (see [`mixing`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Manifold {
    /// Four orthogonalised layers with LeakyReLU(0.2), hidden width `x_dim` (injective for `z_dim ≤ x_dim`).
    #[default]
    Nn,
    /// `x = W z + b`.
    Linear,
}

/// Sampling seed of the training split (the reference's `seed=1`).
pub const TRAIN_SEED: u64 = 1;
/// Sampling seed of the test split (the reference's `seed=3`).
pub const TEST_SEED: u64 = 3;
/// Half-width of the uniform action distribution `U(−2, 2)`.
pub const ACTION_RANGE: f64 = 2.0;
/// The temporal step size: `z¹ = z⁰ + 0.5 g(z⁰)`.
pub const TEMPORAL_STEP: f64 = 0.5;
/// At most this many observed values (rows × frames × x_dim) are generated (16 GiB of f32).
pub const MAX_VALUES: usize = 1 << 32;

fn default_z_dim() -> usize {
    10
}
fn default_x_dim() -> usize {
    20
}
/// The reference draws 1e6 samples split 80/10/10 (train/valid/test); the defaults are a tenth of its split
/// sizes: 80,000 training and 10,000 test rows (no validation split).
fn default_n_train() -> usize {
    80_000
}
fn default_n_test() -> usize {
    10_000
}
fn default_obs_noise_std() -> f64 {
    0.01
}
fn default_transition_var() -> f64 {
    1e-4
}
fn default_mixing_seed() -> u64 {
    265_542
}

/// Config `{"Synthetic": (dataset: action_sparsity_non_trivial, manifold: nn, z_dim: 10, x_dim: 20)}`.
/// Deterministic: the data depend on these fields only (the run seed is unused, as the reference fixes its seeds).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Synthetic {
    /// Which mechanism and graph (default `action_sparsity_non_trivial`).
    #[serde(default)]
    pub dataset: SyntheticDataset,
    /// `nn` (default) or `linear`.
    #[serde(default)]
    pub manifold: Manifold,
    /// Number of latents (10).
    #[serde(default = "default_z_dim")]
    pub z_dim: usize,
    /// Observed dimension (20); at least `z_dim`, so that the mixing is injective.
    #[serde(default = "default_x_dim")]
    pub x_dim: usize,
    /// Number of actions of the action datasets; 0 (default) means `z_dim`, as in the reference. Temporal datasets
    /// have no actions.
    #[serde(default)]
    pub a_dim: usize,
    /// Training rows (80,000; the reference uses 1e6 samples split 80/10/10, i.e. 800,000).
    #[serde(default = "default_n_train")]
    pub n_train: usize,
    /// Test rows (10,000; the reference: 100,000).
    #[serde(default = "default_n_test")]
    pub n_test: usize,
    /// Standard deviation of the observation noise added after standardisation (0.01).
    #[serde(default = "default_obs_noise_std")]
    pub obs_noise_std: f64,
    /// Variance of the transition noise ε (1e-4).
    #[serde(default = "default_transition_var")]
    pub transition_var: f64,
    /// Seed of the generator RNG: mixing weights, `A`, actions (265542).
    #[serde(default = "default_mixing_seed")]
    pub mixing_seed: u64,
}

impl Default for Synthetic {
    fn default() -> Self {
        Self {
            dataset: SyntheticDataset::default(),
            manifold: Manifold::default(),
            z_dim: default_z_dim(),
            x_dim: default_x_dim(),
            a_dim: 0,
            n_train: default_n_train(),
            n_test: default_n_test(),
            obs_noise_std: default_obs_noise_std(),
            transition_var: default_transition_var(),
            mixing_seed: default_mixing_seed(),
        }
    }
}

/// One split, before it is joined to the others.
struct SplitData {
    /// `n × frames × x_dim`.
    x: Vec<f64>,
    /// `n × frames × z_dim`.
    z: Vec<f64>,
    /// `n × a_dim` (action datasets).
    a: Vec<f64>,
}

impl Synthetic {
    /// Number of actions per row: `a_dim` (0 → `z_dim`) for action datasets, 0 for temporal ones.
    pub fn action_dim(&self) -> usize {
        match self.dataset.family() {
            Family::Action if self.a_dim == 0 => self.z_dim,
            Family::Action => self.a_dim,
            Family::Temporal => 0,
        }
    }

    /// Frames per row: 1 (action) or 2 (temporal).
    pub fn frames(&self) -> usize {
        match self.dataset.family() {
            Family::Action => 1,
            Family::Temporal => 2,
        }
    }

    fn n_parents(&self) -> usize {
        match self.dataset.family() {
            Family::Action => self.action_dim(),
            Family::Temporal => self.z_dim,
        }
    }

    /// Checks the fields; every problem is an error naming the field.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Data(format!("Synthetic: {m}")));
        if self.z_dim == 0 {
            return bad("z_dim must be at least 1".into());
        }
        if self.x_dim < self.z_dim {
            return bad(format!(
                "x_dim ({}) must be at least z_dim ({}): the mixing is injective only when z_dim ≤ x_dim",
                self.x_dim, self.z_dim
            ));
        }
        if self.dataset.family() == Family::Temporal && self.a_dim != 0 {
            return bad(format!(
                "a_dim ({}) applies to the action datasets only; {:?} has no actions",
                self.a_dim, self.dataset
            ));
        }
        if self.n_train < 2 || self.n_test < 2 {
            return bad(format!(
                "n_train and n_test must be at least 2 (each split is standardised over its rows), got {} and {}",
                self.n_train, self.n_test
            ));
        }
        if !(self.obs_noise_std.is_finite() && self.obs_noise_std >= 0.0) {
            return bad(format!(
                "obs_noise_std must be finite and ≥ 0, got {}",
                self.obs_noise_std
            ));
        }
        if !(self.transition_var.is_finite() && self.transition_var >= 0.0) {
            return bad(format!(
                "transition_var must be finite and ≥ 0, got {}",
                self.transition_var
            ));
        }
        let values = (self.n_train.checked_add(self.n_test))
            .and_then(|n| n.checked_mul(self.frames()))
            .and_then(|n| n.checked_mul(self.x_dim.max(self.z_dim + self.action_dim())));
        match values {
            Some(v) if v <= MAX_VALUES => {}
            _ => {
                return bad(format!(
                    "{} + {} rows of {} × {} values are too many (at most {MAX_VALUES} values)",
                    self.n_train,
                    self.n_test,
                    self.frames(),
                    self.x_dim
                ))
            }
        }
        mechanisms::true_graph(
            self.dataset.family(),
            self.dataset.form(),
            self.z_dim,
            self.n_parents(),
        )?;
        Ok(())
    }

    /// The dataset spec: shapes, factor names, the true latent graph.
    pub fn spec(&self) -> Result<DataSpec> {
        self.validate()?;
        let family = self.dataset.family();
        let graph =
            mechanisms::true_graph(family, self.dataset.form(), self.z_dim, self.n_parents())?;
        let m = self.n_parents();
        let adj = graph.chunks(m).map(<[bool]>::to_vec).collect();
        let (obs_shape, name, cols_are_latents) = match family {
            Family::Action => (vec![self.x_dim], "a", false),
            Family::Temporal => (vec![2, self.x_dim], "z", true),
        };
        Ok(DataSpec {
            obs_shape,
            factor_names: (0..self.z_dim).map(|i| format!("z{i}")).collect(),
            label_names: Vec::new(),
            graph: None,
            sequence: family == Family::Temporal,
            action_dim: self.action_dim(),
            latent_graphs: vec![LatentGraph {
                name: name.into(),
                adj,
                cols_are_latents,
            }],
        })
    }

    /// The mechanism and mixing, drawn from a fresh generator RNG (as at the start of every split), and the
    /// generator positioned to draw the actions next.
    fn process(&self) -> Result<(Mechanism, Mixing, Rng)> {
        let mut gen = Rng::new(self.mixing_seed);
        let mech = Mechanism::new(
            self.dataset.family(),
            self.dataset.form(),
            self.z_dim,
            self.n_parents(),
            &mut gen,
        )?;
        let mixing = Mixing::sample(self.manifold, self.z_dim, self.x_dim, &mut gen);
        Ok((mech, mixing, gen))
    }

    /// One split of `n` rows with the sampling seed `seed`.
    fn generate_split(&self, n: usize, seed: u64) -> Result<SplitData> {
        let (mech, mixing, mut gen) = self.process()?;
        let mut rng = Rng::new(seed);
        let (k, sd) = (self.z_dim, self.transition_var.sqrt());
        let (z, a) = match mech.family {
            Family::Action => {
                let m = self.action_dim();
                let a: Vec<f64> = (0..n * m)
                    .map(|_| gen.inner().random_range(-ACTION_RANGE..ACTION_RANGE))
                    .collect();
                let mut z = normals(&mut rng, n * k);
                let mut mean = vec![0.0; k];
                for (zr, ar) in z.chunks_exact_mut(k).zip(a.chunks_exact(m)) {
                    mech.mean(ar, &mut mean);
                    for (v, mu) in zr.iter_mut().zip(&mean) {
                        *v = mu + sd * *v;
                    }
                }
                (z, a)
            }
            Family::Temporal => {
                let z0 = normals(&mut rng, n * k);
                let noise = normals(&mut rng, n * k);
                let mut z = vec![0.0; 2 * n * k];
                let mut mean = vec![0.0; k];
                for ((pair, z0r), er) in z
                    .chunks_exact_mut(2 * k)
                    .zip(z0.chunks_exact(k))
                    .zip(noise.chunks_exact(k))
                {
                    mech.mean(z0r, &mut mean);
                    let (first, second) = pair.split_at_mut(k);
                    first.copy_from_slice(z0r);
                    for ((v, mu), e) in second.iter_mut().zip(&mean).zip(er) {
                        *v = mu + sd * e;
                    }
                }
                (z, Vec::new())
            }
        };
        let mut x = mixing.apply(&z);
        standardise_columns(&mut x, self.x_dim);
        for v in x.iter_mut() {
            let e: f64 = StandardNormal.sample(rng.inner());
            *v += self.obs_noise_std * e;
        }
        Ok(SplitData { x, z, a })
    }

    /// Generates the training rows then the test rows.
    pub fn generate(&self) -> Result<ArrayDataset> {
        let spec = self.spec()?;
        // Generated in f64, kept in f32: observations, up to two frames of latents, actions.
        let floats = self
            .x_dim
            .saturating_add(self.z_dim.saturating_mul(2))
            .saturating_add(self.a_dim);
        crate::data::check_dataset_bytes(
            "Synthetic (n_train + n_test rows)",
            self.n_train.saturating_add(self.n_test),
            floats.saturating_mul(12),
        )?;
        let (train, test) = rayon::join(
            || self.generate_split(self.n_train, TRAIN_SEED),
            || self.generate_split(self.n_test, TEST_SEED),
        );
        let (train, test) = (train?, test?);
        let to_f32 = |a: Vec<f64>, b: Vec<f64>| -> Vec<f32> {
            a.into_iter().chain(b).map(|v| v as f32).collect()
        };
        let x = to_f32(train.x, test.x);
        let z = to_f32(train.z, test.z);
        let a = to_f32(train.a, test.a);
        let test_rows = (self.n_train..self.n_train + self.n_test).collect();
        let ds = ArrayDataset::new(spec, Observations::F32(x), Some(z), None, test_rows)?;
        if self.action_dim() > 0 {
            ds.with_actions(a)
        } else {
            Ok(ds)
        }
    }
}

fn normals(rng: &mut Rng, n: usize) -> Vec<f64> {
    (0..n).map(|_| StandardNormal.sample(rng.inner())).collect()
}

#[typetag::serde(name = "Synthetic")]
impl DatasetConfig for Synthetic {
    fn build(&self, _seed: u64) -> Result<Arc<dyn Dataset>> {
        Ok(Arc::new(self.generate()?))
    }
}
crate::register_component!(
    Dataset,
    "Synthetic",
    "mechanism-sparsity toy data: z → x by an injective MLP, sparse action (a → z) or temporal (z⁰ → z¹) graphs"
);

#[cfg(test)]
mod tests;

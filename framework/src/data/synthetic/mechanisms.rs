//! The latent mechanisms of the synthetic datasets (docs/methods/sparsity.md, "Synthetic benchmarks";
//! `data/synthetic.py` of the mechanism-sparsity
//! code): the true graphs and the conditional means of z given its parents.
//!
//! With `r_i = (i + 3)/π` and `s_i = i` (0-based latent index):
//! - action datasets (parents are the actions `a`): `z_i = g_i(a) + ε`;
//! - temporal datasets (parents are the previous latents `z⁰`): `z¹_i = z⁰_i + ½ g_i(z⁰) + ε`;
//!
//! with `g_i(u) = sin(u_i)` (trivial), `Σ_j G_ij sin(r_i u_j + s_i)` (non-trivial and no-graph-criterion), or
//! `Σ_j A_ij u_j`, `A = N(0, 1) ⊙ G` (no sufficient variability), and `ε ~ N(0, transition_var)`.

use crate::error::{Error, Result};
use crate::rng::Rng;
use rand_distr::{Distribution, StandardNormal};
use std::f64::consts::PI;

/// What the parents of the latents are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// One frame per row; `z` depends on the row's actions only (`G^a`, latents × actions).
    Action,
    /// Pairs of frames; `z¹` depends on `z⁰` (`G^z`, latents × latents).
    Temporal,
}

/// The form of the mechanism and its graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// `g_i(u) = sin(u_i)`, identity graph.
    Trivial,
    /// `g_i(u) = Σ_j G_ij sin(r_i u_j + s_i)`; `G^a` cyclic bidiagonal (`j = i` or `j = i − 1 mod d_z`), `G^z`
    /// lower-triangular with the diagonal.
    NonTrivial,
    /// Linear `g(u) = A u`, `A = N(0, 1) ⊙ G` with the non-trivial graph (violates sufficient variability).
    NoSuffVar,
    /// The non-trivial formula on a block-diagonal graph: 2 × 2 blocks for actions, two `d_z/2` blocks for time
    /// (violates the graphical criterion).
    NoGraphCrit,
}

/// The true graph, row-major `z_dim × n_parents`: `g[i·n_parents + j]` when parent `j` enters latent `i`.
/// Errors where the form does not fit the sizes (e.g. an odd `z_dim` for the block-diagonal graphs).
pub fn true_graph(family: Family, form: Form, z_dim: usize, n_parents: usize) -> Result<Vec<bool>> {
    let name = match family {
        Family::Action => "action",
        Family::Temporal => "temporal",
    };
    if z_dim == 0 || n_parents == 0 {
        return Err(Error::Data(format!(
            "Synthetic: {name} mechanisms need z_dim ≥ 1 and at least one parent, got z_dim = {z_dim}, \
             {n_parents} parents"
        )));
    }
    if family == Family::Temporal && n_parents != z_dim {
        return Err(Error::Data(format!(
            "Synthetic: temporal mechanisms take the {z_dim} previous latents as parents, got {n_parents}"
        )));
    }
    let needs_square = matches!(form, Form::Trivial | Form::NoGraphCrit);
    if needs_square && n_parents != z_dim {
        return Err(Error::Data(format!(
            "Synthetic: the {} {name} mechanism needs a_dim = z_dim (one action per latent), got a_dim = \
             {n_parents}, z_dim = {z_dim}",
            form_name(form)
        )));
    }
    if form == Form::NoGraphCrit && !z_dim.is_multiple_of(2) {
        return Err(Error::Data(format!(
            "Synthetic: the block-diagonal ({}) {name} graph needs an even z_dim, got {z_dim}",
            form_name(form)
        )));
    }
    let m = n_parents;
    let mut g = vec![false; z_dim * m];
    for i in 0..z_dim {
        for j in 0..m {
            g[i * m + j] = match (family, form) {
                (_, Form::Trivial) => i == j,
                (Family::Action, Form::NonTrivial | Form::NoSuffVar) => {
                    j == i || j == (i + z_dim - 1) % z_dim
                }
                (Family::Temporal, Form::NonTrivial | Form::NoSuffVar) => j <= i,
                (Family::Action, Form::NoGraphCrit) => i / 2 == j / 2,
                (Family::Temporal, Form::NoGraphCrit) => (i < z_dim / 2) == (j < z_dim / 2),
            };
        }
    }
    if let Some(i) = (0..z_dim).find(|&i| !g[i * m..(i + 1) * m].contains(&true)) {
        return Err(Error::Data(format!(
            "Synthetic: with a_dim = {m} latent z{i} has no parent in the {} {name} graph (its parents would be \
             actions {i} and {}); use a_dim ≥ z_dim − 1",
            form_name(form),
            (i + z_dim - 1) % z_dim
        )));
    }
    Ok(g)
}

fn form_name(form: Form) -> &'static str {
    match form {
        Form::Trivial => "trivial",
        Form::NonTrivial => "non-trivial",
        Form::NoSuffVar => "no-sufficient-variability",
        Form::NoGraphCrit => "no-graph-criterion",
    }
}

/// One dataset's mechanism: the graph and, for the linear form, the coefficients.
#[derive(Clone, Debug)]
pub struct Mechanism {
    pub family: Family,
    pub form: Form,
    pub z_dim: usize,
    /// Number of parents: `a_dim` (action) or `z_dim` (temporal).
    pub n_parents: usize,
    /// Row-major `z_dim × n_parents`.
    pub graph: Vec<bool>,
    /// `A = N(0, 1) ⊙ G`, row-major, for [`Form::NoSuffVar`] (empty otherwise).
    pub coefficients: Vec<f64>,
}

impl Mechanism {
    /// Builds the mechanism; the linear form draws `A` (`z_dim × n_parents` standard normals, row-major) from
    /// `gen`, the generator RNG, before anything else is drawn from it, as the reference code does.
    pub fn new(
        family: Family,
        form: Form,
        z_dim: usize,
        n_parents: usize,
        gen: &mut Rng,
    ) -> Result<Self> {
        let graph = true_graph(family, form, z_dim, n_parents)?;
        let coefficients = if form == Form::NoSuffVar {
            graph
                .iter()
                .map(|&e| {
                    let v: f64 = StandardNormal.sample(gen.inner());
                    if e {
                        v
                    } else {
                        0.0
                    }
                })
                .collect()
        } else {
            Vec::new()
        };
        Ok(Self {
            family,
            form,
            z_dim,
            n_parents,
            graph,
            coefficients,
        })
    }

    /// The graph as nested rows (`adj[i][j]`: parent `j` enters latent `i`).
    pub fn adjacency(&self) -> Vec<Vec<bool>> {
        self.graph
            .chunks(self.n_parents)
            .map(<[bool]>::to_vec)
            .collect()
    }

    /// `g(u)` of one row of parents `u` (length `n_parents`) into `out` (length `z_dim`).
    pub fn response(&self, u: &[f64], out: &mut [f64]) {
        let m = self.n_parents;
        match self.form {
            Form::Trivial => {
                for (o, &v) in out.iter_mut().zip(u) {
                    *o = v.sin();
                }
            }
            Form::NonTrivial | Form::NoGraphCrit => {
                for (i, o) in out.iter_mut().enumerate() {
                    let (r, s) = ((i + 3) as f64 / PI, i as f64);
                    let row = &self.graph[i * m..(i + 1) * m];
                    *o = row
                        .iter()
                        .zip(u)
                        .filter(|(&e, _)| e)
                        .map(|(_, &v)| (r * v + s).sin())
                        .sum();
                }
            }
            Form::NoSuffVar => {
                for (i, o) in out.iter_mut().enumerate() {
                    let row = &self.coefficients[i * m..(i + 1) * m];
                    *o = row.iter().zip(u).map(|(a, v)| a * v).sum();
                }
            }
        }
    }

    /// The conditional mean of the latents given one row of parents: `g(a)` for actions, `z⁰ + ½ g(z⁰)` in time.
    pub fn mean(&self, parents: &[f64], out: &mut [f64]) {
        self.response(parents, out);
        if self.family == Family::Temporal {
            for (o, &p) in out.iter_mut().zip(parents) {
                *o = p + 0.5 * *o;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edges(family: Family, form: Form, z: usize, m: usize) -> usize {
        true_graph(family, form, z, m)
            .unwrap()
            .iter()
            .filter(|&&e| e)
            .count()
    }

    #[test]
    fn graphs_have_the_reference_edge_counts() {
        assert_eq!(edges(Family::Action, Form::Trivial, 10, 10), 10);
        assert_eq!(edges(Family::Action, Form::NonTrivial, 10, 10), 20);
        assert_eq!(edges(Family::Action, Form::NoSuffVar, 10, 10), 20);
        assert_eq!(edges(Family::Action, Form::NoGraphCrit, 10, 10), 20);
        assert_eq!(edges(Family::Temporal, Form::Trivial, 10, 10), 10);
        assert_eq!(edges(Family::Temporal, Form::NonTrivial, 10, 10), 55);
        assert_eq!(edges(Family::Temporal, Form::NoGraphCrit, 10, 10), 50);
        // the reference's `concatenate([eye, eye[:, :1]], 1)[:, 1:] + eye`: G_ij = 1 iff j ∈ {i, i − 1 mod d}
        let g = true_graph(Family::Action, Form::NonTrivial, 4, 4).unwrap();
        let rows: Vec<Vec<bool>> = g.chunks(4).map(<[bool]>::to_vec).collect();
        assert_eq!(rows[0], [true, false, false, true]);
        assert_eq!(rows[2], [false, true, true, false]);
        let t = true_graph(Family::Temporal, Form::NonTrivial, 3, 3).unwrap();
        assert_eq!(t, [true, false, false, true, true, false, true, true, true]);
        let b = true_graph(Family::Temporal, Form::NoGraphCrit, 4, 4).unwrap();
        assert_eq!(
            &b[..8],
            [true, true, false, false, true, true, false, false]
        );
    }

    #[test]
    fn sizes_that_do_not_fit_are_errors() {
        for (family, form, z, m) in [
            (Family::Temporal, Form::NoGraphCrit, 5, 5),
            (Family::Action, Form::NoGraphCrit, 3, 3),
            (Family::Action, Form::Trivial, 4, 5),
            (Family::Action, Form::NonTrivial, 5, 2),
            (Family::Temporal, Form::Trivial, 0, 0),
            (Family::Temporal, Form::NonTrivial, 4, 3),
        ] {
            let e = true_graph(family, form, z, m).unwrap_err().to_string();
            assert!(e.contains("Synthetic"), "{e}");
        }
        // one action short of the cyclic graph still gives every latent a parent
        assert_eq!(edges(Family::Action, Form::NonTrivial, 5, 4), 8);
    }

    #[test]
    fn means_follow_the_formulas() {
        let mut gen = Rng::new(1);
        let u = [0.3, -1.2, 0.7];
        let mut out = [0.0; 3];
        let m = Mechanism::new(Family::Temporal, Form::NonTrivial, 3, 3, &mut gen).unwrap();
        m.mean(&u, &mut out);
        // z¹_2 = z⁰_2 + ½ Σ_{j ≤ 2} sin(5/π · u_j + 2)
        let r = 5.0 / PI;
        let want = 0.7 + 0.5 * u.iter().map(|&v| (r * v + 2.0).sin()).sum::<f64>();
        assert!((out[2] - want).abs() < 1e-12);
        let lin = Mechanism::new(Family::Action, Form::NoSuffVar, 3, 3, &mut gen).unwrap();
        for (a, &e) in lin.coefficients.iter().zip(&lin.graph) {
            assert_eq!(*a != 0.0, e);
        }
        lin.mean(&u, &mut out);
        let want: f64 = (0..3).map(|j| lin.coefficients[3 + j] * u[j]).sum();
        assert!((out[1] - want).abs() < 1e-12);
    }
}

//! `{"MechanismScm": (hidden: [32])}`: an SCM whose mechanisms are not additive in their parents. On the first
//! m latents (the nodes of the data's known graph) z_j = g_j(A_j ∘ z) + ε_j, where A_j ∘ z is the latent vector
//! with every entry but j's parents zeroed and the rest weighted by the learned edge weights A_pj, and g_j is a
//! small MLP of its own (CausalVAE's mask-layer mechanisms, with additive noise). Roots are z_j = ε_j; latents
//! past m pass through. Abduction is exact, ε_j = z_j − g_j(A_j ∘ z), so do() keeps each sample's noise.
//!
//! DEAR's `Scm` layer instead computes f2(Σ_p A_pj f2⁻¹(z_p) + ε_j): additive in (transformed) parents, a
//! class that cannot express a child like the shadow length, a product of functions of its two parents.

use super::{BuildContext, CausalLayer, CausalLayerConfig, CausalOutput, Do};
use crate::data::{Batch, CausalGraph};
use crate::error::{Error, Result};
use crate::nn::{Activation, ParallelMlp};
use crate::rng::Rng;
use candle_core::Tensor;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MechanismScm {
    /// Hidden widths of each mechanism g_j.
    #[serde(default = "default_hidden")]
    pub hidden: Vec<usize>,
    #[serde(default = "elu")]
    pub activation: Activation,
}

fn default_hidden() -> Vec<usize> {
    vec![32, 32]
}
fn elu() -> Activation {
    Activation::Elu
}

impl Default for MechanismScm {
    fn default() -> Self {
        Self {
            hidden: default_hidden(),
            activation: elu(),
        }
    }
}

#[typetag::serde(name = "MechanismScm")]
impl CausalLayerConfig for MechanismScm {
    /// `A` (initialised to the graph: every edge at weight 1; optimizer group `adjacency`), then the mechanisms
    /// under `g`.
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn CausalLayer>> {
        let graph = ctx.spec.graph.as_ref().ok_or_else(|| {
            Error::msg("the MechanismScm causal layer needs the data's known causal graph, and the data has none")
        })?;
        let m = graph.n();
        let k = ctx.latent_dim;
        if m > k {
            return Err(Error::Shape {
                context: "MechanismScm".into(),
                expected: format!("at most latent_dim = {k} causal nodes"),
                got: format!("a graph with {m} nodes"),
            });
        }
        let depth = longest_path(graph).ok_or_else(|| {
            Error::msg(format!(
                "MechanismScm: the known graph over {:?} has a cycle; an SCM needs a DAG",
                graph.nodes
            ))
        })?;
        let dev = ctx.device();
        let support = Tensor::from_vec(graph.to_dense(), (m, m), dev)?;
        let a_raw = ctx
            .params
            .in_group(super::scm_layer::ADJACENCY_GROUP)
            .get_with_values(&[m, m], "A", graph.to_dense())?;
        let g = ParallelMlp::new(&ctx.params.pp("g"), m, m, &self.hidden, 1, self.activation)?;
        let roots: Vec<f32> = (0..m)
            .map(|j| f32::from(graph.parents(j).next().is_none()))
            .collect();
        Ok(Box::new(MechanismScmModel {
            a_raw,
            support,
            g,
            roots: Tensor::from_vec(roots, (1, m), dev)?,
            graph: graph.clone(),
            depth,
            m,
            k,
        }))
    }
}
crate::register_component!(
    CausalLayer,
    "MechanismScm",
    "SCM with per-child MLP mechanisms z_j = g_j(A_j ∘ z) + ε_j on the known graph (non-additive), exact abduction",
    needs: [KnownGraph],
    provides: [LearnedGraph, Abduction]
);

/// The number of edges on the longest path of a DAG (`None` with a cycle).
fn longest_path(graph: &CausalGraph) -> Option<usize> {
    let order = graph.topological_order()?;
    let mut depth = vec![0usize; graph.n()];
    for &j in &order {
        for p in graph.parents(j) {
            depth[j] = depth[j].max(depth[p] + 1);
        }
    }
    Some(depth.into_iter().max().unwrap_or(0))
}

struct MechanismScmModel {
    /// Trainable; the weights in use are `a_raw ⊙ support`.
    a_raw: Tensor,
    /// `[m, m]` 0/1: the known graph (`[p][j]` = 1 for p → j).
    support: Tensor,
    /// One MLP per node: `[m, B, m]` masked parent vectors → `[m, B, 1]`.
    g: ParallelMlp,
    /// `[1, m]`: 1 for nodes without parents.
    roots: Tensor,
    graph: CausalGraph,
    /// The longest path: that many rounds of the mechanisms settle every node.
    depth: usize,
    m: usize,
    k: usize,
}

impl MechanismScmModel {
    fn adjacency(&self) -> Result<Tensor> {
        Ok((&self.a_raw * &self.support)?)
    }

    /// g_j(A_j ∘ z) for every node j, `[B, m]` from node latents `[B, m]`; zero for roots.
    fn mechanisms(&self, zc: &Tensor) -> Result<Tensor> {
        let a = self.adjacency()?;
        // Node j reads column j of A: inputs[j, b, p] = A[p][j] · z[b, p].
        let inputs = zc
            .unsqueeze(0)?
            .broadcast_mul(&a.t()?.unsqueeze(1)?)?
            .contiguous()?;
        let out = self.g.forward(&inputs)?.squeeze(2)?.t()?;
        Ok(out.broadcast_mul(&(1.0 - &self.roots)?)?)
    }

    /// Settles the nodes from noise `e` `[B, m]`, with the nodes in `fixed` (mask, values) held.
    fn settle(&self, e: &Tensor, fixed: Option<(&Tensor, &Tensor)>) -> Result<Tensor> {
        let hold = |z: Tensor| -> Result<Tensor> {
            Ok(match fixed {
                Some((hit, value)) => {
                    (z.broadcast_mul(&(1.0 - hit)?)?
                        + value.broadcast_mul(hit)?.broadcast_as(z.shape())?)?
                }
                None => z,
            })
        };
        let mut z = hold(e.clone())?;
        for _ in 0..self.depth {
            z = hold((self.mechanisms(&z)? + e)?)?;
        }
        Ok(z)
    }

    fn split(&self, x: &Tensor) -> Result<(Tensor, Option<Tensor>)> {
        match x.dims() {
            &[_, k] if k == self.k => {}
            d => {
                return Err(Error::Shape {
                    context: "MechanismScm input".into(),
                    expected: format!("[B, {}] (latent_dim)", self.k),
                    got: format!("{d:?}"),
                })
            }
        }
        let free = (self.k > self.m)
            .then(|| x.narrow(1, self.m, self.k - self.m))
            .transpose()?;
        Ok((x.narrow(1, 0, self.m)?, free))
    }

    fn join(nodes: Tensor, free: Option<Tensor>) -> Result<Tensor> {
        Ok(match free {
            Some(f) => Tensor::cat(&[nodes, f], 1)?,
            None => nodes,
        })
    }

    /// (hit, value, affected) rows `[1, m]` for `dos`.
    fn masks(&self, dos: &[Do], dev: &candle_core::Device) -> Result<(Tensor, Tensor, Tensor)> {
        let m = self.m;
        let (mut hit, mut value, mut affected) = (vec![0f32; m], vec![0f32; m], vec![0f32; m]);
        for d in dos {
            if d.node >= m {
                return Err(Error::Shape {
                    context: "MechanismScm intervention".into(),
                    expected: format!("a causal node index below {m}"),
                    got: d.node.to_string(),
                });
            }
            hit[d.node] = 1.0;
            value[d.node] = d.value;
            for (j, desc) in self.graph.descendants(d.node).into_iter().enumerate() {
                if desc || j == d.node {
                    affected[j] = 1.0;
                }
            }
        }
        let row = |v: Vec<f32>| Tensor::from_vec(v, (1, m), dev);
        Ok((row(hit)?, row(value)?, row(affected)?))
    }
}

impl CausalLayer for MechanismScmModel {
    fn forward(
        &self,
        eps: &Tensor,
        _batch: &Batch,
        _rng: Option<&mut Rng>,
    ) -> Result<CausalOutput> {
        let (e, free) = self.split(eps)?;
        Ok(CausalOutput::latents(Self::join(
            self.settle(&e, None)?,
            free,
        )?))
    }

    fn graph(&self) -> Result<Option<Tensor>> {
        Ok(Some(self.adjacency()?))
    }

    /// ε_j = z_j − g_j(A_j ∘ z): exact, one pass.
    fn abduct(&self, z: &Tensor) -> Result<Tensor> {
        let (zc, free) = self.split(z)?;
        Self::join((&zc - self.mechanisms(&zc)?)?, free)
    }

    fn intervene(&self, eps: &Tensor, dos: &[Do]) -> Result<Tensor> {
        let (e, free) = self.split(eps)?;
        let (hit, value, _) = self.masks(dos, eps.device())?;
        Self::join(self.settle(&e, Some((&hit, &value)))?, free)
    }

    /// Non-descendants of the intervened nodes keep their values exactly.
    fn intervene_latents(&self, z: &Tensor, dos: &[Do]) -> Result<Tensor> {
        if dos.is_empty() {
            return Ok(z.clone());
        }
        let (zc, free) = self.split(z)?;
        let e = (&zc - self.mechanisms(&zc)?)?;
        let (hit, value, affected) = self.masks(dos, z.device())?;
        let settled = self.settle(&e, Some((&hit, &value)))?;
        let kept = (settled.broadcast_mul(&affected)? + zc.broadcast_mul(&(1.0 - &affected)?)?)?;
        Self::join(kept, free)
    }

    fn node_values(&self, z: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(z.narrow(1, 0, self.m)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::DataSpec;
    use crate::nn::Params;
    use candle_core::Device;

    fn layer(k: usize) -> Box<dyn CausalLayer> {
        // a → c ← b, c → d.
        let names: Vec<String> = ["a", "b", "c", "d"].map(String::from).to_vec();
        let spec = DataSpec {
            obs_shape: vec![4],
            label_names: names.clone(),
            graph: Some(CausalGraph::from_edges(names, &[(0, 2), (1, 2), (2, 3)])),
            ..Default::default()
        };
        let ctx = BuildContext {
            params: Params::new(candle_nn::VarMap::new(), Device::Cpu, 7),
            spec: &spec,
            latent_dim: k,
            concepts: Default::default(),
            layers: Default::default(),
        };
        MechanismScm::default().build(&ctx).unwrap()
    }

    fn rows(t: &Tensor) -> Vec<Vec<f32>> {
        t.to_vec2().unwrap()
    }

    fn batch(x: &Tensor) -> Batch {
        Batch {
            x: x.clone(),
            labels: None,
            factors: None,
            actions: None,
        }
    }

    #[test]
    fn abduction_inverts_the_forward_pass_exactly_enough_and_roots_are_their_noise() {
        let l = layer(5);
        let eps = Tensor::new(
            &[[0.3f32, -0.7, 0.2, 1.1, 2.0], [-1.0, 0.5, -0.4, 0.0, -2.0]],
            &Device::Cpu,
        )
        .unwrap();
        let z = l.forward(&eps, &batch(&eps), None).unwrap().z;
        let zr = rows(&z);
        assert_eq!((zr[0][0], zr[0][1], zr[0][4]), (0.3, -0.7, 2.0));
        let back = rows(&l.abduct(&z).unwrap());
        for (b, e) in back.iter().flatten().zip(rows(&eps).iter().flatten()) {
            assert!((b - e).abs() < 1e-5, "{back:?}");
        }
    }

    #[test]
    fn do_changes_descendants_only_and_keeps_the_noise() {
        let l = layer(4);
        let eps = Tensor::new(&[[0.3f32, -0.7, 0.2, 1.1]], &Device::Cpu).unwrap();
        let z = l.forward(&eps, &batch(&eps), None).unwrap().z;
        // do(c = 2): a and b keep their values exactly, c is 2, d follows c through its mechanism.
        let dos = [Do {
            node: 2,
            value: 2.0,
        }];
        let z_do = rows(&l.intervene_latents(&z, &dos).unwrap())[0].clone();
        let zr = rows(&z)[0].clone();
        assert_eq!((z_do[0], z_do[1], z_do[2]), (zr[0], zr[1], 2.0));
        // d's noise is kept: z_do[3] − g_d(A ∘ z_do) = ε_d.
        let e_back = rows(
            &l.abduct(&Tensor::from_slice(&z_do, (1, 4), &Device::Cpu).unwrap())
                .unwrap(),
        )[0]
        .clone();
        assert!((e_back[3] - 1.1).abs() < 1e-5, "{e_back:?}");
        // From ε, the same counterfactual.
        let from_eps = rows(&l.intervene(&eps, &dos).unwrap())[0].clone();
        for (a, b) in from_eps.iter().zip(&z_do) {
            assert!((a - b).abs() < 1e-5, "{from_eps:?} vs {z_do:?}");
        }
    }

    #[test]
    fn the_mechanisms_are_not_additive_in_their_parents() {
        // g_c(a, b) − g_c(a, 0) − g_c(0, b) + g_c(0, 0) ≠ 0 for a generic MLP: an interaction term.
        let l = layer(4);
        let z = |a: f32, b: f32| {
            let eps = Tensor::new(&[[a, b, 0.0, 0.0]], &Device::Cpu).unwrap();
            rows(&l.forward(&eps, &batch(&eps), None).unwrap().z)[0][2]
        };
        let interaction = z(1.5, 1.5) - z(1.5, 0.0) - z(0.0, 1.5) + z(0.0, 0.0);
        assert!(interaction.abs() > 1e-4, "{interaction}");
    }
}

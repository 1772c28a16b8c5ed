//! DEAR's SCM prior (docs/methods/dear.md) over k latents of which the first m are causal nodes:
//! ε ~ N(0, I_k); z_{1:m} = f2((I − Aᵀ)⁻¹ ε_{1:m}); z_{m+1:k} = ε_{m+1:k}. The adjacency A is learned on the
//! support of a known graph; f2 is an elementwise [`Bijection`].

use super::bijection::{Bijection, BijectionConfig};
use super::LinearScm;
use crate::data::CausalGraph;
use crate::data::Do;
use crate::error::{Error, Result};
use crate::nn::{Init, Params};
use crate::rng::Rng;
use candle_core::{Device, Tensor};

/// DEAR's prior F_β. Parameters: `A` (`[m, m]`, `A[p][j] ≠ 0` means p → j, initialised to 0) and f2's.
#[derive(Clone, Debug)]
pub struct ScmPrior {
    k: usize,
    graph: CausalGraph,
    /// Trainable, unmasked. The adjacency in use is `a_raw ⊙ support` (see [`ScmPrior::adjacency`]).
    a_raw: Tensor,
    /// `[m, m]` 0/1: the known graph.
    support: Tensor,
    f2: Bijection,
}

impl ScmPrior {
    /// A prior over `k` latents whose first `graph.n()` are the graph's nodes; `A` is created as `params.A` and
    /// f2's parameters under `params.f2`.
    pub fn new(
        params: &Params,
        k: usize,
        graph: &CausalGraph,
        f2: &BijectionConfig,
    ) -> Result<Self> {
        Self::with_param_groups(params, &params.pp("f2"), k, graph, f2)
    }

    /// Like [`ScmPrior::new`] with `A` under `adjacency` and f2 under `f2_params`, which may belong to
    /// different stores: DEAR trains A with its own optimizer and learning rate (§5.4).
    pub fn with_param_groups(
        adjacency: &Params,
        f2_params: &Params,
        k: usize,
        graph: &CausalGraph,
        f2: &BijectionConfig,
    ) -> Result<Self> {
        let m = graph.n();
        if graph.adj.len() != m || graph.adj.iter().any(|r| r.len() != m) {
            return Err(Error::Shape {
                context: "SCM prior graph".into(),
                expected: format!("a {m}×{m} adjacency for {m} nodes"),
                got: format!(
                    "rows of lengths {:?}",
                    graph.adj.iter().map(Vec::len).collect::<Vec<_>>()
                ),
            });
        }
        if m > k {
            return Err(Error::Shape {
                context: "SCM prior".into(),
                expected: format!("at most latent_dim = {k} causal nodes"),
                got: format!("a graph with {m} nodes"),
            });
        }
        if graph.topological_order().is_none() {
            return Err(Error::msg(format!(
                "SCM prior: the known graph over {:?} has a cycle; DEAR's SCM needs a DAG",
                graph.nodes
            )));
        }
        let support = Tensor::from_vec(graph.to_dense(), (m, m), adjacency.device())?;
        Ok(Self {
            k,
            graph: graph.clone(),
            a_raw: adjacency.get(&[m, m], "A", Init::Const(0.0))?,
            support,
            f2: Bijection::new(f2_params, m, f2)?,
        })
    }

    /// Number of latents k.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Number of causal nodes m (the first m latents).
    pub fn m(&self) -> usize {
        self.graph.n()
    }

    pub fn graph(&self) -> &CausalGraph {
        &self.graph
    }

    pub fn f2(&self) -> &Bijection {
        &self.f2
    }

    /// The known graph as a 0/1 `[m, m]` tensor (1 where `A` may be non-zero).
    pub fn support_mask(&self) -> &Tensor {
        &self.support
    }

    /// The effective adjacency `[m, m]` (`A[p][j]` weighs p → j), exactly 0 off the support.
    ///
    /// DEAR zeroes A's off-support gradients before every optimizer step. Multiplying by the support here is
    /// equivalent (∂A_eff/∂A_raw = support, so off-support entries of A_raw get an exact-zero gradient, hence no
    /// Adam update, and weight decay keeps their 0 at 0) but cannot be forgotten by a training step, and it holds
    /// even for a checkpoint whose off-support entries are non-zero. So there is no `mask_gradients` to call.
    pub fn adjacency(&self) -> Result<Tensor> {
        Ok((&self.a_raw * &self.support)?)
    }

    fn device(&self) -> &Device {
        self.support.device()
    }

    fn check(&self, x: &Tensor, what: &str) -> Result<()> {
        match x.dims() {
            &[_, k] if k == self.k => Ok(()),
            d => Err(Error::Shape {
                context: format!("SCM prior {what}"),
                expected: format!("[B, {}] (latent_dim)", self.k),
                got: format!("{d:?}"),
            }),
        }
    }

    /// Applies `f` to the causal columns `[B, m]` and keeps the free ones.
    fn on_causal(&self, x: &Tensor, f: impl FnOnce(&Tensor) -> Result<Tensor>) -> Result<Tensor> {
        let (m, k) = (self.m(), self.k);
        if m == 0 {
            return Ok(x.clone());
        }
        let causal = f(&x.narrow(1, 0, m)?)?;
        if m == k {
            return Ok(causal);
        }
        Ok(Tensor::cat(&[causal, x.narrow(1, m, k - m)?], 1)?)
    }

    /// `n` draws of z `[n, k]`.
    pub fn sample(&self, n: usize, rng: &mut Rng) -> Result<Tensor> {
        let eps = rng.normal(&[n, self.k], self.device())?;
        self.forward(&eps)
    }

    /// ε `[B, k]` → z `[B, k]`; differentiable in ε, A and f2's parameters.
    pub fn forward(&self, eps: &Tensor) -> Result<Tensor> {
        self.check(eps, "forward input")?;
        self.on_causal(eps, |e| {
            let a = self.adjacency()?;
            self.f2.forward(&solve(&a, e)?)
        })
    }

    /// z `[B, k]` → ε `[B, k]`: ε_{1:m} = (I − Aᵀ) f2⁻¹(z_{1:m}), free dims copied.
    pub fn abduct(&self, z: &Tensor) -> Result<Tensor> {
        self.check(z, "abduct input")?;
        self.on_causal(z, |zc| {
            let u = self.f2.inverse(zc)?;
            Ok(LinearScm::new(self.adjacency()?)
                .abduct(&u.unsqueeze(2)?)?
                .squeeze(2)?)
        })
    }

    /// z `[B, k]` under do(z_i = c) for each `Do` (node < m; the last one wins for a repeated node): ε is
    /// abducted from z, the intervened nodes are set, their descendants recomputed by the mechanisms
    /// z_j = f2_j(Σ_p A_pj f2_p⁻¹(z_p) + ε_j), and every other latent (free dims included) is kept exactly.
    pub fn intervene(&self, z: &Tensor, dos: &[Do]) -> Result<Tensor> {
        self.check(z, "intervene input")?;
        let m = self.m();
        let mut hit = vec![0f32; m];
        let mut value = vec![0f32; m];
        let mut affected = vec![0f32; m];
        for d in dos {
            if d.node >= m {
                return Err(Error::Shape {
                    context: "SCM prior intervention".into(),
                    expected: format!("a causal node index below {m}"),
                    got: d.node.to_string(),
                });
            }
            hit[d.node] = 1.0;
            value[d.node] = d.value;
            affected[d.node] = 1.0;
            for (j, desc) in self.graph.descendants(d.node).into_iter().enumerate() {
                if desc {
                    affected[j] = 1.0;
                }
            }
        }
        if dos.is_empty() {
            return Ok(z.clone());
        }
        let row = |v: Vec<f32>| Tensor::from_vec(v, (1, m), self.device());
        let (hit, value, affected) = (row(hit)?, row(value)?, row(affected)?);
        let keep = (1.0 - &hit)?;
        self.on_causal(z, |zc| {
            let a = self.adjacency()?;
            let u = self.f2.inverse(zc)?;
            let eps = LinearScm::new(a.clone())
                .abduct(&u.unsqueeze(2)?)?
                .squeeze(2)?;
            let set = |x: &Tensor| -> Result<Tensor> {
                Ok((x.broadcast_mul(&keep)?
                    + value.broadcast_mul(&hit)?.broadcast_as(x.shape())?)?)
            };
            // Pre-f2 values of the intervened nodes: u_i = f2_i⁻¹(c).
            let u_set = self.f2.inverse(&set(zc)?)?;
            let eps_do = (eps.broadcast_mul(&keep)? + u_set.broadcast_mul(&hit)?)?;
            // Solving the SCM with the intervened nodes' parent columns cut (u = A'ᵀu + ε') is the same as
            // recomputing u_j = Σ_p A_pj u_p + ε_j for j in topological order, in one differentiable step.
            let a_do = a.broadcast_mul(&keep)?;
            let z_do = set(&self.f2.forward(&solve(&a_do, &eps_do)?)?)?;
            // Non-descendants keep their exact input values (not f2(f2⁻¹(z)), which differs by rounding).
            Ok((z_do.broadcast_mul(&affected)? + zc.broadcast_mul(&(1.0 - &affected)?)?)?)
        })
    }
}

/// u = (I − Aᵀ)⁻¹ e for scalar nodes: e `[B, m]` → `[B, m]`.
fn solve(a: &Tensor, e: &Tensor) -> Result<Tensor> {
    Ok(LinearScm::new(a.clone())
        .forward(&e.unsqueeze(2)?)?
        .squeeze(2)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::method::named_vars;
    use crate::optim::{AdamConfig, AdamW};
    use crate::scm::test_support::max_abs_diff;
    use candle_core::{DType, Var};
    use candle_nn::VarMap;

    fn params(seed: u64) -> Params {
        Params::new(VarMap::new(), Device::Cpu, seed)
    }

    fn graph(n: usize, edges: &[(usize, usize)]) -> CausalGraph {
        CausalGraph::from_edges((0..n).map(|i| format!("c{i}")).collect(), edges)
    }

    /// DEAR's pendulum graph: angle, light → shadow length, shadow position.
    fn pendulum() -> CausalGraph {
        graph(4, &[(0, 2), (0, 3), (1, 2), (1, 3)])
    }

    fn pwl() -> BijectionConfig {
        BijectionConfig::MonotonePwl {
            knots: 100,
            lo: -5.0,
            hi: 5.0,
        }
    }

    fn var(p: &Params, name: &str) -> Var {
        named_vars(p.varmap())
            .into_iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no parameter {name}"))
            .1
    }

    fn set(p: &Params, name: &str, values: &[f32]) {
        let v = var(p, name);
        let t = Tensor::from_slice(values, v.shape(), &Device::Cpu).unwrap();
        v.set(&t).unwrap();
    }

    fn col(x: &Tensor, j: usize) -> Vec<f32> {
        x.narrow(1, j, 1)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap()
    }

    #[test]
    fn abduct_inverts_forward() {
        for cfg in [BijectionConfig::Identity, BijectionConfig::Affine, pwl()] {
            let p = params(4);
            let prior = ScmPrior::new(&p, 6, &pendulum(), &cfg).unwrap();
            set(
                &p,
                "A",
                &[
                    0., 0., 0.8, -0.5, 0., 0., 0.3, 0.6, 0., 0., 0., 0., 0., 0., 0., 0.,
                ],
            );
            let eps = Rng::new(1).normal(&[64, 6], &Device::Cpu).unwrap();
            let z = prior.forward(&eps).unwrap();
            let err = max_abs_diff(&prior.abduct(&z).unwrap(), &eps);
            assert!(err < 1e-4, "{cfg:?}: {err}");
            assert_eq!(col(&z, 4), col(&eps, 4), "free dims are ε");
        }
    }

    #[test]
    fn with_zero_adjacency_causal_dims_are_f2_of_eps() {
        let prior = ScmPrior::new(&params(2), 6, &pendulum(), &pwl()).unwrap();
        let eps = Rng::new(3).normal(&[32, 6], &Device::Cpu).unwrap();
        let z = prior.forward(&eps).unwrap();
        let want = prior.f2().forward(&eps.narrow(1, 0, 4).unwrap()).unwrap();
        assert!(max_abs_diff(&z.narrow(1, 0, 4).unwrap(), &want) < 1e-6);
        assert!(max_abs_diff(&z.narrow(1, 4, 2).unwrap(), &eps.narrow(1, 4, 2).unwrap()) == 0.0);
        assert_eq!(prior.sample(5, &mut Rng::new(0)).unwrap().dims(), &[5, 6]);
    }

    /// Chain 0 → 1, node 2 on its own, one free latent; f2_i(t) = a_i t + b_i with set values.
    fn chain() -> (Params, ScmPrior) {
        let p = params(9);
        let prior = ScmPrior::new(&p, 4, &graph(3, &[(0, 1)]), &BijectionConfig::Affine).unwrap();
        set(&p, "A", &[0., 0.8, 0., 0., 0., 0., 0., 0., 0.]);
        set(&p, "f2.a", &[2.0, 0.5, 1.5]);
        set(&p, "f2.b", &[0.1, -0.3, 0.2]);
        (p, prior)
    }

    #[test]
    fn intervening_on_the_root_moves_the_child_by_its_mechanism() {
        let (_, prior) = chain();
        let z = prior.sample(16, &mut Rng::new(5)).unwrap();
        let eps = prior.abduct(&z).unwrap();
        let out = prior
            .intervene(
                &z,
                &[Do {
                    node: 0,
                    value: 1.7,
                }],
            )
            .unwrap();
        assert!(col(&out, 0).iter().all(|&v| v == 1.7));
        // z1 = f2_1(0.8 f2_0⁻¹(1.7) + ε1)
        let u0 = (1.7 - 0.1) / 2.0;
        for (got, e1) in col(&out, 1).iter().zip(col(&eps, 1)) {
            let want = 0.5 * (0.8 * u0 + e1) - 0.3;
            assert!((got - want).abs() < 1e-5, "{got} vs {want}");
        }
        assert_eq!(col(&out, 2), col(&z, 2), "non-descendant unchanged");
        assert_eq!(col(&out, 3), col(&z, 3), "free latent unchanged");
        assert_ne!(col(&out, 1), col(&z, 1));
    }

    #[test]
    fn intervening_on_the_child_leaves_the_root() {
        let (_, prior) = chain();
        let z = prior.sample(16, &mut Rng::new(6)).unwrap();
        let out = prior
            .intervene(
                &z,
                &[Do {
                    node: 1,
                    value: -0.4,
                }],
            )
            .unwrap();
        assert_eq!(col(&out, 0), col(&z, 0));
        assert!(col(&out, 1).iter().all(|&v| v == -0.4));
        assert_eq!(col(&out, 2), col(&z, 2));
        assert_eq!(col(&out, 3), col(&z, 3));
        assert_eq!(
            prior.intervene(&z, &[]).unwrap().to_vec2::<f32>().unwrap(),
            z.to_vec2::<f32>().unwrap()
        );
    }

    /// The §5.5 spec written out: for j in topological order, z_j = f2_j(Σ_p A_pj f2_p⁻¹(z_p) + ε_j).
    #[test]
    fn intervention_matches_the_topological_recompute() {
        let p = params(12);
        let g = graph(4, &[(0, 1), (1, 2), (0, 3), (2, 3)]);
        let prior = ScmPrior::new(&p, 5, &g, &pwl()).unwrap();
        let a = [
            0., 0.7, 0., -0.4, 0., 0., 1.1, 0., 0., 0., 0., 0.5, 0., 0., 0., 0.,
        ];
        set(&p, "A", &a);
        let z = prior.sample(8, &mut Rng::new(2)).unwrap();
        let out = prior
            .intervene(
                &z,
                &[Do {
                    node: 1,
                    value: 0.3,
                }],
            )
            .unwrap();
        let eps = prior.abduct(&z).unwrap();
        let mut zs: Vec<Tensor> = (0..4).map(|j| z.narrow(1, j, 1).unwrap()).collect();
        zs[1] = Tensor::full(0.3f32, (8, 1), &Device::Cpu).unwrap();
        for j in g.topological_order().unwrap() {
            if j == 1 || g.parents(j).count() == 0 {
                continue;
            }
            let u = prior.f2().inverse(&Tensor::cat(&zs, 1).unwrap()).unwrap();
            let mut pre = eps.narrow(1, j, 1).unwrap();
            for pa in g.parents(j) {
                pre =
                    (pre + (u.narrow(1, pa, 1).unwrap() * a[pa * 4 + j] as f64).unwrap()).unwrap();
            }
            // f2 acts per column: feed `pre` to every column and read column j.
            let pre = Tensor::cat(&vec![pre; 4], 1).unwrap();
            zs[j] = prior.f2().forward(&pre).unwrap().narrow(1, j, 1).unwrap();
        }
        let want = Tensor::cat(&zs, 1).unwrap();
        let err = max_abs_diff(&out.narrow(1, 0, 4).unwrap(), &want);
        assert!(err < 1e-4, "{err}");
        assert_eq!(col(&out, 0), col(&z, 0));
    }

    #[test]
    fn off_support_adjacency_stays_zero_under_adamw() {
        let vm = VarMap::new();
        let p = Params::new(vm.clone(), Device::Cpu, 1);
        let prior = ScmPrior::new(&p, 5, &pendulum(), &BijectionConfig::Affine).unwrap();
        let cfg = AdamConfig {
            lr: 0.05,
            weight_decay: 0.1,
            ..AdamConfig::default()
        };
        let mut opt = AdamW::new(named_vars(&vm), cfg).unwrap();
        let mut rng = Rng::new(8);
        for _ in 0..5 {
            // Pulls every latent towards a common target, so an unmasked A would move everywhere.
            let z = prior
                .forward(&rng.normal(&[32, 5], &Device::Cpu).unwrap())
                .unwrap();
            let loss = (z.sum_keepdim(1).unwrap() - 3.0)
                .unwrap()
                .sqr()
                .unwrap()
                .mean_all()
                .unwrap();
            opt.step(&loss.backward().unwrap()).unwrap();
        }
        let a = prior.adjacency().unwrap().to_vec2::<f32>().unwrap();
        let raw = var(&p, "A").as_tensor().to_vec2::<f32>().unwrap();
        let g = pendulum();
        for i in 0..4 {
            for j in 0..4 {
                if g.adj[i][j] {
                    assert!(a[i][j] != 0.0, "on-support A[{i}][{j}] did not train");
                } else {
                    assert_eq!((a[i][j], raw[i][j]), (0.0, 0.0), "off-support A[{i}][{j}]");
                }
            }
        }
        assert_eq!(prior.support_mask().to_vec2::<f32>().unwrap()[0][2], 1.0);
    }

    #[test]
    fn parameter_groups_can_live_in_separate_stores() {
        let (pa, pf) = (params(1), params(2));
        let g = pendulum();
        ScmPrior::with_param_groups(&pa.pp("adj"), &pf.pp("prior"), 6, &g, &pwl()).unwrap();
        let names = |p: &Params| {
            named_vars(p.varmap())
                .into_iter()
                .map(|(n, _)| n)
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&pa), vec!["adj.A"]);
        assert_eq!(names(&pf), vec!["prior.b", "prior.p"]);
    }

    #[test]
    fn bad_inputs_are_errors() {
        let p = params(0);
        let cyclic = graph(2, &[(0, 1), (1, 0)]);
        let e = ScmPrior::new(&p, 4, &cyclic, &BijectionConfig::Affine)
            .unwrap_err()
            .to_string();
        assert!(e.contains("cycle"), "{e}");
        let e = ScmPrior::new(&p, 3, &pendulum(), &BijectionConfig::Affine)
            .unwrap_err()
            .to_string();
        assert!(e.contains("at most latent_dim = 3"), "{e}");
        let mut ragged = pendulum();
        ragged.adj[1].pop();
        assert!(ScmPrior::new(&params(0), 6, &ragged, &BijectionConfig::Affine).is_err());

        let prior = ScmPrior::new(&params(0), 6, &pendulum(), &BijectionConfig::Affine).unwrap();
        let z = Tensor::zeros((2, 5), DType::F32, &Device::Cpu).unwrap();
        let e = prior.abduct(&z).unwrap_err().to_string();
        assert!(e.contains("expected [B, 6]"), "{e}");
        assert!(prior.forward(&z).is_err());
        let z = Tensor::zeros((2, 6), DType::F32, &Device::Cpu).unwrap();
        let e = prior
            .intervene(
                &z,
                &[Do {
                    node: 4,
                    value: 1.0,
                }],
            )
            .unwrap_err()
            .to_string();
        assert!(e.contains("below 4"), "{e}");
    }

    #[test]
    fn a_prior_without_causal_nodes_is_the_identity() {
        let prior = ScmPrior::new(&params(0), 3, &graph(0, &[]), &pwl()).unwrap();
        let eps = Rng::new(0).normal(&[4, 3], &Device::Cpu).unwrap();
        assert_eq!(
            prior.forward(&eps).unwrap().to_vec2::<f32>().unwrap(),
            eps.to_vec2::<f32>().unwrap()
        );
        assert_eq!(
            prior.abduct(&eps).unwrap().to_vec2::<f32>().unwrap(),
            eps.to_vec2::<f32>().unwrap()
        );
    }
}

//! CausalVAE's causal layer (official code, docs/methods/causalvae.md, steps 2–6):
//! z = (I − Aᵀ)⁻¹ ε̂ per feature dim (linear SCM over concept blocks); mask layer f_i = g_i((Aᵀz)_i) with one
//! small MLP per concept; attention noise ẽ = softmax_concepts(σ(z M ε̂ᵀ)) ε̂; z̃ = f + ẽ; in training
//! z_dag = z̃ + √λ_v·N(0, I). The label branch g_u((Aᵀu)_i) feeds the `label` objective.

use candle_core::Tensor;
use carve::components::{BuildContext, CausalLayer, CausalLayerConfig, CausalOutput, Do};
use carve::data::Batch;
use carve::nn::{Activation, Init, ParallelMlp};
use carve::rng::Rng;
use carve::scm::LinearScm;
use carve::{Error, Result};
use serde::{Deserialize, Serialize};

/// What concept i's mechanism g_i reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub enum MaskInput {
    /// The official code: (Aᵀz)_i = Σ_j A_ji z_j, the parents' blocks summed (k inputs).
    #[default]
    Sum,
    /// The paper: A_i ∘ z, every block weighted by its edge into i and kept apart (n·k inputs), so g_i can be
    /// any function of its parents, not only of one weighted sum of them.
    Masked,
}

/// Where the adjacency starts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub enum InitialGraph {
    /// The official code's `--initial True`: A[0][j] = A[1][j] = 1 for every later j (a superset of the
    /// pendulum's true graph).
    #[default]
    Official,
    Zeros,
    Matrix(Vec<Vec<f32>>),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CausalVaeLayer {
    /// Number of concepts n, each an equal block of latent_dim / n dims; 0 (the default): the model's layout.
    #[serde(default)]
    pub concepts: usize,
    #[serde(default = "default_hidden")]
    pub hidden: usize,
    #[serde(default)]
    pub initial_graph: InitialGraph,
    /// λ_v: variance of the sampling noise on z̃ in training.
    #[serde(default = "default_lambda")]
    pub sample_variance: f64,
    /// The attention noise term ẽ (false: ẽ = ε̂).
    #[serde(default = "yes")]
    pub attention: bool,
    #[serde(default)]
    pub mask_input: MaskInput,
    /// What the label branch g_u reads: the code sums the parents' labels (Aᵀu)_i; `Masked` keeps them apart
    /// (A_i ∘ u), so an effect that is not a function of one weighted sum of its parents (the shadow length of
    /// the two angles) need not borrow a non-parent to fit.
    #[serde(default)]
    pub label_input: MaskInput,
    /// Weight-normalise the first layer of g_i and g_u per parent block, so that the edge weight A_ji alone
    /// sets how strongly concept i reads parent j. Without it, g_i(A_i ∘ z) is unchanged when an edge shrinks
    /// and g_i's weights grow to match, so neither an L1 on A nor the 0.3 edge threshold says which edges are
    /// in use.
    #[serde(default)]
    pub normalise_parents: bool,
    /// With `normalise_parents`: also give g_i's later layers fixed-norm output columns, so that g_i cannot make
    /// up for a shrinking edge where it is near linear (its second layer growing instead of its first).
    #[serde(default)]
    pub normalise_layers: bool,
}

fn default_hidden() -> usize {
    32
}
fn default_lambda() -> f64 {
    1e-3
}
fn yes() -> bool {
    true
}

impl InitialGraph {
    fn matrix(&self, n: usize) -> Result<Vec<f32>> {
        let mut a = vec![0f32; n * n];
        match self {
            InitialGraph::Zeros => {}
            InitialGraph::Official => {
                for i in 0..n.min(2) {
                    for j in i + 1..n {
                        a[i * n + j] = 1.0;
                    }
                }
            }
            InitialGraph::Matrix(rows) => {
                if rows.len() != n || rows.iter().any(|r| r.len() != n) {
                    return Err(Error::Shape {
                        context: "CausalVaeMask initial_graph".into(),
                        expected: format!("{n}×{n}"),
                        got: format!("{} rows", rows.len()),
                    });
                }
                a = rows.concat();
            }
        }
        Ok(a)
    }
}

pub struct CausalVaeMaskModel {
    a: Tensor,
    mask: ParallelMlp,
    label: ParallelMlp,
    attention: Option<Tensor>,
    mask_input: MaskInput,
    label_input: MaskInput,
    n: usize,
    sample_std: f64,
}

#[typetag::serde(name = "CausalVaeMask")]
impl CausalLayerConfig for CausalVaeLayer {
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn CausalLayer>> {
        let layout = ctx
            .concepts
            .for_part("the CausalVaeMask layer", self.concepts, ctx.latent_dim)?
            .without_free("the CausalVaeMask layer")?;
        let (n, k) = (layout.concepts(), layout.block());
        // The label branch reads one label column per concept whenever the data has labels.
        crate::labels::check_concepts("CausalVaeMask", n, ctx.spec)?;
        let p = &ctx.params;
        let a0 = self.initial_graph.matrix(n)?;
        let a = p.get_with_values(&[n, n], "A", a0)?;
        let attention = if self.attention {
            Some(p.get(&[k, k], "attention.M", Init::Normal { std: 1.0 })?)
        } else {
            None
        };
        if self.normalise_layers && !self.normalise_parents {
            return Err(Error::msg(
                "CausalVaeMask: normalise_layers bounds how much g_i amplifies an edge and only means something \
                 with normalise_parents: true (set both)",
            ));
        }
        // A mechanism over parents' blocks of width `w`: summed (one block) or kept apart (n blocks).
        let mechanism = |name: &str, input: MaskInput, w: usize| -> Result<ParallelMlp> {
            let blocks = match input {
                MaskInput::Sum => 1,
                MaskInput::Masked => n,
            };
            let g = ParallelMlp::new(
                &p.pp(name),
                n,
                blocks * w,
                &[self.hidden],
                w,
                Activation::Elu,
            )?;
            let g = if self.normalise_layers {
                g.with_normalised_later_layers()
            } else {
                g
            };
            if self.normalise_parents {
                g.with_normalised_input_groups(blocks)
            } else {
                Ok(g)
            }
        };
        Ok(Box::new(CausalVaeMaskModel {
            a,
            mask: mechanism("mask", self.mask_input, k)?,
            label: mechanism("label", self.label_input, 1)?,
            attention,
            mask_input: self.mask_input,
            label_input: self.label_input,
            n,
            sample_std: self.sample_variance.sqrt(),
        }))
    }
}
carve::register_component!(
    CausalLayer,
    "CausalVaeMask",
    "CausalVAE: linear SCM (I−Aᵀ)⁻¹ε over concept blocks + mask layer g_i + attention noise + label branch",
    provides: [LearnedGraph, ScmLatents, MaskedLatents, LabelPrediction]
);

impl CausalVaeMaskModel {
    fn blocks(&self, t: &Tensor) -> Result<(usize, usize, Tensor)> {
        let (b, d) = t.dims2()?;
        let k = d / self.n;
        Ok((b, k, t.reshape((b, self.n, k))?))
    }

    /// What concept i's mechanism reads of its parents in `z` (`[B, n, k]`): `[B, n, k]` summed or
    /// `[B, n, n·k]` masked.
    fn parents(&self, z: &Tensor, input: MaskInput) -> Result<Tensor> {
        Ok(match input {
            MaskInput::Sum => self.a.t()?.broadcast_matmul(z)?,
            MaskInput::Masked => {
                // m[b, i, j, :] = A[j][i] · z[b, j, :], flattened over (j, :).
                let (b, n, k) = z.dims3()?;
                let at = self.a.t()?.reshape((1, n, n, 1))?;
                z.unsqueeze(1)?.broadcast_mul(&at)?.reshape((b, n, n * k))?
            }
        })
    }

    /// z̃ = g(Aᵀz) + ẽ for SCM latents `z` and noise `e`, both `[B, n, k]`.
    fn mask_output(&self, z: &Tensor, e: &Tensor) -> Result<Tensor> {
        let f = self
            .mask
            .forward_batch_major(&self.parents(z, self.mask_input)?)?;
        let e_tilde = match &self.attention {
            Some(mat) => {
                let logits = z.broadcast_matmul(mat)?.matmul(&e.transpose(1, 2)?)?;
                let w = candle_nn::ops::softmax(&candle_nn::ops::sigmoid(&logits)?, 1)?;
                w.matmul(e)?
            }
            None => e.clone(),
        };
        Ok((f + e_tilde)?)
    }
}

/// Replaces concept blocks named in `dos` (node = concept) by their value, in a `[B, n, k]` tensor.
fn set_blocks(t: &Tensor, dos: &[Do]) -> Result<Tensor> {
    let (_, n, _) = t.dims3()?;
    let mut keep = vec![1f32; n];
    let mut vals = vec![0f32; n];
    for d in dos {
        if d.node >= n {
            return Err(Error::Shape {
                context: "CausalVAE intervention".into(),
                expected: format!("a concept index below {n}"),
                got: d.node.to_string(),
            });
        }
        keep[d.node] = 0.0;
        vals[d.node] = d.value;
    }
    let dev = t.device();
    let keep = Tensor::from_vec(keep, (1, n, 1), dev)?;
    let vals = Tensor::from_vec(vals, (1, n, 1), dev)?;
    Ok(t.broadcast_mul(&keep)?.broadcast_add(&vals)?)
}

impl CausalLayer for CausalVaeMaskModel {
    fn forward(&self, eps: &Tensor, batch: &Batch, rng: Option<&mut Rng>) -> Result<CausalOutput> {
        let (b, k, e) = self.blocks(eps)?;
        let z = LinearScm::new(self.a.clone()).forward(&e)?;
        let zm = self.mask_output(&z, &e)?;
        let label_prediction = match &batch.labels {
            Some(u) => {
                let mu = self.parents(&u.reshape((b, self.n, 1))?, self.label_input)?;
                Some(self.label.forward_batch_major(&mu)?.reshape((b, self.n))?)
            }
            None => None,
        };
        let d = self.n * k;
        let zm = zm.reshape((b, d))?;
        let out = match rng {
            Some(rng) => (&zm + (rng.normal(&[b, d], zm.device())? * self.sample_std)?)?,
            None => zm.clone(),
        };
        Ok(CausalOutput {
            z: out,
            scm_latents: Some(z.reshape((b, d))?),
            masked_latents: Some(zm),
            label_prediction,
        })
    }

    fn graph(&self) -> Result<Option<Tensor>> {
        Ok(Some(self.a.clone()))
    }

    fn abduct(&self, _z: &Tensor) -> Result<Tensor> {
        Err(Error::msg(
            "CausalVaeMask is not invertible from z̃ (mask layer + attention): abduct ε with the encoder's posterior mean",
        ))
    }

    /// do(concept_i = c): the linear SCM is mutilated (incoming edges of i removed, its noise set to c), so
    /// descendants of i recompute from the new value; the mask layer then runs on the intervened z and the
    /// intervened blocks of z̃ are fixed to c. Values are in the normalised label scale of the prior.
    fn intervene(&self, eps: &Tensor, dos: &[Do]) -> Result<Tensor> {
        let (b, k, e) = self.blocks(eps)?;
        let n = self.n;
        let mut cut = vec![1f32; n];
        for d in dos {
            if d.node < n {
                cut[d.node] = 0.0;
            }
        }
        let a_cut = self
            .a
            .broadcast_mul(&Tensor::from_vec(cut, (1, n), self.a.device())?)?;
        let e_do = set_blocks(&e, dos)?;
        let z = LinearScm::new(a_cut).forward(&e_do)?;
        let zm = set_blocks(&self.mask_output(&z, &e)?, dos)?;
        Ok(zm.reshape((b, n * k))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use carve::components::BuildContext;
    use carve::data::DataSpec;
    use carve::nn::Params;

    fn layer(graph: InitialGraph, mask_input: MaskInput) -> Box<dyn CausalLayer> {
        layer_with(graph, mask_input, false)
    }

    fn layer_with(
        graph: InitialGraph,
        mask_input: MaskInput,
        normalise_parents: bool,
    ) -> Box<dyn CausalLayer> {
        let spec = DataSpec {
            obs_shape: vec![2],
            factor_names: vec![],
            label_names: vec![],
            graph: None,
            ..Default::default()
        };
        let ctx = BuildContext {
            params: Params::new(candle_nn::VarMap::new(), Device::Cpu, 3),
            spec: &spec,
            latent_dim: 6,
            concepts: Default::default(),
            layers: Default::default(),
        };
        let cfg = CausalVaeLayer {
            concepts: 3,
            hidden: 8,
            initial_graph: graph,
            sample_variance: 1e-3,
            attention: false,
            mask_input,
            label_input: mask_input,
            normalise_parents,
            normalise_layers: normalise_parents,
        };
        cfg.build(&ctx).unwrap()
    }

    fn blocks(t: &Tensor) -> Vec<Vec<f32>> {
        t.reshape((t.dims()[0] * 3, 2)).unwrap().to_vec2().unwrap()
    }

    /// Both mechanism inputs: the code's summed parents and the paper's masked parents.
    const INPUTS: [MaskInput; 2] = [MaskInput::Sum, MaskInput::Masked];

    #[test]
    fn no_intervention_equals_the_deterministic_forward() {
        for input in INPUTS {
            for normalise in [false, true] {
                no_intervention_case(layer_with(InitialGraph::Official, input, normalise));
            }
        }
    }

    fn no_intervention_case(l: Box<dyn CausalLayer>) {
        let eps = Tensor::new(&[[0.3f32, -1.0, 0.5, 0.2, 1.5, -0.7]], &Device::Cpu).unwrap();
        let batch = Batch {
            x: eps.clone(),
            labels: None,
            factors: None,
            actions: None,
        };
        let z = l.forward(&eps, &batch, None).unwrap().z;
        assert_eq!(blocks(&z), blocks(&l.intervene(&eps, &[]).unwrap()));
    }

    #[test]
    fn do_on_a_cause_changes_its_descendants_only() {
        for input in INPUTS {
            // Graph 0 → 2 only: concept 1 is neither a cause nor an effect of 0.
            let graph = InitialGraph::Matrix(vec![vec![0.0, 0.0, 1.0], vec![0.0; 3], vec![0.0; 3]]);
            descendants_case(layer(graph.clone(), input));
            descendants_case(layer_with(graph, input, true));
        }
    }

    fn descendants_case(l: Box<dyn CausalLayer>) {
        let eps = Tensor::new(&[[0.3f32, -1.0, 0.5, 0.2, 1.5, -0.7]], &Device::Cpu).unwrap();
        let before = blocks(&l.intervene(&eps, &[]).unwrap());
        let after = blocks(
            &l.intervene(
                &eps,
                &[Do {
                    node: 0,
                    value: 2.0,
                }],
            )
            .unwrap(),
        );
        assert_eq!(after[0], vec![2.0, 2.0], "the intervened block is fixed");
        assert_eq!(after[1], before[1], "a non-descendant is unchanged");
        assert_ne!(after[2], before[2], "the child recomputes");
        // do() on the effect leaves the cause untouched.
        let on_child = blocks(
            &l.intervene(
                &eps,
                &[Do {
                    node: 2,
                    value: -1.0,
                }],
            )
            .unwrap(),
        );
        assert_eq!(on_child[0], before[0]);
        assert_eq!(on_child[2], vec![-1.0, -1.0]);
    }

    #[test]
    fn the_label_branch_reads_only_parents_for_both_inputs() {
        for input in INPUTS {
            let graph = InitialGraph::Matrix(vec![vec![0.0, 0.0, 1.0], vec![0.0; 3], vec![0.0; 3]]);
            let l = layer_with(graph, input, true);
            let pred = |u: [f32; 3]| -> Vec<f32> {
                let eps = Tensor::zeros((1, 6), candle_core::DType::F32, &Device::Cpu).unwrap();
                let batch = Batch {
                    x: eps.clone(),
                    labels: Some(Tensor::new(&[u], &Device::Cpu).unwrap()),
                    factors: None,
                    actions: None,
                };
                l.forward(&eps, &batch, None)
                    .unwrap()
                    .label_prediction
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .to_vec1()
                    .unwrap()
            };
            let base = pred([0.5, 0.5, 0.5]);
            assert_eq!(
                pred([0.5, -2.0, 0.5]),
                base,
                "{input:?}: concept 1 is no one's parent"
            );
            assert_ne!(
                pred([-2.0, 0.5, 0.5])[2],
                base[2],
                "{input:?}: concept 2 reads its parent 0"
            );
        }
    }

    #[test]
    fn normalised_later_layers_without_normalised_parents_is_an_error() {
        let spec = DataSpec {
            obs_shape: vec![2],
            ..Default::default()
        };
        let ctx = BuildContext {
            params: Params::new(candle_nn::VarMap::new(), Device::Cpu, 3),
            spec: &spec,
            latent_dim: 6,
            concepts: Default::default(),
            layers: Default::default(),
        };
        let cfg: CausalVaeLayer = ron::from_str("(concepts: 3, normalise_layers: true)").unwrap();
        let err = cfg.build(&ctx).err().expect("must be rejected").to_string();
        assert!(err.contains("normalise_parents"), "{err}");
    }
}

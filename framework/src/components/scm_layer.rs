//! `{"Scm": (f2: Affine)}`: DEAR's SCM (docs/methods/dear.md) as a causal layer any method may use. The first m
//! latents are the nodes of the data's known graph (one per label), the rest pass through:
//! z_{1:m} = f2((I − Aᵀ)⁻¹ ε_{1:m}), with A learned on the graph's support and f2 an elementwise bijection.

use super::{BuildContext, CausalLayer, CausalLayerConfig, CausalOutput, Do};
use crate::data::Batch;
use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::scm::{BijectionConfig, ScmPrior};

/// The optimizer group of a causal layer's edge weights.
pub const ADJACENCY_GROUP: &str = "adjacency";
use candle_core::Tensor;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scm {
    /// The elementwise map after the linear SCM: `Affine` (DEAR's `linscm`), `MonotonePwl(..)` (`nlrscm`) or
    /// `Identity`.
    #[serde(default)]
    pub f2: BijectionConfig,
}

#[typetag::serde(name = "Scm")]
impl CausalLayerConfig for Scm {
    /// `A` is created as `A` (in the optimizer group `adjacency`, which methods may train at their own rate)
    /// and f2's parameters under `f2`, in that order.
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn CausalLayer>> {
        let graph = ctx.spec.graph.as_ref().ok_or_else(|| {
            Error::msg("the Scm causal layer learns weights on the data's known causal graph, and the data has none")
        })?;
        Ok(Box::new(ScmLayer(ScmPrior::with_param_groups(
            &ctx.params.in_group(ADJACENCY_GROUP),
            &ctx.params.pp("f2"),
            ctx.latent_dim,
            graph,
            &self.f2,
        )?)))
    }
}
crate::register_component!(
    CausalLayer,
    "Scm",
    "DEAR's SCM on the known graph: z = f2((I − Aᵀ)⁻¹ε) over the first m latents, A learned on the graph",
    needs: [KnownGraph],
    provides: [LearnedGraph, Abduction]
);

/// The built layer: an [`ScmPrior`] seen through [`CausalLayer`].
pub struct ScmLayer(pub ScmPrior);

impl CausalLayer for ScmLayer {
    fn forward(
        &self,
        eps: &Tensor,
        _batch: &Batch,
        _rng: Option<&mut Rng>,
    ) -> Result<CausalOutput> {
        Ok(CausalOutput::latents(self.0.forward(eps)?))
    }

    fn graph(&self) -> Result<Option<Tensor>> {
        Ok(Some(self.0.adjacency()?))
    }

    fn abduct(&self, z: &Tensor) -> Result<Tensor> {
        self.0.abduct(z)
    }

    fn intervene(&self, eps: &Tensor, dos: &[Do]) -> Result<Tensor> {
        self.0.intervene(&self.0.forward(eps)?, dos)
    }

    /// Exact on z: non-descendants keep their values bit for bit.
    fn intervene_latents(&self, z: &Tensor, dos: &[Do]) -> Result<Tensor> {
        self.0.intervene(z, dos)
    }

    /// The node latents themselves, `[B, m]`.
    fn node_values(&self, z: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(z.narrow(1, 0, self.0.m())?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{CausalGraph, DataSpec};
    use crate::nn::Params;
    use candle_core::Device;

    #[test]
    fn the_layer_inverts_and_intervenes_like_the_scm() {
        let spec = DataSpec {
            obs_shape: vec![4],
            label_names: vec!["a".into(), "b".into()],
            graph: Some(CausalGraph::from_edges(
                vec!["a".into(), "b".into()],
                &[(0, 1)],
            )),
            ..Default::default()
        };
        let ctx = BuildContext {
            params: Params::new(candle_nn::VarMap::new(), Device::Cpu, 3),
            spec: &spec,
            latent_dim: 3,
            concepts: Default::default(),
            layers: Default::default(),
        };
        let layer = Scm::default().build(&ctx).unwrap();
        assert!(layer.graph().unwrap().is_some());
        let eps = Tensor::new(&[[0.3f32, -0.2, 1.5]], &Device::Cpu).unwrap();
        let batch = Batch {
            x: eps.clone(),
            labels: None,
            factors: None,
            actions: None,
        };
        let z = layer.forward(&eps, &batch, None).unwrap().z;
        let back: Vec<f32> = layer
            .abduct(&z)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        for (b, e) in back.iter().zip([0.3f32, -0.2, 1.5]) {
            assert!((b - e).abs() < 1e-5, "{back:?}");
        }
        // do(a = 1): the free latent keeps its value, the node latents are [B, 2].
        let dos = [Do {
            node: 0,
            value: 1.0,
        }];
        let z_do = layer.intervene_latents(&z, &dos).unwrap();
        let v: Vec<f32> = z_do.flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(v[0], 1.0);
        assert_eq!(v[2], 1.5);
        assert_eq!(layer.node_values(&z).unwrap().unwrap().dims(), &[1, 2]);
        // With no graph in the data the layer says what it needs.
        let bare = DataSpec {
            obs_shape: vec![4],
            ..Default::default()
        };
        let ctx = BuildContext {
            params: Params::new(candle_nn::VarMap::new(), Device::Cpu, 3),
            spec: &bare,
            latent_dim: 3,
            concepts: Default::default(),
            layers: Default::default(),
        };
        let err = Scm::default().build(&ctx).err().unwrap().to_string();
        assert!(err.contains("known causal graph"), "{err}");
    }
}

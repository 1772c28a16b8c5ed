//! `do_consistency` = `weight` · E_B[Σ_i (read_i(x') − z'_i)²]: the model must read back what it was asked to
//! draw under do(). Each step intervenes on one node (cycling through `nodes`) with a value taken from the batch:
//! z' = do(node = value) on the batch's ε, x' = the decoder's mean image of z', and read(x') = the node values of
//! the causal layer's output on the encoder's posterior mean of x' (what `intervene` and the metrics read).
//!
//! Why: under do() a decoder that reads several concepts gets combinations the data never shows together (a
//! shadow's length with another angle's position). The reconstruction term says nothing about those images; this
//! term asks that they carry the intervened value and leave every other node where the model put it. z' and the
//! value are fixed targets (no gradient), so the graph and mechanisms are not bent towards what the decoder
//! already draws; the gradient reaches the decoder through x' and the encoder and causal layer through the
//! reading.

use super::{BuildContext, Do, ForwardOutputs, Objective, ObjectiveConfig, Parts, Term};
use crate::data::Batch;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterventionConsistency {
    pub weight: f64,
    /// First step with the term (before it the term is absent: let the graph and the decoder form first).
    #[serde(default)]
    pub from_step: usize,
    /// Causal nodes to intervene on, one per step in turn; empty = all nodes.
    #[serde(default)]
    pub nodes: Vec<usize>,
    /// Rows of the batch to intervene on (the first ones; 0 = all): each row costs one more decode and encode.
    #[serde(default)]
    pub rows: usize,
}

#[typetag::serde(name = "InterventionConsistency")]
impl ObjectiveConfig for InterventionConsistency {
    fn build(&self, _ctx: &BuildContext) -> Result<Box<dyn Objective>> {
        Error::check_non_negative("InterventionConsistency weight", self.weight)?;
        Ok(Box::new(self.clone()))
    }
}
crate::register_component!(
    Objective,
    "InterventionConsistency",
    "do_consistency: weight · squared error between the node values read back from do() images and those asked for"
);

impl Objective for InterventionConsistency {
    fn terms(
        &self,
        fwd: &ForwardOutputs,
        parts: &Parts,
        _batch: &Batch,
        step: usize,
    ) -> Result<Vec<Term>> {
        if step < self.from_step {
            return Ok(vec![]);
        }
        let causal = &parts.causal;
        let Some(values) = causal.node_values(&fwd.z.detach())? else {
            return Err(Error::msg(
                "InterventionConsistency needs a causal layer with a graph (node values to intervene on)",
            ));
        };
        let (rows, n) = values.dims2()?;
        let node = match self.nodes.len() {
            0 => step % n,
            len => self.nodes[step % len],
        };
        if node >= n {
            return Err(Error::msg(format!(
                "InterventionConsistency node {node} is out of range: the causal layer has {n} nodes"
            )));
        }
        // Batches are drawn at random, so any row's value is a draw from the data's marginal of the node.
        let value = values
            .get((step / n) % rows)?
            .get(node)?
            .to_scalar::<f32>()?;
        let rows = match self.rows {
            0 => rows,
            r => r.min(rows),
        };
        let eps = fwd.eps.detach().narrow(0, 0, rows)?;
        let z_do = causal.intervene(&eps, &[Do { node, value }])?.detach();
        let x_do = parts.decoder.mean(&parts.decoder.decode(&z_do)?)?;
        let read_batch = Batch {
            x: x_do.clone(),
            labels: None,
            factors: None,
            actions: None,
        };
        let q = parts.encoder.encode(&x_do)?;
        let z_read = causal.forward(&q.mean, &read_batch, None, &mut BTreeMap::new())?;
        let node_values = |z: &candle_core::Tensor| {
            causal.node_values(z)?.ok_or_else(|| {
                Error::msg(
                    "InterventionConsistency: the causal layer stopped reporting node values",
                )
            })
        };
        let (read, asked) = (node_values(&z_read)?, node_values(&z_do)?);
        let per_sample = (read - asked)?.sqr()?.sum(1)?;
        Ok(vec![Term {
            name: "do_consistency".into(),
            value: (per_sample.mean_all()? * self.weight)?,
        }])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::components::{CausalLayer, Decoder, Encoder, Independent, StdNormal};
    use crate::dist::DiagGaussian;
    use candle_core::{Device, Tensor};

    /// Two nodes, one dimension each, with 0 → 1: z0 = ε0, z1 = ε1 + z0.
    struct Chain;

    impl CausalLayer for Chain {
        fn forward(
            &self,
            eps: &Tensor,
            _batch: &Batch,
            _rng: Option<&mut crate::rng::Rng>,
            _extras: &mut BTreeMap<String, Tensor>,
        ) -> Result<Tensor> {
            let z0 = eps.narrow(1, 0, 1)?;
            Ok(Tensor::cat(&[&z0, &(eps.narrow(1, 1, 1)? + &z0)?], 1)?)
        }
        fn graph(&self) -> Result<Option<Tensor>> {
            Ok(Some(Tensor::new(&[[0f32, 1.], [0., 0.]], &Device::Cpu)?))
        }
        fn abduct(&self, z: &Tensor) -> Result<Tensor> {
            let z0 = z.narrow(1, 0, 1)?;
            Ok(Tensor::cat(&[&z0, &(z.narrow(1, 1, 1)? - &z0)?], 1)?)
        }
        fn intervene(&self, eps: &Tensor, dos: &[Do]) -> Result<Tensor> {
            let mut z = self.forward(eps, &empty_batch(eps)?, None, &mut BTreeMap::new())?;
            for d in dos {
                let b = z.dims()[0];
                let fixed = Tensor::full(d.value, (b, 1), eps.device())?;
                z = match d.node {
                    0 => Tensor::cat(&[&fixed, &(eps.narrow(1, 1, 1)? + &fixed)?], 1)?,
                    _ => Tensor::cat(&[&z.narrow(1, 0, 1)?, &fixed], 1)?,
                };
            }
            Ok(z)
        }
    }

    /// The image is z itself (two "pixels"), except that a lazy decoder draws node 1 as if it were ε1 = 0.
    struct Picture {
        lazy: bool,
    }

    impl Decoder for Picture {
        fn decode(&self, z: &Tensor) -> Result<Tensor> {
            if !self.lazy {
                return Ok(z.clone());
            }
            let z0 = z.narrow(1, 0, 1)?;
            Ok(Tensor::cat(&[&z0, &z0], 1)?)
        }
        fn nll(&self, x: &Tensor, params: &Tensor) -> Result<Tensor> {
            Ok((x - params)?.sqr()?.sum(1)?)
        }
        fn mean(&self, params: &Tensor) -> Result<Tensor> {
            Ok(params.clone())
        }
    }

    /// Reads ε back exactly from a picture of z.
    struct Reader;

    impl Encoder for Reader {
        fn encode(&self, x: &Tensor) -> Result<DiagGaussian> {
            let eps = Chain.abduct(x)?;
            DiagGaussian::new(eps.clone(), eps.zeros_like()?)
        }
    }

    fn empty_batch(x: &Tensor) -> Result<Batch> {
        Ok(Batch {
            x: x.clone(),
            labels: None,
            factors: None,
            actions: None,
        })
    }

    fn parts(causal: Box<dyn CausalLayer>, lazy: bool) -> Parts {
        Parts {
            encoder: Box::new(Reader),
            causal,
            prior: Box::new(StdNormal {}),
            decoder: Box::new(Picture { lazy }),
        }
    }

    /// The forward pass of a batch with ε = [[0.5, 0.2], [-1, 0.4]].
    fn forward(parts: &Parts) -> ForwardOutputs {
        let eps = Tensor::new(&[[0.5f32, 0.2], [-1., 0.4]], &Device::Cpu).unwrap();
        let batch = empty_batch(&eps).unwrap();
        let z = parts
            .causal
            .forward(&eps, &batch, None, &mut BTreeMap::new())
            .unwrap();
        ForwardOutputs {
            posterior: DiagGaussian::new(eps.clone(), eps.zeros_like().unwrap()).unwrap(),
            eps,
            decoded: z.clone(),
            z,
            extras: BTreeMap::new(),
        }
    }

    fn term(cfg: &InterventionConsistency, parts: &Parts, step: usize) -> Result<Option<f32>> {
        let fwd = forward(parts);
        let terms = cfg.terms(&fwd, parts, &empty_batch(&fwd.z)?, step)?;
        Ok(match terms.as_slice() {
            [] => None,
            [t] => {
                assert_eq!(t.name, "do_consistency");
                Some(t.value.to_scalar::<f32>()?)
            }
            _ => panic!("one term expected"),
        })
    }

    fn cfg(weight: f64, from_step: usize) -> InterventionConsistency {
        InterventionConsistency {
            weight,
            from_step,
            nodes: vec![],
            rows: 0,
        }
    }

    #[test]
    fn a_model_that_draws_what_it_is_asked_reads_it_back_exactly() {
        let p = parts(Box::new(Chain), false);
        for step in 0..4 {
            let v = term(&cfg(3.0, 0), &p, step).unwrap().unwrap();
            assert!(v.abs() < 1e-10, "step {step}: {v}");
        }
    }

    #[test]
    fn a_decoder_that_ignores_the_effects_noise_pays_for_it_under_do() {
        let p = parts(Box::new(Chain), true);
        // Step 0: do(node 0 = z0 of row 0 = 0.5). Asked z1 = ε1 + 0.5; the lazy picture reads back z1 = 0.5, so
        // each row is off by its ε1: (0.2² + 0.4²) / 2 = 0.1, times the weight.
        let v = term(&cfg(3.0, 0), &p, 0).unwrap().unwrap();
        assert!((v - 0.3).abs() < 1e-6, "{v}");
        // Step 1: do(node 1 = z1 of row 0 = 0.7): asked (z0, 0.7), read back (z0, z0): (0.2² + 1.7²) / 2.
        let v = term(&cfg(1.0, 0), &p, 1).unwrap().unwrap();
        assert!((v - (0.04 + 2.89) / 2.0).abs() < 1e-5, "{v}");
        // Only the listed node is intervened on, and only the listed rows count.
        let only_rows = InterventionConsistency {
            nodes: vec![0],
            rows: 1,
            ..cfg(1.0, 0)
        };
        let v = term(&only_rows, &p, 1).unwrap().unwrap();
        assert!((v - 0.04).abs() < 1e-6, "{v}");
    }

    #[test]
    fn the_term_is_absent_before_its_first_step() {
        let p = parts(Box::new(Chain), true);
        assert_eq!(term(&cfg(1.0, 5), &p, 4).unwrap(), None);
        assert!(term(&cfg(1.0, 5), &p, 5).unwrap().is_some());
    }

    #[test]
    fn a_layer_without_a_graph_or_a_node_out_of_range_is_a_clear_error() {
        let err = term(&cfg(1.0, 0), &parts(Box::new(Independent {}), false), 0).unwrap_err();
        assert!(
            err.to_string()
                .contains("needs a causal layer with a graph"),
            "{err}"
        );
        let far = InterventionConsistency {
            nodes: vec![2],
            ..cfg(1.0, 0)
        };
        let err = term(&far, &parts(Box::new(Chain), false), 0).unwrap_err();
        assert!(err.to_string().contains("node 2 is out of range"), "{err}");
    }
}

//! `n` independent MLPs evaluated as one batched matmul per layer: node i maps its own input slice with its
//! own weights. Serves per-concept networks (CausalVAE's g_i and decoders, transition nets per latent).

use super::{Activation, Init, Params};
use crate::error::Result;
use candle_core::Tensor;

#[derive(Clone, Debug)]
pub struct ParallelMlp {
    /// Per layer: weights `[n, in, out]` and biases `[n, 1, out]`.
    layers: Vec<(Tensor, Tensor)>,
    activation: Activation,
    /// Input groups whose first-layer weights are normalised (see `with_normalised_input_groups`).
    input_groups: Option<usize>,
    /// Later layers' output columns normalised too (see `with_normalised_later_layers`).
    later_layers_normalised: bool,
}

impl ParallelMlp {
    /// Layers `fc0`, `fc1`, … with PyTorch's default initialisation per node.
    pub fn new(
        p: &Params,
        n: usize,
        d_in: usize,
        hidden: &[usize],
        d_out: usize,
        activation: Activation,
    ) -> Result<Self> {
        let dims: Vec<usize> = std::iter::once(d_in)
            .chain(hidden.iter().copied())
            .chain(std::iter::once(d_out))
            .collect();
        let layers = dims
            .windows(2)
            .enumerate()
            .map(|(i, w)| {
                let init = Init::torch_default(w[0]);
                let lp = p.pp(format!("fc{i}"));
                Ok((
                    lp.get(&[n, w[0], w[1]], "weight", init)?,
                    lp.get(&[n, 1, w[1]], "bias", init)?,
                ))
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            layers,
            activation,
            input_groups: None,
            later_layers_normalised: false,
        })
    }

    /// Splits the input into `groups` equal slices and gives each slice's first-layer weights (per node) a
    /// fixed Frobenius norm, the one the default initialisation has on average. A gate that scales a slice
    /// before this network (CausalVAE's edge weight A_ji on parent j) then alone sets how strongly the node
    /// reads that slice: the weights cannot grow to undo a smaller gate.
    pub fn with_normalised_input_groups(mut self, groups: usize) -> Result<Self> {
        let d_in = self.layers[0].0.dims()[1];
        if groups == 0 || !d_in.is_multiple_of(groups) {
            return Err(crate::Error::Shape {
                context: "ParallelMlp input groups".into(),
                expected: format!("a group count dividing the input width {d_in}"),
                got: groups.to_string(),
            });
        }
        self.input_groups = Some(groups);
        Ok(self)
    }

    /// Gives every layer after the first a fixed norm per output column (the default initialisation's
    /// expected √(1/3)). With normalised input groups this bounds how much the network can amplify a gated
    /// slice, so a gate that shrinks costs the node its reading of that slice even where the network is linear.
    pub fn with_normalised_later_layers(mut self) -> Self {
        self.later_layers_normalised = true;
        self
    }

    /// Layer `i`'s weights as used in the forward pass.
    fn weight(&self, i: usize) -> Result<Tensor> {
        let w = &self.layers[i].0;
        match self.input_groups {
            Some(groups) if i == 0 => {
                let (n, d_in, d_out) = w.dims3()?;
                // Uniform(±1/√in) has variance 1/(3·in); a group holds (in/groups)·out weights.
                let target = ((d_in / groups * d_out) as f64 / (3.0 * d_in as f64)).sqrt();
                let g = w.reshape((n, groups, d_in / groups * d_out))?;
                Ok(with_norm(&g, 2, target)?.reshape((n, d_in, d_out))?)
            }
            _ if i > 0 && self.later_layers_normalised => with_norm(w, 1, (1.0f64 / 3.0).sqrt()),
            _ => Ok(w.clone()),
        }
    }

    /// `x`: `[n, B, in]` → `[n, B, out]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let last = self.layers.len() - 1;
        let mut h = x.clone();
        for (i, (_, b)) in self.layers.iter().enumerate() {
            h = super::linear::add_bias(&crate::flops::matmul(&h, &self.weight(i)?)?, b)?;
            if i < last {
                h = self.activation.apply(&h)?;
            }
        }
        Ok(h)
    }

    /// `x`: `[B, n, in]` (node-major rows) → `[B, n, out]`.
    pub fn forward_batch_major(&self, x: &Tensor) -> Result<Tensor> {
        let y = self.forward(&x.transpose(0, 1)?.contiguous()?)?;
        Ok(y.transpose(0, 1)?.contiguous()?)
    }
}

/// `t` rescaled so that its L2 norm along `dim` is `norm` everywhere.
fn with_norm(t: &Tensor, dim: usize, norm: f64) -> Result<Tensor> {
    let current = (t.sqr()?.sum_keepdim(dim)? + 1e-12)?.sqrt()?;
    Ok((t.broadcast_div(&current)? * norm)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::Mlp;
    use candle_core::{Device, IndexOp};
    use candle_nn::VarMap;

    #[test]
    fn each_node_uses_its_own_weights() {
        let p = Params::new(VarMap::new(), Device::Cpu, 1);
        let par = ParallelMlp::new(&p.pp("par"), 3, 2, &[5], 4, Activation::Elu).unwrap();
        let x = Tensor::new(
            &[[[1.0f32, -1.0]], [[0.5, 2.0]], [[0.0, 1.0]]],
            &Device::Cpu,
        )
        .unwrap();
        let y = par.forward(&x).unwrap();
        assert_eq!(y.dims(), &[3, 1, 4]);
        // Node 1 equals a plain MLP with node 1's weights.
        let q = Params::new(VarMap::new(), Device::Cpu, 9);
        let mlp = Mlp::new(&q, 2, &[5], 4, Activation::Elu).unwrap();
        for (l, name) in [(0, "fc0"), (1, "fc1")] {
            let vars = q.varmap().data().lock().unwrap();
            vars[&format!("{name}.weight")]
                .set(&par.layers[l].0.i(1).unwrap())
                .unwrap();
            vars[&format!("{name}.bias")]
                .set(&par.layers[l].1.i(1).unwrap().squeeze(0).unwrap())
                .unwrap();
        }
        let single = mlp.forward(&x.i(1).unwrap()).unwrap();
        let diff = (single - y.i(1).unwrap())
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap();
        assert!(diff.to_scalar::<f32>().unwrap() < 1e-6);
    }

    #[test]
    fn normalised_input_groups_make_the_output_invariant_to_a_groups_weight_scale() {
        let p = Params::new(VarMap::new(), Device::Cpu, 2);
        let par = ParallelMlp::new(&p.pp("par"), 2, 4, &[3], 1, Activation::Elu)
            .unwrap()
            .with_normalised_input_groups(2)
            .unwrap();
        let x = Tensor::new(
            &[[[1.0f32, -1.0, 0.5, 2.0]], [[0.0, 1.0, -0.5, 0.3]]],
            &Device::Cpu,
        )
        .unwrap();
        let before = par.forward(&x).unwrap();
        // Scale group 1 (inputs 2..4) of node 0's first layer by 5: the normalised weights are unchanged.
        let w = &par.layers[0].0;
        let scale = Tensor::new(
            &[[[1f32], [1.0], [5.0], [5.0]], [[1.0], [1.0], [1.0], [1.0]]],
            &Device::Cpu,
        )
        .unwrap();
        p.varmap().data().lock().unwrap()["par.fc0.weight"]
            .set(&w.broadcast_mul(&scale).unwrap())
            .unwrap();
        let after = par.forward(&x).unwrap();
        let diff = (before - after).unwrap().abs().unwrap().max_all().unwrap();
        assert!(diff.to_scalar::<f32>().unwrap() < 1e-5);
        // Each group's weights have the default initialisation's expected norm √(2·3 / (3·4)).
        let g = par.weight(0).unwrap().reshape((2, 2, 6)).unwrap();
        let norms = g
            .sqr()
            .unwrap()
            .sum(2)
            .unwrap()
            .sqrt()
            .unwrap()
            .flatten_all()
            .unwrap();
        for v in norms.to_vec1::<f32>().unwrap() {
            assert!((v - 0.5f32.sqrt()).abs() < 1e-5, "{v}");
        }
        assert!(
            ParallelMlp::new(&p.pp("bad"), 2, 4, &[3], 1, Activation::Elu)
                .unwrap()
                .with_normalised_input_groups(3)
                .is_err()
        );
    }

    #[test]
    fn normalised_later_layers_have_fixed_column_norms() {
        let p = Params::new(VarMap::new(), Device::Cpu, 4);
        let par = ParallelMlp::new(&p.pp("par"), 2, 4, &[3], 2, Activation::Elu)
            .unwrap()
            .with_normalised_later_layers();
        let norms = par
            .weight(1)
            .unwrap()
            .sqr()
            .unwrap()
            .sum(1)
            .unwrap()
            .sqrt()
            .unwrap();
        for v in norms.flatten_all().unwrap().to_vec1::<f32>().unwrap() {
            assert!((v - (1.0f32 / 3.0).sqrt()).abs() < 1e-5, "{v}");
        }
        // The first layer is left alone.
        assert_eq!(
            par.weight(0)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap(),
            par.layers[0]
                .0
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
        );
    }
}

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
        Ok(Self { layers, activation })
    }

    /// `x`: `[n, B, in]` → `[n, B, out]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let last = self.layers.len() - 1;
        let mut h = x.clone();
        for (i, (w, b)) in self.layers.iter().enumerate() {
            h = super::linear::add_bias(&h.matmul(w)?, b)?;
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
}

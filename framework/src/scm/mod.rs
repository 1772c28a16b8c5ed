//! Structural causal model building blocks: a differentiable matrix inverse, the linear SCM
//! z = (I − Aᵀ)⁻¹ ε over concept nodes, and the acyclicity penalty of a weighted adjacency.

mod bijection;
mod inverse;
mod prior;

pub use bijection::{Bijection, BijectionConfig};
pub use inverse::inverse;
pub use prior::ScmPrior;

use crate::error::Result;
use candle_core::{DType, Tensor};

/// Linear SCM over `n` nodes with weighted adjacency `A` (`A[j][i] ≠ 0` means j → i):
/// z = Aᵀ z + ε, so z = (I − Aᵀ)⁻¹ ε. Nodes may carry a vector each: ε is `[B, n, k]`.
#[derive(Clone, Debug)]
pub struct LinearScm {
    pub a: Tensor,
}

impl LinearScm {
    pub fn new(a: Tensor) -> Self {
        Self { a }
    }

    pub fn n(&self) -> usize {
        self.a.dims()[0]
    }

    fn i_minus_at(&self) -> Result<Tensor> {
        let eye = Tensor::eye(self.n(), DType::F32, self.a.device())?;
        Ok((eye - self.a.t()?)?)
    }

    /// ε `[B, n, k]` → z `[B, n, k]`, mixing the node axis: z_b = (I − Aᵀ)⁻¹ ε_b.
    pub fn forward(&self, eps: &Tensor) -> Result<Tensor> {
        let c = inverse(&self.i_minus_at()?)?;
        Ok(c.broadcast_matmul(eps)?)
    }

    /// z `[B, n, k]` → ε = (I − Aᵀ) z.
    pub fn abduct(&self, z: &Tensor) -> Result<Tensor> {
        Ok(self.i_minus_at()?.broadcast_matmul(z)?)
    }
}

/// DAG-GNN / CausalVAE-code acyclicity measure h(A) = tr((I + A∘A / n)ⁿ) − n: zero iff A∘A has no cycle.
pub fn acyclicity(a: &Tensor) -> Result<Tensor> {
    let n = a.dims()[0];
    let eye = Tensor::eye(n, DType::F32, a.device())?;
    let m = (&eye + (a.sqr()? / n as f64)?)?;
    let mut p = m.clone();
    for _ in 1..n {
        p = p.matmul(&m)?;
    }
    let trace = (p * eye)?.sum_all()?;
    Ok((trace - n as f64)?)
}

/// Order of nodes in which every parent (|A[j][i]| > `threshold`) comes first; `None` if there is a cycle.
pub fn topological_order(adj: &[Vec<f32>], threshold: f32) -> Option<Vec<usize>> {
    let n = adj.len();
    let g = crate::data::CausalGraph {
        nodes: (0..n).map(|i| i.to_string()).collect(),
        adj: adj
            .iter()
            .map(|r| r.iter().map(|v| v.abs() > threshold).collect())
            .collect(),
    };
    g.topological_order()
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn t(v: &[[f32; 3]; 3]) -> Tensor {
        Tensor::new(v, &Device::Cpu).unwrap()
    }

    #[test]
    fn acyclicity_is_zero_for_dags_and_positive_for_cycles() {
        let dag = t(&[[0.0, 1.5, -0.3], [0.0, 0.0, 2.0], [0.0, 0.0, 0.0]]);
        assert!(acyclicity(&dag).unwrap().to_scalar::<f32>().unwrap().abs() < 1e-6);
        let cyc = t(&[[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]);
        assert!(acyclicity(&cyc).unwrap().to_scalar::<f32>().unwrap() > 0.1);
    }

    #[test]
    fn abduct_inverts_forward_and_roots_are_unchanged() {
        let a = t(&[[0.0, 0.7, 0.0], [0.0, 0.0, -1.2], [0.0, 0.0, 0.0]]);
        let scm = LinearScm::new(a);
        let eps = Tensor::new(&[[[1.0f32, 2.0], [0.5, -1.0], [3.0, 0.0]]], &Device::Cpu).unwrap();
        let z = scm.forward(&eps).unwrap();
        let back = scm.abduct(&z).unwrap();
        let err = test_support::max_abs_diff(&back, &eps);
        assert!(err < 1e-5);
        let z = z.to_vec3::<f32>().unwrap();
        assert_eq!(z[0][0], vec![1.0, 2.0]); // node 0 is a root
        assert!((z[0][1][0] - (0.5 + 0.7 * 1.0)).abs() < 1e-5); // z1 = ε1 + 0.7 z0
    }

    #[test]
    fn gradient_reaches_the_adjacency() {
        let a = Var::from_tensor(&t(&[[0.0, 0.5, 0.0], [0.0, 0.0, 0.5], [0.0, 0.0, 0.0]])).unwrap();
        let scm = LinearScm::new(a.as_tensor().clone());
        let eps = Tensor::ones((2, 3, 1), DType::F32, &Device::Cpu).unwrap();
        let loss = scm.forward(&eps).unwrap().sum_all().unwrap();
        let g = loss.backward().unwrap();
        let ga = g.get(a.as_tensor()).unwrap().to_vec2::<f32>().unwrap();
        // z2 = 1 + 0.5 (1 + 0.5) ⇒ ∂(Σz)/∂A[1][2] = B · z1 = 2 · 1.5
        assert!((ga[1][2] - 3.0).abs() < 1e-4, "{ga:?}");
    }
}

/// Helpers shared by the SCM modules' tests.
#[cfg(test)]
pub(crate) mod test_support {
    use candle_core::Tensor;

    /// max |a − b| over all elements.
    pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    }
}

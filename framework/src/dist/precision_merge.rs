//! The precision-weighted merge of diagonal Gaussian estimates of one variable: the product of the Gaussians,
//! renormalised. For experts N(μᵢ, σᵢ²) the result has precision τ = Σᵢ 1/σᵢ², mean (Σᵢ μᵢ/σᵢ²) / τ and variance
//! 1/τ. A Ladder VAE merges its bottom-up estimate with the top-down prior this way; a product of experts fuses
//! the posteriors of several modalities (with a N(0, I) prior expert if wanted) the same way, with more experts.

use super::DiagGaussian;
use crate::error::{Error, Result};
use candle_core::DType;

/// The precision-weighted merge of `experts` (at least one, all of one shape), computed in `dtype` (e.g. F64,
/// where many experts or very different precisions would lose digits in F32) and returned in the experts'
/// own dtype. Variances are taken as the experts give them ([`DiagGaussian::var`]): floor them first if needed.
pub fn precision_weighted_merge(experts: &[&DiagGaussian], dtype: DType) -> Result<DiagGaussian> {
    let Some(first) = experts.first() else {
        return Err(Error::msg(
            "a precision-weighted merge needs at least one expert",
        ));
    };
    let out_dtype = first.mean.dtype();
    let mut precision = None;
    let mut weighted = None;
    for e in experts {
        let p = e.var()?.to_dtype(dtype)?.recip()?;
        let m = (e.mean.to_dtype(dtype)? * &p)?;
        precision = Some(match precision {
            None => p,
            Some(sum) => (sum + p)?,
        });
        weighted = Some(match weighted {
            None => m,
            Some(sum) => (sum + m)?,
        });
    }
    let precision = precision.expect("one expert");
    let mean = (weighted.expect("one expert") / &precision)?;
    let var = precision.recip()?;
    DiagGaussian::from_var(mean.to_dtype(out_dtype)?, var.to_dtype(out_dtype)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor, Var};

    fn gaussian(mean: &[f32], var: &[f32]) -> DiagGaussian {
        let d = Device::Cpu;
        DiagGaussian::from_var(
            Tensor::new(mean, &d).unwrap(),
            Tensor::new(var, &d).unwrap(),
        )
        .unwrap()
    }

    fn values(t: &Tensor) -> Vec<f32> {
        t.to_vec1::<f32>().unwrap()
    }

    #[test]
    fn two_experts_match_the_closed_form() {
        // N(1, 1) · N(3, 3): τ = 1 + 1/3 = 4/3, μ = (1 + 3/3) / τ = 1.5, σ² = 0.75.
        // N(-2, 0.5) · N(4, 2): τ = 2.5, μ = (-4 + 2) / 2.5 = -0.8, σ² = 0.4.
        let a = gaussian(&[1.0, -2.0], &[1.0, 0.5]);
        let b = gaussian(&[3.0, 4.0], &[3.0, 2.0]);
        for dtype in [DType::F32, DType::F64] {
            let m = precision_weighted_merge(&[&a, &b], dtype).unwrap();
            assert_eq!(m.mean.dtype(), DType::F32);
            for (got, want) in values(&m.mean).iter().zip([1.5, -0.8]) {
                assert!((got - want).abs() < 1e-6, "{got} vs {want}");
            }
            for (got, want) in values(&m.var().unwrap()).iter().zip([0.75, 0.4]) {
                assert!((got - want).abs() < 1e-6, "{got} vs {want}");
            }
        }
    }

    #[test]
    fn one_expert_is_itself_and_more_experts_add_precision() {
        let a = gaussian(&[0.7], &[2.0]);
        let m = precision_weighted_merge(&[&a], DType::F32).unwrap();
        assert!((values(&m.mean)[0] - 0.7).abs() < 1e-7);
        assert!((values(&m.var().unwrap())[0] - 2.0).abs() < 1e-6);
        // Three equal experts: the same mean, a third of the variance.
        let m = precision_weighted_merge(&[&a, &a, &a], DType::F64).unwrap();
        assert!((values(&m.mean)[0] - 0.7).abs() < 1e-6);
        assert!((values(&m.var().unwrap())[0] - 2.0 / 3.0).abs() < 1e-6);
        assert!(precision_weighted_merge(&[], DType::F32)
            .unwrap_err()
            .to_string()
            .contains("at least one expert"));
    }

    #[test]
    fn gradients_reach_every_expert_in_proportion_to_its_precision() {
        let d = Device::Cpu;
        let mu_a = Var::new(&[1.0f32], &d).unwrap();
        let mu_b = Var::new(&[3.0f32], &d).unwrap();
        let a = DiagGaussian::from_var(
            mu_a.as_tensor().clone(),
            Tensor::new(&[1.0f32], &d).unwrap(),
        )
        .unwrap();
        let b = DiagGaussian::from_var(
            mu_b.as_tensor().clone(),
            Tensor::new(&[3.0f32], &d).unwrap(),
        )
        .unwrap();
        let m = precision_weighted_merge(&[&a, &b], DType::F64).unwrap();
        let grads = m.mean.sum_all().unwrap().backward().unwrap();
        // ∂μ/∂μᵢ = (1/σᵢ²) / τ: 0.75 and 0.25.
        let ga = grads.get(&mu_a).unwrap().to_vec1::<f32>().unwrap()[0];
        let gb = grads.get(&mu_b).unwrap().to_vec1::<f32>().unwrap()[0];
        assert!(
            (ga - 0.75).abs() < 1e-6 && (gb - 0.25).abs() < 1e-6,
            "{ga} {gb}"
        );
    }
}

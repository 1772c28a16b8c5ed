//! Diagonal Gaussian N(μ, diag σ²) parameterised by mean and log-variance (or, for parametrisations that give
//! the variance itself, by mean and variance, with the log-variance derived from it).

use crate::error::Result;
use crate::rng::Rng;
use candle_core::{Tensor, D};

/// Log-variances are clamped to this range before exponentiation, so one bad batch cannot overflow.
const LOGVAR_MIN: f64 = -30.0;
const LOGVAR_MAX: f64 = 20.0;

#[derive(Clone, Debug)]
pub struct DiagGaussian {
    pub mean: Tensor,
    pub logvar: Tensor,
    /// σ² as the parametrisation computed it ([`DiagGaussian::from_var`]), so the sample and the densities use
    /// it as is rather than exp(log σ²).
    var: Option<Tensor>,
}

impl DiagGaussian {
    pub fn new(mean: Tensor, logvar: Tensor) -> Result<Self> {
        let logvar = logvar.clamp(LOGVAR_MIN, LOGVAR_MAX)?;
        Ok(Self {
            mean,
            logvar,
            var: None,
        })
    }

    /// From the mean and the variance itself (e.g. softplus(ρ) + 1e-4): [`DiagGaussian::var`] and
    /// [`DiagGaussian::std`] (hence [`DiagGaussian::rsample`]) use `var` as given; `logvar` is log σ², clamped.
    pub fn from_var(mean: Tensor, var: Tensor) -> Result<Self> {
        let logvar = var.log()?.clamp(LOGVAR_MIN, LOGVAR_MAX)?;
        Ok(Self {
            mean,
            logvar,
            var: Some(var),
        })
    }

    /// Unit variance around `mean`.
    pub fn unit(mean: Tensor) -> Result<Self> {
        let logvar = mean.zeros_like()?;
        Ok(Self {
            mean,
            logvar,
            var: None,
        })
    }

    /// σ²: the variance the Gaussian was made from, or exp(log σ²).
    pub fn var(&self) -> Result<Tensor> {
        match &self.var {
            Some(v) => Ok(v.clone()),
            None => Ok(self.logvar.exp()?),
        }
    }

    /// σ: √σ² for a Gaussian made from its variance, exp(½ log σ²) otherwise.
    pub fn std(&self) -> Result<Tensor> {
        match &self.var {
            Some(v) => Ok(v.sqrt()?),
            None => Ok((&self.logvar * 0.5)?.exp()?),
        }
    }

    /// Reparameterised sample μ + σ ⊙ ε.
    pub fn rsample(&self, rng: &mut Rng) -> Result<Tensor> {
        let eps = rng.normal(self.mean.dims(), self.mean.device())?;
        Ok((&self.mean + (self.std()? * eps)?)?)
    }

    /// KL(self || N(0, I)) summed over the last dimension: ½ Σ (μ² + σ² − log σ² − 1).
    pub fn kl_std_normal(&self) -> Result<Tensor> {
        let t = ((self.mean.sqr()? + self.logvar.exp()?)? - &self.logvar)?;
        Ok(((t - 1.0)?.sum(D::Minus1)? * 0.5)?)
    }

    /// KL(self || other) between diagonal Gaussians, summed over the last dimension.
    pub fn kl(&self, other: &DiagGaussian) -> Result<Tensor> {
        Ok(self.kl_per_unit(other)?.sum(D::Minus1)?)
    }

    /// KL(self || other) of every dimension, elementwise: ½ (σ²/σ₀² + (μ − μ₀)²/σ₀² − log(σ²/σ₀²) − 1).
    pub fn kl_per_unit(&self, other: &DiagGaussian) -> Result<Tensor> {
        let log_ratio = (&self.logvar - &other.logvar)?;
        let diff2 = ((&self.mean - &other.mean)?.sqr()? * (other.logvar.neg()?.exp()?))?;
        let t = ((log_ratio.exp()? + diff2)? - log_ratio)?;
        Ok(((t - 1.0)? * 0.5)?)
    }

    /// log N(x; μ, σ²) summed over the last dimension.
    pub fn log_prob(&self, x: &Tensor) -> Result<Tensor> {
        let z2 = ((x - &self.mean)?.sqr()? * self.logvar.neg()?.exp()?)?;
        let t = ((z2 + &self.logvar)? + (2.0 * std::f64::consts::PI).ln())?;
        Ok((t.sum(D::Minus1)? * -0.5)?)
    }

    /// A reparameterised draw, or the mean without `rng`.
    pub fn draw(&self, rng: Option<&mut Rng>) -> Result<Tensor> {
        match rng {
            Some(rng) => self.rsample(rng),
            None => Ok(self.mean.clone()),
        }
    }

    /// Gaussians over consecutive blocks of the last axis joined into one (e.g. latent layers, bottom first).
    pub fn concat(parts: &[DiagGaussian]) -> Result<DiagGaussian> {
        let means: Vec<&Tensor> = parts.iter().map(|q| &q.mean).collect();
        let vars = parts.iter().map(|q| q.var()).collect::<Result<Vec<_>>>()?;
        let last = parts.first().map_or(1, |q| q.mean.rank().saturating_sub(1));
        DiagGaussian::from_var(Tensor::cat(&means, last)?, Tensor::cat(&vars, last)?)
    }

    /// Each row repeated `n` times, the copies of a row adjacent: `[B, d]` → `[B·n, d]` (itself for n = 1).
    pub fn repeat_rows(&self, n: usize) -> Result<DiagGaussian> {
        if n == 1 {
            return Ok(self.clone());
        }
        let rep = |t: &Tensor| -> Result<Tensor> {
            let (b, d) = t.dims2()?;
            Ok(t.unsqueeze(1)?
                .broadcast_as((b, n, d))?
                .reshape((b * n, d))?)
        };
        Ok(DiagGaussian {
            mean: rep(&self.mean)?,
            logvar: rep(&self.logvar)?,
            var: self.var.as_ref().map(rep).transpose()?,
        })
    }
}

/// softplus(x) = log(1 + eˣ), written stably as max(x, 0) + log(1 + e^{−|x|}).
pub fn softplus(x: &Tensor) -> Result<Tensor> {
    let relu = x.relu()?;
    let tail = (x.abs()?.neg()?.exp()? + 1.0)?.log()?;
    Ok((relu + tail)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn a_gaussian_from_its_variance_keeps_it_and_agrees_with_the_log_form() {
        let d = &Device::Cpu;
        let m = Tensor::new(&[[0.5f32, -1.0]], d).unwrap();
        let v = Tensor::new(&[[0.25f32, 2.0]], d).unwrap();
        let q = DiagGaussian::from_var(m.clone(), v.clone()).unwrap();
        assert_eq!(q.var().unwrap().to_vec2::<f32>().unwrap(), [[0.25, 2.0]]);
        assert_eq!(
            q.std().unwrap().to_vec2::<f32>().unwrap(),
            [[0.5, 2f32.sqrt()]]
        );
        let r = DiagGaussian::new(m, v.log().unwrap()).unwrap();
        let (a, b) = (q.kl_std_normal().unwrap(), r.kl_std_normal().unwrap());
        let (a, b) = (a.to_vec1::<f32>().unwrap(), b.to_vec1::<f32>().unwrap());
        assert!((a[0] - b[0]).abs() < 1e-6, "{a:?} vs {b:?}");
        let sp = softplus(&Tensor::new(&[-30f32, 0.0, 30.0], d).unwrap())
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert!(
            (sp[1] - 2f32.ln()).abs() < 1e-7 && sp[2] == 30.0 && sp[0] >= 0.0,
            "{sp:?}"
        );
    }

    fn g(m: &[f32], lv: &[f32]) -> DiagGaussian {
        let d = &Device::Cpu;
        DiagGaussian::new(
            Tensor::new(m, d).unwrap().unsqueeze(0).unwrap(),
            Tensor::new(lv, d).unwrap().unsqueeze(0).unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn kl_to_standard_normal_matches_closed_form_and_general_kl() {
        let q = g(&[0.5, -1.0], &[0.2, -0.3]);
        let expect: f32 = [(0.5f32, 0.2f32), (-1.0, -0.3)]
            .iter()
            .map(|(m, lv)| 0.5 * (m * m + lv.exp() - lv - 1.0))
            .sum();
        let a = q.kl_std_normal().unwrap().to_vec1::<f32>().unwrap()[0];
        let b = q
            .kl(&g(&[0.0, 0.0], &[0.0, 0.0]))
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()[0];
        assert!((a - expect).abs() < 1e-6 && (b - expect).abs() < 1e-6);
        assert!(q.kl(&q).unwrap().to_vec1::<f32>().unwrap()[0].abs() < 1e-6);
    }

    #[test]
    fn repeated_rows_keep_each_row_together() {
        let d = &Device::Cpu;
        let q = DiagGaussian::from_var(
            Tensor::new(&[[1f32, 2.0], [3.0, 4.0]], d).unwrap(),
            Tensor::new(&[[0.5f32, 0.5], [2.0, 2.0]], d).unwrap(),
        )
        .unwrap();
        let r = q.repeat_rows(3).unwrap();
        let mean: Vec<Vec<f32>> = r.mean.to_vec2().unwrap();
        assert_eq!(mean[2], vec![1.0, 2.0]);
        assert_eq!(mean[3], vec![3.0, 4.0]);
        let var: Vec<Vec<f32>> = r.var().unwrap().to_vec2().unwrap();
        assert_eq!(var[5], vec![2.0, 2.0]);
    }
}

//! A factor regressor: a small conv net that reads a simulator's true factors off an image, the measuring
//! instrument of the intervention evaluator.
//!
//! It trains on scenes rendered from factors drawn *independently* (uniform over each factor's range in the data),
//! fresh every step. On the data's own SCM some factors are functions of others (the pendulum's shadow follows from
//! the pendulum and the light), so a regressor trained on real images could read them from their causes; trained on
//! independent factors it has to read each factor from its own pixels, which is what measuring the effect of
//! do(shadow = v) needs.

use crate::data::{make_batch, Dataset, Split};
use crate::error::{Error, IoContext, Result};
use crate::nn::{Activation, ConvDownStack, Mlp, Params};
use crate::optim::{AdamConfig, AdamW};
use crate::rng::Rng;
use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// How the regressor is built and trained. Part of the cache key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegressorConfig {
    /// Optimisation steps, each on a fresh batch of renders.
    pub steps: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub seed: u64,
    /// Channels of the stride-2 conv layers (at most one per halving of the image side).
    pub channels: Vec<usize>,
    /// Width of the hidden layer of the head.
    pub hidden: usize,
}

impl Default for RegressorConfig {
    fn default() -> Self {
        Self {
            steps: 3000,
            batch_size: 64,
            lr: 1e-3,
            seed: 0,
            channels: vec![32, 32, 64, 64],
            hidden: 256,
        }
    }
}

/// Conv stack + MLP head; outputs factors in data units.
pub struct FactorRegressor {
    varmap: VarMap,
    conv: ConvDownStack,
    head: Mlp,
    /// Factor ranges: standardised target = (factor − center) / half_range.
    center: Tensor,
    half_range: Tensor,
    lo: Vec<f32>,
    hi: Vec<f32>,
}

impl FactorRegressor {
    /// An untrained regressor sized for `data` (images with factors).
    pub fn new(data: &dyn Dataset, cfg: &RegressorConfig, device: &Device) -> Result<Self> {
        let spec = data.spec();
        if !spec.is_image() {
            return Err(Error::Data(
                "the factor regressor reads images; this dataset's observations are vectors".into(),
            ));
        }
        let k = spec.factor_names.len();
        let all = data.split(Split::All);
        let factors = data
            .factors(all)
            .ok_or_else(|| Error::Data("the factor regressor needs true factors".into()))?;
        let (mut lo, mut hi) = (vec![f32::INFINITY; k], vec![f32::NEG_INFINITY; k]);
        for row in factors.chunks_exact(k) {
            for c in 0..k {
                lo[c] = lo[c].min(row[c]);
                hi[c] = hi[c].max(row[c]);
            }
        }
        let center: Vec<f32> = (0..k).map(|c| 0.5 * (lo[c] + hi[c])).collect();
        let half: Vec<f32> = (0..k).map(|c| (0.5 * (hi[c] - lo[c])).max(1e-6)).collect();
        let (c_in, side) = (spec.obs_shape[0], spec.obs_shape[1]);
        // As many halvings as the side allows, down to at least 2 pixels.
        let max_layers = (side.trailing_zeros() as usize).min(side.ilog2() as usize - 1);
        let channels = &cfg.channels[..cfg.channels.len().min(max_layers)];
        if channels.is_empty() {
            return Err(Error::Data(format!(
                "the factor regressor needs an even image side, got {side}"
            )));
        }
        let varmap = VarMap::new();
        let p = Params::new(varmap.clone(), device.clone(), cfg.seed);
        let conv = ConvDownStack::new(&p.pp("conv"), c_in, channels, Activation::Relu)?;
        let out_side = conv.output_size(side)?;
        let flat = channels[channels.len() - 1] * out_side * out_side;
        let head = Mlp::new(&p.pp("head"), flat, &[cfg.hidden], k, Activation::Relu)?;
        Ok(Self {
            varmap,
            conv,
            head,
            center: Tensor::from_vec(center, (1, k), device)?,
            half_range: Tensor::from_vec(half, (1, k), device)?,
            lo,
            hi,
        })
    }

    fn forward_standardised(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.conv.forward(x)?;
        self.head.forward(&h.flatten_from(1)?)
    }

    /// Factors read off images `[B, C, H, W]` → `[B, k]` in data units.
    pub fn predict(&self, x: &Tensor) -> Result<Tensor> {
        let s = self.forward_standardised(x)?;
        Ok(s.broadcast_mul(&self.half_range)?
            .broadcast_add(&self.center)?)
    }

    /// Trains on renders of independently drawn factors; returns the last 100 steps' mean loss (standardised MSE).
    pub fn fit(
        &mut self,
        data: &dyn Dataset,
        cfg: &RegressorConfig,
        device: &Device,
    ) -> Result<f64> {
        if !data.can_render() {
            return Err(Error::Data(
                "the factor regressor trains on simulator renders; this dataset has no renderer"
                    .into(),
            ));
        }
        let k = self.lo.len();
        let obs_shape = data.spec().obs_shape.clone();
        let opt_cfg = AdamConfig {
            lr: cfg.lr,
            ..AdamConfig::default()
        };
        let mut opt = AdamW::new(crate::method::named_vars(&self.varmap), opt_cfg)?;
        let mut rng = Rng::derived(cfg.seed, 0x0_4AC1E);
        let mut tail = Vec::new();
        let b = cfg.batch_size.max(1);
        for step in 0..cfg.steps {
            let f: Vec<f32> = rng
                .uniform_vec(b * k, 0.0, 1.0)
                .into_iter()
                .enumerate()
                .map(|(i, u)| self.lo[i % k] + u * (self.hi[i % k] - self.lo[i % k]))
                .collect();
            let pixels = data.render(&f)?;
            let mut shape = vec![b];
            shape.extend_from_slice(&obs_shape);
            let x = Tensor::from_vec(pixels, shape, device)?;
            let target = Tensor::from_vec(f, (b, k), device)?
                .broadcast_sub(&self.center)?
                .broadcast_div(&self.half_range)?;
            let loss = (self.forward_standardised(&x)? - target)?
                .sqr()?
                .mean_all()?;
            let value = loss.to_scalar::<f32>()?;
            if !value.is_finite() {
                return Err(Error::NonFinite {
                    step,
                    term: "factor regressor loss".into(),
                    value,
                });
            }
            if step + 100 >= cfg.steps {
                tail.push(value as f64);
            }
            opt.step(&loss.backward()?)?;
        }
        Ok(tail.iter().sum::<f64>() / tail.len().max(1) as f64)
    }

    /// Mean absolute error per factor on the real images of `split` (the instrument's own error).
    pub fn mae(&self, data: &dyn Dataset, split: Split, device: &Device) -> Result<Vec<f64>> {
        let k = self.lo.len();
        let rows = data.split(split);
        let mut sums = vec![0f64; k];
        let mut scratch = Vec::new();
        for chunk in rows.chunks(256) {
            let batch = make_batch(data, chunk, device, &mut scratch)?;
            let truth = data.factors(chunk).unwrap_or_default();
            let pred = self.predict(&batch.x)?.flatten_all()?.to_vec1::<f32>()?;
            for (i, (p, t)) in pred.iter().zip(&truth).enumerate() {
                sums[i % k] += (p - t).abs() as f64;
            }
        }
        Ok(sums
            .into_iter()
            .map(|s| s / rows.len().max(1) as f64)
            .collect())
    }

    /// Writes the weights atomically (safetensors).
    pub fn save(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).at(dir)?;
        }
        let tmp = path.with_extension("safetensors.tmp");
        self.varmap.save(&tmp)?;
        std::fs::rename(&tmp, path).at(path)
    }

    pub fn load(&mut self, path: &Path) -> Result<()> {
        if !path.exists() {
            return Err(Error::Data(format!("no regressor at {}", path.display())));
        }
        self.varmap.load(path)?;
        Ok(())
    }

    /// The regressor cached at `dir/regressor-{key}.safetensors`, trained and cached first if absent. `key`
    /// identifies the data and the regressor config (see [`cache_key`]).
    pub fn load_or_train(
        data: &dyn Dataset,
        cfg: &RegressorConfig,
        device: &Device,
        dir: &Path,
        key: &str,
    ) -> Result<Self> {
        let mut reg = Self::new(data, cfg, device)?;
        let path = dir.join(format!("regressor-{key}.safetensors"));
        if path.exists() {
            log::info!("factor regressor: loading {}", path.display());
            reg.load(&path)?;
        } else {
            log::info!(
                "factor regressor: training {} steps on independent renders (cached at {})",
                cfg.steps,
                path.display()
            );
            let t = std::time::Instant::now();
            let loss = reg.fit(data, cfg, device)?;
            log::info!(
                "factor regressor: trained in {:.1}s, final loss {loss:.5}",
                t.elapsed().as_secs_f64()
            );
            reg.save(&path)?;
        }
        Ok(reg)
    }
}

/// A stable 64-bit FNV-1a hash of `parts`, as 16 hex digits (cache file names must not change between builds,
/// which rules out `std`'s hasher).
pub fn cache_key(parts: &[&str]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain(std::iter::once(0)) {
            h ^= b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_key_is_stable_and_separates_inputs() {
        assert_eq!(cache_key(&["a", "b"]), cache_key(&["a", "b"]));
        assert_ne!(cache_key(&["ab", ""]), cache_key(&["a", "b"]));
        assert_eq!(cache_key(&[]), "cbf29ce484222325");
    }
}

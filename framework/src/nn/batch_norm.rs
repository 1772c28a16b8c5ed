//! Batch normalisation (Ioffe & Szegedy, 2015) as `torch.nn.BatchNorm1d/2d`: per-channel affine γ, β
//! (trained), running mean and variance (saved buffers, never trained), momentum 0.1, ε = 1e-5.
//!
//! In training mode a layer normalises with the batch's statistics (biased variance) and moves the running
//! averages towards them (unbiased variance, as PyTorch); in evaluation mode it uses the running averages, so
//! an image encodes the same alone as in a batch. Which mode applies is a [`TrainMode`] flag shared by all
//! layers of a module, switched by the method around its update step.
//!
//! On the CPU in f32 the per-channel sums and scales run as custom ops ([`super::channel_bias`]'s sum and a
//! channel scale here): candle's broadcast ops take their gradients with a div/mod per element, slower than
//! the convolutions they follow.

use super::channel_bias::ChannelSum;
use super::{add_channel_bias, Init, Params};
use crate::error::{Error, Result};
use candle_core::{CpuStorage, DType, Device, Layout, Shape, Tensor, Var};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Training (`true`) or evaluation (`false`, the initial state) mode, shared by the layers of one module.
#[derive(Clone, Debug, Default)]
pub struct TrainMode(Arc<AtomicBool>);

impl TrainMode {
    pub fn set(&self, training: bool) {
        self.0.store(training, Ordering::Relaxed);
    }

    pub fn is_training(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// BatchNorm over axis 1 of `[B, C]` (BatchNorm1d) or `[B, C, H, W]` (BatchNorm2d) inputs.
#[derive(Clone, Debug)]
pub struct BatchNorm {
    weight: Tensor,
    bias: Tensor,
    running_mean: Var,
    running_var: Var,
    momentum: f64,
    eps: f64,
    mode: TrainMode,
}

impl BatchNorm {
    /// PyTorch's defaults: γ = 1, β = 0, running mean 0 and variance 1, momentum 0.1, ε = 1e-5.
    pub fn new(p: &Params, channels: usize, mode: &TrainMode) -> Result<Self> {
        Self::with_momentum(p, channels, 0.1, mode)
    }

    /// `momentum`: the weight of the batch statistics in each running-average update.
    pub fn with_momentum(
        p: &Params,
        channels: usize,
        momentum: f64,
        mode: &TrainMode,
    ) -> Result<Self> {
        Ok(Self {
            weight: p.get(&[channels], "weight", Init::Const(1.0))?,
            bias: p.get(&[channels], "bias", Init::Const(0.0))?,
            running_mean: p.buffer(&[channels], "running_mean", Init::Const(0.0))?,
            running_var: p.buffer(&[channels], "running_var", Init::Const(1.0))?,
            momentum,
            eps: 1e-5,
            mode: mode.clone(),
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let c = self.weight.elem_count();
        let x4 = match x.dims() {
            &[b, ch] if ch == c => x.reshape((b, c, 1, 1))?,
            &[_, ch, _, _] if ch == c => x.clone(),
            d => {
                return Err(Error::Shape {
                    context: "BatchNorm input".into(),
                    expected: format!("[B, {c}] or [B, {c}, H, W]"),
                    got: format!("{d:?}"),
                })
            }
        };
        let y = if self.mode.is_training() {
            self.forward_train(&x4)?
        } else {
            // Running statistics are state, not part of the graph.
            let rm = self.running_mean.as_tensor().detach();
            let rv = self.running_var.as_tensor().detach();
            let scale = (&self.weight * (rv + self.eps)?.sqrt()?.recip()?)?;
            let shift = (&self.bias - (rm * &scale)?)?;
            add_channel_bias(&channel_scale(&x4, &scale)?, &shift)?
        };
        Ok(y.reshape(x.shape())?)
    }

    fn forward_train(&self, x: &Tensor) -> Result<Tensor> {
        let (b, _, h, w) = x.dims4()?;
        let n = b * h * w;
        if n < 2 {
            return Err(Error::Shape {
                context: "BatchNorm in training mode".into(),
                expected: "more than one value per channel (batch × pixels ≥ 2)".into(),
                got: format!("{:?}", x.dims()),
            });
        }
        let mean = (channel_sum(x)? / n as f64)?;
        let centred = add_channel_bias(x, &mean.neg()?)?;
        let var = (channel_sum(&centred.sqr()?)? / n as f64)?;
        let scale = (&self.weight * (&var + self.eps)?.sqrt()?.recip()?)?;
        let y = add_channel_bias(&channel_scale(&centred, &scale)?, &self.bias)?;
        let m = self.momentum;
        let update = |stat: &Var, batch: Tensor| -> Result<()> {
            let new = ((stat.as_tensor().detach() * (1.0 - m))? + (batch.detach() * m)?)?;
            Ok(stat.set(&new)?)
        };
        update(&self.running_mean, mean)?;
        update(&self.running_var, (var * (n as f64 / (n - 1) as f64))?)?;
        Ok(y)
    }
}

fn fast(x: &Tensor) -> bool {
    matches!(x.device(), Device::Cpu) && x.dtype() == DType::F32 && x.rank() == 4
}

/// Per-channel sums `[C]` of `[B, C, H, W]`.
fn channel_sum(x: &Tensor) -> Result<Tensor> {
    if fast(x) {
        return Ok(x.contiguous()?.apply_op1(ChannelSum)?);
    }
    Ok(x.sum((0, 2, 3))?)
}

/// `x` `[B, C, H, W]` times `a` `[C]` in every channel.
fn channel_scale(x: &Tensor, a: &Tensor) -> Result<Tensor> {
    if fast(x) && a.dtype() == DType::F32 && a.dims() == [x.dims()[1]] {
        return Ok(x.contiguous()?.apply_op2(&a.contiguous()?, ChannelScale)?);
    }
    Ok(x.broadcast_mul(&a.reshape((1, a.elem_count(), 1, 1))?)?)
}

/// `(x [B, C, H, W], a [C])` → `x · a` per channel; backward: `g · a` and the channel sums of `g · x`.
struct ChannelScale;

impl candle_core::CustomOp2 for ChannelScale {
    fn name(&self) -> &'static str {
        "carve-channel-scale"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let &[_, c, h, w] = l1.dims() else {
            candle_core::bail!("{}: expected a rank-4 tensor", self.name())
        };
        if l2.dims() != [c] {
            candle_core::bail!("{}: expected a scale of shape [{c}]", self.name())
        }
        let x = crate::cpu::contiguous_f32(s1, l1, self.name())?;
        let a = crate::cpu::contiguous_f32(s2, l2, self.name())?;
        let mut y = Vec::with_capacity(x.len());
        if h * w > 0 {
            for (i, plane) in x.chunks_exact(h * w).enumerate() {
                let s = a[i % c];
                y.extend(plane.iter().map(|v| v * s));
            }
        }
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        a: &Tensor,
        _y: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let g = grad.contiguous()?;
        let gx = x
            .track_op()
            .then(|| g.apply_op2(a, ChannelScale))
            .transpose()?;
        let ga = a
            .track_op()
            .then(|| (&g * x)?.apply_op1(ChannelSum))
            .transpose()?;
        Ok((gx, ga))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_nn::VarMap;

    fn flat(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    }

    fn close(a: &[f32], b: &[f32], tol: f32) {
        assert_eq!(a.len(), b.len());
        for (u, v) in a.iter().zip(b) {
            assert!((u - v).abs() <= tol, "{u} vs {v}\n{a:?}\n{b:?}");
        }
    }

    #[test]
    fn training_normalises_with_batch_statistics_and_updates_running_ones() {
        let p = Params::new(VarMap::new(), Device::Cpu, 0);
        let mode = TrainMode::default();
        let bn = BatchNorm::new(&p.pp("bn"), 2, &mode).unwrap();
        // Channel 0: 1, 2, 3, 4 (mean 2.5, biased var 1.25, unbiased 5/3); channel 1: 0, 0, 2, 2 (1, 1, 4/3).
        let x = Tensor::new(
            &[[[[1f32, 2.0]], [[0.0, 0.0]]], [[[3.0, 4.0]], [[2.0, 2.0]]]],
            &Device::Cpu,
        )
        .unwrap();
        mode.set(true);
        let y = bn.forward(&x).unwrap();
        let s0 = (1.25f32 + 1e-5).sqrt();
        let s1 = (1f32 + 1e-5).sqrt();
        let want = [
            -1.5 / s0,
            -0.5 / s0,
            -1.0 / s1,
            -1.0 / s1,
            0.5 / s0,
            1.5 / s0,
            1.0 / s1,
            1.0 / s1,
        ];
        close(&flat(&y), &want, 1e-5);
        close(&flat(bn.running_mean.as_tensor()), &[0.25, 0.1], 1e-6);
        close(
            &flat(bn.running_var.as_tensor()),
            &[0.9 + 0.1 * 5.0 / 3.0, 0.9 + 0.1 * 4.0 / 3.0],
            1e-6,
        );
        // Evaluation uses the running statistics and leaves them alone.
        mode.set(false);
        let y = bn.forward(&x).unwrap();
        let (m, v) = (
            flat(bn.running_mean.as_tensor()),
            flat(bn.running_var.as_tensor()),
        );
        let xs = flat(&x);
        let want: Vec<f32> = xs
            .iter()
            .enumerate()
            .map(|(i, x)| {
                let c = (i / 2) % 2;
                (x - m[c]) / (v[c] + 1e-5).sqrt()
            })
            .collect();
        close(&flat(&y), &want, 1e-5);
        assert_eq!(flat(bn.running_mean.as_tensor()), m);
    }

    #[test]
    fn batchnorm1d_matches_the_same_values_as_channels() {
        let p = Params::new(VarMap::new(), Device::Cpu, 0);
        let mode = TrainMode::default();
        mode.set(true);
        let bn = BatchNorm::new(&p.pp("bn"), 2, &mode).unwrap();
        let x = Tensor::new(&[[1f32, 0.0], [3.0, 2.0]], &Device::Cpu).unwrap();
        let y = bn.forward(&x).unwrap();
        assert_eq!(y.dims(), &[2, 2]);
        let s = (1f32 + 1e-5).sqrt();
        close(&flat(&y), &[-1.0 / s, -1.0 / s, 1.0 / s, 1.0 / s], 1e-5);
        // One value per channel cannot be normalised in training mode.
        let one = Tensor::new(&[[1f32, 0.0]], &Device::Cpu).unwrap();
        assert!(bn.forward(&one).is_err());
        assert!(bn
            .forward(&Tensor::zeros((2, 3), DType::F32, &Device::Cpu).unwrap())
            .is_err());
    }

    /// The custom ops (f32 on the CPU) and the tensor-op path other devices and dtypes take (here f64) agree.
    #[test]
    fn custom_ops_match_the_portable_path() {
        let d = &Device::Cpu;
        let x = Tensor::randn(0f32, 1f32, (2, 3, 4, 5), d).unwrap();
        let a = Tensor::new(&[0.5f32, -2.0, 3.0], d).unwrap();
        let f64s = |t: &Tensor| t.to_dtype(DType::F64).unwrap();
        let back = |t: Tensor| flat(&t.to_dtype(DType::F32).unwrap());
        close(
            &flat(&channel_sum(&x).unwrap()),
            &back(channel_sum(&f64s(&x)).unwrap()),
            1e-4,
        );
        close(
            &flat(&channel_scale(&x, &a).unwrap()),
            &back(channel_scale(&f64s(&x), &f64s(&a)).unwrap()),
            1e-6,
        );
    }

    /// The running statistics are saved and loaded with the parameters (checkpoints).
    #[test]
    fn running_statistics_survive_a_save_load_round_trip() {
        let d = &Device::Cpu;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bn.safetensors");
        let x = Tensor::randn(0f32, 1f32, (4, 3, 2, 2), d).unwrap();
        let build = |seed: u64| {
            let varmap = VarMap::new();
            let mode = TrainMode::default();
            let bn = BatchNorm::new(
                &Params::new(varmap.clone(), d.clone(), seed).pp("bn"),
                3,
                &mode,
            )
            .unwrap();
            (varmap, mode, bn)
        };
        let (saved, mode, bn) = build(0);
        mode.set(true);
        for _ in 0..3 {
            bn.forward(&((&x * 2.0).unwrap() + 1.0).unwrap()).unwrap();
        }
        mode.set(false);
        let want = flat(&bn.forward(&x).unwrap());
        saved.save(&file).unwrap();
        let (mut loaded, _, fresh) = build(1);
        assert_ne!(flat(&fresh.forward(&x).unwrap()), want);
        loaded.load(&file).unwrap();
        assert_eq!(flat(&fresh.forward(&x).unwrap()), want);
    }

    /// Values and gradients (input, γ, β) of the CPU custom-op path equal candle's broadcast ops, and the
    /// running statistics receive no gradient.
    #[test]
    fn gradients_match_the_broadcast_formula() {
        let d = &Device::Cpu;
        let x0 = Tensor::randn(0f32, 1f32, (3, 4, 5, 6), d).unwrap();
        let r = Tensor::randn(0f32, 1f32, (3, 4, 5, 6), d).unwrap();
        let varmap = VarMap::new();
        let p = Params::new(varmap.clone(), d.clone(), 1);
        let mode = TrainMode::default();
        mode.set(true);
        let bn = BatchNorm::new(&p.pp("bn"), 4, &mode).unwrap();
        // Non-trivial γ, β.
        let gv = Tensor::new(&[0.5f32, 2.0, -1.0, 1.5], d).unwrap();
        varmap.clone().set_one("bn.weight", &gv).unwrap();
        varmap
            .clone()
            .set_one(
                "bn.bias",
                Tensor::new(&[0.1f32, -0.2, 0.3, 0.0], d).unwrap(),
            )
            .unwrap();
        let x = Var::from_tensor(&x0).unwrap();
        let g = (bn.forward(&x).unwrap() * &r)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let data = varmap.data().lock().unwrap();
        let (w, b) = (data["bn.weight"].as_tensor(), data["bn.bias"].as_tensor());
        assert!(g.get(data["bn.running_mean"].as_tensor()).is_none());
        assert!(g.get(data["bn.running_var"].as_tensor()).is_none());
        // Reference: candle's broadcast ops on fresh leaves.
        let (xr, wr, br) = (
            Var::from_tensor(&x0).unwrap(),
            Var::from_tensor(w).unwrap(),
            Var::from_tensor(b).unwrap(),
        );
        let mean = xr.mean_keepdim((0, 2, 3)).unwrap();
        let xc = xr.broadcast_sub(&mean).unwrap();
        let var = xc.sqr().unwrap().mean_keepdim((0, 2, 3)).unwrap();
        let y = xc
            .broadcast_div(&(var + 1e-5).unwrap().sqrt().unwrap())
            .unwrap()
            .broadcast_mul(&wr.reshape((1, 4, 1, 1)).unwrap())
            .unwrap()
            .broadcast_add(&br.reshape((1, 4, 1, 1)).unwrap())
            .unwrap();
        let gr = (y * &r).unwrap().sum_all().unwrap().backward().unwrap();
        for (name, ours, want) in [
            ("x", g.get(&x), gr.get(&xr)),
            ("weight", g.get(w), gr.get(&wr)),
            ("bias", g.get(b), gr.get(&br)),
        ] {
            let (a, b) = (flat(ours.unwrap()), flat(want.unwrap()));
            let scale = b.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
            for (u, v) in a.iter().zip(&b) {
                assert!((u - v).abs() <= 1e-4 * scale, "d{name}: {u} vs {v}");
            }
        }
    }
}

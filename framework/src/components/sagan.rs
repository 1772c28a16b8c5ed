//! DEAR's generator (docs/methods/dear.md; the code's `sagan.py::Generator` with `dec_dist implicit`):
//! SN-Linear k → 16c·4·4, reshape, noise → residual up-blocks (BN-ReLU-upsample-SNconv3×3-noise-BN-ReLU-
//! SNconv3×3-noise, shortcut upsample-SNconv1×1), self-attention one level below the output resolution →
//! BN → ReLU → SNconv3×3 → tanh. With c = `conv_dim` = 32 at 64×64: 512 → 512 (8²) → 256 (16²) → 128 (32²),
//! attention, → 64 (64²) → 3.
//!
//! Output range: the data are images in [0, 1] while the code's generator draws tanh in [−1, 1] (its
//! discriminator then compares the two). Here the image is (tanh(h) + 1) / 2, so generated and real images
//! share the data's range. `decode` returns the pre-activation h; since (tanh h + 1)/2 = sigmoid(2h), `nll` is
//! the Bernoulli likelihood with logits 2h, the one whose mean is that image.

use crate::components::{BuildContext, Decoder, DecoderConfig};
use crate::dist::Likelihood;
use crate::error::{Error, Result};
use crate::nn::upsample2x;
use crate::nn::SelfAttention;
use crate::nn::{Activation, BatchNorm, Init, Params, SnConv2d, SnLinear, TrainMode};
use crate::rng::Rng;
use candle_core::{Device, Tensor, Var};
use serde::{Deserialize, Serialize};

/// `{"Sagan": (conv_dim: 32)}`: square images whose side is a power of two ≥ 8.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SaganGenerator {
    /// c: the base width. Blocks have 2c channels at the output resolution, doubling per halving up to 16c.
    #[serde(default = "default_conv_dim")]
    pub conv_dim: usize,
    /// Noise injection after the first layer and every block conv (the code's implicit generator).
    #[serde(default = "yes")]
    pub noise: bool,
    #[serde(default = "yes")]
    pub attention: bool,
}

fn default_conv_dim() -> usize {
    32
}

fn yes() -> bool {
    true
}

/// Adds a learned multiple (per channel and pixel, initially 0) of one N(0, 1) map per image. The code's
/// `NoiseInjection` weight is `[1, C, size, size]`, one weight per channel and pixel.
#[derive(Clone, Debug)]
struct NoiseInjection(Tensor);

impl NoiseInjection {
    fn new(p: &Params, c: usize, side: usize) -> Result<Self> {
        Ok(Self(p.get(
            &[1, c, side, side],
            "weight",
            Init::Const(0.0),
        )?))
    }

    fn forward(&self, x: &Tensor, noise: &mut Noise) -> Result<Tensor> {
        let (b, _, h, w) = x.dims4()?;
        let map = noise.map(b, h, w)?;
        Ok((x + map.broadcast_mul(&self.0)?)?)
    }
}

/// The noise maps of one `decode`, drawn on the host from a stream of the run's seed (checkpointed: resumed
/// runs draw what an uninterrupted one would). Each training call takes the next stream; evaluation calls all
/// take the same fixed one, so evaluating twice gives the same images and never shifts the training draws.
struct Noise {
    rng: Rng,
    device: Device,
}

impl Noise {
    fn map(&mut self, b: usize, h: usize, w: usize) -> Result<Tensor> {
        self.rng.normal(&[b, 1, h, w], &self.device)
    }
}

/// Where the noise streams come from: a seed drawn with the parameters, and the count of training calls.
/// Both are saved buffers (f32: the count is exact up to 2²⁴ calls).
#[derive(Clone, Debug)]
struct NoiseSource {
    seed: Var,
    draws: Var,
}

impl NoiseSource {
    fn new(p: &Params) -> Result<Self> {
        Ok(Self {
            seed: p.buffer(&[1], "seed", Init::Uniform { bound: 1.0 })?,
            draws: p.buffer(&[1], "draws", Init::Const(0.0))?,
        })
    }

    fn next(&self, training: bool) -> Result<Noise> {
        let scalar = |v: &Var| -> Result<f32> { Ok(v.as_tensor().to_vec1::<f32>()?[0]) };
        let seed = scalar(&self.seed)?.to_bits() as u64;
        let stream = if training {
            let n = scalar(&self.draws)?;
            self.draws.set(&(self.draws.as_tensor().detach() + 1.0)?)?;
            n as u64
        } else {
            u64::MAX
        };
        Ok(Noise {
            rng: Rng::derived(seed, stream),
            device: self.seed.device().clone(),
        })
    }
}

/// GenBlock(in → out): doubles the side.
#[derive(Clone, Debug)]
struct GenBlock {
    bn1: BatchNorm,
    conv1: SnConv2d,
    noise1: Option<NoiseInjection>,
    bn2: BatchNorm,
    conv2: SnConv2d,
    noise2: Option<NoiseInjection>,
    shortcut: SnConv2d,
}

impl GenBlock {
    fn new(
        p: &Params,
        c_in: usize,
        c_out: usize,
        side: usize,
        noise: bool,
        mode: &TrainMode,
    ) -> Result<Self> {
        let inject = |name: &str| {
            noise
                .then(|| NoiseInjection::new(&p.pp(name), c_out, side))
                .transpose()
        };
        Ok(Self {
            bn1: BatchNorm::new(&p.pp("bn1"), c_in, mode)?,
            conv1: SnConv2d::new(&p.pp("conv1"), c_in, c_out, 3, 1, 1)?,
            noise1: inject("noise1")?,
            bn2: BatchNorm::new(&p.pp("bn2"), c_out, mode)?,
            conv2: SnConv2d::new(&p.pp("conv2"), c_out, c_out, 3, 1, 1)?,
            noise2: inject("noise2")?,
            shortcut: SnConv2d::new(&p.pp("conv0"), c_in, c_out, 1, 1, 0)?,
        })
    }

    fn forward(&self, x: &Tensor, noise: &mut Noise, update: bool) -> Result<Tensor> {
        let relu = |t: &Tensor| Activation::Relu.apply(t);
        let inject = |t: Tensor, n: &Option<NoiseInjection>, noise: &mut Noise| match n {
            Some(n) => n.forward(&t, noise),
            None => Ok(t),
        };
        let h = upsample2x(&relu(&self.bn1.forward(x)?)?)?;
        let h = inject(self.conv1.forward(&h, update)?, &self.noise1, noise)?;
        let h = relu(&self.bn2.forward(&h)?)?;
        let h = inject(self.conv2.forward(&h, update)?, &self.noise2, noise)?;
        // A 1×1 conv commutes with nearest upsampling: convolve first, on a quarter of the pixels.
        let s = upsample2x(&self.shortcut.forward(x, update)?)?;
        Ok((h + s)?)
    }
}

struct SaganModel {
    input: SnLinear,
    input_noise: Option<NoiseInjection>,
    blocks: Vec<GenBlock>,
    /// The self-attention block and how many up-blocks run before it.
    attention: Option<(usize, SelfAttention)>,
    bn: BatchNorm,
    to_rgb: SnConv2d,
    base: usize,
    noise: NoiseSource,
    mode: TrainMode,
}

#[typetag::serde(name = "Sagan")]
impl DecoderConfig for SaganGenerator {
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Decoder>> {
        let shape = &ctx.spec.obs_shape;
        let bad = |why: String| Error::Shape {
            context: "Sagan generator output".into(),
            expected: format!("square image [C, S, S] with S a power of two ≥ 8 ({why})"),
            got: format!("{shape:?}"),
        };
        let &[channels, side, w] = shape.as_slice() else {
            return Err(bad("not an image".into()));
        };
        if side != w || side < 8 || !side.is_power_of_two() {
            return Err(bad("side".into()));
        }
        let c = self.conv_dim;
        if c == 0 {
            return Err(Error::Config {
                location: "Sagan.conv_dim".into(),
                message: "must be at least 1".into(),
            });
        }
        // Up-blocks from 4×4 to side×side; width at side r: 2c · side / r, at most 16c.
        let n = (side / 4).trailing_zeros() as usize;
        let width = |r: usize| (2 * c * (side / r)).min(16 * c);
        let p = &ctx.params;
        let mode = TrainMode::default();
        let mut blocks = Vec::with_capacity(n);
        let mut c_in = 16 * c;
        for i in 0..n {
            let r = 8 << i;
            let c_out = width(r);
            blocks.push(GenBlock::new(
                &p.pp(format!("block{}", i + 1)),
                c_in,
                c_out,
                r,
                self.noise,
                &mode,
            )?);
            c_in = c_out;
        }
        // At side / 2: after all but the last up-block.
        let attention = if self.attention {
            let c_att = if n > 1 { width(side / 2) } else { 16 * c };
            Some((n - 1, SelfAttention::new(&p.pp("self_attn"), c_att)?))
        } else {
            None
        };
        Ok(Box::new(SaganModel {
            input: SnLinear::new(&p.pp("block0.linear"), ctx.latent_dim, 16 * c * 16)?,
            input_noise: self
                .noise
                .then(|| NoiseInjection::new(&p.pp("block0.noise"), 16 * c, 4))
                .transpose()?,
            blocks,
            attention,
            // The code's last batch norm keeps its running statistics with momentum 1e-4.
            bn: BatchNorm::with_momentum(&p.pp("bn"), c_in, 1e-4, &mode)?,
            to_rgb: SnConv2d::new(&p.pp("to_rgb"), c_in, channels, 3, 1, 1)?,
            base: 16 * c,
            noise: NoiseSource::new(&p.pp("noise"))?,
            mode,
        }))
    }
}
crate::register_component!(
    Decoder,
    "Sagan",
    "SAGAN generator: residual up-blocks with batch norm, noise injection and self-attention → (tanh + 1)/2 image (DEAR)",
    needs: [Images]
);

impl Decoder for SaganModel {
    fn decode(&self, z: &Tensor) -> Result<Tensor> {
        let training = self.mode.is_training();
        let mut noise = self.noise.next(training)?;
        let b = z.dim(0)?;
        let mut h = self
            .input
            .forward(z, training)?
            .reshape((b, self.base, 4, 4))?;
        if let Some(n) = &self.input_noise {
            h = n.forward(&h, &mut noise)?;
        }
        for (i, block) in self.blocks.iter().enumerate() {
            if let Some((at, sa)) = &self.attention {
                if *at == i {
                    h = sa.forward(&h, training)?;
                }
            }
            h = block.forward(&h, &mut noise, training)?;
        }
        let h = Activation::Relu.apply(&self.bn.forward(&h)?)?;
        self.to_rgb.forward(&h, training)
    }

    fn nll(&self, x: &Tensor, params: &Tensor) -> Result<Tensor> {
        Likelihood::Bernoulli.nll(x, &(params * 2.0)?)
    }

    fn mean(&self, params: &Tensor) -> Result<Tensor> {
        Ok(((params.tanh()? + 1.0)? * 0.5)?)
    }

    fn set_training(&self, training: bool) {
        self.mode.set(training);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::data::DataSpec;
    use candle_core::DType;
    use candle_nn::VarMap;

    fn build(cfg: &SaganGenerator, shape: &[usize], varmap: &VarMap) -> Result<Box<dyn Decoder>> {
        let spec = DataSpec {
            obs_shape: shape.to_vec(),
            ..Default::default()
        };
        cfg.build(&BuildContext {
            params: Params::new(varmap.clone(), Device::Cpu, 0).pp("generator"),
            spec: &spec,
            latent_dim: 5,
            concepts: Default::default(),
            layers: Default::default(),
        })
    }

    /// Parameters, not saved state (running statistics, power-iteration vectors, the noise stream).
    pub(crate) fn trained_parameters(varmap: &VarMap) -> usize {
        let state = [
            "running_mean",
            "running_var",
            "sn_u",
            "noise.seed",
            "noise.draws",
        ];
        varmap
            .data()
            .lock()
            .unwrap()
            .iter()
            .filter(|(n, _)| !state.iter().any(|s| n.ends_with(s)))
            .map(|(_, v)| v.elem_count())
            .sum()
    }

    fn tiny() -> SaganGenerator {
        SaganGenerator {
            conv_dim: 2,
            noise: true,
            attention: true,
        }
    }

    #[test]
    fn draws_images_in_the_data_range_with_consistent_mean_and_likelihood() {
        let varmap = VarMap::new();
        let g = build(&tiny(), &[3, 16, 16], &varmap).unwrap();
        let z = (Tensor::randn(0f32, 1f32, (4, 5), &Device::Cpu).unwrap() * 3.0).unwrap();
        g.set_training(true);
        let h = g.decode(&z).unwrap();
        assert_eq!(h.dims(), &[4, 3, 16, 16]);
        let x = g
            .mean(&h)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert!(x.iter().all(|v| (0.0..=1.0).contains(v)), "outside [0, 1]");
        assert!(x.iter().any(|v| (v - 0.5).abs() > 1e-3), "constant image");
        // nll is the Bernoulli likelihood whose mean is the image: for x = that image no other output fits better.
        let mean = g.mean(&h).unwrap();
        let at_mean = g
            .nll(&mean, &h)
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        let off = g
            .nll(&mean, &(&h + 0.3).unwrap())
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(at_mean < off);
        // Without noise and attention (no parameters of either), and at the smallest side.
        let plain = SaganGenerator {
            noise: false,
            attention: false,
            ..tiny()
        };
        let varmap = VarMap::new();
        let g = build(&plain, &[1, 8, 8], &varmap).unwrap();
        assert_eq!(g.decode(&z).unwrap().dims(), &[4, 1, 8, 8]);
        let names: Vec<String> = varmap.data().lock().unwrap().keys().cloned().collect();
        assert!(
            !names
                .iter()
                .any(|n| n.contains("attn") || n.ends_with("noise1.weight")),
            "{names:?}"
        );
    }

    #[test]
    fn evaluation_is_repeatable_and_training_draws_fresh_checkpointed_noise() {
        let varmap = VarMap::new();
        let g = build(&tiny(), &[3, 8, 8], &varmap).unwrap();
        // Non-zero noise weights, so the noise shows in the image.
        for (name, var) in varmap.data().lock().unwrap().iter() {
            if name.contains("noise") && name.ends_with("weight") {
                var.set(&var.as_tensor().ones_like().unwrap()).unwrap();
            }
        }
        let z = Tensor::ones((2, 5), DType::F32, &Device::Cpu).unwrap();
        let run = || {
            g.decode(&z)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
        };
        assert_eq!(run(), run());
        g.set_training(true);
        assert_ne!(run(), run());

        let source = NoiseSource::new(&Params::new(VarMap::new(), Device::Cpu, 0)).unwrap();
        let map = |training: bool| {
            let mut n = source.next(training).unwrap();
            n.map(2, 3, 3)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
        };
        let count = || source.draws.as_tensor().to_vec1::<f32>().unwrap()[0];
        assert_eq!(map(false), map(false));
        assert_eq!(count(), 0.0);
        let (a, b) = (map(true), map(true));
        assert_ne!(a, b);
        assert_eq!(count(), 2.0);
        // Rewinding the saved count (a checkpoint) replays the same training noise.
        source
            .draws
            .set(&Tensor::new(&[1f32], &Device::Cpu).unwrap())
            .unwrap();
        assert_eq!(map(true), b);
    }

    /// At 64×64 with c = 32 and k = 6 the parameters are the code's `Generator(6, 32, 64)` with noise (SN
    /// weights and biases, batch-norm affines, noise weights, attention σ): 8,553,956.
    #[test]
    fn full_size_matches_the_codes_parameter_count() {
        let cfg: SaganGenerator = ron::from_str("()").unwrap();
        let varmap = VarMap::new();
        let spec = DataSpec {
            obs_shape: vec![3, 64, 64],
            ..Default::default()
        };
        cfg.build(&BuildContext {
            params: Params::new(varmap.clone(), Device::Cpu, 0).pp("generator"),
            spec: &spec,
            latent_dim: 6,
            concepts: Default::default(),
            layers: Default::default(),
        })
        .unwrap();
        assert_eq!(trained_parameters(&varmap), 8_553_956);
    }

    #[test]
    fn rejects_images_it_cannot_draw() {
        for shape in [vec![3, 12, 12], vec![3, 16, 8], vec![3, 4, 4], vec![10]] {
            assert!(build(&tiny(), &shape, &VarMap::new()).is_err(), "{shape:?}");
        }
        let zero = SaganGenerator {
            conv_dim: 0,
            ..tiny()
        };
        assert!(build(&zero, &[3, 16, 16], &VarMap::new()).is_err());
        // Attention needs 8 channels at side / 2: 4c ≥ 8.
        let narrow = SaganGenerator {
            conv_dim: 1,
            ..tiny()
        };
        assert!(build(&narrow, &[3, 16, 16], &VarMap::new()).is_err());
    }
}

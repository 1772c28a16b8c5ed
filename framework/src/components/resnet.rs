//! DEAR's encoder (docs/methods/dear.md; the code's `resnet.py` ResNet-50 from scratch with its `fc` head):
//! conv7×7/2 → BN → ReLU → maxpool 3×3/2 → bottleneck stages → global average pool → Linear → BN1d → ReLU
//! → ResMLPBlock → Linear → (μ, log σ²). Defaults are ResNet-50 (stages [3, 4, 6, 3] of widths 64·2^i, ×4
//! expansion) with a 1024-wide head; convs have no bias and Kaiming-normal weights (fan-out, as torchvision),
//! linear layers PyTorch's default initialisation.

use crate::components::{BuildContext, Encoder, EncoderConfig};
use crate::dist::DiagGaussian;
use crate::error::{Error, Result};
use crate::nn::{conv2d, Activation, BatchNorm, Init, Linear, Params, TrainMode};
use candle_core::Tensor;
use serde::{Deserialize, Serialize};

/// `{"ResNet": (blocks: [3, 4, 6, 3], base_channels: 64, hidden: 1024)}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResNetEncoder {
    /// Bottleneck blocks per stage; stage i has width `base_channels · 2^i` (output ×4) and, after the first,
    /// halves the side.
    #[serde(default = "resnet50")]
    pub blocks: Vec<usize>,
    /// Channels of the stem conv and width of the first stage.
    #[serde(default = "default_base")]
    pub base_channels: usize,
    /// Width of the head's hidden layer (the code's `enc_fc_size`).
    #[serde(default = "default_hidden")]
    pub hidden: usize,
}

fn resnet50() -> Vec<usize> {
    vec![3, 4, 6, 3]
}

fn default_base() -> usize {
    64
}

fn default_hidden() -> usize {
    1024
}

const EXPANSION: usize = 4;

fn relu(x: &Tensor) -> Result<Tensor> {
    Activation::Relu.apply(x)
}

/// Conv (no bias, Kaiming-normal) followed by batch norm.
#[derive(Clone, Debug)]
struct ConvBn {
    weight: Tensor,
    bn: BatchNorm,
    stride: usize,
    padding: usize,
}

impl ConvBn {
    fn new(
        p: &Params,
        name: &str,
        c_in: usize,
        c_out: usize,
        kernel: usize,
        stride: usize,
        mode: &TrainMode,
    ) -> Result<Self> {
        let std = (2.0 / (c_out * kernel * kernel) as f32).sqrt();
        Ok(Self {
            weight: p.pp(name).get(
                &[c_out, c_in, kernel, kernel],
                "weight",
                Init::Normal { std },
            )?,
            bn: BatchNorm::new(&p.pp(format!("{name}_bn")), c_out, mode)?,
            stride,
            padding: kernel / 2,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.bn
            .forward(&conv2d(x, &self.weight, self.padding, self.stride)?)
    }
}

/// 1×1 → 3×3 (stride) → 1×1 (×4 channels), plus the input (projected when its shape changes), then ReLU.
#[derive(Clone, Debug)]
struct Bottleneck {
    reduce: ConvBn,
    conv: ConvBn,
    expand: ConvBn,
    shortcut: Option<ConvBn>,
}

impl Bottleneck {
    fn new(p: &Params, c_in: usize, width: usize, stride: usize, mode: &TrainMode) -> Result<Self> {
        let c_out = width * EXPANSION;
        Ok(Self {
            reduce: ConvBn::new(p, "conv1", c_in, width, 1, 1, mode)?,
            conv: ConvBn::new(p, "conv2", width, width, 3, stride, mode)?,
            expand: ConvBn::new(p, "conv3", width, c_out, 1, 1, mode)?,
            shortcut: (stride != 1 || c_in != c_out)
                .then(|| ConvBn::new(p, "downsample", c_in, c_out, 1, stride, mode))
                .transpose()?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = relu(&self.reduce.forward(x)?)?;
        let h = relu(&self.conv.forward(&h)?)?;
        let h = self.expand.forward(&h)?;
        let skip = match &self.shortcut {
            Some(s) => s.forward(x)?,
            None => x.clone(),
        };
        relu(&(h + skip)?)
    }
}

/// Linear-BN-ReLU-Linear-BN plus the input, then ReLU (the code's `ResMLPBlock`).
#[derive(Clone, Debug)]
struct ResMlpBlock {
    fc1: Linear,
    bn1: BatchNorm,
    fc2: Linear,
    bn2: BatchNorm,
}

impl ResMlpBlock {
    fn new(p: &Params, width: usize, mode: &TrainMode) -> Result<Self> {
        Ok(Self {
            fc1: Linear::new(&p.pp("fc1"), width, width)?,
            bn1: BatchNorm::new(&p.pp("bn1"), width, mode)?,
            fc2: Linear::new(&p.pp("fc2"), width, width)?,
            bn2: BatchNorm::new(&p.pp("bn2"), width, mode)?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = relu(&self.bn1.forward(&self.fc1.forward(x)?)?)?;
        let h = self.bn2.forward(&self.fc2.forward(&h)?)?;
        relu(&(h + x)?)
    }
}

struct ResNetModel {
    stem: ConvBn,
    blocks: Vec<Bottleneck>,
    fc: Linear,
    fc_bn: BatchNorm,
    res: ResMlpBlock,
    head: Linear,
    latent_dim: usize,
    mode: TrainMode,
}

#[typetag::serde(name = "ResNet")]
impl EncoderConfig for ResNetEncoder {
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Encoder>> {
        let &[channels, _, _] = ctx.spec.obs_shape.as_slice() else {
            return Err(Error::Shape {
                context: "ResNet encoder".into(),
                expected: "image observations [C, H, W]".into(),
                got: format!("{:?}", ctx.spec.obs_shape),
            });
        };
        let bad = |field: &str, message: &str| Error::Config {
            location: format!("ResNet.{field}"),
            message: message.into(),
        };
        if self.blocks.is_empty() || self.blocks.contains(&0) {
            return Err(bad(
                "blocks",
                "needs at least one stage, each with at least one block",
            ));
        }
        if self.base_channels == 0 || self.hidden == 0 {
            return Err(bad("base_channels/hidden", "must be at least 1"));
        }
        let (p, mode) = (&ctx.params, TrainMode::default());
        let mut blocks = Vec::new();
        let mut c_in = self.base_channels;
        for (s, &n) in self.blocks.iter().enumerate() {
            let width = self.base_channels << s;
            for b in 0..n {
                let stride = if s > 0 && b == 0 { 2 } else { 1 };
                let bp = p.pp(format!("layer{}.{b}", s + 1));
                blocks.push(Bottleneck::new(&bp, c_in, width, stride, &mode)?);
                c_in = width * EXPANSION;
            }
        }
        Ok(Box::new(ResNetModel {
            stem: ConvBn::new(p, "conv1", channels, self.base_channels, 7, 2, &mode)?,
            blocks,
            fc: Linear::new(&p.pp("fc"), c_in, self.hidden)?,
            fc_bn: BatchNorm::new(&p.pp("fc_bn"), self.hidden, &mode)?,
            res: ResMlpBlock::new(&p.pp("res"), self.hidden, &mode)?,
            head: Linear::new(&p.pp("head"), self.hidden, 2 * ctx.latent_dim)?,
            latent_dim: ctx.latent_dim,
            mode,
        }))
    }
}
crate::register_component!(
    Encoder,
    "ResNet",
    "ResNet (bottleneck stages, batch norm) + residual MLP head → diagonal Gaussian (DEAR)",
    needs: [Images]
);

impl Encoder for ResNetModel {
    fn encode(&self, x: &Tensor) -> Result<DiagGaussian> {
        let mut h = crate::nn::max_pool2d(&relu(&self.stem.forward(x)?)?, 3, 2, 1)?;
        for b in &self.blocks {
            h = b.forward(&h)?;
        }
        let h = h.mean((2, 3))?;
        let h = relu(&self.fc_bn.forward(&self.fc.forward(&h)?)?)?;
        let out = self.head.forward(&self.res.forward(&h)?)?;
        let d = self.latent_dim;
        DiagGaussian::new(out.narrow(1, 0, d)?, out.narrow(1, d, d)?)
    }

    fn set_training(&self, training: bool) {
        self.mode.set(training);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::DataSpec;
    use candle_core::{DType, Device};
    use candle_nn::VarMap;

    fn build(
        cfg: &ResNetEncoder,
        shape: &[usize],
        varmap: &VarMap,
        k: usize,
    ) -> Result<Box<dyn Encoder>> {
        let spec = DataSpec {
            obs_shape: shape.to_vec(),
            ..Default::default()
        };
        cfg.build(&BuildContext {
            params: Params::new(varmap.clone(), Device::Cpu, 0).pp("encoder"),
            spec: &spec,
            latent_dim: k,
            concepts: Default::default(),
            layers: Default::default(),
        })
    }

    fn tiny() -> ResNetEncoder {
        ResNetEncoder {
            blocks: vec![1, 2],
            base_channels: 4,
            hidden: 8,
        }
    }

    #[test]
    fn encodes_images_to_gaussians_and_evaluates_with_running_statistics() {
        let varmap = VarMap::new();
        let e = build(&tiny(), &[3, 16, 16], &varmap, 3).unwrap();
        let x = Tensor::rand(0f32, 1f32, (4, 3, 16, 16), &Device::Cpu).unwrap();
        e.set_training(true);
        let q = e.encode(&x).unwrap();
        assert_eq!(q.mean.dims(), &[4, 3]);
        assert_eq!(q.logvar.dims(), &[4, 3]);
        // Batch statistics in training: one image's code depends on the others.
        let alone = e.encode(&x.narrow(0, 0, 2).unwrap()).unwrap().mean;
        assert_ne!(
            alone.to_vec2::<f32>().unwrap(),
            q.mean.narrow(0, 0, 2).unwrap().to_vec2::<f32>().unwrap()
        );
        // Running statistics in evaluation: it does not, and they were updated from their initial 0 / 1.
        e.set_training(false);
        let all = e.encode(&x).unwrap().mean;
        let alone = e.encode(&x.narrow(0, 0, 2).unwrap()).unwrap().mean;
        let (a, b) = (
            alone.to_vec2::<f32>().unwrap(),
            all.narrow(0, 0, 2).unwrap().to_vec2::<f32>().unwrap(),
        );
        for (u, v) in a.iter().flatten().zip(b.iter().flatten()) {
            assert!((u - v).abs() < 1e-5, "{u} vs {v}");
        }
        let data = varmap.data().lock().unwrap();
        let rm = data["encoder.conv1_bn.running_mean"]
            .as_tensor()
            .to_vec1::<f32>()
            .unwrap();
        assert!(rm.iter().any(|v| *v != 0.0));
        // One image encodes in evaluation mode (no batch statistics needed).
        drop(data);
        assert_eq!(
            e.encode(&x.narrow(0, 0, 1).unwrap()).unwrap().mean.dims(),
            &[1, 3]
        );
    }

    #[test]
    fn stages_halve_the_side_and_widen_four_fold() {
        // A 1-block-per-stage ResNet on a 64×64 image: 32 (stem) → 16 (pool) → 16, 8, 4, 2.
        let cfg = ResNetEncoder {
            blocks: vec![1, 1, 1, 1],
            base_channels: 2,
            hidden: 4,
        };
        let varmap = VarMap::new();
        build(&cfg, &[3, 64, 64], &varmap, 2).unwrap();
        let data = varmap.data().lock().unwrap();
        let dims = |n: &str| data[n].as_tensor().dims().to_vec();
        assert_eq!(dims("encoder.conv1.weight"), [2, 3, 7, 7]);
        assert_eq!(dims("encoder.layer1.0.conv3.weight"), [8, 2, 1, 1]);
        assert_eq!(dims("encoder.layer4.0.conv3.weight"), [64, 16, 1, 1]);
        assert_eq!(dims("encoder.fc.weight"), [64, 4]);
        assert_eq!(dims("encoder.head.weight"), [4, 4]);
    }

    /// The defaults are torchvision's ResNet-50 body (23,508,032 parameters with 3 input channels) plus the
    /// code's head for k = 6: Linear 2048→1024, BN, ResMLPBlock(1024), Linear 1024→12.
    #[test]
    fn defaults_have_resnet50s_parameter_count() {
        let cfg: ResNetEncoder = ron::from_str("()").unwrap();
        let varmap = VarMap::new();
        build(&cfg, &[3, 64, 64], &varmap, 6).unwrap();
        let trained: usize = varmap
            .data()
            .lock()
            .unwrap()
            .iter()
            .filter(|(n, _)| !n.ends_with("running_mean") && !n.ends_with("running_var"))
            .map(|(_, v)| v.elem_count())
            .sum();
        let head = (2048 * 1024 + 1024)
            + 2 * 1024
            + 2 * (1024 * 1024 + 1024 + 2 * 1024)
            + (1024 * 12 + 12);
        assert_eq!(trained, 23_508_032 + head);
    }

    #[test]
    fn rejects_bad_settings_and_non_images() {
        let v = VarMap::new();
        assert!(build(&tiny(), &[10], &v, 2).is_err());
        for cfg in [
            ResNetEncoder {
                blocks: vec![],
                ..tiny()
            },
            ResNetEncoder {
                blocks: vec![1, 0],
                ..tiny()
            },
            ResNetEncoder {
                base_channels: 0,
                ..tiny()
            },
            ResNetEncoder {
                hidden: 0,
                ..tiny()
            },
        ] {
            assert!(
                build(&cfg, &[3, 16, 16], &VarMap::new(), 2).is_err(),
                "{cfg:?}"
            );
        }
        let e = build(&tiny(), &[3, 16, 16], &VarMap::new(), 2).unwrap();
        e.set_training(true);
        // One image cannot be batch-normalised at the 1×1 head.
        let x = Tensor::zeros((1, 3, 16, 16), DType::F32, &Device::Cpu).unwrap();
        assert!(e.encode(&x).is_err());
    }
}

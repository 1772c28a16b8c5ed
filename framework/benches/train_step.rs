//! One full `Method::train_step` (forward, loss, backward, fused AdamW step) at batch 64 on CPU for the two
//! reference models: the pendulum MLP β-VAE (configs/betavae/pendulum.ron, 96×96×4, Bernoulli, β = 4) and
//! the disentanglement_lib conv VAE (64×64×3, channels [32, 32, 64, 64], hidden 256, latent 10).
//! Samples/s = 64 / (time per step).

use candle_core::{Device, Tensor};
use carve::data::{Batch, DataSpec};
use carve::method::{Method, MethodConfig, MethodContext};
use carve::optim::AdamConfig;
use carve::rng::Rng;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::time::Duration;

const BATCH: usize = 64;

/// The model section of configs/betavae/pendulum.ron written as the generic ELBO (β-VAE = Elbo with the KL
/// weighted by β), since the BetaVae plugin is not a dependency of the framework.
const PENDULUM_MLP: &str = r#"{"Elbo": (
    latent_dim: 16,
    encoder: {"Mlp": (hidden: [900, 300], activation: Elu)},
    decoder: {"Mlp": (hidden: [300, 300, 1024], activation: Elu, likelihood: Bernoulli)},
    objectives: [{"Reconstruction": ()}, {"PriorKl": (weight: 4.0)}],
)}"#;

/// The conv VAE of disentanglement_lib (Locatello et al. 2019) on 64×64 RGB.
const CONV64: &str = r#"{"Elbo": (
    latent_dim: 10,
    encoder: {"Conv": (channels: [32, 32, 64, 64], hidden: 256, activation: Relu)},
    decoder: {"Conv": (channels: [32, 32, 64, 64], hidden: 256, activation: Relu, likelihood: Bernoulli)},
    objectives: [{"Reconstruction": ()}, {"PriorKl": (weight: 1.0)}],
)}"#;

fn setup(model: &str, obs_shape: &[usize]) -> (Box<dyn Method>, Batch, Rng) {
    let dev = Device::Cpu;
    let cfg: Box<dyn MethodConfig> = ron::Options::default()
        .from_str(model)
        .expect("model config parses");
    let spec = DataSpec {
        obs_shape: obs_shape.to_vec(),
        factor_names: vec![],
        label_names: vec![],
        graph: None,
        ..Default::default()
    };
    let optimizer = AdamConfig::default();
    let ctx = MethodContext {
        spec: &spec,
        device: dev.clone(),
        seed: 1,
        optimizer: &optimizer,
        label_stats: None,
    };
    let method = cfg.build(&ctx).expect("model builds");
    let mut shape = vec![BATCH];
    shape.extend_from_slice(obs_shape);
    let x = Tensor::rand(0f32, 1f32, shape, &dev).unwrap();
    let batch = Batch {
        x,
        labels: None,
        factors: None,
        actions: None,
    };
    (method, batch, Rng::new(7))
}

fn bench(c: &mut Criterion) {
    carve::runtime::init_cpu();
    let mut group = c.benchmark_group("train_step_b64");
    group.sample_size(10);
    group.throughput(Throughput::Elements(BATCH as u64));
    for (label, model, shape) in [
        ("pendulum_mlp_vae", PENDULUM_MLP, &[4usize, 96, 96][..]),
        ("conv64_vae", CONV64, &[3usize, 64, 64][..]),
    ] {
        group.measurement_time(Duration::from_secs(15));
        // Built on the first call of the closure, which criterion makes only for benchmarks that pass the
        // filter (and then repeats for every sample: the model is kept across calls).
        let mut state: Option<(Box<dyn Method>, Batch, Rng, usize)> = None;
        group.bench_function(label, |b| {
            let (method, batch, rng, step) = state.get_or_insert_with(|| {
                let (mut method, batch, mut rng) = setup(model, shape);
                // Warm up: allocate the optimizer moments and touch every page once before timing.
                for step in 0..2 {
                    method.train_step(&batch, step, &mut rng).unwrap();
                }
                (method, batch, rng, 2)
            });
            b.iter(|| {
                let r = method.train_step(batch, *step, rng).unwrap();
                *step += 1;
                r
            })
        });
    }
    group.finish();
    conv_stack(c);
}

/// Forward and backward (no loss terms, no optimizer) of the conv64 VAE's conv encoder and decoder stacks alone
/// at batch 64: `[64, 3, 64, 64]` → channels [32, 32, 64, 64] → `[64, 64, 4, 4]` → [64, 32, 32, 3] →
/// `[64, 3, 64, 64]`, loss `Σ y²`. Samples/s = 64 / (time per iteration).
fn conv_stack(c: &mut Criterion) {
    use carve::nn::{Activation, ConvDownStack, ConvUpStack, Params};
    let dev = Device::Cpu;
    let p = Params::new(candle_nn::VarMap::new(), dev.clone(), 0);
    let down = ConvDownStack::new(&p.pp("enc"), 3, &[32, 32, 64, 64], Activation::Relu).unwrap();
    let up = ConvUpStack::new(&p.pp("dec"), 64, &[64, 32, 32, 3], Activation::Relu).unwrap();
    let x = Tensor::rand(0f32, 1f32, (BATCH, 3, 64, 64), &dev).unwrap();
    let mut group = c.benchmark_group("conv_stack_b64");
    group.sample_size(10);
    group.throughput(Throughput::Elements(BATCH as u64));
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("conv64_stack_fwd_bwd", |b| {
        b.iter(|| {
            let y = up.forward(&down.forward(&x).unwrap()).unwrap();
            y.sqr().unwrap().sum_all().unwrap().backward().unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

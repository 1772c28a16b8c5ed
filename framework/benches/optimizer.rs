//! One AdamW step over the pendulum-MLP encoder's parameters (36864x900 + 900x300 weights):
//! the fused CPU kernel against the tensor-op chain.

use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor, Var};
use carve::optim::{AdamBackend, AdamConfig, AdamW};
use criterion::{criterion_group, criterion_main, Criterion};
use std::time::Duration;

fn setup(backend: AdamBackend) -> (AdamW, GradStore) {
    let dev = Device::Cpu;
    let shapes = [(36864usize, 900usize), (900, 300)];
    let mut vars = Vec::new();
    let mut grads = GradStore::default();
    for (i, &(r, c)) in shapes.iter().enumerate() {
        let w =
            Var::from_tensor(&(Tensor::randn(0f32, 1f32, (r, c), &dev).unwrap() * 0.01).unwrap())
                .unwrap();
        let g = (Tensor::randn(0f32, 1f32, (r, c), &dev).unwrap() * 1e-3).unwrap();
        grads.insert(w.as_tensor(), g);
        vars.push((format!("encoder.{i}.weight"), w));
    }
    let cfg = AdamConfig {
        weight_decay: 1e-4,
        ..Default::default()
    };
    let opt = AdamW::with_backend(vars, cfg, backend).unwrap();
    (opt, grads)
}

fn bench(c: &mut Criterion) {
    carve::runtime::init_cpu();
    let mut group = c.benchmark_group("adamw_step_pendulum_encoder");
    group.sample_size(10);
    for (label, backend, secs) in [
        ("fused", AdamBackend::Fused, 5),
        ("tensor_ops", AdamBackend::TensorOps, 20),
    ] {
        // The tensor-op step takes about a second on a small CPU: give it the time for 10 samples.
        group.measurement_time(Duration::from_secs(secs));
        let (mut opt, grads) = setup(backend);
        // Touch every moment page once before timing.
        opt.step(&grads).unwrap();
        group.bench_function(label, |b| b.iter(|| opt.step(&grads).unwrap()));
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

//! One `Method::train_step` of the mechanism-sparsity VAE (configs/sparsity/action_nontrivial.ron: x 20 dims,
//! z 10, actions 10; encoder/decoder MLPs 20→256→256→256→·, ten 20→64→64→1 transition nets, Lagrangian G^a)
//! at batch 256 (the config's) and 1024 (the reference code's), on CPU. Throughput is in samples.

use candle_core::Device;
use carve::config::Experiment;
use carve::data::{make_batch, Batch, Split};
use carve::method::{Method, MethodContext};
use carve::rng::Rng;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::path::Path;
use std::time::Duration;

// A plugin crate that nothing references registers nothing.
extern crate carve_sparsity;

const CONFIG: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../configs/sparsity/action_nontrivial.ron"
);

fn setup(batch_size: usize) -> (Box<dyn Method>, Batch, Rng) {
    let exp = Experiment::load(
        Path::new(CONFIG),
        &["data.n_train=4096".into(), "data.n_test=256".into()],
    )
    .expect("config loads");
    let seed = exp.train.seed;
    let data = exp.data.build(seed).expect("data builds");
    let device = Device::Cpu;
    let method = exp
        .model
        .build(&MethodContext {
            spec: data.spec(),
            device: device.clone(),
            seed,
            optimizer: &exp.train.optimizer,
            label_stats: None,
        })
        .expect("model builds");
    let rows: Vec<usize> = data.split(Split::Train)[..batch_size].to_vec();
    let batch = make_batch(data.as_ref(), &rows, &device, &mut Vec::new()).expect("batch gathers");
    (method, batch, Rng::new(seed))
}

fn bench(c: &mut Criterion) {
    carve::runtime::init_cpu();
    let mut group = c.benchmark_group("sparsity_train_step");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(10));
    for batch_size in [256usize, 1024] {
        group.throughput(Throughput::Elements(batch_size as u64));
        // Built on the first call of the closure (only for benchmarks that pass the filter) and kept
        // across samples.
        let mut state: Option<(Box<dyn Method>, Batch, Rng, usize)> = None;
        group.bench_function(format!("b{batch_size}"), |b| {
            let (method, batch, rng, step) = state.get_or_insert_with(|| {
                let (mut method, batch, mut rng) = setup(batch_size);
                // Warm up: allocate the optimizer moments and touch every buffer once before timing.
                for step in 0..3 {
                    method.train_step(&batch, step, &mut rng).unwrap();
                }
                (method, batch, rng, 3)
            });
            b.iter(|| {
                let r = method.train_step(batch, *step, rng).unwrap();
                *step += 1;
                r
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

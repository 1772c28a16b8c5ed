//! Every registered code/factor metric on 10,000 × 10 codes against 10 continuous factors (a noisy linear mixture),
//! as `carve eval` runs them. The budget: under 5 s each on 2 cores, except tree-based DCI (reported).

use carve::metrics::{self, EvalInputs};
use criterion::{criterion_group, criterion_main, Criterion};
use std::time::Duration;

fn inputs() -> EvalInputs {
    let (n, d, k) = (10_000, 10, 10);
    let mut rng = carve::rng::Rng::new(0);
    let factors = rng.normal_vec(n * k);
    let noise = rng.normal_vec(n * d);
    let codes: Vec<f32> = (0..n)
        .flat_map(|r| {
            let f = &factors[r * k..(r + 1) * k];
            let e = &noise[r * d..(r + 1) * d];
            (0..d)
                .map(|j| f[j] + 0.3 * f[(j + 1) % k] + 0.1 * e[j])
                .collect::<Vec<_>>()
        })
        .collect();
    EvalInputs {
        codes,
        d,
        factors: Some(factors),
        k,
        ..Default::default()
    }
}

fn bench(c: &mut Criterion) {
    let x = inputs();
    let mut g = c.benchmark_group("metrics_10000x10");
    g.sample_size(10).warm_up_time(Duration::from_millis(500));
    for name in [
        "mcc",
        "mig",
        "sap",
        "modularity",
        "r",
        "frechet",
        "cluster_accuracy",
    ] {
        let m = metrics::find(name).unwrap();
        g.bench_function(name, |b| b.iter(|| (m.codes().unwrap())(&x).unwrap()));
    }
    g.finish();
    // DCI: 10 factors × 20 classes × 100 stages of depth-3 trees; one timed run is enough.
    let mut g = c.benchmark_group("metrics_10000x10_dci");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(1));
    let m = metrics::find("dci").unwrap();
    g.bench_function("dci", |b| b.iter(|| (m.codes().unwrap())(&x).unwrap()));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

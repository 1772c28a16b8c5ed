//! Training throughput of a config: `train_step`s on a few fixed batches of its data, without evaluation,
//! figures or checkpoints, with the step's FLOPs (from [`crate::flops`]), the machine's measured GEMM
//! throughput for scale, peak memory and what a steady-state step allocates.

use crate::config::Experiment;
use crate::data::{make_batch, Batch, Split};
use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::train::{EpochSampler, Session};
use candle_core::{Device, Tensor};
use serde::Serialize;
use std::time::Instant;

/// Distinct batches drawn from the training split and cycled through, so that batch assembly stays out
/// of the timed steps while the model still sees more than one batch.
const BATCHES: usize = 4;
/// Side of the square f32 matmul that measures the GEMM roofline.
const ROOFLINE_SIDE: usize = 1024;

pub struct BenchOptions {
    pub steps: usize,
    pub warmup: usize,
    pub device: Device,
}

#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    pub config: String,
    pub batch_size: usize,
    pub steps: usize,
    pub warmup: usize,
    pub threads: usize,
    pub device: String,
    pub samples_per_sec: f64,
    pub step_ms_median: f64,
    pub step_ms_min: f64,
    /// Forward, backward and optimizer FLOPs of one step, counted from the layer shapes.
    pub gflop_per_step: f64,
    /// `gflop_per_step` over the median step time.
    pub gflops: f64,
    /// f32 GEMM throughput of this machine with the same threads (a 1024³ matmul, best of 5).
    pub roofline_gflops: f64,
    pub roofline_percent: f64,
    /// Peak resident memory of the process.
    pub peak_rss_mb: f64,
    /// Minor and major page faults per timed step: memory newly taken from the OS.
    pub page_faults_per_step: f64,
    /// Allocator calls and MB requested per timed step (`None` unless the binary counts allocations,
    /// see [`crate::alloc_count`]).
    pub allocations_per_step: Option<f64>,
    pub alloc_mb_per_step: Option<f64>,
}

/// Builds `exp` on `opts.device` and times `opts.steps` training steps after `opts.warmup` untimed ones.
pub fn run(exp: Experiment, label: &str, opts: &BenchOptions) -> Result<BenchReport> {
    if opts.steps == 0 {
        return Err(Error::msg(
            "bench needs at least one timed step (--steps ≥ 1)",
        ));
    }
    crate::runtime::init_cpu();
    let session = Session::new(exp, opts.device.clone(), std::env::temp_dir())?;
    crate::config::check_run(
        &session.exp,
        session.data.as_ref(),
        session.method.as_ref(),
        &session.device,
    )?;
    let Session {
        exp,
        data,
        mut method,
        device,
        ..
    } = session;
    let tc = &exp.train;
    let mut sampler = EpochSampler::new(data.split(Split::Train).to_vec(), tc.batch_size, tc.seed);
    let mut scratch = Vec::new();
    let batches: Vec<Batch> = (0..BATCHES)
        .map(|k| make_batch(data.as_ref(), sampler.batch(k), &device, &mut scratch))
        .collect::<Result<_>>()?;
    let batch_size = batches[0].x.dim(0)?;
    let mut rng = Rng::derived(tc.seed, 1);
    method.set_lr_scale(1.0);
    for step in 0..opts.warmup {
        method.train_step(&batches[step % BATCHES], step, &mut rng)?;
    }
    synchronize(&device)?;

    let (faults0, allocs0) = (page_faults(), crate::alloc_count::snapshot());
    let mut times = Vec::with_capacity(opts.steps);
    let mut flops = 0.0;
    for step in opts.warmup..opts.warmup + opts.steps {
        let t = Instant::now();
        let (report, f) =
            crate::flops::count(|| method.train_step(&batches[step % BATCHES], step, &mut rng));
        report?;
        synchronize(&device)?;
        times.push(t.elapsed().as_secs_f64());
        flops += f;
    }
    let faults = page_faults().saturating_sub(faults0);
    let allocs = crate::alloc_count::snapshot()
        .zip(allocs0)
        .map(|((c1, b1), (c0, b0))| (c1 - c0, b1 - b0));

    let n = opts.steps as f64;
    let median = median(&mut times);
    let gflop_per_step = flops / n / 1e9;
    let gflops = gflop_per_step / median;
    let roofline_gflops = gemm_gflops(&device)?;
    Ok(BenchReport {
        config: label.to_string(),
        batch_size,
        steps: opts.steps,
        warmup: opts.warmup,
        threads: rayon::current_num_threads(),
        device: format!("{:?}", device.location()),
        samples_per_sec: batch_size as f64 / median,
        step_ms_median: median * 1e3,
        step_ms_min: times[0] * 1e3,
        gflop_per_step,
        gflops,
        roofline_gflops,
        roofline_percent: 100.0 * gflops / roofline_gflops,
        peak_rss_mb: peak_rss_kb() as f64 / 1024.0,
        page_faults_per_step: faults as f64 / n,
        allocations_per_step: allocs.map(|(c, _)| c as f64 / n),
        alloc_mb_per_step: allocs.map(|(_, b)| b as f64 / n / (1 << 20) as f64),
    })
}

/// The median of `xs` (sorted in place; `xs[0]` is then the minimum).
fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    let m = xs.len() / 2;
    if xs.len() % 2 == 1 {
        xs[m]
    } else {
        0.5 * (xs[m - 1] + xs[m])
    }
}

/// Waits for queued GPU work, so that step times are the device's (a no-op on the CPU).
fn synchronize(device: &Device) -> Result<()> {
    Ok(device.synchronize()?)
}

/// Best of 5 timed `ROOFLINE_SIDE`³ f32 matmuls (after one untimed), in GFLOP/s.
fn gemm_gflops(device: &Device) -> Result<f64> {
    let n = ROOFLINE_SIDE;
    let a = Tensor::rand(-1f32, 1f32, (n, n), device)?;
    let b = Tensor::rand(-1f32, 1f32, (n, n), device)?;
    a.matmul(&b)?;
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let t = Instant::now();
        a.matmul(&b)?;
        synchronize(device)?;
        best = best.min(t.elapsed().as_secs_f64());
    }
    Ok(2.0 * (n * n * n) as f64 / best / 1e9)
}

fn rusage() -> Option<libc::rusage> {
    // SAFETY: getrusage fills the zeroed struct it is given and touches nothing else.
    unsafe {
        let mut r: libc::rusage = std::mem::zeroed();
        (libc::getrusage(libc::RUSAGE_SELF, &mut r) == 0).then_some(r)
    }
}

fn page_faults() -> u64 {
    rusage().map_or(0, |r| (r.ru_minflt + r.ru_majflt) as u64)
}

fn peak_rss_kb() -> u64 {
    rusage().map_or(0, |r| r.ru_maxrss as u64)
}

impl std::fmt::Display for BenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{}: {} steps of batch {} after {} warm-up, {} threads, {}",
            self.config, self.steps, self.batch_size, self.warmup, self.threads, self.device
        )?;
        writeln!(
            f,
            "  samples/s    {:.1}  (step {:.1} ms median, {:.1} ms min)",
            self.samples_per_sec, self.step_ms_median, self.step_ms_min
        )?;
        writeln!(
            f,
            "  GFLOP/step   {:.3}  (forward + backward + optimizer, from the layer shapes)",
            self.gflop_per_step
        )?;
        writeln!(
            f,
            "  GFLOP/s      {:.1}  = {:.0}% of this machine's f32 GEMM ({:.0} GFLOP/s, {n}³ matmul)",
            self.gflops,
            self.roofline_percent,
            self.roofline_gflops,
            n = ROOFLINE_SIDE
        )?;
        writeln!(f, "  peak memory  {:.0} MB resident", self.peak_rss_mb)?;
        write!(
            f,
            "  per step     {:.0} page faults",
            self.page_faults_per_step
        )?;
        if let (Some(c), Some(mb)) = (self.allocations_per_step, self.alloc_mb_per_step) {
            write!(f, ", {c:.0} allocations ({mb:.1} MB)")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 6 → 5 → 3 MLP encoder with a 3 → 4 → 6 MLP decoder, counted by hand: every product is
    /// `2·B·in·out` forward, as much again for its weight gradient, and again for its input gradient
    /// except in the first layer, whose input is the data batch; AdamW is 14 FLOPs per parameter.
    #[test]
    fn the_flop_count_of_a_tiny_mlp_vae_matches_a_hand_count() {
        let text = r#"(
            data: {"Synthetic": (dataset: action_sparsity_non_trivial, manifold: nn, z_dim: 2, x_dim: 6,
                                 n_train: 64, n_test: 16)},
            model: {"Elbo": (
                latent_dim: 3,
                encoder: {"Mlp": (hidden: [5], activation: Relu)},
                decoder: {"Mlp": (hidden: [4], activation: Relu, likelihood: Gaussian(std: 1.0))},
                objectives: [{"Reconstruction": ()}, {"PriorKl": (weight: 1.0)}],
            )},
            train: (batch_size: 16, steps: 3),
            eval: (metrics: []),
        )"#;
        let exp = Experiment::parse(text, "tiny", &[]).unwrap();
        let opts = BenchOptions {
            steps: 3,
            warmup: 1,
            device: Device::Cpu,
        };
        let r = run(exp, "tiny", &opts).unwrap();
        let b = 16.0;
        let fwd = |i: f64, o: f64| 2.0 * b * i * o;
        // Encoder 6 → 5 → (μ, log σ²) 2·3 = 6; decoder 3 → 4 → 6.
        let first = 2.0 * fwd(6.0, 5.0);
        let later = 3.0 * (fwd(5.0, 6.0) + fwd(3.0, 4.0) + fwd(4.0, 6.0));
        let params = (6.0 * 5.0 + 5.0) + (5.0 * 6.0 + 6.0) + (3.0 * 4.0 + 4.0) + (4.0 * 6.0 + 6.0);
        let hand = first + later + ADAMW * params;
        assert!(
            (r.gflop_per_step * 1e9 - hand).abs() < 1e-6,
            "counted {} FLOPs per step, by hand {hand}",
            r.gflop_per_step * 1e9
        );
        assert_eq!((r.batch_size, r.steps), (16, 3));
        assert!(r.samples_per_sec > 0.0 && r.roofline_gflops > 0.0);
    }

    const ADAMW: f64 = crate::flops::ADAMW_FLOPS_PER_PARAM;
}

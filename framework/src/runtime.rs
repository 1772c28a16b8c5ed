//! Process-wide runtime setup: CPU floating-point mode, the rayon pool, device selection.
//!
//! # Denormals
//!
//! Gradients and Adam moments that decay towards zero end up as subnormal f32s, which x86 CPUs
//! handle in microcode at ~100x the cost of a normal operation: pendulum-MLP training became 10x
//! slower after a few dozen steps. [`init_cpu`] sets flush-to-zero (FTZ, results that would be
//! subnormal become 0) and denormals-are-zero (DAZ, subnormal inputs read as 0) in MXCSR.
//! MXCSR is per thread, and a thread copies it from its creator only when it is created, so
//! the bits must be set in every thread that does numeric work, whoever created it:
//!
//! - the calling (main) thread, where candle runs its single-threaded kernels;
//! - every worker of rayon's global pool, through the pool's `start_handler`. candle's CPU
//!   matmul calls `gemm` with `Parallelism::Rayon(n)` (candle-core `cpu_backend::MatMul`), and
//!   gemm-common runs its threads as `(0..n).into_par_iter().for_each(..)`
//!   (`gemm_common::gemm::par_for_each`), i.e. on the *current* rayon pool, which from any
//!   non-rayon thread is the global pool. candle's other parallel CPU kernels (and our fused
//!   AdamW) also use the global pool. So covering the global pool's workers covers gemm
//!   (rayon-core is `links`-unique, so gemm, candle and carve all share the one global pool).
//!
//! # candle's thread counts
//!
//! [`init_cpu`] pins two environment variables that candle 0.11 reads (each only when unset, so
//! either can still be overridden):
//!
//! - `CANDLE_NUM_THREADS=1`. candle runs element-wise ops of ≥ 64K elements (e.g. every gradient
//!   accumulation in `backward`) on its own `BarrierPool`, a second pool of
//!   `CANDLE_NUM_THREADS − 1` threads beside rayon's, whose workers spin ~25K iterations after
//!   each op and whose caller spins until they report. On our 2 cores those spinning threads take
//!   the cores that gemm's rayon workers (and any other training process) need: a
//!   mechanism-sparsity step (batch 256) took 50 ms with the pool and 9 ms without; the pendulum
//!   MLP and conv64 steps were 5–14% slower. With 1, element-wise ops run on the caller.
//! - `RAYON_NUM_THREADS` = the number candle would pick itself. Without it candle sizes gemm's
//!   parallelism by calling `num_cpus::get_physical()`, which reads and parses `/proc/cpuinfo`,
//!   on *every* matmul: ~8% of a mechanism-sparsity step. Set after the global pool is built, so
//!   the pool keeps rayon's own default size.

use crate::error::{Error, Result};
use candle_core::Device;

/// Flush-to-zero bit of MXCSR.
#[cfg(target_arch = "x86_64")]
const FTZ: u32 = 0x8000;
/// Denormals-are-zero bit of MXCSR.
#[cfg(target_arch = "x86_64")]
const DAZ: u32 = 0x0040;

/// Sets FTZ and DAZ in the current thread's MXCSR.
#[cfg(target_arch = "x86_64")]
#[allow(deprecated)]
fn set_ftz_daz() {
    use std::arch::x86_64::{_mm_getcsr, _mm_setcsr};
    // SAFETY: SSE is part of the x86_64 baseline; setting FTZ/DAZ only changes how subnormal
    // values are rounded, which is the point (no exceptions are unmasked).
    unsafe { _mm_setcsr(_mm_getcsr() | FTZ | DAZ) };
}

#[cfg(not(target_arch = "x86_64"))]
fn set_ftz_daz() {}

/// Whether FTZ and DAZ are both set in the calling thread (always false off x86_64).
pub fn ftz_enabled() -> bool {
    #[cfg(target_arch = "x86_64")]
    #[allow(deprecated)]
    {
        // SAFETY: reading MXCSR has no side effects.
        let csr = unsafe { std::arch::x86_64::_mm_getcsr() };
        csr & (FTZ | DAZ) == FTZ | DAZ
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Makes the CPU treat subnormal floats as zero, in the calling thread and in every thread of
/// rayon's global pool, and pins candle's thread counts (see the module docs). Call it early in
/// `main`, before anything uses rayon or candle. Idempotent; calling it again from another thread
/// sets the bits there too. No-op on architectures other than x86_64.
pub fn init_cpu() {
    if !cfg!(target_arch = "x86_64") {
        return;
    }
    static POOL: std::sync::Once = std::sync::Once::new();
    set_ftz_daz();
    POOL.call_once(|| {
        keep_freed_memory();
        let built = rayon::ThreadPoolBuilder::new()
            .start_handler(|_| set_ftz_daz())
            .build_global();
        if let Err(e) = built {
            // The pool was created before us (something used rayon first). Its threads live
            // as long as the process, so setting the bits in each of them once is enough.
            rayon::broadcast(|_| set_ftz_daz());
            log::warn!(
                "runtime::init_cpu: rayon's global thread pool already existed ({e}); \
                 flush-to-zero was set in its current threads, but call init_cpu before \
                 any parallel work so that every pool thread starts with it"
            );
        }
        pin_candle_threads();
    });
}

/// A rayon pool of `threads` workers with flush-to-zero set in each, for work run through `install`.
pub fn thread_pool(threads: usize) -> Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .start_handler(|_| set_ftz_daz())
        .build()
        .map_err(|e| Error::msg(format!("building a pool of {threads} threads: {e}")))
}

/// Sets `CANDLE_NUM_THREADS` and `RAYON_NUM_THREADS` where unset (see the module docs). Runs once,
/// early in `main`, before candle reads them.
fn pin_candle_threads() {
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        let n = candle_core::utils::get_num_threads();
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    }
}

/// Tells glibc's malloc to reuse freed memory instead of returning it to the OS. Every training step frees
/// and re-allocates the same large gradient buffers; by default glibc serves those (> 32 MB) with fresh
/// `mmap`s, so each step page-faults ~300K times. Measured on the pendulum MLP VAE: +25–30% samples/s
/// (conv64: +10%). Cost: the process keeps its peak memory.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            fn mallopt(param: i32, value: i32) -> i32;
        }
        const M_TRIM_THRESHOLD: i32 = -1;
        const M_TOP_PAD: i32 = -2;
        const M_MMAP_MAX: i32 = -4;
        // SAFETY: mallopt only adjusts allocator tunables; it is called once, before heavy allocation.
        unsafe {
            mallopt(M_MMAP_MAX, 0);
            mallopt(M_TRIM_THRESHOLD, i32::MAX);
            mallopt(M_TOP_PAD, 256 << 20);
        }
    }
}

/// Parses a device name: `cpu`, `cuda` (= `cuda:0`) or `cuda:N`.
pub fn device(name: &str) -> Result<Device> {
    let name = name.trim();
    let lower = name.to_ascii_lowercase();
    let ordinal = match lower.as_str() {
        "cpu" => return Ok(Device::Cpu),
        "cuda" => 0,
        s => match s.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(n)) => n,
            _ => {
                return Err(Error::Device(format!(
                    "unknown device `{name}`; valid values: cpu, cuda, cuda:N (N = GPU index, e.g. cuda:0)"
                )))
            }
        },
    };
    cuda_device(ordinal)
}

#[cfg(feature = "cuda")]
fn cuda_device(ordinal: usize) -> Result<Device> {
    Device::new_cuda(ordinal).map_err(|e| {
        Error::Device(format!(
            "no CUDA device available: {e}. Is an NVIDIA driver installed? Use --device cpu."
        ))
    })
}

#[cfg(not(feature = "cuda"))]
fn cuda_device(_ordinal: usize) -> Result<Device> {
    Err(Error::Device(
        "this carve binary was built without CUDA support; rebuild with \
         `cargo build --release --features cuda` (needs the CUDA toolkit), or use --device cpu"
            .to_string(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hint::black_box;

    /// 1e-30 * 1e-10 = 1e-40 is subnormal in f32 (the smallest normal is ~1.18e-38).
    fn denormal_product() -> f32 {
        black_box(1e-30f32) * black_box(1e-10f32)
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn ftz_on_in_caller_and_rayon_workers() {
        init_cpu();
        init_cpu(); // idempotent
        assert!(ftz_enabled());
        assert_eq!(denormal_product(), 0.0);
        // DAZ: a subnormal input reads as zero.
        let sub = black_box(f32::from_bits(1));
        assert_eq!(sub * black_box(1.0f32), 0.0);

        let in_workers = rayon::broadcast(|_| (ftz_enabled(), denormal_product()));
        assert!(!in_workers.is_empty());
        for (on, prod) in in_workers {
            assert!(on);
            assert_eq!(prod, 0.0);
        }
    }

    #[test]
    fn device_names() {
        assert!(matches!(device("cpu"), Ok(Device::Cpu)));
        assert!(matches!(device(" CPU "), Ok(Device::Cpu)));
        let err = device("tpu").unwrap_err().to_string();
        assert!(err.contains("unknown device `tpu`"), "{err}");
        assert!(err.contains("cpu") && err.contains("cuda:N"), "{err}");
        assert!(device("cuda:x").is_err());
        #[cfg(not(feature = "cuda"))]
        {
            let err = device("cuda:1").unwrap_err().to_string();
            assert!(err.contains("built without CUDA support"), "{err}");
            assert!(err.contains("--features cuda"), "{err}");
        }
    }
}

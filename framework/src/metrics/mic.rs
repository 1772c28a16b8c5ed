//! Maximal information coefficient (MIC) and total information coefficient (TIC) of Reshef et al.
//! (Science 2011), with the characteristic matrix approximated by the paper's ApproxMaxMI heuristic.
//!
//! For `n` paired samples and `B = max(n^α, 4)`, the characteristic matrix holds, for every grid size
//! `a × b` (`a` bins on x, `b` bins on y, `a, b ≥ 2`, `a·b ≤ B`), the largest mutual information of the
//! empirical cell frequencies over grids of that size, divided by `ln min(a, b)`. MIC is its largest
//! entry, TIC the sum of its entries (also given divided by the number of entries).
//!
//! ApproxMaxMI fixes one axis at an equal-frequency partition into `b` bins (tied values stay in one bin),
//! groups the points, sorted along the other axis, into clumps (maximal runs sharing a fixed-axis bin),
//! merges the clumps into at most `c·a_max` superclumps of about equal size, and finds the optimal
//! placement of the free axis's bin edges among the superclump boundaries by dynamic programming — one
//! pass gives the optimum for every number of free-axis bins up to `a_max = ⌊B / b⌋`. Both axis roles
//! are run and the larger value is kept for each grid size. Only ranks matter, so the result is invariant
//! under strictly monotone transforms of either variable.
//!
//! Written from the description in the paper's supporting material (not from minepy's source).

use super::EvalInputs;
use crate::error::{Error, Result};
use std::collections::BTreeMap;

/// Parameters of the MIC estimator (defaults of Reshef et al. / minepy).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MicParams {
    /// Exponent of the grid-size bound `B(n) = max(n^alpha, 4)`.
    pub alpha: f64,
    /// Superclump factor: the free axis is searched over at most `c · a` superclumps.
    pub c: f64,
}

impl Default for MicParams {
    fn default() -> Self {
        Self {
            alpha: 0.6,
            c: 15.0,
        }
    }
}

/// MIC and TIC of one pair of variables.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MicResult {
    /// Largest entry of the characteristic matrix, in `[0, 1]`.
    pub mic: f64,
    /// Sum of the characteristic matrix (minepy's default, unnormalised).
    pub tic: f64,
    /// `tic` divided by the number of grid sizes, in `[0, 1]`.
    pub tic_normalised: f64,
}

/// MIC and TIC of the paired samples `(x[k], y[k])`. Pairs with a non-finite member are skipped; with
/// fewer than two pairs left, or a constant variable, everything is 0.
pub fn mic(x: &[f64], y: &[f64], p: &MicParams) -> MicResult {
    assert_eq!(x.len(), y.len(), "mic: x and y must have the same length");
    let (xs, ys): (Vec<f64>, Vec<f64>) = x
        .iter()
        .zip(y)
        .filter(|(a, b)| a.is_finite() && b.is_finite())
        .map(|(&a, &b)| (a, b))
        .unzip();
    let n = xs.len();
    let bound = (n as f64).powf(p.alpha).max(4.0).floor() as usize;
    let side = bound / 2 + 1;
    // mat[a * side + b]: best mutual information (nats) with a x-bins and b y-bins
    let mut mat = vec![0.0f64; side * side];
    if n >= 2 {
        let nlogn: Vec<f64> = (0..=n)
            .map(|m| {
                if m == 0 {
                    0.0
                } else {
                    m as f64 * (m as f64).ln()
                }
            })
            .collect();
        let ord_x = argsort(&xs);
        let ord_y = argsort(&ys);
        // equipartition y into b rows, optimise the x edges for every a ≤ B / b
        for b in 2..=bound / 2 {
            let a_max = bound / b;
            let info = approx_max_mi(&xs, &ord_x, &ys, &ord_y, b, a_max, p.c, &nlogn);
            for (a, &v) in info.iter().enumerate().skip(2) {
                let cell = &mut mat[a * side + b];
                *cell = cell.max(v);
            }
        }
        // equipartition x into a columns, optimise the y edges for every b ≤ B / a
        for a in 2..=bound / 2 {
            let b_max = bound / a;
            let info = approx_max_mi(&ys, &ord_y, &xs, &ord_x, a, b_max, p.c, &nlogn);
            for (b, &v) in info.iter().enumerate().skip(2) {
                let cell = &mut mat[a * side + b];
                *cell = cell.max(v);
            }
        }
    }
    let (mut best, mut total, mut cells) = (0.0f64, 0.0f64, 0usize);
    for a in 2..side {
        for b in 2..side {
            if a * b > bound {
                continue;
            }
            let m = (mat[a * side + b] / (a.min(b) as f64).ln()).clamp(0.0, 1.0);
            best = best.max(m);
            total += m;
            cells += 1;
        }
    }
    MicResult {
        mic: best,
        tic: total,
        tic_normalised: if cells == 0 {
            0.0
        } else {
            total / cells as f64
        },
    }
}

/// Indices sorting `v` ascending.
fn argsort(v: &[f64]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&i, &j| v[i].total_cmp(&v[j]));
    idx
}

/// Lengths of the runs of equal values along `ord` (the order sorting `v`).
fn tie_runs(v: &[f64], ord: &[usize]) -> Vec<usize> {
    let mut runs = Vec::new();
    let mut i = 0;
    while i < ord.len() {
        let mut j = i + 1;
        while j < ord.len() && v[ord[j]] == v[ord[i]] {
            j += 1;
        }
        runs.push(j - i);
        i = j;
    }
    runs
}

/// Equal-frequency grouping of consecutive atoms (of the given sizes, never split) into at most `bins`
/// bins: an atom opens a new bin when adding it would move the current bin's size further from the
/// target than leaving it out; the target is re-set to (points left) / (bins left) at each new bin.
/// Returns the bin of every atom and the number of bins used.
fn equipartition(sizes: &[usize], bins: usize) -> (Vec<usize>, usize) {
    let total: usize = sizes.iter().sum();
    let mut out = Vec::with_capacity(sizes.len());
    let mut target = total as f64 / bins as f64;
    let (mut bin, mut size, mut done) = (0usize, 0usize, 0usize);
    for &s in sizes {
        if size > 0
            && bin + 1 < bins
            && ((size + s) as f64 - target).abs() >= (size as f64 - target).abs()
        {
            bin += 1;
            size = 0;
            target = (total - done) as f64 / (bins - bin) as f64;
        }
        out.push(bin);
        size += s;
        done += s;
    }
    let used = if sizes.is_empty() { 0 } else { bin + 1 };
    (out, used)
}

/// ApproxMaxMI for one axis role: `fixed` is equipartitioned into `rows` bins, the edges of `free` are
/// optimised. Returns `info[l]` = best mutual information (nats) with `l` free-axis bins, `l ≤ l_max`
/// (entries 0 and 1 unused).
#[allow(clippy::too_many_arguments)]
fn approx_max_mi(
    free: &[f64],
    ord_free: &[usize],
    fixed: &[f64],
    ord_fixed: &[usize],
    rows: usize,
    l_max: usize,
    c: f64,
    nlogn: &[f64],
) -> Vec<f64> {
    let n = free.len();
    let mut info = vec![0.0; l_max + 1];
    if l_max < 2 {
        return info;
    }
    // fixed-axis partition: row of every point
    let fixed_runs = tie_runs(fixed, ord_fixed);
    let (run_bin, n_rows) = equipartition(&fixed_runs, rows);
    let mut row = vec![0usize; n];
    let mut pos = 0;
    for (&len, &r) in fixed_runs.iter().zip(&run_bin) {
        for &i in &ord_fixed[pos..pos + len] {
            row[i] = r;
        }
        pos += len;
    }
    if n_rows < 2 {
        return info;
    }
    // clumps along the free axis: tie runs of the free variable are atomic; consecutive runs whose
    // points all share one row merge; a run spanning several rows stays a clump of its own
    const MIXED: usize = usize::MAX;
    let mut clumps: Vec<usize> = Vec::new(); // clump sizes, in free-axis order
    let mut last_label = MIXED;
    let mut pos = 0;
    for len in tie_runs(free, ord_free) {
        let pts = &ord_free[pos..pos + len];
        let r0 = row[pts[0]];
        let label = if pts.iter().all(|&i| row[i] == r0) {
            r0
        } else {
            MIXED
        };
        match clumps.last_mut() {
            Some(last) if label != MIXED && label == last_label => *last += len,
            _ => clumps.push(len),
        }
        last_label = label;
        pos += len;
    }
    // superclumps: at most c · l_max groups of whole clumps, of about equal size
    let k_hat = ((c * l_max as f64).floor() as usize).max(1);
    let blocks: Vec<usize> = if clumps.len() > k_hat {
        let (bin, used) = equipartition(&clumps, k_hat);
        let mut merged = vec![0usize; used];
        for (&s, &b) in clumps.iter().zip(&bin) {
            merged[b] += s;
        }
        merged
    } else {
        clumps
    };
    let k = blocks.len();
    // cumulative row counts at the block boundaries: cum[t * n_rows + r] over blocks 0..t
    let mut cum = vec![0usize; (k + 1) * n_rows];
    let mut pos = 0;
    for (t, &len) in blocks.iter().enumerate() {
        let (head, tail) = cum.split_at_mut((t + 1) * n_rows);
        let next = &mut tail[..n_rows];
        next.copy_from_slice(&head[t * n_rows..]);
        for &i in &ord_free[pos..pos + len] {
            next[row[i]] += 1;
        }
        pos += len;
    }
    let mut starts = vec![0usize; k + 1];
    for t in 0..k {
        starts[t + 1] = starts[t] + blocks[t];
    }
    // score of one free-axis bin made of blocks s..t: Σ_r n_r ln n_r − n ln n (= −n · H(rows | bin))
    let mut score = vec![0.0f64; (k + 1) * (k + 1)];
    for s in 0..k {
        let cs = &cum[s * n_rows..(s + 1) * n_rows];
        for t in s + 1..=k {
            let ct = &cum[t * n_rows..(t + 1) * n_rows];
            let inner: f64 = cs.iter().zip(ct).map(|(&a, &b)| nlogn[b - a]).sum();
            score[s * (k + 1) + t] = inner - nlogn[starts[t] - starts[s]];
        }
    }
    // H(rows) in nats
    let last = &cum[k * n_rows..];
    let h_rows = (n as f64).ln() - last.iter().map(|&m| nlogn[m]).sum::<f64>() / n as f64;
    // dp over the number of bins: f[t] = best total score splitting blocks 0..t into l bins
    let mut f: Vec<f64> = (0..=k).map(|t| score[t]).collect(); // l = 1 (s = 0)
    let mut g = vec![f64::NEG_INFINITY; k + 1];
    let mut best = f64::NEG_INFINITY;
    for (l, slot) in info.iter_mut().enumerate().skip(2) {
        if l <= k {
            let t_range = if l == l_max { k..=k } else { l..=k };
            for t in t_range {
                let mut m = f64::NEG_INFINITY;
                for s in l - 1..t {
                    let v = f[s] + score[s * (k + 1) + t];
                    if v > m {
                        m = v;
                    }
                }
                g[t] = m;
            }
            best = best.max(g[k]);
            std::mem::swap(&mut f, &mut g);
            g.iter_mut().for_each(|v| *v = f64::NEG_INFINITY);
        }
        // more bins than blocks: extra bins stay empty, the information is that of using all blocks
        *slot = if best.is_finite() {
            (h_rows + best / n as f64).max(0.0)
        } else {
            0.0
        };
    }
    info
}

/// Per concept: the mean of its block of code dims, against its label (or factor) column.
fn mic_metric(inputs: &EvalInputs) -> Result<BTreeMap<String, f64>> {
    let n = inputs.n();
    let d = inputs.d;
    let (targets, k): (&[f32], usize) = match inputs.labels.as_deref() {
        Some(l)
            if inputs.n_labels > 0 && (inputs.n_labels == inputs.k || inputs.factors.is_none()) =>
        {
            (l, inputs.n_labels)
        }
        _ => (inputs.require_factors("mic")?, inputs.k),
    };
    if k == 0 || d == 0 || !d.is_multiple_of(k) {
        return Err(Error::Shape {
            context: "metric `mic` (concept i = mean of code dims [i·d/k, (i+1)·d/k))".to_string(),
            expected: format!(
                "code dimension d a positive multiple of the number of concepts k = {k}"
            ),
            got: format!("d = {d}"),
        });
    }
    if targets.len() != n * k {
        return Err(Error::Shape {
            context: "metric `mic` ground truth".to_string(),
            expected: format!("{n} × {k} = {} values", n * k),
            got: format!("{}", targets.len()),
        });
    }
    let per = d / k;
    let p = MicParams::default();
    let mut out = BTreeMap::new();
    let (mut sum_mic, mut sum_tic) = (0.0, 0.0);
    for i in 0..k {
        let z: Vec<f64> = (0..n)
            .map(|r| {
                let row = &inputs.codes[r * d + i * per..r * d + (i + 1) * per];
                row.iter().map(|&v| v as f64).sum::<f64>() / per as f64
            })
            .collect();
        let u: Vec<f64> = (0..n).map(|r| targets[r * k + i] as f64).collect();
        let res = mic(&z, &u, &p);
        out.insert(format!("mic_{i}"), res.mic);
        out.insert(format!("tic_{i}"), res.tic_normalised);
        sum_mic += res.mic;
        sum_tic += res.tic_normalised;
    }
    out.insert("mic".to_string(), sum_mic / k as f64);
    out.insert("tic".to_string(), sum_tic / k as f64);
    Ok(out)
}

crate::register_metric!(
    "mic",
    "CausalVAE MIC/TIC: per concept, mean of its d/k code dims vs its label (or factor); means of MIC and normalised TIC",
    mic_metric
);

crate::register_metric!(
    "tic",
    "same as `mic` (outputs both mic and tic): CausalVAE MIC and normalised TIC per concept and averaged",
    mic_metric
);

#[cfg(test)]
mod tests {
    use super::*;

    fn uniform(seed: u64, n: usize, lo: f32, hi: f32) -> Vec<f64> {
        crate::rng::Rng::new(seed)
            .uniform_vec(n, lo, hi)
            .into_iter()
            .map(f64::from)
            .collect()
    }

    #[test]
    fn identity_scores_one() {
        let x = uniform(1, 1000, 0.0, 1.0);
        let r = mic(&x, &x, &MicParams::default());
        assert!((r.mic - 1.0).abs() < 1e-9, "{r:?}");
        assert!(r.tic_normalised > 0.8 && r.tic_normalised <= 1.0, "{r:?}");
    }

    #[test]
    fn functional_relations_score_high() {
        let x = uniform(2, 1000, -1.0, 1.0);
        let sq: Vec<f64> = x.iter().map(|v| v * v).collect();
        let r = mic(&x, &sq, &MicParams::default());
        assert!(r.mic >= 0.95, "x²: {r:?}");
        let sine: Vec<f64> = x
            .iter()
            .map(|v| (4.0 * std::f64::consts::PI * v).sin())
            .collect();
        let r = mic(&x, &sine, &MicParams::default());
        assert!(r.mic >= 0.9, "sin(4πx): {r:?}");
    }

    #[test]
    fn independent_noise_scores_low() {
        let x = uniform(3, 1000, 0.0, 1.0);
        let y = uniform(4, 1000, 0.0, 1.0);
        let noise = mic(&x, &y, &MicParams::default());
        assert!(noise.mic < 0.2, "{noise:?}");
        let ident = mic(&x, &x, &MicParams::default());
        assert!(ident.tic > noise.tic, "{ident:?} vs {noise:?}");
        assert!(ident.tic_normalised > noise.tic_normalised);
    }

    #[test]
    fn invariant_under_monotone_transforms() {
        let x = uniform(5, 800, 0.0, 1.0);
        let e = uniform(6, 800, -0.3, 0.3);
        let y: Vec<f64> = x.iter().zip(&e).map(|(a, b)| (6.0 * a).sin() + b).collect();
        let p = MicParams::default();
        let base = mic(&x, &y, &p);
        let ex: Vec<f64> = x.iter().map(|v| v.exp()).collect();
        let cube: Vec<f64> = y.iter().map(|v| v * v * v + v).collect();
        for (a, b) in [(&ex, &y), (&x, &cube), (&ex, &cube)] {
            let r = mic(a, b, &p);
            assert!((r.mic - base.mic).abs() < 1e-9, "{r:?} vs {base:?}");
            assert!((r.tic - base.tic).abs() < 1e-9, "{r:?} vs {base:?}");
        }
        // symmetric in its arguments
        let sw = mic(&y, &x, &p);
        assert!((sw.mic - base.mic).abs() < 1e-9 && (sw.tic - base.tic).abs() < 1e-9);
    }

    #[test]
    fn ties_and_degenerate_inputs() {
        let p = MicParams::default();
        // a binary variable against its own noisy source
        let x = uniform(7, 500, 0.0, 1.0);
        let bin: Vec<f64> = x.iter().map(|&v| if v > 0.5 { 1.0 } else { 0.0 }).collect();
        let r = mic(&x, &bin, &p);
        assert!(r.mic > 0.95, "{r:?}");
        let constant = vec![2.0; 500];
        assert_eq!(mic(&x, &constant, &p).mic, 0.0);
        assert_eq!(mic(&[1.0], &[2.0], &p).mic, 0.0);
    }

    #[test]
    fn registered_metric_on_toy_codes() {
        let n = 600;
        let mut rng = crate::rng::Rng::new(8);
        let f = rng.uniform_vec(n * 2, -1.0, 1.0);
        let noise = rng.normal_vec(n * 8);
        let codes: Vec<f32> = (0..n)
            .flat_map(|r| (0..8).map(move |j| (r, j)))
            .map(|(r, j)| f[r * 2 + j / 4] * (1.0 + j as f32) + 0.05 * noise[r * 8 + j])
            .collect();
        let inputs = EvalInputs {
            codes,
            d: 8,
            factors: Some(f),
            k: 2,
            ..Default::default()
        };
        for name in ["mic", "tic"] {
            let out = super::super::compute(&[name.to_string()], &inputs).unwrap();
            assert!(out["mic"] >= 0.9, "{out:?}");
            assert!(out["tic"] > 0.5 && out["tic"] <= 1.0, "{out:?}");
            assert!(out.contains_key("mic_0") && out.contains_key("tic_1"));
        }
        let bad = EvalInputs {
            k: 3,
            factors: Some(vec![0.0; n * 3]),
            ..inputs
        };
        assert!(matches!(mic_metric(&bad), Err(Error::Shape { .. })));
    }

    #[test]
    fn fast_enough_for_pendulum_test_split() {
        let x = uniform(9, 1826, 0.0, 1.0);
        let y = uniform(10, 1826, 0.0, 1.0);
        let t = std::time::Instant::now();
        let r = mic(&x, &y, &MicParams::default());
        let dt = t.elapsed().as_secs_f64();
        eprintln!("mic n=1826 noise: {r:?} in {dt:.3}s");
        let t = std::time::Instant::now();
        let yy: Vec<f64> = x.iter().map(|v| (9.0 * v).cos()).collect();
        let r = mic(&x, &yy, &MicParams::default());
        eprintln!(
            "mic n=1826 cos(9x): {r:?} in {:.3}s",
            t.elapsed().as_secs_f64()
        );
        assert!(dt < 5.0, "{dt}");
    }
    /// numpy's legacy `RandomState(seed).random_sample(n)` (MT19937, 53-bit doubles), to reproduce the
    /// published minepy example exactly.
    fn numpy_random_sample(seed: u32, n: usize) -> Vec<f64> {
        let mut mt = [0u32; 624];
        mt[0] = seed;
        for i in 1..624 {
            mt[i] = 1_812_433_253u32
                .wrapping_mul(mt[i - 1] ^ (mt[i - 1] >> 30))
                .wrapping_add(i as u32);
        }
        let mut idx = 624;
        let mut next = move || {
            if idx >= 624 {
                for i in 0..624 {
                    let y = (mt[i] & 0x8000_0000) | (mt[(i + 1) % 624] & 0x7fff_ffff);
                    let mag = if y & 1 == 1 { 0x9908_b0df } else { 0 };
                    mt[i] = mt[(i + 397) % 624] ^ (y >> 1) ^ mag;
                }
                idx = 0;
            }
            let mut y = mt[idx];
            idx += 1;
            y ^= y >> 11;
            y ^= (y << 7) & 0x9d2c_5680;
            y ^= (y << 15) & 0xefc6_0000;
            y ^ (y >> 18)
        };
        (0..n)
            .map(|_| {
                let a = (next() >> 5) as f64;
                let b = (next() >> 6) as f64;
                (a * 67_108_864.0 + b) / 9_007_199_254_740_992.0
            })
            .collect()
    }

    #[test]
    fn reproduces_the_published_minepy_example() {
        // minepy docs: x = linspace(0, 1, 1000), y = sin(10πx) + x → MIC 1.0, TIC 67.6612295532;
        // np.random.seed(0); y += uniform(-1, 1, 1000) → MIC 0.505716693417, TIC 28.7498326953
        let x: Vec<f64> = (0..1000).map(|i| i as f64 * (1.0 / 999.0)).collect();
        let mut y: Vec<f64> = x
            .iter()
            .map(|v| (10.0 * std::f64::consts::PI * v).sin() + v)
            .collect();
        let p = MicParams::default();
        let r = mic(&x, &y, &p);
        assert!((r.mic - 1.0).abs() < 1e-9, "{r:?}");
        assert!((r.tic - 67.661_229_553_2).abs() < 1e-6, "{r:?}");
        let u = numpy_random_sample(0, 1000);
        assert!((u[0] - 0.548_813_503_927_324_8).abs() < 1e-15);
        for (a, b) in y.iter_mut().zip(&u) {
            *a += -1.0 + 2.0 * b;
        }
        let r = mic(&x, &y, &p);
        assert!((r.mic - 0.505_716_693_417).abs() < 1e-9, "{r:?}");
        assert!((r.tic - 28.749_832_695_3).abs() < 1e-6, "{r:?}");
    }
}

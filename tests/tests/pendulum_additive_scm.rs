//! What an additive SCM can do on the pendulum, from the simulator alone (no model is trained).
//!
//! DEAR's prior is z_j = f2_j(Σ_p A_pj f2_p⁻¹(z_p) + ε_j) with monotone f2: after abduction (ε fixed), a child's
//! counterfactual is h(Σ_p g_p(parent_p) + c) with h monotone. So for a fixed unit, the order of the child's
//! values over do(parent) is the same whatever the other parent is. The shadow length,
//! max(3, 9.5·|sin θ + cos θ·cot φ|), is V-shaped in the pendulum angle with its minimum at a place that moves
//! with the light angle, so no such model is exact; these tests measure how far off the best one is, with the
//! intervention evaluator's protocol (256 test scenes spread over the split, do() at the 8 midpoint quantiles of
//! the intervened factor, descendants accurate within one label unit).
//!
//! The additive fit here is a two-way table over the (pendulum, light) grid, child ≈ h⁻¹(μ + α_i + β_j), fitted by
//! least squares on all 7,308 scenes, with any per-level α, β (not only monotone ones) and three output maps h.
//! It is the best additive model by least squares, not by the accuracy score, so it is an estimate of the class's
//! ceiling, not a proof; the proof that the class cannot be exact is the ordering argument above. For contrast,
//! a mechanism of one weighted sum of the parents with a free link (CausalVAE's g_j(Σ_p A_pj z_p)) follows both
//! shadows.

use carve::components::Do;
use carve::data::pendulum::{
    pendulum_grid, simulate_do, test_indices, PendulumScene, I_RANGE, J_RANGE, J_SKIPPED,
};

/// The evaluator's defaults (`InterventionEvalConfig`).
const ROWS: usize = 256;
const VALUES: usize = 8;
const TOLERANCE: f64 = 1.0;

struct Grid {
    /// Float factors (i, j, len, mid) of every scene, in the generator's order.
    factors: Vec<[f64; 4]>,
    js: Vec<i32>,
}

impl Grid {
    fn new() -> Self {
        let factors = pendulum_grid()
            .into_iter()
            .map(|(i, j)| PendulumScene::new(i as f64, j as f64).factors())
            .collect();
        let js = J_RANGE.filter(|&j| j != J_SKIPPED).collect();
        Self { factors, js }
    }
    fn i_index(&self, i: f64) -> usize {
        (i.round() as i32 - I_RANGE.start()) as usize
    }
    fn j_index(&self, j: f64) -> usize {
        self.js
            .binary_search(&(j.round() as i32))
            .expect("a light angle on the grid")
    }
}

/// Monotone output maps h (applied to the child before the additive fit).
#[derive(Clone, Copy, Debug)]
enum Output {
    Identity,
    Log,
    /// Logit of the min–max-scaled label, clipped to [0.02, 0.98]: what DEAR's BCE-supervised latents are.
    Logit {
        lo: f64,
        hi: f64,
    },
}

impl Output {
    fn to(self, y: f64) -> f64 {
        match self {
            Output::Identity => y,
            Output::Log => y.ln(),
            Output::Logit { lo, hi } => {
                let t = ((y - lo) / (hi - lo)).clamp(0.02, 0.98);
                (t / (1.0 - t)).ln()
            }
        }
    }
    fn from(self, u: f64) -> f64 {
        match self {
            Output::Identity => u,
            Output::Log => u.exp(),
            Output::Logit { lo, hi } => lo + (hi - lo) / (1.0 + (-u).exp()),
        }
    }
}

/// Least-squares two-way table u[i][j] ≈ μ + α_i + β_j (backfitting; the grid is complete, so it converges at once).
fn additive_fit(u: &[f64], ni: usize, nj: usize) -> (Vec<f64>, Vec<f64>) {
    let (mut a, mut b) = (vec![0.0; ni], vec![0.0; nj]);
    for _ in 0..20 {
        for (i, ai) in a.iter_mut().enumerate() {
            *ai = (0..nj).map(|j| u[i * nj + j] - b[j]).sum::<f64>() / nj as f64;
        }
        for (j, bj) in b.iter_mut().enumerate() {
            *bj = (0..ni).map(|i| u[i * nj + j] - a[i]).sum::<f64>() / ni as f64;
        }
    }
    (a, b)
}

/// Midpoint quantiles, as the evaluator takes them.
fn quantiles(v: &[f64], q: usize) -> Vec<f64> {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    (0..q)
        .map(|k| s[((2 * k + 1) * s.len() / (2 * q)).min(s.len() - 1)])
        .collect()
}

/// Accuracy (length, position, both) of a counterfactual rule over the evaluator's do(pendulum) and do(light).
fn score(grid: &Grid, predict: impl Fn(&[f64; 4], usize, f64, usize) -> f64) -> (f64, f64, f64) {
    let test = test_indices(grid.factors.len());
    let rows: Vec<&[f64; 4]> = (0..ROWS)
        .map(|r| &grid.factors[test[r * test.len() / ROWS]])
        .collect();
    let mut hits = [0usize; 2];
    let mut n = 0;
    for parent in 0..2 {
        let column: Vec<f64> = rows.iter().map(|f| f[parent]).collect();
        for v in quantiles(&column, VALUES) {
            for f in &rows {
                let f32s: Vec<f32> = f.iter().map(|&x| x as f32).collect();
                let truth = simulate_do(
                    &f32s,
                    &[Do {
                        node: parent,
                        value: v as f32,
                    }],
                )
                .unwrap();
                for (k, child) in [2, 3].into_iter().enumerate() {
                    let err = predict(f, parent, v, child) - truth[child] as f64;
                    hits[k] += (err.abs() <= TOLERANCE) as usize;
                }
                n += 1;
            }
        }
    }
    let acc = |h: usize| h as f64 / n as f64;
    (acc(hits[0]), acc(hits[1]), acc(hits[0] + hits[1]) / 2.0)
}

/// The best additive counterfactual with output map `h` for each child: abduct the child's residual, move the
/// intervened parent's term.
fn additive_scores(grid: &Grid, h: [Output; 2]) -> (f64, f64, f64) {
    let (ni, nj) = (I_RANGE.count(), grid.js.len());
    let fits: Vec<(Vec<f64>, Vec<f64>)> = [2, 3]
        .iter()
        .zip(h)
        .map(|(&c, h)| {
            let u: Vec<f64> = grid.factors.iter().map(|f| h.to(f[c])).collect();
            additive_fit(&u, ni, nj)
        })
        .collect();
    score(grid, |f, parent, v, child| {
        let (a, b) = &fits[child - 2];
        let h = h[child - 2];
        let delta = if parent == 0 {
            a[grid.i_index(v)] - a[grid.i_index(f[0])]
        } else {
            b[grid.j_index(v)] - b[grid.j_index(f[1])]
        };
        h.from(h.to(f[child]) + delta)
    })
}

fn logit_outputs(grid: &Grid) -> [Output; 2] {
    [2, 3].map(|c| {
        let labels = grid.factors.iter().map(|f| f[c].trunc());
        let (lo, hi) = labels.fold((f64::MAX, f64::MIN), |(l, h), v| (l.min(v), h.max(v)));
        Output::Logit { lo, hi }
    })
}

#[test]
fn no_additive_scm_reaches_the_intervention_accuracy_targets() {
    let grid = Grid::new();
    let mut best: f64 = 0.0;
    for (name, h) in [
        ("identity", [Output::Identity; 2]),
        ("log", [Output::Log; 2]),
        ("logit", logit_outputs(&grid)),
    ] {
        let (len, pos, both) = additive_scores(&grid, h);
        println!("additive SCM, output {name}: length {len:.3}, position {pos:.3}, both {both:.3}");
        // The length is the child an additive model cannot follow (measured 0.41-0.48) ...
        assert!(len < 0.6, "{name}: length {len}");
        best = best.max(both);
    }
    // ... while the position, nearly additive in (sin θ, cot φ), is followed exactly with h = identity.
    let (_, pos, _) = additive_scores(&grid, [Output::Identity; 2]);
    assert!(pos > 0.95, "position {pos}");
    // DEAR's reproduction target is 0.8; the best additive model gets about 0.70. (CausalVAE's mechanisms g_j take
    // all parents at once, so this ceiling does not bind it.)
    assert!(best < 0.8, "best additive SCM {best}");
    assert!(best > 0.6, "best additive SCM {best}");
}

/// (squared error, direction w, link knots, link values) of a single-index fit.
type SingleIndexFit = (f64, [f64; 2], Vec<f64>, Vec<f64>);

/// A mechanism of one weighted sum of the parents, child = h(w·(i, j)) + ε, with a free (non-monotone) link h:
/// CausalVAE's g_j(Σ_p A_pj z_p). The direction is searched over half a circle, h is the child's mean in 300
/// quantile bins of the index, interpolated.
fn single_index_scores(grid: &Grid) -> (f64, f64, f64) {
    const BINS: usize = 300;
    let fit = |child: usize| {
        // (squared error, direction, link knots, link values)
        let mut best: Option<SingleIndexFit> = None;
        for step in 0..360 {
            let angle = step as f64 * std::f64::consts::PI / 360.0;
            let w = [angle.cos(), angle.sin()];
            let index: Vec<f64> = grid
                .factors
                .iter()
                .map(|f| w[0] * f[0] + w[1] * f[1])
                .collect();
            let mut sorted = index.clone();
            sorted.sort_by(f64::total_cmp);
            let edges: Vec<f64> = (0..=BINS)
                .map(|k| sorted[k * (sorted.len() - 1) / BINS])
                .collect();
            let (mut sum, mut count) = (vec![0.0; BINS], vec![0usize; BINS]);
            for (x, f) in index.iter().zip(&grid.factors) {
                let b = edges[1..BINS].partition_point(|&e| e <= *x);
                sum[b] += f[child];
                count[b] += 1;
            }
            let (centres, means): (Vec<f64>, Vec<f64>) = (0..BINS)
                .filter(|&b| count[b] > 0)
                .map(|b| ((edges[b] + edges[b + 1]) / 2.0, sum[b] / count[b] as f64))
                .unzip();
            let link = |x: f64| interp(&centres, &means, x);
            let sse: f64 = index
                .iter()
                .zip(&grid.factors)
                .map(|(&x, f)| (f[child] - link(x)).powi(2))
                .sum();
            if best.as_ref().is_none_or(|b| sse < b.0) {
                best = Some((sse, w, centres, means));
            }
        }
        best.unwrap()
    };
    let fits = [fit(2), fit(3)];
    score(grid, |f, parent, v, child| {
        let (_, w, centres, means) = &fits[child - 2];
        let mut moved = *f;
        moved[parent] = v;
        let h = |g: &[f64; 4]| interp(centres, means, w[0] * g[0] + w[1] * g[1]);
        f[child] + h(&moved) - h(f)
    })
}

/// Piecewise-linear interpolation through (xs, ys), xs increasing, clamped at the ends.
fn interp(xs: &[f64], ys: &[f64], x: f64) -> f64 {
    let j = xs.partition_point(|&v| v <= x);
    if j == 0 {
        return ys[0];
    }
    if j == xs.len() {
        return ys[j - 1];
    }
    let t = (x - xs[j - 1]) / (xs[j] - xs[j - 1]);
    ys[j - 1] + t * (ys[j] - ys[j - 1])
}

#[test]
fn one_weighted_sum_of_the_parents_with_a_free_link_is_enough() {
    // The shadow length is 9.5·|cos(θ − φ)|/sin φ (floored at 3): nearly a function of θ − φ alone, but not a
    // monotone one. So CausalVAE's mechanism class can follow it where DEAR's cannot.
    let (len, pos, both) = single_index_scores(&Grid::new());
    println!("one weighted sum, free link: length {len:.3}, position {pos:.3}, both {both:.3}");
    assert!(len > 0.95 && pos > 0.95, "{len} {pos}");
    assert!(both > 0.95);
}

#[test]
fn without_propagation_a_third_of_the_descendants_land_by_chance() {
    // The independent prior's best case: do() on a parent leaves the shadow as it was.
    let grid = Grid::new();
    let (len, pos, both) = score(&grid, |f, _, _, child| f[child]);
    println!("no propagation: length {len:.3}, position {pos:.3}, both {both:.3}");
    assert!((0.2..0.45).contains(&both), "{both}");
}

//! A gradient-boosted tree classifier with scikit-learn's `GradientBoostingClassifier()` defaults, written for DCI
//! (disentanglement_lib's `compute_importance_gbt`): 100 stages, learning rate 0.1, depth-3 regression trees with the
//! `friedman_mse` split criterion, `min_samples_leaf = 1`, no subsampling; multinomial deviance (one tree per class
//! and stage, Newton leaf values `(K−1)/K · Σr / Σp(1−p)`) or binomial deviance for two classes; initial scores the
//! log class priors; features rounded to `f32` as scikit-learn's trees do. Feature importances are scikit-learn's:
//! per tree the weighted impurity decrease of each feature's splits divided by the root's sample count, averaged
//! over trees that split, normalised to sum 1.
//!
//! Why hand-written: no maintained Rust crate offers a multi-class gradient-boosting classifier with these
//! importances (forust/perpetual: binary log-loss and regression; smartcore and linfa: no boosting). Exact split
//! search is done on feature orders sorted once per fit, level by level. Ties between equally good splits on
//! different features go to the lower feature index (scikit-learn visits features in a random order).
//!
//! How it is kept fast without changing a single bit of the result (each sum still adds the same terms in the
//! same order, every comparison is the same IEEE one):
//! - features are sorted once per fit; a tree keeps, per feature, each node's rows as a contiguous run in sorted
//!   order with their values and targets, and a split stably partitions every run into its children's, so split
//!   search is a sequential scan whose running sums add the node's rows in sorted order, as before;
//! - the children's runs are partitioned and scanned a block of four features at a time, while in cache; the
//!   deepest nodes' runs go to a block-sized buffer, never to memory-wide arrays;
//! - the scans run four features (or, at the root, four trees of a stage, whose root runs are the same sorted
//!   orders) in the lanes of AVX2 registers when the CPU has it; the portable scan is the reference and a test
//!   checks the two agree bit for bit;
//! - node totals are summed in row order, as before, from each node's row-order run; the left sums of the winning
//!   split are summed once, in the scan's order; training rows take their leaf's value from the fit instead of
//!   walking the tree (and [`GradientBoosting::fit_with_train_predictions`] returns their labels); buffers live in
//!   a per-thread workspace reused across trees.

use rayon::prelude::*;
use std::sync::Mutex;

const MAX_DEPTH: usize = 3;
const N_STAGES: usize = 100;
const LEARNING_RATE: f64 = 0.1;
/// scikit-learn's `FEATURE_THRESHOLD`: values closer than this are not split between.
const FEATURE_THRESHOLD: f64 = 1e-7;

#[derive(Clone, Debug)]
enum Node {
    Split {
        feature: usize,
        threshold: f64,
        left: usize,
        right: usize,
    },
    Leaf(f64),
}

#[derive(Clone, Debug)]
struct Tree {
    nodes: Vec<Node>,
}

impl Tree {
    fn predict(&self, x: &[Vec<f64>], i: usize) -> f64 {
        let mut at = 0;
        loop {
            match &self.nodes[at] {
                Node::Leaf(v) => return *v,
                Node::Split {
                    feature,
                    threshold,
                    left,
                    right,
                } => {
                    at = if x[*feature][i] <= *threshold {
                        *left
                    } else {
                        *right
                    }
                }
            }
        }
    }
}

/// A fitted classifier.
#[derive(Clone, Debug)]
pub struct GradientBoosting {
    classes: Vec<usize>,
    init: Vec<f64>,
    /// `stages[m][k]`: the tree of stage `m` for class `k` (one tree per stage for two classes).
    stages: Vec<Vec<Tree>>,
    /// Normalised feature importances.
    pub importances: Vec<f64>,
}

/// A split candidate: proxy improvement, feature, threshold, left count, left sum, left sum of squares.
type Candidate = (f64, usize, f64, f64, f64, f64);

#[derive(Clone, Copy, Default)]
struct Stats {
    n: f64,
    sum: f64,
    sq: f64,
}

impl Stats {
    fn impurity(&self) -> f64 {
        self.sq / self.n - (self.sum / self.n).powi(2)
    }

    fn splittable(&self) -> bool {
        self.n >= 2.0 && self.impurity() > f64::EPSILON
    }

    fn add(&mut self, t: f64) {
        self.n += 1.0;
        self.sum += t;
        self.sq += t * t;
    }
}

/// A row and its value at one position of a feature's sorted order (the value is exact: features are `f32`).
#[derive(Clone, Copy, Default)]
#[repr(C, align(8))]
struct Item {
    row: u32,
    val: f32,
}

/// One position of a node's run below the root: its row's target, the row and its value. The target rides along
/// so that the scans read it in sequence (fetching it by row stalled them on memory latency).
#[derive(Clone, Copy, Default)]
#[repr(C, align(16))] // copied as one 16-byte word by the partitions
struct Elem {
    t: f64,
    row: u32,
    val: f32,
}

/// The fit's features, shared by all its trees: `vals[f * n + i]` is row `i`'s value of feature `f`,
/// `sorted[f * n..(f + 1) * n]` feature `f`'s rows in sorted order with their values (the root's runs), and
/// `rows` the rows in row order (the root's row-order run).
struct Features<'a> {
    n: usize,
    d: usize,
    vals: &'a [f32],
    sorted: &'a [Item],
    rows: &'a [u32],
}

/// Buffers for fitting trees, one per worker thread of a fit and reused by every tree it fits there (allocating
/// them per tree cost page faults).
#[derive(Default)]
struct Workspace {
    /// Runs of depths 1, 2, … alternately, laid out like `Features::sorted`: a node of the depth owns the same
    /// range `start..end` of every feature's run, its rows in that feature's sorted order.
    runs: [Vec<Elem>; 2],
    /// The deepest nodes' runs, one block of features at a time (they are scanned, never partitioned).
    block: Vec<Elem>,
    /// Row-order runs of depths 1, 2, … alternately: a node's rows in row order, at its range.
    rows: [Vec<u32>; 2],
    /// Per row: whether it went to the left child at the last split.
    left: Vec<bool>,
    /// Per row: its node in the tree (after the fit: its leaf).
    node_of: Vec<u8>,
}

impl Workspace {
    fn prepare(&mut self, n: usize, d: usize) {
        // (the second is needed only below depth 2: depth 2's runs, the deepest, go to `block`)
        for runs in self.runs.iter_mut().take(if MAX_DEPTH > 3 { 2 } else { 1 }) {
            runs.resize(n * d, Elem::default());
        }
        self.block.resize(n * BLOCK, Elem::default());
        for rows in &mut self.rows {
            rows.resize(n, 0);
        }
        self.left.resize(n, false);
        self.node_of.clear();
        self.node_of.resize(n, 0);
    }
}

// node ids fit a `u8`
const _: () = assert!(MAX_DEPTH < 8);

/// A node of the frontier: its tree node, its range in every run, its row-order totals.
struct Slot {
    node: u8,
    start: usize,
    end: usize,
    tot: Stats,
}

/// One feature's best split of a node: its proxy (−∞: none) and the rows left of it (its position in the run).
type LaneBest = (f64, usize);

/// The best split of a node on one feature, scanning its run (`at(j)`: target and value at position `j < len`) in
/// sorted order: the first position with the highest proxy `(nr·sl − nl·sr)² / (nl·nr)` among those whose value
/// exceeds the previous one by more than [`FEATURE_THRESHOLD`]. Targets are residuals in [−1, 1], so every proxy
/// is finite and ≥ 0, and "the first candidate, then strictly better ones" is "strictly better than −∞".
fn scan_lane(len: usize, at: impl Fn(usize) -> (f64, f32), tot: Stats) -> LaneBest {
    let mut best = (f64::NEG_INFINITY, 0);
    let mut sum = 0.0;
    let mut last = 0.0;
    for j in 0..len {
        let (t, v) = at(j);
        let v = f64::from(v);
        if j > 0 && v > last + FEATURE_THRESHOLD {
            let nl = j as f64;
            let nr = tot.n - nl;
            let diff = nr * sum - nl * (tot.sum - sum);
            let proxy = diff * diff / (nl * nr);
            if proxy > best.0 {
                best = (proxy, j);
            }
        }
        sum += t;
        last = v;
    }
    best
}

/// [`scan_lane`] for four features at once in AVX2 registers, one lane each: the same IEEE operations lane by
/// lane (compares ordered like Rust's, no FMA), so the same bits.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn scan4_avx2(runs: [&[Elem]; 4], tot: Stats) -> [LaneBest; 4] {
    use std::arch::x86_64::*;
    let len = runs[0].len();
    let runs = runs.map(|r| &r[..len]);
    if len < 2 {
        return [(f64::NEG_INFINITY, 0); 4];
    }
    // position j of the four runs: (targets, values)
    // (macros, not closures: closures do not get the function's target features, and these must inline)
    macro_rules! load {
        ($j:expr) => {{
            let [r0, r1, r2, r3] = runs;
            let j = $j;
            (
                _mm256_set_pd(r3[j].t, r2[j].t, r1[j].t, r0[j].t),
                _mm256_cvtps_pd(_mm_set_ps(r3[j].val, r2[j].val, r1[j].val, r0[j].val)),
            )
        }};
    }
    let one = _mm256_set1_pd(1.0);
    let feature_threshold = _mm256_set1_pd(FEATURE_THRESHOLD);
    let tot_sum = _mm256_set1_pd(tot.sum);
    let (t, mut last) = load!(0);
    let mut sum = _mm256_add_pd(_mm256_setzero_pd(), t);
    // left and right counts at position j (exact integers)
    let mut nl = one;
    let mut nr = _mm256_set1_pd(tot.n - 1.0);
    let (mut best, mut at) = (_mm256_set1_pd(f64::NEG_INFINITY), _mm256_setzero_pd());
    for j in 1..len {
        let (t, v) = load!(j);
        let diff = _mm256_sub_pd(
            _mm256_mul_pd(nr, sum),
            _mm256_mul_pd(nl, _mm256_sub_pd(tot_sum, sum)),
        );
        let proxy = _mm256_div_pd(_mm256_mul_pd(diff, diff), _mm256_mul_pd(nl, nr));
        let valid = _mm256_cmp_pd::<_CMP_GT_OQ>(v, _mm256_add_pd(last, feature_threshold));
        let take = _mm256_and_pd(valid, _mm256_cmp_pd::<_CMP_GT_OQ>(proxy, best));
        best = _mm256_blendv_pd(best, proxy, take);
        at = _mm256_blendv_pd(at, nl, take);
        sum = _mm256_add_pd(sum, t);
        last = v;
        nl = _mm256_add_pd(nl, one);
        nr = _mm256_sub_pd(nr, one);
    }
    let (best, at) = (lanes(best), lanes(at));
    std::array::from_fn(|l| (best[l], at[l] as usize))
}

/// The four lanes of an AVX2 register.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn lanes(x: std::arch::x86_64::__m256d) -> [f64; 4] {
    let mut out = [0.0; 4];
    // SAFETY: `out` holds four f64 (unaligned store).
    unsafe { std::arch::x86_64::_mm256_storeu_pd(out.as_mut_ptr(), x) };
    out
}

/// Whether to run the AVX2 kernels; the portable scans give the same bits (a test compares them).
fn use_avx2() -> bool {
    #[cfg(test)]
    if tests::PORTABLE.load(std::sync::atomic::Ordering::Relaxed) {
        return false;
    }
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Features searched together: one block of runs is partitioned and then scanned while it is in cache.
const BLOCK: usize = 4;

/// Scans node `s`'s runs of the features `f0..f0 + BLOCK` (those below `d`; feature `f`'s runs at
/// `runs[(f - base) * n..]`) into its best split so far: the highest proxy, the first feature on ties (the order
/// a feature-by-feature scan would keep), as a [`Candidate`] read off the runs when the block improves it.
fn scan_block(
    (n, d, f0): (usize, usize, usize),
    (runs, base): (&[Elem], usize),
    s: &Slot,
    best: &mut Option<Candidate>,
) {
    let run = |f: usize| &runs[(f - base) * n + s.start..(f - base) * n + s.end];
    let mut found: Option<(f64, usize, usize)> = None;
    let mut keep = |f: usize, (proxy, pos): LaneBest| {
        let to_beat = found.map(|c| c.0).or(best.map(|c| c.0));
        if f < d && proxy > f64::NEG_INFINITY && to_beat.is_none_or(|b| proxy > b) {
            found = Some((proxy, f, pos));
        }
    };
    if use_avx2() {
        #[cfg(target_arch = "x86_64")]
        {
            // past `d`, lanes repeat the last feature and are ignored
            let runs = std::array::from_fn(|l| run((f0 + l).min(d - 1)));
            // SAFETY: `use_avx2` checked that the CPU supports AVX2.
            for (l, lb) in unsafe { scan4_avx2(runs, s.tot) }.into_iter().enumerate() {
                keep(f0 + l, lb);
            }
        }
    } else {
        for f in f0..(f0 + BLOCK).min(d) {
            let run = run(f);
            keep(f, scan_lane(run.len(), |j| (run[j].t, run[j].val), s.tot));
        }
    }
    if let Some((proxy, f, pos)) = found {
        let run = run(f);
        *best = Some(candidate(|j| (run[j].t, run[j].val), proxy, f, pos));
    }
}

/// The root splits of every output's tree in a stage: the root's runs are the shared sorted orders, so all trees
/// scan them together. Returns each root's row-order totals and best split (`None` when it is not splittable).
fn root_splits(x: &Features, targets: &[Vec<f64>]) -> Vec<(Stats, Option<Candidate>)> {
    let (n, d) = (x.n, x.d);
    let tots: Vec<Stats> = targets
        .iter()
        .map(|t| {
            let mut tot = Stats::default();
            for &v in t {
                tot.add(v);
            }
            tot
        })
        .collect();
    // the root's run of feature `f` with targets `t`
    fn at<'a>(x: &'a Features, f: usize, t: &'a [f64]) -> impl Fn(usize) -> (f64, f32) + 'a {
        let run = &x.sorted[f * x.n..(f + 1) * x.n];
        move |j| (t[run[j].row as usize], run[j].val)
    }
    let finish = |tot: Stats, t: &[f64], best: LaneBest, f: usize| {
        (best.0 > f64::NEG_INFINITY && tot.splittable())
            .then(|| candidate(at(x, f, t), best.0, f, best.1))
    };
    #[cfg(target_arch = "x86_64")]
    if use_avx2() {
        return targets
            .par_chunks(4)
            .zip(tots.par_chunks(4))
            .flat_map_iter(|(ts, tots)| {
                // the group's targets row by row, one lane per output (spare lanes zero, ignored)
                let mut lanes = vec![[0.0; 4]; n];
                for (l, t) in ts.iter().enumerate() {
                    for (lane, &v) in lanes.iter_mut().zip(t) {
                        lane[l] = v;
                    }
                }
                let tot: [Stats; 4] =
                    std::array::from_fn(|l| tots.get(l).copied().unwrap_or_default());
                // SAFETY: `use_avx2` checked that the CPU supports AVX2.
                let bests = unsafe { scan_root4_avx2(n, d, x.sorted, &lanes, tot) };
                (0..ts.len())
                    .map(|l| {
                        let (proxy, at) = bests[l];
                        (tots[l], finish(tots[l], &ts[l], (proxy, at % n), at / n))
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
    }
    targets
        .par_iter()
        .zip(&tots)
        .map(|(t, &tot)| {
            // the first feature with the highest proxy, as for the other nodes
            let mut best: (LaneBest, usize) = ((f64::NEG_INFINITY, 0), 0);
            for f in 0..d {
                let lb = scan_lane(n, at(x, f, t), tot);
                if lb.0 > best.0 .0 {
                    best = (lb, f);
                }
            }
            (tot, finish(tot, t, best.0, best.1))
        })
        .collect()
}

/// [`scan_lane`] over every feature of the root for four trees at once, one lane each (`targets[i][l]`: tree
/// `l`'s target at row `i`): positions, values and the validity test are shared, and each lane keeps its best over
/// (feature, position) in order, as scanning its features one by one and keeping the first best does. Returns per
/// lane the best proxy (−∞: none) and where it is, `f * n + j`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn scan_root4_avx2(
    n: usize,
    d: usize,
    sorted: &[Item],
    targets: &[[f64; 4]],
    tot: [Stats; 4],
) -> [LaneBest; 4] {
    use std::arch::x86_64::*;
    assert!(targets.len() == n && sorted.len() >= d * n);
    if n < 2 {
        return [(f64::NEG_INFINITY, 0); 4];
    }
    let one = _mm256_set1_pd(1.0);
    let tot_sum = _mm256_setr_pd(tot[0].sum, tot[1].sum, tot[2].sum, tot[3].sum);
    let (mut best, mut at) = (_mm256_set1_pd(f64::NEG_INFINITY), _mm256_setzero_pd());
    // one feature's targets in its sorted order, gathered first so that the scan reads them in sequence
    let mut in_order = vec![[0.0; 4]; n];
    for f in 0..d {
        let run = &sorted[f * n..(f + 1) * n];
        for (t, it) in in_order.iter_mut().zip(run) {
            *t = targets[it.row as usize];
        }
        // (a macro, not a closure: closures do not get the function's target features, and this must inline)
        macro_rules! load {
            ($j:expr) => {
                // SAFETY: four f64 (unaligned load).
                unsafe { _mm256_loadu_pd(in_order[$j].as_ptr()) }
            };
        }
        let mut sum = _mm256_add_pd(_mm256_setzero_pd(), load!(0));
        let mut last = f64::from(run[0].val);
        let mut nl = one;
        let mut nr = _mm256_set1_pd(n as f64 - 1.0);
        let mut here = _mm256_set1_pd((f * n + 1) as f64);
        for (j, it) in run.iter().enumerate().skip(1) {
            let v = f64::from(it.val);
            if v > last + FEATURE_THRESHOLD {
                let diff = _mm256_sub_pd(
                    _mm256_mul_pd(nr, sum),
                    _mm256_mul_pd(nl, _mm256_sub_pd(tot_sum, sum)),
                );
                let proxy = _mm256_div_pd(_mm256_mul_pd(diff, diff), _mm256_mul_pd(nl, nr));
                let take = _mm256_cmp_pd::<_CMP_GT_OQ>(proxy, best);
                best = _mm256_blendv_pd(best, proxy, take);
                at = _mm256_blendv_pd(at, here, take);
            }
            sum = _mm256_add_pd(sum, load!(j));
            last = v;
            nl = _mm256_add_pd(nl, one);
            nr = _mm256_sub_pd(nr, one);
            here = _mm256_add_pd(here, one);
        }
    }
    let (best, at) = (lanes(best), lanes(at));
    std::array::from_fn(|l| (best[l], at[l] as usize))
}

/// The split of a node on feature `f` after `pos` rows of its run (`at(j)`: target and value at position `j`), as
/// the scan saw it: proxy, feature, threshold, and the left count, sum and sum of squares (summed in the scan's
/// order, so the same bits).
fn candidate(at: impl Fn(usize) -> (f64, f32), proxy: f64, f: usize, pos: usize) -> Candidate {
    let (mut sum, mut sq) = (0.0, 0.0);
    for j in 0..pos {
        let t = at(j).0;
        sum += t;
        sq += t * t;
    }
    let (last, v) = (f64::from(at(pos - 1).1), f64::from(at(pos).1));
    let mut threshold = last / 2.0 + v / 2.0;
    if threshold == v || threshold.is_infinite() || threshold.is_nan() {
        threshold = last;
    }
    (proxy, f, threshold, pos as f64, sum, sq)
}

/// Stably partitions one run of a node into its children's runs (`n_left` rows first, by `left[row]`), keeping
/// its order; `row` and `out` read an element's row and make its copy.
fn partition_run<S: Copy, T>(
    run: &[S],
    to: &mut [T],
    n_left: usize,
    left: &[bool],
    row: impl Fn(S) -> u32,
    out: impl Fn(S) -> T,
) {
    let (mut l, mut r) = (0, n_left);
    for &e in run {
        let g = left[row(e) as usize];
        to[if g { l } else { r }] = out(e);
        l += usize::from(g);
        r += usize::from(!g);
    }
}

/// Fits one depth-limited regression tree to `target` from its root's totals and best split ([`root_splits`]);
/// returns it (leaf values unset: leaf ids in `ws.node_of`) and the unnormalised importances (impurity decrease / n).
fn fit_tree(
    x: &Features,
    target: &[f64],
    (tot, root_split): (Stats, Option<Candidate>),
    ws: &mut Workspace,
) -> (Vec<Node>, Vec<f64>) {
    let (n, d) = (x.n, x.d);
    ws.prepare(n, d);
    let Workspace {
        runs,
        block,
        rows,
        left,
        node_of,
    } = ws;
    let mut best = vec![root_split];
    let mut frontier = vec![Slot {
        node: 0,
        start: 0,
        end: n,
        tot,
    }];
    let mut nodes = vec![Node::Leaf(0.0)];
    let mut importance = vec![0.0; d];
    for depth in 0..MAX_DEPTH {
        // this depth's runs (`src`, and the row-order ones) and the next depth's
        let [odd, even] = runs;
        let (src, dst): (&[Elem], &mut [Elem]) = if depth % 2 == 1 {
            (odd, even)
        } else {
            (even, odd)
        };
        let [rows_odd, rows_even] = rows;
        let (order, order_next): (&[u32], &mut [u32]) = match depth {
            0 => (x.rows, rows_odd),
            _ if depth % 2 == 1 => (rows_odd, rows_even),
            _ => (rows_even, rows_odd),
        };
        let deeper = depth + 1 < MAX_DEPTH;
        let mut next: Vec<Slot> = Vec::new();
        // split parents whose children need their feature runs: (start, end, rows going left)
        let mut parents = Vec::new();
        for (s, b) in frontier.iter().zip(&best) {
            let Some((_, f, threshold, nl, sl, ql)) = *b else {
                continue;
            };
            let t = &s.tot;
            let left_stats = Stats {
                n: nl,
                sum: sl,
                sq: ql,
            };
            let right_stats = Stats {
                n: t.n - nl,
                sum: t.sum - sl,
                sq: t.sq - ql,
            };
            importance[f] += (t.n * t.impurity()
                - left_stats.n * left_stats.impurity()
                - right_stats.n * right_stats.impurity())
                / n as f64;
            let (l, r) = (nodes.len(), nodes.len() + 1);
            nodes.push(Node::Leaf(0.0));
            nodes.push(Node::Leaf(0.0));
            nodes[usize::from(s.node)] = Node::Split {
                feature: f,
                threshold,
                left: l,
                right: r,
            };
            // Route the node's rows, listed in row order by its row-order run, and sum the children's totals in
            // row order as the original per-row pass did (adding +0.0 leaves a sum from +0.0 unchanged, bit for
            // bit).
            let col = &x.vals[f * n..(f + 1) * n];
            let mut n_left = 0;
            let (mut sum, mut sq) = ([0.0f64; 2], [0.0f64; 2]);
            for &i in &order[s.start..s.end] {
                let i = i as usize;
                let go = f64::from(col[i]) <= threshold;
                left[i] = go;
                node_of[i] = if go { l as u8 } else { r as u8 };
                n_left += usize::from(go);
                let t = target[i];
                sum[0] += if go { t } else { 0.0 };
                sum[1] += if go { 0.0 } else { t };
                sq[0] += if go { t * t } else { 0.0 };
                sq[1] += if go { 0.0 } else { t * t };
            }
            let mid = s.start + n_left;
            let children =
                [(l, s.start, mid, 0), (r, mid, s.end, 1)].map(|(node, start, end, c)| Slot {
                    node: node as u8,
                    start,
                    end,
                    tot: Stats {
                        n: (end - start) as f64,
                        sum: sum[c],
                        sq: sq[c],
                    },
                });
            if deeper {
                let (from, to) = (&order[s.start..s.end], &mut order_next[s.start..s.end]);
                partition_run(from, to, n_left, left, |i| i, |i| i);
                if children.iter().any(|c| c.tot.splittable()) {
                    parents.push((s.start, s.end, n_left, next.len()));
                }
            }
            next.extend(children);
        }
        if next.is_empty() || !deeper {
            break;
        }
        // Block by block: partition the parents' runs into their children's, then scan the children on them
        // while they are in cache. The deepest nodes' runs are never partitioned again: they go to a
        // block-sized buffer, and each parent's children are scanned right after its partition.
        let deepest = depth + 2 == MAX_DEPTH;
        best = vec![None; next.len()];
        for f0 in (0..d).step_by(BLOCK) {
            let (to, base): (&mut [Elem], usize) = if deepest { (block, f0) } else { (dst, 0) };
            for &(start, end, n_left, c) in &parents {
                for f in f0..(f0 + BLOCK).min(d) {
                    let to = &mut to[(f - base) * n + start..(f - base) * n + end];
                    let from = f * n + start..f * n + end;
                    if depth == 0 {
                        let out = |it: Item| Elem {
                            t: target[it.row as usize],
                            row: it.row,
                            val: it.val,
                        };
                        partition_run(&x.sorted[from], to, n_left, left, |it| it.row, out);
                    } else {
                        partition_run(&src[from], to, n_left, left, |e| e.row, |e| e);
                    }
                }
                if deepest {
                    for (child, b) in next[c..c + 2].iter().zip(&mut best[c..c + 2]) {
                        if child.tot.splittable() {
                            scan_block((n, d, f0), (to, base), child, b);
                        }
                    }
                }
            }
            if !deepest {
                for (child, b) in next.iter().zip(&mut best) {
                    if child.tot.splittable() {
                        scan_block((n, d, f0), (to, base), child, b);
                    }
                }
            }
        }
        frontier = next;
    }
    (nodes, importance)
}

/// scikit-learn's trees see features as `float32`; round them the same way (thresholds stay `f64`).
fn as_f32(x: &[Vec<f64>]) -> Vec<Vec<f64>> {
    x.iter()
        .map(|c| c.iter().map(|&v| f64::from(v as f32)).collect())
        .collect()
}

impl GradientBoosting {
    /// Fits on features `x` (column-wise, `x[f][i]`) and labels `y`.
    pub fn fit(x: &[Vec<f64>], y: &[usize]) -> Self {
        Self::fit_with_train_predictions(x, y).0
    }

    /// [`Self::fit`], and the model's predictions for the training rows, `== predict(x)` (the fit's own scores:
    /// the same sums in the same order, without walking the trees again).
    pub fn fit_with_train_predictions(x: &[Vec<f64>], y: &[usize]) -> (Self, Vec<usize>) {
        let x = &as_f32(x);
        let n = y.len();
        let d = x.len();
        let mut classes = y.to_vec();
        classes.sort_unstable();
        classes.dedup();
        let kc = classes.len();
        let yi: Vec<usize> = y
            .iter()
            .map(|v| classes.binary_search(v).unwrap())
            .collect();
        let prior: Vec<f64> = (0..kc)
            .map(|c| yi.iter().filter(|&&v| v == c).count() as f64 / n as f64)
            .collect();
        let binary = kc == 2;
        let outputs = if binary { 1 } else { kc.max(1) };
        let init: Vec<f64> = if binary {
            vec![(prior[1] / (1.0 - prior[1])).ln()]
        } else {
            prior.iter().map(|p| p.ln()).collect()
        };
        let mut raw: Vec<Vec<f64>> = (0..outputs).map(|k| vec![init[k]; n]).collect();
        let mut stages = Vec::with_capacity(N_STAGES);
        let mut imp_sum = vec![0.0; d];
        let mut relevant = 0usize;
        if kc >= 2 {
            let order: Vec<Vec<usize>> = x
                .iter()
                .map(|col| {
                    let mut o: Vec<usize> = (0..n).collect();
                    o.sort_by(|&a, &b| col[a].total_cmp(&col[b]));
                    o
                })
                .collect();
            assert!(
                u32::try_from(n).is_ok(),
                "too many rows for the tree fitter"
            );
            let vals: Vec<f32> = x.iter().flatten().map(|&v| v as f32).collect();
            let sorted: Vec<Item> = order
                .iter()
                .enumerate()
                .flat_map(|(f, o)| {
                    let vals = &vals[f * n..(f + 1) * n];
                    o.iter().map(move |&i| Item {
                        row: i as u32,
                        val: vals[i],
                    })
                })
                .collect();
            let rows: Vec<u32> = (0..n as u32).collect();
            let features = Features {
                n,
                d,
                vals: &vals,
                sorted: &sorted,
                rows: &rows,
            };
            let mut prob = vec![vec![0.0; n]; outputs];
            let mut scratch = (vec![0.0; n], vec![0.0; n]);
            let mut resid = vec![vec![0.0; n]; outputs];
            let workspaces: Vec<Mutex<Workspace>> = (0..rayon::current_num_threads())
                .map(|_| Mutex::default())
                .collect();
            for _ in 0..N_STAGES {
                // probabilities at the current scores
                if binary {
                    for (p, r) in prob[0].iter_mut().zip(&raw[0]) {
                        *p = 1.0 / (1.0 + (-r).exp());
                    }
                } else {
                    softmax(&raw, &mut prob, &mut scratch);
                }
                // residuals of every output, then the root splits of all the stage's trees at once
                resid.par_iter_mut().enumerate().for_each(|(k, r)| {
                    let cls = if binary { 1 } else { k };
                    for ((r, &y), p) in r.iter_mut().zip(&yi).zip(&prob[k]) {
                        *r = f64::from(u8::from(y == cls)) - p;
                    }
                });
                let roots = root_splits(&features, &resid);
                let fitted: Vec<(Tree, Vec<f64>, bool)> = raw
                    .par_iter_mut()
                    .zip(&resid)
                    .zip(roots)
                    .enumerate()
                    .map(|(k, ((raw_k, resid), root))| {
                        let cls = if binary { 1 } else { k };
                        let yk = |i: usize| f64::from(u8::from(yi[i] == cls));
                        // this thread's workspace (nothing below waits on other jobs, so it is free;
                        // a fresh one otherwise)
                        let slot = rayon::current_thread_index().unwrap_or(0) % workspaces.len();
                        let mut own = workspaces[slot].try_lock();
                        let mut fresh = Workspace::default();
                        let ws = own.as_deref_mut().unwrap_or(&mut fresh);
                        {
                            let (mut nodes, imp) = fit_tree(&features, resid, root, ws);
                            let split = nodes.len() > 1;
                            let mut num = vec![0.0; nodes.len()];
                            let mut den = vec![0.0; nodes.len()];
                            for (i, &leaf) in ws.node_of.iter().enumerate() {
                                let leaf = usize::from(leaf);
                                num[leaf] += resid[i];
                                den[leaf] += (yk(i) - resid[i]) * (1.0 - yk(i) + resid[i]);
                            }
                            let scale = if binary {
                                1.0
                            } else {
                                (kc as f64 - 1.0) / kc as f64
                            };
                            let mut value = vec![0.0; nodes.len()];
                            for (v, node) in nodes.iter_mut().enumerate() {
                                if let Node::Leaf(val) = node {
                                    *val = if den[v].abs() < 1e-150 {
                                        0.0
                                    } else {
                                        scale * num[v] / den[v]
                                    };
                                    value[v] = *val;
                                }
                            }
                            // a training row's prediction is its leaf's value (the fit routed it there)
                            for (r, &leaf) in raw_k.iter_mut().zip(&ws.node_of) {
                                *r += LEARNING_RATE * value[usize::from(leaf)];
                            }
                            (Tree { nodes }, imp, split)
                        }
                    })
                    .collect();
                let mut stage = Vec::with_capacity(outputs);
                for (tree, imp, split) in fitted {
                    if split {
                        relevant += 1;
                        for (a, b) in imp_sum.iter_mut().zip(&imp) {
                            *a += b;
                        }
                    }
                    stage.push(tree);
                }
                stages.push(stage);
            }
        }
        let total: f64 = imp_sum.iter().sum();
        let importances = if relevant == 0 || total == 0.0 {
            vec![0.0; d]
        } else {
            imp_sum.iter().map(|v| v / total).collect()
        };
        let model = Self {
            classes,
            init,
            stages,
            importances,
        };
        let labels = (0..n).map(|i| model.label(|k| raw[k][i])).collect();
        (model, labels)
    }

    /// The label for scores `raw(k)`, `k < init.len()`: the sign for two classes, else the first highest.
    fn label(&self, raw: impl Fn(usize) -> f64) -> usize {
        if self.classes.len() == 2 {
            self.classes[usize::from(raw(0) > 0.0)]
        } else {
            let mut best = 0;
            for k in 1..self.init.len() {
                if raw(k) > raw(best) {
                    best = k;
                }
            }
            self.classes[best]
        }
    }

    /// Predicted labels for column-wise features `x`.
    pub fn predict(&self, x: &[Vec<f64>]) -> Vec<usize> {
        let x = &as_f32(x);
        let n = x.first().map_or(0, Vec::len);
        // Blocks of rows in parallel, tree by tree within a block; each row's scores still add the trees in
        // stage order, as one row at a time would.
        const BLOCK: usize = 512;
        (0..n.div_ceil(BLOCK))
            .into_par_iter()
            .flat_map_iter(|b| {
                let rows = b * BLOCK..((b + 1) * BLOCK).min(n);
                let mut raw: Vec<Vec<f64>> =
                    self.init.iter().map(|&v| vec![v; rows.len()]).collect();
                for stage in &self.stages {
                    for (raw_k, tree) in raw.iter_mut().zip(stage) {
                        for (r, i) in raw_k.iter_mut().zip(rows.clone()) {
                            *r += LEARNING_RATE * tree.predict(x, i);
                        }
                    }
                }
                (0..rows.len()).map(move |j| self.label(|k| raw[k][j]))
            })
            .collect()
    }
}

/// Softmax of the scores `raw[k][i]` over `k` into `prob[k][i]`, row by row exactly as `max`, `exp(r − max)`,
/// their sum in class order and the quotients; computed class by class over all rows (`scratch`: n-long buffers).
fn softmax(raw: &[Vec<f64>], prob: &mut [Vec<f64>], (max, sum): &mut (Vec<f64>, Vec<f64>)) {
    max.fill(f64::NEG_INFINITY);
    for r in raw {
        for (m, &v) in max.iter_mut().zip(r) {
            *m = f64::max(*m, v);
        }
    }
    // (the original sum started at −0.0 or 0.0; the first term, exp(·) > 0, makes that the same)
    sum.fill(0.0);
    for (p, r) in prob.iter_mut().zip(raw) {
        for ((p, &v), (&m, s)) in p.iter_mut().zip(r).zip(max.iter().zip(sum.iter_mut())) {
            *p = (v - m).exp();
            *s += *p;
        }
    }
    for p in prob.iter_mut() {
        for (p, &s) in p.iter_mut().zip(sum.iter()) {
            *p /= s;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// Forces the portable scans (other tests fitting meanwhile get the same bits either way).
    pub(super) static PORTABLE: AtomicBool = AtomicBool::new(false);

    #[test]
    fn avx2_kernels_match_the_portable_scans_bit_for_bit() {
        let n = 500;
        let mut rng = crate::rng::Rng::new(7);
        // values on a coarse grid (ties, and gaps within FEATURE_THRESHOLD), a constant feature, and seven
        // features so that the last block of four has a spare lane
        let mut x: Vec<Vec<f64>> = (0..6)
            .map(|_| {
                rng.normal_vec(n)
                    .into_iter()
                    .map(|v| (f64::from(v) * 4.0).round() / 4.0 + 1e-8 * f64::from(v > 0.0))
                    .collect()
            })
            .collect();
        x.push(vec![0.5; n]);
        let many: Vec<usize> = (0..n)
            .map(|i| ((x[0][i] + x[2][i] - x[4][i]).clamp(-2.0, 2.0) * 1.5 + 3.0) as usize)
            .collect();
        let two: Vec<usize> = (0..n).map(|i| usize::from(x[1][i] > x[3][i])).collect();
        for y in [many, two] {
            let (fast, fast_train) = GradientBoosting::fit_with_train_predictions(&x, &y);
            PORTABLE.store(true, Ordering::Relaxed);
            let (slow, slow_train) = GradientBoosting::fit_with_train_predictions(&x, &y);
            PORTABLE.store(false, Ordering::Relaxed);
            assert_eq!(format!("{fast:?}"), format!("{slow:?}"));
            assert_eq!(fast_train, slow_train);
            assert_eq!(fast_train, fast.predict(&x));
        }
    }

    #[test]
    fn learns_a_threshold_rule_and_credits_the_informative_feature() {
        let n = 300;
        let mut rng = crate::rng::Rng::new(1);
        let a: Vec<f64> = rng.normal_vec(n).into_iter().map(f64::from).collect();
        let b: Vec<f64> = rng.normal_vec(n).into_iter().map(f64::from).collect();
        let y: Vec<usize> = a
            .iter()
            .map(|&v| {
                if v < -0.5 {
                    0
                } else if v < 0.5 {
                    1
                } else {
                    2
                }
            })
            .collect();
        let x = vec![b, a];
        let m = GradientBoosting::fit(&x, &y);
        assert_eq!(m.predict(&x), y);
        assert!(m.importances[1] > 0.9, "{:?}", m.importances);
    }
}

//! A gradient-boosted tree classifier with scikit-learn's `GradientBoostingClassifier()` defaults, written for DCI
//! (disentanglement_lib's `compute_importance_gbt`): 100 stages, learning rate 0.1, depth-3 regression trees with the
//! `friedman_mse` split criterion, `min_samples_leaf = 1`, no subsampling; multinomial deviance (one tree per class
//! and stage, Newton leaf values `(K−1)/K · Σr / Σp(1−p)`) or binomial deviance for two classes; initial scores the
//! log class priors; features rounded to `f32` as scikit-learn's trees do. Feature importances are scikit-learn's: per tree the weighted impurity decrease of each
//! feature's splits divided by the root's sample count, averaged over trees that split, normalised to sum 1.
//!
//! Why hand-written: no maintained Rust crate offers a multi-class gradient-boosting classifier with these
//! importances (forust/perpetual: binary log-loss and regression; smartcore and linfa: no boosting). Exact split
//! search is done on feature orders sorted once per fit, level by level. Ties between equally good splits on
//! different features go to the lower feature index (scikit-learn visits features in a random order).

use rayon::prelude::*;

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

struct Stats {
    n: f64,
    sum: f64,
    sq: f64,
}

impl Stats {
    fn impurity(&self) -> f64 {
        self.sq / self.n - (self.sum / self.n).powi(2)
    }
}

/// Fits one depth-limited regression tree to `target`; returns it (leaf values unset: leaf ids in `leaf_of`) and
/// the unnormalised importances (impurity decrease / n).
fn fit_tree(
    x: &[Vec<f64>],
    order: &[Vec<usize>],
    target: &[f64],
) -> (Vec<Node>, Vec<usize>, Vec<f64>) {
    let n = target.len();
    let d = x.len();
    let mut nodes = vec![Node::Leaf(0.0)];
    let mut node_of = vec![0usize; n];
    let mut importance = vec![0.0; d];
    let mut frontier = vec![0usize];
    for _depth in 0..MAX_DEPTH {
        // statistics of the frontier nodes
        let slot: std::collections::HashMap<usize, usize> =
            frontier.iter().enumerate().map(|(s, &v)| (v, s)).collect();
        let m = frontier.len();
        let mut tot: Vec<Stats> = (0..m)
            .map(|_| Stats {
                n: 0.0,
                sum: 0.0,
                sq: 0.0,
            })
            .collect();
        let mut slot_of = vec![usize::MAX; n];
        for i in 0..n {
            if let Some(&s) = slot.get(&node_of[i]) {
                slot_of[i] = s;
                tot[s].n += 1.0;
                tot[s].sum += target[i];
                tot[s].sq += target[i] * target[i];
            }
        }
        let splittable: Vec<bool> = tot
            .iter()
            .map(|t| t.n >= 2.0 && t.impurity() > f64::EPSILON)
            .collect();
        // best (proxy, feature, threshold, left stats) per slot
        let mut best: Vec<Option<Candidate>> = vec![None; m];
        for f in 0..d {
            let mut ln = vec![0.0; m];
            let mut ls = vec![0.0; m];
            let mut lq = vec![0.0; m];
            let mut last = vec![f64::NAN; m];
            for &i in &order[f] {
                let s = slot_of[i];
                if s == usize::MAX || !splittable[s] {
                    continue;
                }
                let v = x[f][i];
                if ln[s] > 0.0 && v > last[s] + FEATURE_THRESHOLD {
                    let (nl, nr) = (ln[s], tot[s].n - ln[s]);
                    let (sl, sr) = (ls[s], tot[s].sum - ls[s]);
                    let diff = nr * sl - nl * sr;
                    let proxy = diff * diff / (nl * nr);
                    if best[s].is_none_or(|b| proxy > b.0) {
                        let mut thr = last[s] / 2.0 + v / 2.0;
                        if thr == v || thr.is_infinite() || thr.is_nan() {
                            thr = last[s];
                        }
                        best[s] = Some((proxy, f, thr, nl, sl, lq[s]));
                    }
                }
                ln[s] += 1.0;
                ls[s] += target[i];
                lq[s] += target[i] * target[i];
                last[s] = v;
            }
        }
        let mut next = Vec::new();
        let mut child_of = vec![(0usize, 0usize); m];
        for (s, b) in best.iter().enumerate() {
            let Some((_, f, thr, nl, sl, ql)) = *b else {
                continue;
            };
            let t = &tot[s];
            let left = Stats {
                n: nl,
                sum: sl,
                sq: ql,
            };
            let right = Stats {
                n: t.n - nl,
                sum: t.sum - sl,
                sq: t.sq - ql,
            };
            importance[f] +=
                (t.n * t.impurity() - left.n * left.impurity() - right.n * right.impurity())
                    / n as f64;
            let (l, r) = (nodes.len(), nodes.len() + 1);
            nodes.push(Node::Leaf(0.0));
            nodes.push(Node::Leaf(0.0));
            nodes[frontier[s]] = Node::Split {
                feature: f,
                threshold: thr,
                left: l,
                right: r,
            };
            child_of[s] = (l, r);
            next.push(l);
            next.push(r);
        }
        if next.is_empty() {
            break;
        }
        for i in 0..n {
            let s = slot_of[i];
            if s == usize::MAX {
                continue;
            }
            if let Node::Split {
                feature, threshold, ..
            } = nodes[frontier[s]]
            {
                node_of[i] = if x[feature][i] <= threshold {
                    child_of[s].0
                } else {
                    child_of[s].1
                };
            }
        }
        frontier = next;
    }
    (nodes, node_of, importance)
}

/// scikit-learn's trees see features as `float32`; round them the same way (thresholds stay `f64`).
fn as_f32(x: &[Vec<f64>]) -> Vec<Vec<f64>> {
    x.iter()
        .map(|c| c.iter().map(|&v| f64::from(v as f32)).collect())
        .collect()
}

fn softmax_row(raw: &[f64]) -> Vec<f64> {
    let max = raw.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = raw.iter().map(|v| (v - max).exp()).collect();
    let s: f64 = e.iter().sum();
    e.into_iter().map(|v| v / s).collect()
}

impl GradientBoosting {
    /// Fits on features `x` (column-wise, `x[f][i]`) and labels `y`.
    pub fn fit(x: &[Vec<f64>], y: &[usize]) -> Self {
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
        let order: Vec<Vec<usize>> = x
            .iter()
            .map(|col| {
                let mut o: Vec<usize> = (0..n).collect();
                o.sort_by(|&a, &b| col[a].total_cmp(&col[b]));
                o
            })
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
            for _ in 0..N_STAGES {
                // probabilities at the current scores
                let prob: Vec<Vec<f64>> = if binary {
                    vec![raw[0].iter().map(|r| 1.0 / (1.0 + (-r).exp())).collect()]
                } else {
                    let rows: Vec<Vec<f64>> = (0..n)
                        .map(|i| softmax_row(&(0..kc).map(|k| raw[k][i]).collect::<Vec<_>>()))
                        .collect();
                    (0..kc)
                        .map(|k| rows.iter().map(|r| r[k]).collect())
                        .collect()
                };
                let fitted: Vec<(Tree, Vec<f64>, bool)> = (0..outputs)
                    .into_par_iter()
                    .map(|k| {
                        let cls = if binary { 1 } else { k };
                        let yk: Vec<f64> =
                            yi.iter().map(|&v| f64::from(u8::from(v == cls))).collect();
                        let resid: Vec<f64> = (0..n).map(|i| yk[i] - prob[k][i]).collect();
                        let (mut nodes, leaf_of, imp) = fit_tree(x, &order, &resid);
                        let split = nodes.len() > 1;
                        let mut num = vec![0.0; nodes.len()];
                        let mut den = vec![0.0; nodes.len()];
                        for i in 0..n {
                            num[leaf_of[i]] += resid[i];
                            den[leaf_of[i]] += (yk[i] - resid[i]) * (1.0 - yk[i] + resid[i]);
                        }
                        let scale = if binary {
                            1.0
                        } else {
                            (kc as f64 - 1.0) / kc as f64
                        };
                        for (v, node) in nodes.iter_mut().enumerate() {
                            if let Node::Leaf(val) = node {
                                *val = if den[v].abs() < 1e-150 {
                                    0.0
                                } else {
                                    scale * num[v] / den[v]
                                };
                            }
                        }
                        (Tree { nodes }, imp, split)
                    })
                    .collect();
                let mut stage = Vec::with_capacity(outputs);
                for (k, (tree, imp, split)) in fitted.into_iter().enumerate() {
                    for (i, r) in raw[k].iter_mut().enumerate() {
                        *r += LEARNING_RATE * tree.predict(x, i);
                    }
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
        Self {
            classes,
            init,
            stages,
            importances,
        }
    }

    /// Predicted labels for column-wise features `x`.
    pub fn predict(&self, x: &[Vec<f64>]) -> Vec<usize> {
        let x = &as_f32(x);
        let n = x.first().map_or(0, Vec::len);
        (0..n)
            .map(|i| {
                let mut raw = self.init.clone();
                for stage in &self.stages {
                    for (k, tree) in stage.iter().enumerate() {
                        raw[k] += LEARNING_RATE * tree.predict(x, i);
                    }
                }
                if self.classes.len() == 2 {
                    self.classes[usize::from(raw[0] > 0.0)]
                } else {
                    let mut best = 0;
                    for k in 1..raw.len() {
                        if raw[k] > raw[best] {
                            best = k;
                        }
                    }
                    self.classes[best]
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

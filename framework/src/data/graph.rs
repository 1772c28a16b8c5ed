//! A directed graph over named nodes, as a dense adjacency (`adj[i][j] = true` means i → j).

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CausalGraph {
    pub nodes: Vec<String>,
    pub adj: Vec<Vec<bool>>,
}

impl CausalGraph {
    pub fn empty(nodes: Vec<String>) -> Self {
        let n = nodes.len();
        Self {
            nodes,
            adj: vec![vec![false; n]; n],
        }
    }

    pub fn from_edges(nodes: Vec<String>, edges: &[(usize, usize)]) -> Self {
        let mut g = Self::empty(nodes);
        for &(i, j) in edges {
            g.adj[i][j] = true;
        }
        g
    }

    pub fn n(&self) -> usize {
        self.nodes.len()
    }

    pub fn parents(&self, j: usize) -> impl Iterator<Item = usize> + '_ {
        (0..self.n()).filter(move |&i| self.adj[i][j])
    }

    /// Nodes in an order where every parent precedes its children; `None` if the graph has a cycle.
    /// Every node reachable from `i` by directed edges (not `i` itself unless on a cycle).
    pub fn descendants(&self, i: usize) -> Vec<bool> {
        let mut seen = vec![false; self.n()];
        let mut stack = vec![i];
        while let Some(u) = stack.pop() {
            for (v, seen_v) in seen.iter_mut().enumerate() {
                if self.adj[u][v] && !*seen_v {
                    *seen_v = true;
                    stack.push(v);
                }
            }
        }
        seen
    }

    pub fn topological_order(&self) -> Option<Vec<usize>> {
        let n = self.n();
        let mut indeg: Vec<usize> = (0..n).map(|j| self.parents(j).count()).collect();
        let mut ready: Vec<usize> = (0..n).filter(|&j| indeg[j] == 0).rev().collect();
        let mut order = Vec::with_capacity(n);
        while let Some(i) = ready.pop() {
            order.push(i);
            for j in (0..n).rev() {
                if self.adj[i][j] {
                    indeg[j] -= 1;
                    if indeg[j] == 0 {
                        ready.push(j);
                    }
                }
            }
        }
        (order.len() == n).then_some(order)
    }

    /// Row-major 0/1 adjacency.
    pub fn to_dense(&self) -> Vec<f32> {
        self.adj
            .iter()
            .flat_map(|r| r.iter().map(|&b| b as u8 as f32))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topological_order_respects_edges_and_detects_cycles() {
        let names = |n: usize| (0..n).map(|i| i.to_string()).collect::<Vec<_>>();
        let g = CausalGraph::from_edges(names(4), &[(2, 0), (0, 1), (3, 1)]);
        let order = g.topological_order().unwrap();
        let pos = |v| order.iter().position(|&x| x == v).unwrap();
        assert!(pos(2) < pos(0) && pos(0) < pos(1) && pos(3) < pos(1));
        let cyclic = CausalGraph::from_edges(names(2), &[(0, 1), (1, 0)]);
        assert!(cyclic.topological_order().is_none());
    }

    #[test]
    fn descendants_follow_paths() {
        let names = (0..4).map(|i| i.to_string()).collect::<Vec<_>>();
        let g = CausalGraph::from_edges(names, &[(0, 1), (1, 2)]);
        assert_eq!(g.descendants(0), vec![false, true, true, false]);
        assert_eq!(g.descendants(2), vec![false; 4]);
    }
}

/// A bipartite graph of latent mechanisms: `adj[i][j] = true` when parent `j` enters the mechanism of latent
/// `i` (docs/methods/sparsity.md, "Generative model": G^z_ij = 1 iff z_j^{t−1} → z_i^t; G^a_ij = 1 iff
/// a_j → z_i). Rows are latents; columns
/// are latents too (`cols_are_latents`, permuted with them when codes are matched to factors) or actions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatentGraph {
    /// Short name used in metric keys and figure names, e.g. `z` or `a`.
    pub name: String,
    pub adj: Vec<Vec<bool>>,
    pub cols_are_latents: bool,
}

impl LatentGraph {
    pub fn rows(&self) -> usize {
        self.adj.len()
    }
    pub fn cols(&self) -> usize {
        self.adj.first().map_or(0, Vec::len)
    }
    pub fn edges(&self) -> usize {
        self.adj.iter().flatten().filter(|&&e| e).count()
    }
    /// Row-major flattening.
    pub fn flat(&self) -> Vec<bool> {
        self.adj.concat()
    }
}

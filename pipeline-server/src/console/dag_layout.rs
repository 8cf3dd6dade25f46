//! A layered ("Sugiyama") layout of a DAG, drawn left to right: a pure function from nodes and
//! edges to positions, so the overview's picture is computed, never placed by hand.
//!
//! 1. **Layers**: longest path from the sources (a node sits one column right of its furthest
//!    predecessor), so every edge points right.
//! 2. **Dummies**: an edge spanning several layers gets a point in each layer it crosses; it
//!    takes a slot there like a small node, so no edge runs through a node.
//! 3. **Crossings**: a few barycenter sweeps (down by predecessors, up by successors) order each
//!    layer; the order with the fewest crossings wins. Ties keep the previous order, so the
//!    result depends only on the input (deterministic).
//! 4. **Coordinates**: each layer is a column; each slot is level with the mean of its
//!    predecessors (sources: of their successors) unless that would overlap the slot above.
//!
//! Edges with an endpoint out of range and self-loops are ignored. A cycle (which the store
//! never allows) does not panic: its nodes are placed after their other predecessors and its
//! closing edge is drawn as a straight line.

/// Sizes and spacing of a layout, in SVG user units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayoutConfig {
    /// Width of every node.
    pub node_width: u32,
    /// Height of every node.
    pub node_height: u32,
    /// Horizontal space between two columns.
    pub layer_gap: u32,
    /// Vertical space between two slots of a column.
    pub node_gap: u32,
    /// Height of the slot an edge takes when it passes through a column.
    pub edge_slot: u32,
    /// Space around the whole drawing.
    pub margin: u32,
    /// Barycenter sweeps (each one down and one up).
    pub sweeps: usize,
}

impl Default for LayoutConfig {
    fn default() -> Self {
        LayoutConfig {
            node_width: 240,
            node_height: 84,
            layer_gap: 80,
            node_gap: 20,
            edge_slot: 8,
            margin: 12,
            sweeps: 4,
        }
    }
}

/// A point in SVG user units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Point {
    /// Left to right.
    pub x: u32,
    /// Top to bottom.
    pub y: u32,
}

/// Where a node went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeBox {
    /// Its column (0: sources).
    pub layer: usize,
    /// Its top-left corner.
    pub at: Point,
}

/// The result of [`layout`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// One box per node, in input order.
    pub nodes: Vec<NodeBox>,
    /// One route per input edge, in input order (empty for an ignored edge): from the middle
    /// of the source's right side, through the slots it takes in the columns it crosses, to
    /// the middle of the target's left side.
    pub edges: Vec<Vec<Point>>,
    /// Width of the drawing.
    pub width: u32,
    /// Height of the drawing.
    pub height: u32,
}

/// Lays out `node_count` nodes joined by `edges` (`(from, to)` node indices).
pub fn layout(node_count: usize, edges: &[(usize, usize)], cfg: &LayoutConfig) -> Layout {
    let valid: Vec<bool> = edges
        .iter()
        .map(|&(s, t)| s < node_count && t < node_count && s != t)
        .collect();
    let kept: Vec<(usize, usize)> = edges
        .iter()
        .zip(&valid)
        .filter(|(_, ok)| **ok)
        .map(|(e, _)| *e)
        .collect();
    let layers = longest_path_layers(node_count, &kept);
    let mut graph = Layered::new(&layers, &kept);
    graph.reduce_crossings(cfg.sweeps);
    let (slots, width, height) = graph.coordinates(cfg);
    let nodes = (0..node_count)
        .map(|v| NodeBox {
            layer: layers[v],
            at: slots[v],
        })
        .collect();
    let mut chains = graph.chains.into_iter();
    let routes = valid
        .iter()
        .map(|ok| match ok {
            true => chains
                .next()
                .map(|chain| route(&chain, &slots, cfg))
                .unwrap_or_default(),
            false => Vec::new(),
        })
        .collect();
    Layout {
        nodes,
        edges: routes,
        width,
        height,
    }
}

/// Each node's layer: 0 for sources, else one more than its furthest predecessor (Kahn's
/// order; nodes on a cycle follow, placed after their predecessors already placed).
fn longest_path_layers(n: usize, edges: &[(usize, usize)]) -> Vec<usize> {
    let mut succs = vec![Vec::new(); n];
    let mut preds = vec![Vec::new(); n];
    let mut indegree = vec![0usize; n];
    for &(s, t) in edges {
        succs[s].push(t);
        preds[t].push(s);
        indegree[t] += 1;
    }
    let mut layer = vec![0usize; n];
    let mut done = vec![false; n];
    let mut queue: std::collections::VecDeque<usize> =
        (0..n).filter(|&v| indegree[v] == 0).collect();
    while let Some(v) = queue.pop_front() {
        done[v] = true;
        for &t in &succs[v] {
            layer[t] = layer[t].max(layer[v] + 1);
            indegree[t] -= 1;
            if indegree[t] == 0 {
                queue.push_back(t);
            }
        }
    }
    for v in 0..n {
        if !done[v] {
            let placed = preds[v].iter().filter(|&&p| done[p]).map(|&p| layer[p] + 1);
            layer[v] = layer[v].max(placed.max().unwrap_or(0));
            done[v] = true;
        }
    }
    layer
}

/// The layered graph: real nodes, then one dummy per layer an edge crosses.
struct Layered {
    /// Layer of every vertex (real nodes first, dummies after).
    layer: Vec<usize>,
    /// Whether a vertex is a real node.
    real: Vec<bool>,
    /// Vertices of each layer, in their current order.
    order: Vec<Vec<usize>>,
    /// Segments between adjacent layers, `(left vertex, right vertex)`.
    segments: Vec<(usize, usize)>,
    /// Per kept edge, the vertices it visits from source to target.
    chains: Vec<Vec<usize>>,
}

impl Layered {
    fn new(layers: &[usize], edges: &[(usize, usize)]) -> Self {
        let mut layer = layers.to_vec();
        let mut real = vec![true; layers.len()];
        let mut segments = Vec::new();
        let mut chains = Vec::new();
        for &(s, t) in edges {
            let mut chain = vec![s];
            if layer[t] > layer[s] {
                for l in layer[s] + 1..layer[t] {
                    layer.push(l);
                    real.push(false);
                    chain.push(layer.len() - 1);
                }
                chain.push(t);
                segments.extend(chain.windows(2).map(|w| (w[0], w[1])));
            } else {
                // Closes a cycle: drawn straight, left out of the ordering.
                chain.push(t);
            }
            chains.push(chain);
        }
        let depth = layer.iter().max().map_or(0, |m| m + 1);
        let mut order = vec![Vec::new(); depth];
        for (v, &l) in layer.iter().enumerate() {
            order[l].push(v);
        }
        Layered {
            layer,
            real,
            order,
            segments,
            chains,
        }
    }

    /// Barycenter sweeps, keeping the order with the fewest crossings seen.
    fn reduce_crossings(&mut self, sweeps: usize) {
        let mut best = self.order.clone();
        let mut fewest = self.crossings();
        for _ in 0..sweeps {
            for l in 1..self.order.len() {
                self.sort_layer(l, true);
            }
            for l in (0..self.order.len().saturating_sub(1)).rev() {
                self.sort_layer(l, false);
            }
            let now = self.crossings();
            if now < fewest {
                fewest = now;
                best = self.order.clone();
            }
            if fewest == 0 {
                break;
            }
        }
        self.order = best;
    }

    /// Position of every vertex within its layer.
    fn positions(&self) -> Vec<usize> {
        let mut pos = vec![0; self.layer.len()];
        for layer in &self.order {
            for (i, &v) in layer.iter().enumerate() {
                pos[v] = i;
            }
        }
        pos
    }

    /// Orders layer `l` by the mean position of its neighbours in the layer before it
    /// (`by_preds`) or after it; a vertex without such neighbours keeps its place.
    fn sort_layer(&mut self, l: usize, by_preds: bool) {
        let pos = self.positions();
        let mut sum = vec![0f64; self.layer.len()];
        let mut count = vec![0u32; self.layer.len()];
        for &(a, b) in &self.segments {
            let (me, other) = if by_preds { (b, a) } else { (a, b) };
            if self.layer[me] == l {
                sum[me] += pos[other] as f64;
                count[me] += 1;
            }
        }
        let key = |v: usize| match count[v] {
            0 => pos[v] as f64,
            c => sum[v] / f64::from(c),
        };
        // Stable: equal barycenters keep their order.
        self.order[l].sort_by(|&a, &b| key(a).total_cmp(&key(b)));
    }

    /// Pairs of segments that cross, over all pairs of adjacent layers.
    fn crossings(&self) -> usize {
        let pos = self.positions();
        let mut by_layer: Vec<Vec<(usize, usize)>> = vec![Vec::new(); self.order.len()];
        for &(a, b) in &self.segments {
            by_layer[self.layer[a]].push((pos[a], pos[b]));
        }
        by_layer
            .iter()
            .map(|segs| {
                let mut n = 0;
                for (i, &(a1, b1)) in segs.iter().enumerate() {
                    for &(a2, b2) in &segs[i + 1..] {
                        if (a1 < a2 && b1 > b2) || (a1 > a2 && b1 < b2) {
                            n += 1;
                        }
                    }
                }
                n
            })
            .sum()
    }

    /// Height of a vertex's slot.
    fn slot(&self, v: usize, cfg: &LayoutConfig) -> u32 {
        match self.real[v] {
            true => cfg.node_height,
            false => cfg.edge_slot,
        }
    }

    /// Top-left corner of every vertex's slot, and the drawing's width and height.
    ///
    /// Columns are placed left to right, each vertex level with the mean of its predecessors
    /// (so chains are straight) unless that would overlap the vertex above it; the sources are
    /// then placed level with their successors the same way.
    fn coordinates(&self, cfg: &LayoutConfig) -> (Vec<Point>, u32, u32) {
        let n = self.layer.len();
        let mut preds = vec![Vec::new(); n];
        let mut succs = vec![Vec::new(); n];
        for &(a, b) in &self.segments {
            succs[a].push(b);
            preds[b].push(a);
        }
        let mut top = vec![cfg.margin; n];
        for layer in self.order.iter().skip(1) {
            self.place_column(layer, &preds, &mut top, cfg);
        }
        if let Some(sources) = self.order.first() {
            self.place_column(sources, &succs, &mut top, cfg);
        }
        let mut at = vec![Point { x: 0, y: 0 }; n];
        for (l, layer) in self.order.iter().enumerate() {
            let column = u32::try_from(l).unwrap_or(u32::MAX);
            let x = cfg.margin + column.saturating_mul(cfg.node_width + cfg.layer_gap);
            for &v in layer {
                at[v] = Point { x, y: top[v] };
            }
        }
        let bottom = (0..n)
            .map(|v| top[v] + self.slot(v, cfg))
            .max()
            .unwrap_or(0);
        let columns = u32::try_from(self.order.len()).unwrap_or(u32::MAX);
        let width = match columns {
            0 => 2 * cfg.margin,
            c => 2 * cfg.margin + c * cfg.node_width + (c - 1) * cfg.layer_gap,
        };
        (at, width, bottom.max(cfg.margin) + cfg.margin)
    }

    /// Sets the top of each vertex of `layer`, in order: level with the mean centre of its
    /// `neighbours` (already placed), but never above the slot before it.
    fn place_column(
        &self,
        layer: &[usize],
        neighbours: &[Vec<usize>],
        top: &mut [u32],
        cfg: &LayoutConfig,
    ) {
        let mut free = cfg.margin;
        for &v in layer {
            let slot = self.slot(v, cfg);
            let around = &neighbours[v];
            let wanted = match around.len() as u64 {
                0 => free,
                count => {
                    let centres: u64 = around
                        .iter()
                        .map(|&u| u64::from(top[u]) + u64::from(self.slot(u, cfg) / 2))
                        .sum();
                    let mean = u32::try_from(centres / count).unwrap_or(u32::MAX);
                    mean.saturating_sub(slot / 2)
                }
            };
            top[v] = wanted.max(free);
            free = top[v].saturating_add(slot + cfg.node_gap);
        }
    }
}

/// The points of one edge: out of the source's right side, across each dummy slot, into the
/// target's left side.
fn route(chain: &[usize], at: &[Point], cfg: &LayoutConfig) -> Vec<Point> {
    let (Some(&first), Some(&last)) = (chain.first(), chain.last()) else {
        return Vec::new();
    };
    let mid = cfg.node_height / 2;
    let mut points = vec![Point {
        x: at[first].x + cfg.node_width,
        y: at[first].y + mid,
    }];
    for &d in &chain[1..chain.len() - 1] {
        let y = at[d].y + cfg.edge_slot / 2;
        points.push(Point { x: at[d].x, y });
        points.push(Point {
            x: at[d].x + cfg.node_width,
            y,
        });
    }
    points.push(Point {
        x: at[last].x,
        y: at[last].y + mid,
    });
    points
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boxes_overlap(a: Point, b: Point, cfg: &LayoutConfig) -> bool {
        a.x < b.x + cfg.node_width
            && b.x < a.x + cfg.node_width
            && a.y < b.y + cfg.node_height
            && b.y < a.y + cfg.node_height
    }

    /// A DAG like a real one: two sources, a chain, a fan-in and a long edge.
    fn sample() -> (usize, Vec<(usize, usize)>) {
        let edges = vec![
            (0, 2),
            (2, 3),
            (3, 4),
            (1, 4),
            (0, 5),
            (5, 6),
            (0, 6),
            (1, 6),
        ];
        (7, edges)
    }

    #[test]
    fn layers_are_longest_paths_from_the_sources() {
        let (n, edges) = sample();
        let l = layout(n, &edges, &LayoutConfig::default());
        let layers: Vec<usize> = l.nodes.iter().map(|b| b.layer).collect();
        assert_eq!(layers, vec![0, 0, 1, 2, 3, 1, 2]);
    }

    #[test]
    fn no_two_nodes_overlap() {
        let cfg = LayoutConfig::default();
        let (n, edges) = sample();
        let l = layout(n, &edges, &cfg);
        for (i, a) in l.nodes.iter().enumerate() {
            for b in &l.nodes[i + 1..] {
                assert!(!boxes_overlap(a.at, b.at, &cfg), "{a:?} overlaps {b:?}");
            }
            assert!(a.at.x + cfg.node_width <= l.width);
            assert!(a.at.y + cfg.node_height <= l.height);
        }
    }

    #[test]
    fn edges_run_left_to_right_and_never_through_a_node() {
        let cfg = LayoutConfig::default();
        let (n, edges) = sample();
        let l = layout(n, &edges, &cfg);
        for (&(s, t), points) in edges.iter().zip(&l.edges) {
            assert!(l.nodes[t].layer > l.nodes[s].layer, "edge {s}->{t}");
            assert_eq!(points[0].x, l.nodes[s].at.x + cfg.node_width);
            assert_eq!(points.last().map(|p| p.x), Some(l.nodes[t].at.x));
            assert!(points.windows(2).all(|w| w[0].x <= w[1].x), "{points:?}");
            for p in &points[1..points.len() - 1] {
                for b in &l.nodes {
                    let inside = p.x >= b.at.x
                        && p.x <= b.at.x + cfg.node_width
                        && p.y >= b.at.y
                        && p.y <= b.at.y + cfg.node_height;
                    assert!(!inside, "edge {s}->{t} passes through node at {:?}", b.at);
                }
            }
        }
        // The long edge 0 -> 6 crosses layer 1 through a slot of its own.
        assert_eq!(l.edges[6].len(), 4);
    }

    #[test]
    fn barycenter_sweeps_untangle_a_crossing() {
        // Index order draws 0->3 and 1->2 crossed; one sweep swaps 2 and 3.
        let cfg = LayoutConfig::default();
        let l = layout(4, &[(0, 3), (1, 2)], &cfg);
        assert!(l.nodes[0].at.y < l.nodes[1].at.y);
        assert!(l.nodes[3].at.y < l.nodes[2].at.y, "{:?}", l.nodes);
        // With no sweep the crossing stays.
        let none = LayoutConfig { sweeps: 0, ..cfg };
        let l = layout(4, &[(0, 3), (1, 2)], &none);
        assert!(l.nodes[2].at.y < l.nodes[3].at.y);
    }

    #[test]
    fn a_chain_is_drawn_straight() {
        let cfg = LayoutConfig::default();
        let l = layout(4, &[(0, 1), (1, 2), (2, 3)], &cfg);
        let ys: Vec<u32> = l.nodes.iter().map(|b| b.at.y).collect();
        assert_eq!(ys, vec![ys[0]; 4], "{:?}", l.nodes);
        assert!(l.edges[0].windows(2).all(|w| w[0].y == w[1].y));
        // A source feeding two nodes sits level with their middle.
        let l = layout(3, &[(0, 1), (0, 2)], &cfg);
        let centre = |i: usize| l.nodes[i].at.y + cfg.node_height / 2;
        assert_eq!(centre(0), (centre(1) + centre(2)) / 2);
    }

    #[test]
    fn a_hundred_node_dag_keeps_every_promise() {
        // A deterministic pseudo-random DAG: each node reads one to three earlier ones.
        let mut seed = 7u64;
        let mut next = |m: usize| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as usize % m
        };
        let mut edges = Vec::new();
        for t in 5..100 {
            for _ in 0..1 + next(3) {
                edges.push((next(t), t));
            }
        }
        let cfg = LayoutConfig::default();
        let l = layout(100, &edges, &cfg);
        assert_eq!(l, layout(100, &edges, &cfg));
        for (i, a) in l.nodes.iter().enumerate() {
            for b in &l.nodes[i + 1..] {
                assert!(!boxes_overlap(a.at, b.at, &cfg), "{a:?} overlaps {b:?}");
            }
        }
        for (&(s, t), points) in edges.iter().zip(&l.edges) {
            assert!(l.nodes[t].layer > l.nodes[s].layer);
            assert!(points.windows(2).all(|w| w[0].x <= w[1].x));
        }
    }

    #[test]
    fn the_same_input_gives_the_same_layout() {
        let (n, edges) = sample();
        let cfg = LayoutConfig::default();
        assert_eq!(layout(n, &edges, &cfg), layout(n, &edges, &cfg));
    }

    #[test]
    fn bad_edges_and_cycles_do_not_panic() {
        let cfg = LayoutConfig::default();
        let l = layout(3, &[(0, 9), (1, 1), (0, 1), (1, 2), (2, 1)], &cfg);
        assert!(l.edges[0].is_empty() && l.edges[1].is_empty());
        assert_eq!(l.edges[2].len(), 2);
        for (i, a) in l.nodes.iter().enumerate() {
            for b in &l.nodes[i + 1..] {
                assert!(!boxes_overlap(a.at, b.at, &cfg));
            }
        }
        let empty = layout(0, &[], &cfg);
        assert!(empty.nodes.is_empty() && empty.width > 0);
    }
}

//! A small LambdaMART: gradient-boosted regression trees fitted to LambdaRank gradients that
//! weigh each (relevant, irrelevant) pair by the nDCG change of swapping them.
//!
//! Histogram splits over per-feature quantile bins (bin 0 holds missing values, which always
//! go left), depth-wise growth, the smaller child's histogram built and the larger one derived
//! by subtraction. Every step is deterministic: no sampling inside training, parallel work
//! split by feature or by query and merged in a fixed order.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Rows of features grouped by query, with binary or graded labels.
#[derive(Debug, Clone, Default)]
pub(crate) struct QueryData {
    /// Features per row.
    pub width: usize,
    /// Row-major features (`rows × width`), NaN for missing.
    pub features: Vec<f32>,
    /// Relevance per row (0 = irrelevant).
    pub labels: Vec<f32>,
    /// Query `q` owns rows `offsets[q]..offsets[q + 1]`.
    pub offsets: Vec<usize>,
    /// How many rows of the query's full candidate list each row stands for (1 unless the
    /// row was sampled): its pairs count that many times and the ranks behind it advance by
    /// that much, so a sampled list trains like the full list it was drawn from.
    pub weights: Vec<f32>,
}

impl QueryData {
    pub(crate) fn new(width: usize) -> Self {
        QueryData {
            width,
            offsets: vec![0],
            ..QueryData::default()
        }
    }

    pub(crate) fn rows(&self) -> usize {
        self.labels.len()
    }

    pub(crate) fn queries(&self) -> usize {
        self.offsets.len() - 1
    }

    pub(crate) fn push_query(&mut self, features: &[f32], labels: &[f32]) {
        self.push_weighted_query(features, labels, &vec![1.0; labels.len()]);
    }

    /// A query whose rows stand for `weights` rows each (see [`QueryData::weights`]).
    pub(crate) fn push_weighted_query(
        &mut self,
        features: &[f32],
        labels: &[f32],
        weights: &[f32],
    ) {
        debug_assert_eq!(features.len(), labels.len() * self.width);
        debug_assert_eq!(labels.len(), weights.len());
        self.features.extend_from_slice(features);
        self.labels.extend_from_slice(labels);
        self.weights.extend_from_slice(weights);
        self.offsets.push(self.labels.len());
    }

    fn row(&self, r: usize) -> &[f32] {
        &self.features[r * self.width..(r + 1) * self.width]
    }
}

/// Knobs of [`train`]; validated by the caller.
#[derive(Debug, Clone)]
pub(crate) struct BoostParams {
    pub trees: usize,
    pub learning_rate: f32,
    pub max_depth: usize,
    pub min_data_in_leaf: usize,
    pub min_hessian_in_leaf: f32,
    pub l2: f32,
    pub max_bins: usize,
    pub sigma: f32,
    pub ndcg_k: usize,
    pub early_stopping_rounds: usize,
}

/// One node of a [`Tree`]; `feature < 0` marks a leaf.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Node {
    /// Split feature, or -1 for a leaf.
    pub feature: i32,
    /// Rows with `value <= threshold` (or a missing value) go left.
    pub threshold: f32,
    /// Left child index (greater than this node's).
    pub left: u32,
    /// Right child index (greater than this node's).
    pub right: u32,
    /// Leaf output.
    pub value: f32,
}

/// A regression tree; node 0 is the root.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Tree {
    pub nodes: Vec<Node>,
}

impl Tree {
    pub(crate) fn predict(&self, row: &[f32]) -> f32 {
        let mut i = 0usize;
        loop {
            let node = &self.nodes[i];
            if node.feature < 0 {
                return node.value;
            }
            let v = row[node.feature as usize];
            i = if v.is_nan() || v <= node.threshold {
                node.left
            } else {
                node.right
            } as usize;
        }
    }

    /// Checks the tree can be walked safely on rows of `width` features.
    pub(crate) fn check(&self, width: usize) -> Result<(), String> {
        if self.nodes.is_empty() {
            return Err("a tree has no nodes".into());
        }
        for (i, node) in self.nodes.iter().enumerate() {
            if node.feature < 0 {
                if !node.value.is_finite() {
                    return Err(format!("node {i} has a non-finite leaf value"));
                }
                continue;
            }
            if node.feature as usize >= width {
                return Err(format!(
                    "node {i} splits on feature {} of {width}",
                    node.feature
                ));
            }
            let (l, r) = (node.left as usize, node.right as usize);
            // Children after their parent: walking always ends.
            if l <= i || r <= i || l >= self.nodes.len() || r >= self.nodes.len() {
                return Err(format!("node {i} has invalid children {l} and {r}"));
            }
            if node.threshold.is_nan() {
                return Err(format!("node {i} has a NaN threshold"));
            }
        }
        Ok(())
    }
}

/// Sum of tree outputs.
#[cfg(test)]
pub(crate) fn predict(trees: &[Tree], row: &[f32]) -> f32 {
    trees.iter().map(|t| t.predict(row)).sum()
}

/// Rows walked through one tree before the next: a block of rows stays in cache while every
/// tree visits it, instead of every tree's nodes being fetched again for each row.
const PREDICT_BLOCK: usize = 64;

/// Rows walked down one tree side by side. One walk is a chain of dependent loads and
/// unpredictable branches; several independent walks let the CPU overlap them.
const WALK_LANES: usize = 8;

/// A tree laid out for side-by-side walks: a leaf points to itself, so every walk can take
/// the same number of steps (the tree's depth) without asking whether it has arrived.
struct LockstepTree {
    /// Per node: split feature (0 for a leaf), threshold, and children `[left, right]`.
    nodes: Vec<(u32, f32, [u32; 2])>,
    values: Vec<f32>,
    depth: usize,
}

impl LockstepTree {
    fn new(tree: &Tree) -> Self {
        let mut depth_of = vec![0usize; tree.nodes.len()];
        let mut depth = 0;
        let nodes = tree
            .nodes
            .iter()
            .enumerate()
            .map(|(i, node)| {
                if node.feature < 0 {
                    return (0, 0.0, [i as u32; 2]);
                }
                // Children come after their parent ([`Tree::check`]), so one forward pass
                // gives every depth.
                for child in [node.left, node.right] {
                    depth_of[child as usize] = depth_of[i] + 1;
                    depth = depth.max(depth_of[i] + 1);
                }
                (node.feature as u32, node.threshold, [node.left, node.right])
            })
            .collect();
        LockstepTree {
            nodes,
            values: tree.nodes.iter().map(|n| n.value).collect(),
            depth,
        }
    }

    /// Adds this tree's output to each score of `scores`, one row of `rows` per score.
    fn walk(&self, rows: &[f32], width: usize, scores: &mut [f32]) {
        let mut at = [0u32; WALK_LANES];
        for _ in 0..self.depth {
            for (lane, row) in at.iter_mut().zip(rows.chunks_exact(width)) {
                let (feature, threshold, children) = self.nodes[*lane as usize];
                // `v > threshold` is false for a missing (NaN) value: missing goes left.
                *lane = children[usize::from(row[feature as usize] > threshold)];
            }
        }
        for (score, lane) in scores.iter_mut().zip(at) {
            *score += self.values[lane as usize];
        }
    }
}

/// [`predict`] of every row of a row-major matrix (`width` features per row), tree by tree
/// over blocks of rows. Sums in the same order as [`predict`], so the scores are identical.
pub(crate) fn predict_rows(trees: &[Tree], rows: &[f32], width: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; rows.len() / width.max(1)];
    if width == 0 {
        return out;
    }
    let trees: Vec<LockstepTree> = trees.iter().map(LockstepTree::new).collect();
    for (block, scores) in rows
        .chunks(PREDICT_BLOCK * width)
        .zip(out.chunks_mut(PREDICT_BLOCK))
    {
        for tree in &trees {
            for (lanes, scores) in block
                .chunks(WALK_LANES * width)
                .zip(scores.chunks_mut(WALK_LANES))
            {
                tree.walk(lanes, width, scores);
            }
        }
    }
    out
}

/// Per-feature quantile bins; bin 0 is "missing", bin `b >= 1` holds values in
/// `(edges[b - 2], edges[b - 1]]`.
struct Binned {
    rows: usize,
    /// Feature-major bins: feature `f`, row `r` at `f * rows + r`.
    bins: Vec<u8>,
    edges: Vec<Vec<f32>>,
}

impl Binned {
    fn new(data: &QueryData, max_bins: usize) -> Self {
        let rows = data.rows();
        let width = data.width;
        // Edges from at most ~100k rows, taken at a fixed stride.
        let stride = (rows / 100_000).max(1);
        let edges: Vec<Vec<f32>> = (0..width)
            .into_par_iter()
            .map(|f| {
                let mut values: Vec<f32> = (0..rows)
                    .step_by(stride)
                    .map(|r| data.features[r * width + f])
                    .filter(|v| !v.is_nan())
                    .collect();
                values.sort_by(f32::total_cmp);
                cut_points(&values, max_bins - 2)
            })
            .collect();
        let bins: Vec<u8> = (0..width)
            .into_par_iter()
            .flat_map_iter(|f| {
                let edges = &edges[f];
                (0..rows).map(move |r| bin_of(edges, data.features[r * width + f]))
            })
            .collect();
        Binned { rows, bins, edges }
    }

    fn feature(&self, f: usize) -> &[u8] {
        &self.bins[f * self.rows..(f + 1) * self.rows]
    }

    fn bin_count(&self, f: usize) -> usize {
        self.edges[f].len() + 2
    }

    /// The raw threshold equivalent to "bin <= b".
    fn threshold(&self, f: usize, b: usize) -> f32 {
        if b == 0 {
            f32::MIN
        } else {
            self.edges[f][b - 1]
        }
    }
}

fn bin_of(edges: &[f32], v: f32) -> u8 {
    if v.is_nan() {
        0
    } else {
        (1 + edges.partition_point(|&e| e < v)) as u8
    }
}

/// At most `max_cuts` increasing cut points: every distinct value when there are few,
/// otherwise quantiles.
fn cut_points(sorted: &[f32], max_cuts: usize) -> Vec<f32> {
    let mut distinct: Vec<f32> = sorted.to_vec();
    distinct.dedup();
    if distinct.len() <= max_cuts {
        return distinct;
    }
    let mut cuts: Vec<f32> = (1..=max_cuts)
        .map(|i| sorted[(i * sorted.len() / (max_cuts + 1)).min(sorted.len() - 1)])
        .collect();
    cuts.dedup();
    cuts
}

/// Gradient, hessian and row count per bin.
#[derive(Debug, Clone, Copy, Default)]
struct Bin {
    g: f64,
    h: f64,
    n: f64,
}

type Histogram = Vec<Vec<Bin>>;

fn histogram(binned: &Binned, rows: &[u32], grad: &[f32], hess: &[f32]) -> Histogram {
    (0..binned.edges.len())
        .into_par_iter()
        .map(|f| {
            let bins = binned.feature(f);
            let mut hist = vec![Bin::default(); binned.bin_count(f)];
            for &r in rows {
                let b = &mut hist[bins[r as usize] as usize];
                b.g += grad[r as usize] as f64;
                b.h += hess[r as usize] as f64;
                b.n += 1.0;
            }
            hist
        })
        .collect()
}

fn subtract(parent: &Histogram, child: &Histogram) -> Histogram {
    parent
        .iter()
        .zip(child)
        .map(|(p, c)| {
            p.iter()
                .zip(c)
                .map(|(p, c)| Bin {
                    g: p.g - c.g,
                    h: p.h - c.h,
                    n: p.n - c.n,
                })
                .collect()
        })
        .collect()
}

struct Split {
    gain: f64,
    feature: usize,
    bin: usize,
}

fn best_split(hist: &Histogram, params: &BoostParams) -> Option<Split> {
    let l2 = params.l2 as f64;
    let min_n = params.min_data_in_leaf as f64;
    let min_h = params.min_hessian_in_leaf as f64;
    let score = |g: f64, h: f64| g * g / (h + l2);
    hist.par_iter()
        .enumerate()
        .filter_map(|(f, bins)| {
            let total = bins.iter().fold(Bin::default(), |a, b| Bin {
                g: a.g + b.g,
                h: a.h + b.h,
                n: a.n + b.n,
            });
            let parent = score(total.g, total.h);
            let mut left = Bin::default();
            let mut best: Option<Split> = None;
            for (b, bin) in bins.iter().enumerate().take(bins.len() - 1) {
                left.g += bin.g;
                left.h += bin.h;
                left.n += bin.n;
                let right = Bin {
                    g: total.g - left.g,
                    h: total.h - left.h,
                    n: total.n - left.n,
                };
                if left.n < min_n || right.n < min_n || left.h < min_h || right.h < min_h {
                    continue;
                }
                let gain = score(left.g, left.h) + score(right.g, right.h) - parent;
                if gain > 1e-9 && best.as_ref().is_none_or(|s| gain > s.gain) {
                    best = Some(Split {
                        gain,
                        feature: f,
                        bin: b,
                    });
                }
            }
            best
        })
        .collect::<Vec<_>>()
        .into_iter()
        // Highest gain; equal gains go to the lower feature index (collect keeps order).
        .fold(None, |best: Option<Split>, s| match best {
            Some(b) if b.gain >= s.gain => Some(b),
            _ => Some(s),
        })
}

fn leaf_value(hist: &Histogram, params: &BoostParams) -> f32 {
    let (g, h) = hist[0]
        .iter()
        .fold((0.0, 0.0), |(g, h), b| (g + b.g, h + b.h));
    (-g / (h + params.l2 as f64) * params.learning_rate as f64) as f32
}

fn grow_tree(binned: &Binned, grad: &[f32], hess: &[f32], params: &BoostParams) -> Tree {
    let root_rows: Vec<u32> = (0..binned.rows as u32).collect();
    let root_hist = histogram(binned, &root_rows, grad, hess);
    let mut nodes = vec![Node {
        feature: -1,
        threshold: 0.0,
        left: 0,
        right: 0,
        value: 0.0,
    }];
    // (node index, rows, histogram, depth); processed in node order, so trees come out the same
    // whatever the thread count.
    let mut pending = std::collections::VecDeque::from([(0usize, root_rows, root_hist, 0usize)]);
    while let Some((at, rows, hist, depth)) = pending.pop_front() {
        let split = (depth < params.max_depth)
            .then(|| best_split(&hist, params))
            .flatten();
        let Some(split) = split else {
            nodes[at].value = leaf_value(&hist, params);
            continue;
        };
        let bins = binned.feature(split.feature);
        let (left, right): (Vec<u32>, Vec<u32>) = rows
            .iter()
            .partition(|&&r| (bins[r as usize] as usize) <= split.bin);
        let (small, large_is_left) = if left.len() <= right.len() {
            (&left, false)
        } else {
            (&right, true)
        };
        let small_hist = histogram(binned, small, grad, hess);
        let large_hist = subtract(&hist, &small_hist);
        let (left_hist, right_hist) = if large_is_left {
            (large_hist, small_hist)
        } else {
            (small_hist, large_hist)
        };
        let l = nodes.len();
        nodes[at] = Node {
            feature: split.feature as i32,
            threshold: binned.threshold(split.feature, split.bin),
            left: l as u32,
            right: l as u32 + 1,
            value: 0.0,
        };
        for _ in 0..2 {
            nodes.push(Node {
                feature: -1,
                threshold: 0.0,
                left: 0,
                right: 0,
                value: 0.0,
            });
        }
        pending.push_back((l, left, left_hist, depth + 1));
        pending.push_back((l + 1, right, right_hist, depth + 1));
    }
    Tree { nodes }
}

fn discount(rank: usize) -> f64 {
    weighted_discount(rank as f64)
}

/// The discount at a 0-based rank that may be fractional (the expected rank in a full list).
fn weighted_discount(rank: f64) -> f64 {
    1.0 / (rank + 2.0).log2()
}

fn gain(label: f32) -> f64 {
    2f64.powf(label as f64) - 1.0
}

/// Ranks by descending score, ties by row order.
fn order(scores: &[f32]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    order
}

/// nDCG@k of one query's scores.
pub(crate) fn ndcg_at(labels: &[f32], scores: &[f32], k: usize) -> f64 {
    let mut ideal: Vec<f32> = labels.to_vec();
    ideal.sort_by(|a, b| b.total_cmp(a));
    let idcg: f64 = ideal
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, &l)| gain(l) * discount(i))
        .sum();
    if idcg <= 0.0 {
        return 0.0;
    }
    let dcg: f64 = order(scores)
        .into_iter()
        .take(k)
        .enumerate()
        .map(|(i, r)| gain(labels[r]) * discount(i))
        .sum();
    dcg / idcg
}

/// Mean nDCG@k over queries.
pub(crate) fn mean_ndcg(data: &QueryData, scores: &[f32], k: usize) -> f64 {
    if data.queries() == 0 {
        return 0.0;
    }
    let total: f64 = (0..data.queries())
        .map(|q| {
            let (a, b) = (data.offsets[q], data.offsets[q + 1]);
            ndcg_at(&data.labels[a..b], &scores[a..b], k)
        })
        .sum();
    total / data.queries() as f64
}

/// LambdaRank gradients (of the loss, so the trees fit their negatives) and hessians of one
/// query, written into `grad` and `hess`.
///
/// Row `r` stands for `weights[r]` rows of the full list: a pair counts `w_i · w_j` times, and
/// ranks (for the nDCG change of a swap) are the summed weights of the rows scored above, an
/// unbiased estimate of the rank in the full list. With unit weights this is plain LambdaRank.
fn lambdas(
    labels: &[f32],
    scores: &[f32],
    weights: &[f32],
    sigma: f32,
    grad: &mut [f32],
    hess: &mut [f32],
) {
    grad.fill(0.0);
    hess.fill(0.0);
    let mut ideal: Vec<(f32, f32)> = labels
        .iter()
        .copied()
        .zip(weights.iter().copied())
        .collect();
    ideal.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut above = 0.0f64;
    let mut idcg = 0.0f64;
    for &(label, weight) in &ideal {
        // A row of weight w holds w equally relevant rows: their gains at ranks above..above+w.
        idcg += gain(label) * weighted_discount(above) * weight as f64;
        above += weight as f64;
    }
    if idcg <= 0.0 {
        return;
    }
    let mut rank = vec![0f64; labels.len()];
    let mut above = 0.0f64;
    for row in order(scores) {
        rank[row] = above;
        above += weights[row] as f64;
    }
    let sigma = sigma as f64;
    for i in 0..labels.len() {
        for j in 0..labels.len() {
            if labels[i] <= labels[j] {
                continue;
            }
            // i should rank above j.
            let pair_weight = (weights[i] * weights[j]) as f64;
            let delta = ((gain(labels[i]) - gain(labels[j]))
                * (weighted_discount(rank[i]) - weighted_discount(rank[j])))
            .abs()
                / idcg;
            let rho = 1.0 / (1.0 + (sigma * (scores[i] - scores[j]) as f64).exp());
            let lambda = sigma * delta * rho * pair_weight;
            let h = (sigma * sigma * delta * rho * (1.0 - rho) * pair_weight).max(1e-12);
            grad[i] -= lambda as f32;
            grad[j] += lambda as f32;
            hess[i] += h as f32;
            hess[j] += h as f32;
        }
    }
}

/// One line of training progress.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Progress {
    pub tree: usize,
    /// Training nDCG, computed every tenth tree and on the last.
    pub train_ndcg: Option<f64>,
    pub valid_ndcg: Option<f64>,
}

/// Trains trees on `train`; when `valid` has queries, stops after `early_stopping_rounds`
/// trees without a better validation nDCG@k and keeps the best prefix.
pub(crate) fn train(
    train: &QueryData,
    valid: Option<&QueryData>,
    params: &BoostParams,
    mut report: impl FnMut(Progress),
) -> Vec<Tree> {
    let binned = Binned::new(train, params.max_bins);
    let rows = train.rows();
    let mut scores = vec![0.0f32; rows];
    let mut grad = vec![0.0f32; rows];
    let mut hess = vec![0.0f32; rows];
    let valid = valid.filter(|v| v.queries() > 0);
    let mut valid_scores = valid.map(|v| vec![0.0f32; v.rows()]);
    let mut trees = Vec::with_capacity(params.trees);
    let mut best = (f64::NEG_INFINITY, 0usize);
    for t in 0..params.trees {
        compute_lambdas(train, &scores, params.sigma, &mut grad, &mut hess);
        let tree = grow_tree(&binned, &grad, &hess, params);
        scores.par_iter_mut().enumerate().for_each(|(r, s)| {
            *s += tree.predict(train.row(r));
        });
        let mut valid_ndcg = None;
        if let (Some(v), Some(vs)) = (valid, valid_scores.as_mut()) {
            vs.par_iter_mut().enumerate().for_each(|(r, s)| {
                *s += tree.predict(v.row(r));
            });
            let ndcg = mean_ndcg(v, vs, params.ndcg_k);
            if ndcg > best.0 {
                best = (ndcg, t + 1);
            }
            valid_ndcg = Some(ndcg);
        }
        trees.push(tree);
        let done = t + 1 == params.trees
            || (valid_ndcg.is_some()
                && params.early_stopping_rounds > 0
                && t + 1 - best.1 >= params.early_stopping_rounds);
        let train_ndcg =
            (done || (t + 1) % 10 == 0).then(|| mean_ndcg(train, &scores, params.ndcg_k));
        report(Progress {
            tree: t + 1,
            train_ndcg,
            valid_ndcg,
        });
        if done {
            break;
        }
    }
    if valid.is_some() && best.1 > 0 {
        trees.truncate(best.1);
    }
    trees
}

fn compute_lambdas(
    data: &QueryData,
    scores: &[f32],
    sigma: f32,
    grad: &mut [f32],
    hess: &mut [f32],
) {
    // Split the gradient buffers at query boundaries so queries run in parallel.
    let mut chunks: Vec<(usize, &mut [f32], &mut [f32])> = Vec::with_capacity(data.queries());
    let (mut g_rest, mut h_rest) = (grad, hess);
    for q in 0..data.queries() {
        let len = data.offsets[q + 1] - data.offsets[q];
        let (g, g_tail) = g_rest.split_at_mut(len);
        let (h, h_tail) = h_rest.split_at_mut(len);
        chunks.push((q, g, h));
        g_rest = g_tail;
        h_rest = h_tail;
    }
    chunks.into_par_iter().for_each(|(q, g, h)| {
        let (a, b) = (data.offsets[q], data.offsets[q + 1]);
        lambdas(
            &data.labels[a..b],
            &scores[a..b],
            &data.weights[a..b],
            sigma,
            g,
            h,
        );
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    pub(crate) fn params() -> BoostParams {
        BoostParams {
            trees: 40,
            learning_rate: 0.2,
            max_depth: 3,
            min_data_in_leaf: 5,
            min_hessian_in_leaf: 1e-6,
            l2: 1.0,
            max_bins: 32,
            sigma: 1.0,
            ndcg_k: 20,
            early_stopping_rounds: 0,
        }
    }

    /// Queries of 30 rows, one relevant; feature 0 is high only for the relevant row when
    /// feature 1 is above 0.5 (an interaction a linear model would miss), feature 2 is noise.
    pub(crate) fn planted(queries: usize, seed: u64) -> QueryData {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut data = QueryData::new(3);
        for _ in 0..queries {
            let gold = rng.random_range(0..30);
            let mut features = Vec::new();
            let mut labels = Vec::new();
            for r in 0..30 {
                let gate: f32 = rng.random();
                let signal = if r == gold {
                    rng.random_range(0.6..1.0)
                } else {
                    rng.random_range(0.0..0.7)
                };
                let x0 = if gate > 0.5 {
                    signal
                } else {
                    rng.random_range(0.0..1.0)
                };
                let x1 = if r == gold {
                    rng.random_range(0.5..1.0)
                } else {
                    gate
                };
                features.extend([x0, x1, rng.random::<f32>()]);
                labels.push((r == gold) as u8 as f32);
            }
            data.push_query(&features, &labels);
        }
        data
    }

    #[test]
    fn learns_a_planted_signal() {
        let train_data = planted(300, 1);
        let test_data = planted(200, 2);
        let trees = train(&train_data, None, &params(), |_| {});
        let learned: Vec<f32> = (0..test_data.rows())
            .map(|r| predict(&trees, test_data.row(r)))
            .collect();
        let noise: Vec<f32> = (0..test_data.rows()).map(|r| test_data.row(r)[2]).collect();
        let learned_ndcg = mean_ndcg(&test_data, &learned, 20);
        let random_ndcg = mean_ndcg(&test_data, &noise, 20);
        eprintln!("learned nDCG@20 {learned_ndcg:.3}, random {random_ndcg:.3}");
        assert!(
            learned_ndcg > random_ndcg + 0.25,
            "learned {learned_ndcg:.3} vs random {random_ndcg:.3}"
        );
    }

    #[test]
    fn block_prediction_matches_row_prediction() {
        let mut data = planted(20, 6);
        let trees = train(&data, None, &params(), |_| {});
        // Missing values, and a row count that leaves a partial block and partial lanes.
        for (i, value) in data.features.iter_mut().enumerate() {
            if i % 7 == 3 {
                *value = f32::NAN;
            }
        }
        data.features.truncate(data.features.len() - 3 * data.width);
        let rows = data.features.len() / data.width;
        let blocked = predict_rows(&trees, &data.features, data.width);
        let single: Vec<f32> = (0..rows).map(|r| predict(&trees, data.row(r))).collect();
        assert_eq!(blocked.len(), rows);
        assert_eq!(blocked, single);
    }

    #[test]
    fn training_is_deterministic() {
        let data = planted(100, 3);
        let a = train(&data, None, &params(), |_| {});
        let b = train(&data, None, &params(), |_| {});
        assert_eq!(a, b);
    }

    #[test]
    fn early_stopping_keeps_the_best_prefix() {
        let data = planted(100, 4);
        let valid = planted(50, 5);
        let mut p = params();
        p.trees = 60;
        p.early_stopping_rounds = 5;
        let mut last = None;
        let trees = train(&data, Some(&valid), &p, |progress| last = Some(progress));
        let last = last.unwrap();
        assert!(trees.len() <= last.tree);
        assert!(!trees.is_empty());
    }

    #[test]
    fn missing_values_go_left_and_bins_match_thresholds() {
        let edges = cut_points(&[1.0, 2.0, 2.0, 3.0], 10);
        assert_eq!(edges, vec![1.0, 2.0, 3.0]);
        assert_eq!(bin_of(&edges, f32::NAN), 0);
        assert_eq!(bin_of(&edges, 0.5), 1);
        assert_eq!(bin_of(&edges, 1.0), 1);
        assert_eq!(bin_of(&edges, 1.5), 2);
        assert_eq!(bin_of(&edges, 9.0), 4);
        let tree = Tree {
            nodes: vec![
                Node {
                    feature: 0,
                    threshold: 1.0,
                    left: 1,
                    right: 2,
                    value: 0.0,
                },
                Node {
                    feature: -1,
                    threshold: 0.0,
                    left: 0,
                    right: 0,
                    value: -1.0,
                },
                Node {
                    feature: -1,
                    threshold: 0.0,
                    left: 0,
                    right: 0,
                    value: 1.0,
                },
            ],
        };
        assert_eq!(tree.predict(&[f32::NAN]), -1.0);
        assert_eq!(tree.predict(&[1.0]), -1.0);
        assert_eq!(tree.predict(&[1.5]), 1.0);
        assert!(tree.check(1).is_ok());
        assert!(tree.check(0).is_err());
    }

    #[test]
    fn ndcg_of_the_ideal_ranking_is_one() {
        assert_eq!(ndcg_at(&[0.0, 1.0, 0.0], &[0.1, 0.9, 0.2], 20), 1.0);
        let second = ndcg_at(&[0.0, 1.0], &[0.9, 0.1], 20);
        assert!((second - 1.0 / 3f64.log2()).abs() < 1e-12);
        assert_eq!(ndcg_at(&[0.0, 0.0], &[0.9, 0.1], 20), 0.0);
    }

    #[test]
    fn a_weighted_row_counts_like_its_copies() {
        // The gold scores below one negative standing for 3 rows: its estimated full-list rank
        // is 3, as with 3 tied copies, and it is pulled up by the weight of those pairs.
        let mut g = [0.0; 2];
        let mut h = [0.0; 2];
        lambdas(&[1.0, 0.0], &[0.0, 0.5], &[1.0, 3.0], 1.0, &mut g, &mut h);
        let rho = 1.0 / (1.0 + (-0.5f64).exp());
        let delta = (1.0 - 1.0 / 5f64.log2()).abs();
        assert!((g[0] as f64 + 3.0 * delta * rho).abs() < 1e-6, "{g:?}");
        assert!((g.iter().sum::<f32>()).abs() < 1e-6);
        let mut unit = [0.0; 2];
        lambdas(
            &[1.0, 0.0],
            &[0.0, 0.5],
            &[1.0, 1.0],
            1.0,
            &mut unit,
            &mut h,
        );
        assert!(
            g[0] < unit[0],
            "weight 3 pulls harder than weight 1: {g:?} vs {unit:?}"
        );
    }

    #[test]
    fn lambdas_push_the_relevant_row_up() {
        let mut g = [0.0; 3];
        let mut h = [0.0; 3];
        lambdas(
            &[0.0, 1.0, 0.0],
            &[0.5, 0.0, 0.2],
            &[1.0; 3],
            1.0,
            &mut g,
            &mut h,
        );
        assert!(
            g[1] < 0.0,
            "relevant row's loss gradient is negative: {g:?}"
        );
        assert!(g[0] > 0.0 && g[2] > 0.0);
        assert!((g.iter().sum::<f32>()).abs() < 1e-6);
        assert!(h.iter().all(|&x| x > 0.0));
    }
}

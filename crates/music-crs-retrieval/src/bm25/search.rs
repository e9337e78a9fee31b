//! Query evaluation: bm25s's exact top `k` with far less work than bm25s's own pass.
//!
//! bm25s adds, for every query-term occurrence in query order, that term's weight into the
//! float32 score of every document holding the term, then sorts. The same scores and the same
//! ranking come out of less work:
//!
//! - A repeated term's postings are added once, times its count.
//! - Max-score pruning: the query's terms are split by list length. The short lists are added
//!   first; the `k`-th best partial sum is then a floor under the final `k`-th score. Long
//!   lists whose summed upper bounds (count times the list's largest weight) stay below that
//!   floor are *non-essential*: a document only they match cannot reach the top `k`, so they
//!   are deferred. When few documents can still reach the floor with the deferred terms'
//!   bound added, only those are scored in full and the deferred lists are never read.
//! - Both change the order of the float32 additions, so the sums are then approximate, but off
//!   by at most a known relative rounding error ([`rounding_bound`]). Every document that could
//!   still be in the exact top `k` under that error is a candidate, and the candidates (a few
//!   dozen, near-ties included) are re-scored exactly by replaying the query's terms in order
//!   against their forward lists.
//! - The top `k` is chosen by a bounded heap whose `k`-th score gates the rest: over the list
//!   of touched documents when the query's lists are short, or by one scan of the whole score
//!   array, skipping blocks that hold nothing above the gate, when they are long.
//!
//! Masses of near-ties (more candidates than re-scoring one by one is worth) fall back to
//! bm25s's own ordered pass over every posting, so the result is exact in every case.

use std::cell::RefCell;
use std::collections::BinaryHeap;

use super::Bm25Index;

thread_local! {
    /// Per-thread buffers of [`Bm25Index::search_indices`]; the score array is all zeros
    /// between searches.
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// A query term id and how many times the query holds it.
type TermCount = (u32, u32);

#[derive(Default)]
struct Scratch {
    /// The query lower-cased.
    lowered: String,
    /// Per document: the (approximate, then reset) score.
    scores: Vec<f32>,
    /// Documents with a non-zero score, when tracked (one spare slot: see `accumulate`).
    touched: Vec<u32>,
    /// The query's term ids, in order, repeats kept.
    terms: Vec<u32>,
    /// The query's distinct terms in first-occurrence order, with their counts.
    unique: Vec<TermCount>,
    /// Per term: its position in `unique` (`u32::MAX` when absent); all MAX between searches.
    slot: Vec<u32>,
    /// The short-list terms, added first.
    short: Vec<TermCount>,
    /// The long-list terms with their upper bounds, by ascending bound.
    long: Vec<(TermCount, f64)>,
    /// Documents whose approximate score is near enough to the top `k` to be re-scored.
    near: Vec<Candidate>,
    /// The query positions of each distinct term, grouped by `unique` position:
    /// `positions[position_starts[u]..position_starts[u + 1]]`, filled on first re-score.
    position_starts: Vec<u32>,
    positions: Vec<u32>,
    /// While a document is re-scored: a bit per query position holding one of its terms,
    /// and that term's weight at the position (bits all clear between documents).
    marks: Vec<u64>,
    weight_at: Vec<f32>,
    /// The candidates' `(distinct term, weight)` pairs, the i-th candidate's ending at
    /// `matched_ends[i]`.
    matched: Vec<(u32, f32)>,
    matched_ends: Vec<u32>,
    /// The distinct terms by descending upper bound, and the scores sampled from their lists.
    by_bound: Vec<TermCount>,
    seed_scores: Vec<f32>,
}

impl Scratch {
    fn fit(&mut self, n_docs: usize, n_terms: usize) {
        if self.scores.len() < n_docs {
            self.scores.resize(n_docs, 0.0);
            self.touched.resize(n_docs + 1, 0);
        }
        if self.slot.len() < n_terms {
            self.slot.resize(n_terms, u32::MAX);
        }
    }
}

/// How a search divides its work. The defaults suit the index size; tests shrink them so that
/// small corpora take every path.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Tuning {
    /// Terms with at least this many postings may be deferred (max-score pruning).
    pub long_list: usize,
    /// From this many query postings on, the top `k` is chosen by scanning the whole score
    /// array instead of tracking the touched documents.
    pub dense_postings: usize,
    /// Candidates worth re-scoring one by one, besides 8 per requested hit, before the
    /// ordered pass over every posting is cheaper.
    pub rescore_base: usize,
}

impl Tuning {
    /// The measured defaults for an index of `n_docs` documents (see the crate README).
    pub fn for_docs(n_docs: usize) -> Self {
        Tuning {
            long_list: (n_docs / 8).max(64),
            dense_postings: n_docs / 8,
            rescore_base: 256,
        }
    }

    fn rescore_limit(&self, k: usize) -> usize {
        k.saturating_mul(8).saturating_add(self.rescore_base)
    }
}

/// A candidate in the top-k heap; `Ord` puts the *worst* candidate on top (lower score, or on
/// equal scores the later document), so the heap evicts it first.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    score: f32,
    doc: u32,
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}
impl Eq for Candidate {}
impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other
            .score
            .total_cmp(&self.score)
            .then(self.doc.cmp(&other.doc))
    }
}

/// The smallest positive f32: every touched document's score is at least this.
const ANY_SCORE: f32 = f32::from_bits(1);

/// The best `k` offers, and (for approximate scores) every offer that might still be.
struct TopK<'a> {
    k: usize,
    heap: BinaryHeap<Candidate>,
    /// For approximate scores, the factor under the `k`-th score above which a document may
    /// still belong to the exact top `k`; `None` for exact scores.
    shrink: Option<f64>,
    /// Offers below this cannot change the result.
    gate: f32,
    near: &'a mut Vec<Candidate>,
}

impl<'a> TopK<'a> {
    /// `seed`, when known, is at most the `k`-th best score.
    fn new(k: usize, shrink: Option<f64>, seed: Option<f32>, near: &'a mut Vec<Candidate>) -> Self {
        near.clear();
        let gate = match (seed, shrink) {
            (None, _) => ANY_SCORE,
            (Some(seed), None) => seed,
            (Some(seed), Some(shrink)) => f32_at_most(f64::from(seed) * shrink),
        };
        TopK {
            k,
            heap: BinaryHeap::with_capacity(k + 1),
            shrink,
            gate: gate.max(ANY_SCORE),
            near,
        }
    }

    /// Takes a score at least `self.gate`.
    #[inline]
    fn offer(&mut self, doc: u32, score: f32) {
        let candidate = Candidate { score, doc };
        if self.shrink.is_some() {
            self.near.push(candidate);
        }
        if self.heap.len() < self.k {
            self.heap.push(candidate);
            if self.heap.len() == self.k {
                self.raise_gate();
            }
        } else {
            let improved = match self.heap.peek_mut() {
                Some(mut worst) if candidate < *worst => {
                    *worst = candidate;
                    true
                }
                _ => false,
            };
            if improved {
                self.raise_gate();
            }
        }
    }

    fn raise_gate(&mut self) {
        if let Some(worst) = self.heap.peek() {
            let gate = match self.shrink {
                None => worst.score,
                Some(shrink) => f32_at_most(f64::from(worst.score) * shrink),
            };
            self.gate = self.gate.max(gate);
        }
    }
}

/// The largest f32 not above `x`.
fn f32_at_most(x: f64) -> f32 {
    let rounded = x as f32;
    if f64::from(rounded) > x {
        rounded.next_down()
    } else {
        rounded
    }
}

/// One query's evaluation over the thread's scratch buffers.
struct Search<'a> {
    index: &'a Bm25Index,
    scratch: &'a mut Scratch,
    k: usize,
    tuning: Tuning,
}

impl Bm25Index {
    /// The best `k` documents for `query` as `(doc index, score)`, best first; equal scores
    /// in index order. Only documents matching at least one query term are returned. Scores
    /// are exactly those of [`Bm25Index::scores`] (bm25s's float32 sums in query order).
    pub fn search_indices(&self, query: &str, k: usize) -> Vec<(usize, f32)> {
        self.search_tuned(query, k, Tuning::for_docs(self.len()))
    }

    pub(super) fn search_tuned(&self, query: &str, k: usize, tuning: Tuning) -> Vec<(usize, f32)> {
        // No more hits than documents; this also keeps `k` arithmetic far from overflow.
        let k = k.min(self.len());
        if k == 0 {
            return Vec::new();
        }
        SCRATCH.with(|cell| {
            let mut scratch = cell.borrow_mut();
            let scratch = &mut *scratch;
            scratch.fit(self.len(), self.vocabulary_len());
            self.query_terms_in(query, &mut scratch.lowered, &mut scratch.terms);
            let mut search = Search {
                index: self,
                scratch,
                k,
                tuning,
            };
            let hits = search.run();
            let Scratch { unique, slot, .. } = &mut *search.scratch;
            for &(term, _) in unique.iter() {
                slot[term as usize] = u32::MAX;
            }
            hits.into_iter()
                .map(|c| (c.doc as usize, c.score))
                .collect()
        })
    }
}

impl Search<'_> {
    /// The exact top `k` of the query in `scratch.terms`; leaves `scores` all zero and `slot`
    /// set for the distinct terms of `unique`.
    fn run(&mut self) -> Vec<Candidate> {
        let index = self.index;
        let Scratch {
            terms,
            unique,
            slot,
            short,
            long,
            ..
        } = &mut *self.scratch;
        unique.clear();
        for &term in terms.iter() {
            let position = &mut slot[term as usize];
            if *position == u32::MAX {
                *position = unique.len() as u32;
                unique.push((term, 1));
            } else {
                unique[*position as usize].1 += 1;
            }
        }
        if terms.len() > MAX_BOUNDED_TERMS {
            // Beyond this the rounding bound no longer holds: stay on bm25s's path.
            return self.exact_full();
        }
        let approximate = unique.len() != terms.len();
        let total: usize = unique.iter().map(|&(t, _)| index.list_len(t)).sum();
        let track = total < self.tuning.dense_postings;
        short.clear();
        long.clear();
        for &(term, count) in unique.iter() {
            if index.list_len(term) < self.tuning.long_list {
                short.push((term, count));
            } else {
                let bound = f64::from(count) * f64::from(index.max_weight[term as usize]);
                long.push(((term, count), bound));
            }
        }
        if short.is_empty() || long.is_empty() {
            // Distinct terms in first-occurrence order: with no repeat, bm25s's own sums.
            let n_touched = self.accumulate(Terms::Unique, track, 0);
            return self.select(track.then_some(n_touched), approximate);
        }
        long.sort_by(|a, b| a.1.total_cmp(&b.1));
        // From here on the terms are added out of query order: the sums are approximate.
        let n_touched = self.accumulate(Terms::Short, true, 0);
        let delta = rounding_bound(self.scratch.terms.len());
        let Some(kth) = kth_best(
            &self.scratch.scores,
            &self.scratch.touched[..n_touched],
            self.k,
        ) else {
            let n_touched =
                self.accumulate(Terms::Long(0..self.scratch.long.len()), track, n_touched);
            return self.select(track.then_some(n_touched), true);
        };
        // Every final top-k score is at least `floor` (sums only grow from here). The
        // lowest-bound long terms whose summed bound stays below it cannot lift a document no
        // other term matches into the top k: defer them.
        let floor = f64::from(kth) * (1.0 - delta) / (1.0 + delta) * (1.0 - 1e-9);
        let margin = (1.0 + 1e-6) * (1.0 + delta);
        let mut deferred = 0.0;
        let mut split = 0;
        for (i, &(_, bound)) in self.scratch.long.iter().enumerate() {
            if (deferred + bound) * margin >= floor {
                break;
            }
            deferred += bound;
            split = i + 1;
        }
        let n_long = self.scratch.long.len();
        let n_touched = self.accumulate(Terms::Long(split..n_long), track, n_touched);
        if split == 0 {
            return self.select(track.then_some(n_touched), true);
        }
        // A document reaches `floor` only if its partial sum plus the deferred terms' bound
        // does: `(partial / (1 - delta) + deferred) * (1 + delta) >= floor`, solved for the
        // partial sum with a little slack.
        let deferred = deferred * (1.0 + 1e-6);
        let reach = f32_at_most((floor / (1.0 + delta) - deferred) * (1.0 - delta) * (1.0 - 1e-9))
            .max(ANY_SCORE);
        let limit = self.tuning.rescore_limit(self.k);
        let tracked = track.then_some(n_touched);
        if let Some(candidates) = self.collect_reaching(tracked, reach, limit) {
            self.clear_scores(tracked);
            return self.rescore(candidates);
        }
        let n_touched = self.accumulate(Terms::Long(0..split), track, n_touched);
        self.select(track.then_some(n_touched), true)
    }

    /// Adds the postings of `which` terms (each times its count) into `scores`; when `track`,
    /// appends newly touched documents to `touched[n_touched..]` and returns the new count.
    fn accumulate(&mut self, which: Terms, track: bool, n_touched: usize) -> usize {
        let Scratch {
            scores,
            touched,
            unique,
            short,
            long,
            ..
        } = &mut *self.scratch;
        let terms: &mut dyn Iterator<Item = TermCount> = match which {
            Terms::Unique => &mut unique.iter().copied(),
            Terms::Short => &mut short.iter().copied(),
            Terms::Long(range) => &mut long[range].iter().map(|&(tc, _)| tc),
        };
        let mut n_touched = n_touched;
        for (term, count) in terms {
            let postings = self.index.term_postings(term);
            let factor = count as f32;
            if track {
                n_touched = add_tracked(postings, factor, scores, touched, n_touched);
            } else {
                add_untracked(postings, factor, scores);
            }
        }
        n_touched
    }

    /// The documents at or above `reach`, unless there are more than `limit`; scores kept.
    fn collect_reaching(
        &mut self,
        tracked: Option<usize>,
        reach: f32,
        limit: usize,
    ) -> Option<Vec<u32>> {
        let Scratch {
            scores, touched, ..
        } = &*self.scratch;
        let mut found = Vec::new();
        match tracked {
            Some(n_touched) => {
                for &doc in &touched[..n_touched] {
                    if scores[doc as usize] >= reach {
                        if found.len() == limit {
                            return None;
                        }
                        found.push(doc);
                    }
                }
            }
            None => {
                let (blocks, tail) = scores[..self.index.len()].as_chunks::<BLOCK>();
                let blocks = blocks.iter().map(|block| &block[..]).chain([tail]);
                for (block_index, block) in blocks.enumerate() {
                    if !any_at_least(block, reach) {
                        continue;
                    }
                    for (offset, &score) in block.iter().enumerate() {
                        if score >= reach {
                            if found.len() == limit {
                                return None;
                            }
                            found.push((block_index * BLOCK + offset) as u32);
                        }
                    }
                }
            }
        }
        Some(found)
    }

    fn clear_scores(&mut self, tracked: Option<usize>) {
        let Scratch {
            scores, touched, ..
        } = &mut *self.scratch;
        match tracked {
            Some(n_touched) => {
                for &doc in &touched[..n_touched] {
                    scores[doc as usize] = 0.0;
                }
            }
            None => scores[..self.index.len()].fill(0.0),
        }
    }

    /// The top `k` by the accumulated scores, which are bm25s's own unless `approximate`;
    /// approximate ones are settled by re-scoring the near candidates. Clears `scores`.
    fn select(&mut self, tracked: Option<usize>, approximate: bool) -> Vec<Candidate> {
        let shrink = approximate.then(|| {
            let delta = rounding_bound(self.scratch.terms.len());
            ((1.0 - delta) / (1.0 + delta)).powi(2) * (1.0 - 1e-9)
        });
        let n_docs = self.index.len();
        let seed = self.seed();
        let Scratch {
            scores,
            touched,
            near,
            ..
        } = &mut *self.scratch;
        let mut top = TopK::new(self.k, shrink, seed, near);
        match tracked {
            Some(n_touched) => {
                for &doc in &touched[..n_touched] {
                    let score = std::mem::take(&mut scores[doc as usize]);
                    if score >= top.gate {
                        top.offer(doc, score);
                    }
                }
            }
            None => {
                let (blocks, tail) = scores[..n_docs].as_chunks_mut::<BLOCK>();
                for (block_index, block) in blocks.iter_mut().enumerate() {
                    if any_at_least(block, top.gate) {
                        offer_at_least(block, block_index * BLOCK, &mut top);
                    }
                    *block = [0.0; BLOCK];
                }
                offer_at_least(tail, blocks.len() * BLOCK, &mut top);
                tail.fill(0.0);
            }
        }
        let Some(shrink) = shrink else {
            return top.heap.into_sorted_vec();
        };
        // Every document of the exact top k has an approximate score of at least the k-th
        // approximate score times `shrink` (0 when fewer than k documents matched).
        let threshold = match top.heap.peek() {
            Some(worst) if top.heap.len() == self.k => f32_at_most(f64::from(worst.score) * shrink),
            _ => 0.0,
        };
        let candidates: Vec<u32> = top
            .near
            .iter()
            .filter(|c| c.score >= threshold)
            .map(|c| c.doc)
            .collect();
        if candidates.len() > self.tuning.rescore_limit(self.k) {
            // Masses of near-ties: one ordered pass over every posting is cheaper.
            return self.exact_full();
        }
        self.rescore(candidates)
    }

    /// A first lower bound on the `k`-th best accumulated score, so that the selection
    /// offers few documents to its heap: the `k`-th best score among the first documents of
    /// the lists whose terms can add the most (where the best documents usually are).
    /// Expects every query term's postings accumulated.
    fn seed(&mut self) -> Option<f32> {
        let index = self.index;
        let wanted = self
            .k
            .saturating_mul(SEED_DOCS_PER_HIT)
            .saturating_add(SEED_DOCS_BASE);
        let Scratch {
            scores,
            unique,
            by_bound,
            seed_scores,
            ..
        } = &mut *self.scratch;
        by_bound.clear();
        by_bound.extend_from_slice(unique);
        let bound = |&(term, count): &TermCount| {
            f64::from(count) * f64::from(index.max_weight[term as usize])
        };
        by_bound.sort_unstable_by(|a, b| bound(b).total_cmp(&bound(a)));
        let postings = || {
            by_bound
                .iter()
                .flat_map(|&(term, _)| index.term_postings(term))
        };
        // A document met twice must count once: its score is negated while it is seen
        // (accumulated scores are all positive), then restored.
        seed_scores.clear();
        for posting in postings() {
            let score = &mut scores[posting.doc as usize];
            if *score > 0.0 {
                seed_scores.push(*score);
                *score = -*score;
                if seed_scores.len() == wanted {
                    break;
                }
            }
        }
        let mut negated = seed_scores.len();
        for posting in postings() {
            if negated == 0 {
                break;
            }
            let score = &mut scores[posting.doc as usize];
            if *score < 0.0 {
                *score = -*score;
                negated -= 1;
            }
        }
        if seed_scores.len() < self.k {
            return None;
        }
        let (_, kth, _) = seed_scores.select_nth_unstable_by(self.k - 1, |a, b| b.total_cmp(a));
        Some(*kth)
    }

    /// bm25s's own evaluation: the postings of every query-term occurrence added in query
    /// order, then the top `k`. Expects and leaves `scores` all zero.
    fn exact_full(&mut self) -> Vec<Candidate> {
        let index = self.index;
        let total: usize = self.scratch.terms.iter().map(|&t| index.list_len(t)).sum();
        let track = total < self.tuning.dense_postings;
        let Scratch {
            scores,
            touched,
            terms,
            ..
        } = &mut *self.scratch;
        let mut n_touched = 0;
        for &term in terms.iter() {
            let postings = index.term_postings(term);
            if track {
                n_touched = add_tracked(postings, 1.0, scores, touched, n_touched);
            } else {
                add_untracked(postings, 1.0, scores);
            }
        }
        self.select(track.then_some(n_touched), false)
    }

    /// The exact top `k` of `candidates`.
    fn rescore(&mut self, candidates: Vec<u32>) -> Vec<Candidate> {
        self.fill_positions();
        let Scratch {
            slot,
            matched,
            matched_ends,
            position_starts,
            positions,
            marks,
            weight_at,
            ..
        } = &mut *self.scratch;
        // The forward lists of scattered documents miss the caches. Gathering every
        // candidate's matching `(distinct term, weight)` pairs in one tight loop first lets
        // those misses overlap; the ordered sums then read cached data only.
        matched.clear();
        matched_ends.clear();
        for &doc in &candidates {
            for entry in self.index.forward_list(doc) {
                let distinct = slot[entry.term as usize];
                if distinct != u32::MAX {
                    matched.push((distinct, entry.weight));
                }
            }
            matched_ends.push(matched.len() as u32);
        }
        let mut from = 0;
        let mut exact: Vec<Candidate> = candidates
            .iter()
            .zip(matched_ends.iter())
            .map(|(&doc, &end)| {
                let pairs = &matched[from..end as usize];
                from = end as usize;
                let score = ordered_sum(pairs, position_starts, positions, marks, weight_at);
                Candidate { score, doc }
            })
            .collect();
        exact.sort_unstable();
        exact.truncate(self.k);
        exact
    }

    /// Groups the query positions by distinct term (a counting sort over `unique` order).
    fn fill_positions(&mut self) {
        let Scratch {
            terms,
            unique,
            slot,
            position_starts,
            positions,
            marks,
            weight_at,
            ..
        } = &mut *self.scratch;
        position_starts.clear();
        position_starts.push(0);
        for &(_, count) in unique.iter() {
            let end = position_starts[position_starts.len() - 1] + count;
            position_starts.push(end);
        }
        positions.clear();
        positions.resize(terms.len(), 0);
        marks.clear();
        marks.resize(terms.len().div_ceil(64), 0);
        weight_at.clear();
        weight_at.resize(terms.len(), 0.0);
        let mut heads: Vec<u32> = position_starts[..unique.len()].to_vec();
        for (at, &term) in terms.iter().enumerate() {
            let head = &mut heads[slot[term as usize] as usize];
            positions[*head as usize] = at as u32;
            *head += 1;
        }
    }
}

/// bm25s's score of one document from its `(distinct query term, weight)` pairs: the
/// weights added in query-term order, repeats included (query terms it lacks would add +0.0,
/// which changes no float sum). `starts` and `positions` list each distinct term's query
/// positions; `marks` (all clear, and left so) and `weight_at` are one bit and one weight per
/// query position.
fn ordered_sum(
    pairs: &[(u32, f32)],
    starts: &[u32],
    positions: &[u32],
    marks: &mut [u64],
    weight_at: &mut [f32],
) -> f32 {
    for &(distinct, weight) in pairs {
        let from = starts[distinct as usize] as usize;
        let to = starts[distinct as usize + 1] as usize;
        for &at in &positions[from..to] {
            marks[at as usize / 64] |= 1 << (at % 64);
            weight_at[at as usize] = weight;
        }
    }
    // The marked positions in query order: bm25s's additions, without its +0.0 ones.
    let mut score = 0.0f32;
    for (word_index, word) in marks.iter_mut().enumerate() {
        let mut bits = std::mem::take(word);
        while bits != 0 {
            score += weight_at[word_index * 64 + bits.trailing_zeros() as usize];
            bits &= bits - 1;
        }
    }
    score
}

/// Which of the query's term lists to add.
enum Terms {
    Unique,
    Short,
    Long(std::ops::Range<usize>),
}

/// How many documents [`Search::seed`] samples: this many per requested hit, plus a base.
const SEED_DOCS_PER_HIT: usize = 8;
const SEED_DOCS_BASE: usize = 64;

/// Scores scanned per block: the block is skipped when none reaches the gate.
const BLOCK: usize = 16;

/// Whether any score in `block` is at least `gate`, without branches (so it vectorizes).
#[inline]
fn any_at_least(block: &[f32], gate: f32) -> bool {
    block
        .iter()
        .fold(false, |any, &score| any | (score >= gate))
}

/// Offers the documents of `block` (the first is `first`) whose score passes the gate.
#[inline]
fn offer_at_least(block: &[f32], first: usize, top: &mut TopK) {
    for (offset, &score) in block.iter().enumerate() {
        if score >= top.gate {
            top.offer((first + offset) as u32, score);
        }
    }
}

#[inline]
fn add_tracked(
    postings: &[super::Posting],
    factor: f32,
    scores: &mut [f32],
    touched: &mut [u32],
    mut n_touched: usize,
) -> usize {
    for posting in postings {
        let doc = posting.doc as usize;
        let score = scores[doc];
        // Weights are positive, so a zero accumulator means "not yet touched"; appending
        // without a branch avoids mispredictions on long posting lists.
        touched[n_touched] = posting.doc;
        n_touched += usize::from(score == 0.0);
        // `factor` is 1 for most terms; x * 1.0 is exact.
        scores[doc] = score + factor * posting.weight;
    }
    n_touched
}

#[inline]
fn add_untracked(postings: &[super::Posting], factor: f32, scores: &mut [f32]) {
    for posting in postings {
        scores[posting.doc as usize] += factor * posting.weight;
    }
}

/// A relative bound on the rounding error of a float32 sum of `n` positive terms, in any
/// order and with products of counts: the sum is within `real * (1 ± bound)`.
fn rounding_bound(n: usize) -> f64 {
    1.01 * (n + 1) as f64 * f64::from(f32::EPSILON) / 2.0
}

/// The longest query (in terms) whose float32 rounding error [`rounding_bound`] bounds
/// (it assumes `n * 2^-24 <= 0.01`).
const MAX_BOUNDED_TERMS: usize = 100_000;

/// The `k`-th best score among `docs` (`None` when there are fewer than `k`).
fn kth_best(scores: &[f32], docs: &[u32], k: usize) -> Option<f32> {
    if docs.len() < k {
        return None;
    }
    // A min-heap of the best k scores so far.
    let mut heap: BinaryHeap<std::cmp::Reverse<OrderedScore>> = BinaryHeap::with_capacity(k + 1);
    for &doc in docs {
        let score = OrderedScore(scores[doc as usize]);
        if heap.len() < k {
            heap.push(std::cmp::Reverse(score));
        } else if let Some(mut smallest) = heap.peek_mut()
            && score > smallest.0
        {
            *smallest = std::cmp::Reverse(score);
        }
    }
    heap.peek().map(|r| r.0.0)
}

/// An f32 with a total order, for heaps.
#[derive(Debug, Clone, Copy)]
struct OrderedScore(f32);

impl PartialEq for OrderedScore {
    fn eq(&self, other: &Self) -> bool {
        self.0.total_cmp(&other.0).is_eq()
    }
}
impl Eq for OrderedScore {}
impl PartialOrd for OrderedScore {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for OrderedScore {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use proptest::sample::Index;

    use super::*;
    use crate::bm25::Bm25Params;

    /// The index of a word only documents hold.
    const FILLER: usize = usize::MAX;

    /// The word of index `i` in a vocabulary of `vocab` words: `vocab` itself is a stop word
    /// (dropped everywhere) and anything above is a word no document holds.
    fn word(i: usize, vocab: usize) -> String {
        if i == FILLER {
            return "filler".into();
        }
        match i.cmp(&vocab) {
            std::cmp::Ordering::Less => format!("w{i}"),
            std::cmp::Ordering::Equal => "the".into(),
            std::cmp::Ordering::Greater => format!("unknown{i}"),
        }
    }

    fn text(words: &[usize], vocab: usize) -> String {
        words
            .iter()
            .map(|&i| word(i, vocab))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The exact top `k` from the exhaustive score vector (bm25s's own sums): by descending
    /// score, equal scores in index order, non-matching documents left out. Scores as bits,
    /// so that equality is bit-for-bit.
    fn oracle(index: &Bm25Index, query: &str, k: usize) -> Vec<(usize, u32)> {
        let mut ranked: Vec<(usize, f32)> = index
            .scores(query)
            .into_iter()
            .enumerate()
            .filter(|&(_, score)| score > 0.0)
            .collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked.truncate(k);
        bits(ranked)
    }

    fn bits(hits: Vec<(usize, f32)>) -> Vec<(usize, u32)> {
        hits.into_iter()
            .map(|(doc, s)| (doc, s.to_bits()))
            .collect()
    }

    /// A random corpus over a small vocabulary (many repeated words and exact ties, empty
    /// documents included), a random query (repeats, stop words, unknown words) and random
    /// search tuning, so that small corpora take every path:
    /// deferral with re-scoring or its fallback, touched lists or dense scans, and the
    /// ordered pass for masses of near-ties.
    #[derive(Debug, Clone)]
    struct Case {
        vocab: usize,
        docs: Vec<Vec<usize>>,
        query: Vec<usize>,
        long_list: Index,
        dense_postings: Index,
        rescore_base: usize,
    }

    fn case() -> impl Strategy<Value = Case> {
        (1usize..=8)
            .prop_flat_map(|vocab| {
                // Documents over the whole vocabulary, or over a band of three neighbouring
                // words (so that some documents hold only common words, others only rare
                // ones: what deferring common terms must get right).
                let anywhere = prop::collection::vec(0..=vocab, 0..12);
                let banded = (0..=vocab, prop::collection::vec(0..3usize, 0..12)).prop_map(
                    move |(band, offsets)| {
                        offsets
                            .into_iter()
                            .map(|offset| (band + offset) % (vocab + 1))
                            .collect()
                    },
                );
                // Words no query holds vary the document lengths, hence the weights, so that
                // some sums land within rounding error of each other.
                let doc = (prop_oneof![anywhere, banded], 0usize..12).prop_map(
                    move |(mut words, fillers)| {
                        words.extend((0..fillers).map(|_| FILLER));
                        words
                    },
                );
                (
                    Just(vocab),
                    prop::collection::vec(doc, 0..80),
                    prop::collection::vec(0..vocab + 3, 0..80),
                    any::<Index>(),
                    any::<Index>(),
                    0usize..48,
                )
            })
            .prop_map(
                |(vocab, docs, query, long_list, dense_postings, rescore_base)| Case {
                    vocab,
                    docs,
                    query,
                    long_list,
                    dense_postings,
                    rescore_base,
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn pruned_search_equals_exhaustive_scoring(case in case()) {
            let docs: Vec<(String, String)> = case
                .docs
                .iter()
                .enumerate()
                .map(|(i, words)| (format!("d{i}"), text(words, case.vocab)))
                .collect();
            let index = Bm25Index::build(docs, Bm25Params::default()).unwrap();
            let query = text(&case.query, case.vocab);
            let n = index.len();
            let tuning = Tuning {
                long_list: 1 + case.long_list.index(n + 2),
                dense_postings: case.dense_postings.index(index.postings_len() * 2 + 2),
                rescore_base: case.rescore_base,
            };
            // Every cutoff: a wrong candidate set shows wherever its error crosses the k-th
            // place.
            let ranking = oracle(&index, &query, n);
            for k in 1..=n + 2 {
                let expected = &ranking[..k.min(ranking.len())];
                prop_assert_eq!(bits(index.search_indices(&query, k)), expected, "k {}", k);
                prop_assert_eq!(
                    bits(index.search_tuned(&query, k, tuning)),
                    expected,
                    "k {}, tuning {:?}",
                    k,
                    tuning
                );
            }
        }
    }

    #[test]
    fn near_ties_need_the_rounding_slack() {
        // Found by a search over small corpora: documents 4 and 0 score one ulp apart, and
        // adding each distinct term once times its count ranks them the other way round
        // than bm25s's ordered sums. Only the rounding slack keeps both as candidates.
        let filler = |n: usize| " ff".repeat(n);
        let texts = [
            format!("aa cc cc{}", filler(10)),
            format!("bb{}", filler(3)),
            format!("bb{}", filler(5)),
            format!("cc{}", filler(8)),
            format!("bb cc aa bb{}", filler(9)),
        ];
        let index = Bm25Index::build(
            texts
                .iter()
                .enumerate()
                .map(|(i, text)| (format!("d{i}"), text.clone())),
            Bm25Params::default(),
        )
        .unwrap();
        let query = "cc aa bb cc aa cc";
        // The approximate sums (cc x 3, then aa x 2, then bb) invert the exact order.
        let weight = |term: &str, doc: usize| index.scores(term)[doc];
        let approximate =
            |doc: usize| 3.0 * weight("cc", doc) + 2.0 * weight("aa", doc) + weight("bb", doc);
        let exact = index.scores(query);
        assert!(exact[4] > exact[0], "{} {}", exact[4], exact[0]);
        assert!(approximate(4) < approximate(0));
        for k in 1..=6 {
            assert_eq!(
                bits(index.search_indices(query, k)),
                oracle(&index, query, k)
            );
        }
    }

    #[test]
    fn huge_k_is_capped_by_the_corpus() {
        let index = Bm25Index::build(
            [("a", "w1 w2"), ("b", "w2"), ("c", "w3")]
                .map(|(id, text)| (id.to_string(), text.to_string())),
            Bm25Params::default(),
        )
        .unwrap();
        let hits = index.search_indices("w2 w1 w2", usize::MAX);
        assert_eq!(bits(hits), oracle(&index, "w2 w1 w2", 3));
    }
}

//! BM25 that scores exactly like bm25s 0.3.16 (the library of the official baseline).
//!
//! bm25s's defaults: method "lucene", k1 1.5, b 0.75, float32 scores. At index time every
//! (term, document) pair gets the weight
//!
//! ```text
//! idf(t)   = ln(1 + (N - df(t) + 0.5) / (df(t) + 0.5))          rounded to f32
//! w(t, d)  = idf(t) * tf / (k1 * ((1 - b) + b * |d| / avgdl) + tf)   in f64, rounded to f32
//! ```
//!
//! where `|d|` counts the document's terms after stop-word removal and `avgdl` is their mean.
//! A query's score for a document is the f32 sum of `w(t, d)` over the query's terms **in
//! query order, repeats included** (bm25s adds a repeated query term once per occurrence).
//! [`Bm25Index::scores`] computes exactly that; [`Bm25Index::search`] returns the same scores
//! and the same ranking bit for bit, with far less work.
//!
//! The index is inverted: per term, a contiguous list of `(doc, weight)` postings, plus the
//! same weights per document (forward lists) and each term's largest weight. A search adds
//! each distinct query term's postings once (times its count), defers long lists that cannot
//! change the top `k` (max-score pruning), picks the best `k` with a gated bounded heap, and
//! re-scores the few documents whose rank the float32 rounding could change in bm25s's exact
//! term order (see `search.rs`). Documents no query term matches score 0 and are never
//! returned (bm25s pads its top-k with arbitrary zero-score documents instead).

mod persist;
mod search;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use music_crs_core::{Catalog, ScoredTrack, TrackField, TurnContext};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::hash::FxBuildHasher;
use crate::query::QueryRenderer;
use crate::tokenizer::{Tokenizer, TokenizerParams};
use crate::{Error, Result, Retriever};

pub use persist::{FORMAT_VERSION, INDEX_FILE_NAME};

/// BM25 settings; the default is bm25s's default (`method="lucene"`, k1 1.5, b 0.75, its
/// default tokenizer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Bm25Params {
    /// Term-frequency saturation.
    pub k1: f64,
    /// Document-length normalisation, in `[0, 1]`.
    pub b: f64,
    /// How documents and queries are split into terms.
    pub tokenizer: TokenizerParams,
}

impl Bm25Params {
    /// bm25s's default k1.
    pub const DEFAULT_K1: f64 = 1.5;
    /// bm25s's default b.
    pub const DEFAULT_B: f64 = 0.75;

    /// Checks the ranges: k1 finite and non-negative, b in `[0, 1]`.
    pub fn validate(&self) -> Result<()> {
        if !(self.k1.is_finite() && self.k1 >= 0.0) {
            return Err(Error::InvalidParameter {
                name: "bm25.k1",
                reason: format!("{} is not a finite non-negative number", self.k1),
            });
        }
        if !(0.0..=1.0).contains(&self.b) {
            return Err(Error::InvalidParameter {
                name: "bm25.b",
                reason: format!("{} is outside [0, 1]", self.b),
            });
        }
        self.tokenizer.validate()
    }
}

impl Default for Bm25Params {
    fn default() -> Self {
        Bm25Params {
            k1: Self::DEFAULT_K1,
            b: Self::DEFAULT_B,
            tokenizer: TokenizerParams::default(),
        }
    }
}

/// One entry of a term's posting list.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Posting {
    doc: u32,
    weight: f32,
}

/// An immutable inverted BM25 index over `(id, text)` documents.
#[derive(Debug, Clone)]
pub struct Bm25Index {
    params: Bm25Params,
    tokenizer: Tokenizer,
    doc_ids: Vec<String>,
    doc_lengths: Vec<u32>,
    avg_doc_len: f64,
    /// Term text -> term id; ids are dense, in order of first appearance.
    vocab: HashMap<Box<str>, u32, FxBuildHasher>,
    /// Postings of term `t` are `postings[offsets[t]..offsets[t + 1]]`, by ascending doc.
    offsets: Vec<usize>,
    postings: Vec<Posting>,
    /// Forward view of the same weights: the `(term, weight)` pairs of document `d` are
    /// `forward[forward_offsets[d]..forward_offsets[d + 1]]` (derived, not saved).
    forward_offsets: Vec<usize>,
    forward: Vec<TermWeight>,
    /// Per term: its largest posting weight (an upper bound of its contribution).
    max_weight: Vec<f32>,
}

/// One entry of a document's forward list.
#[derive(Debug, Clone, Copy, PartialEq)]
struct TermWeight {
    term: u32,
    weight: f32,
}

/// The forward lists of postings grouped by term.
fn forward_lists(
    n_docs: usize,
    offsets: &[usize],
    postings: &[Posting],
) -> (Vec<usize>, Vec<TermWeight>) {
    let mut counts = vec![0usize; n_docs + 1];
    for posting in postings {
        counts[posting.doc as usize + 1] += 1;
    }
    for doc in 0..n_docs {
        counts[doc + 1] += counts[doc];
    }
    let forward_offsets = counts.clone();
    let mut forward = vec![
        TermWeight {
            term: 0,
            weight: 0.0
        };
        postings.len()
    ];
    for term in 0..offsets.len().saturating_sub(1) {
        for posting in &postings[offsets[term]..offsets[term + 1]] {
            let head = &mut counts[posting.doc as usize];
            forward[*head] = TermWeight {
                term: term as u32,
                weight: posting.weight,
            };
            *head += 1;
        }
    }
    (forward_offsets, forward)
}

impl Bm25Index {
    /// Indexes `(id, text)` documents. Fails on invalid parameters or a repeated id.
    ///
    /// Document order is the tie-break of equal scores (earlier first).
    pub fn build(
        docs: impl IntoIterator<Item = (String, String)>,
        params: Bm25Params,
    ) -> Result<Self> {
        params.validate()?;
        let tokenizer = Tokenizer::new(params.tokenizer.clone())?;
        let mut doc_ids = Vec::new();
        let mut lowered = String::new();
        let mut vocab: HashMap<Box<str>, u32, FxBuildHasher> = HashMap::default();
        // Per document: its (term, tf) pairs, flattened, and its length in terms.
        let mut pair_starts = vec![0usize];
        let mut pair_terms: Vec<u32> = Vec::new();
        let mut pair_tfs: Vec<u32> = Vec::new();
        let mut doc_lengths = Vec::new();
        let mut doc_terms: Vec<u32> = Vec::new();
        for (id, text) in docs {
            doc_ids.push(id);
            doc_terms.clear();
            tokenizer.for_each_term_in(&text, &mut lowered, |term| {
                let next = vocab.len() as u32;
                let term_id = match vocab.get(term) {
                    Some(&existing) => existing,
                    None => {
                        vocab.insert(term.into(), next);
                        next
                    }
                };
                doc_terms.push(term_id);
            });
            doc_lengths.push(doc_terms.len() as u32);
            doc_terms.sort_unstable();
            for run in doc_terms.chunk_by(|a, b| a == b) {
                pair_terms.push(run[0]);
                pair_tfs.push(run.len() as u32);
            }
            pair_starts.push(pair_terms.len());
        }
        // Repeated ids, checked once all are in: the first repeat in corpus order is named.
        let mut seen: HashSet<&str, FxBuildHasher> = HashSet::default();
        seen.reserve(doc_ids.len());
        if let Some(repeat) = doc_ids.iter().find(|id| !seen.insert(id.as_str())) {
            return Err(Error::DuplicateDocument(repeat.clone()));
        }
        drop(seen);
        if doc_ids.len() > u32::MAX as usize {
            return Err(Error::InvalidParameter {
                name: "docs",
                reason: format!("{} documents exceed the index limit", doc_ids.len()),
            });
        }
        let n_docs = doc_ids.len();
        let total_len: u64 = doc_lengths.iter().map(|&l| u64::from(l)).sum();
        // numpy's mean of the integer lengths: exact sum, one division.
        let avg_doc_len = if n_docs == 0 {
            0.0
        } else {
            total_len as f64 / n_docs as f64
        };

        let mut doc_freq = vec![0u32; vocab.len()];
        for &term in &pair_terms {
            doc_freq[term as usize] += 1;
        }
        let idf: Vec<f32> = doc_freq
            .iter()
            .map(|&df| lucene_idf(f64::from(df), n_docs as f64))
            .collect();

        // Counting sort of the (doc, term) pairs by term: postings end up by ascending doc.
        let mut offsets = Vec::with_capacity(vocab.len() + 1);
        offsets.push(0usize);
        for &df in &doc_freq {
            offsets.push(offsets[offsets.len() - 1] + df as usize);
        }
        let mut heads = offsets[..vocab.len()].to_vec();
        let mut postings = vec![
            Posting {
                doc: 0,
                weight: 0.0
            };
            pair_terms.len()
        ];
        let (k1, b) = (params.k1, params.b);
        for doc in 0..n_docs {
            let doc_len = f64::from(doc_lengths[doc]);
            // Same operation order as bm25s: k1 * ((1 - b) + b * l_d / l_avg) + tf, in f64.
            let norm = k1 * ((1.0 - b) + b * doc_len / avg_doc_len);
            for pair in pair_starts[doc]..pair_starts[doc + 1] {
                let term = pair_terms[pair] as usize;
                let tf = f64::from(pair_tfs[pair]);
                let weight = (f64::from(idf[term]) * (tf / (norm + tf))) as f32;
                postings[heads[term]] = Posting {
                    doc: doc as u32,
                    weight,
                };
                heads[term] += 1;
            }
        }
        tracing::debug!(
            docs = n_docs,
            terms = vocab.len(),
            postings = postings.len(),
            "built BM25 index"
        );
        Ok(Self::assemble(
            params,
            tokenizer,
            doc_ids,
            doc_lengths,
            avg_doc_len,
            vocab,
            offsets,
            postings,
        ))
    }

    /// The index from its saved parts, deriving the forward lists.
    #[allow(clippy::too_many_arguments)]
    fn assemble(
        params: Bm25Params,
        tokenizer: Tokenizer,
        doc_ids: Vec<String>,
        doc_lengths: Vec<u32>,
        avg_doc_len: f64,
        vocab: HashMap<Box<str>, u32, FxBuildHasher>,
        offsets: Vec<usize>,
        postings: Vec<Posting>,
    ) -> Self {
        let (forward_offsets, forward) = forward_lists(doc_ids.len(), &offsets, &postings);
        let max_weight = offsets
            .windows(2)
            .map(|w| {
                postings[w[0]..w[1]]
                    .iter()
                    .map(|p| p.weight)
                    .fold(0.0, f32::max)
            })
            .collect();
        Bm25Index {
            params,
            tokenizer,
            doc_ids,
            doc_lengths,
            avg_doc_len,
            vocab,
            offsets,
            postings,
            forward_offsets,
            forward,
            max_weight,
        }
    }

    /// Indexes catalog tracks, each as [`music_crs_core::Track::document_text`] of `fields`
    /// (`field: value` lines, lists joined with ", ": the official baseline's documents with
    /// [`TrackField::BASELINE`]). Track ids become document ids, in catalog order.
    pub fn from_catalog(
        catalog: &Catalog,
        fields: &[TrackField],
        params: Bm25Params,
    ) -> Result<Self> {
        if fields.is_empty() {
            return Err(Error::InvalidParameter {
                name: "fields",
                reason: "no track field to index".into(),
            });
        }
        Self::build(
            catalog
                .tracks()
                .iter()
                .map(|t| (t.track_id.clone(), t.document_text(fields))),
            params,
        )
    }

    /// The settings the index was built with.
    pub fn params(&self) -> &Bm25Params {
        &self.params
    }

    /// The tokenizer used for documents and queries.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Number of documents.
    pub fn len(&self) -> usize {
        self.doc_ids.len()
    }

    /// True when the index holds no document.
    pub fn is_empty(&self) -> bool {
        self.doc_ids.is_empty()
    }

    /// Document ids, in index order.
    pub fn doc_ids(&self) -> &[String] {
        &self.doc_ids
    }

    /// Number of distinct terms.
    pub fn vocabulary_len(&self) -> usize {
        self.vocab.len()
    }

    /// Number of (term, document) postings.
    pub fn postings_len(&self) -> usize {
        self.postings.len()
    }

    /// The mean document length in terms (bm25s's `avgdl`).
    pub fn avg_doc_len(&self) -> f64 {
        self.avg_doc_len
    }

    /// The query's term ids in query order, repeats kept, unknown terms dropped; `lowered`
    /// is the tokenizer's buffer.
    fn query_terms_in(&self, query: &str, lowered: &mut String, out: &mut Vec<u32>) {
        out.clear();
        // The vocabulary holds no stop word (checked on load), so looking a stop word up
        // drops it: no separate stop-word test per query word.
        self.tokenizer.for_each_word_in(query, lowered, |term| {
            if let Some(&id) = self.vocab.get(term) {
                out.push(id);
            }
        });
    }

    fn term_postings(&self, term: u32) -> &[Posting] {
        let term = term as usize;
        &self.postings[self.offsets[term]..self.offsets[term + 1]]
    }

    /// The number of documents holding `term`.
    fn list_len(&self, term: u32) -> usize {
        let term = term as usize;
        self.offsets[term + 1] - self.offsets[term]
    }

    /// The `(term, weight)` pairs of document `doc`.
    fn forward_list(&self, doc: u32) -> &[TermWeight] {
        let doc = doc as usize;
        &self.forward[self.forward_offsets[doc]..self.forward_offsets[doc + 1]]
    }

    /// The BM25 score of every document for `query`, in index order (0 when no term matches).
    pub fn scores(&self, query: &str) -> Vec<f32> {
        let mut terms = Vec::new();
        self.query_terms_in(query, &mut String::new(), &mut terms);
        let mut scores = vec![0.0f32; self.len()];
        for &term in &terms {
            for posting in self.term_postings(term) {
                scores[posting.doc as usize] += posting.weight;
            }
        }
        scores
    }

    /// The best `k` documents for `query`, best first (see [`Bm25Index::search_indices`]).
    pub fn search(&self, query: &str, k: usize) -> Vec<ScoredTrack> {
        self.search_indices(query, k)
            .into_iter()
            .map(|(doc, score)| ScoredTrack::new(self.doc_ids[doc].clone(), score))
            .collect()
    }

    /// [`Bm25Index::search`] for many queries, in parallel on the rayon pool; results in input
    /// order.
    pub fn search_batch<Q: AsRef<str> + Sync>(
        &self,
        queries: &[Q],
        k: usize,
    ) -> Vec<Vec<ScoredTrack>> {
        queries
            .par_iter()
            .map(|query| self.search(query.as_ref(), k))
            .collect()
    }
}

/// bm25s's "lucene" idf, computed in f64 (Python floats) and stored as f32.
fn lucene_idf(doc_freq: f64, n_docs: f64) -> f32 {
    (1.0 + (n_docs - doc_freq + 0.5) / (doc_freq + 0.5)).ln() as f32
}

/// BM25 over catalog documents, queried with a [`QueryRenderer`]'s text of each turn: the
/// official BM25 baseline with the default renderer and [`TrackField::BASELINE`] documents.
#[derive(Debug, Clone)]
pub struct Bm25Retriever {
    index: Arc<Bm25Index>,
    renderer: QueryRenderer,
}

impl Bm25Retriever {
    /// A retriever over `index`, rendering queries with `renderer`.
    pub fn new(index: impl Into<Arc<Bm25Index>>, renderer: QueryRenderer) -> Self {
        Bm25Retriever {
            index: index.into(),
            renderer,
        }
    }

    /// The index.
    pub fn index(&self) -> &Bm25Index {
        &self.index
    }

    /// The query renderer.
    pub fn renderer(&self) -> &QueryRenderer {
        &self.renderer
    }
}

impl Retriever for Bm25Retriever {
    fn name(&self) -> &str {
        "bm25"
    }

    fn retrieve(&self, query: &TurnContext, k: usize) -> Result<Vec<ScoredTrack>> {
        let text = self.renderer.render(query)?;
        Ok(self.index.search(&text, k))
    }

    fn retrieve_batch(&self, queries: &[TurnContext], k: usize) -> Result<Vec<Vec<ScoredTrack>>> {
        let texts = queries
            .par_iter()
            .map(|query| self.renderer.render(query))
            .collect::<Result<Vec<String>>>()?;
        Ok(self.index.search_batch(&texts, k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs(texts: &[&str]) -> Vec<(String, String)> {
        texts
            .iter()
            .enumerate()
            .map(|(i, t)| (format!("d{i}"), t.to_string()))
            .collect()
    }

    fn index(texts: &[&str]) -> Bm25Index {
        Bm25Index::build(docs(texts), Bm25Params::default()).unwrap()
    }

    /// Straight from the formula, independently of the index layout.
    fn reference_score(texts: &[&str], query: &str) -> Vec<f32> {
        let tokenizer = Tokenizer::new(TokenizerParams::default()).unwrap();
        let tokenized: Vec<Vec<String>> = texts.iter().map(|t| tokenizer.tokenize(t)).collect();
        let n = tokenized.len() as f64;
        let avgdl = tokenized.iter().map(Vec::len).sum::<usize>() as f64 / n;
        let query_terms = tokenizer.tokenize(query);
        tokenized
            .iter()
            .map(|doc| {
                let mut score = 0.0f32;
                for term in &query_terms {
                    let tf = doc.iter().filter(|t| *t == term).count() as f64;
                    if tf == 0.0 {
                        continue;
                    }
                    let df = tokenized.iter().filter(|d| d.contains(term)).count() as f64;
                    let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln() as f32;
                    let denom = 1.5 * (0.25 + 0.75 * doc.len() as f64 / avgdl) + tf;
                    score += (f64::from(idf) * (tf / denom)) as f32;
                }
                score
            })
            .collect()
    }

    const TEXTS: [&str; 5] = [
        "track_name: Feel This Moment\nartist_name: Pitbull\n",
        "track_name: Good Feeling\nartist_name: Flo Rida\nalbum_name: Wild Ones\n",
        "track_name: Feel Good Inc\nartist_name: Gorillaz\nalbum_name: Demon Days\n",
        "track_name: Moment 4 Life\nartist_name: Nicki Minaj\n",
        "track_name: Wild Ones\nartist_name: Flo Rida\n",
    ];

    #[test]
    fn scores_follow_the_lucene_formula() {
        let index = index(&TEXTS);
        for query in [
            "feel good",
            "wild wild ones flo",
            "moment feel moment",
            "nothing here",
        ] {
            assert_eq!(
                index.scores(query),
                reference_score(&TEXTS, query),
                "{query}"
            );
        }
    }

    #[test]
    fn repeated_query_terms_count_each_time() {
        let index = index(&TEXTS);
        let once = index.scores("gorillaz")[2];
        let twice = index.scores("gorillaz gorillaz")[2];
        assert!(once > 0.0);
        assert_eq!(twice, once + once);
    }

    #[test]
    fn search_ranks_best_first_with_index_order_ties() {
        let index = index(&["alpha beta", "alpha beta", "alpha", "gamma"]);
        let hits = index.search_indices("alpha beta", 10);
        let docs: Vec<usize> = hits.iter().map(|h| h.0).collect();
        assert_eq!(docs, [0, 1, 2]);
        assert_eq!(hits[0].1, hits[1].1);
        assert!(hits[1].1 > hits[2].1);
        // k cuts the list; the tie is broken by index order.
        assert_eq!(index.search("alpha beta", 1)[0].track_id, "d0");
        assert!(index.search("alpha", 0).is_empty());
        assert!(index.search("unknown words", 5).is_empty());
    }

    #[test]
    fn search_agrees_with_full_scores_on_every_k() {
        let index = index(&TEXTS);
        let query = "feel good wild ones moment flo";
        let scores = index.scores(query);
        let mut expected: Vec<(usize, f32)> = scores
            .iter()
            .copied()
            .enumerate()
            .filter(|&(_, s)| s > 0.0)
            .collect();
        expected.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        for k in 1..=6 {
            let got = index.search_indices(query, k);
            assert_eq!(got, expected[..k.min(expected.len())], "k={k}");
        }
    }

    /// A seeded pseudo-random pick in `0..n` (a 64-bit LCG): test data without a rand dependency.
    fn picker(seed: u64) -> impl FnMut(usize) -> usize {
        let mut state = seed;
        move |n| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as usize % n
        }
    }

    /// `search_indices` agrees with the oracle at every cutoff in `ks`.
    fn assert_exact_top_k(index: &Bm25Index, query: &str, ks: &[usize]) {
        for &k in ks {
            assert_eq!(
                index.search_indices(query, k),
                oracle(index, query, k),
                "k={k} {query}"
            );
        }
    }

    /// Exact top-k from the full score vector: the oracle of `search_indices`.
    fn oracle(index: &Bm25Index, query: &str, k: usize) -> Vec<(usize, f32)> {
        let mut ranked: Vec<(usize, f32)> = index
            .scores(query)
            .into_iter()
            .enumerate()
            .filter(|&(_, s)| s > 0.0)
            .collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked.truncate(k);
        ranked
    }

    #[test]
    fn repeated_terms_rank_exactly_like_ordered_sums() {
        // Many near-identical documents and long queries with many repeats: the approximate
        // first pass must never change the exact ranking.
        let words = [
            "love", "night", "dance", "blue", "heart", "rock", "soul", "wild",
        ];
        let mut next = picker(12345);
        let texts: Vec<String> = (0..300)
            .map(|_| {
                (0..1 + next(6))
                    .map(|_| words[next(words.len())])
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let index = index(&refs);
        for _ in 0..40 {
            let query: String = (0..5 + next(200))
                .map(|_| words[next(words.len())])
                .collect::<Vec<_>>()
                .join(" ");
            assert_exact_top_k(&index, &query, &[1, 5, 20, 300]);
        }
    }

    #[test]
    fn pruning_of_common_terms_keeps_the_exact_ranking() {
        // Every document has the field names (in all documents: tiny idf) and a few common
        // words; rare words make the difference. Queries mix all three, with repeats.
        let common = ["love", "night", "dance"];
        let mut next = picker(99);
        let texts: Vec<String> = (0..1000)
            .map(|i| {
                let mut text = format!("track_name: rare{} artist_name: rare{}", i % 97, i % 89);
                for _ in 0..next(4) {
                    text.push(' ');
                    text.push_str(common[next(common.len())]);
                }
                text
            })
            .collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let index = index(&refs);
        for round in 0..60 {
            let mut words: Vec<String> = (0..1 + next(6))
                .map(|_| format!("rare{}", next(120)))
                .collect();
            for _ in 0..next(30) {
                words.push(
                    ["track_name", "artist_name", "love", "night", "dance"][next(5)].to_string(),
                );
            }
            if round % 3 == 0 {
                words.push(words[0].clone());
            }
            let query = words.join(" ");
            assert_exact_top_k(&index, &query, &[1, 3, 20, 1000]);
        }
    }

    #[test]
    fn masses_of_ties_fall_back_to_the_ordered_pass() {
        // 600 near-identical documents tie; a repeated query term makes the sums approximate,
        // so the exact ranking needs the ordered pass over every posting.
        let texts: Vec<String> = (0..600)
            .map(|i| {
                if i % 7 == 0 {
                    "alpha beta gamma".to_string()
                } else {
                    "alpha beta".to_string()
                }
            })
            .collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let index = index(&refs);
        assert_exact_top_k(&index, "alpha beta alpha gamma", &[1, 10, 600]);
    }

    #[test]
    fn batch_matches_single_queries() {
        let index = index(&TEXTS);
        let queries = ["feel", "wild ones", "nicki", "zzz"];
        let batch = index.search_batch(&queries, 3);
        for (query, hits) in queries.iter().zip(&batch) {
            assert_eq!(hits, &index.search(query, 3));
        }
    }

    #[test]
    fn duplicate_ids_and_bad_params_are_rejected() {
        let err = Bm25Index::build(
            vec![("x".into(), "a".into()), ("x".into(), "b".into())],
            Bm25Params::default(),
        )
        .unwrap_err();
        assert!(
            matches!(err, Error::DuplicateDocument(ref id) if id == "x"),
            "{err}"
        );
        let err = Bm25Index::build(
            docs(&TEXTS),
            Bm25Params {
                b: 1.5,
                ..Bm25Params::default()
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("bm25.b"), "{err}");
        let err = Bm25Params {
            k1: f64::NAN,
            ..Bm25Params::default()
        }
        .validate()
        .unwrap_err();
        assert!(err.to_string().contains("bm25.k1"), "{err}");
    }

    #[test]
    fn empty_index_and_empty_documents_are_fine() {
        let empty = Bm25Index::build(Vec::new(), Bm25Params::default()).unwrap();
        assert!(empty.search("anything", 5).is_empty());
        let index = index(&["", "the and", "real words"]);
        assert_eq!(index.search("real", 5)[0].track_id, "d2");
    }

    #[test]
    fn catalog_documents_use_the_baseline_fields() {
        let mut track = music_crs_core::Track::new("t1", "Blue in Green", "Miles Davis");
        track.release_date = Some("1959-08-17".into());
        let catalog = Catalog::new(vec![
            track,
            music_crs_core::Track::new("t2", "So What", "Miles Davis"),
        ])
        .unwrap();
        let index = Bm25Index::from_catalog(&catalog, &TrackField::BASELINE, Bm25Params::default())
            .unwrap();
        assert_eq!(index.doc_ids(), ["t1", "t2"]);
        assert_eq!(index.search("1959 green", 2)[0].track_id, "t1");
        assert!(Bm25Index::from_catalog(&catalog, &[], Bm25Params::default()).is_err());
    }
}

//! Retrievers over vector indexes: text queries through an [`Encoder`], the user's cf-bpr
//! vector, and neighbours of the tracks already played.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use music_crs_core::{EmbeddingTable, ScoredTrack, TurnContext};
use serde::{Deserialize, Serialize};

use super::encoder::Encoder;
use super::index::{IndexParams, Neighbour, VectorIndex};
use super::vectors::{best_first, normalize};
use crate::{Error, QueryRenderer, Result, Retriever};

/// Turns each turn into a query vector, or `None` when the turn has nothing to search with.
pub trait TurnEmbedder: Send + Sync {
    /// Dimensions of the vectors.
    fn dim(&self) -> usize;

    /// One optional vector per turn, in input order.
    fn embed_turns(&self, turns: &[TurnContext]) -> Result<Vec<Option<Vec<f32>>>>;
}

/// Renders a turn as query text ([`QueryRenderer::render`] fits; see
/// [`TextTurnEmbedder::with_renderer`]).
pub type RenderQuery = Box<dyn Fn(&TurnContext) -> Result<String> + Send + Sync>;

/// Embeds turns by encoding their rendered query text.
pub struct TextTurnEmbedder {
    encoder: Arc<dyn Encoder>,
    render: RenderQuery,
}

impl TextTurnEmbedder {
    /// An embedder that encodes `render(turn)` with `encoder`.
    pub fn new(encoder: Arc<dyn Encoder>, render: RenderQuery) -> Self {
        TextTurnEmbedder { encoder, render }
    }

    /// An embedder that encodes the text of the crate's [`QueryRenderer`].
    pub fn with_renderer(encoder: Arc<dyn Encoder>, renderer: QueryRenderer) -> Self {
        TextTurnEmbedder::new(encoder, Box::new(move |turn| renderer.render(turn)))
    }
}

impl TurnEmbedder for TextTurnEmbedder {
    fn dim(&self) -> usize {
        self.encoder.dim()
    }

    fn embed_turns(&self, turns: &[TurnContext]) -> Result<Vec<Option<Vec<f32>>>> {
        let texts: Vec<String> = turns
            .iter()
            .map(|t| (self.render)(t))
            .collect::<Result<_>>()?;
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let dim = self.encoder.dim();
        let matrix = self.encoder.encode_batch(&refs)?;
        if matrix.len() != turns.len() * dim {
            return Err(Error::DimensionMismatch {
                what: format!("encoder {} output", self.encoder.model_id()),
                expected: turns.len() * dim,
                found: matrix.len(),
            });
        }
        Ok(matrix.chunks_exact(dim).map(|v| Some(v.to_vec())).collect())
    }
}

/// Embeds turns by the listener's own vector (e.g. User-Embeddings `cf-bpr`); unknown users
/// and users with an empty vector get `None`.
pub struct UserTurnEmbedder {
    users: Arc<EmbeddingTable>,
}

impl UserTurnEmbedder {
    /// An embedder reading `users` by `TurnContext::user_id`.
    pub fn new(users: Arc<EmbeddingTable>) -> Self {
        UserTurnEmbedder { users }
    }
}

impl TurnEmbedder for UserTurnEmbedder {
    fn dim(&self) -> usize {
        self.users.dim()
    }

    fn embed_turns(&self, turns: &[TurnContext]) -> Result<Vec<Option<Vec<f32>>>> {
        Ok(turns
            .iter()
            .map(|t| {
                self.users
                    .get(&t.user_id)
                    .filter(|v| v.iter().all(|x| x.is_finite()) && v.iter().any(|&x| x != 0.0))
                    .map(<[f32]>::to_vec)
            })
            .collect())
    }
}

/// A [`Retriever`] that embeds each turn and searches a [`VectorIndex`]; tracks already
/// played in the conversation are never returned. Turns without a vector get an empty list.
pub struct VectorRetriever {
    name: String,
    index: Box<dyn VectorIndex>,
    embedder: Box<dyn TurnEmbedder>,
}

impl VectorRetriever {
    /// Combines an embedder and an index of the same dimension.
    pub fn new(
        name: impl Into<String>,
        index: Box<dyn VectorIndex>,
        embedder: Box<dyn TurnEmbedder>,
    ) -> Result<Self> {
        if index.dim() != embedder.dim() {
            return Err(Error::DimensionMismatch {
                what: "query embedder vs index".into(),
                expected: index.dim(),
                found: embedder.dim(),
            });
        }
        Ok(VectorRetriever {
            name: name.into(),
            index,
            embedder,
        })
    }

    /// A text retriever: `renderer` turns a turn into query text, `encoder` embeds it,
    /// `index` holds the catalog's document vectors from the same encoder.
    pub fn text(
        index: Box<dyn VectorIndex>,
        encoder: Arc<dyn Encoder>,
        renderer: QueryRenderer,
    ) -> Result<Self> {
        let name = format!("dense:{}", encoder.model_id());
        let embedder = TextTurnEmbedder::with_renderer(encoder, renderer);
        VectorRetriever::new(name, index, Box::new(embedder))
    }

    /// [`VectorRetriever::text`] with any query text function.
    pub fn text_with(
        index: Box<dyn VectorIndex>,
        encoder: Arc<dyn Encoder>,
        render: RenderQuery,
    ) -> Result<Self> {
        let name = format!("dense:{}", encoder.model_id());
        let embedder = TextTurnEmbedder::new(encoder, render);
        VectorRetriever::new(name, index, Box::new(embedder))
    }

    /// The index searched.
    pub fn index(&self) -> &dyn VectorIndex {
        self.index.as_ref()
    }
}

impl Retriever for VectorRetriever {
    fn name(&self) -> &str {
        &self.name
    }

    fn retrieve(&self, query: &TurnContext, k: usize) -> Result<Vec<ScoredTrack>> {
        Ok(self
            .retrieve_batch(std::slice::from_ref(query), k)?
            .pop()
            .unwrap_or_default())
    }

    fn retrieve_batch(&self, queries: &[TurnContext], k: usize) -> Result<Vec<Vec<ScoredTrack>>> {
        let vectors = self.embedder.embed_turns(queries)?;
        let dim = self.index.dim();
        let mut matrix = Vec::new();
        let mut which = Vec::new();
        let mut fetch = 0;
        for (turn, vector) in queries.iter().zip(&vectors) {
            if let Some(v) = vector {
                matrix.extend_from_slice(v);
                which.push(true);
                fetch = fetch.max(k + turn.played_track_ids.len());
            } else {
                which.push(false);
            }
        }
        debug_assert_eq!(matrix.len() % dim.max(1), 0);
        let mut hits = self.index.search_batch(&matrix, fetch)?.into_iter();
        Ok(queries
            .iter()
            .zip(which)
            .map(|(turn, has_vector)| {
                if has_vector {
                    hits.next()
                        .map(|h| self.finish(turn, h, k))
                        .unwrap_or_default()
                } else {
                    Vec::new()
                }
            })
            .collect())
    }
}

impl VectorRetriever {
    fn finish(&self, turn: &TurnContext, hits: Vec<Neighbour>, k: usize) -> Vec<ScoredTrack> {
        let played: HashSet<&str> = turn.played_track_ids.iter().map(String::as_str).collect();
        let ids = self.index.ids();
        hits.into_iter()
            .map(|n| (ids[n.row].as_str(), n.score))
            .filter(|(id, _)| !played.contains(id))
            .take(k)
            .map(|(id, score)| ScoredTrack::new(id, score))
            .collect()
    }
}

/// Ranks tracks by similarity to the listener's cf-bpr vector (User-Embeddings) against the
/// tracks' cf-bpr vectors (Track-Embeddings), by cosine. Unknown or empty users get an empty
/// list, not an error.
pub struct UserSimilarityRetriever {
    inner: VectorRetriever,
}

impl UserSimilarityRetriever {
    /// Indexes the tracks of `tracks` that have a vector, with `index`.
    pub fn new(
        users: Arc<EmbeddingTable>,
        tracks: &EmbeddingTable,
        index: &IndexParams,
    ) -> Result<Self> {
        let (ids, data) = present_rows(tracks);
        let index = index.build(ids, data, tracks.dim())?;
        let name = format!("user-similarity:{}", tracks.kind());
        Ok(UserSimilarityRetriever {
            inner: VectorRetriever::new(name, index, Box::new(UserTurnEmbedder::new(users)))?,
        })
    }
}

impl Retriever for UserSimilarityRetriever {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn retrieve(&self, query: &TurnContext, k: usize) -> Result<Vec<ScoredTrack>> {
        self.inner.retrieve(query, k)
    }
    fn retrieve_batch(&self, queries: &[TurnContext], k: usize) -> Result<Vec<Vec<ScoredTrack>>> {
        self.inner.retrieve_batch(queries, k)
    }
}

/// The ids and vectors of a table's present rows.
fn present_rows(table: &EmbeddingTable) -> (Vec<String>, Vec<f32>) {
    let mut ids = Vec::new();
    let mut data = Vec::new();
    for (row, id) in table.ids().iter().enumerate() {
        if let Some(v) = table.row(row) {
            ids.push(id.clone());
            data.extend_from_slice(v);
        }
    }
    (ids, data)
}

/// How the played tracks' similarities are combined.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregation {
    /// Cosine to the (weighted) mean of the played tracks' unit vectors.
    #[default]
    Mean,
    /// The best (weighted) cosine to any played track.
    MaxSim,
}

/// Default recency decay: 1.0 weighs every played track equally.
pub const DEFAULT_RECENCY_DECAY: f32 = 1.0;

/// Parameters of an [`ItemNeighbourRetriever`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NeighbourParams {
    /// How similarities to several played tracks combine.
    pub aggregation: Aggregation,
    /// Weight factor per turn of age, in `(0, 1]`: the latest played track weighs 1, the one
    /// before `decay`, then `decay²`...
    pub recency_decay: f32,
    /// The index over the catalog's vectors.
    pub index: IndexParams,
}

impl Default for NeighbourParams {
    fn default() -> Self {
        NeighbourParams {
            aggregation: Aggregation::default(),
            recency_decay: DEFAULT_RECENCY_DECAY,
            index: IndexParams::default(),
        }
    }
}

impl NeighbourParams {
    /// Checks the values.
    pub fn validate(&self) -> Result<()> {
        if !(self.recency_decay > 0.0 && self.recency_decay <= 1.0) {
            return Err(Error::InvalidParameter {
                name: "recency_decay",
                reason: format!("{} is outside (0, 1]", self.recency_decay),
            });
        }
        self.index.validate()
    }
}

/// Ranks tracks by similarity of a pre-extracted embedding kind (Track-Embeddings:
/// `audio-laion_clap`, `image-siglip2`, `cf-bpr`, `*-qwen3_embedding_0.6b`) to the tracks
/// played earlier in the conversation.
///
/// Tracks with an empty vector are neither indexed nor used as queries; played tracks are
/// never returned; a turn without a played track that has a vector gets an empty list.
/// The index covers every present row of the table: build the table over the catalog's
/// tracks only.
pub struct ItemNeighbourRetriever {
    name: String,
    table: Arc<EmbeddingTable>,
    index: Box<dyn VectorIndex>,
    params: NeighbourParams,
}

impl ItemNeighbourRetriever {
    /// Indexes the present rows of `table`.
    pub fn new(table: Arc<EmbeddingTable>, params: NeighbourParams) -> Result<Self> {
        params.validate()?;
        let (ids, data) = present_rows(&table);
        let index = params.index.build(ids, data, table.dim())?;
        Ok(ItemNeighbourRetriever {
            name: format!("item-neighbours:{}", table.kind()),
            table,
            index,
            params,
        })
    }

    /// The parameters.
    pub fn params(&self) -> &NeighbourParams {
        &self.params
    }

    /// The played tracks' unit vectors with their recency weights (latest = 1).
    fn played_vectors(&self, turn: &TurnContext) -> Vec<(Vec<f32>, f32)> {
        let played = &turn.played_track_ids;
        played
            .iter()
            .enumerate()
            .filter_map(|(i, id)| {
                let mut v = self.table.get(id)?.to_vec();
                if !v.iter().all(|x| x.is_finite()) || normalize(&mut v) == 0.0 {
                    return None;
                }
                let age = (played.len() - 1 - i) as i32;
                Some((v, self.params.recency_decay.powi(age)))
            })
            .collect()
    }

    fn finish(
        &self,
        turn: &TurnContext,
        scored: impl IntoIterator<Item = (usize, f32)>,
        k: usize,
    ) -> Vec<ScoredTrack> {
        let played: HashSet<&str> = turn.played_track_ids.iter().map(String::as_str).collect();
        let ids = self.index.ids();
        let mut ranked: Vec<(usize, f32)> = scored
            .into_iter()
            .filter(|&(row, _)| !played.contains(ids[row].as_str()))
            .collect();
        ranked.sort_unstable_by(best_first);
        ranked
            .into_iter()
            .take(k)
            .map(|(row, score)| ScoredTrack::new(ids[row].clone(), score))
            .collect()
    }
}

impl Retriever for ItemNeighbourRetriever {
    fn name(&self) -> &str {
        &self.name
    }

    fn retrieve(&self, query: &TurnContext, k: usize) -> Result<Vec<ScoredTrack>> {
        Ok(self
            .retrieve_batch(std::slice::from_ref(query), k)?
            .pop()
            .unwrap_or_default())
    }

    fn retrieve_batch(&self, queries: &[TurnContext], k: usize) -> Result<Vec<Vec<ScoredTrack>>> {
        let dim = self.table.dim();
        let played: Vec<Vec<(Vec<f32>, f32)>> =
            queries.iter().map(|t| self.played_vectors(t)).collect();
        // Fetch enough that every played track can be dropped and k remain.
        let fetch = k + queries
            .iter()
            .map(|t| t.played_track_ids.len())
            .max()
            .unwrap_or(0);
        let mut matrix = Vec::new();
        match self.params.aggregation {
            Aggregation::Mean => {
                for vectors in &played {
                    if vectors.is_empty() {
                        continue;
                    }
                    let mut mean = vec![0f32; dim];
                    for (v, w) in vectors {
                        mean.iter_mut().zip(v).for_each(|(m, x)| *m += w * x);
                    }
                    matrix.extend(mean);
                }
            }
            Aggregation::MaxSim => {
                for (v, _) in played.iter().flatten() {
                    matrix.extend_from_slice(v);
                }
            }
        }
        let mut hits = self.index.search_batch(&matrix, fetch)?.into_iter();
        let mut out = Vec::with_capacity(queries.len());
        for (turn, vectors) in queries.iter().zip(&played) {
            if vectors.is_empty() {
                out.push(Vec::new());
                continue;
            }
            let ranked = match self.params.aggregation {
                Aggregation::Mean => {
                    let list = hits.next().unwrap_or_default();
                    self.finish(turn, list.into_iter().map(|n| (n.row, n.score)), k)
                }
                Aggregation::MaxSim => {
                    // Each track keeps its best weighted cosine over the played tracks; a
                    // track in the true top k is in the top (k + played) of its best query.
                    let mut best: HashMap<usize, f32> = HashMap::new();
                    for (_, weight) in vectors {
                        for n in hits.next().unwrap_or_default() {
                            let score = weight * n.score;
                            best.entry(n.row)
                                .and_modify(|s| *s = s.max(score))
                                .or_insert(score);
                        }
                    }
                    self.finish(turn, best, k)
                }
            };
            out.push(ranked);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Arc<EmbeddingTable> {
        Arc::new(
            EmbeddingTable::new(
                "cf-bpr",
                2,
                vec![
                    ("east".to_string(), Some(vec![1.0, 0.0])),
                    ("east2".to_string(), Some(vec![0.95, 0.05])),
                    ("north".to_string(), Some(vec![0.0, 1.0])),
                    ("north2".to_string(), Some(vec![0.05, 0.95])),
                    ("diag".to_string(), Some(vec![0.7, 0.7])),
                    ("empty".to_string(), Some(vec![])),
                    ("west".to_string(), Some(vec![-1.0, 0.0])),
                ],
            )
            .unwrap(),
        )
    }

    fn turn(played: &[&str]) -> TurnContext {
        TurnContext {
            user_id: "u1".into(),
            played_track_ids: played.iter().map(|s| s.to_string()).collect(),
            ..TurnContext::from_message("more")
        }
    }

    fn ids(hits: &[ScoredTrack]) -> Vec<&str> {
        hits.iter().map(|h| h.track_id.as_str()).collect()
    }

    #[test]
    fn mean_neighbours_skip_played_and_empty() {
        let r = ItemNeighbourRetriever::new(table(), NeighbourParams::default()).unwrap();
        let hits = r.retrieve(&turn(&["east"]), 3).unwrap();
        assert_eq!(ids(&hits), vec!["east2", "diag", "north2"]);
        assert!(r.retrieve(&turn(&[]), 3).unwrap().is_empty());
        assert!(
            r.retrieve(&turn(&["empty", "unknown"]), 3)
                .unwrap()
                .is_empty()
        );
        let all = r.retrieve(&turn(&["east", "north"]), 10).unwrap();
        assert_eq!(all.len(), 4, "6 present rows minus 2 played");
        assert_eq!(all[0].track_id, "diag");
        assert!(!ids(&all).contains(&"empty"));
    }

    #[test]
    fn max_sim_and_recency() {
        let params = NeighbourParams {
            aggregation: Aggregation::MaxSim,
            ..NeighbourParams::default()
        };
        let r = ItemNeighbourRetriever::new(table(), params.clone()).unwrap();
        let hits = r.retrieve(&turn(&["east", "north"]), 2).unwrap();
        // Max-sim keeps both clusters' nearest tracks at the top, unlike the mean.
        let mut top: Vec<&str> = ids(&hits);
        top.sort_unstable();
        assert_eq!(top, vec!["east2", "north2"]);

        let recent = ItemNeighbourRetriever::new(
            table(),
            NeighbourParams {
                recency_decay: 0.5,
                ..params
            },
        )
        .unwrap();
        let hits = recent.retrieve(&turn(&["east", "north"]), 1).unwrap();
        assert_eq!(
            ids(&hits),
            vec!["north2"],
            "the latest played track weighs more"
        );
        assert!(
            NeighbourParams {
                recency_decay: 0.0,
                ..NeighbourParams::default()
            }
            .validate()
            .is_err()
        );
    }

    #[test]
    fn batch_equals_single_turns() {
        let r = ItemNeighbourRetriever::new(table(), NeighbourParams::default()).unwrap();
        let turns = vec![turn(&["east"]), turn(&[]), turn(&["north", "diag"])];
        let batch = r.retrieve_batch(&turns, 3).unwrap();
        for (t, b) in turns.iter().zip(&batch) {
            assert_eq!(&r.retrieve(t, 3).unwrap(), b);
        }
    }

    #[test]
    fn user_similarity_handles_unknown_users() {
        let users = Arc::new(
            EmbeddingTable::new(
                "cf-bpr",
                2,
                vec![
                    ("u1".to_string(), Some(vec![0.0, 2.0])),
                    ("u2".to_string(), None),
                ],
            )
            .unwrap(),
        );
        let r = UserSimilarityRetriever::new(users, &table(), &IndexParams::Exact).unwrap();
        let hits = r.retrieve(&turn(&["north"]), 2).unwrap();
        assert_eq!(ids(&hits), vec!["north2", "diag"]);
        let mut unknown = turn(&[]);
        unknown.user_id = "u2".into();
        assert!(r.retrieve(&unknown, 5).unwrap().is_empty());
        unknown.user_id = String::new();
        assert!(r.retrieve(&unknown, 5).unwrap().is_empty());
    }

    #[test]
    fn text_retriever_uses_the_rendered_query() {
        let encoder: Arc<dyn Encoder> = Arc::new(super::super::encoder::tests::CountingEncoder {
            calls: Default::default(),
        });
        let docs = ["aaaa", "eeee", "oooo"];
        let index = IndexParams::Exact
            .build(
                docs.iter().map(|d| d.to_string()).collect(),
                encoder.encode_batch(&docs).unwrap(),
                4,
            )
            .unwrap();
        let r = VectorRetriever::text_with(
            index,
            encoder,
            Box::new(|t: &TurnContext| Ok(t.user_message.clone())),
        )
        .unwrap();
        let hits = r
            .retrieve(&TurnContext::from_message("ooo please"), 2)
            .unwrap();
        assert_eq!(hits[0].track_id, "oooo");
        let mut played = TurnContext::from_message("ooo please");
        played.played_track_ids = vec!["oooo".into()];
        assert!(!ids(&r.retrieve(&played, 3).unwrap()).contains(&"oooo"));
    }

    #[test]
    fn retrievers_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<ItemNeighbourRetriever>();
        check::<UserSimilarityRetriever>();
        check::<VectorRetriever>();
        check::<super::super::hnsw::HnswIndex>();
        check::<Box<dyn Encoder>>();
    }
}

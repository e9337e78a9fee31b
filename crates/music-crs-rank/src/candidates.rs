//! Named channels and the candidate union they produce for one turn.

use std::collections::HashMap;
use std::time::Instant;

use music_crs_core::{ScoredTrack, TurnContext};
use music_crs_retrieval::Retriever;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::{CatalogIndex, Error, Result};

/// RRF constant used to order the candidate union (ties and hard negatives follow it).
const UNION_RRF_K: f32 = 60.0;

/// One candidate source of a [`ChannelSet`].
pub struct NamedChannel {
    /// Unique name; the ranker's features are named after it.
    pub name: String,
    /// How many tracks the channel proposes per turn.
    pub depth: usize,
    /// The channel.
    pub retriever: Box<dyn Retriever>,
}

impl std::fmt::Debug for NamedChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NamedChannel")
            .field("name", &self.name)
            .field("depth", &self.depth)
            .finish_non_exhaustive()
    }
}

/// A channel's name and depth, as a trained model records them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelSpec {
    /// The channel's name.
    pub name: String,
    /// Its depth.
    pub depth: usize,
}

/// The candidate sources of a ranker: each proposes up to `depth` tracks per turn.
#[derive(Debug)]
pub struct ChannelSet {
    channels: Vec<NamedChannel>,
}

/// The union of the channels' proposals for one turn, played tracks and tracks the catalog
/// lacks left out, ordered by unweighted RRF over the channels.
#[derive(Debug, Clone, Default)]
pub(crate) struct Candidates {
    /// Catalog positions.
    pub positions: Vec<usize>,
    /// Row-major, `channels` per candidate: the channel's 1-based rank and score, when the
    /// channel proposed the candidate. One flat buffer instead of a vector per candidate.
    pub hits: Vec<Option<(u32, f32)>>,
    /// Number of channels.
    pub channels: usize,
}

impl Candidates {
    pub(crate) fn len(&self) -> usize {
        self.positions.len()
    }

    /// Each channel's rank and score of the candidate in `slot`.
    pub(crate) fn hits_of(&self, slot: usize) -> &[Option<(u32, f32)>] {
        &self.hits[slot * self.channels..(slot + 1) * self.channels]
    }

    /// The candidates in `slots`, in that order.
    pub(crate) fn subset(&self, slots: &[usize]) -> Candidates {
        Candidates {
            positions: slots.iter().map(|&s| self.positions[s]).collect(),
            hits: slots
                .iter()
                .flat_map(|&s| self.hits_of(s).iter().copied())
                .collect(),
            channels: self.channels,
        }
    }
}

impl ChannelSet {
    /// A set of channels; fails when empty, on a duplicate name or a depth of 0.
    pub fn new(channels: Vec<NamedChannel>) -> Result<Self> {
        if channels.is_empty() {
            return Err(Error::param("channels", "at least one channel is needed"));
        }
        for (i, channel) in channels.iter().enumerate() {
            if channel.depth == 0 {
                return Err(Error::param(
                    format!("depth of {}", channel.name),
                    "must be at least 1",
                ));
            }
            if channels[..i].iter().any(|c| c.name == channel.name) {
                return Err(Error::param(
                    "channels",
                    format!("the name {:?} appears more than once", channel.name),
                ));
            }
        }
        Ok(ChannelSet { channels })
    }

    /// Names and depths, in order.
    pub fn specs(&self) -> Vec<ChannelSpec> {
        self.channels
            .iter()
            .map(|c| ChannelSpec {
                name: c.name.clone(),
                depth: c.depth,
            })
            .collect()
    }

    /// The channels.
    pub fn channels(&self) -> &[NamedChannel] {
        &self.channels
    }

    /// The candidate union for each query (each channel answers the whole batch; the unions
    /// are assembled in parallel over the queries).
    pub(crate) fn candidates_batch(
        &self,
        index: &CatalogIndex,
        queries: &[TurnContext],
    ) -> Result<Vec<Candidates>> {
        let per_channel = self
            .channels
            .iter()
            .map(|c| {
                let started = Instant::now();
                let lists = c.retriever.retrieve_batch(queries, c.depth);
                tracing::debug!(
                    channel = %c.name,
                    queries = queries.len(),
                    seconds = started.elapsed().as_secs_f64(),
                    "channel batch"
                );
                lists
            })
            .collect::<music_crs_retrieval::Result<Vec<_>>>()?;
        let started = Instant::now();
        let unions = queries
            .par_iter()
            .enumerate()
            .map(|(q, query)| self.union(index, query, per_channel.iter().map(|lists| &lists[q])))
            .collect();
        tracing::debug!(
            queries = queries.len(),
            seconds = started.elapsed().as_secs_f64(),
            "candidate unions"
        );
        Ok(unions)
    }

    /// The union of one query's channel lists (in channel order).
    fn union<'a>(
        &self,
        index: &CatalogIndex,
        query: &TurnContext,
        lists: impl Iterator<Item = &'a Vec<ScoredTrack>>,
    ) -> Candidates {
        let channels = self.channels.len();
        // At most a handful of played tracks: a linear scan beats hashing.
        let played = index.positions(&query.played_track_ids);
        let capacity: usize = self.channels.iter().map(|c| c.depth).sum();
        let mut slot: HashMap<usize, usize> = HashMap::with_capacity(capacity);
        let mut out = Candidates {
            positions: Vec::with_capacity(capacity),
            hits: Vec::with_capacity(capacity * channels),
            channels,
        };
        for (c, list) in lists.enumerate() {
            for (i, hit) in list.iter().take(self.channels[c].depth).enumerate() {
                let Some(position) = index.catalog().index_of(&hit.track_id) else {
                    continue;
                };
                if played.contains(&position) {
                    continue;
                }
                let s = *slot.entry(position).or_insert_with(|| {
                    out.positions.push(position);
                    out.hits.extend(std::iter::repeat_n(None, channels));
                    out.positions.len() - 1
                });
                // A channel listing a track twice keeps its best rank.
                out.hits[s * channels + c].get_or_insert((i as u32 + 1, hit.score));
            }
        }
        order_by_rrf(out)
    }
}

/// Unweighted RRF over the channels' ranks.
pub(crate) fn union_rrf(hits: &[Option<(u32, f32)>]) -> f32 {
    hits.iter()
        .flatten()
        .map(|&(rank, _)| 1.0 / (UNION_RRF_K + rank as f32))
        .sum()
}

fn order_by_rrf(candidates: Candidates) -> Candidates {
    let rrf: Vec<f32> = (0..candidates.len())
        .map(|s| union_rrf(candidates.hits_of(s)))
        .collect();
    let mut order: Vec<usize> = (0..candidates.len()).collect();
    // Stable: equal RRF keeps first-proposed order.
    order.sort_by(|&a, &b| rrf[b].total_cmp(&rrf[a]));
    candidates.subset(&order)
}

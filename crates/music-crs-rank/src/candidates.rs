//! Named channels and the candidate union they produce for one turn.

use std::collections::{HashMap, HashSet};

use music_crs_core::TurnContext;
use music_crs_retrieval::Retriever;
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
    /// Per candidate, per channel: the 1-based rank and score, when the channel proposed it.
    pub hits: Vec<Vec<Option<(u32, f32)>>>,
}

impl Candidates {
    pub(crate) fn len(&self) -> usize {
        self.positions.len()
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

    /// The candidate union for each query (each channel answers the whole batch).
    pub(crate) fn candidates_batch(
        &self,
        index: &CatalogIndex,
        queries: &[TurnContext],
    ) -> Result<Vec<Candidates>> {
        let per_channel = self
            .channels
            .iter()
            .map(|c| c.retriever.retrieve_batch(queries, c.depth))
            .collect::<music_crs_retrieval::Result<Vec<_>>>()?;
        Ok(queries
            .iter()
            .enumerate()
            .map(|(q, query)| {
                let played: HashSet<usize> = index
                    .positions(&query.played_track_ids)
                    .into_iter()
                    .collect();
                let mut slot: HashMap<usize, usize> = HashMap::new();
                let mut out = Candidates::default();
                for (c, lists) in per_channel.iter().enumerate() {
                    for (i, hit) in lists[q].iter().take(self.channels[c].depth).enumerate() {
                        let Some(position) = index.catalog().index_of(&hit.track_id) else {
                            continue;
                        };
                        if played.contains(&position) {
                            continue;
                        }
                        let s = *slot.entry(position).or_insert_with(|| {
                            out.positions.push(position);
                            out.hits.push(vec![None; self.channels.len()]);
                            out.positions.len() - 1
                        });
                        // A channel listing a track twice keeps its best rank.
                        out.hits[s][c].get_or_insert((i as u32 + 1, hit.score));
                    }
                }
                order_by_rrf(&mut out);
                out
            })
            .collect())
    }
}

/// Unweighted RRF over the channels' ranks.
pub(crate) fn union_rrf(hits: &[Option<(u32, f32)>]) -> f32 {
    hits.iter()
        .flatten()
        .map(|&(rank, _)| 1.0 / (UNION_RRF_K + rank as f32))
        .sum()
}

fn order_by_rrf(candidates: &mut Candidates) {
    let mut order: Vec<usize> = (0..candidates.len()).collect();
    let rrf: Vec<f32> = candidates.hits.iter().map(|h| union_rrf(h)).collect();
    // Stable: equal RRF keeps first-proposed order.
    order.sort_by(|&a, &b| rrf[b].total_cmp(&rrf[a]));
    candidates.positions = order.iter().map(|&i| candidates.positions[i]).collect();
    candidates.hits = order
        .iter()
        .map(|&i| std::mem::take(&mut candidates.hits[i]))
        .collect();
}

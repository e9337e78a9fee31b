//! Named channels and the candidate union they produce for one turn.

use std::time::Instant;

use music_crs_core::TurnContext;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::channels::{Channel, ChannelHit};
use crate::fingerprint::ChannelFingerprint;
use crate::fusion::Union;
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
    pub channel: Box<dyn Channel>,
}

impl std::fmt::Debug for NamedChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NamedChannel")
            .field("name", &self.name)
            .field("depth", &self.depth)
            .finish_non_exhaustive()
    }
}

/// A channel's name, depth and configuration fingerprint, as a trained model records them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelSpec {
    /// The channel's name.
    pub name: String,
    /// Its depth.
    pub depth: usize,
    /// Its kind and configuration fingerprint, when it was built from a
    /// [`ChannelConfig`](crate::ChannelConfig) (channels built in code have none, nor do the
    /// channels of models saved before fingerprints were recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<ChannelFingerprint>,
}

impl ChannelSpec {
    /// `name@depth`, as errors show a channel.
    pub(crate) fn label(&self) -> String {
        format!("{}@{}", self.name, self.depth)
    }
}

/// The candidate sources of a ranker: each proposes up to `depth` tracks per turn.
#[derive(Debug)]
pub struct ChannelSet {
    channels: Vec<NamedChannel>,
    /// One per channel when built from configs ([`crate::build_channel_set`]), else empty.
    fingerprints: Vec<ChannelFingerprint>,
}

/// The union of the channels' proposals for one turn (keys: catalog positions), played tracks
/// left out, ordered by unweighted RRF over the channels.
pub(crate) type Candidates = Union<u32>;

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
        Ok(ChannelSet {
            channels,
            fingerprints: Vec::new(),
        })
    }

    /// The set with each channel's configuration fingerprint (one per channel, in order).
    pub(crate) fn with_fingerprints(mut self, fingerprints: Vec<ChannelFingerprint>) -> Self {
        debug_assert_eq!(fingerprints.len(), self.channels.len());
        self.fingerprints = fingerprints;
        self
    }

    /// Names, depths and (when built from configs) fingerprints, in order.
    pub fn specs(&self) -> Vec<ChannelSpec> {
        self.channels
            .iter()
            .enumerate()
            .map(|(i, c)| ChannelSpec {
                name: c.name.clone(),
                depth: c.depth,
                fingerprint: self.fingerprints.get(i).cloned(),
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
                let lists = c.channel.propose_batch(queries, c.depth);
                tracing::debug!(
                    channel = %c.name,
                    queries = queries.len(),
                    seconds = started.elapsed().as_secs_f64(),
                    "channel batch"
                );
                lists
            })
            .collect::<Result<Vec<_>>>()?;
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

    /// The union of one query's channel lists (in channel order), each cut at its channel's
    /// depth, ordered by unweighted RRF; equal RRF keeps first-proposed order.
    fn union<'a>(
        &self,
        index: &CatalogIndex,
        query: &TurnContext,
        lists: impl Iterator<Item = &'a Vec<ChannelHit>>,
    ) -> Candidates {
        // At most a handful of played tracks: a linear scan beats hashing.
        let played = index.positions(&query.played_track_ids);
        let capacity: usize = self.channels.iter().map(|c| c.depth).sum();
        let union = Union::new(
            lists.zip(&self.channels).map(|(list, channel)| {
                list.iter()
                    .filter(|hit| hit.rank as usize <= channel.depth)
                    .filter(|hit| !played.contains(&hit.position))
                    .map(|hit| (hit.position, hit.rank, hit.score))
            }),
            self.channels.len(),
            capacity,
        );
        let rrf: Vec<f32> = (0..union.len()).map(|s| union_rrf(&union, s)).collect();
        let mut order: Vec<usize> = (0..union.len()).collect();
        // Stable: equal RRF keeps first-proposed order.
        order.sort_by(|&a, &b| rrf[b].total_cmp(&rrf[a]));
        union.subset(&order)
    }
}

/// Unweighted RRF of a candidate over the channels' ranks (orders the union; also a feature).
pub(crate) fn union_rrf(candidates: &Candidates, slot: usize) -> f32 {
    candidates.rrf(slot, |_| 1.0, UNION_RRF_K)
}

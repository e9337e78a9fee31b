//! The union of ranked lists and weighted reciprocal-rank fusion over it: the one RRF of the
//! crate, behind [`Fusion`], the public [`rrf`] and the ranker's candidate union.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;

use music_crs_core::{ScoredTrack, TurnContext};
use serde::{Deserialize, Serialize};

use crate::channels::{Channel, ChannelHit};
use crate::{CatalogIndex, Error, Result};

/// The union of ranked lists: each key once, in the order it was first proposed, with every
/// list's 1-based rank and score of it. A list naming a key twice keeps its first (best) rank.
#[derive(Debug, Clone, Default)]
pub(crate) struct Union<K> {
    /// The keys (catalog positions, or ids for [`rrf`]).
    pub keys: Vec<K>,
    /// Row-major, `lists` per key: the list's rank and score of the key, when it holds it. One
    /// flat buffer instead of a vector per key.
    pub hits: Vec<Option<(u32, f32)>>,
    /// Number of lists.
    pub lists: usize,
}

impl<K: Copy + Eq + Hash> Union<K> {
    /// The union of `lists`, exactly `count` of them (`(key, rank, score)` items, ranks from 1,
    /// best first); `capacity` is a guess of the number of distinct keys.
    pub(crate) fn new<L>(lists: impl IntoIterator<Item = L>, count: usize, capacity: usize) -> Self
    where
        L: IntoIterator<Item = (K, u32, f32)>,
    {
        let mut slot: HashMap<K, usize> = HashMap::with_capacity(capacity);
        let mut out = Union {
            keys: Vec::with_capacity(capacity),
            hits: Vec::with_capacity(capacity * count),
            lists: count,
        };
        for (l, list) in lists.into_iter().enumerate() {
            for (key, rank, score) in list {
                let s = *slot.entry(key).or_insert_with(|| {
                    out.keys.push(key);
                    out.hits.extend(std::iter::repeat_n(None, count));
                    out.keys.len() - 1
                });
                out.hits[s * count + l].get_or_insert((rank, score));
            }
        }
        out
    }
}

impl<K: Copy> Union<K> {
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    /// Each list's rank and score of the key in `slot`.
    pub(crate) fn hits_of(&self, slot: usize) -> &[Option<(u32, f32)>] {
        &self.hits[slot * self.lists..(slot + 1) * self.lists]
    }

    /// The keys in `slots`, in that order.
    pub(crate) fn subset(&self, slots: &[usize]) -> Union<K> {
        Union {
            keys: slots.iter().map(|&s| self.keys[s]).collect(),
            hits: slots
                .iter()
                .flat_map(|&s| self.hits_of(s).iter().copied())
                .collect(),
            lists: self.lists,
        }
    }

    /// The reciprocal-rank fusion score of the key in `slot`: `Σ weight(l) / (rrf_k + rank_l)`
    /// over the lists `l` that hold it, summed in list order.
    pub(crate) fn rrf(&self, slot: usize, weight: impl Fn(usize) -> f32, rrf_k: f32) -> f32 {
        self.hits_of(slot)
            .iter()
            .enumerate()
            .filter_map(|(l, hit)| hit.map(|(rank, _)| weight(l) / (rrf_k + rank as f32)))
            .fold(0.0, |sum, term| sum + term)
    }

    /// The best `k` slots and their RRF scores, best first. Ties go to the key with the better
    /// single rank, then to the one an earlier list holds, then by `tie`.
    pub(crate) fn fused(
        &self,
        weights: &[f32],
        rrf_k: f32,
        k: usize,
        tie: impl Fn(K, K) -> Ordering,
    ) -> Vec<(usize, f32)> {
        // (slot, score, best rank, first list)
        let mut ranked: Vec<(usize, f32, u32, usize)> = (0..self.len())
            .map(|s| {
                let hits = self.hits_of(s);
                let best = hits.iter().flatten().map(|&(rank, _)| rank).min();
                let first = hits.iter().position(Option::is_some);
                let score = self.rrf(s, |l| weights[l], rrf_k);
                (
                    s,
                    score,
                    best.unwrap_or(u32::MAX),
                    first.unwrap_or(usize::MAX),
                )
            })
            .collect();
        ranked.sort_by(|a, b| {
            b.1.total_cmp(&a.1)
                .then(a.2.cmp(&b.2))
                .then(a.3.cmp(&b.3))
                .then_with(|| tie(self.keys[a.0], self.keys[b.0]))
        });
        ranked.truncate(k);
        ranked
            .into_iter()
            .map(|(s, score, _, _)| (s, score))
            .collect()
    }
}

/// Parameters of a [`Fusion`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FusionParams {
    /// The RRF constant `c` of `weight / (c + rank)`; larger flattens the rank curve.
    pub rrf_k: f32,
    /// How many tracks each child is asked for.
    pub depth: usize,
}

impl FusionParams {
    /// Default [`FusionParams::rrf_k`] (the value of the original RRF paper).
    pub const DEFAULT_RRF_K: f32 = 60.0;
    /// Default [`FusionParams::depth`].
    pub const DEFAULT_DEPTH: usize = 100;

    /// Checks every value.
    pub fn validate(&self) -> Result<()> {
        if !(self.rrf_k.is_finite() && self.rrf_k >= 0.0) {
            return Err(Error::param(
                "rrf_k",
                format!("{} must be finite and >= 0", self.rrf_k),
            ));
        }
        if self.depth == 0 {
            return Err(Error::param("depth", "must be at least 1"));
        }
        Ok(())
    }
}

impl Default for FusionParams {
    fn default() -> Self {
        FusionParams {
            rrf_k: Self::DEFAULT_RRF_K,
            depth: Self::DEFAULT_DEPTH,
        }
    }
}

/// One input of a [`Fusion`].
pub struct FusionChild {
    /// The child's name (unique within the fusion).
    pub name: String,
    /// Its weight (finite, >= 0).
    pub weight: f32,
    /// The channel.
    pub channel: Box<dyn Channel>,
}

impl std::fmt::Debug for FusionChild {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FusionChild")
            .field("name", &self.name)
            .field("weight", &self.weight)
            .field("channel", &self.channel.name())
            .finish()
    }
}

/// Scores each track by `Σ weight_c / (rrf_k + rank_c)` over the children that return it
/// (ranks start at 1), then ranks by that score. Ties go to the track with the better single
/// rank, then to the earlier child, then to the smaller id. A [`Channel`] itself, so fusions
/// nest and feed a ranker; a `Retriever` through
/// [`ChannelRetriever`](crate::ChannelRetriever).
#[derive(Debug)]
pub struct Fusion {
    name: String,
    index: Arc<CatalogIndex>,
    children: Vec<FusionChild>,
    weights: Vec<f32>,
    params: FusionParams,
}

impl Fusion {
    /// A fusion of `children` over the catalog of `index`; fails on invalid params, no
    /// children, a duplicate child name or a negative or non-finite weight.
    pub fn new(
        name: impl Into<String>,
        index: Arc<CatalogIndex>,
        children: Vec<FusionChild>,
        params: FusionParams,
    ) -> Result<Self> {
        params.validate()?;
        if children.is_empty() {
            return Err(Error::param(
                "children",
                "a fusion needs at least one child",
            ));
        }
        for (i, child) in children.iter().enumerate() {
            if !(child.weight.is_finite() && child.weight >= 0.0) {
                return Err(Error::param(
                    format!("weight of {}", child.name),
                    format!("{} must be finite and >= 0", child.weight),
                ));
            }
            if children[..i].iter().any(|c| c.name == child.name) {
                return Err(Error::param(
                    "children",
                    format!("the name {:?} appears more than once", child.name),
                ));
            }
        }
        Ok(Fusion {
            name: name.into(),
            index,
            weights: children.iter().map(|c| c.weight).collect(),
            children,
            params,
        })
    }

    /// The children's names, in order.
    pub fn child_names(&self) -> Vec<&str> {
        self.children.iter().map(|c| c.name.as_str()).collect()
    }

    fn fuse(&self, lists: &[&[ChannelHit]], k: usize) -> Vec<ChannelHit> {
        let capacity = lists.iter().map(|l| l.len()).sum();
        let union = Union::new(
            lists
                .iter()
                .map(|list| list.iter().map(|h| (h.position, h.rank, h.score))),
            lists.len(),
            capacity,
        );
        let id = |p: u32| self.index.track(p).track_id.as_str();
        union
            .fused(&self.weights, self.params.rrf_k, k, |a, b| id(a).cmp(id(b)))
            .into_iter()
            .enumerate()
            .map(|(i, (slot, score))| ChannelHit::new(union.keys[slot], i as u32 + 1, score))
            .collect()
    }
}

/// Weighted reciprocal-rank fusion of ranked lists of ids: `(list, weight)` pairs in child
/// order, the same arithmetic and tie-breaking as [`Fusion`] (a list naming an id twice counts
/// it once, at its first rank).
pub fn rrf<'a>(
    lists: impl IntoIterator<Item = (&'a [ScoredTrack], f32)>,
    rrf_k: f32,
    k: usize,
) -> Vec<ScoredTrack> {
    let (lists, weights): (Vec<&[ScoredTrack]>, Vec<f32>) = lists.into_iter().unzip();
    let capacity = lists.iter().map(|l| l.len()).sum();
    let union = Union::new(
        lists.iter().map(|list| {
            list.iter()
                .enumerate()
                .map(|(i, hit)| (hit.track_id.as_str(), i as u32 + 1, hit.score))
        }),
        lists.len(),
        capacity,
    );
    union
        .fused(&weights, rrf_k, k, |a, b| a.cmp(b))
        .into_iter()
        .map(|(slot, score)| ScoredTrack::new(union.keys[slot], score))
        .collect()
}

impl Channel for Fusion {
    fn name(&self) -> &str {
        &self.name
    }

    fn propose(&self, query: &TurnContext, k: usize) -> Result<Vec<ChannelHit>> {
        let depth = self.params.depth.max(k);
        let lists = self
            .children
            .iter()
            .map(|c| c.channel.propose(query, depth))
            .collect::<Result<Vec<_>>>()?;
        let lists: Vec<&[ChannelHit]> = lists.iter().map(Vec::as_slice).collect();
        Ok(self.fuse(&lists, k))
    }

    fn propose_batch(&self, queries: &[TurnContext], k: usize) -> Result<Vec<Vec<ChannelHit>>> {
        let depth = self.params.depth.max(k);
        // Each child answers the whole batch, so fast children keep their batch speed-ups.
        let per_child = self
            .children
            .iter()
            .map(|c| c.channel.propose_batch(queries, depth))
            .collect::<Result<Vec<_>>>()?;
        Ok((0..queries.len())
            .map(|q| {
                let lists: Vec<&[ChannelHit]> =
                    per_child.iter().map(|lists| lists[q].as_slice()).collect();
                self.fuse(&lists, k)
            })
            .collect())
    }
}

crate::channels::retriever_from_channel!(Fusion);

#[cfg(test)]
mod tests {
    use music_crs_retrieval::Retriever;

    use super::*;
    use crate::RetrieverChannel;
    use crate::channels::test_support::{index, track};

    struct Fixed(&'static str, Vec<&'static str>);

    impl Retriever for Fixed {
        fn name(&self) -> &str {
            self.0
        }
        fn retrieve(
            &self,
            _query: &TurnContext,
            k: usize,
        ) -> music_crs_retrieval::Result<Vec<ScoredTrack>> {
            Ok(self
                .1
                .iter()
                .take(k)
                .map(|id| ScoredTrack::new(*id, 1.0))
                .collect())
        }
    }

    fn catalog() -> Arc<CatalogIndex> {
        index(["a", "b", "c"].map(|id| track(id, "x", "y", 0.0)).to_vec())
    }

    fn child(name: &'static str, weight: f32, ids: Vec<&'static str>) -> FusionChild {
        FusionChild {
            name: name.into(),
            weight,
            channel: Box::new(RetrieverChannel::new(catalog(), Box::new(Fixed(name, ids)))),
        }
    }

    #[test]
    fn scores_are_weighted_reciprocal_ranks() {
        let fusion = Fusion::new(
            "fusion",
            catalog(),
            vec![
                child("x", 1.0, vec!["a", "b"]),
                child("y", 2.0, vec!["b", "c"]),
            ],
            FusionParams {
                rrf_k: 10.0,
                depth: 5,
            },
        )
        .unwrap();
        let hits = fusion
            .retrieve(&TurnContext::from_message("q"), 10)
            .unwrap();
        let ids: Vec<&str> = hits.iter().map(|h| h.track_id.as_str()).collect();
        assert_eq!(ids, vec!["b", "c", "a"]);
        let expect_b = 1.0 / 12.0 + 2.0 / 11.0;
        assert!((hits[0].score - expect_b).abs() < 1e-6);
        assert!((hits[1].score - 2.0 / 12.0).abs() < 1e-6);
        assert!((hits[2].score - 1.0 / 11.0).abs() < 1e-6);
        let batch = fusion
            .retrieve_batch(&[TurnContext::from_message("q")], 2)
            .unwrap();
        assert_eq!(batch[0], hits[..2].to_vec());
    }

    #[test]
    fn a_list_naming_an_id_twice_counts_it_once_at_its_first_rank() {
        let twice = [ScoredTrack::new("a", 0.0), ScoredTrack::new("a", 0.0)];
        let fused = rrf([(&twice[..], 1.0)], 10.0, 10);
        assert_eq!(fused, vec![ScoredTrack::new("a", 1.0 / 11.0)]);
    }

    #[test]
    fn ties_go_to_the_better_single_rank_then_the_earlier_child() {
        let fused = rrf(
            [
                (
                    &[ScoredTrack::new("a", 0.0), ScoredTrack::new("b", 0.0)][..],
                    1.0,
                ),
                (&[ScoredTrack::new("c", 0.0)][..], 1.0),
            ],
            60.0,
            10,
        );
        let ids: Vec<&str> = fused.iter().map(|h| h.track_id.as_str()).collect();
        assert_eq!(ids, vec!["a", "c", "b"]);
    }

    #[test]
    fn bad_configurations_are_rejected() {
        let dup = Fusion::new(
            "f",
            catalog(),
            vec![child("x", 1.0, vec![]), child("x", 1.0, vec![])],
            FusionParams::default(),
        );
        assert!(dup.unwrap_err().to_string().contains("more than once"));
        let negative = Fusion::new(
            "f",
            catalog(),
            vec![child("x", -1.0, vec![])],
            FusionParams::default(),
        );
        assert!(negative.unwrap_err().to_string().contains("weight of x"));
        assert!(Fusion::new("f", catalog(), vec![], FusionParams::default()).is_err());
        let zero_depth = FusionParams {
            depth: 0,
            ..FusionParams::default()
        };
        assert!(Fusion::new("f", catalog(), vec![child("x", 1.0, vec![])], zero_depth).is_err());
    }
}

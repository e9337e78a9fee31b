//! Weighted reciprocal-rank fusion of named child retrievers.

use std::collections::HashMap;

use music_crs_core::{ScoredTrack, TurnContext};
use music_crs_retrieval::Retriever;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

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
    /// The retriever.
    pub retriever: Box<dyn Retriever>,
}

impl std::fmt::Debug for FusionChild {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FusionChild")
            .field("name", &self.name)
            .field("weight", &self.weight)
            .field("retriever", &self.retriever.name())
            .finish()
    }
}

/// Scores each track by `Σ weight_c / (rrf_k + rank_c)` over the children that return it
/// (ranks start at 1), then ranks by that score. Ties go to the track with the better single
/// rank, then to the earlier child, then to the smaller id.
#[derive(Debug)]
pub struct Fusion {
    name: String,
    children: Vec<FusionChild>,
    params: FusionParams,
}

impl Fusion {
    /// A fusion of `children`; fails on invalid params, no children, a duplicate child name
    /// or a negative or non-finite weight.
    pub fn new(
        name: impl Into<String>,
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
            children,
            params,
        })
    }

    /// The children's names, in order.
    pub fn child_names(&self) -> Vec<&str> {
        self.children.iter().map(|c| c.name.as_str()).collect()
    }

    fn fuse(&self, lists: &[Vec<ScoredTrack>], k: usize) -> Vec<ScoredTrack> {
        rrf(
            lists
                .iter()
                .zip(&self.children)
                .map(|(list, child)| (list.as_slice(), child.weight)),
            self.params.rrf_k,
            k,
        )
    }
}

/// Weighted reciprocal-rank fusion of ranked lists: `(list, weight)` pairs in child order.
pub fn rrf<'a>(
    lists: impl IntoIterator<Item = (&'a [ScoredTrack], f32)>,
    rrf_k: f32,
    k: usize,
) -> Vec<ScoredTrack> {
    // (score, best rank, first child) per track.
    let mut fused: HashMap<&str, (f32, usize, usize)> = HashMap::new();
    for (child, (list, weight)) in lists.into_iter().enumerate() {
        for (i, hit) in list.iter().enumerate() {
            let rank = i + 1;
            let entry = fused
                .entry(hit.track_id.as_str())
                .or_insert((0.0, rank, child));
            entry.0 += weight / (rrf_k + rank as f32);
            entry.1 = entry.1.min(rank);
        }
    }
    let mut ranked: Vec<(&str, (f32, usize, usize))> = fused.into_iter().collect();
    ranked.sort_by(|a, b| {
        b.1.0
            .total_cmp(&a.1.0)
            .then(a.1.1.cmp(&b.1.1))
            .then(a.1.2.cmp(&b.1.2))
            .then(a.0.cmp(b.0))
    });
    ranked
        .into_iter()
        .take(k)
        .map(|(id, (score, _, _))| ScoredTrack::new(id, score))
        .collect()
}

impl Retriever for Fusion {
    fn name(&self) -> &str {
        &self.name
    }

    fn retrieve(
        &self,
        query: &TurnContext,
        k: usize,
    ) -> music_crs_retrieval::Result<Vec<ScoredTrack>> {
        let depth = self.params.depth.max(k);
        let lists = self
            .children
            .iter()
            .map(|c| c.retriever.retrieve(query, depth))
            .collect::<music_crs_retrieval::Result<Vec<_>>>()?;
        Ok(self.fuse(&lists, k))
    }

    fn retrieve_batch(
        &self,
        queries: &[TurnContext],
        k: usize,
    ) -> music_crs_retrieval::Result<Vec<Vec<ScoredTrack>>> {
        let depth = self.params.depth.max(k);
        // Each child answers the whole batch, so fast children keep their batch speed-ups.
        let per_child = self
            .children
            .iter()
            .map(|c| c.retriever.retrieve_batch(queries, depth))
            .collect::<music_crs_retrieval::Result<Vec<_>>>()?;
        Ok((0..queries.len())
            .map(|q| {
                let lists: Vec<Vec<ScoredTrack>> =
                    per_child.iter().map(|lists| lists[q].clone()).collect();
                self.fuse(&lists, k)
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn child(name: &'static str, weight: f32, ids: Vec<&'static str>) -> FusionChild {
        FusionChild {
            name: name.into(),
            weight,
            retriever: Box::new(Fixed(name, ids)),
        }
    }

    #[test]
    fn scores_are_weighted_reciprocal_ranks() {
        let fusion = Fusion::new(
            "fusion",
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
            vec![child("x", 1.0, vec![]), child("x", 1.0, vec![])],
            FusionParams::default(),
        );
        assert!(dup.unwrap_err().to_string().contains("more than once"));
        let negative = Fusion::new("f", vec![child("x", -1.0, vec![])], FusionParams::default());
        assert!(negative.unwrap_err().to_string().contains("weight of x"));
        assert!(Fusion::new("f", vec![], FusionParams::default()).is_err());
        let zero_depth = FusionParams {
            depth: 0,
            ..FusionParams::default()
        };
        assert!(Fusion::new("f", vec![child("x", 1.0, vec![])], zero_depth).is_err());
    }
}

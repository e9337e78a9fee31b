//! `rrf`: the ranker's weighted reciprocal-rank fusion.

use music_crs_core::ScoredTrack;
use pyo3::prelude::*;
use pyo3::types::PyString;

use crate::{Error, Result};

/// One ranked list: ids (strings), or `(id, score)` pairs whose score is ignored.
fn ranking(obj: &Bound<'_, PyAny>, place: &str) -> Result<Vec<ScoredTrack>> {
    if obj.is_instance_of::<PyString>() {
        return Err(Error::input(
            place,
            "expected a list of ids, found a string",
        ));
    }
    let items = obj
        .try_iter()
        .map_err(|_| Error::input(place, "expected a list of ids"))?;
    items
        .enumerate()
        .map(|(rank, hit)| {
            let hit = hit.map_err(|e| Error::input(place, e.to_string()))?;
            let id = if hit.is_instance_of::<PyString>() {
                hit.extract::<String>()
            } else {
                hit.get_item(0).and_then(|id| id.extract::<String>())
            }
            .map_err(|_| {
                Error::input(
                    format!("{place}[{rank}]"),
                    "expected an id string or an (id, score) pair",
                )
            })?;
            Ok(ScoredTrack::new(id, 0.0))
        })
        .collect()
}

/// Weighted reciprocal-rank fusion, as the ranker fuses its channels: each id scores the sum
/// over lists of `weight / (k + rank)` (rank from 1; an id listed twice in one list counts
/// once, at its first rank); ties go to the better best rank, then the earlier list, then the
/// smaller id. Returns `(id, score)` pairs, best first, at most
/// `top_k` (default: all).
#[pyfunction]
#[pyo3(signature = (rankings, weights = None, k = 60.0, top_k = None))]
pub fn rrf(
    rankings: &Bound<'_, PyAny>,
    weights: Option<Vec<f32>>,
    k: f32,
    top_k: Option<usize>,
) -> PyResult<Vec<(String, f32)>> {
    let lists = rankings
        .try_iter()
        .map_err(|_| Error::input("rankings", "expected a list of ranked lists"))?
        .enumerate()
        .map(|(i, list)| {
            let list = list.map_err(|e| Error::input("rankings", e.to_string()))?;
            ranking(&list, &format!("rankings[{i}]"))
        })
        .collect::<Result<Vec<_>>>()?;
    let weights = weights.unwrap_or_else(|| vec![1.0; lists.len()]);
    if weights.len() != lists.len() {
        return Err(Error::input(
            "weights",
            format!("{} weights for {} rankings", weights.len(), lists.len()),
        )
        .into());
    }
    if let Some(w) = weights.iter().find(|w| !w.is_finite()) {
        return Err(Error::input("weights", format!("{w} is not finite")).into());
    }
    if !(k.is_finite() && k >= 0.0) {
        return Err(Error::input("k", format!("{k} is not a finite non-negative number")).into());
    }
    let fused = music_crs_rank::rrf(
        lists.iter().map(Vec::as_slice).zip(weights.iter().copied()),
        k,
        top_k.unwrap_or(usize::MAX),
    );
    Ok(fused.into_iter().map(|t| (t.track_id, t.score)).collect())
}

//! Ranking metrics of one turn: one ranked prediction list against its gold ids.
//!
//! Each function looks only at the first `k` predictions. Gold and predicted ids are
//! compared as exact strings. They follow the official evaluator's definitions, and for
//! duplicate-free predictions they all stay in [0, 1].

/// The discount of 1-based rank `rank`: `1 / log2(rank + 1)`.
fn discount(rank: usize) -> f64 {
    1.0 / ((rank + 1) as f64).log2()
}

/// True when `id` is one of the gold ids (few per turn, so a scan beats hashing).
fn is_gold(gold: &[String], id: &str) -> bool {
    gold.iter().any(|g| g == id)
}

/// nDCG@k: DCG adds `1 / log2(rank + 1)` for every predicted id within the top `k` that is
/// a gold id; the ideal DCG fills `min(|gold|, k)` ranks; 0 when the ideal DCG is 0.
pub fn ndcg_at(gold: &[String], predicted: &[String], k: usize) -> f64 {
    let mut dcg = 0.0;
    for (index, id) in predicted.iter().take(k).enumerate() {
        let relevance = if is_gold(gold, id) { 1.0 } else { 0.0 };
        dcg += relevance / ((index + 2) as f64).log2();
    }
    let ideal_ranks = gold.len().min(k);
    let ideal: f64 = (1..=ideal_ranks).map(discount).sum();
    if ideal == 0.0 { 0.0 } else { dcg / ideal }
}

/// hit@k: 1 when any of the top `k` predictions is a gold id, else 0.
pub fn hit_at(gold: &[String], predicted: &[String], k: usize) -> f64 {
    if predicted.iter().take(k).any(|id| is_gold(gold, id)) {
        1.0
    } else {
        0.0
    }
}

/// MRR@k (reciprocal rank): `1 / rank` of the first gold id within the top `k`, else 0.
pub fn reciprocal_rank_at(gold: &[String], predicted: &[String], k: usize) -> f64 {
    predicted
        .iter()
        .take(k)
        .position(|id| is_gold(gold, id))
        .map_or(0.0, |index| 1.0 / (index + 1) as f64)
}

/// recall@k: the share of gold ids found within the top `k`; 0 when there is no gold id.
pub fn recall_at(gold: &[String], predicted: &[String], k: usize) -> f64 {
    if gold.is_empty() {
        return 0.0;
    }
    let found = gold
        .iter()
        .filter(|g| predicted.iter().take(k).any(|id| id == *g))
        .count();
    found as f64 / gold.len() as f64
}

/// All four metrics at every cutoff from one pass over the list: the 0-based positions
/// of gold ids among the first `max(cutoffs)` predictions are found once. Equal to the
/// functions above for lists without repeated ids (the only ones scored).
pub(crate) fn metrics_at(
    gold: &[String],
    predicted: &[String],
    cutoffs: &[usize],
) -> Vec<crate::MetricsAtK> {
    let limit = cutoffs.iter().copied().max().unwrap_or(0);
    let hits: Vec<usize> = predicted
        .iter()
        .take(limit)
        .enumerate()
        .filter(|(_, id)| is_gold(gold, id))
        .map(|(position, _)| position)
        .collect();
    cutoffs
        .iter()
        .map(|&k| {
            let within = hits.iter().take_while(|&&p| p < k);
            // Misses add 0.0 in the official loop, which leaves the sum unchanged.
            let dcg = within
                .clone()
                .fold(0.0, |sum, &p| sum + 1.0 / ((p + 2) as f64).log2());
            let ideal: f64 = (1..=gold.len().min(k)).map(discount).sum();
            let found = within.count();
            let first = hits.first().filter(|&&p| p < k);
            crate::MetricsAtK {
                k,
                ndcg: if ideal == 0.0 { 0.0 } else { dcg / ideal },
                hit: if found > 0 { 1.0 } else { 0.0 },
                mrr: first.map_or(0.0, |&p| 1.0 / (p + 1) as f64),
                recall: if gold.is_empty() {
                    0.0
                } else {
                    found as f64 / gold.len() as f64
                },
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn single_gold_at_rank_three() {
        let gold = ids(&["g"]);
        let predicted = ids(&["a", "b", "g", "c"]);
        assert_eq!(ndcg_at(&gold, &predicted, 2), 0.0);
        assert_eq!(ndcg_at(&gold, &predicted, 3), 1.0 / 4f64.log2());
        assert_eq!(ndcg_at(&gold, &predicted, 10), 0.5);
        assert_eq!(hit_at(&gold, &predicted, 2), 0.0);
        assert_eq!(hit_at(&gold, &predicted, 3), 1.0);
        assert_eq!(reciprocal_rank_at(&gold, &predicted, 20), 1.0 / 3.0);
        assert_eq!(recall_at(&gold, &predicted, 3), 1.0);
    }

    #[test]
    fn two_gold_ids_use_two_ideal_ranks() {
        let gold = ids(&["x", "y"]);
        let predicted = ids(&["x", "a", "y"]);
        let ideal = 1.0 + 1.0 / 3f64.log2();
        assert_eq!(ndcg_at(&gold, &predicted, 3), (1.0 + 0.5) / ideal);
        // At k = 1 the ideal holds one rank only.
        assert_eq!(ndcg_at(&gold, &predicted, 1), 1.0);
        assert_eq!(recall_at(&gold, &predicted, 1), 0.5);
        assert_eq!(recall_at(&gold, &predicted, 3), 1.0);
        assert_eq!(reciprocal_rank_at(&gold, &predicted, 3), 1.0);
    }

    #[test]
    fn one_pass_metrics_equal_the_definitions() {
        let gold = ids(&["g1", "g2", "g3"]);
        let lists = [
            ids(&["a", "g2", "b", "g1", "c", "d", "g3"]),
            ids(&["g3"]),
            ids(&[]),
            ids(&["a", "b", "c"]),
        ];
        for predicted in &lists {
            let cutoffs = [1, 2, 4, 6, 20];
            for m in metrics_at(&gold, predicted, &cutoffs) {
                assert_eq!(m.ndcg.to_bits(), ndcg_at(&gold, predicted, m.k).to_bits());
                assert_eq!(m.hit, hit_at(&gold, predicted, m.k));
                assert_eq!(m.mrr, reciprocal_rank_at(&gold, predicted, m.k));
                assert_eq!(m.recall, recall_at(&gold, predicted, m.k));
            }
        }
    }

    #[test]
    fn no_gold_or_no_predictions_score_zero() {
        assert_eq!(ndcg_at(&[], &ids(&["a"]), 10), 0.0);
        assert_eq!(recall_at(&[], &ids(&["a"]), 10), 0.0);
        assert_eq!(ndcg_at(&ids(&["a"]), &[], 10), 0.0);
        assert_eq!(reciprocal_rank_at(&ids(&["a"]), &[], 10), 0.0);
        assert_eq!(ndcg_at(&ids(&["a"]), &ids(&["a"]), 0), 0.0);
    }
}

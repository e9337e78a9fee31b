//! Features of one (turn, candidate) pair.

use std::collections::HashSet;
use std::sync::Arc;

use music_crs_core::{EmbeddingTable, Role, TurnContext};
use serde::{Deserialize, Serialize};

use crate::candidates::{Candidates, union_rrf};
use crate::catalog_index::tokens;
use crate::{CatalogIndex, ChannelSpec, Error, Result};

/// Which side information the features read: the embedding kinds compared with the played
/// tracks, and the user embedding kind compared with the candidate.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FeatureSpec {
    /// Track embedding kinds (hub column names, e.g. `image-siglip2`): cosine of the candidate
    /// with the last played track, the mean and the max over played tracks.
    pub similarity_kinds: Vec<String>,
    /// A kind present in both the user and the track embeddings (e.g. `cf-bpr`): cosine of
    /// the listener's and the candidate's vectors.
    pub user_kind: Option<String>,
}

/// One track embedding table aligned with the catalog.
#[derive(Debug, Clone)]
struct AlignedTable {
    table: Arc<EmbeddingTable>,
    /// Catalog position → table row, when the track has a vector.
    rows: Vec<Option<u32>>,
    /// 1 / L2 norm per table row (0 for missing or zero rows).
    inverse_norms: Vec<f32>,
}

impl AlignedTable {
    fn new(index: &CatalogIndex, table: Arc<EmbeddingTable>) -> Self {
        let rows = index
            .catalog()
            .tracks()
            .iter()
            .map(|t| {
                table
                    .index_of(&t.track_id)
                    .filter(|&r| table.row(r).is_some())
                    .map(|r| r as u32)
            })
            .collect();
        let inverse_norms = (0..table.len())
            .map(|r| table.row(r).map_or(0.0, inverse_norm))
            .collect();
        AlignedTable {
            table,
            rows,
            inverse_norms,
        }
    }

    fn vector(&self, position: usize) -> Option<(&[f32], f32)> {
        let row = self.rows[position]? as usize;
        Some((self.table.row(row)?, self.inverse_norms[row]))
    }
}

fn inverse_norm(v: &[f32]) -> f32 {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 { 1.0 / norm } else { 0.0 }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Computes the ranker's features; see [`FeatureExtractor::feature_names`] for the list.
#[derive(Debug, Clone)]
pub struct FeatureExtractor {
    index: Arc<CatalogIndex>,
    spec: FeatureSpec,
    similarity: Vec<AlignedTable>,
    user: Option<(Arc<EmbeddingTable>, AlignedTable)>,
}

/// Features that do not depend on the channels, in order.
const BASE_FEATURES: [&str; 19] = [
    "channels_present",
    "union_rrf",
    "popularity",
    "release_year",
    "year_gap_played",
    "played_count",
    "turn_number",
    "artist_played",
    "album_played",
    "artist_last",
    "album_last",
    "artist_in_message",
    "title_in_message",
    "artist_in_history",
    "tag_match_message",
    "tag_fraction_message",
    "tag_match_conversation",
    "tag_jaccard_played",
    "tag_count",
];

impl FeatureExtractor {
    /// An extractor over `index`. `track_tables` must hold every kind of
    /// `spec.similarity_kinds` and of `spec.user_kind`, `user_tables` the user kind.
    pub fn new(
        index: Arc<CatalogIndex>,
        spec: FeatureSpec,
        track_tables: &[Arc<EmbeddingTable>],
        user_tables: &[Arc<EmbeddingTable>],
    ) -> Result<Self> {
        let find = |tables: &[Arc<EmbeddingTable>], kind: &str, what: &str| {
            tables
                .iter()
                .find(|t| t.kind() == kind)
                .cloned()
                .ok_or_else(|| {
                    Error::param(
                        "features",
                        format!("no {what} embedding table of kind {kind:?} was loaded"),
                    )
                })
        };
        let similarity = spec
            .similarity_kinds
            .iter()
            .map(|kind| {
                Ok(AlignedTable::new(
                    &index,
                    find(track_tables, kind, "track")?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        let user = match &spec.user_kind {
            Some(kind) => {
                let users = find(user_tables, kind, "user")?;
                let tracks = find(track_tables, kind, "track")?;
                if users.dim() != tracks.dim() {
                    return Err(Error::param(
                        "user_kind",
                        format!(
                            "{kind}: user vectors have {} dimensions, track vectors {}",
                            users.dim(),
                            tracks.dim()
                        ),
                    ));
                }
                Some((users, AlignedTable::new(&index, tracks)))
            }
            None => None,
        };
        Ok(FeatureExtractor {
            index,
            spec,
            similarity,
            user,
        })
    }

    /// An extractor that reads no embeddings.
    pub fn without_embeddings(index: Arc<CatalogIndex>) -> Self {
        FeatureExtractor {
            index,
            spec: FeatureSpec::default(),
            similarity: Vec::new(),
            user: None,
        }
    }

    /// What the extractor reads.
    pub fn spec(&self) -> &FeatureSpec {
        &self.spec
    }

    /// The catalog index.
    pub fn index(&self) -> &Arc<CatalogIndex> {
        &self.index
    }

    /// The feature names for these channels: per channel `rank:`, `score:` and `present:`
    /// (rank is depth + 1 and score missing when the channel did not propose the track), then
    /// the channel-free features, then `sim_last:`, `sim_mean:`, `sim_max:` per similarity
    /// kind and `user_sim:` for the user kind.
    pub fn feature_names(&self, channels: &[ChannelSpec]) -> Vec<String> {
        let mut names = Vec::new();
        for c in channels {
            names.push(format!("rank:{}", c.name));
            names.push(format!("score:{}", c.name));
            names.push(format!("present:{}", c.name));
        }
        names.extend(BASE_FEATURES.iter().map(|s| s.to_string()));
        for kind in &self.spec.similarity_kinds {
            names.push(format!("sim_last:{kind}"));
            names.push(format!("sim_mean:{kind}"));
            names.push(format!("sim_max:{kind}"));
        }
        if let Some(kind) = &self.spec.user_kind {
            names.push(format!("user_sim:{kind}"));
        }
        names
    }

    /// Number of features for `channels` channels (the length of
    /// [`FeatureExtractor::feature_names`]).
    pub fn width(&self, channels: usize) -> usize {
        3 * channels
            + BASE_FEATURES.len()
            + 3 * self.similarity.len()
            + usize::from(self.user.is_some())
    }

    /// Row-major features of every candidate (`candidates.len() × feature_names().len()`).
    pub(crate) fn extract(
        &self,
        query: &TurnContext,
        channels: &[ChannelSpec],
        candidates: &Candidates,
    ) -> Vec<f32> {
        let context = QueryContext::new(&self.index, query);
        let width = self.width(channels.len());
        let mut out = Vec::with_capacity(candidates.len() * width);
        for (slot, &position) in candidates.positions.iter().enumerate() {
            let start = out.len();
            let hits = &candidates.hits[slot];
            for (c, spec) in channels.iter().enumerate() {
                match hits[c] {
                    Some((rank, score)) => out.extend([rank as f32, score, 1.0]),
                    None => out.extend([(spec.depth + 1) as f32, f32::NAN, 0.0]),
                }
            }
            out.push(hits.iter().flatten().count() as f32);
            out.push(union_rrf(hits));
            self.base_features(&context, position, &mut out);
            for table in &self.similarity {
                out.extend(similarities(table, &context.played, position));
            }
            if let Some((users, tracks)) = &self.user {
                out.push(user_similarity(users, tracks, &query.user_id, position));
            }
            debug_assert_eq!(out.len() - start, width);
        }
        out
    }

    fn base_features(&self, context: &QueryContext, position: usize, out: &mut Vec<f32>) {
        let info = self.index.info(position);
        let year = info.year.map_or(f32::NAN, |y| y as f32);
        let shares = |a: &[String], b: &[String]| a.iter().any(|k| b.contains(k));
        let played_infos: Vec<_> = context.played.iter().map(|&p| self.index.info(p)).collect();
        let artist_played = played_infos
            .iter()
            .filter(|p| shares(&p.artists, &info.artists))
            .count();
        let album_played = played_infos
            .iter()
            .filter(|p| shares(&p.albums, &info.albums))
            .count();
        let last = played_infos.last();
        let tag_matches = |words: &HashSet<String>| {
            info.tags
                .iter()
                .filter(|tag| tag.iter().all(|w| words.contains(w)))
                .count() as f32
        };
        let message_matches = tag_matches(&context.message_words);
        let union = info.tag_tokens.union(&context.played_tags).count();
        let jaccard = if union == 0 {
            f32::NAN
        } else {
            info.tag_tokens.intersection(&context.played_tags).count() as f32 / union as f32
        };
        out.extend([
            info.popularity,
            year,
            (year - context.played_mean_year).abs(),
            context.played.len() as f32,
            context.turn_number as f32,
            artist_played as f32,
            album_played as f32,
            last.map_or(0.0, |p| shares(&p.artists, &info.artists) as u8 as f32),
            last.map_or(0.0, |p| shares(&p.albums, &info.albums) as u8 as f32),
            named_in(&info.artist_names, &context.message) as u8 as f32,
            named_in(&info.titles, &context.message) as u8 as f32,
            named_in(&info.artist_names, &context.history) as u8 as f32,
            message_matches,
            if info.tags.is_empty() {
                f32::NAN
            } else {
                message_matches / info.tags.len() as f32
            },
            tag_matches(&context.conversation_words),
            jaccard,
            info.tags.len() as f32,
        ]);
    }
}

/// What every candidate of one turn is compared with.
struct QueryContext {
    turn_number: u32,
    played: Vec<usize>,
    played_mean_year: f32,
    played_tags: HashSet<String>,
    /// The current user message, lowercased.
    message: String,
    /// Earlier user messages, lowercased.
    history: String,
    message_words: HashSet<String>,
    /// Words of every user message and the listener's goal.
    conversation_words: HashSet<String>,
}

impl QueryContext {
    fn new(index: &CatalogIndex, query: &TurnContext) -> Self {
        let played = index.positions(&query.played_track_ids);
        let years: Vec<f32> = played
            .iter()
            .filter_map(|&p| index.info(p).year)
            .map(|y| y as f32)
            .collect();
        let played_mean_year = if years.is_empty() {
            f32::NAN
        } else {
            years.iter().sum::<f32>() / years.len() as f32
        };
        let played_tags = played
            .iter()
            .flat_map(|&p| index.info(p).tag_tokens.iter().cloned())
            .collect();
        let message = query.user_message.to_lowercase();
        let history = query
            .history
            .iter()
            .filter(|m| m.role == Role::User)
            .map(|m| m.content.to_lowercase())
            .collect::<Vec<_>>()
            .join("\n");
        let message_words: HashSet<String> = tokens(&message).into_iter().collect();
        let mut conversation_words = message_words.clone();
        conversation_words.extend(tokens(&history));
        if let Some(goal) = query
            .conversation_goal
            .as_ref()
            .and_then(|g| g.listener_goal.as_deref())
        {
            conversation_words.extend(tokens(goal));
        }
        QueryContext {
            turn_number: query.turn_number,
            played,
            played_mean_year,
            played_tags,
            message,
            history,
            message_words,
            conversation_words,
        }
    }
}

/// True when one of `names` (lowercased) appears in `text` as whole words.
fn named_in(names: &[String], text: &str) -> bool {
    names.iter().any(|name| {
        text.match_indices(name.as_str()).any(|(at, _)| {
            let before = text[..at].chars().next_back();
            let after = text[at + name.len()..].chars().next();
            !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
        })
    })
}

/// Cosine with the last played track, mean and max over played tracks (missing when the
/// candidate or every played track lacks a vector).
fn similarities(table: &AlignedTable, played: &[usize], position: usize) -> [f32; 3] {
    let Some((candidate, candidate_norm)) = table.vector(position) else {
        return [f32::NAN; 3];
    };
    let mut last = f32::NAN;
    let (mut sum, mut max, mut count) = (0.0f32, f32::NEG_INFINITY, 0usize);
    for &p in played {
        if let Some((v, norm)) = table.vector(p) {
            let cosine = dot(candidate, v) * candidate_norm * norm;
            last = cosine;
            sum += cosine;
            max = max.max(cosine);
            count += 1;
        } else {
            last = f32::NAN;
        }
    }
    if count == 0 {
        return [f32::NAN; 3];
    }
    [last, sum / count as f32, max]
}

fn user_similarity(
    users: &EmbeddingTable,
    tracks: &AlignedTable,
    user_id: &str,
    position: usize,
) -> f32 {
    let (Some(user), Some((track, track_norm))) = (users.get(user_id), tracks.vector(position))
    else {
        return f32::NAN;
    };
    dot(user, track) * inverse_norm(user) * track_norm
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::test_support::{index, track};

    #[test]
    fn whole_word_names_only() {
        let names = vec!["air".to_string()];
        assert!(named_in(&names, "play some air please"));
        assert!(named_in(&names, "air"));
        assert!(!named_in(&names, "something fair"));
    }

    #[test]
    fn features_describe_the_candidate() {
        let mut a = track("a", "A", "A1", 10.0);
        a.tag_list = vec!["jazz".into(), "smooth jazz".into()];
        a.release_date = Some("1990-01-01".into());
        let mut b = track("b", "A", "A2", 20.0);
        b.tag_list = vec!["jazz".into(), "rock".into()];
        b.release_date = Some("2000-01-01".into());
        let index = index(vec![a, b]);
        let table = Arc::new(
            EmbeddingTable::new(
                "image-siglip2",
                2,
                vec![
                    ("a".to_string(), Some(vec![1.0, 0.0])),
                    ("b".to_string(), Some(vec![1.0, 1.0])),
                ],
            )
            .unwrap(),
        );
        let spec = FeatureSpec {
            similarity_kinds: vec!["image-siglip2".into()],
            user_kind: None,
        };
        let extractor = FeatureExtractor::new(index, spec, &[table], &[]).unwrap();
        let channels = vec![ChannelSpec {
            name: "x".into(),
            depth: 10,
        }];
        let names = extractor.feature_names(&channels);
        let mut query = TurnContext::from_message("some smooth jazz by artist a");
        query.turn_number = 2;
        query.played_track_ids = vec!["a".into()];
        let candidates = Candidates {
            positions: vec![1],
            hits: vec![vec![Some((3, 0.5))]],
        };
        let row = extractor.extract(&query, &channels, &candidates);
        assert_eq!(row.len(), names.len());
        assert_eq!(extractor.width(1), names.len());
        let get = |name: &str| row[names.iter().position(|n| n == name).unwrap()];
        assert_eq!(get("rank:x"), 3.0);
        assert_eq!(get("present:x"), 1.0);
        assert_eq!(get("artist_played"), 1.0);
        assert_eq!(get("album_played"), 0.0);
        assert_eq!(get("artist_in_message"), 1.0);
        assert_eq!(get("tag_match_message"), 1.0); // "jazz" yes, "rock" no
        assert_eq!(get("year_gap_played"), 10.0);
        assert_eq!(get("turn_number"), 2.0);
        assert!((get("sim_last:image-siglip2") - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
        // Candidates the channel missed get rank depth + 1 and a missing score.
        let missed = Candidates {
            positions: vec![1],
            hits: vec![vec![None]],
        };
        let row = extractor.extract(&query, &channels, &missed);
        assert_eq!(row[0], 11.0);
        assert!(row[1].is_nan());
    }

    #[test]
    fn unknown_embedding_kind_is_an_error() {
        let index = index(vec![track("a", "A", "A1", 1.0)]);
        let spec = FeatureSpec {
            similarity_kinds: vec!["cf-bpr".into()],
            user_kind: None,
        };
        let err = FeatureExtractor::new(index, spec, &[], &[]).unwrap_err();
        assert!(err.to_string().contains("cf-bpr"), "{err}");
    }
}

//! Features of one (turn, candidate) pair.

use std::collections::HashSet;
use std::sync::Arc;

use music_crs_core::{EmbeddingTable, Role, TurnContext};
use music_crs_retrieval::dense::dot;
use serde::{Deserialize, Serialize};

use crate::candidates::{Candidates, union_rrf};
use crate::catalog_index::{TrackInfo, tokens};
use crate::fingerprint::fingerprint;
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

    fn vector(&self, position: u32) -> Option<(&[f32], f32)> {
        let row = self.rows[position as usize]? as usize;
        Some((self.table.row(row)?, self.inverse_norms[row]))
    }
}

fn inverse_norm(v: &[f32]) -> f32 {
    let norm = dot(v, v).sqrt();
    if norm > 0.0 { 1.0 / norm } else { 0.0 }
}

/// Computes the ranker's features; see [`FeatureExtractor::feature_names`] for the list.
#[derive(Debug, Clone)]
pub struct FeatureExtractor {
    index: Arc<CatalogIndex>,
    spec: FeatureSpec,
    similarity: Vec<AlignedTable>,
    user: Option<(Arc<EmbeddingTable>, AlignedTable)>,
}

/// Revision of how the features are computed. Bump it when a feature's computation changes
/// under the same name: it is part of [`FeatureExtractor::fingerprint`], so models trained
/// before are refused instead of being fed features they never saw.
pub const FEATURES_REVISION: u32 = 1;

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

    /// The fingerprint of the feature set a model records: [`FEATURES_REVISION`], the
    /// [`FeatureSpec`] and the names of the channel-free features (the per-channel ones
    /// follow the channels, which a model checks on their own).
    pub fn fingerprint(&self) -> String {
        fingerprint(&serde_json::json!({
            "revision": FEATURES_REVISION,
            "spec": self.spec,
            "names": self.feature_names(&[]),
        }))
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
        let context = QueryContext::new(self, query);
        let width = self.width(channels.len());
        let mut out = Vec::with_capacity(candidates.len() * width);
        for (slot, &position) in candidates.keys.iter().enumerate() {
            let start = out.len();
            let hits = candidates.hits_of(slot);
            for (c, spec) in channels.iter().enumerate() {
                match hits[c] {
                    Some((rank, score)) => out.extend([rank as f32, score, 1.0]),
                    None => out.extend([(spec.depth + 1) as f32, f32::NAN, 0.0]),
                }
            }
            out.push(hits.iter().flatten().count() as f32);
            out.push(union_rrf(candidates, slot));
            self.base_features(&context, position, &mut out);
            for (table, played) in self.similarity.iter().zip(&context.played_vectors) {
                out.extend(similarities(table, played, position));
            }
            if let Some((_, tracks)) = &self.user {
                out.push(user_similarity(context.user, tracks, position));
            }
            debug_assert_eq!(out.len() - start, width);
        }
        out
    }

    fn base_features(&self, context: &QueryContext<'_>, position: u32, out: &mut Vec<f32>) {
        let info = self.index.info(position);
        let year = info.year.map_or(f32::NAN, |y| y as f32);
        // Interned ids: a few integer comparisons per played track.
        let shares = |a: &[u32], b: &[u32]| a.iter().any(|k| b.contains(k));
        let played_infos = &context.played_infos;
        let artist_played = played_infos
            .iter()
            .filter(|p| shares(&p.artists, &info.artists))
            .count();
        let album_played = played_infos
            .iter()
            .filter(|p| shares(&p.albums, &info.albums))
            .count();
        let last = played_infos.last();
        let tag_matches = |words: &[u32]| {
            info.tags
                .iter()
                .filter(|tag| tag.iter().all(|w| words.binary_search(w).is_ok()))
                .count() as f32
        };
        let message_matches = tag_matches(&context.message_words);
        let common = sorted_intersection_len(&info.tag_tokens, &context.played_tags);
        let union = info.tag_tokens.len() + context.played_tags.len() - common;
        let jaccard = if union == 0 {
            f32::NAN
        } else {
            common as f32 / union as f32
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
            context.message.names_any(&info.artist_names) as u8 as f32,
            context.message.names_any(&info.titles) as u8 as f32,
            context.history.names_any(&info.artist_names) as u8 as f32,
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

/// Size of the intersection of two sorted, deduplicated lists.
fn sorted_intersection_len(a: &[u32], b: &[u32]) -> usize {
    let (mut i, mut j, mut common) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                common += 1;
                i += 1;
                j += 1;
            }
        }
    }
    common
}

/// A track's vector and the inverse of its norm.
type UnitVector<'a> = (&'a [f32], f32);

/// What every candidate of one turn is compared with, computed once per turn.
struct QueryContext<'a> {
    turn_number: u32,
    played: Vec<u32>,
    played_infos: Vec<&'a TrackInfo>,
    played_mean_year: f32,
    /// Tag token ids of the played tracks, sorted and deduplicated.
    played_tags: Vec<u32>,
    /// The current user message, lowercased.
    message: SearchText,
    /// Earlier user messages, lowercased.
    history: SearchText,
    /// Token ids of the message's words that occur in some tag, sorted.
    message_words: Vec<u32>,
    /// Likewise for every user message and the listener's goal.
    conversation_words: Vec<u32>,
    /// Per similarity table, each played track's vector and inverse norm (oldest first).
    played_vectors: Vec<Vec<Option<UnitVector<'a>>>>,
    /// The listener's vector and its inverse norm, when the user kind is read and known.
    user: Option<UnitVector<'a>>,
}

impl<'a> QueryContext<'a> {
    fn new(extractor: &'a FeatureExtractor, query: &'a TurnContext) -> Self {
        let index: &CatalogIndex = &extractor.index;
        let played = index.positions(&query.played_track_ids);
        let played_infos: Vec<&TrackInfo> = played.iter().map(|&p| index.info(p)).collect();
        let years: Vec<f32> = played_infos
            .iter()
            .filter_map(|info| info.year)
            .map(|y| y as f32)
            .collect();
        let played_mean_year = if years.is_empty() {
            f32::NAN
        } else {
            years.iter().sum::<f32>() / years.len() as f32
        };
        let mut played_tags: Vec<u32> = played_infos
            .iter()
            .flat_map(|info| info.tag_tokens.iter().copied())
            .collect();
        played_tags.sort_unstable();
        played_tags.dedup();
        let message = query.user_message.to_lowercase();
        let history = query
            .history
            .iter()
            .filter(|m| m.role == Role::User)
            .map(|m| m.content.to_lowercase())
            .collect::<Vec<_>>()
            .join("\n");
        // Words no tag holds can match no tag: only interned tokens are kept.
        let word_ids = |text: &str| -> Vec<u32> {
            tokens(text)
                .iter()
                .filter_map(|w| index.token_id(w))
                .collect()
        };
        let mut message_words = word_ids(&message);
        let mut conversation_words = message_words.clone();
        conversation_words.extend(word_ids(&history));
        if let Some(goal) = query
            .conversation_goal
            .as_ref()
            .and_then(|g| g.listener_goal.as_deref())
        {
            conversation_words.extend(word_ids(goal));
        }
        for words in [&mut message_words, &mut conversation_words] {
            words.sort_unstable();
            words.dedup();
        }
        let played_vectors = extractor
            .similarity
            .iter()
            .map(|table| played.iter().map(|&p| table.vector(p)).collect())
            .collect();
        let user = extractor.user.as_ref().and_then(|(users, _)| {
            let user = users.get(&query.user_id)?;
            Some((user, inverse_norm(user)))
        });
        QueryContext {
            turn_number: query.turn_number,
            played,
            played_infos,
            played_mean_year,
            played_tags,
            message: SearchText::new(message),
            history: SearchText::new(history),
            message_words,
            conversation_words,
            played_vectors,
            user,
        }
    }
}

/// A lowercased text searched for whole-word names, with the set of its alphanumeric runs:
/// a name that starts with an alphanumeric run can only appear as whole words where that run
/// is one of the text's runs, so most names are ruled out by one hash lookup.
struct SearchText {
    text: String,
    runs: HashSet<String>,
}

impl SearchText {
    fn new(text: String) -> Self {
        let runs = text
            .split(|c: char| !c.is_alphanumeric())
            .filter(|run| !run.is_empty())
            .map(str::to_string)
            .collect();
        SearchText { text, runs }
    }

    /// True when one of `names` (lowercased) appears in the text as whole words.
    fn names_any(&self, names: &[String]) -> bool {
        names.iter().any(|name| {
            let first_run = name.split(|c: char| !c.is_alphanumeric()).next();
            match first_run {
                Some(run) if !run.is_empty() && !self.runs.contains(run) => false,
                _ => named_in(std::slice::from_ref(name), &self.text),
            }
        })
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
/// candidate or every played track lacks a vector). `played` holds the played tracks'
/// vectors of `table`, oldest first.
fn similarities(table: &AlignedTable, played: &[Option<(&[f32], f32)>], position: u32) -> [f32; 3] {
    let Some((candidate, candidate_norm)) = table.vector(position) else {
        return [f32::NAN; 3];
    };
    let mut last = f32::NAN;
    let (mut sum, mut max, mut count) = (0.0f32, f32::NEG_INFINITY, 0usize);
    for vector in played {
        if let Some((v, norm)) = vector {
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

fn user_similarity(user: Option<(&[f32], f32)>, tracks: &AlignedTable, position: u32) -> f32 {
    let (Some((user, user_norm)), Some((track, track_norm))) = (user, tracks.vector(position))
    else {
        return f32::NAN;
    };
    dot(user, track) * user_norm * track_norm
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
        // The run prefilter gives the same answers as the plain search.
        let names = |list: &[&str]| list.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        for text in [
            "play some air please",
            "something fair",
            "ac/dc and air",
            "!!! live",
            "",
        ] {
            let search = SearchText::new(text.to_string());
            for list in [
                names(&["air"]),
                names(&["ac/dc"]),
                names(&["!!!"]),
                names(&["some air"]),
                names(&["fair", "x"]),
                names(&["dc and"]),
            ] {
                assert_eq!(
                    search.names_any(&list),
                    named_in(&list, text),
                    "{list:?} in {text:?}"
                );
            }
        }
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
            fingerprint: None,
        }];
        let names = extractor.feature_names(&channels);
        let mut query = TurnContext::from_message("some smooth jazz by artist a");
        query.turn_number = 2;
        query.played_track_ids = vec!["a".into()];
        let candidates = Candidates {
            keys: vec![1],
            hits: vec![Some((3, 0.5))],
            lists: 1,
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
            keys: vec![1],
            hits: vec![None],
            lists: 1,
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

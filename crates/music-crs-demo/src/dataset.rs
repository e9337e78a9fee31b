//! The generator: [`DemoDataset`], its parameters and the statistics it reports.

mod catalog;
mod embeddings;
mod random;
mod sessions;
mod vocab;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use music_crs_core::{Catalog, EmbeddingTable, Role, Session, Track, UserProfile};
use music_crs_data::{
    DATA_DIR, PART_DIRS, TRACK_EMBEDDING_ID_COLUMN, TRACK_EMBEDDING_KINDS, USER_EMBEDDING_ID_COLUMN,
};
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::writer::{
    write_blind_sessions, write_embeddings, write_sessions, write_tracks, write_users,
};
use crate::{Error, Result};

use self::embeddings::{EmbeddingSpec, build_embeddings};
use self::random::DemoRng;
use self::sessions::{WalkRates, cut_to_blind, generate_session, generate_users, pick_user};

/// Seed of the committed demo dataset (`data/demo/`).
pub const DEFAULT_SEED: u64 = 2026;
/// Catalog size of the default demo.
pub const DEFAULT_NUM_TRACKS: usize = 3_000;
/// Number of listeners of the default demo.
pub const DEFAULT_NUM_USERS: usize = 300;
/// Train sessions of the default demo.
pub const DEFAULT_NUM_TRAIN_SESSIONS: usize = 1_200;
/// Test sessions (complete, with gold tracks) of the default demo.
pub const DEFAULT_NUM_TEST_SESSIONS: usize = 200;
/// Blind sessions (cut before the turn to predict) of the default demo.
pub const DEFAULT_NUM_BLIND_SESSIONS: usize = 100;
/// Turns per conversation, as in TalkPlayData-Challenge.
pub const DEFAULT_TURNS_PER_SESSION: usize = 8;
/// Dimensions of the content embedding kinds (audio, image, attributes, lyrics, metadata).
pub const DEFAULT_CONTENT_EMBEDDING_DIM: usize = 32;
/// Dimensions of the `cf-bpr` track and user embeddings.
pub const DEFAULT_CF_EMBEDDING_DIM: usize = 16;
/// Share of users that have no train session (the test split's cold users).
pub const DEFAULT_COLD_USER_SHARE: f64 = 0.2;
/// Probability that the listening walk asks for the same album next.
pub const DEFAULT_SAME_ALBUM_RATE: f64 = 0.35;
/// Probability that the walk stays with the same artist (same album included).
pub const DEFAULT_SAME_ARTIST_RATE: f64 = 0.45;
/// Share of content-embedding rows left empty at random (the hub has such rows too).
pub const DEFAULT_MISSING_EMBEDDING_RATE: f64 = 0.01;

/// The dimension of every Track-Embeddings kind on the hub (`cf-bpr` is also the
/// User-Embeddings dimension), used when [`DemoParams::challenge_dims`] is set.
pub const CHALLENGE_EMBEDDING_DIMS: [(&str, usize); 6] = [
    ("audio-laion_clap", 512),
    ("image-siglip2", 768),
    ("cf-bpr", 128),
    ("attributes-qwen3_embedding_0.6b", 1024),
    ("lyrics-qwen3_embedding_0.6b", 1024),
    ("metadata-qwen3_embedding_0.6b", 1024),
];

/// The file under a demo root holding [`DemoDataset::blind_answers`] as JSON rows
/// `{session_id, user_id, turn_number, ground_truth_track_id}` (the official evaluator's format).
pub const BLIND_GROUND_TRUTH_FILE: &str = "blind_ground_truth.json";

/// What to generate. Every size is a parameter so benches can ask for large catalogs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DemoParams {
    /// Seed of the ChaCha generator: the same seed gives the same dataset.
    pub seed: u64,
    /// Catalog size.
    pub num_tracks: usize,
    /// Number of listeners.
    pub num_users: usize,
    /// Sessions in the `train` split.
    pub num_train_sessions: usize,
    /// Sessions in the `test` split.
    pub num_test_sessions: usize,
    /// Sessions in the `blind` split.
    pub num_blind_sessions: usize,
    /// Turns per conversation.
    pub turns_per_session: usize,
    /// Dimensions of the five content embedding kinds.
    pub content_embedding_dim: usize,
    /// Dimensions of the `cf-bpr` embeddings.
    pub cf_embedding_dim: usize,
    /// Every embedding kind at its hub dimension ([`CHALLENGE_EMBEDDING_DIMS`]); the two
    /// dimensions above are then unused. Off by default: the shipped demo stays small.
    pub challenge_dims: bool,
    /// Share of users without train sessions.
    pub cold_user_share: f64,
    /// Probability that the next track comes from the same album.
    pub same_album_rate: f64,
    /// Probability that the next track comes from the same artist (including same album).
    pub same_artist_rate: f64,
    /// Share of content-embedding rows left empty.
    pub missing_embedding_rate: f64,
}

impl Default for DemoParams {
    fn default() -> Self {
        DemoParams {
            seed: DEFAULT_SEED,
            num_tracks: DEFAULT_NUM_TRACKS,
            num_users: DEFAULT_NUM_USERS,
            num_train_sessions: DEFAULT_NUM_TRAIN_SESSIONS,
            num_test_sessions: DEFAULT_NUM_TEST_SESSIONS,
            num_blind_sessions: DEFAULT_NUM_BLIND_SESSIONS,
            turns_per_session: DEFAULT_TURNS_PER_SESSION,
            content_embedding_dim: DEFAULT_CONTENT_EMBEDDING_DIM,
            cf_embedding_dim: DEFAULT_CF_EMBEDDING_DIM,
            challenge_dims: false,
            cold_user_share: DEFAULT_COLD_USER_SHARE,
            same_album_rate: DEFAULT_SAME_ALBUM_RATE,
            same_artist_rate: DEFAULT_SAME_ARTIST_RATE,
            missing_embedding_rate: DEFAULT_MISSING_EMBEDDING_RATE,
        }
    }
}

impl DemoParams {
    /// A synthetic dataset of the challenge's size: the catalog (47,071 tracks), the `train`
    /// split (15,199 sessions), a dev-sized `test` split (1,000 sessions = 8,000 turns) and
    /// every embedding kind at its hub dimension; for timing and memory at the real scale.
    /// The listener count is not part of what the fixtures tell, so it stays at 3,000.
    pub fn challenge_size() -> Self {
        DemoParams {
            num_tracks: 47_071,
            num_users: 3_000,
            num_train_sessions: 15_199,
            num_test_sessions: 1_000,
            num_blind_sessions: 80,
            challenge_dims: true,
            ..DemoParams::default()
        }
    }

    /// Checks every field; the error names the first one at fault.
    pub fn validate(&self) -> Result<()> {
        let invalid = |field: &str, reason: String| {
            Err(Error::InvalidParam {
                field: format!("demo {field}"),
                reason,
            })
        };
        if self.num_tracks < self.turns_per_session.max(1) {
            return invalid(
                "num_tracks",
                format!(
                    "{} tracks cannot fill sessions of {} distinct tracks",
                    self.num_tracks, self.turns_per_session
                ),
            );
        }
        if self.num_users == 0 {
            return invalid("num_users", "must be at least 1".into());
        }
        if !(1..=64).contains(&self.turns_per_session) {
            return invalid(
                "turns_per_session",
                format!("{} is outside 1..=64", self.turns_per_session),
            );
        }
        for (field, dim) in [
            ("content_embedding_dim", self.content_embedding_dim),
            ("cf_embedding_dim", self.cf_embedding_dim),
        ] {
            if !(1..=4096).contains(&dim) {
                return invalid(field, format!("{dim} is outside 1..=4096"));
            }
        }
        for (field, value) in [
            ("cold_user_share", self.cold_user_share),
            ("same_album_rate", self.same_album_rate),
            ("same_artist_rate", self.same_artist_rate),
            ("missing_embedding_rate", self.missing_embedding_rate),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return invalid(field, format!("{value} is outside [0, 1]"));
            }
        }
        if self.same_album_rate > self.same_artist_rate {
            return invalid(
                "same_album_rate",
                format!(
                    "{} exceeds same_artist_rate {} (a same-album step is a same-artist step)",
                    self.same_album_rate, self.same_artist_rate
                ),
            );
        }
        if self.cold_user_share >= 1.0 && self.num_train_sessions > 0 {
            return invalid(
                "cold_user_share",
                "train sessions need at least one warm user".into(),
            );
        }
        Ok(())
    }
}

/// The answer to one blind session: the track the conversation went on to recommend, in the
/// row format of the official evaluator's ground truth.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlindAnswer {
    /// The blind session.
    pub session_id: String,
    /// Its listener.
    pub user_id: String,
    /// The turn to predict (the blind row's last user message).
    pub turn_number: u32,
    /// The gold track id.
    #[serde(rename = "ground_truth_track_id")]
    pub track_id: String,
}

/// A generated demo dataset: the same tables as the hub datasets, plus the blind answers.
#[derive(Debug, Clone)]
pub struct DemoDataset {
    /// The parameters it was generated with.
    pub params: DemoParams,
    /// The catalog (`all_tracks`).
    pub tracks: Vec<Track>,
    /// Every listener (`all_users`); `user_split` is `train` for warm users, `test_cold`
    /// for users without train sessions.
    pub users: Vec<UserProfile>,
    /// Complete training conversations.
    pub train: Vec<Session>,
    /// Complete test conversations (the dev split, gold tracks included).
    pub test: Vec<Session>,
    /// Blind conversations, each ending with the user message of the turn to predict.
    pub blind: Vec<Session>,
    /// The gold track of every blind session, in `blind` order.
    pub blind_answers: Vec<BlindAnswer>,
    /// Track embeddings, one table per kind in [`TRACK_EMBEDDING_KINDS`] order.
    pub track_embeddings: Vec<EmbeddingTable>,
    /// User embeddings (`cf-bpr`).
    pub user_embeddings: Vec<EmbeddingTable>,
}

/// Generates a demo dataset; shorthand for [`DemoDataset::generate`].
pub fn generate_demo(params: &DemoParams) -> Result<DemoDataset> {
    DemoDataset::generate(params)
}

/// The single-shard file of a part's split under a local root, as on the hub:
/// `root/<part>/data/<split>-00000-of-00001.parquet` (parts are [`PART_DIRS`]).
pub fn split_file(root: impl AsRef<Path>, part: &str, split: &str) -> PathBuf {
    root.as_ref()
        .join(part)
        .join(DATA_DIR)
        .join(format!("{split}-00000-of-00001.parquet"))
}

impl DemoDataset {
    /// Generates the dataset `params` describe (validated first). Deterministic in
    /// `params`: the same parameters always give the same data.
    pub fn generate(params: &DemoParams) -> Result<Self> {
        params.validate()?;
        let mut rng = DemoRng::seed_from_u64(params.seed);
        let model = catalog::generate_catalog(&mut rng, params.num_tracks);
        let users = generate_users(&mut rng, &model, params.num_users, params.cold_user_share);
        let rates = WalkRates {
            same_album: params.same_album_rate,
            same_artist: params.same_artist_rate,
        };
        let turns = params.turns_per_session;

        let mut make_split = |count: usize, label: &str| {
            (0..count)
                .map(|_| {
                    let user = pick_user(&mut rng, &users, label != "train");
                    generate_session(&mut rng, &model, &users, user, turns, rates, label)
                })
                .collect::<Vec<_>>()
        };
        let train = make_split(params.num_train_sessions, "train");
        let mut test = make_split(params.num_test_sessions, "test");
        let mut blind = make_split(params.num_blind_sessions, "blind");
        // A user's split follows what they actually did: a warm user the draw never gave a
        // train session is cold.
        let mut has_train = vec![false; users.len()];
        train.iter().for_each(|g| has_train[g.user] = true);
        for generated in test.iter_mut().chain(&mut blind) {
            if let Some(profile) = generated.session.user_profile.as_mut() {
                let label = if has_train[generated.user] {
                    "test_warm"
                } else {
                    "test_cold"
                };
                profile.user_split = Some(label.to_string());
            }
        }
        let mut blind_answers = Vec::with_capacity(blind.len());
        for generated in &mut blind {
            let turn = rng.random_range(1..=generated.tracks.len()) as u32;
            let gold = cut_to_blind(generated, turn);
            blind_answers.push(BlindAnswer {
                session_id: generated.session.session_id.clone(),
                user_id: generated.session.user_id.clone(),
                turn_number: turn,
                track_id: model.tracks[gold].track_id.clone(),
            });
        }

        let train_tracks: Vec<Vec<usize>> = train.iter().map(|g| g.tracks.clone()).collect();
        let train_users: Vec<usize> = train.iter().map(|g| g.user).collect();
        let user_ids: Vec<String> = users
            .iter()
            .map(|u| u.profile.user_id.clone().unwrap_or_default())
            .collect();
        let (mut track_embeddings, user_embeddings) = build_embeddings(
            &mut rng,
            &model,
            &train_tracks,
            &train_users,
            &user_ids,
            &EmbeddingSpec {
                content_dim: params.content_embedding_dim,
                cf_dim: params.cf_embedding_dim,
                challenge_dims: params.challenge_dims,
                missing_rate: params.missing_embedding_rate,
            },
        )?;
        // Hub column order.
        track_embeddings.sort_by_key(|table| {
            TRACK_EMBEDDING_KINDS
                .iter()
                .position(|kind| *kind == table.kind())
                .unwrap_or(usize::MAX)
        });

        let sessions = |split: Vec<sessions::GeneratedSession>| {
            split.into_iter().map(|g| g.session).collect::<Vec<_>>()
        };
        Ok(DemoDataset {
            params: params.clone(),
            tracks: model.tracks,
            users: users
                .into_iter()
                .zip(&has_train)
                .map(|(u, &trained)| UserProfile {
                    user_split: Some(if trained { "train" } else { "test_cold" }.to_string()),
                    ..u.profile
                })
                .collect(),
            train: sessions(train),
            test: sessions(test),
            blind: sessions(blind),
            blind_answers,
            track_embeddings,
            user_embeddings,
        })
    }

    /// The catalog as a [`Catalog`].
    pub fn catalog(&self) -> Result<Catalog> {
        Ok(Catalog::new(self.tracks.clone())?)
    }

    /// Writes the hub layout under `root` (see the module docs) and returns the files
    /// written. Each file is written to a temporary file and renamed into place.
    pub fn write(&self, root: impl AsRef<Path>) -> Result<Vec<PathBuf>> {
        let root = root.as_ref();
        let [
            conversations,
            tracks,
            users,
            track_embeddings,
            user_embeddings,
        ] = PART_DIRS;
        let mut written = Vec::new();
        for (split, sessions) in [("train", &self.train), ("test", &self.test)] {
            let path = split_file(root, conversations, split);
            write_sessions(&path, sessions)?;
            written.push(path);
        }
        let path = split_file(root, conversations, "blind");
        write_blind_sessions(&path, &self.blind)?;
        written.push(path);
        let path = split_file(root, tracks, "all_tracks");
        write_tracks(&path, &self.tracks)?;
        written.push(path);
        let path = split_file(root, users, "all_users");
        write_users(&path, &self.users)?;
        written.push(path);
        let path = split_file(root, track_embeddings, "all_tracks");
        write_embeddings(&path, TRACK_EMBEDDING_ID_COLUMN, &self.track_embeddings)?;
        written.push(path);
        let path = split_file(root, user_embeddings, "all_users");
        write_embeddings(&path, USER_EMBEDDING_ID_COLUMN, &self.user_embeddings)?;
        written.push(path);
        let path = root.join(BLIND_GROUND_TRUTH_FILE);
        write_json(&path, &self.blind_answers)?;
        written.push(path);
        tracing::info!(root = %root.display(), files = written.len(), "wrote demo dataset");
        Ok(written)
    }

    /// How consecutive recommended tracks relate, measured over the train and test splits.
    pub fn continuity(&self) -> ContinuityStats {
        let mut sessions: Vec<&Session> = self.train.iter().collect();
        sessions.extend(&self.test);
        continuity_stats(sessions, &self.tracks)
    }
}

fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Error::InvalidParam {
        field: format!("JSON for {}", path.display()),
        reason: e.to_string(),
    })?;
    music_crs_core::atomic::write_bytes_atomically(path, (text + "\n").as_bytes())
        .map_err(|e| Error::io(path, e))
}

/// How each recommended track relates to the one recommended at the turn before.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContinuityStats {
    /// Consecutive pairs of recommended tracks found in the catalog.
    pub transitions: usize,
    /// Pairs by the same artist (same album included).
    pub same_artist: usize,
    /// Pairs from the same album.
    pub same_album: usize,
    /// Pairs by different artists that share at least one tag.
    pub other_artist_shared_tag: usize,
    /// Pairs by different artists that share the first tag (the genre in the demo).
    pub other_artist_same_genre: usize,
}

impl ContinuityStats {
    fn rate(count: usize, total: usize) -> f64 {
        if total == 0 {
            0.0
        } else {
            count as f64 / total as f64
        }
    }

    /// Share of transitions that stay with the artist.
    pub fn same_artist_rate(&self) -> f64 {
        Self::rate(self.same_artist, self.transitions)
    }

    /// Share of transitions that stay on the album.
    pub fn same_album_rate(&self) -> f64 {
        Self::rate(self.same_album, self.transitions)
    }

    /// Share of artist-changing transitions whose tracks share a tag.
    pub fn shared_tag_rate_when_artist_changes(&self) -> f64 {
        Self::rate(
            self.other_artist_shared_tag,
            self.transitions - self.same_artist,
        )
    }

    /// Share of artist-changing transitions whose tracks share their first tag.
    pub fn same_genre_rate_when_artist_changes(&self) -> f64 {
        Self::rate(
            self.other_artist_same_genre,
            self.transitions - self.same_artist,
        )
    }
}

/// Measures [`ContinuityStats`] over sessions: each music message against the previous
/// music message of the same session. Works on any dataset, not only the demo.
pub fn continuity_stats<'a>(
    sessions: impl IntoIterator<Item = &'a Session>,
    tracks: &[Track],
) -> ContinuityStats {
    let by_id: HashMap<&str, &Track> = tracks.iter().map(|t| (t.track_id.as_str(), t)).collect();
    let mut stats = ContinuityStats::default();
    for session in sessions {
        let played: Vec<&Track> = session
            .messages
            .iter()
            .filter(|m| m.role == Role::Music)
            .filter_map(|m| by_id.get(m.content.as_str()).copied())
            .collect();
        for pair in played.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            stats.transitions += 1;
            let shares = |x: &[String], y: &[String]| x.iter().any(|v| y.contains(v));
            if shares(&a.artist_id, &b.artist_id) {
                stats.same_artist += 1;
                if shares(&a.album_id, &b.album_id) {
                    stats.same_album += 1;
                }
            } else {
                if shares(&a.tag_list, &b.tag_list) {
                    stats.other_artist_shared_tag += 1;
                }
                if !a.tag_list.is_empty() && a.tag_list.first() == b.tag_list.first() {
                    stats.other_artist_same_genre += 1;
                }
            }
        }
    }
    stats
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use super::*;
    use music_crs_data::{read_embeddings, read_sessions, read_tracks, read_users};

    fn small() -> DemoParams {
        DemoParams {
            num_tracks: 1_500,
            num_users: 80,
            num_train_sessions: 300,
            num_test_sessions: 60,
            num_blind_sessions: 40,
            ..DemoParams::default()
        }
    }

    fn cosine(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>()
    }

    #[test]
    fn same_seed_same_data_other_seed_other_data() {
        let a = DemoDataset::generate(&small()).unwrap();
        let b = DemoDataset::generate(&small()).unwrap();
        assert_eq!(a.tracks, b.tracks);
        assert_eq!(a.users, b.users);
        assert_eq!(a.train, b.train);
        assert_eq!(a.blind, b.blind);
        assert_eq!(a.blind_answers, b.blind_answers);
        for (x, y) in a.track_embeddings.iter().zip(&b.track_embeddings) {
            assert_eq!(x.ids(), y.ids());
            assert_eq!(x.as_matrix(), y.as_matrix());
        }
        let c = DemoDataset::generate(&DemoParams { seed: 7, ..small() }).unwrap();
        assert_ne!(a.tracks[0].track_id, c.tracks[0].track_id);
        assert_ne!(a.train[0].messages, c.train[0].messages);
    }

    #[test]
    fn sessions_are_well_formed_and_grounded_in_the_catalog() {
        let demo = DemoDataset::generate(&small()).unwrap();
        let catalog = demo.catalog().unwrap();
        let turns = demo.params.turns_per_session as u32;
        for session in demo.train.iter().chain(&demo.test) {
            assert_eq!(session.messages.len(), 3 * turns as usize);
            for (i, chunk) in session.messages.chunks(3).enumerate() {
                let turn = i as u32 + 1;
                let roles: Vec<Role> = chunk.iter().map(|m| m.role).collect();
                assert_eq!(roles, [Role::User, Role::Music, Role::Assistant]);
                assert!(chunk.iter().all(|m| m.turn_number == turn));
                let track = catalog.get(&chunk[1].content).expect("gold id in catalog");
                // The reply names the recommended track and its artist.
                assert!(
                    chunk[2].content.contains(&track.name()),
                    "{}",
                    chunk[2].content
                );
                assert!(
                    chunk[2].content.contains(&track.artist()),
                    "{}",
                    chunk[2].content
                );
            }
            let contexts = session.turn_contexts().unwrap();
            assert_eq!(contexts.len(), turns as usize);
            assert_eq!(session.goal_progress.len(), turns as usize);
            assert_eq!(session.goal_progress[0].assessment, None);
            assert!(
                session.goal_progress[1..]
                    .iter()
                    .all(|g| g.assessment.is_some())
            );
            let played: HashSet<&str> = session
                .messages
                .iter()
                .filter(|m| m.role == Role::Music)
                .map(|m| m.content.as_str())
                .collect();
            assert_eq!(
                played.len(),
                turns as usize,
                "tracks repeat in {}",
                session.session_id
            );
        }
        let mut blind_turns = HashSet::new();
        for (session, answer) in demo.blind.iter().zip(&demo.blind_answers) {
            assert_eq!(session.session_id, answer.session_id);
            let last = session.messages.last().unwrap();
            assert_eq!(last.role, Role::User);
            assert_eq!(last.turn_number, answer.turn_number);
            assert_eq!(session.messages.len(), 3 * answer.turn_number as usize - 2);
            let context = session.final_turn_context().unwrap();
            assert_eq!(context.turn_number, answer.turn_number);
            assert_eq!(
                context.played_track_ids.len(),
                answer.turn_number as usize - 1
            );
            assert!(catalog.contains(&answer.track_id));
            assert!(session.session_date.is_none() && session.goal_progress.is_empty());
            blind_turns.insert(answer.turn_number);
        }
        assert!(blind_turns.len() >= 6, "blind turns {blind_turns:?}");
    }

    #[test]
    fn continuity_follows_the_walk_rates() {
        let demo = DemoDataset::generate(&small()).unwrap();
        let stats = demo.continuity();
        assert_eq!(stats.transitions, (300 + 60) * 7);
        assert!(
            (0.35..0.55).contains(&stats.same_artist_rate()),
            "{stats:?}"
        );
        assert!((0.25..0.42).contains(&stats.same_album_rate()), "{stats:?}");
        assert!(
            stats.shared_tag_rate_when_artist_changes() > 0.9,
            "{stats:?}"
        );

        // The measure is not a constant: without artist steps, artists (almost) never repeat.
        let drifting = DemoDataset::generate(&DemoParams {
            same_album_rate: 0.0,
            same_artist_rate: 0.0,
            ..small()
        })
        .unwrap();
        let stats = drifting.continuity();
        assert!(stats.same_artist_rate() < 0.02, "{stats:?}");
        assert!(
            stats.same_genre_rate_when_artist_changes() > 0.6,
            "{stats:?}"
        );
    }

    #[test]
    fn users_recur_across_splits_and_popularity_has_a_long_tail() {
        let demo = DemoDataset::generate(&small()).unwrap();
        let train_users: HashSet<&str> = demo.train.iter().map(|s| s.user_id.as_str()).collect();
        let warm = demo
            .test
            .iter()
            .filter(|s| train_users.contains(s.user_id.as_str()))
            .count() as f64
            / demo.test.len() as f64;
        assert!((0.5..0.9).contains(&warm), "warm share {warm}");
        for session in &demo.test {
            let profile = session.user_profile.as_ref().unwrap();
            let expected = if train_users.contains(session.user_id.as_str()) {
                "test_warm"
            } else {
                "test_cold"
            };
            assert_eq!(profile.user_split.as_deref(), Some(expected));
        }

        let mut plays: HashMap<&str, usize> = HashMap::new();
        for message in demo.train.iter().flat_map(|s| &s.messages) {
            if message.role == Role::Music {
                *plays.entry(message.content.as_str()).or_default() += 1;
            }
        }
        let mut counts: Vec<usize> = plays.values().copied().collect();
        counts.sort_unstable_by(|a, b| b.cmp(a));
        let total: usize = counts.iter().sum();
        let head: usize = counts.iter().take(demo.tracks.len() / 20).sum();
        assert!(
            head as f64 / total as f64 > 0.25,
            "top 5% of tracks: {head}/{total} plays"
        );

        let names: String = demo.tracks.iter().map(|t| t.name() + &t.artist()).collect();
        assert!(!names.is_ascii(), "no non-ASCII name");
    }

    #[test]
    fn challenge_dims_give_every_kind_its_hub_dimension() {
        let params = DemoParams {
            num_tracks: 200,
            num_train_sessions: 40,
            challenge_dims: true,
            ..small()
        };
        let demo = DemoDataset::generate(&params).unwrap();
        let dims: Vec<(&str, usize)> = demo
            .track_embeddings
            .iter()
            .map(|t| (t.kind(), t.dim()))
            .collect();
        assert_eq!(dims, CHALLENGE_EMBEDDING_DIMS);
        assert_eq!(demo.user_embeddings[0].dim(), 128);
        let challenge = DemoParams::challenge_size();
        assert_eq!(
            (challenge.num_tracks, challenge.num_train_sessions),
            (47_071, 15_199)
        );
        assert_eq!(
            challenge.num_test_sessions * challenge.turns_per_session,
            8_000
        );
    }

    #[test]
    fn embeddings_carry_artist_and_co_listening_signal() {
        let demo = DemoDataset::generate(&small()).unwrap();
        let kinds: Vec<&str> = demo.track_embeddings.iter().map(|t| t.kind()).collect();
        assert_eq!(kinds, TRACK_EMBEDDING_KINDS);
        let by_id: HashMap<&str, &Track> = demo
            .tracks
            .iter()
            .map(|t| (t.track_id.as_str(), t))
            .collect();
        for table in &demo.track_embeddings {
            let present = table.present().iter().filter(|&&p| p).count();
            assert!(present < table.len(), "{} has no empty rows", table.kind());
            assert!(
                present > table.len() / 2,
                "{} is mostly empty",
                table.kind()
            );
        }
        let audio = &demo.track_embeddings[0];
        let cf = &demo.track_embeddings[2];
        // Mean cosine of consecutive tracks in sessions vs. tracks from distant sessions.
        let mut near = (0.0f32, 0usize, 0.0f32, 0usize);
        let mut far = (0.0f32, 0usize, 0.0f32, 0usize);
        let ids: Vec<Vec<&str>> = demo
            .train
            .iter()
            .map(|s| {
                s.messages
                    .iter()
                    .filter(|m| m.role == Role::Music)
                    .map(|m| m.content.as_str())
                    .collect()
            })
            .collect();
        for (i, session) in ids.iter().enumerate() {
            let other = &ids[(i + ids.len() / 2) % ids.len()];
            for j in 1..session.len() {
                for (acc, a, b) in [
                    (&mut near, session[j - 1], session[j]),
                    (&mut far, session[j], other[j]),
                ] {
                    if let (Some(x), Some(y)) = (audio.get(a), audio.get(b)) {
                        acc.0 += cosine(x, y);
                        acc.1 += 1;
                    }
                    if let (Some(x), Some(y)) = (cf.get(a), cf.get(b)) {
                        acc.2 += cosine(x, y);
                        acc.3 += 1;
                    }
                }
            }
        }
        let (near_audio, far_audio) = (near.0 / near.1 as f32, far.0 / far.1 as f32);
        let (near_cf, far_cf) = (near.2 / near.3 as f32, far.2 / far.3 as f32);
        assert!(
            near_audio > far_audio + 0.2,
            "audio {near_audio} vs {far_audio}"
        );
        assert!(near_cf > far_cf + 0.2, "cf {near_cf} vs {far_cf}");
        assert!(by_id.len() == demo.tracks.len());

        // Cold users have no cf-bpr vector; users with train sessions do.
        let users = &demo.user_embeddings[0];
        let train_users: HashSet<&str> = demo.train.iter().map(|s| s.user_id.as_str()).collect();
        for id in users.ids() {
            assert_eq!(
                users.get(id).is_some(),
                train_users.contains(id.as_str()),
                "{id}"
            );
        }
    }

    #[test]
    fn invalid_params_name_the_field() {
        let cases = [
            (
                DemoParams {
                    num_tracks: 3,
                    ..small()
                },
                "num_tracks",
            ),
            (
                DemoParams {
                    num_users: 0,
                    ..small()
                },
                "num_users",
            ),
            (
                DemoParams {
                    turns_per_session: 0,
                    ..small()
                },
                "turns_per_session",
            ),
            (
                DemoParams {
                    cf_embedding_dim: 0,
                    ..small()
                },
                "cf_embedding_dim",
            ),
            (
                DemoParams {
                    same_album_rate: 0.9,
                    ..small()
                },
                "same_album_rate",
            ),
            (
                DemoParams {
                    cold_user_share: 1.5,
                    ..small()
                },
                "cold_user_share",
            ),
        ];
        for (params, field) in cases {
            let err = DemoDataset::generate(&params).unwrap_err().to_string();
            assert!(err.contains(field), "{field}: {err}");
        }
        assert!(DemoParams::default().validate().is_ok());
    }

    #[test]
    fn written_layout_reads_back_through_the_loaders() {
        let params = DemoParams {
            num_tracks: 400,
            num_users: 30,
            num_train_sessions: 40,
            num_test_sessions: 10,
            num_blind_sessions: 10,
            ..DemoParams::default()
        };
        let demo = DemoDataset::generate(&params).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let files = demo.write(dir.path()).unwrap();
        assert_eq!(files.len(), 8);
        let part = |p: usize, split: &str| split_file(dir.path(), PART_DIRS[p], split);

        assert_eq!(read_sessions(&part(0, "train")).unwrap(), demo.train);
        assert_eq!(read_sessions(&part(0, "test")).unwrap(), demo.test);
        assert_eq!(read_sessions(&part(0, "blind")).unwrap(), demo.blind);
        assert_eq!(read_tracks(&part(1, "all_tracks")).unwrap(), demo.tracks);
        let users = read_users(&part(2, "all_users")).unwrap();
        assert_eq!(users.len(), demo.users.len());
        for (read, made) in users.iter().zip(&demo.users) {
            assert_eq!(read.user_id, made.user_id);
            assert_eq!(read.age, made.age);
            assert_eq!(read.country_name, made.country_name);
            assert_eq!(read.gender, made.gender);
        }
        let tables = read_embeddings(&part(3, "all_tracks"), "track_id", &[]).unwrap();
        assert_eq!(tables.len(), demo.track_embeddings.len());
        for (read, made) in tables.iter().zip(&demo.track_embeddings) {
            assert_eq!(read.kind(), made.kind());
            assert_eq!(read.ids(), made.ids());
            assert_eq!(read.present(), made.present());
            assert_eq!(read.as_matrix(), made.as_matrix());
        }
        let tables = read_embeddings(&part(4, "all_users"), "user_id", &[]).unwrap();
        assert_eq!(tables[0].as_matrix(), demo.user_embeddings[0].as_matrix());

        let answers: Vec<BlindAnswer> = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join(BLIND_GROUND_TRUTH_FILE)).unwrap(),
        )
        .unwrap();
        assert_eq!(answers, demo.blind_answers);
    }
}

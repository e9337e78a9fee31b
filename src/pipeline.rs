//! The conversational recommender: retrieve, then reply grounded on the first track.

use std::collections::HashMap;
use std::sync::Arc;

use music_crs_core::{
    Catalog, GenerationRequest, MAX_PREDICTED_TRACKS, Prediction, ScoredTrack, Track, TurnContext,
    UserProfile,
};
use music_crs_generate::reply_check::ReplyCheck;
use music_crs_generate::{CheckedReply, Generator};
use music_crs_retrieval::Retriever;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Turns retrieved per `retrieve_batch` call: large enough for a batch retriever to spread
/// work over threads, small enough for a progress bar to move.
pub const DEFAULT_BATCH_SIZE: usize = 256;

/// The answer to one turn.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The recommended tracks, best first (unique, at most `k`).
    pub tracks: Vec<ScoredTrack>,
    /// The natural-language reply, grounded on the first track.
    pub response: String,
    /// What [`music_crs_generate::reply_check`] found in the generator's own text (empty,
    /// degenerate or sound), whatever went out.
    pub check: ReplyCheck,
    /// True when `response` is the template reply sent in place of a flawed one (the Llama
    /// generator's `on_empty` / `on_degenerate`).
    pub replaced: bool,
}

impl Reply {
    /// The recommended track ids, best first.
    pub fn track_ids(&self) -> Vec<String> {
        self.tracks.iter().map(|t| t.track_id.clone()).collect()
    }
}

/// One predicted turn of a batch run: the challenge row, and what the reply check found in
/// the generator's own text (see [`music_crs_generate::reply_check`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PredictedTurn {
    /// The row of the prediction file.
    pub prediction: Prediction,
    /// Empty, degenerate or sound: the check of the generator's own reply.
    pub reply_check: ReplyCheck,
    /// True when a template reply stands in for the generator's own (the Llama generator's
    /// `on_empty` / `on_degenerate` settings).
    #[serde(default)]
    pub reply_replaced: bool,
}

/// A conversational recommender: one retriever, one generator, the catalog and the users.
///
/// Immutable once built and `Send + Sync`: a batch run shares it across threads.
pub struct Crs {
    retriever: Box<dyn Retriever>,
    generator: Box<dyn Generator>,
    catalog: Arc<Catalog>,
    users: HashMap<String, UserProfile>,
    top_k: usize,
    batch_size: usize,
    fallback: Vec<String>,
}

impl std::fmt::Debug for Crs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Crs")
            .field("retriever", &self.retriever.name())
            .field("generator", &self.generator.name())
            .field("tracks", &self.catalog.len())
            .field("users", &self.users.len())
            .field("top_k", &self.top_k)
            .finish()
    }
}

impl Crs {
    /// A recommender predicting [`MAX_PREDICTED_TRACKS`] tracks per turn, with no user
    /// profiles.
    pub fn new(
        retriever: Box<dyn Retriever>,
        generator: Box<dyn Generator>,
        catalog: Arc<Catalog>,
    ) -> Self {
        Crs {
            retriever,
            generator,
            catalog,
            users: HashMap::new(),
            top_k: MAX_PREDICTED_TRACKS,
            batch_size: DEFAULT_BATCH_SIZE,
            fallback: Vec::new(),
        }
    }

    /// Adds user profiles, keyed by their `user_id`; profiles without an id are skipped.
    /// They fill the profile of turns that carry a user id but no profile.
    pub fn with_users(mut self, users: impl IntoIterator<Item = UserProfile>) -> Self {
        for profile in users {
            if let Some(id) = profile.user_id.clone().filter(|id| !id.is_empty()) {
                self.users.insert(id, profile);
            }
        }
        self
    }

    /// Sets the number of tracks per turn (1..=[`MAX_PREDICTED_TRACKS`]).
    pub fn with_top_k(mut self, k: usize) -> Result<Self> {
        if k == 0 || k > MAX_PREDICTED_TRACKS {
            return Err(Error::InvalidSetting {
                key: "k".into(),
                reason: format!("{k} is outside 1..={MAX_PREDICTED_TRACKS}"),
            });
        }
        self.top_k = k;
        Ok(self)
    }

    /// Sets how many turns go to the retriever per batch call (at least 1).
    pub fn with_batch_size(mut self, batch_size: usize) -> Result<Self> {
        if batch_size == 0 {
            return Err(Error::InvalidSetting {
                key: "batch_size".into(),
                reason: "must be at least 1".into(),
            });
        }
        self.batch_size = batch_size;
        Ok(self)
    }

    /// Tracks that fill a list the retriever left short of `k` (e.g. BM25 when no query
    /// term is in the catalog), in this order, skipping tracks already listed or played.
    /// Filled tracks score 0. Without a fallback, short lists stay short.
    pub fn with_fallback(mut self, track_ids: impl IntoIterator<Item = String>) -> Self {
        self.fallback = track_ids.into_iter().collect();
        self
    }

    /// The catalog.
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// The retriever's name.
    pub fn retriever_name(&self) -> &str {
        self.retriever.name()
    }

    /// The generator's name.
    pub fn generator_name(&self) -> &str {
        self.generator.name()
    }

    /// Tracks predicted per turn.
    pub fn top_k(&self) -> usize {
        self.top_k
    }

    /// The profile of a user id, when known.
    pub fn user(&self, user_id: &str) -> Option<&UserProfile> {
        self.users.get(user_id)
    }

    /// The ids of the known users, in no particular order.
    pub fn user_ids(&self) -> impl Iterator<Item = &str> {
        self.users.keys().map(String::as_str)
    }

    /// Answers one turn: its top tracks and a reply.
    pub fn chat(&self, turn: &TurnContext) -> Result<Reply> {
        let turn = self.personalise(turn);
        let tracks = self
            .retriever
            .retrieve(&turn, self.top_k)
            .map_err(|e| turn_error(&turn, e.into()))?;
        self.reply(&turn, tracks)
    }

    /// Predicts every turn, in input order.
    pub fn predict(&self, turns: &[TurnContext]) -> Result<Vec<Prediction>> {
        self.predict_with_progress(turns, &|_| {})
    }

    /// Predicts every turn, in input order, calling `progress(n)` as each batch of `n` turns
    /// completes (e.g. to move a progress bar).
    ///
    /// Retrieval goes through [`Retriever::retrieve_batch`]; replies are written in parallel
    /// with rayon.
    pub fn predict_with_progress(
        &self,
        turns: &[TurnContext],
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<Vec<Prediction>> {
        let predicted = self.predict_turns(turns, progress, &mut |_| Ok(()))?;
        Ok(predicted.into_iter().map(|turn| turn.prediction).collect())
    }

    /// Predicts every turn, in input order, with the check of each reply. Turns go in
    /// batches of [`Crs::with_batch_size`]; `on_batch` receives each batch's predictions as
    /// soon as they are made (a run appends them to its checkpoint), and its error stops the
    /// run. `progress(n)` is called as replies are written.
    ///
    /// Every turn's prediction depends on that turn alone, never on the batch it falls in, so
    /// predicting a suffix of `turns` gives the same rows as predicting them all.
    pub fn predict_turns(
        &self,
        turns: &[TurnContext],
        progress: &(dyn Fn(usize) + Sync),
        on_batch: &mut dyn FnMut(&[PredictedTurn]) -> Result<()>,
    ) -> Result<Vec<PredictedTurn>> {
        let mut predictions = Vec::with_capacity(turns.len());
        for batch in turns.chunks(self.batch_size) {
            let batch: Vec<TurnContext> = batch.iter().map(|t| self.personalise(t)).collect();
            let retrieved = self
                .retriever
                .retrieve_batch(&batch, self.top_k)
                .map_err(|e| batch_error(&batch, e.into()))?;
            if retrieved.len() != batch.len() {
                return Err(miscounted(
                    &batch,
                    "retriever",
                    format!(
                        "{} answered {} queries for {} turns",
                        self.retriever.name(),
                        retrieved.len(),
                        batch.len()
                    ),
                ));
            }
            // Replies go in groups of the generator's liking: one turn per group spreads
            // turns over threads; a whole batch lets a backend decode its turns together.
            let (tracks, requests): (Vec<Vec<ScoredTrack>>, Vec<GenerationRequest>) = batch
                .par_iter()
                .zip(retrieved)
                .map(|(turn, tracks)| {
                    let tracks = self.final_tracks(turn, tracks);
                    let request = self.generation_request(turn, &tracks);
                    (tracks, request)
                })
                .unzip();
            let group = self.generator.batch_size_hint().clamp(1, batch.len());
            let generate = |(turns, requests): (&[TurnContext], &[GenerationRequest])| {
                let replies = self
                    .generator
                    .generate_checked_batch(requests)
                    .map_err(|e| batch_error(turns, e.into()))?;
                if replies.len() != turns.len() {
                    return Err(miscounted(
                        turns,
                        "generator",
                        format!(
                            "{} answered {} requests with {} replies",
                            self.generator.name(),
                            turns.len(),
                            replies.len()
                        ),
                    ));
                }
                progress(turns.len());
                Ok(replies)
            };
            // A batch of one group runs on this thread, so the backend's own threading
            // applies (the Llama backend hands a lone sequence's products to its spinning
            // team, which it keeps away from rayon's workers).
            let replies: Vec<Result<Vec<CheckedReply>>> = if group == batch.len() {
                vec![generate((&batch, &requests))]
            } else {
                batch
                    .par_chunks(group)
                    .zip(requests.par_chunks(group))
                    .map(generate)
                    .collect()
            };
            let first = predictions.len();
            let replies = replies.into_iter().collect::<Result<Vec<_>>>()?;
            for ((turn, tracks), reply) in
                batch.iter().zip(tracks).zip(replies.into_iter().flatten())
            {
                predictions.push(PredictedTurn {
                    prediction: Prediction {
                        session_id: turn.session_id.clone(),
                        user_id: turn.user_id.clone(),
                        turn_number: turn.turn_number,
                        predicted_track_ids: tracks.into_iter().map(|t| t.track_id).collect(),
                        predicted_response: reply.text,
                    },
                    reply_check: reply.check,
                    reply_replaced: reply.replaced,
                });
            }
            on_batch(&predictions[first..])?;
        }
        Ok(predictions)
    }

    /// The generation request of one turn: the recommended and played tracks' metadata.
    pub fn generation_request(
        &self,
        turn: &TurnContext,
        tracks: &[ScoredTrack],
    ) -> GenerationRequest {
        GenerationRequest {
            context: turn.clone(),
            recommended: self.tracks_of(tracks.iter().map(|t| t.track_id.as_str())),
            played: self.tracks_of(turn.played_track_ids.iter().map(String::as_str)),
        }
    }

    /// The reply with what the check found in the generator's own text.
    fn reply(&self, turn: &TurnContext, tracks: Vec<ScoredTrack>) -> Result<Reply> {
        let tracks = self.final_tracks(turn, tracks);
        let request = self.generation_request(turn, &tracks);
        let checked = self
            .generator
            .generate_checked(&request)
            .map_err(|e| turn_error(turn, e.into()))?;
        Ok(Reply {
            tracks,
            response: checked.text,
            check: checked.check,
            replaced: checked.replaced,
        })
    }

    /// The tracks that go out for a turn: unique, at most `top_k`, topped up from the
    /// fallback list when the retriever found fewer.
    fn final_tracks(&self, turn: &TurnContext, tracks: Vec<ScoredTrack>) -> Vec<ScoredTrack> {
        let mut tracks = unique_top(tracks, self.top_k);
        if tracks.len() < self.top_k && !self.fallback.is_empty() {
            self.fill(turn, &mut tracks);
        }
        tracks
    }

    fn fill(&self, turn: &TurnContext, tracks: &mut Vec<ScoredTrack>) {
        let mut taken: std::collections::HashSet<&str> = tracks
            .iter()
            .map(|t| t.track_id.as_str())
            .chain(turn.played_track_ids.iter().map(String::as_str))
            .collect();
        let mut filler = Vec::new();
        for id in &self.fallback {
            if tracks.len() + filler.len() >= self.top_k {
                break;
            }
            if taken.insert(id.as_str()) {
                filler.push(ScoredTrack::new(id.clone(), 0.0));
            }
        }
        tracks.extend(filler);
    }

    /// Fills the profile from the users table when the turn has a user id but no profile.
    /// An empty id or an unknown user means no personalisation, never an error.
    fn personalise(&self, turn: &TurnContext) -> TurnContext {
        let mut turn = turn.clone();
        if turn.profile().is_none()
            && !turn.user_id.is_empty()
            && let Some(profile) = self.users.get(&turn.user_id)
        {
            turn.user_profile = Some(profile.clone());
        }
        turn
    }

    fn tracks_of<'a>(&self, ids: impl Iterator<Item = &'a str>) -> Vec<Track> {
        ids.filter_map(|id| self.catalog.get(id)).cloned().collect()
    }
}

/// Keeps the first occurrence of each id, at most `k` of them: the challenge requires unique
/// ids, whatever a retriever returns.
fn unique_top(tracks: Vec<ScoredTrack>, k: usize) -> Vec<ScoredTrack> {
    let mut seen = std::collections::HashSet::with_capacity(tracks.len());
    tracks
        .into_iter()
        .filter(|t| seen.insert(t.track_id.clone()))
        .take(k)
        .collect()
}

fn turn_error(turn: &TurnContext, source: Error) -> Error {
    Error::Turn {
        session_id: turn.session_id.clone(),
        turn_number: turn.turn_number,
        error: Box::new(source),
    }
}

/// A retriever or generator (`key`) that answered a batch with the wrong number of
/// results: the run stops rather than pair results with the wrong turns.
fn miscounted(batch: &[TurnContext], key: &str, reason: String) -> Error {
    batch_error(
        batch,
        Error::InvalidSetting {
            key: key.into(),
            reason,
        },
    )
}

fn batch_error(batch: &[TurnContext], source: Error) -> Error {
    match batch {
        [turn] => turn_error(turn, source),
        _ => source,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use music_crs_core::{Message, Role, Session};

    use super::*;

    /// Ranks tracks by how many words of the user message their name shares; returns a
    /// duplicate of its first hit to check de-duplication.
    struct WordOverlap {
        catalog: Arc<Catalog>,
    }

    impl Retriever for WordOverlap {
        fn name(&self) -> &str {
            "overlap"
        }
        fn retrieve(
            &self,
            query: &TurnContext,
            k: usize,
        ) -> music_crs_retrieval::Result<Vec<ScoredTrack>> {
            let words: Vec<String> = query
                .user_message
                .to_lowercase()
                .split_whitespace()
                .map(str::to_string)
                .collect();
            let mut scored: Vec<ScoredTrack> = self
                .catalog
                .tracks()
                .iter()
                .map(|t| {
                    let name = t.name().to_lowercase();
                    let score = words.iter().filter(|w| name.contains(w.as_str())).count();
                    ScoredTrack::new(t.track_id.clone(), score as f32)
                })
                .collect();
            scored.sort_by(|a, b| b.score.total_cmp(&a.score));
            scored.truncate(k);
            let first = scored[0].clone();
            scored.insert(1, first);
            Ok(scored)
        }
    }

    /// Echoes the first recommended track and what it knows of the user.
    struct Echo {
        seen: Mutex<Vec<GenerationRequest>>,
    }

    impl Generator for Echo {
        fn name(&self) -> &str {
            "echo"
        }
        fn generate(&self, request: &GenerationRequest) -> music_crs_generate::Result<String> {
            self.seen.lock().unwrap().push(request.clone());
            let country = request
                .context
                .profile()
                .and_then(|p| p.country_code.clone())
                .unwrap_or_else(|| "-".into());
            Ok(format!(
                "{} [{country}] after {}",
                request
                    .recommended
                    .first()
                    .map(Track::name)
                    .unwrap_or_default(),
                request.played.len()
            ))
        }
    }

    fn catalog() -> Arc<Catalog> {
        let tracks = (0..30)
            .map(|i| Track::new(format!("t{i}"), format!("song {i} word{i}"), "artist"))
            .collect();
        Arc::new(Catalog::new(tracks).unwrap())
    }

    fn crs() -> Crs {
        let catalog = catalog();
        Crs::new(
            Box::new(WordOverlap {
                catalog: catalog.clone(),
            }),
            Box::new(Echo {
                seen: Mutex::new(Vec::new()),
            }),
            catalog,
        )
    }

    fn session(id: &str, user: &str) -> Session {
        let mut messages = Vec::new();
        for turn in 1..=3u32 {
            messages.push(Message::new(turn, Role::User, format!("play word{turn}")));
            messages.push(Message::new(turn, Role::Music, format!("t{turn}")));
            messages.push(Message::new(turn, Role::Assistant, "ok"));
        }
        Session {
            session_id: id.into(),
            user_id: user.into(),
            messages,
            ..Session::default()
        }
    }

    #[test]
    fn predictions_are_unique_capped_and_grounded() {
        let crs = crs().with_top_k(5).unwrap().with_batch_size(2).unwrap();
        let turns = session("s1", "u1").turn_contexts().unwrap();
        let done = std::sync::atomic::AtomicUsize::new(0);
        let predictions = crs
            .predict_with_progress(&turns, &|n| {
                done.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
            })
            .unwrap();
        assert_eq!(done.into_inner(), 3);
        assert_eq!(predictions.len(), 3);
        for (prediction, turn) in predictions.iter().zip(1u32..) {
            assert_eq!(prediction.turn_number, turn);
            assert_eq!(prediction.session_id, "s1");
            assert_eq!(prediction.predicted_track_ids.len(), 5);
            let unique: std::collections::HashSet<_> =
                prediction.predicted_track_ids.iter().collect();
            assert_eq!(unique.len(), 5, "{:?}", prediction.predicted_track_ids);
            assert_eq!(prediction.predicted_track_ids[0], format!("t{turn}"));
            assert_eq!(
                prediction.predicted_response,
                format!("song {turn} word{turn} [-] after {}", turn - 1)
            );
        }
    }

    #[test]
    fn users_fill_missing_profiles_and_empty_ids_are_fine() {
        let profile = UserProfile {
            user_id: Some("u1".into()),
            country_code: Some("BR".into()),
            ..UserProfile::default()
        };
        let crs = crs().with_users([profile]);
        let known = session("s1", "u1").final_turn_context().unwrap();
        assert!(crs.chat(&known).unwrap().response.contains("[BR]"));
        let anonymous = session("s2", "").final_turn_context().unwrap();
        assert!(crs.chat(&anonymous).unwrap().response.contains("[-]"));
        let unknown = session("s3", "nobody").final_turn_context().unwrap();
        assert!(crs.chat(&unknown).unwrap().response.contains("[-]"));
    }

    #[test]
    fn generator_errors_name_session_and_turn() {
        struct Failing;
        impl Generator for Failing {
            fn name(&self) -> &str {
                "failing"
            }
            fn generate(&self, _: &GenerationRequest) -> music_crs_generate::Result<String> {
                Err(music_crs_generate::Error::InvalidParameter {
                    name: "prompt",
                    reason: "too long".into(),
                })
            }
        }
        let catalog = catalog();
        let crs = Crs::new(
            Box::new(WordOverlap {
                catalog: catalog.clone(),
            }),
            Box::new(Failing),
            catalog,
        );
        let turns = session("s9", "u").turn_contexts().unwrap();
        let err = crs.predict(&turns).unwrap_err().to_string();
        assert!(err.contains("session s9, turn 1"), "{err}");
        assert!(err.contains("too long"), "{err}");
    }

    #[test]
    fn short_lists_are_filled_from_the_fallback_without_played_tracks() {
        struct Nothing;
        impl Retriever for Nothing {
            fn name(&self) -> &str {
                "nothing"
            }
            fn retrieve(
                &self,
                _: &TurnContext,
                _: usize,
            ) -> music_crs_retrieval::Result<Vec<ScoredTrack>> {
                Ok(vec![ScoredTrack::new("t5", 2.0)])
            }
        }
        let catalog = catalog();
        let crs = Crs::new(
            Box::new(Nothing),
            Box::new(Echo {
                seen: Mutex::new(Vec::new()),
            }),
            catalog,
        )
        .with_top_k(4)
        .unwrap()
        .with_fallback(["t5", "t1", "t9", "t2", "t3"].map(String::from));
        let turn = session("s", "u").turn_contexts().unwrap().remove(1);
        assert_eq!(turn.played_track_ids, vec!["t1"]);
        let reply = crs.chat(&turn).unwrap();
        assert_eq!(reply.track_ids(), vec!["t5", "t9", "t2", "t3"]);
        assert_eq!(reply.tracks[1].score, 0.0);
    }

    #[test]
    fn batches_reach_the_checkpoint_and_a_suffix_is_predicted_alone() {
        let catalog = catalog();
        let echo = Arc::new(Echo {
            seen: Mutex::new(Vec::new()),
        });
        let crs = Crs::new(
            Box::new(WordOverlap {
                catalog: catalog.clone(),
            }),
            Box::new(echo.clone()),
            catalog,
        )
        .with_top_k(5)
        .unwrap()
        .with_batch_size(2)
        .unwrap();
        let turns: Vec<TurnContext> = ["s1", "s2"]
            .iter()
            .flat_map(|id| session(id, "u").turn_contexts().unwrap())
            .collect();
        let mut batches = Vec::new();
        let all = crs
            .predict_turns(&turns, &|_| {}, &mut |batch| {
                batches.push(batch.to_vec());
                Ok(())
            })
            .unwrap();
        assert_eq!(all.len(), 6);
        assert_eq!(batches.len(), 3);
        assert_eq!(batches.concat(), all);
        assert!(all.iter().all(|turn| turn.reply_check.is_ok()));
        // A resumed run predicts the turns left, and only those, with the same rows.
        let asked = echo.seen.lock().unwrap().len();
        let rest = crs
            .predict_turns(&turns[3..], &|_| {}, &mut |_| Ok(()))
            .unwrap();
        assert_eq!(rest, all[3..]);
        assert_eq!(echo.seen.lock().unwrap().len() - asked, 3);
        // A checkpoint that cannot be written stops the run after that batch.
        let asked = echo.seen.lock().unwrap().len();
        let err = crs
            .predict_turns(&turns, &|_| {}, &mut |_| {
                Err(Error::InvalidSetting {
                    key: "checkpoint".into(),
                    reason: "disk full".into(),
                })
            })
            .unwrap_err();
        assert!(err.to_string().contains("disk full"), "{err}");
        assert_eq!(echo.seen.lock().unwrap().len() - asked, 2);
    }

    #[test]
    fn flawed_replies_are_reported_not_replaced() {
        /// Nothing at turn 2, a loop at turn 3.
        struct Flawed;
        impl Generator for Flawed {
            fn name(&self) -> &str {
                "flawed"
            }
            fn generate(&self, request: &GenerationRequest) -> music_crs_generate::Result<String> {
                Ok(match request.context.turn_number {
                    2 => String::new(),
                    3 => "so good ".repeat(6),
                    _ => "Try this one.".into(),
                })
            }
        }
        let catalog = catalog();
        let crs = Crs::new(
            Box::new(WordOverlap {
                catalog: catalog.clone(),
            }),
            Box::new(Flawed),
            catalog,
        );
        let turns = session("s", "u").turn_contexts().unwrap();
        let predicted = crs.predict_turns(&turns, &|_| {}, &mut |_| Ok(())).unwrap();
        let checks: Vec<&str> = predicted.iter().map(|t| t.reply_check.status()).collect();
        assert_eq!(checks, ["ok", "empty", "degenerate"]);
        assert!(predicted.iter().all(|t| !t.reply_replaced));
        assert_eq!(predicted[1].prediction.predicted_response, "");
        assert_eq!(
            predicted[2].prediction.predicted_response,
            "so good ".repeat(6)
        );
    }

    /// Takes whole batches, as the Llama generator's own forward pass does, and answers
    /// like [`Echo`]; `short` drops the last reply of each batch. Records each batch's
    /// size and whether it ran on one of rayon's workers.
    struct Batching {
        echo: Echo,
        batches: Mutex<Vec<(usize, bool)>>,
        short: bool,
    }

    impl Generator for Batching {
        fn name(&self) -> &str {
            "batching"
        }
        fn generate(&self, request: &GenerationRequest) -> music_crs_generate::Result<String> {
            self.echo.generate(request)
        }
        fn batch_size_hint(&self) -> usize {
            usize::MAX
        }
        fn generate_checked_batch(
            &self,
            requests: &[GenerationRequest],
        ) -> music_crs_generate::Result<Vec<CheckedReply>> {
            let on_rayon = rayon::current_thread_index().is_some();
            self.batches
                .lock()
                .unwrap()
                .push((requests.len(), on_rayon));
            let mut replies = requests
                .iter()
                .map(|request| self.generate_checked(request))
                .collect::<music_crs_generate::Result<Vec<_>>>()?;
            if self.short {
                replies.pop();
            }
            Ok(replies)
        }
    }

    #[test]
    fn a_batching_generator_gets_whole_batches_and_the_same_rows() {
        let turns: Vec<TurnContext> = ["s1", "s2"]
            .iter()
            .flat_map(|id| session(id, "u").turn_contexts().unwrap())
            .collect();
        let one_by_one = crs().with_batch_size(4).unwrap().predict(&turns).unwrap();
        let catalog = catalog();
        let batching = |short| {
            let generator = Arc::new(Batching {
                echo: Echo {
                    seen: Mutex::new(Vec::new()),
                },
                batches: Mutex::new(Vec::new()),
                short,
            });
            let crs = Crs::new(
                Box::new(WordOverlap {
                    catalog: catalog.clone(),
                }),
                Box::new(generator.clone()),
                catalog.clone(),
            )
            .with_batch_size(4)
            .unwrap();
            (crs, generator)
        };
        let (crs, generator) = batching(false);
        assert_eq!(crs.predict(&turns).unwrap(), one_by_one);
        // Each batch is one group, run on the calling thread (not a rayon worker).
        assert_eq!(*generator.batches.lock().unwrap(), [(4, false), (2, false)]);
        // A generator that loses a reply stops the run instead of shifting the rows.
        let (crs, _) = batching(true);
        let err = crs.predict(&turns).unwrap_err().to_string();
        assert!(err.contains("answered 4 requests with 3 replies"), "{err}");
    }

    #[test]
    fn bad_settings_are_rejected() {
        assert!(crs().with_top_k(0).is_err());
        assert!(crs().with_top_k(MAX_PREDICTED_TRACKS + 1).is_err());
        assert!(crs().with_batch_size(0).is_err());
    }

    #[test]
    fn crs_is_send_and_sync() {
        fn assert_auto<T: Send + Sync>() {}
        assert_auto::<Crs>();
    }
}

//! Turning a turn's context into query text for text retrievers.
//!
//! The official baselines (nlp4musa/music-crs-baselines) build the retrieval query as one
//! `role: content` line per earlier message, then `user: <current message>`, joined with
//! newlines. A music message becomes an `assistant` line holding the catalog's metadata of its
//! track, lower-cased: `track_id: <id>, track_name: <name>, artist_name: <artists>,
//! album_name: <album>, release_date: <date>`. The baseline builds each value with
//! `", ".join(value)`, which on the `release_date` *string* joins its characters
//! (`2, 0, 1, 2, -, 1, 1, -, 1, 6`); [`QueryRenderParams::release_date_as_characters`]
//! reproduces that, and by default the date is kept whole. The baseline looks tracks up with
//! `metadata_dict[track_id]` and stops on a track the catalog lacks; here such a message is
//! skipped by default ([`MissingTrack`]), which is also how the shared fixture queries were
//! rendered (their catalog sample holds none of the played tracks). The dataset itself has
//! assistant messages whose content is the literal `Unknown message`; they are rendered as-is.

use std::sync::Arc;

use music_crs_core::{Catalog, Role, Track, TrackField, TurnContext};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Which part of the conversation the query holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueryMode {
    /// The official recipe: every earlier message as a `role: content` line, then
    /// `user: <current message>`.
    #[default]
    Conversation,
    /// The current user message only, as bare text.
    CurrentMessage,
}

/// What to do with a music message whose track the catalog lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissingTrack {
    /// Leave the message out.
    #[default]
    Skip,
    /// Render `assistant: track_id: <id>` only.
    TrackId,
    /// Fail, naming the session, turn and track (the baseline raises `KeyError`).
    Error,
}

/// Settings of a [`QueryRenderer`]; the default is the official recipe with the release-date
/// bug fixed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueryRenderParams {
    /// Which part of the conversation to render.
    pub mode: QueryMode,
    /// The catalog fields of a music message's track, after its `track_id`.
    pub music_fields: Vec<TrackField>,
    /// Reproduce the baseline's bug that joins the release-date string character by character
    /// (config files may call it `baseline_exact`: with it the text is the baseline's exactly).
    #[serde(alias = "baseline_exact")]
    pub release_date_as_characters: bool,
    /// What to do with music messages whose track the catalog lacks.
    pub missing_track: MissingTrack,
    /// Keep only the last this-many earlier turns (`None`: all of them).
    pub max_history_turns: Option<u32>,
    /// How many times the current message is written (more weighs it over the history: BM25
    /// counts a repeated query term once per occurrence).
    pub current_message_repeats: u32,
    /// Add a `played_tags:` line with the tags of the tracks played so far.
    pub played_tags: bool,
    /// Add a `thought:` line after each earlier message that has one.
    pub thoughts: bool,
    /// Add a `goal:` line with the conversation goal, when known.
    pub conversation_goal: bool,
}

impl QueryRenderParams {
    /// Default for [`QueryRenderParams::current_message_repeats`].
    pub const DEFAULT_CURRENT_MESSAGE_REPEATS: u32 = 1;
    /// The largest accepted [`QueryRenderParams::current_message_repeats`].
    pub const MAX_CURRENT_MESSAGE_REPEATS: u32 = 100;

    /// The official baseline's text exactly, release-date bug included.
    pub fn baseline_exact() -> Self {
        QueryRenderParams {
            release_date_as_characters: true,
            ..QueryRenderParams::default()
        }
    }

    /// The current user message only.
    pub fn current_message_only() -> Self {
        QueryRenderParams {
            mode: QueryMode::CurrentMessage,
            ..QueryRenderParams::default()
        }
    }

    /// The official recipe with the current message written `repeats` times.
    pub fn weighted(repeats: u32) -> Self {
        QueryRenderParams {
            current_message_repeats: repeats,
            ..QueryRenderParams::default()
        }
    }

    /// Checks the settings.
    pub fn validate(&self) -> Result<()> {
        if !(1..=Self::MAX_CURRENT_MESSAGE_REPEATS).contains(&self.current_message_repeats) {
            return Err(Error::InvalidParameter {
                name: "query.current_message_repeats",
                reason: format!(
                    "{} is outside 1..={}",
                    self.current_message_repeats,
                    Self::MAX_CURRENT_MESSAGE_REPEATS
                ),
            });
        }
        Ok(())
    }
}

impl Default for QueryRenderParams {
    fn default() -> Self {
        QueryRenderParams {
            mode: QueryMode::default(),
            music_fields: TrackField::BASELINE.to_vec(),
            release_date_as_characters: false,
            missing_track: MissingTrack::default(),
            max_history_turns: None,
            current_message_repeats: Self::DEFAULT_CURRENT_MESSAGE_REPEATS,
            played_tags: false,
            thoughts: false,
            conversation_goal: false,
        }
    }
}

/// Renders a [`TurnContext`] as query text, looking played tracks up in a catalog.
#[derive(Debug, Clone)]
pub struct QueryRenderer {
    params: QueryRenderParams,
    catalog: Arc<Catalog>,
}

impl QueryRenderer {
    /// A renderer with these settings (validated) over `catalog`.
    pub fn new(catalog: Arc<Catalog>, params: QueryRenderParams) -> Result<Self> {
        params.validate()?;
        Ok(QueryRenderer { params, catalog })
    }

    /// The settings.
    pub fn params(&self) -> &QueryRenderParams {
        &self.params
    }

    /// The catalog music messages are looked up in.
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// The query text of one turn.
    pub fn render(&self, turn: &TurnContext) -> Result<String> {
        let params = &self.params;
        let mut lines: Vec<String> = Vec::new();
        if params.conversation_goal
            && let Some(goal) = &turn.conversation_goal
        {
            let parts: Vec<&str> = [&goal.listener_goal, &goal.category, &goal.specificity]
                .into_iter()
                .filter_map(|p| p.as_deref())
                .filter(|p| !p.is_empty())
                .collect();
            if !parts.is_empty() {
                lines.push(format!("goal: {}", parts.join(", ")));
            }
        }
        if params.mode == QueryMode::Conversation {
            let first_turn = params
                .max_history_turns
                .map_or(0, |n| turn.turn_number.saturating_sub(n));
            for message in turn.history.iter().filter(|m| m.turn_number >= first_turn) {
                match message.role {
                    Role::User | Role::Assistant => {
                        lines.push(format!("{}: {}", message.role.as_str(), message.content));
                    }
                    Role::Music => match self.catalog.get(&message.content) {
                        Some(track) => lines.push(format!("assistant: {}", self.track_line(track))),
                        None => match params.missing_track {
                            MissingTrack::Skip => {}
                            MissingTrack::TrackId => {
                                lines.push(format!("assistant: track_id: {}", message.content));
                            }
                            MissingTrack::Error => {
                                return Err(Error::UnknownTrack {
                                    session_id: turn.session_id.clone(),
                                    turn_number: message.turn_number,
                                    track_id: message.content.clone(),
                                });
                            }
                        },
                    },
                }
                if params.thoughts
                    && let Some(thought) = message.thought.as_deref().filter(|t| !t.is_empty())
                {
                    lines.push(format!("thought: {thought}"));
                }
            }
        }
        if params.played_tags {
            let mut tags: Vec<&str> = Vec::new();
            for id in &turn.played_track_ids {
                if let Some(track) = self.catalog.get(id) {
                    for tag in &track.tag_list {
                        if !tags.contains(&tag.as_str()) {
                            tags.push(tag);
                        }
                    }
                }
            }
            if !tags.is_empty() {
                lines.push(format!("played_tags: {}", tags.join(", ")));
            }
        }
        for _ in 0..params.current_message_repeats {
            match params.mode {
                QueryMode::Conversation => lines.push(format!("user: {}", turn.user_message)),
                QueryMode::CurrentMessage => lines.push(turn.user_message.clone()),
            }
        }
        Ok(lines.join("\n"))
    }

    /// `track_id: <id>, <field>: <value>, ...` with lower-cased values, as the baseline's
    /// `MusicCatalogDB.id_to_metadata` writes a played track.
    fn track_line(&self, track: &Track) -> String {
        let mut line = format!("track_id: {}", track.track_id);
        for &field in &self.params.music_fields {
            let value =
                if field == TrackField::ReleaseDate && self.params.release_date_as_characters {
                    let date = track.release_date.as_deref().unwrap_or_default();
                    date.chars()
                        .map(String::from)
                        .collect::<Vec<_>>()
                        .join(", ")
                } else {
                    track.field_text(field)
                };
            line.push_str(", ");
            line.push_str(field.column_name());
            line.push_str(": ");
            line.push_str(&value.to_lowercase());
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use music_crs_core::{ConversationGoal, Message, Session};

    use super::*;

    fn catalog() -> Arc<Catalog> {
        let mut track = Track::new("t1", "Feel This Moment", "Pitbull");
        track.artist_name.push("Christina Aguilera".into());
        track.album_name = vec!["Global Warming".into()];
        track.release_date = Some("2012-11-16".into());
        track.tag_list = vec!["pop".into(), "dance".into()];
        Arc::new(Catalog::new(vec![track]).unwrap())
    }

    fn turn_two(played: &str) -> TurnContext {
        let session = Session {
            session_id: "s1".into(),
            messages: vec![
                Message::new(1, Role::User, "Something to Dance to"),
                Message {
                    thought: Some("wants energy".into()),
                    ..Message::new(1, Role::Music, played)
                },
                Message::new(1, Role::Assistant, "Try this one!"),
                Message::new(2, Role::User, "More like that"),
            ],
            conversation_goal: Some(ConversationGoal {
                category: Some("party".into()),
                listener_goal: Some("dance all night".into()),
                specificity: None,
            }),
            ..Session::default()
        };
        session.turn_contexts().unwrap().pop().unwrap()
    }

    fn render(params: QueryRenderParams, turn: &TurnContext) -> Result<String> {
        QueryRenderer::new(catalog(), params)?.render(turn)
    }

    #[test]
    fn official_recipe_renders_music_as_lowercased_metadata() {
        let text = render(QueryRenderParams::default(), &turn_two("t1")).unwrap();
        assert_eq!(
            text,
            "user: Something to Dance to\n\
             assistant: track_id: t1, track_name: feel this moment, artist_name: pitbull, \
             christina aguilera, album_name: global warming, release_date: 2012-11-16\n\
             assistant: Try this one!\n\
             user: More like that"
        );
    }

    #[test]
    fn baseline_exact_joins_the_release_date_characters() {
        let text = render(QueryRenderParams::baseline_exact(), &turn_two("t1")).unwrap();
        assert!(
            text.contains("release_date: 2, 0, 1, 2, -, 1, 1, -, 1, 6\n"),
            "{text}"
        );
    }

    #[test]
    fn missing_tracks_follow_the_policy() {
        let turn = turn_two("gone");
        let skipped = render(QueryRenderParams::default(), &turn).unwrap();
        assert_eq!(
            skipped,
            "user: Something to Dance to\nassistant: Try this one!\nuser: More like that"
        );
        let id_only = render(
            QueryRenderParams {
                missing_track: MissingTrack::TrackId,
                ..QueryRenderParams::default()
            },
            &turn,
        )
        .unwrap();
        assert!(
            id_only.contains("\nassistant: track_id: gone\n"),
            "{id_only}"
        );
        let err = render(
            QueryRenderParams {
                missing_track: MissingTrack::Error,
                ..QueryRenderParams::default()
            },
            &turn,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("s1") && err.contains("turn 1") && err.contains("gone"),
            "{err}"
        );
    }

    #[test]
    fn current_message_and_weighted_variants() {
        let turn = turn_two("t1");
        assert_eq!(
            render(QueryRenderParams::current_message_only(), &turn).unwrap(),
            "More like that"
        );
        let weighted = render(QueryRenderParams::weighted(3), &turn).unwrap();
        assert!(
            weighted.ends_with("user: More like that\nuser: More like that\nuser: More like that")
        );
        assert_eq!(weighted.matches("More like that").count(), 3);
        assert!(render(QueryRenderParams::weighted(0), &turn).is_err());
    }

    #[test]
    fn optional_context_lines() {
        let params = QueryRenderParams {
            played_tags: true,
            thoughts: true,
            conversation_goal: true,
            max_history_turns: Some(1),
            ..QueryRenderParams::default()
        };
        let text = render(params, &turn_two("t1")).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "goal: dance all night, party");
        assert_eq!(lines[3], "thought: wants energy");
        assert!(lines.contains(&"played_tags: pop, dance"));
        assert_eq!(*lines.last().unwrap(), "user: More like that");
        // A zero-turn window drops the whole history.
        let text = render(
            QueryRenderParams {
                max_history_turns: Some(0),
                ..QueryRenderParams::default()
            },
            &turn_two("t1"),
        )
        .unwrap();
        assert_eq!(text, "user: More like that");
    }

    #[test]
    fn params_round_trip_through_serde() {
        let params = QueryRenderParams::baseline_exact();
        let json = serde_json::to_string(&params).unwrap();
        let back: QueryRenderParams = serde_json::from_str(&json).unwrap();
        assert_eq!(back, params);
        let partial: QueryRenderParams =
            serde_json::from_str(r#"{"mode": "current_message"}"#).unwrap();
        assert_eq!(partial, QueryRenderParams::current_message_only());
    }
}

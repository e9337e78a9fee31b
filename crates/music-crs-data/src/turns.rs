//! From sessions to the turns to predict, and consistency checks against the catalog.

use std::fmt;

use music_crs_core::{Catalog, LabeledTurn, Role, Session, TurnContext};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// What a conversations split asks to predict.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SplitKind {
    /// Every turn of every session (train, dev/test): the gold track is known.
    #[default]
    Full,
    /// One turn per session: each conversation ends with the user message to predict.
    Blind,
}

impl SplitKind {
    /// `Blind` when every session ends with a turn that has only its user message, else
    /// `Full` (also for no sessions).
    pub fn detect(sessions: &[Session]) -> SplitKind {
        let blind = !sessions.is_empty() && sessions.iter().all(ends_with_open_turn);
        if blind {
            SplitKind::Blind
        } else {
            SplitKind::Full
        }
    }
}

/// True when the last turn has a user message and nothing else.
fn ends_with_open_turn(session: &Session) -> bool {
    let Some(last) = session.messages.iter().map(|m| m.turn_number).max() else {
        return false;
    };
    session
        .messages
        .iter()
        .filter(|m| m.turn_number == last)
        .all(|m| m.role == Role::User)
}

/// The turns to predict, in session order then turn order: what a method sees (see
/// [`labeled_turns`] for their answers).
///
/// [`SplitKind::Full`]: every turn of every session ([`Session::turn_contexts`]).
/// [`SplitKind::Blind`]: exactly the last turn of each session
/// ([`Session::final_turn_context`]); a session whose last turn already holds a music or
/// assistant message is an error naming it (the split is not blind).
pub fn turn_contexts(sessions: &[Session], kind: SplitKind) -> Result<Vec<TurnContext>> {
    Ok(labeled_turns(sessions, kind)?
        .into_iter()
        .map(|turn| turn.context)
        .collect())
}

/// [`turn_contexts`] with each turn's label (the track the dataset recommended; none on a
/// blind split), for scoring and training.
pub fn labeled_turns(sessions: &[Session], kind: SplitKind) -> Result<Vec<LabeledTurn>> {
    match kind {
        SplitKind::Full => {
            let mut turns = Vec::with_capacity(sessions.len() * 8);
            for session in sessions {
                turns.extend(session.labeled_turns()?);
            }
            Ok(turns)
        }
        SplitKind::Blind => sessions
            .iter()
            .map(|session| {
                let labeled = session.final_labeled_turn()?;
                if !ends_with_open_turn(session) {
                    return Err(Error::Core(music_crs_core::Error::InvalidTurn {
                        session_id: session.session_id.clone(),
                        turn_number: labeled.context.turn_number,
                        reason: "a blind row must end with the user message to predict, but \
                                 this turn already has its music or assistant message"
                            .into(),
                    }));
                }
                Ok(labeled)
            })
            .collect(),
    }
}

/// A data inconsistency found by a check (not fatal: the caller decides).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// The session.
    pub session_id: String,
    /// The turn.
    pub turn_number: u32,
    /// The track id at fault.
    pub track_id: String,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "session {}, turn {}: track {}: {}",
            self.session_id, self.turn_number, self.track_id, self.reason
        )
    }
}

/// Every music message whose track id the catalog lacks, in session and message order.
pub fn check_tracks_in_catalog(sessions: &[Session], catalog: &Catalog) -> Vec<Problem> {
    sessions
        .iter()
        .flat_map(|session| {
            session
                .messages
                .iter()
                .filter(|m| m.role == Role::Music && !catalog.contains(&m.content))
                .map(|m| Problem {
                    session_id: session.session_id.clone(),
                    turn_number: m.turn_number,
                    track_id: m.content.clone(),
                    reason: "not in the catalog".into(),
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use music_crs_core::{Message, Track};

    use super::*;

    fn session(id: &str, messages: Vec<Message>) -> Session {
        Session {
            session_id: id.into(),
            user_id: "u".into(),
            messages,
            ..Session::default()
        }
    }

    fn full(turns: u32) -> Vec<Message> {
        (1..=turns)
            .flat_map(|t| {
                [
                    Message::new(t, Role::User, format!("ask {t}")),
                    Message::new(t, Role::Music, format!("t{t}")),
                    Message::new(t, Role::Assistant, format!("reply {t}")),
                ]
            })
            .collect()
    }

    #[test]
    fn full_split_yields_every_turn_blind_only_the_last() {
        let full_sessions = vec![session("a", full(3)), session("b", full(2))];
        let turns = turn_contexts(&full_sessions, SplitKind::Full).unwrap();
        assert_eq!(turns.len(), 5);
        assert_eq!(turns[3].session_id, "b");
        let labeled = labeled_turns(&full_sessions, SplitKind::Full).unwrap();
        assert_eq!(labeled[4].gold_track_id.as_deref(), Some("t2"));
        assert_eq!(labeled[3].context, turns[3]);
        assert_eq!(SplitKind::detect(&full_sessions), SplitKind::Full);

        let mut open = full(2);
        open.push(Message::new(3, Role::User, "and now?"));
        let blind = vec![
            session("c", open),
            session("d", vec![Message::new(1, Role::User, "hi")]),
        ];
        assert_eq!(SplitKind::detect(&blind), SplitKind::Blind);
        let turns = turn_contexts(&blind, SplitKind::Blind).unwrap();
        assert_eq!(turns.len(), 2);
        let labeled = labeled_turns(&blind, SplitKind::Blind).unwrap();
        assert_eq!(
            (turns[0].turn_number, labeled[0].gold_track_id.as_deref()),
            (3, None)
        );
        assert_eq!(turns[0].played_track_ids, vec!["t1", "t2"]);
        assert_eq!(turns[1].turn_number, 1);
    }

    #[test]
    fn blind_kind_on_a_full_row_names_the_session() {
        let err = turn_contexts(&[session("s9", full(2))], SplitKind::Blind).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("session s9, turn 2"), "{text}");
    }

    #[test]
    fn tracks_missing_from_the_catalog_are_reported() {
        let catalog = Catalog::new(vec![Track::new("t1", "a", "b")]).unwrap();
        let problems = check_tracks_in_catalog(&[session("s", full(2))], &catalog);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].turn_number, 2);
        assert_eq!(problems[0].track_id, "t2");
        assert!(problems[0].to_string().contains("session s, turn 2"));
    }
}

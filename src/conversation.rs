//! A live conversation for interactive chat: the history grows by one turn per reply.

use music_crs_core::{Message, Role, TurnContext, UserProfile};

use crate::{Crs, Reply, Result};

/// The state of an interactive session: the messages so far and who is talking.
///
/// Each [`Conversation::say`] builds the turn context from the history, asks the recommender,
/// then appends the user message, the recommended track (as a `music` message) and the reply,
/// exactly as a dataset session records a turn.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Conversation {
    session_id: String,
    user_id: String,
    user_profile: Option<UserProfile>,
    messages: Vec<Message>,
}

impl Conversation {
    /// A new conversation; `user_id` may be empty (no personalisation).
    pub fn new(session_id: impl Into<String>, user_id: impl Into<String>) -> Self {
        Conversation {
            session_id: session_id.into(),
            user_id: user_id.into(),
            ..Conversation::default()
        }
    }

    /// Sets the listener's profile explicitly (otherwise the recommender's users table is
    /// consulted).
    pub fn with_profile(mut self, profile: UserProfile) -> Self {
        self.user_profile = Some(profile);
        self
    }

    /// Starts from earlier turns: `messages` in order, each with its turn number (as a
    /// dataset session records them: `user`, then `music`, then `assistant`).
    pub fn with_messages(mut self, messages: Vec<Message>) -> Self {
        self.messages = messages;
        self
    }

    /// The messages so far.
    pub fn messages(&self) -> &[Message] {
        &self.messages
    }

    /// The number of the next turn (1-based).
    pub fn next_turn_number(&self) -> u32 {
        self.messages.last().map_or(1, |m| m.turn_number + 1)
    }

    /// The context of the next turn, should the listener say `user_message`.
    pub fn turn_context(&self, user_message: &str) -> TurnContext {
        TurnContext {
            session_id: self.session_id.clone(),
            user_id: self.user_id.clone(),
            turn_number: self.next_turn_number(),
            history: self.messages.clone(),
            user_message: user_message.to_string(),
            user_profile: self.user_profile.clone(),
            conversation_goal: None,
            played_track_ids: self
                .messages
                .iter()
                .filter(|m| m.role == Role::Music)
                .map(|m| m.content.clone())
                .collect(),
        }
    }

    /// Answers `user_message` and records the turn.
    pub fn say(&mut self, crs: &Crs, user_message: &str) -> Result<Reply> {
        let reply = crs.chat(&self.turn_context(user_message))?;
        self.record(user_message, &reply);
        Ok(reply)
    }

    /// Appends one turn: the user message, the first recommended track, the reply.
    pub fn record(&mut self, user_message: &str, reply: &Reply) {
        let turn = self.next_turn_number();
        self.messages
            .push(Message::new(turn, Role::User, user_message));
        if let Some(first) = reply.tracks.first() {
            self.messages
                .push(Message::new(turn, Role::Music, first.track_id.clone()));
        }
        self.messages
            .push(Message::new(turn, Role::Assistant, reply.response.clone()));
    }
}

#[cfg(test)]
mod tests {
    use music_crs_core::ScoredTrack;

    use super::*;

    #[test]
    fn turns_accumulate_like_a_dataset_session() {
        let mut conversation = Conversation::new("live", "u");
        assert_eq!(conversation.next_turn_number(), 1);
        let reply = Reply {
            tracks: vec![ScoredTrack::new("t1", 1.0), ScoredTrack::new("t2", 0.5)],
            response: "Try t1".into(),
            check: Default::default(),
            replaced: false,
        };
        conversation.record("something calm", &reply);
        let next = conversation.turn_context("more");
        assert_eq!(next.turn_number, 2);
        assert_eq!(next.history.len(), 3);
        assert_eq!(next.history[1].role, Role::Music);
        assert_eq!(next.played_track_ids, vec!["t1".to_string()]);
        assert_eq!(next.user_message, "more");
        assert_eq!(next.user_id, "u");
    }
}

//! Sessions (multi-turn conversations), their messages, and the context of one turn.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The listener.
    User,
    /// The recommended track: the message content is a track id.
    Music,
    /// The recommender's natural-language reply.
    Assistant,
}

impl Role {
    /// The role as written in the datasets (`user`, `music`, `assistant`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Music => "music",
            Role::Assistant => "assistant",
        }
    }

    /// Parses a dataset role string.
    pub fn parse(role: &str) -> Option<Role> {
        match role {
            "user" => Some(Role::User),
            "music" => Some(Role::Music),
            "assistant" => Some(Role::Assistant),
            _ => None,
        }
    }

    /// Position within a turn: user, then music, then assistant.
    fn order(self) -> u8 {
        match self {
            Role::User => 0,
            Role::Music => 1,
            Role::Assistant => 2,
        }
    }
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// The turn it belongs to (1-based).
    pub turn_number: u32,
    /// Who wrote it.
    pub role: Role,
    /// The text, or the track id for [`Role::Music`].
    pub content: String,
    /// The writer's hidden reasoning, when the dataset has it.
    #[serde(default)]
    pub thought: Option<String>,
}

impl Message {
    /// A message without a thought.
    pub fn new(turn_number: u32, role: Role, content: impl Into<String>) -> Self {
        Message {
            turn_number,
            role,
            content: content.into(),
            thought: None,
        }
    }
}

/// A listener's profile. Every field may be missing (blind B has none at all).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UserProfile {
    /// The user id, when the profile carries it.
    #[serde(default)]
    pub user_id: Option<String>,
    /// Age in years.
    #[serde(default)]
    pub age: Option<i64>,
    /// Age bracket, e.g. "25-34".
    #[serde(default)]
    pub age_group: Option<String>,
    /// ISO country code.
    #[serde(default)]
    pub country_code: Option<String>,
    /// Country name.
    #[serde(default)]
    pub country_name: Option<String>,
    /// Gender as the dataset records it.
    #[serde(default)]
    pub gender: Option<String>,
    /// Preferred language.
    #[serde(default)]
    pub preferred_language: Option<String>,
    /// Preferred musical culture.
    #[serde(default)]
    pub preferred_musical_culture: Option<String>,
    /// The user split (e.g. warm / cold).
    #[serde(default)]
    pub user_split: Option<String>,
}

impl UserProfile {
    /// True when no field that personalisation uses is known.
    pub fn is_empty(&self) -> bool {
        self.age.is_none()
            && self.age_group.is_none()
            && self.country_code.is_none()
            && self.country_name.is_none()
            && self.gender.is_none()
            && self.preferred_language.is_none()
            && self.preferred_musical_culture.is_none()
    }
}

/// What the listener wants from the whole conversation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConversationGoal {
    /// Goal category.
    #[serde(default)]
    pub category: Option<String>,
    /// The listener's goal in words.
    #[serde(default)]
    pub listener_goal: Option<String>,
    /// How specific the goal is.
    #[serde(default)]
    pub specificity: Option<String>,
}

/// The dataset's assessment of goal progress at one turn.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GoalProgress {
    /// The turn assessed.
    pub turn_number: u32,
    /// The assessment (null on turn 1).
    #[serde(default)]
    pub assessment: Option<String>,
}

/// One conversation: a row of a TalkPlayData conversations split.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Session {
    /// Unique session id.
    pub session_id: String,
    /// The listener's id; empty in blind B.
    #[serde(default)]
    pub user_id: String,
    /// `YYYY-MM-DD`, when known.
    #[serde(default)]
    pub session_date: Option<String>,
    /// The listener's profile, when known.
    #[serde(default)]
    pub user_profile: Option<UserProfile>,
    /// The conversation goal, when known.
    #[serde(default)]
    pub conversation_goal: Option<ConversationGoal>,
    /// Messages in dataset order (user, music, assistant per turn).
    #[serde(default)]
    pub messages: Vec<Message>,
    /// Goal progress per turn, when known.
    #[serde(default)]
    pub goal_progress: Vec<GoalProgress>,
}

impl Session {
    /// The turn numbers that have a user message, ascending and unique.
    pub fn turn_numbers(&self) -> Vec<u32> {
        let mut turns: Vec<u32> = self
            .messages
            .iter()
            .filter(|m| m.role == Role::User)
            .map(|m| m.turn_number)
            .collect();
        turns.sort_unstable();
        turns.dedup();
        turns
    }

    /// One [`TurnContext`] per turn of the conversation, in turn order: what a method sees.
    ///
    /// Fails, naming the session and turn, when a turn has music or assistant messages but no
    /// user message, or more than one user message.
    pub fn turn_contexts(&self) -> Result<Vec<TurnContext>> {
        Ok(self
            .labeled_turns()?
            .into_iter()
            .map(|turn| turn.context)
            .collect())
    }

    /// One [`LabeledTurn`] per turn, in turn order: the context with the track the dataset
    /// recommended at that turn, for training and scoring.
    pub fn labeled_turns(&self) -> Result<Vec<LabeledTurn>> {
        let messages = self.ordered_messages();
        self.check_turns(&messages)?;
        self.turn_numbers()
            .into_iter()
            .map(|turn| self.labeled_at(&messages, turn))
            .collect()
    }

    /// The context of the last turn only: what a blind-set row asks to predict (its
    /// conversation ends with that turn's user message).
    pub fn final_turn_context(&self) -> Result<TurnContext> {
        Ok(self.final_labeled_turn()?.context)
    }

    /// [`Session::final_turn_context`] with its label (none on a blind row).
    pub fn final_labeled_turn(&self) -> Result<LabeledTurn> {
        let messages = self.ordered_messages();
        self.check_turns(&messages)?;
        let last = self
            .turn_numbers()
            .pop()
            .ok_or_else(|| Error::InvalidTurn {
                session_id: self.session_id.clone(),
                turn_number: 0,
                reason: "the conversation has no user message".into(),
            })?;
        self.labeled_at(&messages, last)
    }

    fn ordered_messages(&self) -> Vec<&Message> {
        let mut messages: Vec<&Message> = self.messages.iter().collect();
        // Stable: keeps the dataset's order among messages of the same turn and role.
        messages.sort_by_key(|m| (m.turn_number, m.role.order()));
        messages
    }

    fn check_turns(&self, messages: &[&Message]) -> Result<()> {
        let mut turn_numbers: Vec<u32> = messages.iter().map(|m| m.turn_number).collect();
        turn_numbers.dedup();
        for turn in turn_numbers {
            let users = messages
                .iter()
                .filter(|m| m.turn_number == turn && m.role == Role::User)
                .count();
            let reason = match users {
                1 => continue,
                0 => "the turn has no user message".to_string(),
                n => format!("the turn has {n} user messages, expected one"),
            };
            return Err(Error::InvalidTurn {
                session_id: self.session_id.clone(),
                turn_number: turn,
                reason,
            });
        }
        Ok(())
    }

    fn labeled_at(&self, messages: &[&Message], turn: u32) -> Result<LabeledTurn> {
        let history: Vec<Message> = messages
            .iter()
            .filter(|m| m.turn_number < turn)
            .map(|m| (*m).clone())
            .collect();
        let user_message = messages
            .iter()
            .find(|m| m.turn_number == turn && m.role == Role::User)
            .map(|m| m.content.clone())
            .ok_or_else(|| Error::InvalidTurn {
                session_id: self.session_id.clone(),
                turn_number: turn,
                reason: "the turn has no user message".into(),
            })?;
        let played_track_ids = history
            .iter()
            .filter(|m| m.role == Role::Music)
            .map(|m| m.content.clone())
            .collect();
        let gold_track_id = messages
            .iter()
            .find(|m| m.turn_number == turn && m.role == Role::Music)
            .map(|m| m.content.clone());
        let context = TurnContext {
            session_id: self.session_id.clone(),
            user_id: self.user_id.clone(),
            turn_number: turn,
            history,
            user_message,
            user_profile: self.user_profile.clone(),
            conversation_goal: self.conversation_goal.clone(),
            played_track_ids,
        };
        Ok(LabeledTurn {
            context,
            gold_track_id,
        })
    }
}

/// Everything known when predicting one turn: the query of every retriever and the input of
/// every generator. It holds no answer: the track the dataset recommended at the turn lives
/// in [`LabeledTurn`], which only training and scoring read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TurnContext {
    /// The session.
    pub session_id: String,
    /// The listener's id; may be empty.
    pub user_id: String,
    /// The turn to predict (1-based).
    pub turn_number: u32,
    /// All messages of earlier turns, in order.
    pub history: Vec<Message>,
    /// The listener's message at this turn.
    pub user_message: String,
    /// The listener's profile, when known.
    pub user_profile: Option<UserProfile>,
    /// The conversation goal, when known.
    pub conversation_goal: Option<ConversationGoal>,
    /// Track ids recommended in earlier turns, oldest first.
    pub played_track_ids: Vec<String>,
}

/// A turn with its label: the [`TurnContext`] a method sees and the track the dataset
/// recommended at that turn. Retrievers and generators take `&TurnContext` only, so they
/// cannot read the answer; training and scoring take the labeled turn.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LabeledTurn {
    /// What the method sees.
    pub context: TurnContext,
    /// The track the dataset recommended at this turn (none on a blind row).
    pub gold_track_id: Option<String>,
}

impl LabeledTurn {
    /// The contexts of `turns`, in order, without their labels (what to predict).
    pub fn contexts(turns: &[LabeledTurn]) -> Vec<TurnContext> {
        turns.iter().map(|turn| turn.context.clone()).collect()
    }
}

impl TurnContext {
    /// A first-turn context with just a user message (handy for chat and tests).
    pub fn from_message(user_message: impl Into<String>) -> Self {
        TurnContext {
            turn_number: 1,
            user_message: user_message.into(),
            ..TurnContext::default()
        }
    }

    /// The profile, when it has any usable field.
    pub fn profile(&self) -> Option<&UserProfile> {
        self.user_profile.as_ref().filter(|p| !p.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(messages: Vec<Message>) -> Session {
        Session {
            session_id: "s".into(),
            user_id: "u".into(),
            messages,
            ..Session::default()
        }
    }

    fn full_turn(turn: u32, track: &str) -> Vec<Message> {
        vec![
            Message::new(turn, Role::User, format!("ask {turn}")),
            Message::new(turn, Role::Music, track),
            Message::new(turn, Role::Assistant, format!("reply {turn}")),
        ]
    }

    #[test]
    fn contexts_hold_history_played_and_gold() {
        let mut messages = full_turn(1, "a");
        messages.extend(full_turn(2, "b"));
        messages.extend(full_turn(3, "c"));
        let turns = session(messages.clone()).turn_contexts().unwrap();
        assert_eq!(turns.len(), 3);
        assert_eq!(turns[2].history.len(), 6);
        assert_eq!(turns[2].played_track_ids, vec!["a", "b"]);
        let labeled = session(messages.clone()).labeled_turns().unwrap();
        assert_eq!(labeled[2].gold_track_id.as_deref(), Some("c"));
        assert_eq!(labeled[2].context, turns[2]);
        assert_eq!(turns[2].user_message, "ask 3");
        assert!(turns[0].history.is_empty());
    }

    #[test]
    fn blind_row_yields_its_final_turn() {
        let mut messages = full_turn(1, "a");
        messages.push(Message::new(2, Role::User, "now?"));
        let labeled = session(messages).final_labeled_turn().unwrap();
        assert_eq!(labeled.gold_track_id, None);
        let turn = labeled.context;
        assert_eq!(turn.turn_number, 2);
        assert_eq!(turn.played_track_ids, vec!["a"]);
    }

    #[test]
    fn turn_without_user_message_names_session_and_turn() {
        let mut messages = full_turn(1, "a");
        messages.push(Message::new(2, Role::Music, "b"));
        let err = session(messages).turn_contexts().unwrap_err().to_string();
        assert!(err.contains("session s, turn 2"), "{err}");
    }

    #[test]
    fn unordered_messages_are_ordered_by_turn_then_role() {
        let mut messages = full_turn(2, "b");
        messages.extend(full_turn(1, "a"));
        messages.reverse();
        let turns = session(messages).turn_contexts().unwrap();
        assert_eq!(turns[1].history[0].role, Role::User);
        assert_eq!(turns[1].history[1].content, "a");
    }
}

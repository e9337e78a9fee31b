//! The chat an LLM sees for one turn, built the way the official baseline builds it.
//!
//! The system message is the role-play text followed by the response-generation
//! instructions, then, when the listener has a profile, the personalisation text and one
//! `field: value` line per known field (age group, gender, country). Earlier turns follow in
//! order; a track played at an earlier turn appears as an assistant message carrying that
//! track's metadata. The current user message comes next, and last an assistant message with
//! the recommended track's metadata, which the model then explains.
//!
//! The texts live in `prompts/*.txt` beside the crate sources, so they can be read and
//! changed without touching code.

use music_crs_core::{GenerationRequest, Role, Track, UserProfile};
use serde::{Deserialize, Serialize};

/// The role-play instruction (first part of the system message).
pub const ROLEPLAY_PROMPT: &str = include_str!("../prompts/roleplay.txt");
/// How to write the reply (second part of the system message).
pub const RESPONSE_GENERATION_PROMPT: &str = include_str!("../prompts/response_generation.txt");
/// The personalisation instruction, followed by the profile lines when a profile is known.
pub const PERSONALIZATION_PROMPT: &str = include_str!("../prompts/personalization.txt");

/// How many retrieved tracks the track block (the chat's last message) shows: the
/// best-ranked one, as the baseline does.
pub const TRACKS_IN_PROMPT: usize = 1;

/// Who speaks in a chat message given to a language model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChatRole {
    /// Instructions.
    System,
    /// The listener.
    User,
    /// The recommender (replies and track metadata).
    Assistant,
}

impl ChatRole {
    /// The role name chat templates use.
    pub fn as_str(self) -> &'static str {
        match self {
            ChatRole::System => "system",
            ChatRole::User => "user",
            ChatRole::Assistant => "assistant",
        }
    }
}

/// One message of the chat given to a language model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Who speaks.
    pub role: ChatRole,
    /// The text.
    pub content: String,
}

impl ChatMessage {
    /// A message.
    pub fn new(role: ChatRole, content: impl Into<String>) -> Self {
        ChatMessage {
            role,
            content: content.into(),
        }
    }
}

/// Options of the baseline prompt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PromptParams {
    /// Lowercase the metadata values, as the baseline does.
    pub lowercase_metadata: bool,
    /// Add the personalisation block when the listener has a profile.
    pub personalize: bool,
}

impl Default for PromptParams {
    fn default() -> Self {
        PromptParams {
            lowercase_metadata: true,
            personalize: true,
        }
    }
}

/// The system message: role play, response instructions and, when `profile` has a usable
/// field, the personalisation block.
pub fn system_prompt(profile: Option<&UserProfile>, params: &PromptParams) -> String {
    let mut prompt = String::from(ROLEPLAY_PROMPT);
    prompt.push_str(RESPONSE_GENERATION_PROMPT);
    let lines = profile
        .filter(|_| params.personalize)
        .map(profile_lines)
        .unwrap_or_default();
    if !lines.is_empty() {
        prompt.push_str(PERSONALIZATION_PROMPT);
        prompt.push('\n');
        prompt.push_str(&lines.join("\n"));
    }
    prompt
}

/// `age_group: ...`, `gender: ...`, `country_name: ...` for the fields the profile has.
fn profile_lines(profile: &UserProfile) -> Vec<String> {
    let country = profile
        .country_name
        .as_deref()
        .or(profile.country_code.as_deref());
    [
        ("age_group", profile.age_group.as_deref()),
        ("gender", profile.gender.as_deref()),
        ("country_name", country),
    ]
    .into_iter()
    .filter_map(|(key, value)| {
        let value = value?.trim();
        (!value.is_empty()).then(|| format!("{key}: {value}"))
    })
    .collect()
}

/// A track as the baseline shows it to the model:
/// `track_id: ..., track_name: ..., artist_name: ..., album_name: ..., release_date: ...`.
///
/// Unlike the baseline, the release date is written as is (the baseline joins its
/// characters with commas).
pub fn track_metadata(track: &Track, params: &PromptParams) -> String {
    let case = |text: String| {
        if params.lowercase_metadata {
            text.to_lowercase()
        } else {
            text
        }
    };
    format!(
        "track_id: {}, track_name: {}, artist_name: {}, album_name: {}, release_date: {}",
        track.track_id,
        case(track.name()),
        case(track.artist()),
        case(track.album()),
        track.release_date.as_deref().unwrap_or_default()
    )
}

/// The whole chat for one request, ending with the recommended track's metadata as an
/// assistant message (a chat template then adds the generation prompt).
pub fn build_chat(request: &GenerationRequest, params: &PromptParams) -> Vec<ChatMessage> {
    let context = &request.context;
    let mut chat = vec![ChatMessage::new(
        ChatRole::System,
        system_prompt(context.profile(), params),
    )];
    for message in &context.history {
        let (role, content) = match message.role {
            Role::User => (ChatRole::User, message.content.clone()),
            Role::Assistant => (ChatRole::Assistant, message.content.clone()),
            Role::Music => (
                ChatRole::Assistant,
                played_metadata(request, &message.content, params),
            ),
        };
        chat.push(ChatMessage::new(role, content));
    }
    chat.push(ChatMessage::new(
        ChatRole::User,
        context.user_message.clone(),
    ));
    for track in request.recommended.iter().take(TRACKS_IN_PROMPT) {
        chat.push(ChatMessage::new(
            ChatRole::Assistant,
            track_metadata(track, params),
        ));
    }
    chat
}

/// Metadata of a played track; just its id when the catalog lacks it.
fn played_metadata(request: &GenerationRequest, track_id: &str, params: &PromptParams) -> String {
    request
        .played
        .iter()
        .find(|track| track.track_id == track_id)
        .map(|track| track_metadata(track, params))
        .unwrap_or_else(|| format!("track_id: {track_id}"))
}

#[cfg(test)]
mod tests {
    use music_crs_core::{Message, TurnContext};

    use super::*;

    fn track() -> Track {
        let mut track = Track::new("t1", "Peace Piece", "Bill Evans");
        track.album_name = vec!["Everybody Digs Bill Evans".into()];
        track.release_date = Some("1959-01-01".into());
        track
    }

    #[test]
    fn metadata_keeps_the_release_date_whole() {
        assert_eq!(
            track_metadata(&track(), &PromptParams::default()),
            "track_id: t1, track_name: peace piece, artist_name: bill evans, \
             album_name: everybody digs bill evans, release_date: 1959-01-01"
        );
        let cased = PromptParams {
            lowercase_metadata: false,
            ..PromptParams::default()
        };
        assert!(track_metadata(&track(), &cased).contains("track_name: Peace Piece"));
    }

    #[test]
    fn system_prompt_has_profile_block_only_with_a_profile() {
        let plain = system_prompt(None, &PromptParams::default());
        assert_eq!(
            plain,
            format!("{ROLEPLAY_PROMPT}{RESPONSE_GENERATION_PROMPT}")
        );
        let profile = UserProfile {
            age_group: Some("25-34".into()),
            gender: Some("female".into()),
            country_name: Some("Brazil".into()),
            ..UserProfile::default()
        };
        let personal = system_prompt(Some(&profile), &PromptParams::default());
        assert!(personal.starts_with(&plain));
        assert!(personal.ends_with(&format!(
            "{PERSONALIZATION_PROMPT}\nage_group: 25-34\ngender: female\ncountry_name: Brazil"
        )));
    }

    #[test]
    fn chat_puts_played_tracks_as_assistant_metadata() {
        let mut context = TurnContext::from_message("more like that");
        context.turn_number = 2;
        context.history = vec![
            Message::new(1, Role::User, "calm jazz"),
            Message::new(1, Role::Music, "t1"),
            Message::new(1, Role::Assistant, "Try Peace Piece."),
        ];
        context.played_track_ids = vec!["t1".into()];
        let request = GenerationRequest {
            context,
            recommended: vec![Track::new("t2", "Blue in Green", "Miles Davis")],
            played: vec![track()],
        };
        let chat = build_chat(&request, &PromptParams::default());
        let roles: Vec<ChatRole> = chat.iter().map(|m| m.role).collect();
        use ChatRole::*;
        assert_eq!(roles, [System, User, Assistant, Assistant, User, Assistant]);
        assert!(
            chat[2]
                .content
                .starts_with("track_id: t1, track_name: peace piece")
        );
        assert_eq!(chat[4].content, "more like that");
        assert!(chat[5].content.contains("artist_name: miles davis"));
    }
}

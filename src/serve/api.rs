//! The JSON shapes of the API and the checks that turn a request's messages into a
//! [`Conversation`].

use music_crs_core::{Catalog, Message, Role, Track, TurnContext, UserProfile};
use music_crs_generate::reply_check::ReplyCheck;
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::limits::Limits;

use crate::{Conversation, Crs, Reply};

/// One message of a conversation as the API takes and gives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiMessage {
    /// `user`, `music` (the content is a track id) or `assistant`.
    pub role: Role,
    /// The text, or the track id of a `music` message.
    pub content: String,
}

/// `POST /v1/recommend`: the conversation so far, ending with the listener's new message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecommendRequest {
    /// Earlier turns (`user`, then the `music` track recommended, then the `assistant`
    /// reply), then the listener's new `user` message.
    pub messages: Vec<ApiMessage>,
    /// The listener, when known to the dataset's users table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Tracks to return (1 to the method's `k`; default: all of them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k: Option<usize>,
}

impl RecommendRequest {
    /// The request of a dataset turn: its earlier messages, then its user message, with its
    /// user id (none when empty). Load tests and benchmarks replay a split this way.
    pub fn from_turn(turn: &TurnContext, k: Option<usize>) -> Self {
        let message = |role: Role, content: &str| ApiMessage {
            role,
            content: content.to_string(),
        };
        let mut messages: Vec<ApiMessage> = turn
            .history
            .iter()
            .map(|m| message(m.role, &m.content))
            .collect();
        messages.push(message(Role::User, &turn.user_message));
        RecommendRequest {
            messages,
            user_id: Some(turn.user_id.clone()).filter(|id| !id.is_empty()),
            k,
        }
    }
}

/// `POST /v1/sessions`: start a conversation the server keeps.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateSessionRequest {
    /// The listener, when known to the dataset's users table.
    #[serde(default)]
    pub user_id: Option<String>,
}

/// `POST /v1/sessions/{id}/messages`: the listener's next message.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionMessageRequest {
    /// What the listener says.
    pub content: String,
    /// Tracks to return (1 to the method's `k`; default: all of them).
    #[serde(default)]
    pub k: Option<usize>,
}

/// A catalog track as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrackView {
    /// The catalog id.
    pub track_id: String,
    /// The title (several joined with ", ").
    pub title: String,
    /// The artists.
    pub artist: String,
    /// The albums.
    pub album: String,
    /// Free-form tags.
    pub tags: Vec<String>,
    /// The release date as the catalog writes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release_date: Option<String>,
    /// The catalog's popularity, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub popularity: Option<f64>,
    /// An `open.spotify.com` link, for Spotify ids.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spotify_url: Option<String>,
}

impl TrackView {
    /// The view of a catalog track.
    pub fn of(track: &Track) -> Self {
        TrackView {
            track_id: track.track_id.clone(),
            title: track.name(),
            artist: track.artist(),
            album: track.album(),
            tags: track.tag_list.clone(),
            release_date: track.release_date.clone(),
            popularity: track.popularity,
            spotify_url: crate::spotify_link(&track.track_id),
        }
    }
}

/// One recommended track: its rank, score and metadata.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecommendedTrack {
    /// 1 for the best.
    pub rank: usize,
    /// The retriever's score (comparable within one answer only).
    pub score: f32,
    /// The track.
    #[serde(flatten)]
    pub track: TrackView,
}

/// The answer to one turn.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecommendResponse {
    /// The session, for `/v1/sessions/{id}/messages`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// The turn answered (1-based).
    pub turn_number: u32,
    /// The reply, grounded on the first track.
    pub reply: String,
    /// What the reply check found in the generator's own text: `{"status": "ok"}`,
    /// `{"status": "empty"}` or `{"status": "degenerate", ...}` with the repetition.
    pub reply_check: ReplyCheck,
    /// True when `reply` is the template reply sent in place of a flawed one.
    pub reply_replaced: bool,
    /// The tracks, best first.
    pub tracks: Vec<RecommendedTrack>,
}

impl RecommendResponse {
    /// The response for `reply`, keeping its first `k` tracks.
    pub fn new(crs: &Crs, turn_number: u32, reply: Reply, k: usize) -> Self {
        let tracks = reply
            .tracks
            .iter()
            .take(k)
            .enumerate()
            .map(|(i, scored)| RecommendedTrack {
                rank: i + 1,
                score: scored.score,
                track: crs.catalog().get(&scored.track_id).map_or_else(
                    || TrackView {
                        track_id: scored.track_id.clone(),
                        title: String::new(),
                        artist: String::new(),
                        album: String::new(),
                        tags: Vec::new(),
                        release_date: None,
                        popularity: None,
                        spotify_url: None,
                    },
                    TrackView::of,
                ),
            })
            .collect();
        RecommendResponse {
            session_id: None,
            turn_number,
            reply: reply.response,
            reply_check: reply.check,
            reply_replaced: reply.replaced,
            tracks,
        }
    }
}

/// A kept session and its messages.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionView {
    /// The id to post messages to.
    pub session_id: String,
    /// The listener (empty: anonymous).
    pub user_id: String,
    /// The messages so far, oldest first.
    pub messages: Vec<SessionMessage>,
}

/// A message of a kept session.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionMessage {
    /// The turn it belongs to.
    pub turn_number: u32,
    /// Who wrote it.
    pub role: Role,
    /// The text, or the track id of a `music` message.
    pub content: String,
}

impl SessionView {
    /// The view of a conversation.
    pub fn of(session_id: &str, user_id: &str, conversation: &Conversation) -> Self {
        SessionView {
            session_id: session_id.to_string(),
            user_id: user_id.to_string(),
            messages: conversation
                .messages()
                .iter()
                .map(|m| SessionMessage {
                    turn_number: m.turn_number,
                    role: m.role,
                    content: m.content.clone(),
                })
                .collect(),
        }
    }
}

/// A listener the dataset knows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UserView {
    /// The id.
    pub user_id: String,
    /// The profile's fields.
    pub profile: UserProfile,
}

/// `GET /v1/users`: one page of user ids, sorted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UserList {
    /// Users the dataset knows.
    pub total: usize,
    /// Index of the first id listed.
    pub offset: usize,
    /// The ids.
    pub user_ids: Vec<String>,
}

/// The query of `GET /v1/users`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserListQuery {
    /// Ids to skip.
    #[serde(default)]
    pub offset: Option<usize>,
    /// Ids to list (at most the server's page size, which is the default).
    #[serde(default)]
    pub limit: Option<usize>,
}

/// `GET /healthz`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Health {
    /// Always `ok` when the server answers.
    pub status: &'static str,
    /// The method's name (its config's `tid`).
    pub method: String,
    /// The retriever's name.
    pub retriever: String,
    /// The generator's name.
    pub generator: String,
    /// Tracks in the catalog.
    pub tracks: usize,
    /// Users in the users table.
    pub users: usize,
    /// Most tracks per answer.
    pub k: usize,
    /// Sessions kept.
    pub sessions: usize,
}

/// Checks `k` against the method's: `None` means all of them.
pub fn check_k(k: Option<usize>, top_k: usize) -> Result<usize, ApiError> {
    match k {
        None => Ok(top_k),
        Some(k) if (1..=top_k).contains(&k) => Ok(k),
        Some(k) => Err(ApiError::invalid(
            "k",
            "invalid_field",
            format!("k = {k} is outside 1..={top_k}"),
        )),
    }
}

/// Checks a user id: absent or empty means anonymous; otherwise the users table must know it.
pub fn check_user(crs: &Crs, user_id: Option<&str>) -> Result<String, ApiError> {
    match user_id {
        None | Some("") => Ok(String::new()),
        Some(id) if crs.user(id).is_some() => Ok(id.to_string()),
        Some(id) => Err(ApiError::invalid(
            "user_id",
            "unknown_user",
            format!("the dataset's users table has no user {id:?}"),
        )),
    }
}

/// Checks the listener's new message: not blank, not too long.
pub fn check_user_message(content: &str, field: &str, limits: &Limits) -> Result<(), ApiError> {
    check_length(content, field, limits)?;
    if content.trim().is_empty() {
        return Err(ApiError::invalid(
            field,
            "empty_message",
            "the message is empty",
        ));
    }
    Ok(())
}

fn check_length(content: &str, field: &str, limits: &Limits) -> Result<(), ApiError> {
    let chars = content.chars().count();
    if chars > limits.max_message_chars {
        return Err(ApiError::invalid(
            field,
            "message_too_long",
            format!(
                "the message has {chars} characters; at most {} are accepted",
                limits.max_message_chars
            ),
        ));
    }
    Ok(())
}

/// Turns a request's messages into the conversation before its last message and that message.
///
/// Each `user` message starts a turn; `music` and `assistant` messages belong to the turn of the
/// `user` message before them. The first and the last message must be the listener's, every
/// `music` message must name a catalog track, and no message may exceed the limits.
pub fn conversation_of(
    messages: Vec<ApiMessage>,
    user_id: &str,
    catalog: &Catalog,
    limits: &Limits,
) -> Result<(Conversation, String), ApiError> {
    if messages.len() > limits.max_messages {
        return Err(ApiError::invalid(
            "messages",
            "too_many_messages",
            format!(
                "{} messages; at most {} are accepted",
                messages.len(),
                limits.max_messages
            ),
        ));
    }
    let last = messages.len().checked_sub(1).ok_or_else(|| {
        ApiError::invalid(
            "messages",
            "empty_conversation",
            "the conversation has no message: end it with the listener's (`user`) message",
        )
    })?;
    let mut history = Vec::with_capacity(last);
    let mut turn = 0u32;
    let mut current = String::new();
    for (i, message) in messages.into_iter().enumerate() {
        let field = format!("messages[{i}]");
        check_length(&message.content, &format!("{field}.content"), limits)?;
        if i == last {
            if message.role != Role::User {
                return Err(ApiError::invalid(
                    format!("{field}.role"),
                    "invalid_conversation",
                    "the last message must be the listener's (`user`): it is the one answered",
                ));
            }
            check_user_message(&message.content, &format!("{field}.content"), limits)?;
            current = message.content;
            break;
        }
        match message.role {
            Role::User => turn += 1,
            _ if turn == 0 => {
                return Err(ApiError::invalid(
                    format!("{field}.role"),
                    "invalid_conversation",
                    "the conversation must start with the listener's (`user`) message",
                ));
            }
            Role::Music if !catalog.contains(&message.content) => {
                return Err(ApiError::invalid(
                    format!("{field}.content"),
                    "unknown_track",
                    format!("the catalog has no track {:?}", message.content),
                ));
            }
            Role::Music | Role::Assistant => {}
        }
        history.push(Message::new(turn, message.role, message.content));
    }
    let conversation = Conversation::new("api", user_id).with_messages(history);
    Ok((conversation, current))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        Catalog::new(vec![
            Track::new("t1", "Blue in Green", "Miles Davis"),
            Track::new("t2", "Take Five", "Dave Brubeck"),
        ])
        .unwrap()
    }

    fn msg(role: Role, content: &str) -> ApiMessage {
        ApiMessage {
            role,
            content: content.into(),
        }
    }

    #[test]
    fn turns_are_numbered_by_user_messages() {
        let messages = vec![
            msg(Role::User, "jazz please"),
            msg(Role::Music, "t1"),
            msg(Role::Assistant, "try this"),
            msg(Role::User, "more like it"),
        ];
        let (conversation, current) =
            conversation_of(messages, "u", &catalog(), &Limits::default()).unwrap();
        assert_eq!(current, "more like it");
        assert_eq!(conversation.next_turn_number(), 2);
        let turn = conversation.turn_context(&current);
        assert_eq!(turn.played_track_ids, vec!["t1"]);
        assert_eq!(turn.history.len(), 3);
        assert_eq!(turn.user_id, "u");
        assert!(turn.history.iter().all(|m| m.turn_number == 1));
    }

    #[test]
    fn bad_conversations_name_the_field() {
        let limits = Limits {
            max_messages: 3,
            max_message_chars: 10,
            ..Limits::default()
        };
        let check = |messages: Vec<ApiMessage>| {
            conversation_of(messages, "", &catalog(), &limits).unwrap_err()
        };
        let err = check(vec![]);
        assert_eq!(
            (err.code, err.field.as_deref()),
            ("empty_conversation", Some("messages"))
        );
        let err = check(vec![
            msg(Role::User, "a"),
            msg(Role::Music, "t9"),
            msg(Role::User, "b"),
        ]);
        assert_eq!(err.code, "unknown_track");
        assert_eq!(err.field.as_deref(), Some("messages[1].content"));
        let err = check(vec![msg(Role::Assistant, "hi"), msg(Role::User, "b")]);
        assert_eq!(err.field.as_deref(), Some("messages[0].role"));
        let err = check(vec![msg(Role::User, "a"), msg(Role::Music, "t1")]);
        assert_eq!(err.field.as_deref(), Some("messages[1].role"));
        let err = check(vec![msg(Role::User, "0123456789x")]);
        assert_eq!(err.code, "message_too_long");
        let err = check(vec![msg(Role::User, "  ")]);
        assert_eq!(err.code, "empty_message");
        let err = check(vec![msg(Role::User, "a"); 4]);
        assert_eq!(err.code, "too_many_messages");
        assert_eq!(err.status.as_u16(), 422);
    }

    #[test]
    fn a_dataset_turn_round_trips_through_a_request() {
        let mut turn = TurnContext::from_message("more like it");
        turn.user_id = "u".into();
        turn.turn_number = 2;
        turn.history = vec![
            Message::new(1, Role::User, "jazz please"),
            Message::new(1, Role::Music, "t1"),
            Message::new(1, Role::Assistant, "try this"),
        ];
        let request = RecommendRequest::from_turn(&turn, Some(5));
        let json = serde_json::to_string(&request).unwrap();
        let parsed: RecommendRequest = serde_json::from_str(&json).unwrap();
        assert_eq!(parsed, request);
        let (conversation, current) =
            conversation_of(parsed.messages, "u", &catalog(), &Limits::default()).unwrap();
        let rebuilt = conversation.turn_context(&current);
        assert_eq!(rebuilt.history, turn.history);
        assert_eq!(rebuilt.user_message, turn.user_message);
        assert_eq!(rebuilt.turn_number, 2);
        let anonymous = RecommendRequest::from_turn(&TurnContext::from_message("hi"), None);
        assert_eq!(
            serde_json::to_string(&anonymous).unwrap(),
            r#"{"messages":[{"role":"user","content":"hi"}]}"#
        );
    }

    #[test]
    fn k_must_fit_the_method() {
        assert_eq!(check_k(None, 20).unwrap(), 20);
        assert_eq!(check_k(Some(5), 20).unwrap(), 5);
        assert_eq!(
            check_k(Some(0), 20).unwrap_err().field.as_deref(),
            Some("k")
        );
        assert!(check_k(Some(21), 20).is_err());
    }
}

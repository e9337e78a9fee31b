//! Conversation files: one [`Session`] per row.

use std::path::Path;

use music_crs_core::{ConversationGoal, GoalProgress, Message, Role, Session, UserProfile};

use crate::columns::{Col, Frame, ParquetFile};
use crate::users::{USER_ID_COLUMN, USER_STRING_COLUMNS, next_profile};
use crate::{Error, Result};

/// Columns a conversations file must have.
pub const SESSION_REQUIRED_COLUMNS: [&str; 2] = ["session_id", "conversations"];

/// Columns read when present (blind files lack `session_date` and `goal_progress_assessments`).
pub const SESSION_OPTIONAL_COLUMNS: [&str; 5] = [
    "user_id",
    "session_date",
    "user_profile",
    "conversation_goal",
    "goal_progress_assessments",
];

/// Reads every session of one conversations parquet file.
///
/// Schema (TalkPlayData): `session_id`; `conversations` list<struct{content, role, thought,
/// turn_number}>; optional `user_id` (null or missing is read as `""`), `session_date`,
/// `user_profile` struct, `conversation_goal` struct (a Null-typed column is all `None`),
/// `goal_progress_assessments` list<struct{goal_progress_assessment, turn_number}>. Other
/// columns are ignored.
///
/// Normalisation: a profile or goal whose every field is null is `None`; an empty `thought`
/// is `None`. Messages keep the file's order.
///
/// Fails naming the file (and row, session, turn) on a missing or mistyped column, a null
/// id, an unknown role, a turn number below 1, a conversation without messages, or a turn
/// whose messages do not include exactly one user message.
pub fn read_sessions(path: &Path) -> Result<Vec<Session>> {
    let file = ParquetFile::open(path)?;
    file.require(&SESSION_REQUIRED_COLUMNS)?;
    let mut wanted = SESSION_REQUIRED_COLUMNS.to_vec();
    wanted.extend(SESSION_OPTIONAL_COLUMNS);
    let frame = file.read(&wanted)?;
    decode_sessions(&frame)
}

fn decode_sessions(frame: &Frame) -> Result<Vec<Session>> {
    let height = frame.height();
    let ids_col = frame.required("session_id")?;
    let session_ids = ids_col.strings()?;
    let user_ids = optional_strings(frame, "user_id", height)?;
    let dates = optional_strings(frame, "session_date", height)?;
    let profiles = match frame.column("user_profile") {
        Some(col) => profiles_of(&col)?,
        None => vec![None; height],
    };
    let goals = match frame.column("conversation_goal") {
        Some(col) => goals_of(&col)?,
        None => vec![None; height],
    };
    let progress = match frame.column("goal_progress_assessments") {
        Some(col) => progress_of(&col)?,
        None => vec![Vec::new(); height],
    };
    let messages = messages_of(frame, &session_ids)?;

    let mut sessions = Vec::with_capacity(height);
    for (row, (((((session_id, user_id), date), profile), goal), (msgs, progress))) in session_ids
        .into_iter()
        .zip(user_ids)
        .zip(dates)
        .zip(profiles)
        .zip(goals)
        .zip(messages.into_iter().zip(progress))
        .enumerate()
    {
        // Null ids were rejected by `messages_of`.
        let session_id = session_id.unwrap_or_default();
        let session = Session {
            session_id,
            user_id: user_id.unwrap_or_default(),
            session_date: date,
            user_profile: profile,
            conversation_goal: goal,
            messages: msgs,
            goal_progress: progress,
        };
        check_session(frame.path(), row, &session)?;
        sessions.push(session);
    }
    Ok(sessions)
}

fn optional_strings(frame: &Frame, name: &str, height: usize) -> Result<Vec<Option<String>>> {
    match frame.column(name) {
        Some(col) => col.strings(),
        None => Ok(vec![None; height]),
    }
}

fn field_strings(col: &Col<'_>, field: &str) -> Result<Vec<Option<String>>> {
    match col.field(field)? {
        Some(f) => f.strings(),
        None => Ok(vec![None; col.len()]),
    }
}

/// Profiles of a `user_profile` struct column.
pub(crate) fn profiles_of(col: &Col<'_>) -> Result<Vec<Option<UserProfile>>> {
    col.check_struct()?;
    let n = col.len();
    let nulls = col.nulls()?;
    let ages = match col.field("age")? {
        Some(f) => f.ints()?,
        None => vec![None; n],
    };
    let user_ids = field_strings(col, USER_ID_COLUMN)?;
    // The struct's other string fields are the User-Metadata table's columns.
    let mut columns = Vec::with_capacity(USER_STRING_COLUMNS.len());
    for name in USER_STRING_COLUMNS {
        columns.push(field_strings(col, name)?.into_iter());
    }
    let mut out = Vec::with_capacity(n);
    for (row, (age, user_id)) in ages.into_iter().zip(user_ids).enumerate() {
        let profile = next_profile(&mut columns, user_id, age);
        let empty = profile.is_empty() && profile.user_id.is_none() && profile.user_split.is_none();
        out.push((!nulls[row] && !empty).then_some(profile));
    }
    Ok(out)
}

fn goals_of(col: &Col<'_>) -> Result<Vec<Option<ConversationGoal>>> {
    col.check_struct()?;
    let nulls = col.nulls()?;
    let category = field_strings(col, "category")?;
    let listener_goal = field_strings(col, "listener_goal")?;
    let specificity = field_strings(col, "specificity")?;
    Ok(category
        .into_iter()
        .zip(listener_goal)
        .zip(specificity)
        .zip(nulls)
        .map(|(((category, listener_goal), specificity), null)| {
            let goal = ConversationGoal {
                category,
                listener_goal,
                specificity,
            };
            let empty = goal.category.is_none()
                && goal.listener_goal.is_none()
                && goal.specificity.is_none();
            (!null && !empty).then_some(goal)
        })
        .collect())
}

fn turn_of(value: Option<i64>) -> Option<u32> {
    value
        .and_then(|t| u32::try_from(t).ok())
        .filter(|&t| t >= 1)
}

fn progress_of(col: &Col<'_>) -> Result<Vec<Vec<GoalProgress>>> {
    let n = col.len();
    let Some(lists) = col.lists("list<struct{goal_progress_assessment, turn_number}>")? else {
        return Ok(vec![Vec::new(); n]);
    };
    let assessments = field_strings(&lists.values, "goal_progress_assessment")?;
    let turns = match lists.values.field("turn_number")? {
        Some(f) => f.ints()?,
        None => vec![None; lists.values.len()],
    };
    (0..n)
        .map(|row| {
            lists
                .range(row)
                .map(|i| {
                    let turn_number = turn_of(turns[i]).ok_or_else(|| {
                        col.row_error(row, format!("turn_number {:?} is not >= 1", turns[i]))
                    })?;
                    Ok(GoalProgress {
                        turn_number,
                        assessment: assessments[i].clone(),
                    })
                })
                .collect()
        })
        .collect()
}

fn messages_of(frame: &Frame, session_ids: &[Option<String>]) -> Result<Vec<Vec<Message>>> {
    let col = frame.required("conversations")?;
    let ids_col = frame.required("session_id")?;
    const EXPECTED: &str = "list<struct{content, role, thought, turn_number}>";
    let n = col.len();
    let lists = col.lists(EXPECTED)?;
    let session_error = |row: usize, turn_number: u32, reason: String| Error::InvalidSession {
        path: frame.path().to_path_buf(),
        row,
        session_id: session_ids[row].clone().unwrap_or_default(),
        turn_number,
        reason,
    };
    let Some(lists) = lists else {
        return Err(col.type_error(EXPECTED));
    };
    let inner = &lists.values;
    inner.check_struct().map_err(|_| col.type_error(EXPECTED))?;
    let required = |name: &str| -> Result<Col<'_>> {
        inner.field(name)?.ok_or_else(|| Error::MissingColumn {
            path: frame.path().to_path_buf(),
            column: format!("conversations[].{name}"),
            present: "see the file schema".into(),
        })
    };
    let contents = required("content")?.strings()?;
    let roles = required("role")?.strings()?;
    let turns = required("turn_number")?.ints()?;
    let thoughts = field_strings(inner, "thought")?;
    let message_nulls = inner.nulls()?;

    let mut out = Vec::with_capacity(n);
    for (row, id) in session_ids.iter().enumerate() {
        if id.as_deref().is_none_or(str::is_empty) {
            return Err(ids_col.row_error(row, "the session id is null or empty"));
        }
        if lists.is_null(row) {
            return Err(session_error(row, 0, "the conversation is null".into()));
        }
        let mut messages = Vec::with_capacity(lists.range(row).len());
        for (position, i) in lists.range(row).enumerate() {
            let at = |what: &str| format!("message {position}: {what}");
            if message_nulls[i] {
                return Err(session_error(row, 0, at("the message is null")));
            }
            let turn_number = turn_of(turns[i]).ok_or_else(|| {
                session_error(
                    row,
                    0,
                    at(&format!("turn_number {:?} is not >= 1", turns[i])),
                )
            })?;
            let role_text = roles[i]
                .as_deref()
                .ok_or_else(|| session_error(row, turn_number, at("the role is null")))?;
            let role = Role::parse(role_text).ok_or_else(|| {
                session_error(
                    row,
                    turn_number,
                    at(&format!(
                        "unknown role {role_text:?} (expected user, music or assistant)"
                    )),
                )
            })?;
            let content = contents[i]
                .clone()
                .ok_or_else(|| session_error(row, turn_number, at("the content is null")))?;
            messages.push(Message {
                turn_number,
                role,
                content,
                thought: thoughts[i].clone().filter(|t| !t.is_empty()),
            });
        }
        out.push(messages);
    }
    Ok(out)
}

/// Every turn with messages has exactly one user message, and there is at least one message.
fn check_session(path: &Path, row: usize, session: &Session) -> Result<()> {
    let error = |turn_number: u32, reason: String| Error::InvalidSession {
        path: path.to_path_buf(),
        row,
        session_id: session.session_id.clone(),
        turn_number,
        reason,
    };
    if session.messages.is_empty() {
        return Err(error(0, "the conversation has no messages".into()));
    }
    let mut turns: Vec<u32> = session.messages.iter().map(|m| m.turn_number).collect();
    turns.sort_unstable();
    turns.dedup();
    for turn in turns {
        let users = session
            .messages
            .iter()
            .filter(|m| m.turn_number == turn && m.role == Role::User)
            .count();
        match users {
            1 => {}
            0 => return Err(error(turn, "the turn has no user message".into())),
            n => {
                return Err(error(
                    turn,
                    format!("the turn has {n} user messages, expected one"),
                ));
            }
        }
    }
    Ok(())
}

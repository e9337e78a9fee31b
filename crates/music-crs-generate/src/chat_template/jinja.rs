//! A model's own Jinja chat template, rendered with minijinja the way Hugging Face's
//! `apply_chat_template` renders it: blocks trimmed and left-stripped, `messages`,
//! `add_generation_prompt`, `bos_token` and `eos_token` in the context, `raise_exception`,
//! `strftime_now`, loop controls, `tojson` and Python's string, list and dict methods
//! (minijinja-contrib's pycompat).

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use minijinja::syntax::SyntaxConfig;
use minijinja::{Environment, ErrorKind, Value, context};

use crate::prompt::{ChatMessage, ChatRole};
use crate::{Error, Result};

/// The date `strftime_now` formats: 26 July 2024, the date Llama 3.1+ templates write when
/// the caller gives none ([`DEFAULT_LLAMA3_DATE`](super::DEFAULT_LLAMA3_DATE)). Pinned, so a
/// prompt (and a greedy reply) does not change with the calendar.
pub const PINNED_DATE: (i32, u32, u32) = (2024, 7, 26);

const NAME: &str = "chat_template";

/// A compiled Jinja chat template and where it came from.
pub struct JinjaTemplate {
    env: Environment<'static>,
    path: PathBuf,
    key: String,
    bos_token: String,
    eos_token: String,
    join_consecutive: bool,
}

impl std::fmt::Debug for JinjaTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JinjaTemplate")
            .field("path", &self.path)
            .field("key", &self.key)
            .field("bos_token", &self.bos_token)
            .field("eos_token", &self.eos_token)
            .field("join_consecutive", &self.join_consecutive)
            .finish_non_exhaustive()
    }
}

impl JinjaTemplate {
    /// Compiles `source`, read from `key` of the file at `path` (both named in errors), with
    /// the tokenizer's `bos_token` and `eos_token` texts. A template that refuses the shape
    /// of the chats this crate writes (two assistant messages in a row: a played track, then
    /// the reply) but accepts them joined is used with consecutive messages of one role
    /// joined (logged once); one that refuses both is an error here, at load.
    pub fn new(
        source: &str,
        path: &Path,
        key: &str,
        bos_token: Option<String>,
        eos_token: Option<String>,
    ) -> Result<Self> {
        let mut env = Environment::new();
        let syntax = SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .map_err(|e| template_error(path, key, &e))?;
        env.set_syntax(syntax);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", raise_exception);
        env.add_function("strftime_now", strftime_now);
        env.add_template_owned(NAME, source.to_string())
            .map_err(|e| template_error(path, key, &e))?;
        let mut template = JinjaTemplate {
            env,
            path: path.to_path_buf(),
            key: key.to_string(),
            bos_token: bos_token.unwrap_or_default(),
            eos_token: eos_token.unwrap_or_default(),
            join_consecutive: false,
        };
        let probe = probe_chat();
        if let Err(refused) = template.render(&probe, true) {
            template.join_consecutive = true;
            if template.render(&probe, true).is_err() {
                return Err(refused);
            }
            tracing::info!(
                "{}: the chat template ({key}) refuses two messages of one role in a row \
                 ({refused}); such messages are joined, separated by a blank line",
                path.display()
            );
        }
        Ok(template)
    }

    /// True when consecutive messages of one role are joined before rendering.
    pub fn joins_consecutive_roles(&self) -> bool {
        self.join_consecutive
    }

    /// The messages as the template receives them (joined where needed).
    pub fn prepare<'a>(&self, messages: &'a [ChatMessage]) -> Cow<'a, [ChatMessage]> {
        if self.join_consecutive {
            Cow::Owned(join_consecutive(messages))
        } else {
            Cow::Borrowed(messages)
        }
    }

    /// The prompt text of a chat. Errors (a `raise_exception`, an undefined call) name the
    /// model file, the template's key and its line.
    pub fn render(&self, messages: &[ChatMessage], add_generation_prompt: bool) -> Result<String> {
        let messages: Vec<Value> = self
            .prepare(messages)
            .iter()
            .map(|m| context! { role => m.role.as_str(), content => m.content.as_str() })
            .collect();
        let template = self
            .env
            .get_template(NAME)
            .map_err(|e| template_error(&self.path, &self.key, &e))?;
        template
            .render(context! {
                messages => messages,
                add_generation_prompt => add_generation_prompt,
                bos_token => self.bos_token.as_str(),
                eos_token => self.eos_token.as_str(),
                // Qwen3's templates think first unless told not to; a reply is wanted here.
                enable_thinking => false,
            })
            .map_err(|e| template_error(&self.path, &self.key, &e))
    }
}

/// A chat shaped like the ones the crate writes: system, user, a played track and the
/// reply (two assistant messages), user, the recommended track.
fn probe_chat() -> Vec<ChatMessage> {
    vec![
        ChatMessage::new(ChatRole::System, "Be brief."),
        ChatMessage::new(ChatRole::User, "some jazz"),
        ChatMessage::new(ChatRole::Assistant, "track_id: t1"),
        ChatMessage::new(ChatRole::Assistant, "Try this one."),
        ChatMessage::new(ChatRole::User, "more"),
        ChatMessage::new(ChatRole::Assistant, "track_id: t2"),
    ]
}

/// Consecutive messages of one role as one message, their contents separated by a blank
/// line.
fn join_consecutive(messages: &[ChatMessage]) -> Vec<ChatMessage> {
    let mut joined: Vec<ChatMessage> = Vec::with_capacity(messages.len());
    for message in messages {
        match joined.last_mut() {
            Some(last) if last.role == message.role => {
                last.content.push_str("\n\n");
                last.content.push_str(&message.content);
            }
            _ => joined.push(message.clone()),
        }
    }
    joined
}

fn template_error(path: &Path, key: &str, error: &minijinja::Error) -> Error {
    let reason = match error.detail() {
        Some(detail) => format!("{}: {detail}", error.kind()),
        None => error.kind().to_string(),
    };
    Error::ChatTemplate {
        path: path.to_path_buf(),
        key: key.to_string(),
        line: error.line(),
        reason,
    }
}

/// `raise_exception(message)`: Hugging Face's way for a template to refuse a chat.
fn raise_exception(message: String) -> std::result::Result<Value, minijinja::Error> {
    Err(minijinja::Error::new(
        ErrorKind::InvalidOperation,
        format!("the template raised an exception: {message}"),
    ))
}

/// `strftime_now(format)` of the [`PINNED_DATE`] at midnight.
fn strftime_now(format: String) -> String {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let (year, month, day) = PINNED_DATE;
    let month_name = MONTHS[month as usize - 1];
    let (weekday, day_of_year) = ("Friday", 208);
    let mut out = String::with_capacity(format.len() + 16);
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('d') => out.push_str(&format!("{day:02}")),
            Some('e') => out.push_str(&format!("{day:2}")),
            Some('m') => out.push_str(&format!("{month:02}")),
            Some('b') | Some('h') => out.push_str(&month_name[..3]),
            Some('B') => out.push_str(month_name),
            Some('Y') => out.push_str(&year.to_string()),
            Some('y') => out.push_str(&format!("{:02}", year % 100)),
            Some('a') => out.push_str(&weekday[..3]),
            Some('A') => out.push_str(weekday),
            Some('j') => out.push_str(&format!("{day_of_year:03}")),
            Some('H') | Some('M') | Some('S') => out.push_str("00"),
            Some('I') => out.push_str("12"),
            Some('p') => out.push_str("AM"),
            Some('F') => out.push_str(&format!("{year}-{month:02}-{day:02}")),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

#[cfg(test)]
mod tests;

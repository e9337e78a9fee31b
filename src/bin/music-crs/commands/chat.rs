//! `music-crs chat`: talk to the recommender, one message or a REPL.
//!
//! On a terminal the REPL edits lines with rustyline (arrows, history kept across sessions in
//! a file, Ctrl-C cancels the line, Ctrl-D quits). Piped input is read line by line, so scripts
//! can drive it. Lines starting with `/` are commands (`/help` lists them); every other line is
//! a message to the recommender.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use music_crs::{Conversation, Crs, Reply, RunData};
use rustyline::error::ReadlineError;
use rustyline::history::FileHistory;
use rustyline::{Config, Editor};

use super::run::with_train_hint;
use crate::args::DatasetArgs;

/// The environment variable that overrides the history file's location.
pub(crate) const HISTORY_ENV: &str = "MUSIC_CRS_HISTORY";

/// Lines kept in the history file.
const HISTORY_LINES: usize = 1000;

#[derive(Debug, Args)]
pub(crate) struct ChatArgs {
    #[command(flatten)]
    pub(crate) dataset: DatasetArgs,
    /// The listener's id (personalises replies when the users table knows it).
    #[arg(long, default_value = "")]
    pub(crate) user_id: String,
    /// One message, answered once (no REPL).
    #[arg(long)]
    pub(crate) query: Option<String>,
    /// Tracks shown per reply.
    #[arg(long, default_value_t = 5)]
    pub(crate) show: usize,
    /// The REPL's history file [default: $MUSIC_CRS_HISTORY, else
    /// $XDG_STATE_HOME/music-crs/history, else ~/.local/state/music-crs/history].
    #[arg(long, value_name = "FILE")]
    pub(crate) history: Option<PathBuf>,
}

pub(crate) fn chat(args: ChatArgs) -> Result<i32> {
    let config = args.dataset.load_config()?;
    let dataset = RunData::load_for_chat(&config).map_err(|e| with_train_hint(e, &args.dataset))?;
    let crs =
        music_crs::build_crs(&config, &dataset).map_err(|e| with_train_hint(e, &args.dataset))?;
    let mut session = ChatSession::new(&crs, args.user_id.clone(), args.show);
    if let Some(query) = &args.query {
        let reply = session.conversation.say(&crs, query)?;
        print!("{}", render_reply(&crs, &reply, session.show));
        return Ok(0);
    }
    eprintln!(
        "music-crs chat ({} + {}, {} tracks). Type a message; /help lists the commands, Ctrl-D \
         quits.",
        crs.retriever_name(),
        crs.generator_name(),
        crs.catalog().len()
    );
    if std::io::stdin().is_terminal() && std::io::stdout().is_terminal() {
        let history = args.history.or_else(default_history_path);
        interactive(&mut session, history)
    } else {
        piped(&mut session)
    }
}

/// The REPL on a terminal: rustyline with a history file.
fn interactive(session: &mut ChatSession<'_>, history: Option<PathBuf>) -> Result<i32> {
    let config = Config::builder()
        .max_history_size(HISTORY_LINES)
        .context("history size")?
        .auto_add_history(true)
        .build();
    let mut editor: Editor<(), FileHistory> =
        Editor::with_config(config).context("starting the line editor")?;
    if let Some(path) = &history
        && path.is_file()
        && let Err(err) = editor.load_history(path)
    {
        eprintln!(
            "warning: could not read the history {}: {err}",
            path.display()
        );
    }
    loop {
        match editor.readline("you> ") {
            Ok(line) => {
                let output = session.handle(&line);
                print!("{}", output.text);
                std::io::stdout().flush().ok();
                if output.quit {
                    break;
                }
            }
            // Ctrl-C cancels the line being typed; the REPL goes on.
            Err(ReadlineError::Interrupted) => continue,
            // A line that is not UTF-8 (a terminal in another encoding, a pasted binary) is
            // dropped, not the conversation.
            Err(ReadlineError::Io(err)) if err.kind() == std::io::ErrorKind::InvalidData => {
                eprintln!("{NOT_UTF8}");
            }
            Err(ReadlineError::Signal(_)) => continue,
            Err(ReadlineError::Eof) => break,
            Err(err) => return Err(err).context("reading the terminal"),
        }
    }
    if let Some(path) = &history {
        let saved = match path.parent().filter(|d| !d.as_os_str().is_empty()) {
            Some(dir) => std::fs::create_dir_all(dir).map_err(ReadlineError::from),
            None => Ok(()),
        }
        .and_then(|()| editor.save_history(path));
        if let Err(err) = saved {
            eprintln!(
                "warning: could not save the history {}: {err}",
                path.display()
            );
        }
    }
    Ok(0)
}

/// What a line that is not UTF-8 gets: the REPL goes on without it.
const NOT_UTF8: &str = "that line is not valid UTF-8 and was skipped; type it again";

/// The REPL on piped input: one line per message or command, to the end of the input. A
/// line that is not UTF-8 is reported (with its number) and skipped.
fn piped(session: &mut ChatSession<'_>) -> Result<i32> {
    let mut stdin = std::io::stdin().lock();
    let mut bytes = Vec::new();
    for number in 1.. {
        bytes.clear();
        if stdin
            .read_until(b'\n', &mut bytes)
            .context("reading stdin")?
            == 0
        {
            break;
        }
        let Ok(line) = std::str::from_utf8(&bytes) else {
            eprintln!("line {number}: {NOT_UTF8}");
            continue;
        };
        let line = line.strip_suffix('\n').unwrap_or(line);
        let line = line.strip_suffix('\r').unwrap_or(line);
        let output = session.handle(line);
        print!("{}", output.text);
        std::io::stdout().flush().ok();
        if output.quit {
            break;
        }
    }
    Ok(0)
}

/// `$MUSIC_CRS_HISTORY`, else `$XDG_STATE_HOME/music-crs/history`, else
/// `~/.local/state/music-crs/history`; `None` when none of these is known.
pub(crate) fn default_history_path() -> Option<PathBuf> {
    history_path_from(|name| std::env::var_os(name))
}

fn history_path_from(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> Option<PathBuf> {
    let set = |name: &str| var(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(path) = set(HISTORY_ENV) {
        return Some(path);
    }
    let state = set("XDG_STATE_HOME")
        .filter(|p| p.is_absolute())
        .or_else(|| set("HOME").map(|home| home.join(".local/state")))?;
    Some(state.join("music-crs").join("history"))
}

/// What one input line produced: the text to print and whether the REPL ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Output {
    pub(crate) text: String,
    pub(crate) quit: bool,
}

impl Output {
    fn text(text: impl Into<String>) -> Self {
        Output {
            text: text.into(),
            quit: false,
        }
    }
}

const HELP: &str = "\
Type a message to get tracks and a reply. Commands:
  /help       this list
  /reset      start a new conversation (same listener)
  /user ID    start a new conversation as listener ID (/user alone: anonymous)
  /k N        show N tracks per reply
  /quit       leave (Ctrl-D too)
";

/// The state of a chat: the recommender, the conversation and the display settings.
pub(crate) struct ChatSession<'a> {
    crs: &'a Crs,
    conversation: Conversation,
    user_id: String,
    show: usize,
}

impl<'a> ChatSession<'a> {
    pub(crate) fn new(crs: &'a Crs, user_id: String, show: usize) -> Self {
        ChatSession {
            crs,
            conversation: Conversation::new("chat", user_id.clone()),
            user_id,
            show,
        }
    }

    /// Handles one input line: a `/command` or a message to the recommender.
    pub(crate) fn handle(&mut self, line: &str) -> Output {
        let line = line.trim();
        if line.is_empty() {
            return Output::text("");
        }
        let Some(command) = line.strip_prefix('/') else {
            return match self.conversation.say(self.crs, line) {
                Ok(reply) => Output::text(render_reply(self.crs, &reply, self.show)),
                Err(err) => Output::text(format!("error: {err}\n")),
            };
        };
        let mut words = command.split_whitespace();
        let name = words.next().unwrap_or("");
        let rest: Vec<&str> = words.collect();
        match (name, rest.as_slice()) {
            ("help" | "h" | "?", _) => Output::text(HELP),
            ("quit" | "exit" | "q", _) => Output {
                text: String::new(),
                quit: true,
            },
            ("reset", []) => {
                self.conversation = Conversation::new("chat", self.user_id.clone());
                Output::text("(new conversation)\n")
            }
            ("user", ids) if ids.len() <= 1 => {
                self.user_id = ids.first().map(|id| id.to_string()).unwrap_or_default();
                self.conversation = Conversation::new("chat", self.user_id.clone());
                let known = if self.user_id.is_empty() {
                    "anonymous listener".to_string()
                } else if self.crs.user(&self.user_id).is_some() {
                    format!("listener {} (profile found)", self.user_id)
                } else {
                    format!("listener {} (no profile in the users table)", self.user_id)
                };
                Output::text(format!("(new conversation as {known})\n"))
            }
            ("k", [n]) => match n.parse::<usize>() {
                Ok(k) if (1..=self.crs.top_k()).contains(&k) => {
                    self.show = k;
                    Output::text(format!("(showing {k} tracks per reply)\n"))
                }
                _ => Output::text(format!(
                    "/k takes a number from 1 to {}\n",
                    self.crs.top_k()
                )),
            },
            ("k", _) => Output::text(format!(
                "/k takes a number from 1 to {}\n",
                self.crs.top_k()
            )),
            ("reset" | "user", _) => Output::text("usage: see /help\n"),
            _ => Output::text(format!("unknown command /{name}; /help lists them\n")),
        }
    }
}

/// The reply, a note when the model's own reply was empty or degenerate, then its first
/// `show` tracks as an aligned list (title, artist, album).
pub(crate) fn render_reply(crs: &Crs, reply: &Reply, show: usize) -> String {
    let rows: Vec<[String; 3]> = reply
        .tracks
        .iter()
        .take(show)
        .map(|scored| match crs.catalog().get(&scored.track_id) {
            Some(track) => [track.name(), track.artist(), track.album()],
            None => [scored.track_id.clone(), String::new(), String::new()],
        })
        .collect();
    let mut text = format!("crs> {}\n", reply.response);
    if let Some(note) = music_crs::replies::flaw_note(&reply.check, reply.replaced) {
        text.push_str(&format!("     (the model's reply was {note})\n"));
    }
    text.push_str(&track_table(&rows));
    text
}

/// Rows numbered from 1, columns padded to their widest cell (in characters).
fn track_table(rows: &[[String; 3]]) -> String {
    const HEADER: [&str; 3] = ["title", "artist", "album"];
    if rows.is_empty() {
        return String::new();
    }
    let width = |col: usize| {
        rows.iter()
            .map(|row| row[col].chars().count())
            .chain([HEADER[col].len()])
            .max()
            .unwrap_or(0)
    };
    let widths = [width(0), width(1)];
    let line = |number: &str, cells: [&str; 3]| {
        let pad = |cell: &str, w: usize| {
            let fill = w.saturating_sub(cell.chars().count());
            format!("{cell}{}", " ".repeat(fill))
        };
        let text = format!(
            "{number:>3} {}  {}  {}",
            pad(cells[0], widths[0]),
            pad(cells[1], widths[1]),
            cells[2]
        );
        format!("{}\n", text.trim_end())
    };
    let mut out = line("", HEADER);
    for (i, row) in rows.iter().enumerate() {
        out.push_str(&line(
            &format!("{}.", i + 1),
            [row[0].as_str(), row[1].as_str(), row[2].as_str()],
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;

    use super::*;

    #[test]
    fn history_path_prefers_the_override_then_xdg_then_home() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| OsString::from(*v))
            }
        };
        assert_eq!(
            history_path_from(env(&[(HISTORY_ENV, "/tmp/h"), ("HOME", "/home/a")])),
            Some(PathBuf::from("/tmp/h"))
        );
        assert_eq!(
            history_path_from(env(&[("XDG_STATE_HOME", "/s"), ("HOME", "/home/a")])),
            Some(PathBuf::from("/s/music-crs/history"))
        );
        assert_eq!(
            history_path_from(env(&[("XDG_STATE_HOME", "relative"), ("HOME", "/home/a")])),
            Some(PathBuf::from("/home/a/.local/state/music-crs/history"))
        );
        assert_eq!(history_path_from(env(&[])), None);
    }

    #[test]
    fn table_columns_line_up() {
        let rows = [
            ["Été".to_string(), "Zaz".to_string(), "Recto".to_string()],
            [
                "A longer title".to_string(),
                "The Band".to_string(),
                "Verso".to_string(),
            ],
        ];
        let table = track_table(&rows);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3, "{table}");
        let column = |line: &str, needle: &str| {
            let byte = line.find(needle).unwrap();
            line[..byte].chars().count()
        };
        assert_eq!(column(lines[1], "Zaz"), column(lines[2], "The Band"));
        assert_eq!(column(lines[0], "artist"), column(lines[1], "Zaz"));
        assert_eq!(column(lines[1], "Recto"), column(lines[2], "Verso"));
        assert!(lines[1].trim_start().starts_with("1. Été"), "{table}");
        assert!(track_table(&[]).is_empty());
    }
}

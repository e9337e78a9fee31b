//! Resumable runs: predictions appended to a checkpoint file as they are made, so a run that
//! is killed can go on from where it stopped (`music-crs run --resume`).
//!
//! The checkpoint is JSON Lines beside the prediction file (`<output>.partial.jsonl`). Its
//! first line is a header with the [`RunIdentity`] of the run that wrote it; every further
//! line is one [`PredictedTurn`], in the order of the run's turns. Each batch of lines is
//! written with one `write` call, then flushed and synced to disk, so a kill loses at most
//! the batch being predicted and can leave at most one half-written line at the end, which
//! [`Checkpoint::resume`] drops (that turn is predicted again). Any other unreadable line is
//! an error naming the file and line: a checkpoint is never half trusted.
//!
//! A checkpoint is resumed only by the run that wrote it: same config (overrides applied),
//! split, turns, catalog, users and model files (by size and modification time). Anything
//! else is refused with the list of what differs.
//!
//! ```
//! use music_crs::checkpoint::{Checkpoint, RunIdentity};
//! use music_crs::core::{Catalog, Prediction, Track, TurnContext};
//! use music_crs::PredictedTurn;
//!
//! let dir = tempfile::tempdir()?;
//! let output = dir.path().join("run.json");
//! let turns = vec![TurnContext::from_message("calm piano"), TurnContext::from_message("more")];
//! let catalog = Catalog::new(vec![Track::new("t1", "Peace Piece", "Bill Evans")])?;
//! let identity = RunIdentity::new(&music_crs::CrsConfig::default(), &turns, &catalog, &Default::default())?;
//!
//! let path = Checkpoint::path_for(&output);
//! let mut checkpoint = Checkpoint::create(&path, &identity)?;
//! let first = PredictedTurn {
//!     prediction: Prediction {
//!         session_id: turns[0].session_id.clone(),
//!         user_id: String::new(),
//!         turn_number: turns[0].turn_number,
//!         predicted_track_ids: vec!["t1".into()],
//!         predicted_response: "Try Peace Piece.".into(),
//!     },
//!     reply_check: Default::default(),
//!     reply_replaced: false,
//! };
//! checkpoint.append(std::slice::from_ref(&first))?;
//! drop(checkpoint); // killed here
//!
//! let resumed = Checkpoint::resume(&path, &identity, &turns)?;
//! assert_eq!(resumed.answered, [first]);
//! resumed.checkpoint.remove()?;
//! assert!(!path.exists());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::{BTreeMap, HashMap};
use std::hash::Hasher;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use music_crs_core::{Catalog, TurnContext, UserProfile};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::{GeneratorConfig, ModelSource};
use crate::{CrsConfig, Error, PredictedTurn, Result};

/// The version of the checkpoint layout; a checkpoint of another version is refused.
pub const CHECKPOINT_FORMAT: u32 = 1;

/// The first line of a checkpoint.
#[derive(Debug, Serialize, Deserialize)]
struct Header {
    music_crs_checkpoint: u32,
    identity: RunIdentity,
}

/// Size and modification time of a file a run reads, to tell whether it changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileStamp {
    /// The path as the config names it.
    pub path: PathBuf,
    /// Size in bytes (`None`: the file does not exist).
    pub bytes: Option<u64>,
    /// Modification time in nanoseconds since the Unix epoch, where the system tells it.
    pub modified_ns: Option<u128>,
}

impl FileStamp {
    /// The stamp of `path` now.
    pub fn of(path: &Path) -> Self {
        let metadata = std::fs::metadata(path).ok();
        FileStamp {
            path: path.to_path_buf(),
            bytes: metadata.as_ref().map(|m| m.len()),
            modified_ns: metadata
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map(|d| d.as_nanos()),
        }
    }
}

/// Everything a run's predictions depend on that can change between a kill and a resume.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunIdentity {
    /// The config with command-line overrides applied, as JSON.
    pub config: Value,
    /// FNV-1a 64 of the config's canonical JSON (16 hex digits).
    pub config_fingerprint: String,
    /// The conversations read: source and split.
    pub conversations: String,
    /// How many turns the run predicts.
    pub turns: usize,
    /// FNV-1a 64 of the turns to predict (ids, messages, profiles), in order.
    pub turns_fingerprint: String,
    /// Tracks in the catalog.
    pub catalog_tracks: usize,
    /// FNV-1a 64 of the catalog's tracks, in order.
    pub catalog_fingerprint: String,
    /// FNV-1a 64 of the user profiles, by id.
    pub users_fingerprint: String,
    /// The model files the config names (ranker model, GGUF file, tokenizer).
    pub model_files: Vec<FileStamp>,
}

impl RunIdentity {
    /// The identity of a run of `config` over `turns`, `catalog` and `users`.
    pub fn new(
        config: &CrsConfig,
        turns: &[TurnContext],
        catalog: &Catalog,
        users: &HashMap<String, UserProfile>,
    ) -> Result<Self> {
        let config_json = to_json(config)?;
        let mut turns_hash = Fnv::default();
        for turn in turns {
            turns_hash.canonical(&to_json(turn)?);
        }
        let mut catalog_hash = Fnv::default();
        for track in catalog.tracks() {
            catalog_hash.canonical(&to_json(track)?);
        }
        let mut users_hash = Fnv::default();
        let users: BTreeMap<&String, &UserProfile> = users.iter().collect();
        for (id, profile) in users {
            users_hash.write(id.as_bytes());
            users_hash.canonical(&to_json(profile)?);
        }
        let mut model_files: Vec<&Path> = Vec::new();
        if let Some(path) = config.retriever.ranker_model_path() {
            model_files.push(path);
        }
        if let GeneratorConfig::Llama(llama) = &config.generator
            && let ModelSource::Gguf { path, tokenizer } = &llama.model
        {
            model_files.push(path);
            model_files.extend(tokenizer.as_deref());
        }
        Ok(RunIdentity {
            config_fingerprint: Fnv::of(&config_json),
            config: config_json,
            conversations: config.dataset.to_spec()?.conversations.to_string(),
            turns: turns.len(),
            turns_fingerprint: turns_hash.hex(),
            catalog_tracks: catalog.len(),
            catalog_fingerprint: catalog_hash.hex(),
            users_fingerprint: users_hash.hex(),
            model_files: model_files.into_iter().map(FileStamp::of).collect(),
        })
    }

    /// What differs between `self` (the checkpoint's) and `now` (this run's), one item per
    /// difference, each naming the setting or input; empty when they match.
    pub fn differences(&self, now: &RunIdentity) -> Vec<String> {
        let mut found = Vec::new();
        if self.config_fingerprint != now.config_fingerprint {
            let before = found.len();
            json_differences("", &self.config, &now.config, &mut found);
            if found.len() == before {
                found.push("the config's fingerprint".into());
            }
        }
        if self.conversations != now.conversations {
            found.push(format!(
                "conversations: {} in the checkpoint, {} now",
                self.conversations, now.conversations
            ));
        }
        if self.turns != now.turns {
            found.push(format!(
                "turns to predict: {} in the checkpoint, {} now (--sessions, --limit?)",
                self.turns, now.turns
            ));
        } else if self.turns_fingerprint != now.turns_fingerprint {
            found.push("the turns to predict (their conversations changed)".into());
        }
        if self.catalog_tracks != now.catalog_tracks {
            found.push(format!(
                "catalog: {} tracks in the checkpoint, {} now",
                self.catalog_tracks, now.catalog_tracks
            ));
        } else if self.catalog_fingerprint != now.catalog_fingerprint {
            found.push("the catalog's tracks".into());
        }
        if self.users_fingerprint != now.users_fingerprint {
            found.push("the user profiles".into());
        }
        if self.model_files != now.model_files {
            let paths: Vec<String> = now
                .model_files
                .iter()
                .filter(|stamp| !self.model_files.contains(stamp))
                .map(|stamp| stamp.path.display().to_string())
                .collect();
            if paths.is_empty() {
                found.push("the model files".into());
            } else {
                found.push(format!(
                    "model file {} (size or modification time)",
                    paths.join(", ")
                ));
            }
        }
        found
    }
}

/// Lists where two JSON values differ, by dotted path (`generator.params.max_new_tokens`).
fn json_differences(path: &str, before: &Value, now: &Value, found: &mut Vec<String>) {
    let name = |key: &str| {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    };
    match (before, now) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for key in keys {
                let missing = Value::Null;
                let (x, y) = (
                    a.get(key).unwrap_or(&missing),
                    b.get(key).unwrap_or(&missing),
                );
                json_differences(&name(key), x, y, found);
            }
        }
        _ if before != now => found.push(format!(
            "{}: {} in the checkpoint, {} now",
            if path.is_empty() { "config" } else { path },
            before,
            now
        )),
        _ => {}
    }
}

/// The open checkpoint of a run, appended to batch by batch.
#[derive(Debug)]
pub struct Checkpoint {
    path: PathBuf,
    file: fs_err::File,
    lines: usize,
}

/// A checkpoint opened to go on with its run.
#[derive(Debug)]
pub struct Resumed {
    /// The checkpoint, ready for the remaining turns.
    pub checkpoint: Checkpoint,
    /// The turns answered before, in order: the first `answered.len()` turns of the run.
    pub answered: Vec<PredictedTurn>,
    /// True when a half-written last line (a kill in the middle of a write) was dropped.
    pub dropped_partial_line: bool,
}

impl Checkpoint {
    /// The checkpoint of the prediction file `output`: `<output>.partial.jsonl`.
    pub fn path_for(output: &Path) -> PathBuf {
        let mut name = output.as_os_str().to_os_string();
        name.push(".partial.jsonl");
        PathBuf::from(name)
    }

    /// Starts a checkpoint at `path` for a run of `identity`, replacing any file there. The
    /// header is written atomically, so a checkpoint always has one.
    pub fn create(path: &Path, identity: &RunIdentity) -> Result<Self> {
        let header = Header {
            music_crs_checkpoint: CHECKPOINT_FORMAT,
            identity: identity.clone(),
        };
        music_crs_core::atomic::write_atomically(path, |writer| -> Result<()> {
            serde_json::to_writer(&mut *writer, &header).map_err(|error| Error::Json {
                path: path.to_path_buf(),
                error,
            })?;
            Ok(writer.write_all(b"\n")?)
        })?;
        let file = fs_err::OpenOptions::new().append(true).open(path)?;
        Ok(Checkpoint {
            path: path.to_path_buf(),
            file,
            lines: 0,
        })
    }

    /// Opens the checkpoint at `path` to go on with a run of `identity` over `turns`: checks
    /// it was written by the same run, reads the turns it answered (which must be the first
    /// turns of `turns`, in order), drops a half-written last line and positions the file
    /// to append the rest.
    pub fn resume(path: &Path, identity: &RunIdentity, turns: &[TurnContext]) -> Result<Resumed> {
        let bytes = fs_err::read(path)?;
        let corrupt = |line: usize, reason: String| Error::CheckpointCorrupt {
            path: path.to_path_buf(),
            line,
            reason,
        };
        // Only lines that end in a newline were written whole.
        let whole_len = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let dropped_partial_line = whole_len < bytes.len();
        let mut lines = bytes[..whole_len.saturating_sub(1)]
            .split(|&b| b == b'\n')
            .enumerate()
            .map(|(index, line)| (index + 1, line));
        if whole_len == 0 {
            return Err(corrupt(1, "no header line".into()));
        }
        let header: Header = match lines.next() {
            Some((_, line)) if !line.is_empty() => serde_json::from_slice(line)
                .map_err(|e| corrupt(1, format!("not a checkpoint header: {e}")))?,
            _ => return Err(corrupt(1, "no header line".into())),
        };
        if header.music_crs_checkpoint != CHECKPOINT_FORMAT {
            return Err(corrupt(
                1,
                format!(
                    "checkpoint format {}, this build reads {CHECKPOINT_FORMAT}",
                    header.music_crs_checkpoint
                ),
            ));
        }
        let differences = header.identity.differences(identity);
        if !differences.is_empty() {
            return Err(Error::CheckpointMismatch {
                path: path.to_path_buf(),
                differences,
            });
        }
        let mut answered: Vec<PredictedTurn> = Vec::new();
        for (number, line) in lines {
            let turn: PredictedTurn = serde_json::from_slice(line)
                .map_err(|e| corrupt(number, format!("not a predicted turn: {e}")))?;
            let Some(expected) = turns.get(answered.len()) else {
                return Err(corrupt(
                    number,
                    format!("more answered turns than the run's {}", turns.len()),
                ));
            };
            let row = &turn.prediction;
            if row.session_id != expected.session_id || row.turn_number != expected.turn_number {
                return Err(corrupt(
                    number,
                    format!(
                        "session {}, turn {}, where the run's turn {} is session {}, turn {}",
                        row.session_id,
                        row.turn_number,
                        answered.len() + 1,
                        expected.session_id,
                        expected.turn_number
                    ),
                ));
            }
            answered.push(turn);
        }
        // Appending: every write goes to the end, after the lines read here.
        let file = fs_err::OpenOptions::new().append(true).open(path)?;
        if dropped_partial_line {
            // Cut the half-written line so the next batch starts on a line of its own.
            file.set_len(whole_len as u64)?;
            file.sync_data()?;
        }
        Ok(Resumed {
            checkpoint: Checkpoint {
                path: path.to_path_buf(),
                file,
                lines: answered.len(),
            },
            answered,
            dropped_partial_line,
        })
    }

    /// Appends `turns` (one line each, in one write), then flushes and syncs the file, so
    /// they survive a kill or a power cut from here on.
    pub fn append(&mut self, turns: &[PredictedTurn]) -> Result<()> {
        if turns.is_empty() {
            return Ok(());
        }
        let mut buffer = Vec::new();
        for turn in turns {
            serde_json::to_writer(&mut buffer, turn).map_err(|error| Error::Json {
                path: self.path.clone(),
                error,
            })?;
            buffer.push(b'\n');
        }
        self.file.write_all(&buffer)?;
        self.file.flush()?;
        self.file.sync_data()?;
        self.lines += turns.len();
        Ok(())
    }

    /// The checkpoint's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Turns recorded so far (before this process and by it).
    pub fn answered(&self) -> usize {
        self.lines
    }

    /// Removes the checkpoint: its run's final file is written.
    pub fn remove(self) -> Result<()> {
        drop(self.file);
        fs_err::remove_file(&self.path)?;
        Ok(())
    }
}

fn to_json<T: Serialize + ?Sized>(value: &T) -> Result<Value> {
    serde_json::to_value(value).map_err(|error| Error::InvalidSetting {
        key: "checkpoint".into(),
        reason: format!("cannot describe the run as JSON: {error}"),
    })
}

/// FNV-1a 64 over canonical JSON (object keys in byte order, no white space): a fixed
/// algorithm, so the same run gives the same fingerprint in every process (`std`'s
/// `DefaultHasher` promises none of that).
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 ^= u64::from(byte);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl Fnv {
    fn of(value: &Value) -> String {
        let mut hash = Fnv::default();
        hash.canonical(value);
        hash.hex()
    }

    fn hex(&self) -> String {
        format!("{:016x}", self.0)
    }

    fn canonical(&mut self, value: &Value) {
        match value {
            Value::Object(map) => {
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                self.write(b"{");
                for (key, value) in entries {
                    self.write(Value::String(key.clone()).to_string().as_bytes());
                    self.write(b":");
                    self.canonical(value);
                    self.write(b",");
                }
                self.write(b"}");
            }
            Value::Array(items) => {
                self.write(b"[");
                for item in items {
                    self.canonical(item);
                    self.write(b",");
                }
                self.write(b"]");
            }
            other => self.write(other.to_string().as_bytes()),
        }
    }
}

#[cfg(test)]
mod tests {
    use music_crs_core::{Prediction, Track};
    use music_crs_generate::reply_check::{ReplyCheck, check_reply};

    use super::*;

    fn turns(n: u32) -> Vec<TurnContext> {
        (1..=n)
            .map(|number| TurnContext {
                session_id: format!("s{}", number.div_ceil(2)),
                turn_number: 2 - number % 2,
                user_message: format!("message {number}"),
                ..TurnContext::default()
            })
            .collect()
    }

    fn predicted(turn: &TurnContext, reply: &str) -> PredictedTurn {
        PredictedTurn {
            prediction: Prediction {
                session_id: turn.session_id.clone(),
                user_id: turn.user_id.clone(),
                turn_number: turn.turn_number,
                predicted_track_ids: vec!["t1".into(), "t2".into()],
                predicted_response: reply.into(),
            },
            reply_check: check_reply(reply),
            reply_replaced: false,
        }
    }

    fn identity(config: &CrsConfig, turns: &[TurnContext]) -> RunIdentity {
        let catalog = Catalog::new(vec![
            Track::new("t1", "Peace Piece", "Bill Evans"),
            Track::new("t2", "So What", "Miles Davis"),
        ])
        .unwrap();
        RunIdentity::new(config, turns, &catalog, &HashMap::new()).unwrap()
    }

    /// A checkpoint of the first `answered` of 4 turns, and what was written.
    fn written(dir: &Path, answered: usize) -> (PathBuf, Vec<TurnContext>, Vec<PredictedTurn>) {
        let turns = turns(4);
        let path = Checkpoint::path_for(&dir.join("out.json"));
        let mut checkpoint =
            Checkpoint::create(&path, &identity(&CrsConfig::default(), &turns)).unwrap();
        let rows: Vec<PredictedTurn> = turns[..answered]
            .iter()
            .map(|t| predicted(t, &format!("reply to {}", t.user_message)))
            .collect();
        checkpoint.append(&rows[..answered.min(1)]).unwrap();
        checkpoint.append(&rows[answered.min(1)..]).unwrap();
        (path, turns, rows)
    }

    #[test]
    fn the_checkpoint_sits_beside_the_output() {
        assert_eq!(
            Checkpoint::path_for(Path::new("exp/inference/bm25.json")),
            Path::new("exp/inference/bm25.json.partial.jsonl")
        );
    }

    #[test]
    fn answered_turns_come_back_and_the_rest_is_appended() {
        let dir = tempfile::tempdir().unwrap();
        let (path, turns, rows) = written(dir.path(), 3);
        let me = identity(&CrsConfig::default(), &turns);
        let mut resumed = Checkpoint::resume(&path, &me, &turns).unwrap();
        assert_eq!(resumed.answered, rows);
        assert!(!resumed.dropped_partial_line);
        assert_eq!(resumed.checkpoint.answered(), 3);
        let last = predicted(&turns[3], "");
        resumed
            .checkpoint
            .append(std::slice::from_ref(&last))
            .unwrap();
        let again = Checkpoint::resume(&path, &me, &turns).unwrap();
        assert_eq!(again.answered.len(), 4);
        assert_eq!(again.answered[3], last);
        assert_eq!(again.answered[3].reply_check, ReplyCheck::Empty);
        again.checkpoint.remove().unwrap();
        assert!(!path.exists());
    }

    #[test]
    fn a_half_written_last_line_is_dropped_and_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let (path, turns, rows) = written(dir.path(), 3);
        let whole = std::fs::read(&path).unwrap();
        // Killed in the middle of writing the third turn's line.
        let cut = whole.len() - 20;
        std::fs::write(&path, &whole[..cut]).unwrap();
        let me = identity(&CrsConfig::default(), &turns);
        let mut resumed = Checkpoint::resume(&path, &me, &turns).unwrap();
        assert!(resumed.dropped_partial_line);
        assert_eq!(resumed.answered, rows[..2]);
        resumed.checkpoint.append(&rows[2..]).unwrap();
        // The file is whole again: the same bytes as if never killed.
        assert_eq!(std::fs::read(&path).unwrap(), whole);
        // Cut right before a line's newline: that line is dropped too.
        std::fs::write(&path, &whole[..whole.len() - 1]).unwrap();
        let resumed = Checkpoint::resume(&path, &me, &turns).unwrap();
        assert!(resumed.dropped_partial_line);
        assert_eq!(resumed.answered, rows[..2]);
    }

    #[test]
    fn a_bad_line_in_the_middle_is_named_by_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let (path, turns, _) = written(dir.path(), 3);
        let text = std::fs::read_to_string(&path).unwrap();
        let mut lines: Vec<&str> = text.lines().collect();
        lines[2] = "{\"prediction\": 7}";
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        let me = identity(&CrsConfig::default(), &turns);
        let err = Checkpoint::resume(&path, &me, &turns).unwrap_err();
        let message = err.to_string();
        assert!(
            matches!(err, Error::CheckpointCorrupt { line: 3, .. }),
            "{message}"
        );
        assert!(
            message.contains("out.json.partial.jsonl, line 3"),
            "{message}"
        );

        // Lines out of the run's order, or more of them than turns, are refused too.
        lines[2] = lines[1];
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        let message = Checkpoint::resume(&path, &me, &turns)
            .unwrap_err()
            .to_string();
        assert!(
            message.contains(
                "line 3: session s1, turn 1, where the run's turn 2 is session s1, turn 2"
            ),
            "{message}"
        );
        let message = Checkpoint::resume(&path, &me, &turns[..1])
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("line 3: more answered turns than the run's 1"),
            "{message}"
        );

        // A file that is no checkpoint at all.
        std::fs::write(&path, "[1, 2]\n").unwrap();
        let message = Checkpoint::resume(&path, &me, &turns)
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("line 1: not a checkpoint header"),
            "{message}"
        );
        std::fs::write(&path, "").unwrap();
        let message = Checkpoint::resume(&path, &me, &turns)
            .unwrap_err()
            .to_string();
        assert!(message.contains("line 1: no header line"), "{message}");
    }

    #[test]
    fn another_run_s_checkpoint_is_refused_naming_what_differs() {
        let dir = tempfile::tempdir().unwrap();
        let (path, turns, _) = written(dir.path(), 2);
        let mut config = CrsConfig::default();
        config.retriever.set_k(10);
        config.tid = "other".into();
        let err = Checkpoint::resume(&path, &identity(&config, &turns), &turns).unwrap_err();
        let Error::CheckpointMismatch { differences, .. } = &err else {
            panic!("{err}");
        };
        assert_eq!(
            differences,
            &[
                "retriever.k: 20 in the checkpoint, 10 now",
                "tid: \"bm25_template\" in the checkpoint, \"other\" now"
            ]
        );
        let message = err.to_string();
        assert!(
            message.contains("out.json.partial.jsonl belongs to another run"),
            "{message}"
        );

        // Fewer turns (another --limit), or the same count with other conversations.
        let fewer = identity(&CrsConfig::default(), &turns[..3]);
        let message = Checkpoint::resume(&path, &fewer, &turns[..3])
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("turns to predict: 4 in the checkpoint, 3 now"),
            "{message}"
        );
        let mut edited = turns.clone();
        edited[3].user_message = "something else".into();
        let message = Checkpoint::resume(&path, &identity(&CrsConfig::default(), &edited), &edited)
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("the turns to predict (their conversations changed)"),
            "{message}"
        );
        // The checkpoint is left as it was.
        let same = identity(&CrsConfig::default(), &turns);
        assert_eq!(
            Checkpoint::resume(&path, &same, &turns)
                .unwrap()
                .answered
                .len(),
            2
        );
    }

    #[test]
    fn identities_are_stable_and_see_model_files_change() {
        let dir = tempfile::tempdir().unwrap();
        let gguf = dir.path().join("m.gguf");
        std::fs::write(&gguf, b"one").unwrap();
        let config = CrsConfig {
            generator: GeneratorConfig::Llama(crate::config::LlamaConfig {
                model: ModelSource::Gguf {
                    path: gguf.clone(),
                    tokenizer: None,
                },
                params: crate::config::LlamaParams::greedy(),
            }),
            ..CrsConfig::default()
        };
        let turns = turns(2);
        let before = identity(&config, &turns);
        assert_eq!(before, identity(&config, &turns));
        assert!(before.differences(&identity(&config, &turns)).is_empty());
        std::fs::write(&gguf, b"longer").unwrap();
        let after = identity(&config, &turns);
        let differences = before.differences(&after);
        assert_eq!(differences.len(), 1, "{differences:?}");
        assert!(differences[0].starts_with("model file "), "{differences:?}");
        assert!(differences[0].contains("m.gguf"), "{differences:?}");
    }
}

//! The reply checks of a run ([`music_crs_generate::reply_check`]): the counts `run` prints
//! in its summary and the per-turn table it writes beside the scores
//! (`exp/scores/<tid>.replies.csv`).

use std::fmt;
use std::path::{Path, PathBuf};

use music_crs_core::Catalog;
use music_crs_generate::reply_check::{RepetitionKind, ReplyCheck, names_track};

use crate::{Error, PredictedTurn, Result};

/// How many replies of a run were empty or degenerate, and how many of those were replaced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplyCounts {
    /// Replies checked (one per turn).
    pub turns: usize,
    /// Replies with nothing but white space.
    pub empty: usize,
    /// Replies stuck in a loop or on one phrase.
    pub degenerate: usize,
    /// Empty or degenerate replies a template reply stands in for.
    pub replaced: usize,
    /// Replies that name the title and artist of their turn's top-ranked track
    /// ([`names_track`]): a grounded reply talks about what it recommends.
    pub name_top_track: usize,
}

impl ReplyCounts {
    /// The counts over `turns`, whose track ids are looked up in `catalog`.
    pub fn of(turns: &[PredictedTurn], catalog: &Catalog) -> Self {
        let mut counts = ReplyCounts {
            turns: turns.len(),
            ..ReplyCounts::default()
        };
        for turn in turns {
            match turn.reply_check {
                ReplyCheck::Ok => {}
                ReplyCheck::Empty => counts.empty += 1,
                ReplyCheck::Degenerate(_) => counts.degenerate += 1,
            }
            counts.replaced += usize::from(turn.reply_replaced);
            counts.name_top_track += usize::from(names_top_track(turn, catalog));
        }
        counts
    }

    /// `count` as a percentage of the replies (0 when there are none).
    pub fn percent(&self, count: usize) -> f64 {
        if self.turns == 0 {
            0.0
        } else {
            100.0 * count as f64 / self.turns as f64
        }
    }
}

impl fmt::Display for ReplyCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "replies: {} checked, {} empty ({:.1}%), {} degenerate ({:.1}%)",
            self.turns,
            self.empty,
            self.percent(self.empty),
            self.degenerate,
            self.percent(self.degenerate)
        )?;
        write!(
            f,
            ", {} name their top track's title and artist ({:.1}%)",
            self.name_top_track,
            self.percent(self.name_top_track)
        )?;
        if self.replaced > 0 {
            write!(
                f,
                ", {} of them replaced by the template reply",
                self.replaced
            )?;
        }
        Ok(())
    }
}

/// Whether the turn's reply names its top-ranked track (false without a track, or for an id
/// the catalog does not hold).
pub fn names_top_track(turn: &PredictedTurn, catalog: &Catalog) -> bool {
    let reply = &turn.prediction.predicted_response;
    turn.prediction
        .predicted_track_ids
        .first()
        .and_then(|id| catalog.get(id))
        .is_some_and(|track| names_track(reply, &track.track_name, &track.artist_name))
}

/// One line per empty or degenerate reply, at most `max` of them, in run order:
/// `session S, turn T: degenerate: "so good" 5 times back to back (10 of 12 tokens); kept`.
pub fn flawed_turn_lines(turns: &[PredictedTurn], max: usize) -> Vec<String> {
    turns
        .iter()
        .filter_map(|turn| {
            let note = flaw_note(&turn.reply_check, turn.reply_replaced)?;
            Some(format!(
                "session {}, turn {}: {note}",
                turn.prediction.session_id, turn.prediction.turn_number
            ))
        })
        .take(max)
        .collect()
}

/// What the check found in a flawed reply and what went out, as `run` and `chat` print it:
/// `empty; template reply sent` or `degenerate: "so good" 5 times back to back (10 of 12
/// tokens); kept`. `None` for a sound reply.
pub fn flaw_note(check: &ReplyCheck, replaced: bool) -> Option<String> {
    if check.is_ok() {
        return None;
    }
    let what = if replaced {
        "template reply sent"
    } else {
        "kept"
    };
    Some(format!("{check}; {what}"))
}

/// The per-turn reply table that goes with the official score file `score_file`:
/// `NAME.replies.csv` beside `NAME.json`.
pub fn reply_table_path(score_file: &Path) -> PathBuf {
    let stem = score_file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "scores".to_owned());
    score_file.with_file_name(format!("{stem}.replies.csv"))
}

/// The columns of the reply table.
pub const REPLY_TABLE_COLUMNS: [&str; 11] = [
    "session_id",
    "turn_number",
    "user_id",
    "reply_check",
    "replaced",
    "repetition",
    "phrase",
    "times",
    "covered_tokens",
    "reply_tokens",
    "names_top_track",
];

/// Writes the reply table of `turns` to `path` (atomically): one row per turn, in run order,
/// with its check (`ok`, `empty`, `degenerate`), whether a template reply was sent instead,
/// and for a degenerate reply the rule (`loop`, `dominant`), the phrase, its count and the
/// tokens it covers of the reply's, and whether the reply names its top-ranked track (looked
/// up in `catalog`).
pub fn write_reply_table(path: &Path, turns: &[PredictedTurn], catalog: &Catalog) -> Result<()> {
    let csv_error = |error: csv::Error| Error::InvalidSetting {
        key: "reply table".into(),
        reason: format!("{}: {error}", path.display()),
    };
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer
        .write_record(REPLY_TABLE_COLUMNS)
        .map_err(csv_error)?;
    for turn in turns {
        let row = &turn.prediction;
        let (kind, phrase, times, covered, tokens) = match &turn.reply_check {
            ReplyCheck::Degenerate(repetition) => (
                match repetition.kind {
                    RepetitionKind::Loop => "loop",
                    RepetitionKind::Dominant => "dominant",
                },
                repetition.phrase.as_str(),
                repetition.times.to_string(),
                repetition.covered_tokens.to_string(),
                repetition.reply_tokens.to_string(),
            ),
            _ => ("", "", String::new(), String::new(), String::new()),
        };
        writer
            .write_record([
                row.session_id.as_str(),
                &row.turn_number.to_string(),
                row.user_id.as_str(),
                turn.reply_check.status(),
                if turn.reply_replaced { "true" } else { "false" },
                kind,
                phrase,
                &times,
                &covered,
                &tokens,
                if names_top_track(turn, catalog) {
                    "true"
                } else {
                    "false"
                },
            ])
            .map_err(csv_error)?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|e| csv_error(e.into_error().into()))?;
    crate::output::write_atomically(path, &bytes)
}

#[cfg(test)]
mod tests {
    use music_crs_core::Prediction;
    use music_crs_generate::reply_check::check_reply;

    use super::*;

    fn catalog() -> Catalog {
        Catalog::new(vec![music_crs_core::Track::new(
            "t",
            "Peace Piece",
            "Bill Evans",
        )])
        .unwrap()
    }

    fn turn(session: &str, number: u32, reply: &str, replaced: bool) -> PredictedTurn {
        PredictedTurn {
            prediction: Prediction {
                session_id: session.into(),
                user_id: "u".into(),
                turn_number: number,
                predicted_track_ids: vec!["t".into()],
                predicted_response: reply.into(),
            },
            reply_check: check_reply(reply),
            reply_replaced: replaced,
        }
    }

    fn turns() -> Vec<PredictedTurn> {
        vec![
            turn("a", 1, "Try Peace Piece by Bill Evans.", false),
            turn("a", 2, "", true),
            turn("b", 1, &"so good ".repeat(5), false),
            turn("b", 2, "", false),
        ]
    }

    #[test]
    fn counts_and_shares_of_flawed_replies() {
        let mut turns = turns();
        turns.push(turn("c", 1, "Peace Piece by Bill Evans, calm.", false));
        turns[4].prediction.predicted_track_ids = vec!["unknown".into(), "t".into()];
        let counts = ReplyCounts::of(&turns, &catalog());
        assert_eq!(
            counts,
            ReplyCounts {
                turns: 5,
                empty: 2,
                degenerate: 1,
                replaced: 1,
                name_top_track: 1,
            }
        );
        assert_eq!(
            counts.to_string(),
            "replies: 5 checked, 2 empty (40.0%), 1 degenerate (20.0%), 1 name their top \
             track's title and artist (20.0%), 1 of them replaced by the template reply"
        );
        assert_eq!(
            ReplyCounts::of(&[], &catalog()).to_string(),
            "replies: 0 checked, 0 empty (0.0%), 0 degenerate (0.0%), 0 name their top track's \
             title and artist (0.0%)"
        );
    }

    #[test]
    fn flawed_replies_get_a_note_and_sound_ones_none() {
        let note = |text: &str, replaced| flaw_note(&check_reply(text), replaced);
        assert_eq!(note("Try \"Blue in Green\" by Miles Davis.", false), None);
        assert_eq!(
            note("", true).as_deref(),
            Some("empty; template reply sent")
        );
        let looping = note(&"so good ".repeat(6), false).unwrap();
        assert!(looping.starts_with("degenerate: "), "{looping}");
        assert!(looping.ends_with("; kept"), "{looping}");
    }

    #[test]
    fn flawed_turns_are_listed_in_order_and_capped() {
        let lines = flawed_turn_lines(&turns(), 2);
        assert_eq!(
            lines,
            [
                "session a, turn 2: empty; template reply sent",
                "session b, turn 1: degenerate: \"so good\" 5 times back to back (10 of 10 \
                 tokens); kept"
            ]
        );
    }

    #[test]
    fn the_table_has_a_row_per_turn() {
        let dir = tempfile::tempdir().unwrap();
        let path = reply_table_path(&dir.path().join("scores/run.json"));
        assert_eq!(path, dir.path().join("scores/run.replies.csv"));
        write_reply_table(&path, &turns(), &catalog()).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "session_id,turn_number,user_id,reply_check,replaced,repetition,phrase,times,\
                 covered_tokens,reply_tokens,names_top_track",
                "a,1,u,ok,false,,,,,,true",
                "a,2,u,empty,true,,,,,,false",
                "b,1,u,degenerate,false,loop,so good,5,10,10,false",
                "b,2,u,empty,false,,,,,,false",
            ]
        );
    }
}

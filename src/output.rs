//! Writing prediction files: the challenge's JSON array, written atomically.

use std::io::Write;
use std::path::Path;

use std::collections::HashMap;

use music_crs_core::{Prediction, TurnContext};
use serde::Serialize;

use crate::{Error, Result};

/// Writes `value` as JSON to `path` atomically ([`music_crs_core::atomic`]): a crash never
/// leaves a half-written file. Creates the parent directory. Non-ASCII text is written as is
/// (UTF-8), as the baseline's `json.dump(..., ensure_ascii=False)` does.
pub fn write_json_atomic<T: Serialize + ?Sized>(path: &Path, value: &T) -> Result<()> {
    music_crs_core::atomic::write_atomically(path, |writer| {
        serde_json::to_writer(&mut *writer, value).map_err(|source| Error::Json {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(writer.write_all(b"\n")?)
    })
}

/// Writes `bytes` to `path` atomically, as [`write_json_atomic`] does.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    Ok(music_crs_core::atomic::write_bytes_atomically(path, bytes)?)
}

/// Writes a prediction file (`exp/inference/<tid>.json`): a JSON array of
/// `{session_id, user_id, turn_number, predicted_track_ids, predicted_response}`.
pub fn write_predictions(path: &Path, predictions: &[Prediction]) -> Result<()> {
    write_json_atomic(path, predictions)
}

/// Reads a prediction file, naming the path on error.
pub fn read_predictions(path: &Path) -> Result<Vec<Prediction>> {
    let text = fs_err::read_to_string(path)?;
    serde_json::from_str(&text).map_err(|source| Error::Json {
        path: path.to_path_buf(),
        source,
    })
}

/// Problems of coverage: turns to predict with no prediction or with several, and
/// predictions for turns not asked for. Checks a blind-set file, whose turns have no gold.
pub fn coverage_problems(predictions: &[Prediction], turns: &[TurnContext]) -> Vec<String> {
    let mut count: HashMap<(&str, u32), usize> = turns
        .iter()
        .map(|t| ((t.session_id.as_str(), t.turn_number), 0))
        .collect();
    let mut problems = Vec::new();
    for (row, prediction) in predictions.iter().enumerate() {
        let key = (prediction.session_id.as_str(), prediction.turn_number);
        match count.get_mut(&key) {
            Some(seen) => *seen += 1,
            None => problems.push(format!(
                "row {}, session {}, turn {}: not a turn to predict",
                row + 1,
                key.0,
                key.1
            )),
        }
    }
    for turn in turns {
        match count[&(turn.session_id.as_str(), turn.turn_number)] {
            1 => {}
            0 => problems.push(format!(
                "session {}, turn {}: no prediction",
                turn.session_id, turn.turn_number
            )),
            n => problems.push(format!(
                "session {}, turn {}: {n} predictions, expected one",
                turn.session_id, turn.turn_number
            )),
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predictions_round_trip_with_unescaped_unicode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/out.json");
        let predictions = vec![Prediction {
            session_id: "s".into(),
            user_id: String::new(),
            turn_number: 3,
            predicted_track_ids: vec!["a".into(), "b".into()],
            predicted_response: "Écoute « Sœur » — 夜に駆ける".into(),
        }];
        write_predictions(&path, &predictions).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("夜に駆ける"), "{text}");
        assert!(text.starts_with("[{\"session_id\":\"s\",\"user_id\":\"\",\"turn_number\":3,"));
        assert_eq!(read_predictions(&path).unwrap(), predictions);
        // No temporary file is left behind.
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "{leftovers:?}");
    }

    #[test]
    fn coverage_lists_missing_extra_and_repeated_turns() {
        let turn = |s: &str, t: u32| TurnContext {
            session_id: s.into(),
            turn_number: t,
            ..TurnContext::default()
        };
        let prediction = |s: &str, t: u32| Prediction {
            session_id: s.into(),
            user_id: String::new(),
            turn_number: t,
            predicted_track_ids: vec![],
            predicted_response: String::new(),
        };
        let turns = [turn("a", 3), turn("b", 1), turn("c", 8)];
        assert!(
            coverage_problems(
                &[prediction("b", 1), prediction("a", 3), prediction("c", 8)],
                &turns
            )
            .is_empty()
        );
        let problems = coverage_problems(
            &[prediction("a", 3), prediction("a", 3), prediction("b", 2)],
            &turns,
        );
        assert_eq!(problems.len(), 4, "{problems:#?}");
        assert!(problems[0].contains("row 3, session b, turn 2: not a turn to predict"));
        assert!(
            problems
                .iter()
                .any(|p| p.contains("session a, turn 3: 2 predictions"))
        );
        assert!(
            problems
                .iter()
                .any(|p| p.contains("session c, turn 8: no prediction"))
        );
    }

    #[test]
    fn unreadable_file_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.json");
        std::fs::write(&path, "[{\"session_id\": 1}]").unwrap();
        let err = read_predictions(&path).unwrap_err().to_string();
        assert!(err.contains("bad.json"), "{err}");
        let missing = read_predictions(&dir.path().join("missing.json"))
            .unwrap_err()
            .to_string();
        assert!(missing.contains("missing.json"), "{missing}");
    }
}

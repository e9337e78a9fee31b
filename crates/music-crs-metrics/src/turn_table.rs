//! The per-turn table saved beside every official score file: one row per ground-truth
//! turn with the gold track's rank and the turn's nDCG and hit at every cutoff, as CSV and
//! JSON that pandas reads directly (`pd.read_csv`, `pd.read_json`).

use std::path::{Path, PathBuf};

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

use crate::evaluate::write_atomically;
use crate::{Error, Result, Scores, TurnRow};

/// The paths of the two per-turn tables that go with the official score file `score_file`:
/// `NAME.turns.csv` and `NAME.turns.json` beside `NAME.json`.
pub fn turn_table_paths(score_file: &Path) -> (PathBuf, PathBuf) {
    let stem = score_file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "scores".to_owned());
    let with = |extension: &str| score_file.with_file_name(format!("{stem}.turns.{extension}"));
    (with("csv"), with("json"))
}

/// Removes the official score file `score_file` and its per-turn tables, where they exist.
/// Called before the predictions they scored are replaced: should the new predictions then
/// fail to score, or the process be killed before they are scored, no old scores are left
/// beside them looking like theirs. Returns the paths removed.
pub fn remove_score_files(score_file: &Path) -> Result<Vec<PathBuf>> {
    let (csv_path, json_path) = turn_table_paths(score_file);
    let mut removed = Vec::new();
    for path in [score_file.to_path_buf(), csv_path, json_path] {
        match std::fs::remove_file(&path) {
            Ok(()) => removed.push(path),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(Error::io(&path, err)),
        }
    }
    Ok(removed)
}

/// The column names: session, turn, user, gold rank, then `ndcg@k` and `hit@k` per cutoff.
fn header(cutoffs: &[usize]) -> Vec<String> {
    let mut names: Vec<String> = ["session_id", "turn_number", "user_id", "gold_rank"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    names.extend(cutoffs.iter().map(|k| format!("ndcg@{k}")));
    names.extend(cutoffs.iter().map(|k| format!("hit@{k}")));
    names
}

/// One row as JSON: keys in [`header`] order, `gold_rank` null when the gold was missed.
struct JsonRow<'a> {
    names: &'a [String],
    row: &'a TurnRow,
}

impl Serialize for JsonRow<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let row = self.row;
        let mut map = serializer.serialize_map(Some(self.names.len()))?;
        map.serialize_entry(&self.names[0], &row.session_id)?;
        map.serialize_entry(&self.names[1], &row.turn_number)?;
        map.serialize_entry(&self.names[2], &row.user_id)?;
        map.serialize_entry(&self.names[3], &row.gold_rank)?;
        let count = row.metrics.len();
        for (i, m) in row.metrics.iter().enumerate() {
            map.serialize_entry(&self.names[4 + i], &m.ndcg)?;
        }
        for (i, m) in row.metrics.iter().enumerate() {
            map.serialize_entry(&self.names[4 + count + i], &m.hit)?;
        }
        map.end()
    }
}

struct JsonTable<'a> {
    names: &'a [String],
    rows: &'a [TurnRow],
}

impl Serialize for JsonTable<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.rows.len()))?;
        for row in self.rows {
            seq.serialize_element(&JsonRow {
                names: self.names,
                row,
            })?;
        }
        seq.end()
    }
}

impl Scores {
    /// The cutoffs these scores were computed at.
    pub fn cutoffs(&self) -> Vec<usize> {
        self.macro_scores.at.iter().map(|m| m.k).collect()
    }

    /// The per-turn table as CSV (header, then one line per ground-truth turn; an empty
    /// `gold_rank` when the gold track was not in the list).
    pub fn turns_csv(&self) -> Result<String> {
        let mut writer = csv::Writer::from_writer(Vec::new());
        let csv_error = |err: csv::Error| Error::InvalidParams {
            field: "turn table",
            reason: err.to_string(),
        };
        writer
            .write_record(header(&self.cutoffs()))
            .map_err(csv_error)?;
        for row in &self.turns {
            let mut record = vec![
                row.session_id.clone(),
                row.turn_number.to_string(),
                row.user_id.clone(),
                row.gold_rank.map(|r| r.to_string()).unwrap_or_default(),
            ];
            record.extend(row.metrics.iter().map(|m| m.ndcg.to_string()));
            record.extend(row.metrics.iter().map(|m| m.hit.to_string()));
            writer.write_record(&record).map_err(csv_error)?;
        }
        let bytes = writer.into_inner().map_err(|err| Error::InvalidParams {
            field: "turn table",
            reason: err.to_string(),
        })?;
        Ok(String::from_utf8(bytes).expect("csv of UTF-8 fields is UTF-8"))
    }

    /// The per-turn table as a JSON array of objects with the CSV's columns as keys.
    pub fn turns_json(&self) -> String {
        let names = header(&self.cutoffs());
        let table = JsonTable {
            names: &names,
            rows: &self.turns,
        };
        serde_json::to_string_pretty(&table).expect("the turn table serializes")
    }

    /// Writes the per-turn tables beside the official score file `score_file` (see
    /// [`turn_table_paths`]), each atomically; returns their paths.
    pub fn write_turn_tables(&self, score_file: impl AsRef<Path>) -> Result<(PathBuf, PathBuf)> {
        let (csv_path, json_path) = turn_table_paths(score_file.as_ref());
        write_atomically(&csv_path, self.turns_csv()?.as_bytes())?;
        write_atomically(&json_path, self.turns_json().as_bytes())?;
        Ok((csv_path, json_path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EvaluationParams, GroundTruth, PredictionFile, evaluate};

    #[test]
    fn removing_score_files_takes_all_three_and_tolerates_none() {
        let dir = tempfile::tempdir().unwrap();
        let score_file = dir.path().join("bm25.json");
        let (csv_path, json_path) = turn_table_paths(&score_file);
        for path in [&score_file, &csv_path, &json_path] {
            std::fs::write(path, b"old").unwrap();
        }
        let kept = dir.path().join("bm25.other.json");
        std::fs::write(&kept, b"other").unwrap();
        assert_eq!(remove_score_files(&score_file).unwrap().len(), 3);
        for path in [&score_file, &csv_path, &json_path] {
            assert!(!path.exists(), "{}", path.display());
        }
        assert!(kept.exists());
        assert!(remove_score_files(&score_file).unwrap().is_empty());
    }

    fn scores() -> Scores {
        let truth = GroundTruth::from_json_str(
            r#"[{"session_id": "s,1", "user_id": "u1", "turn_number": 1, "ground_truth_track_id": "t2"},
                {"session_id": "s,1", "user_id": "u1", "turn_number": 2, "ground_truth_track_id": "t9"}]"#,
            "gt.json",
        )
        .unwrap();
        let file = PredictionFile::from_json_str(
            r#"[{"session_id": "s,1", "user_id": "u1", "turn_number": 1,
                 "predicted_track_ids": ["t1", "t2"], "predicted_response": "a b"},
                {"session_id": "s,1", "user_id": "u1", "turn_number": 2,
                 "predicted_track_ids": ["t1"], "predicted_response": "c d"}]"#,
            "p.json",
        )
        .unwrap();
        let params = EvaluationParams {
            catalog_size: 10,
            ..EvaluationParams::default()
        };
        evaluate(&truth, file.predictions(), &params).unwrap()
    }

    #[test]
    fn csv_has_one_line_per_turn_and_quotes_commas() {
        let text = scores().turns_csv().unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "session_id,turn_number,user_id,gold_rank,ndcg@1,ndcg@10,ndcg@20,hit@1,hit@10,hit@20"
        );
        let ndcg = 1.0 / 3f64.log2();
        assert_eq!(lines[1], format!("\"s,1\",1,u1,2,0,{ndcg},{ndcg},0,1,1"));
        assert_eq!(lines[2], "\"s,1\",2,u1,,0,0,0,0,0,0");
        assert_eq!(lines.len(), 3);
    }

    #[test]
    fn json_rows_keep_the_column_order_and_null_ranks() {
        let text = scores().turns_json();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value[0]["gold_rank"], 2);
        assert!(value[1]["gold_rank"].is_null());
        assert_eq!(value[0]["hit@10"], 1.0);
        let first_keys: Vec<&str> = text
            .lines()
            .skip(2)
            .take(4)
            .map(|line| line.trim().split('"').nth(1).unwrap())
            .collect();
        assert_eq!(
            first_keys,
            ["session_id", "turn_number", "user_id", "gold_rank"]
        );
    }

    #[test]
    fn tables_are_written_beside_the_score_file() {
        let dir = tempfile::tempdir().unwrap();
        let (csv_path, json_path) = scores()
            .write_turn_tables(dir.path().join("run.json"))
            .unwrap();
        assert_eq!(csv_path, dir.path().join("run.turns.csv"));
        assert_eq!(json_path, dir.path().join("run.turns.json"));
        assert!(
            std::fs::read_to_string(csv_path)
                .unwrap()
                .starts_with("session_id,")
        );
    }
}

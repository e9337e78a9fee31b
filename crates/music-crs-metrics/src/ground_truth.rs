//! The gold tracks of every (session, turn) to score.

use std::collections::HashMap;
use std::path::Path;

use music_crs_core::LabeledTurn;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{json_type_name, parse_json_array, read_text};
use crate::fast_hash::{FastHashMap, repeats};
use crate::{Error, Result};

/// The gold of one turn: the track(s) the dataset recommended there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoldTurn {
    /// The session.
    pub session_id: String,
    /// The listener (empty when unknown).
    pub user_id: String,
    /// The turn (1..8 in the challenge data).
    pub turn_number: u32,
    /// The relevant track ids: one in the challenge data, several allowed; unique.
    pub gold_track_ids: Vec<String>,
}

/// The ground truth of an evaluation: gold turns in file order, indexed by
/// (session, turn). Built from the official ground-truth JSON or from turn contexts.
#[derive(Debug, Clone, Default)]
pub struct GroundTruth {
    turns: Vec<GoldTurn>,
    /// Session → turn → index into `turns`: lookups stay constant-time however many turns
    /// a (crafted) session holds.
    by_session: HashMap<String, FastHashMap<u32, usize>>,
}

impl GroundTruth {
    /// Builds the ground truth; fails (listing every problem) on a turn without gold ids,
    /// duplicate gold ids in a turn, or a (session, turn) given twice.
    pub fn new(turns: Vec<GoldTurn>) -> Result<Self> {
        let rows = (1..=turns.len()).collect();
        Self::build(turns, rows, Vec::new(), "ground truth")
    }

    /// Indexes `turns` (found at the 1-based `rows` of their source), adding the
    /// problems found to those of parsing.
    fn build(
        turns: Vec<GoldTurn>,
        rows: Vec<usize>,
        mut problems: Vec<String>,
        source_name: &str,
    ) -> Result<Self> {
        let mut by_session: HashMap<String, FastHashMap<u32, usize>> = HashMap::new();
        for (index, (turn, row)) in turns.iter().zip(&rows).enumerate() {
            let at = format!(
                "row {row}, session {}, turn {}",
                turn.session_id, turn.turn_number
            );
            if turn.gold_track_ids.is_empty() {
                problems.push(format!("{at}: no gold track id"));
            }
            for &(rank, _) in &repeats(&turn.gold_track_ids) {
                let id = &turn.gold_track_ids[rank - 1];
                problems.push(format!("{at}: gold track id {id:?} is given twice"));
            }
            let entries = by_session.entry(turn.session_id.clone()).or_default();
            match entries.get(&turn.turn_number) {
                Some(&first) => problems.push(format!("{at}: duplicate of row {}", rows[first])),
                None => {
                    entries.insert(turn.turn_number, index);
                }
            }
        }
        if !problems.is_empty() {
            return Err(Error::InvalidGroundTruth {
                source_name: source_name.to_owned(),
                problems,
            });
        }
        Ok(GroundTruth { turns, by_session })
    }

    /// Reads the official ground-truth JSON: an array of `{session_id, user_id,
    /// turn_number, ground_truth_track_id}` rows (`ground_truth_track_id` may also be an
    /// array of ids; `user_id` may be absent). Every malformed row is reported.
    pub fn from_json_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = read_text(path)?;
        Self::from_json_str(&text, &path.display().to_string())
    }

    /// [`GroundTruth::from_json_file`] on text; errors name `source_name`.
    pub fn from_json_str(text: &str, source_name: &str) -> Result<Self> {
        let rows = parse_json_array(text, source_name)?;
        let mut turns = Vec::with_capacity(rows.len());
        let mut row_numbers = Vec::with_capacity(rows.len());
        let mut problems = Vec::new();
        for (index, row) in rows.iter().enumerate() {
            match parse_gold_row(row) {
                Ok(turn) => {
                    turns.push(turn);
                    row_numbers.push(index + 1);
                }
                Err(reason) => problems.push(format!("row {}: {reason}", index + 1)),
            }
        }
        Self::build(turns, row_numbers, problems, source_name)
    }

    /// Ground truth from labeled turns (e.g. every turn of a conversations split), using
    /// each turn's `gold_track_id`; fails naming every turn that has none.
    pub fn from_labeled_turns<'a, I>(labeled: I) -> Result<Self>
    where
        I: IntoIterator<Item = &'a LabeledTurn>,
    {
        let mut turns = Vec::new();
        let mut problems = Vec::new();
        for turn in labeled {
            let context = &turn.context;
            match &turn.gold_track_id {
                Some(gold) => turns.push(GoldTurn {
                    session_id: context.session_id.clone(),
                    user_id: context.user_id.clone(),
                    turn_number: context.turn_number,
                    gold_track_ids: vec![gold.clone()],
                }),
                None => problems.push(format!(
                    "session {}, turn {}: the turn context has no gold track id",
                    context.session_id, context.turn_number
                )),
            }
        }
        let rows = (1..=turns.len()).collect();
        Self::build(turns, rows, problems, "turn contexts")
    }

    /// The gold turns, in the order given.
    pub fn turns(&self) -> &[GoldTurn] {
        &self.turns
    }

    /// The gold turn of (session, turn), if any.
    pub fn get(&self, session_id: &str, turn_number: u32) -> Option<&GoldTurn> {
        self.by_session
            .get(session_id)?
            .get(&turn_number)
            .map(|&index| &self.turns[index])
    }

    /// True when (session, turn) is to be scored.
    pub fn contains(&self, session_id: &str, turn_number: u32) -> bool {
        self.get(session_id, turn_number).is_some()
    }

    /// The number of gold turns.
    pub fn len(&self) -> usize {
        self.turns.len()
    }

    /// True when there is no gold turn.
    pub fn is_empty(&self) -> bool {
        self.turns.is_empty()
    }

    /// The number of distinct sessions.
    pub fn session_count(&self) -> usize {
        self.by_session.len()
    }
}

/// One official ground-truth row, or why it is malformed.
fn parse_gold_row(row: &Value) -> std::result::Result<GoldTurn, String> {
    let Value::Object(fields) = row else {
        return Err(format!("expected an object, found {}", json_type_name(row)));
    };
    let string_field = |name: &str| -> std::result::Result<String, String> {
        match fields.get(name) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(format!(
                "{name} must be a string, found {}",
                json_type_name(other)
            )),
            None => Err(format!("missing field {name}")),
        }
    };
    let session_id = string_field("session_id")?;
    let at = |reason: String| format!("session {session_id}: {reason}");
    let user_id = match fields.get("user_id") {
        None | Some(Value::Null) => String::new(),
        Some(_) => string_field("user_id").map_err(at)?,
    };
    let turn_number = match fields.get("turn_number") {
        Some(value) => turn_number_of(value).map_err(at)?,
        None => return Err(at("missing field turn_number".to_owned())),
    };
    let at = |reason: String| format!("session {session_id}, turn {turn_number}: {reason}");
    let gold_track_ids = match fields.get("ground_truth_track_id") {
        Some(Value::String(id)) => vec![id.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(id) => Ok(id.clone()),
                other => Err(at(format!(
                    "ground_truth_track_id items must be strings, found {}",
                    json_type_name(other)
                ))),
            })
            .collect::<std::result::Result<_, _>>()?,
        Some(other) => {
            return Err(at(format!(
                "ground_truth_track_id must be a string or an array of strings, found {}",
                json_type_name(other)
            )));
        }
        None => return Err(at("missing field ground_truth_track_id".to_owned())),
    };
    Ok(GoldTurn {
        session_id,
        user_id,
        turn_number,
        gold_track_ids,
    })
}

/// A turn number: a non-negative JSON integer that fits in `u32`.
pub(crate) fn turn_number_of(value: &Value) -> std::result::Result<u32, String> {
    value
        .as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| match value {
            Value::Number(n) => format!("turn_number must be a non-negative integer, found {n}"),
            other => format!(
                "turn_number must be an integer, found {}",
                json_type_name(other)
            ),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_official_rows_and_id_lists() {
        let text = r#"[
            {"session_id": "s", "user_id": "u", "turn_number": 1, "ground_truth_track_id": "a"},
            {"session_id": "s", "turn_number": 2, "ground_truth_track_id": ["b", "c"]}
        ]"#;
        let truth = GroundTruth::from_json_str(text, "gt.json").unwrap();
        assert_eq!(truth.len(), 2);
        assert_eq!(truth.session_count(), 1);
        assert_eq!(truth.get("s", 2).unwrap().gold_track_ids, ["b", "c"]);
        assert_eq!(truth.get("s", 1).unwrap().user_id, "u");
        assert!(!truth.contains("s", 3));
    }

    #[test]
    fn every_bad_row_is_reported() {
        let text = r#"[
            {"session_id": "s", "turn_number": "1", "ground_truth_track_id": "a"},
            {"session_id": "s", "turn_number": 2},
            {"session_id": "s", "turn_number": 3, "ground_truth_track_id": ["x", "x"]},
            {"session_id": "s", "turn_number": 3, "ground_truth_track_id": "y"},
            7
        ]"#;
        let err = GroundTruth::from_json_str(text, "gt.json").unwrap_err();
        let Error::InvalidGroundTruth { problems, .. } = &err else {
            panic!("unexpected error {err}");
        };
        assert_eq!(problems.len(), 5, "{err}");
        let message = err.to_string();
        assert!(
            message.contains("row 1: session s: turn_number must be an integer, found a string")
        );
        assert!(message.contains("row 2: session s, turn 2: missing field ground_truth_track_id"));
        assert!(message.contains("gold track id \"x\" is given twice"));
        assert!(message.contains("row 4, session s, turn 3: duplicate of row 3"));
        assert!(message.contains("expected an object, found an integer"));
    }
}

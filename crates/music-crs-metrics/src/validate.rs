//! Reading and checking a prediction file: every problem of every row, each named by
//! its row, session and turn.

use std::collections::{BTreeSet, HashSet};
use std::fmt;
use std::hash::BuildHasher;
use std::path::Path;

use music_crs_core::{Catalog, MAX_PREDICTED_TRACKS, Prediction};

use crate::error::read_text;
use crate::fast_hash::{FastHashMap, FastHashSet, repeats};
use crate::json_rows::{JsonRow, Loose, RowFields, for_each_row};
use crate::{GroundTruth, Result};

/// A set of valid track ids (the catalog) that predictions are checked against.
pub trait TrackIdSet: Send + Sync {
    /// True when `track_id` is in the set.
    fn contains_track_id(&self, track_id: &str) -> bool;
}

impl<S: BuildHasher + Send + Sync> TrackIdSet for HashSet<String, S> {
    fn contains_track_id(&self, track_id: &str) -> bool {
        self.contains(track_id)
    }
}

impl TrackIdSet for BTreeSet<String> {
    fn contains_track_id(&self, track_id: &str) -> bool {
        self.contains(track_id)
    }
}

impl TrackIdSet for Catalog {
    fn contains_track_id(&self, track_id: &str) -> bool {
        self.contains(track_id)
    }
}

/// What is wrong with a prediction file, at one place.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProblemKind {
    /// A row is not a JSON object.
    RowNotObject {
        /// The JSON type found.
        found: &'static str,
    },
    /// A required field is absent.
    MissingField {
        /// The field.
        field: &'static str,
    },
    /// A field (or a list item, e.g. `predicted_track_ids[3]`) has the wrong type or value.
    WrongType {
        /// The field.
        field: String,
        /// What it must be.
        expected: &'static str,
        /// What it is.
        found: String,
    },
    /// `predicted_track_ids` holds more ids than allowed.
    TooManyTrackIds {
        /// How many it holds.
        count: usize,
        /// The most allowed.
        max: usize,
    },
    /// `predicted_track_ids` holds an id twice.
    DuplicateTrackId {
        /// The repeated id.
        track_id: String,
        /// Its first 1-based rank.
        first_rank: usize,
        /// The 1-based rank of the repeat.
        rank: usize,
    },
    /// A predicted id is not in the catalog.
    UnknownTrackId {
        /// The id.
        track_id: String,
        /// Its 1-based rank.
        rank: usize,
    },
    /// A second row for the same (session, turn); the official evaluator uses the first.
    DuplicateRow {
        /// The 1-based row that came first.
        first_row: usize,
    },
    /// A row for a (session, turn) the ground truth does not have.
    UnknownTurn,
    /// A (session, turn) of the ground truth has no row.
    MissingPrediction,
}

/// One problem of a prediction file: where it is and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The 1-based row of the JSON array (`None` for a missing prediction).
    pub row: Option<usize>,
    /// The session, when known.
    pub session_id: Option<String>,
    /// The turn, when known.
    pub turn_number: Option<u32>,
    /// What is wrong.
    pub kind: ProblemKind,
}

impl Problem {
    /// True when the evaluator cannot score around this problem: the official code
    /// raises on duplicate ids and has no prediction for a missing turn.
    pub fn blocks_scoring(&self) -> bool {
        matches!(
            self.kind,
            ProblemKind::DuplicateTrackId { .. } | ProblemKind::MissingPrediction
        )
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut place = Vec::new();
        if let Some(row) = self.row {
            place.push(format!("row {row}"));
        }
        if let Some(session) = &self.session_id {
            place.push(format!("session {session}"));
        }
        if let Some(turn) = self.turn_number {
            place.push(format!("turn {turn}"));
        }
        write!(f, "{}: ", place.join(", "))?;
        match &self.kind {
            ProblemKind::RowNotObject { found } => write!(f, "expected an object, found {found}"),
            ProblemKind::MissingField { field } => write!(f, "missing field {field}"),
            ProblemKind::WrongType {
                field,
                expected,
                found,
            } => write!(f, "{field} must be {expected}, found {found}"),
            ProblemKind::TooManyTrackIds { count, max } => write!(
                f,
                "predicted_track_ids has {count} ids, at most {max} are allowed"
            ),
            ProblemKind::DuplicateTrackId {
                track_id,
                first_rank,
                rank,
            } => write!(
                f,
                "predicted_track_ids repeats {track_id:?} at rank {rank} (first at rank {first_rank})"
            ),
            ProblemKind::UnknownTrackId { track_id, rank } => {
                write!(
                    f,
                    "track id {track_id:?} at rank {rank} is not in the catalog"
                )
            }
            ProblemKind::DuplicateRow { first_row } => write!(
                f,
                "second prediction for this turn (first in row {first_row}, which is the one scored)"
            ),
            ProblemKind::UnknownTurn => write!(f, "this turn is not in the ground truth"),
            ProblemKind::MissingPrediction => {
                write!(f, "no prediction for this turn of the ground truth")
            }
        }
    }
}

/// How many problems of each sort a report holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProblemCounts {
    /// Rows that are not objects or have a missing or mistyped field.
    pub malformed_rows: usize,
    /// Lists longer than allowed.
    pub too_many_track_ids: usize,
    /// Ids repeated within a list.
    pub duplicate_track_ids: usize,
    /// Ids not in the catalog.
    pub unknown_track_ids: usize,
    /// Second rows for one (session, turn).
    pub duplicate_rows: usize,
    /// Rows for turns the ground truth lacks.
    pub unknown_turns: usize,
    /// Ground-truth turns without a row.
    pub missing_predictions: usize,
}

impl ProblemCounts {
    /// The total number of problems.
    pub fn total(&self) -> usize {
        self.malformed_rows
            + self.too_many_track_ids
            + self.duplicate_track_ids
            + self.unknown_track_ids
            + self.duplicate_rows
            + self.unknown_turns
            + self.missing_predictions
    }
}

impl fmt::Display for ProblemCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts = [
            (self.malformed_rows, "malformed rows"),
            (self.too_many_track_ids, "lists too long"),
            (self.duplicate_track_ids, "repeated ids"),
            (self.unknown_track_ids, "ids not in the catalog"),
            (self.duplicate_rows, "duplicate rows"),
            (self.unknown_turns, "turns not in the ground truth"),
            (self.missing_predictions, "missing predictions"),
        ];
        let listed: Vec<String> = parts
            .iter()
            .filter(|(count, _)| *count > 0)
            .map(|(count, what)| format!("{count} {what}"))
            .collect();
        if listed.is_empty() {
            write!(f, "no problems")
        } else {
            write!(f, "{}", listed.join(", "))
        }
    }
}

/// The outcome of validating predictions: every problem found, in row order (missing
/// turns last, in ground-truth order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationReport {
    source_name: String,
    rows: usize,
    problems: Vec<Problem>,
    counts: ProblemCounts,
}

impl ValidationReport {
    pub(crate) fn from_problems(
        source_name: String,
        rows: usize,
        mut problems: Vec<Problem>,
    ) -> Self {
        // Stable: problems of one row keep the order they were found in.
        problems.sort_by_key(|p| p.row.unwrap_or(usize::MAX));
        let mut counts = ProblemCounts::default();
        let mut malformed = HashSet::new();
        for problem in &problems {
            match problem.kind {
                ProblemKind::RowNotObject { .. }
                | ProblemKind::MissingField { .. }
                | ProblemKind::WrongType { .. } => {
                    malformed.insert(problem.row);
                }
                ProblemKind::TooManyTrackIds { .. } => counts.too_many_track_ids += 1,
                ProblemKind::DuplicateTrackId { .. } => counts.duplicate_track_ids += 1,
                ProblemKind::UnknownTrackId { .. } => counts.unknown_track_ids += 1,
                ProblemKind::DuplicateRow { .. } => counts.duplicate_rows += 1,
                ProblemKind::UnknownTurn => counts.unknown_turns += 1,
                ProblemKind::MissingPrediction => counts.missing_predictions += 1,
            }
        }
        counts.malformed_rows = malformed.len();
        ValidationReport {
            source_name,
            rows,
            problems,
            counts,
        }
    }

    /// True when no problem was found.
    pub fn is_valid(&self) -> bool {
        self.problems.is_empty()
    }

    /// True when nothing prevents scoring (see [`Problem::blocks_scoring`]).
    pub fn is_scorable(&self) -> bool {
        !self.problems.iter().any(Problem::blocks_scoring)
    }

    /// Every problem found.
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }

    /// How many problems of each sort.
    pub fn counts(&self) -> ProblemCounts {
        self.counts
    }

    /// The number of rows checked.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The file (or in-memory source) checked.
    pub fn source_name(&self) -> &str {
        &self.source_name
    }

    /// A one-line summary: source, rows and problem counts.
    pub fn summary(&self) -> String {
        if self.is_valid() {
            format!("{}: {} rows, valid", self.source_name, self.rows)
        } else {
            format!(
                "{}: {} rows, {} problem(s): {}",
                self.source_name,
                self.rows,
                self.problems.len(),
                self.counts
            )
        }
    }
}

impl fmt::Display for ValidationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.capped(usize::MAX))
    }
}

impl ValidationReport {
    /// The report with at most `max` problems listed, then how many more there are (the
    /// summary line counts them all by sort).
    pub fn capped(&self, max: usize) -> CappedReport<'_> {
        CappedReport { report: self, max }
    }
}

/// A [`ValidationReport`] shown with a bounded list of problems: see
/// [`ValidationReport::capped`].
#[derive(Debug, Clone, Copy)]
pub struct CappedReport<'a> {
    report: &'a ValidationReport,
    max: usize,
}

impl CappedReport<'_> {
    /// The problems not listed.
    pub fn hidden(&self) -> usize {
        self.report.problems.len().saturating_sub(self.max)
    }
}

impl fmt::Display for CappedReport<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.report.summary())?;
        for problem in self.report.problems.iter().take(self.max) {
            write!(f, "\n  - {problem}")?;
        }
        let hidden = self.hidden();
        if hidden > 0 {
            write!(f, "\n  ... and {hidden} more problem(s)")?;
        }
        Ok(())
    }
}

/// A row whose session and turn could be read, even when other fields could not.
#[derive(Debug, Clone)]
struct RowKey {
    row: usize,
    session_id: String,
    turn_number: u32,
}

/// A prediction file read as JSON: the rows that are well-formed, plus the problems of
/// those that are not. Check it with a [`Validator`].
#[derive(Debug, Clone)]
pub struct PredictionFile {
    source_name: String,
    rows: usize,
    predictions: Vec<Prediction>,
    prediction_rows: Vec<usize>,
    /// Keys of the malformed rows whose session and turn were readable.
    partial_keys: Vec<RowKey>,
    problems: Vec<Problem>,
}

impl PredictionFile {
    /// Reads a prediction file. Fails only when it cannot be read or is not a JSON array
    /// (the error names the file and serde_json's line and column); malformed rows are
    /// kept as problems for the [`ValidationReport`].
    pub fn from_json_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = read_text(path)?;
        Self::from_json_str(&text, &path.display().to_string())
    }

    /// [`PredictionFile::from_json_file`] on text; errors name `source_name`.
    pub fn from_json_str(text: &str, source_name: &str) -> Result<Self> {
        let mut file = PredictionFile {
            source_name: source_name.to_owned(),
            rows: 0,
            predictions: Vec::new(),
            prediction_rows: Vec::new(),
            partial_keys: Vec::new(),
            problems: Vec::new(),
        };
        let mut index = 0;
        file.rows = for_each_row(text, source_name, |row| {
            index += 1;
            file.add_row(index, row);
        })?;
        Ok(file)
    }

    /// In-memory predictions (e.g. from the pipeline), as if read from `source_name`.
    pub fn from_predictions(predictions: Vec<Prediction>, source_name: &str) -> Self {
        PredictionFile {
            source_name: source_name.to_owned(),
            rows: predictions.len(),
            prediction_rows: (1..=predictions.len()).collect(),
            predictions,
            partial_keys: Vec::new(),
            problems: Vec::new(),
        }
    }

    fn add_row(&mut self, row: usize, value: JsonRow) {
        let mut fields = match value {
            JsonRow::Object(fields) => fields,
            JsonRow::NotObject(found) => {
                self.problems.push(Problem {
                    row: Some(row),
                    session_id: None,
                    turn_number: None,
                    kind: ProblemKind::RowNotObject { found },
                });
                return;
            }
        };
        let mut problems = Vec::new();
        let session_id = take_string(fields.session_id.take(), "session_id", &mut problems);
        let user_id = take_string(fields.user_id.take(), "user_id", &mut problems);
        let turn_number = match &fields.turn_number {
            None => {
                problems.push(ProblemKind::MissingField {
                    field: "turn_number",
                });
                None
            }
            Some(value) => match value.turn_number() {
                Ok(turn) => Some(turn),
                Err(_) => {
                    problems.push(ProblemKind::WrongType {
                        field: "turn_number".to_owned(),
                        expected: "a non-negative integer",
                        found: value.describe(),
                    });
                    None
                }
            },
        };
        let track_ids = take_track_ids(&mut fields, &mut problems);
        let response = take_string(
            fields.predicted_response.take(),
            "predicted_response",
            &mut problems,
        );
        if let (Some(session_id), Some(user_id), Some(turn_number), Some(ids), Some(response)) = (
            session_id.clone(),
            user_id,
            turn_number,
            track_ids,
            response,
        ) {
            self.predictions.push(Prediction {
                session_id,
                user_id,
                turn_number,
                predicted_track_ids: ids,
                predicted_response: response,
            });
            self.prediction_rows.push(row);
            return;
        }
        if let (Some(session_id), Some(turn_number)) = (&session_id, turn_number) {
            self.partial_keys.push(RowKey {
                row,
                session_id: session_id.clone(),
                turn_number,
            });
        }
        for kind in problems {
            self.problems.push(Problem {
                row: Some(row),
                session_id: session_id.clone(),
                turn_number,
                kind,
            });
        }
    }

    /// The well-formed rows, in file order.
    pub fn predictions(&self) -> &[Prediction] {
        &self.predictions
    }

    /// Takes the well-formed rows out of the file.
    pub fn into_predictions(self) -> Vec<Prediction> {
        self.predictions
    }

    /// The number of rows in the file.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The file (or in-memory source) read.
    pub fn source_name(&self) -> &str {
        &self.source_name
    }
}

/// Takes a string field, noting a problem when it is absent or not a string.
fn take_string(
    value: Option<Loose>,
    field: &'static str,
    problems: &mut Vec<ProblemKind>,
) -> Option<String> {
    match value {
        Some(Loose::Str(text)) => Some(text),
        Some(other) => {
            problems.push(ProblemKind::WrongType {
                field: field.to_owned(),
                expected: "a string",
                found: other.describe(),
            });
            None
        }
        None => {
            problems.push(ProblemKind::MissingField { field });
            None
        }
    }
}

/// Takes `predicted_track_ids`, noting every item that is not a string.
fn take_track_ids(fields: &mut RowFields, problems: &mut Vec<ProblemKind>) -> Option<Vec<String>> {
    const FIELD: &str = "predicted_track_ids";
    match fields.predicted_track_ids.take() {
        Some(Loose::Array(items)) => {
            let mut ids = Vec::with_capacity(items.len());
            let mut all_strings = true;
            for (index, item) in items.into_iter().enumerate() {
                match item {
                    Loose::Str(id) => ids.push(id),
                    other => {
                        all_strings = false;
                        problems.push(ProblemKind::WrongType {
                            field: format!("{FIELD}[{index}]"),
                            expected: "a string",
                            found: other.describe(),
                        });
                    }
                }
            }
            all_strings.then_some(ids)
        }
        Some(other) => {
            problems.push(ProblemKind::WrongType {
                field: FIELD.to_owned(),
                expected: "an array of strings",
                found: other.describe(),
            });
            None
        }
        None => {
            problems.push(ProblemKind::MissingField { field: FIELD });
            None
        }
    }
}

/// Checks predictions against the ground truth (missing, unknown and duplicate turns),
/// the catalog (unknown ids) and the list rules (at most `max_track_ids`, no repeats).
/// Without ground truth or catalog, those checks are skipped.
#[derive(Clone, Copy)]
pub struct Validator<'a> {
    ground_truth: Option<&'a GroundTruth>,
    catalog: Option<&'a dyn TrackIdSet>,
    max_track_ids: usize,
}

impl Default for Validator<'_> {
    fn default() -> Self {
        Validator {
            ground_truth: None,
            catalog: None,
            max_track_ids: MAX_PREDICTED_TRACKS,
        }
    }
}

impl fmt::Debug for Validator<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Validator")
            .field(
                "ground_truth_turns",
                &self.ground_truth.map(GroundTruth::len),
            )
            .field("catalog", &self.catalog.is_some())
            .field("max_track_ids", &self.max_track_ids)
            .finish()
    }
}

impl<'a> Validator<'a> {
    /// A validator with the list rules only (at most [`MAX_PREDICTED_TRACKS`] ids).
    pub fn new() -> Self {
        Self::default()
    }

    /// Also reports turns missing from, or unknown to, this ground truth.
    pub fn with_ground_truth(mut self, ground_truth: &'a GroundTruth) -> Self {
        self.ground_truth = Some(ground_truth);
        self
    }

    /// Also reports ids not in this catalog.
    pub fn with_catalog(mut self, catalog: &'a dyn TrackIdSet) -> Self {
        self.catalog = Some(catalog);
        self
    }

    /// Changes the longest list allowed.
    pub fn with_max_track_ids(mut self, max_track_ids: usize) -> Self {
        self.max_track_ids = max_track_ids;
        self
    }

    /// Every problem of a prediction file: those found while reading it, then the list,
    /// catalog and turn checks.
    pub fn validate(&self, file: &PredictionFile) -> ValidationReport {
        let mut problems = file.problems.clone();
        // First row of each (session, turn), as the official evaluator picks it.
        let mut first_rows: FastHashMap<&str, FastHashMap<u32, usize>> = FastHashMap::default();
        let keys = file
            .predictions
            .iter()
            .zip(&file.prediction_rows)
            .map(|(p, &row)| (row, p.session_id.as_str(), p.turn_number))
            .chain(
                file.partial_keys
                    .iter()
                    .map(|k| (k.row, k.session_id.as_str(), k.turn_number)),
            );
        let mut keys: Vec<(usize, &str, u32)> = keys.collect();
        keys.sort_by_key(|&(row, _, _)| row);
        for (row, session_id, turn_number) in keys {
            let at = |kind| Problem {
                row: Some(row),
                session_id: Some(session_id.to_owned()),
                turn_number: Some(turn_number),
                kind,
            };
            let turns = first_rows.entry(session_id).or_default();
            if let Some(&first_row) = turns.get(&turn_number) {
                problems.push(at(ProblemKind::DuplicateRow { first_row }));
                continue;
            }
            turns.insert(turn_number, row);
            if let Some(truth) = self.ground_truth
                && !truth.contains(session_id, turn_number)
            {
                problems.push(at(ProblemKind::UnknownTurn));
            }
        }
        for (prediction, &row) in file.predictions.iter().zip(&file.prediction_rows) {
            self.check_list(prediction, row, &mut problems);
        }
        if let Some(truth) = self.ground_truth {
            for gold in truth.turns() {
                let found = first_rows
                    .get(gold.session_id.as_str())
                    .is_some_and(|turns| turns.contains_key(&gold.turn_number));
                if !found {
                    problems.push(Problem {
                        row: None,
                        session_id: Some(gold.session_id.clone()),
                        turn_number: Some(gold.turn_number),
                        kind: ProblemKind::MissingPrediction,
                    });
                }
            }
        }
        ValidationReport::from_problems(file.source_name.clone(), file.rows, problems)
    }

    /// [`Validator::validate`] for in-memory predictions.
    pub fn validate_predictions(
        &self,
        predictions: &[Prediction],
        source_name: &str,
    ) -> ValidationReport {
        self.validate(&PredictionFile::from_predictions(
            predictions.to_vec(),
            source_name,
        ))
    }

    fn check_list(&self, prediction: &Prediction, row: usize, problems: &mut Vec<Problem>) {
        let at = |kind| Problem {
            row: Some(row),
            session_id: Some(prediction.session_id.clone()),
            turn_number: Some(prediction.turn_number),
            kind,
        };
        let ids = &prediction.predicted_track_ids;
        if ids.len() > self.max_track_ids {
            problems.push(at(ProblemKind::TooManyTrackIds {
                count: ids.len(),
                max: self.max_track_ids,
            }));
        }
        let repeated = repeats(ids);
        let repeated_ranks: FastHashSet<usize> = repeated.iter().map(|&(rank, _)| rank).collect();
        for &(rank, first_rank) in &repeated {
            problems.push(at(ProblemKind::DuplicateTrackId {
                track_id: ids[rank - 1].clone(),
                first_rank,
                rank,
            }));
        }
        if let Some(catalog) = self.catalog {
            for (index, id) in ids.iter().enumerate() {
                let rank = index + 1;
                // A repeat was reported already; its catalog check would only echo it.
                if !repeated_ranks.contains(&rank) && !catalog.contains_track_id(id) {
                    problems.push(at(ProblemKind::UnknownTrackId {
                        track_id: id.clone(),
                        rank,
                    }));
                }
            }
        }
    }
}

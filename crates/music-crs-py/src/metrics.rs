//! `evaluate` and `validate`: the official metrics and the prediction-file checks.

use std::collections::BTreeSet;
use std::path::PathBuf;

use music_crs_metrics::{
    DEFAULT_CATALOG_SIZE, EvaluationParams, Evaluator, GroundTruth, PredictionFile, ProblemKind,
    Scores, Validator,
};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};

use crate::{Error, Result, detached};

/// A prediction or ground-truth argument: a JSON file, or rows as JSON text made by Python's
/// `json.dumps` (so rows given in memory parse exactly like the same rows in a file).
enum Rows {
    File(PathBuf),
    Json(String),
}

impl Rows {
    fn from_py(arg: &Bound<'_, PyAny>, name: &str) -> Result<Self> {
        if arg.is_instance_of::<PyList>() || arg.is_instance_of::<PyTuple>() {
            let json = arg
                .py()
                .import("json")
                .and_then(|json| json.call_method1("dumps", (arg,)))
                .and_then(|text| text.extract::<String>())
                .map_err(|e| Error::input(name, format!("rows are not JSON-serialisable: {e}")))?;
            return Ok(Rows::Json(json));
        }
        if arg.is_instance_of::<PyString>() || arg.hasattr("__fspath__").unwrap_or(false) {
            let path: PathBuf = arg
                .extract()
                .map_err(|e| Error::input(name, format!("not a path: {e}")))?;
            return Ok(Rows::File(path));
        }
        let type_name = arg
            .get_type()
            .name()
            .map(|n| n.to_string())
            .unwrap_or_else(|_| "?".into());
        Err(Error::input(
            name,
            format!("expected a file path or a list of dicts, found {type_name}"),
        ))
    }

    fn predictions(self) -> Result<PredictionFile> {
        Ok(match self {
            Rows::File(path) => PredictionFile::from_json_file(path)?,
            Rows::Json(text) => PredictionFile::from_json_str(&text, "predictions")?,
        })
    }

    fn ground_truth(self) -> Result<GroundTruth> {
        Ok(match self {
            Rows::File(path) => GroundTruth::from_json_file(path)?,
            Rows::Json(text) => GroundTruth::from_json_str(&text, "ground_truth")?,
        })
    }
}

/// Scores predictions as `music-crs evaluate` and the official evaluator do.
///
/// `predictions` and `ground_truth` are JSON file paths or lists of row dicts. Returns the
/// official score file as a dict (`ndcg@1`, `ndcg@10`, `ndcg@20`, `catalog_diversity`,
/// `lexical_diversity`, `total_catalog_size`); with `per_turn=True` also `per_turn`, one dict
/// per turn number (`turn_number`, `rows`, `ndcg@k`). Raises `ValueError` listing every
/// problem when the predictions cannot be scored (a missing turn, a repeated id).
#[pyfunction]
#[pyo3(signature = (predictions, ground_truth, catalog_size = DEFAULT_CATALOG_SIZE, per_turn = false))]
pub fn evaluate<'py>(
    py: Python<'py>,
    predictions: &Bound<'py, PyAny>,
    ground_truth: &Bound<'py, PyAny>,
    catalog_size: usize,
    per_turn: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let predictions = Rows::from_py(predictions, "predictions")?;
    let ground_truth = Rows::from_py(ground_truth, "ground_truth")?;
    let scores = detached(py, move || {
        let evaluator = Evaluator::new(EvaluationParams {
            catalog_size,
            ..EvaluationParams::default()
        })?;
        let file = predictions.predictions()?;
        let truth = ground_truth.ground_truth()?;
        Ok(evaluator.evaluate(&truth, file.predictions())?)
    })?;
    scores_dict(py, &scores, per_turn)
}

fn scores_dict<'py>(
    py: Python<'py>,
    scores: &Scores,
    per_turn: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    for m in &scores.macro_scores.at {
        out.set_item(format!("ndcg@{}", m.k), m.ndcg)?;
    }
    out.set_item("catalog_diversity", scores.catalog_diversity)?;
    out.set_item("lexical_diversity", scores.lexical_diversity)?;
    out.set_item("total_catalog_size", scores.total_catalog_size)?;
    if per_turn {
        let turns = PyList::empty(py);
        for turn in &scores.per_turn {
            let row = PyDict::new(py);
            row.set_item("turn_number", turn.turn_number)?;
            row.set_item("rows", turn.rows)?;
            for m in &turn.scores.at {
                row.set_item(format!("ndcg@{}", m.k), m.ndcg)?;
            }
            turns.append(row)?;
        }
        out.set_item("per_turn", turns)?;
    }
    Ok(out)
}

/// One problem of a prediction file: where it is (`row`, `session`, `turn`) and what is
/// wrong (`kind`, `message`). `str(problem)` is the line `music-crs validate` prints.
#[pyclass(frozen, module = "music_crs")]
#[derive(Debug, Clone)]
pub struct Problem {
    /// The 1-based row of the JSON array (`None` for a missing prediction).
    #[pyo3(get)]
    pub row: Option<usize>,
    /// The session, when known.
    #[pyo3(get)]
    pub session: Option<String>,
    /// The turn, when known.
    #[pyo3(get)]
    pub turn: Option<u32>,
    /// The kind of problem, in snake case (e.g. `duplicate_track_id`).
    #[pyo3(get)]
    pub kind: String,
    /// What is wrong, without the place.
    #[pyo3(get)]
    pub message: String,
    /// True when the evaluator cannot score the file because of it.
    #[pyo3(get)]
    pub blocks_scoring: bool,
    line: String,
}

#[pymethods]
impl Problem {
    fn __str__(&self) -> String {
        self.line.clone()
    }

    fn __repr__(&self) -> String {
        format!(
            "Problem(row={}, session={}, turn={}, kind={:?}, message={:?})",
            self.row.map_or("None".into(), |r| r.to_string()),
            self.session
                .as_ref()
                .map_or("None".into(), |s| format!("{s:?}")),
            self.turn.map_or("None".into(), |t| t.to_string()),
            self.kind,
            self.message
        )
    }
}

fn kind_name(kind: &ProblemKind) -> &'static str {
    match kind {
        ProblemKind::RowNotObject { .. } => "row_not_object",
        ProblemKind::MissingField { .. } => "missing_field",
        ProblemKind::WrongType { .. } => "wrong_type",
        ProblemKind::TooManyTrackIds { .. } => "too_many_track_ids",
        ProblemKind::DuplicateTrackId { .. } => "duplicate_track_id",
        ProblemKind::UnknownTrackId { .. } => "unknown_track_id",
        ProblemKind::DuplicateRow { .. } => "duplicate_row",
        ProblemKind::UnknownTurn => "unknown_turn",
        ProblemKind::MissingPrediction => "missing_prediction",
        _ => "other",
    }
}

impl From<&music_crs_metrics::Problem> for Problem {
    fn from(problem: &music_crs_metrics::Problem) -> Self {
        let line = problem.to_string();
        // The same problem without its place gives the bare message.
        let bare = music_crs_metrics::Problem {
            row: None,
            session_id: None,
            turn_number: None,
            kind: problem.kind.clone(),
        }
        .to_string();
        Problem {
            row: problem.row,
            session: problem.session_id.clone(),
            turn: problem.turn_number,
            kind: kind_name(&problem.kind).to_string(),
            message: bare.trim_start_matches(": ").to_string(),
            blocks_scoring: problem.blocks_scoring(),
            line,
        }
    }
}

/// Every problem of a prediction file, as `music-crs validate` lists them.
///
/// `predictions` is a JSON file path or a list of row dicts. With `ground_truth` (path or
/// rows) missing and unknown turns are reported; with `catalog` (an iterable of track ids)
/// ids outside it. An empty list means the file is valid.
#[pyfunction]
#[pyo3(signature = (predictions, ground_truth = None, catalog = None, max_track_ids = None))]
pub fn validate(
    py: Python<'_>,
    predictions: &Bound<'_, PyAny>,
    ground_truth: Option<&Bound<'_, PyAny>>,
    catalog: Option<&Bound<'_, PyAny>>,
    max_track_ids: Option<usize>,
) -> PyResult<Vec<Problem>> {
    let predictions = Rows::from_py(predictions, "predictions")?;
    let ground_truth = ground_truth
        .map(|g| Rows::from_py(g, "ground_truth"))
        .transpose()?;
    let catalog: Option<BTreeSet<String>> = catalog
        .map(|c| {
            c.try_iter()
                .and_then(|items| items.map(|id| id?.extract::<String>()).collect())
                .map_err(|e| {
                    Error::input(
                        "catalog",
                        format!("expected an iterable of track id strings: {e}"),
                    )
                })
        })
        .transpose()?;
    let problems = detached(py, move || {
        let file = predictions.predictions()?;
        let truth = ground_truth.map(Rows::ground_truth).transpose()?;
        let mut validator = Validator::new();
        if let Some(truth) = &truth {
            validator = validator.with_ground_truth(truth);
        }
        if let Some(catalog) = &catalog {
            validator = validator.with_catalog(catalog);
        }
        if let Some(max) = max_track_ids {
            validator = validator.with_max_track_ids(max);
        }
        let report = validator.validate(&file);
        Ok(report.problems().iter().map(Problem::from).collect())
    })?;
    Ok(problems)
}

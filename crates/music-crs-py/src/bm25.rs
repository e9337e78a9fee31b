//! `BM25` (bm25s-exact scoring), the official recipe's `QueryRenderer`, `document_text` and
//! `tokenize`.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use music_crs_core::{Catalog, Message, Role, Track, TrackField, TurnContext};
use music_crs_retrieval::{
    Bm25Index, Bm25Params, MissingTrack, QueryRenderParams, StopWords, Tokenizer, TokenizerParams,
};
use numpy::{PyArray1, PyArray2, PyArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString};
use rayon::prelude::*;

use crate::{Error, Result, detached};

/// Reads an optional item of a dict (or any mapping): `None` when absent or `None`.
fn item<'py>(obj: &Bound<'py, PyAny>, key: &str) -> Option<Bound<'py, PyAny>> {
    obj.get_item(key).ok().filter(|v| !v.is_none())
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}

fn string_at(obj: &Bound<'_, PyAny>, place: &str) -> Result<String> {
    obj.extract::<String>().map_err(|_| {
        Error::input(
            place,
            format!("expected a string, found {}", type_name(obj)),
        )
    })
}

/// A string, or a list (any iterable, e.g. a numpy array from pandas) of strings.
fn string_list(obj: &Bound<'_, PyAny>, place: &str) -> Result<Vec<String>> {
    if obj.is_instance_of::<PyString>() {
        return Ok(vec![string_at(obj, place)?]);
    }
    let items = obj.try_iter().map_err(|_| {
        Error::input(
            place,
            format!(
                "expected a string or a list of strings, found {}",
                type_name(obj)
            ),
        )
    })?;
    items
        .enumerate()
        .map(|(i, value)| {
            let value = value.map_err(|e| Error::input(place, e.to_string()))?;
            string_at(&value, &format!("{place}[{i}]"))
        })
        .collect()
}

/// A list of strings (one query or document each); a single string is a list of one.
fn texts(obj: &Bound<'_, PyAny>, name: &str) -> Result<Vec<String>> {
    if obj.is_instance_of::<PyString>() {
        return Ok(vec![string_at(obj, name)?]);
    }
    if let Ok(list) = obj.cast::<PyList>() {
        // The common case, without the iterator protocol.
        return list
            .iter()
            .enumerate()
            .map(|(i, v)| string_at(&v, &format!("{name}[{i}]")))
            .collect();
    }
    string_list(obj, name)
}

/// A catalog track from a dict in the Track-Metadata layout (`track_id`, `track_name`, ...;
/// list fields as lists or plain strings).
fn track_from_py(obj: &Bound<'_, PyAny>, place: &str) -> Result<Track> {
    let id = item(obj, "track_id").ok_or_else(|| Error::input(place, "missing field track_id"))?;
    let list = |key: &str| -> Result<Vec<String>> {
        item(obj, key).map_or(Ok(Vec::new()), |v| {
            string_list(&v, &format!("{place}.{key}"))
        })
    };
    let popularity = item(obj, "popularity")
        .map(|v| {
            v.extract::<f64>().map_err(|_| {
                Error::input(
                    format!("{place}.popularity"),
                    format!("expected a number, found {}", type_name(&v)),
                )
            })
        })
        .transpose()?;
    let duration_ms = item(obj, "duration")
        .map(|v| {
            v.extract::<i64>().map_err(|_| {
                Error::input(
                    format!("{place}.duration"),
                    format!("expected an integer, found {}", type_name(&v)),
                )
            })
        })
        .transpose()?;
    Ok(Track {
        track_id: string_at(&id, &format!("{place}.track_id"))?,
        track_name: list("track_name")?,
        artist_name: list("artist_name")?,
        album_name: list("album_name")?,
        tag_list: list("tag_list")?,
        artist_id: list("artist_id")?,
        album_id: list("album_id")?,
        isrc: list("ISRC")?,
        popularity,
        release_date: item(obj, "release_date")
            .map(|v| string_at(&v, &format!("{place}.release_date")))
            .transpose()?,
        duration_ms,
    })
}

/// The official BM25 baseline's document for a track dict: one `field: value` line each for
/// `track_name`, `artist_name`, `album_name` and `release_date`, lists joined with ", ".
#[pyfunction]
pub fn document_text(track: &Bound<'_, PyAny>) -> PyResult<String> {
    Ok(track_from_py(track, "track")?.document_text(&TrackField::BASELINE))
}

/// The `stopwords` argument: a list name ("en") or the words themselves; `None` keeps all.
#[derive(FromPyObject)]
pub enum StopwordsArg {
    /// A named list: "en" or "english" (bm25s's English list).
    Name(String),
    /// Custom stop words.
    Words(Vec<String>),
}

fn default_stopwords() -> Option<StopwordsArg> {
    Some(StopwordsArg::Name("en".into()))
}

fn tokenizer_params(lowercase: bool, stopwords: Option<StopwordsArg>) -> Result<TokenizerParams> {
    let stopwords = match stopwords {
        None => StopWords::None,
        Some(StopwordsArg::Name(name)) => match name.as_str() {
            "en" | "english" => StopWords::English,
            other => {
                return Err(Error::input(
                    "stopwords",
                    format!("{other:?} is not a known list (use \"en\", None or a list of words)"),
                ));
            }
        },
        Some(StopwordsArg::Words(words)) => StopWords::Custom(words),
    };
    let params = TokenizerParams {
        lowercase,
        stopwords,
    };
    params.validate()?;
    Ok(params)
}

/// Splits text into BM25 terms exactly as bm25s's default `tokenize` (lower-cased, token
/// pattern `(?u)\b\w\w+\b`, English stop words removed).
#[pyfunction]
#[pyo3(signature = (text, lowercase = true, stopwords = default_stopwords()))]
pub fn tokenize(
    text: &str,
    lowercase: bool,
    stopwords: Option<StopwordsArg>,
) -> PyResult<Vec<String>> {
    let tokenizer = Tokenizer::new(tokenizer_params(lowercase, stopwords)?).map_err(Error::from)?;
    Ok(tokenizer.tokenize(text))
}

/// BM25 that scores exactly as bm25s 0.3.16 (`method="lucene"`, float32 scores), with its
/// default tokenizer.
#[pyclass(frozen, name = "BM25", module = "music_crs")]
pub struct Bm25 {
    params: Bm25Params,
    index: RwLock<Option<Arc<Bm25Index>>>,
}

impl Bm25 {
    fn current(&self) -> Result<Arc<Bm25Index>> {
        self.index
            .read()
            .map_err(|_| Error::Panic("the index lock is poisoned".into()))?
            .clone()
            .ok_or(Error::NotIndexed)
    }
}

/// The `(indices, scores)` arrays `retrieve` returns.
type HitArrays<'py> = (Bound<'py, PyArray2<i64>>, Bound<'py, PyArray2<f32>>);

/// (indices, scores) of the top `k` for every query; `-1` / `0.0` pad rows with fewer hits.
type Hits = (Vec<i64>, Vec<f32>);

fn search_all(index: &Bm25Index, queries: &[String], k: usize, threads: usize) -> Result<Hits> {
    let n = queries.len();
    let mut ids = vec![-1i64; n * k];
    let mut scores = vec![0.0f32; n * k];
    let fill = |(query, (ids, scores)): (&String, (&mut [i64], &mut [f32]))| {
        for (slot, (doc, score)) in index.search_indices(query, k).into_iter().enumerate() {
            ids[slot] = doc as i64;
            scores[slot] = score;
        }
    };
    if k == 0 {
        return Ok((ids, scores));
    }
    let rows = queries
        .iter()
        .zip(ids.chunks_mut(k).zip(scores.chunks_mut(k)));
    if threads == 1 {
        rows.for_each(fill);
    } else {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .map_err(|e| Error::input("n_threads", e.to_string()))?;
        let rows: Vec<_> = rows.collect();
        pool.install(|| rows.into_par_iter().for_each(fill));
    }
    Ok((ids, scores))
}

#[pymethods]
impl Bm25 {
    /// A model with bm25s's settings; only `method="lucene"` (bm25s's default) is available.
    #[new]
    #[pyo3(signature = (k1 = 1.5, b = 0.75, method = "lucene", lowercase = true, stopwords = default_stopwords()))]
    fn new(
        k1: f64,
        b: f64,
        method: &str,
        lowercase: bool,
        stopwords: Option<StopwordsArg>,
    ) -> PyResult<Self> {
        if method != "lucene" {
            return Err(Error::input(
                "method",
                format!("{method:?} is not supported (only \"lucene\", bm25s's default)"),
            )
            .into());
        }
        let params = Bm25Params {
            k1,
            b,
            tokenizer: tokenizer_params(lowercase, stopwords)?,
        };
        params.validate().map_err(Error::from)?;
        Ok(Bm25 {
            params,
            index: RwLock::new(None),
        })
    }

    /// Indexes `corpus` (a list of texts). `ids` names the documents (default "0", "1",
    /// ...); `retrieve` returns positions in the corpus either way. Replaces any earlier index.
    #[pyo3(signature = (corpus, ids = None))]
    fn index(
        &self,
        py: Python<'_>,
        corpus: &Bound<'_, PyAny>,
        ids: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let corpus = texts(corpus, "corpus")?;
        let ids = match ids {
            Some(ids) => {
                let ids = texts(ids, "ids")?;
                if ids.len() != corpus.len() {
                    return Err(Error::input(
                        "ids",
                        format!("{} ids for {} documents", ids.len(), corpus.len()),
                    )
                    .into());
                }
                ids
            }
            None => (0..corpus.len()).map(|i| i.to_string()).collect(),
        };
        let params = self.params.clone();
        let index = detached(py, move || {
            Ok(Bm25Index::build(ids.into_iter().zip(corpus), params)?)
        })?;
        *self
            .index
            .write()
            .map_err(|_| Error::Panic("the index lock is poisoned".into()))? =
            Some(Arc::new(index));
        Ok(())
    }

    /// The top `k` documents of every query: `(indices, scores)`, two `(len(queries), k)`
    /// numpy arrays (int64 corpus positions, float32 scores), best first, ties in corpus
    /// order. Documents no query term matches are not returned: such slots hold -1 and 0.0.
    /// `n_threads` > 1 searches on that many threads; the call releases the GIL either way.
    #[pyo3(signature = (queries, k = 10, n_threads = 1))]
    fn retrieve<'py>(
        &self,
        py: Python<'py>,
        queries: &Bound<'py, PyAny>,
        k: usize,
        n_threads: usize,
    ) -> PyResult<HitArrays<'py>> {
        if n_threads == 0 {
            return Err(Error::input("n_threads", "must be at least 1").into());
        }
        let index = self.current()?;
        let queries = texts(queries, "queries")?;
        let n = queries.len();
        let (ids, scores) = detached(py, move || search_all(&index, &queries, k, n_threads))?;
        let ids = PyArray1::from_vec(py, ids).reshape([n, k])?;
        let scores = PyArray1::from_vec(py, scores).reshape([n, k])?;
        Ok((ids, scores))
    }

    /// The score of every document for one query, in corpus order (bm25s's `get_scores`).
    fn get_scores<'py>(&self, py: Python<'py>, query: &str) -> PyResult<Bound<'py, PyArray1<f32>>> {
        let index = self.current()?;
        let query = query.to_string();
        let scores = detached(py, move || Ok(index.scores(&query)))?;
        Ok(PyArray1::from_vec(py, scores))
    }

    /// Saves the index as `dir/bm25.index` (creating `dir`); returns the file's path.
    fn save(&self, py: Python<'_>, dir: PathBuf) -> PyResult<PathBuf> {
        let index = self.current()?;
        Ok(detached(py, move || Ok(index.save(&dir)?))?)
    }

    /// Loads a model saved by `save`.
    #[staticmethod]
    fn load(py: Python<'_>, dir: PathBuf) -> PyResult<Self> {
        let index = detached(py, move || Ok(Bm25Index::load(&dir)?))?;
        Ok(Bm25 {
            params: index.params().clone(),
            index: RwLock::new(Some(Arc::new(index))),
        })
    }

    /// The document ids, in corpus order (empty before `index`).
    #[getter]
    fn doc_ids(&self) -> PyResult<Vec<String>> {
        Ok(match self.current() {
            Ok(index) => index.doc_ids().to_vec(),
            Err(_) => Vec::new(),
        })
    }

    /// Term-frequency saturation.
    #[getter]
    fn k1(&self) -> f64 {
        self.params.k1
    }

    /// Document-length normalisation.
    #[getter]
    fn b(&self) -> f64 {
        self.params.b
    }

    /// The scoring method (always "lucene").
    #[getter]
    fn method(&self) -> &'static str {
        "lucene"
    }

    fn __len__(&self) -> usize {
        self.current().map_or(0, |index| index.len())
    }

    fn __repr__(&self) -> String {
        format!(
            "BM25(k1={}, b={}, method=\"lucene\", documents={})",
            self.params.k1,
            self.params.b,
            self.__len__()
        )
    }
}

/// The official recipe's retrieval query: one `role: content` line per earlier message (a
/// music message becomes `assistant: track_id: ..., track_name: ...` from the catalog,
/// lower-cased), then `user: <current message>`.
#[pyclass(frozen, module = "music_crs")]
pub struct QueryRenderer {
    renderer: music_crs_retrieval::QueryRenderer,
}

fn message_from_py(obj: &Bound<'_, PyAny>, place: &str) -> Result<Message> {
    let role = item(obj, "role").ok_or_else(|| Error::input(place, "missing field role"))?;
    let role_text = string_at(&role, &format!("{place}.role"))?;
    let role = Role::parse(&role_text).ok_or_else(|| {
        Error::input(
            format!("{place}.role"),
            format!("{role_text:?} is not one of user, music, assistant"),
        )
    })?;
    let content =
        item(obj, "content").ok_or_else(|| Error::input(place, "missing field content"))?;
    let turn_number = match item(obj, "turn_number") {
        Some(t) => t.extract::<u32>().map_err(|_| {
            Error::input(
                format!("{place}.turn_number"),
                format!("expected a non-negative integer, found {}", type_name(&t)),
            )
        })?,
        None => 0,
    };
    let mut message = Message::new(
        turn_number,
        role,
        string_at(&content, &format!("{place}.content"))?,
    );
    message.thought = item(obj, "thought")
        .map(|t| string_at(&t, &format!("{place}.thought")))
        .transpose()?;
    Ok(message)
}

#[pymethods]
impl QueryRenderer {
    /// A renderer over `tracks` (track dicts in the Track-Metadata layout; may be empty).
    /// `missing_track` says what to do with a music message whose track is not among them:
    /// "skip" (default), "track_id" (render the id only) or "error".
    /// `release_date_as_characters=True` reproduces the baseline's character-joined dates.
    #[new]
    #[pyo3(signature = (tracks = None, missing_track = "skip", release_date_as_characters = false))]
    fn new(
        tracks: Option<&Bound<'_, PyAny>>,
        missing_track: &str,
        release_date_as_characters: bool,
    ) -> PyResult<Self> {
        let tracks = match tracks {
            None => Vec::new(),
            Some(tracks) => {
                let items = tracks.try_iter().map_err(|_| {
                    Error::input(
                        "tracks",
                        format!(
                            "expected a list of track dicts, found {}",
                            type_name(tracks)
                        ),
                    )
                })?;
                items
                    .enumerate()
                    .map(|(i, t)| {
                        let t = t.map_err(|e| Error::input("tracks", e.to_string()))?;
                        track_from_py(&t, &format!("tracks[{i}]"))
                    })
                    .collect::<Result<Vec<_>>>()?
            }
        };
        let missing_track = match missing_track {
            "skip" => MissingTrack::Skip,
            "track_id" => MissingTrack::TrackId,
            "error" => MissingTrack::Error,
            other => {
                return Err(Error::input(
                    "missing_track",
                    format!("{other:?} is not one of skip, track_id, error"),
                )
                .into());
            }
        };
        let params = QueryRenderParams {
            missing_track,
            release_date_as_characters,
            ..QueryRenderParams::default()
        };
        let catalog = Arc::new(Catalog::new(tracks).map_err(Error::from)?);
        let renderer =
            music_crs_retrieval::QueryRenderer::new(catalog, params).map_err(Error::from)?;
        Ok(QueryRenderer { renderer })
    }

    /// The query of one turn of `conversation` (the hub's `conversations` list: dicts with
    /// `role`, `content`, `turn_number`, optional `thought`). With `turn_number`, the user
    /// message of that turn is the current one and messages of earlier turns the history;
    /// without it, the last message (which must be a user message, as in blind files) is the
    /// current one and every message before it the history.
    #[pyo3(signature = (conversation, turn_number = None, session_id = ""))]
    fn render(
        &self,
        conversation: &Bound<'_, PyAny>,
        turn_number: Option<u32>,
        session_id: &str,
    ) -> PyResult<String> {
        let items = conversation.try_iter().map_err(|_| {
            Error::input(
                "conversation",
                format!(
                    "expected a list of message dicts, found {}",
                    type_name(conversation)
                ),
            )
        })?;
        let messages = items
            .enumerate()
            .map(|(i, m)| {
                let m = m.map_err(|e| Error::input("conversation", e.to_string()))?;
                message_from_py(&m, &format!("conversation[{i}]"))
            })
            .collect::<Result<Vec<_>>>()?;
        let (history, current, turn) = match turn_number {
            Some(turn) => {
                let current = messages
                    .iter()
                    .find(|m| m.turn_number == turn && m.role == Role::User)
                    .ok_or_else(|| {
                        Error::input(
                            "conversation",
                            format!("no user message with turn_number {turn}"),
                        )
                    })?;
                let history: Vec<Message> = messages
                    .iter()
                    .filter(|m| m.turn_number < turn)
                    .cloned()
                    .collect();
                (history, current.content.clone(), turn)
            }
            None => {
                let Some((last, history)) = messages.split_last() else {
                    return Err(Error::input("conversation", "no message").into());
                };
                if last.role != Role::User {
                    return Err(Error::input(
                        format!("conversation[{}]", messages.len() - 1),
                        format!("the last message is a {} message; give turn_number or end with the user message to answer", last.role.as_str()),
                    )
                    .into());
                }
                (history.to_vec(), last.content.clone(), last.turn_number)
            }
        };
        let turn = TurnContext {
            session_id: session_id.to_string(),
            turn_number: turn,
            played_track_ids: history
                .iter()
                .filter(|m| m.role == Role::Music)
                .map(|m| m.content.clone())
                .collect(),
            history,
            user_message: current,
            ..TurnContext::default()
        };
        Ok(self.renderer.render(&turn).map_err(Error::from)?)
    }

    /// The number of catalog tracks.
    fn __len__(&self) -> usize {
        self.renderer.catalog().len()
    }
}

"""Type stubs of music_crs (the native module is music_crs._native)."""

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Optional, Union

import numpy as np
import numpy.typing as npt

__version__: str

PathLike = Union[str, os.PathLike[str]]
Rows = Union[PathLike, Sequence[Mapping[str, Any]]]

def evaluate(
    predictions: Rows,
    ground_truth: Rows,
    catalog_size: int = 47071,
    per_turn: bool = False,
) -> dict[str, Any]:
    """Score predictions exactly as the official evaluator and ``music-crs evaluate``.

    ``predictions`` / ``ground_truth``: a JSON file path or a list of row dicts
    (``{session_id, user_id, turn_number, predicted_track_ids, predicted_response}`` /
    ``{session_id, user_id, turn_number, ground_truth_track_id}``).

    Returns the official score file as a dict: ``ndcg@1``, ``ndcg@10``, ``ndcg@20`` (mean per
    turn, then over turns), ``catalog_diversity``, ``lexical_diversity``,
    ``total_catalog_size``; with ``per_turn=True`` also ``per_turn``: one dict per turn number
    with ``turn_number``, ``rows`` and ``ndcg@k``.

    Raises ``ValueError`` (every problem listed) when the file cannot be scored: a missing
    turn, a repeated id, malformed JSON; ``FileNotFoundError`` for a missing file.
    """

class Problem:
    """One problem of a prediction file; ``str(problem)`` is the CLI's line."""

    row: Optional[int]
    """The 1-based row of the JSON array (None for a missing prediction)."""
    session: Optional[str]
    turn: Optional[int]
    kind: str
    """e.g. ``duplicate_track_id``, ``missing_prediction``, ``unknown_track_id``."""
    message: str
    """What is wrong, without the place."""
    blocks_scoring: bool

def validate(
    predictions: Rows,
    ground_truth: Optional[Rows] = None,
    catalog: Optional[Iterable[str]] = None,
    max_track_ids: Optional[int] = None,
) -> list[Problem]:
    """Every problem of a prediction file, as ``music-crs validate`` lists them (empty: valid)."""

class BM25:
    """BM25 scoring exactly as bm25s 0.3.16 (``method="lucene"``, float32 scores) with its
    default tokenizer: lower-case, ``(?u)\\b\\w\\w+\\b``, English stop words."""

    def __init__(
        self,
        k1: float = 1.5,
        b: float = 0.75,
        method: str = "lucene",
        lowercase: bool = True,
        stopwords: Union[str, Sequence[str], None] = "en",
    ) -> None: ...
    def index(self, corpus: Sequence[str], ids: Optional[Sequence[str]] = None) -> None:
        """Index the texts of ``corpus`` (replaces any earlier index); releases the GIL."""
    def retrieve(
        self, queries: Union[str, Sequence[str]], k: int = 10, n_threads: int = 1
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """Top ``k`` per query: ``(indices, scores)``, shape ``(len(queries), k)``, best first,
        ties in corpus order; unmatched slots hold -1 and 0.0. Releases the GIL, so a thread
        pool can call it in parallel."""
    def get_scores(self, query: str) -> npt.NDArray[np.float32]:
        """The score of every document, in corpus order."""
    def save(self, dir: PathLike) -> str:
        """Save as ``dir/bm25.index``; returns the file path."""
    @staticmethod
    def load(dir: PathLike) -> "BM25":
        """Load a model saved by ``save``."""
    @property
    def doc_ids(self) -> list[str]: ...
    @property
    def k1(self) -> float: ...
    @property
    def b(self) -> float: ...
    @property
    def method(self) -> str: ...
    def __len__(self) -> int: ...

class QueryRenderer:
    """The official recipe's retrieval query from plain dicts."""

    def __init__(
        self,
        tracks: Optional[Iterable[Mapping[str, Any]]] = None,
        missing_track: str = "skip",
        release_date_as_characters: bool = False,
    ) -> None: ...
    def render(
        self,
        conversation: Iterable[Mapping[str, Any]],
        turn_number: Optional[int] = None,
        session_id: str = "",
    ) -> str:
        """``role: content`` lines of the earlier turns (music messages as the catalog's
        lower-cased metadata), then ``user: <current message>``."""
    def __len__(self) -> int: ...

def document_text(track: Mapping[str, Any]) -> str:
    """The official BM25 baseline's document of a track dict."""

def tokenize(
    text: str, lowercase: bool = True, stopwords: Union[str, Sequence[str], None] = "en"
) -> list[str]:
    """bm25s's default tokenization."""

def rrf(
    rankings: Sequence[Sequence[Union[str, tuple[str, float]]]],
    weights: Optional[Sequence[float]] = None,
    k: float = 60.0,
    top_k: Optional[int] = None,
) -> list[tuple[str, float]]:
    """Weighted reciprocal-rank fusion, as the ranker fuses its channels."""

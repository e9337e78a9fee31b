"""music-crs: the Music-CRS challenge's official metrics, prediction validator, bm25s-exact BM25
and reciprocal-rank fusion, implemented in Rust.

Heavy calls release the GIL; a Rust panic surfaces as ``RuntimeError``.
"""

from ._native import (
    BM25,
    Problem,
    QueryRenderer,
    __version__,
    document_text,
    evaluate,
    rrf,
    tokenize,
    validate,
)

__all__ = [
    "BM25",
    "Problem",
    "QueryRenderer",
    "__version__",
    "document_text",
    "evaluate",
    "rrf",
    "tokenize",
    "validate",
]

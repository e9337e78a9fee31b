//! Python bindings of music-crs (the `music_crs` package, built with maturin).
//!
//! The wheel exposes the exact, fast parts of the project to Python: the official metrics
//! ([`metrics`]), the prediction validator, BM25 that scores exactly as bm25s does with the
//! official recipe's query renderer ([`bm25`]), and the ranker's reciprocal-rank fusion
//! ([`fusion`]). No polars and no candle: the wheel builds in minutes and stays small.
//!
//! Every heavy call releases the GIL; a Rust panic inside one comes back as a Python
//! `RuntimeError` instead of aborting the interpreter. The Python-facing documentation lives
//! in `python/music_crs/__init__.pyi` and the crate README.

pub mod bm25;
mod error;
pub mod fusion;
pub mod metrics;

use std::panic::{AssertUnwindSafe, catch_unwind};

use pyo3::prelude::*;

pub use error::{Error, Result};

/// Runs `work` without the GIL, turning a panic into [`Error::Panic`].
pub(crate) fn detached<T: Send>(
    py: Python<'_>,
    work: impl FnOnce() -> Result<T> + Send,
) -> Result<T> {
    py.detach(|| {
        catch_unwind(AssertUnwindSafe(work)).unwrap_or_else(|payload| {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            Err(Error::Panic(message))
        })
    })
}

/// The native module behind the `music_crs` package.
#[pymodule]
#[pyo3(name = "_native")]
fn native_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(metrics::evaluate, m)?)?;
    m.add_function(wrap_pyfunction!(metrics::validate, m)?)?;
    m.add_class::<metrics::Problem>()?;
    m.add_class::<bm25::Bm25>()?;
    m.add_class::<bm25::QueryRenderer>()?;
    m.add_function(wrap_pyfunction!(bm25::document_text, m)?)?;
    m.add_function(wrap_pyfunction!(bm25::tokenize, m)?)?;
    m.add_function(wrap_pyfunction!(fusion::rrf, m)?)?;
    m.add_function(wrap_pyfunction!(panic_for_tests, m)?)?;
    Ok(())
}

/// Panics inside a GIL-free call: lets the tests check a panic surfaces as an exception.
#[pyfunction]
fn panic_for_tests(py: Python<'_>) -> PyResult<()> {
    detached(py, || -> Result<()> {
        panic!("deliberate panic for the tests")
    })?;
    Ok(())
}

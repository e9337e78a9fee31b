//! Integration tests of the `music-crs` package: the pipeline end to end on generated demo
//! data and on the real samples of `../shared`, every shipped config, the CLI and its chat REPL (through a pseudo-terminal), parity of the
//! query text with the official baseline, the channels and the learned ranker, and the HTTP
//! server with its web page (feature `serve`). One test
//! binary (see `Cargo.toml`).

mod cli;
mod common;
mod configs;
mod demo;
#[cfg(feature = "llama")]
mod llama;
mod parity;
mod ranked;
#[cfg(unix)]
mod repl;
mod results;
#[cfg(unix)]
mod resume;
mod samples;
#[cfg(feature = "serve")]
mod serve;

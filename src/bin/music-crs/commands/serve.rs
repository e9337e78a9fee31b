//! `music-crs serve`: the recommender as an HTTP API with a web chat page.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use music_crs::RunData;
use music_crs::serve::{Limits, router, serve, shutdown_signal};

use super::run::with_train_hint;
use crate::args::DatasetArgs;

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    #[command(flatten)]
    pub(crate) dataset: DatasetArgs,
    /// The address to listen on (port 0: any free port, printed at start).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub(crate) addr: SocketAddr,
    /// API requests handled at once; more are refused with 503 at once.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_concurrent_requests)]
    pub(crate) max_concurrent: usize,
    /// Seconds allowed for one API request (503 beyond).
    #[arg(long, value_name = "SECONDS", default_value_t = Limits::default().request_timeout.as_secs_f64())]
    pub(crate) timeout: f64,
    /// Largest request body in bytes (413 beyond).
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_body_bytes)]
    pub(crate) max_body_bytes: usize,
    /// Most messages in one conversation (422 beyond).
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_messages)]
    pub(crate) max_messages: usize,
    /// Longest message in characters (422 beyond).
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_message_chars)]
    pub(crate) max_message_chars: usize,
    /// Sessions kept; the least recently used is evicted first.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_sessions)]
    pub(crate) max_sessions: usize,
    /// Seconds an idle session is kept.
    #[arg(long, value_name = "SECONDS", default_value_t = Limits::default().session_ttl.as_secs())]
    pub(crate) session_ttl: u64,
    /// Async worker threads [default: one per core]. The method's work runs on a separate
    /// pool of blocking threads.
    #[arg(long, value_name = "N")]
    pub(crate) workers: Option<usize>,
}

impl ServeArgs {
    fn limits(&self) -> Result<Limits> {
        let timeout = Duration::try_from_secs_f64(self.timeout)
            .with_context(|| format!("--timeout {}: not a duration in seconds", self.timeout))?;
        let limits = Limits {
            max_body_bytes: self.max_body_bytes,
            max_messages: self.max_messages,
            max_message_chars: self.max_message_chars,
            request_timeout: timeout,
            max_concurrent_requests: self.max_concurrent,
            max_sessions: self.max_sessions,
            session_ttl: Duration::from_secs(self.session_ttl),
            ..Limits::default()
        };
        limits.validate()?;
        Ok(limits)
    }
}

pub(crate) fn serve_command(args: ServeArgs) -> Result<i32> {
    let limits = args.limits()?;
    let config = args.dataset.load_config()?;
    let dataset = RunData::load_for_chat(&config).map_err(|e| with_train_hint(e, &args.dataset))?;
    let crs =
        music_crs::build_crs(&config, &dataset).map_err(|e| with_train_hint(e, &args.dataset))?;
    drop(dataset);
    let summary = format!(
        "{} ({} + {}, {} tracks)",
        config.tid,
        crs.retriever_name(),
        crs.generator_name(),
        crs.catalog().len()
    );
    let app = router(Arc::new(crs), &config.tid, limits)?;
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all().thread_name("music-crs-serve");
    if let Some(workers) = args.workers {
        anyhow::ensure!(workers > 0, "--workers must be at least 1");
        runtime.worker_threads(workers);
    }
    let runtime = runtime.build().context("starting the async runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.addr)
            .await
            .with_context(|| format!("listening on {}", args.addr))?;
        let addr = listener.local_addr().context("the listening address")?;
        // The first line of stdout: scripts and tests read the port from it.
        println!("serving {summary} on http://{addr}");
        serve(listener, app, shutdown_signal())
            .await
            .context("serving")?;
        println!("stopped: every request in flight was answered");
        anyhow::Ok(())
    })?;
    Ok(0)
}

//! Logging through `tracing` and the progress bars that log lines print above.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::{Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

pub(crate) fn init(quiet: bool, verbose: u8) {
    let default = match (quiet, verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    // rustyline logs through `log` when a terminal does not answer its cursor query: noise.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{default},rustyline=off")));
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(|| LogWriter)
        .with_target(false)
        .with_filter(filter);
    // Progress reaches the bars through callbacks (`TrainingProgress`, per-batch counts), not
    // through log events.
    tracing_subscriber::registry().with(logs).init();
}

/// The progress bar being drawn, if any: log lines are printed above it rather than through it.
static ACTIVE_BAR: Mutex<Option<ProgressBar>> = Mutex::new(None);

pub(crate) fn active_bar() -> Option<ProgressBar> {
    ACTIVE_BAR.lock().ok().and_then(|bar| bar.clone())
}

pub(crate) fn set_active_bar(bar: Option<&ProgressBar>) {
    if let Ok(mut slot) = ACTIVE_BAR.lock() {
        *slot = bar.cloned();
    }
}

/// Writes log lines to stderr, suspending the active progress bar around each.
pub(crate) struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match active_bar() {
            Some(bar) => bar.suspend(|| std::io::stderr().write_all(buf))?,
            None => std::io::stderr().write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

pub(crate) fn progress_bar(len: u64, quiet: bool) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    let style = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} turns ({per_sec}, ETA {eta})",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}

/// The bar of `train-ranker`: one phase at a time (turns whose candidates are gathered, then
/// trees grown), each with its total and an ETA.
pub(crate) fn training_bar(quiet: bool) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    let style = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {msg:<24} {wide_bar} {pos}/{len} (ETA {eta})",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

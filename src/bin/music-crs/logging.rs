//! Logging through `tracing` and the progress bars that log lines print above.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context as LayerContext, Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, filter};

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
    // Sees the rank crate's progress events whatever the log level.
    let progress = RankProgress.with_filter(filter::filter_fn(|meta| {
        meta.target().starts_with("music_crs_rank") && *meta.level() <= tracing::Level::INFO
    }));
    tracing_subscriber::registry()
        .with(logs)
        .with(progress)
        .init();
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

/// Turns the rank crate's training events (`done`/`of` while candidates are gathered, `tree`
/// while boosting) into the message of the active progress bar.
pub(crate) struct RankProgress;

#[derive(Default)]
pub(crate) struct ProgressFields {
    done: Option<u64>,
    of: Option<u64>,
    tree: Option<u64>,
    turns: Option<u64>,
    message: String,
}

impl Visit for ProgressFields {
    fn record_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            "done" => self.done = Some(value),
            "of" => self.of = Some(value),
            "tree" => self.tree = Some(value),
            "turns" => self.turns = Some(value),
            _ => {}
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if let Ok(value) = u64::try_from(value) {
            self.record_u64(field, value);
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_string();
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        }
    }
}

impl<S: Subscriber> Layer<S> for RankProgress {
    fn on_event(&self, event: &Event<'_>, _: LayerContext<'_, S>) {
        let Some(bar) = active_bar() else { return };
        let mut fields = ProgressFields::default();
        event.record(&mut fields);
        let message = if let (Some(done), Some(of)) = (fields.done, fields.of) {
            format!("gathering candidates and features: {done}/{of} turns")
        } else if let Some(tree) = fields.tree {
            format!("boosting: tree {tree}")
        } else if let Some(turns) = fields.turns {
            format!("gathering candidates and features for {turns} turns")
        } else if !fields.message.is_empty() {
            fields.message
        } else {
            return;
        };
        bar.set_message(message);
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

//! Logging through `tracing` and the progress bars that log lines print above.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::{Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

/// When stderr gets colours (`--color`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ColorWhen {
    /// When stderr is a terminal and `NO_COLOR` is unset or empty.
    Auto,
    /// Always, even into a file or pipe.
    Always,
    /// Never.
    Never,
}

impl ColorWhen {
    /// The `--color` of a command line, before clap has parsed it (so that clap's own help
    /// and errors follow it too); `auto` when absent or unknown.
    pub(crate) fn from_args(args: &[String]) -> Self {
        let mut choice = ColorWhen::Auto;
        let mut iter = args.iter().skip(1);
        while let Some(arg) = iter.next() {
            let value = match arg.strip_prefix("--color") {
                Some("") => iter.next().map(String::as_str),
                Some(rest) => rest.strip_prefix('='),
                None => None,
            };
            if let Some(value) = value {
                choice = match value {
                    "always" => ColorWhen::Always,
                    "never" => ColorWhen::Never,
                    _ => ColorWhen::Auto,
                };
            }
        }
        choice
    }

    pub(crate) fn for_clap(self) -> clap::ColorChoice {
        match self {
            ColorWhen::Auto => clap::ColorChoice::Auto,
            ColorWhen::Always => clap::ColorChoice::Always,
            ColorWhen::Never => clap::ColorChoice::Never,
        }
    }

    /// Whether stderr gets colours.
    pub(crate) fn on_stderr(self) -> bool {
        self.decide(
            std::io::stderr().is_terminal(),
            std::env::var_os("NO_COLOR"),
        )
    }

    fn decide(self, terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
        match self {
            ColorWhen::Always => true,
            ColorWhen::Never => false,
            ColorWhen::Auto => terminal && no_color.is_none_or(|v| v.is_empty()),
        }
    }
}

/// Whether progress bars are drawn: on a terminal, unless `--quiet`.
pub(crate) fn bars_visible(quiet: bool) -> bool {
    !quiet && std::io::stderr().is_terminal()
}

pub(crate) fn init(quiet: bool, verbose: u8, colors: bool) {
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
        .with_ansi(colors)
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
    if !bars_visible(quiet) {
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
    if !bars_visible(quiet) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_follow_the_flag_the_terminal_and_no_color() {
        let args = |line: &str| -> Vec<String> { line.split(' ').map(String::from).collect() };
        assert_eq!(
            ColorWhen::from_args(&args("music-crs run")),
            ColorWhen::Auto
        );
        assert_eq!(
            ColorWhen::from_args(&args("music-crs --color never run")),
            ColorWhen::Never
        );
        assert_eq!(
            ColorWhen::from_args(&args("music-crs run --color=always")),
            ColorWhen::Always
        );
        let auto = ColorWhen::Auto;
        assert!(auto.decide(true, None));
        assert!(!auto.decide(false, None), "not a terminal");
        assert!(!auto.decide(true, Some("1".into())), "NO_COLOR");
        assert!(
            auto.decide(true, Some("".into())),
            "an empty NO_COLOR is unset"
        );
        assert!(ColorWhen::Always.decide(false, Some("1".into())));
        assert!(!ColorWhen::Never.decide(true, None));
    }
}

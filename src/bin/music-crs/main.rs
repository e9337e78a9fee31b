//! `music-crs`: run a method over a split, score or validate prediction files, regenerate the
//! demo dataset, chat with the recommender, or serve it over HTTP (feature `serve`).
//!
//! With no arguments it runs `config/bm25_template.toml` (BM25 + template replies) on the demo
//! dataset's `test` split, writes `exp/inference/bm25_template.json` and prints the scores.
//! `train-ranker` trains the LambdaMART model a `ranked` config names.

mod args;
mod commands;
mod logging;
mod plot;

use std::time::Instant;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use clap_complete::Shell;

use crate::commands::{
    chat::ChatArgs, compare::CompareArgs, demo_data::DemoDataArgs, evaluate::EvaluateArgs,
    run::RunArgs, train_ranker::TrainRankerArgs, validate::ValidateArgs,
};

#[derive(Debug, Parser)]
#[command(
    name = "music-crs",
    version,
    about = "Conversational music recommendation for the Music-CRS challenge"
)]
struct Cli {
    /// Silence the progress bar and info logs.
    #[arg(short, long, global = true)]
    quiet: bool,
    /// More logs (-v debug, -vv trace); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Colours on stderr: `auto` when it is a terminal and NO_COLOR is unset.
    #[arg(long, global = true, value_enum, default_value_t = logging::ColorWhen::Auto)]
    color: logging::ColorWhen,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Predict every turn of a split and score it when the split has gold tracks.
    Run(RunArgs),
    /// Train the LambdaMART ranker of a `ranked` config on the train split of its dataset and
    /// write the model file the config names.
    TrainRanker(TrainRankerArgs),
    /// Score a prediction file against a ground truth.
    Evaluate(EvaluateArgs),
    /// Compare prediction files on one ground truth: every metric with its bootstrap
    /// interval, paired tests against a baseline, and a plot.
    Compare(CompareArgs),
    /// Check a prediction file and list every problem (non-zero exit when invalid).
    Validate(ValidateArgs),
    /// Regenerate the demo dataset.
    DemoData(DemoDataArgs),
    /// Write the catalog in the bulk formats of OpenSearch / Elasticsearch (BM25 documents)
    /// or Qdrant (track embeddings), for a move past one machine (docs/SCALING.md).
    Export(commands::export::ExportArgs),
    /// Talk to the recommender (a REPL with history and /commands, or one message with
    /// --query).
    Chat(ChatArgs),
    /// Serve the recommender over HTTP: a JSON API under /v1 and a web chat page at /
    /// (feature `serve`).
    #[cfg(feature = "serve")]
    Serve(commands::serve::ServeArgs),
    /// Serve over HTTP: this build lacks the `serve` feature.
    #[cfg(not(feature = "serve"))]
    #[command(hide = true)]
    Serve {
        /// Ignored: the error names the feature and the command that rebuilds with it.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Print a shell completion script (e.g. `music-crs completions bash >
    /// ~/.local/share/bash-completion/completions/music-crs`).
    Completions {
        /// The shell to complete for.
        shell: Shell,
    },
}

/// The Cargo features of `music-crs` this binary was built with.
fn compiled_features() -> Vec<&'static str> {
    let mut features = Vec::new();
    if cfg!(feature = "hub") {
        features.push("hub");
    }
    if cfg!(feature = "llama") {
        features.push("llama");
    }
    if cfg!(feature = "bert") {
        features.push("bert");
    }
    if cfg!(feature = "plot") {
        features.push("plot");
    }
    if cfg!(feature = "serve") {
        features.push("serve");
    }
    if cfg!(feature = "cuda") {
        features.push("cuda");
    }
    if cfg!(feature = "metal") {
        features.push("metal");
    }
    features
}

/// `--version`: the version and the compiled features.
fn version_text(features: &[&str]) -> String {
    let features = if features.is_empty() {
        "none".to_string()
    } else {
        features.join(", ")
    };
    format!("{} (features: {features})", env!("CARGO_PKG_VERSION"))
}

/// The advice printed under an error caused by a feature this build lacks: the feature and the
/// command that rebuilds with it (keeping the features already compiled) and reruns `args`.
fn feature_hint(missing: &str, compiled: &[&str], args: &[String]) -> String {
    let mut features: Vec<&str> = compiled.to_vec();
    if !features.contains(&missing) {
        features.push(missing);
    }
    let rerun: Vec<String> = args.iter().map(|arg| shell_word(arg)).collect();
    format!(
        "this music-crs was built without the `{missing}` feature; rebuild and rerun with:\n  \
         cargo run --release --features {} -- {}",
        features.join(","),
        rerun.join(" ")
    )
}

/// `word` quoted for a POSIX shell when it needs it.
fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Ends the process quietly when standard output is a pipe whose reader went away
/// (`music-crs … | head`): `println!` panics on that error, and a backtrace for a closed pipe
/// helps nobody. Ripgrep exits 0 in the same case.
fn exit_quietly_on_broken_pipe() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(0);
        }
        default_hook(info);
    }));
}

/// The error and its causes, joined by `: `, each once. A cause whose text is already in the
/// message is left out: some errors (of io wrappers such as fs-err, of hf-hub) put their
/// cause in their own message and also return it as `source()`, which anyhow's `{:#}` would
/// print twice.
fn error_text(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let cause = cause.to_string();
        if text.contains(&cause) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&cause);
    }
    text
}

fn main() {
    exit_quietly_on_broken_pipe();
    let started = Instant::now();
    let features = compiled_features();
    let version: &'static str = Box::leak(version_text(&features).into_boxed_str());
    let args: Vec<String> = std::env::args().collect();
    let matches = Cli::command()
        .version(version)
        .color(logging::ColorWhen::from_args(&args).for_clap())
        .get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|err| err.exit());
    logging::init(cli.quiet, cli.verbose, cli.color.on_stderr());
    let quiet = cli.quiet;
    // Every hub access (datasets, Llama and BERT models) uses these settings; a download
    // shows a bar only where the other progress bars would.
    music_crs_core::hub::install_process_params(music_crs_core::hub::HubParams {
        progress: logging::bars_visible(quiet),
        ..music_crs_core::hub::HubParams::from_env()
    });
    let outcome = match cli
        .command
        .unwrap_or_else(|| Command::Run(RunArgs::default()))
    {
        Command::Run(args) => commands::run::run(args, quiet, started),
        Command::TrainRanker(args) => commands::train_ranker::train_ranker(args, quiet, started),
        Command::Evaluate(args) => commands::evaluate::evaluate(args),
        Command::Compare(args) => commands::compare::compare_command(args),
        Command::Validate(args) => commands::validate::validate(args),
        Command::DemoData(args) => commands::demo_data::demo_data(args),
        Command::Export(args) => commands::export::export(args),
        Command::Chat(args) => commands::chat::chat(args),
        #[cfg(feature = "serve")]
        Command::Serve(args) => commands::serve::serve_command(args),
        #[cfg(not(feature = "serve"))]
        Command::Serve { .. } => Err(music_crs::Error::FeatureDisabled {
            feature: "serve",
            what: "`music-crs serve`".into(),
        }
        .into()),
        Command::Completions { shell } => {
            // clap_complete panics when its writer fails: write to memory, then to stdout, so
            // a closed pipe (`| head`) ends quietly.
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "music-crs", &mut script);
            match std::io::Write::write_all(&mut std::io::stdout(), &script) {
                Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => Err(err.into()),
                _ => Ok(0),
            }
        }
    };
    match outcome {
        Ok(code) => std::process::exit(code),
        Err(err) => {
            eprintln!("error: {}", error_text(&err));
            let missing = err
                .chain()
                .find_map(|cause| cause.downcast_ref::<music_crs::Error>())
                .and_then(music_crs::Error::missing_feature);
            if let Some(missing) = missing {
                let args: Vec<String> = std::env::args().skip(1).collect();
                eprintln!("{}", feature_hint(missing, &features, &args));
            }
            std::process::exit(2);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_names_the_features() {
        assert!(version_text(&[]).ends_with("(features: none)"));
        let text = version_text(&["hub", "llama"]);
        assert!(text.starts_with(env!("CARGO_PKG_VERSION")), "{text}");
        assert!(text.contains("features: hub, llama"), "{text}");
    }

    #[test]
    fn hint_names_the_feature_and_the_exact_command() {
        let args: Vec<String> = ["run", "--config", "config/my llama.toml", "--limit", "8"]
            .map(String::from)
            .into();
        let hint = feature_hint("llama", &["hub"], &args);
        assert!(hint.contains("without the `llama` feature"), "{hint}");
        assert!(
            hint.ends_with(
                "cargo run --release --features hub,llama -- run --config \
                 'config/my llama.toml' --limit 8"
            ),
            "{hint}"
        );
        let hint = feature_hint("hub", &["hub"], &["chat".to_string()]);
        assert!(
            hint.ends_with("--features hub -- chat"),
            "an enabled feature is not repeated: {hint}"
        );
        assert_eq!(shell_word("it's"), r"'it'\''s'");
    }

    #[test]
    fn each_cause_of_a_chain_is_printed_once() {
        use anyhow::Context;
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.json");
        let cause = "No such file or directory";
        let err = music_crs_metrics::PredictionFile::from_json_file(&missing)
            .context("reading the predictions")
            .unwrap_err();
        for text in [format!("{err:#}"), error_text(&err)] {
            assert_eq!(text.matches(cause).count(), 1, "{text}");
            assert_eq!(text.matches("nope.json").count(), 1, "{text}");
            assert!(text.starts_with("reading the predictions: "), "{text}");
        }

        // An error of another crate that embeds its cause and also returns it as `source()`.
        #[derive(Debug)]
        struct Embeds(std::io::Error);
        impl std::fmt::Display for Embeds {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "request error: {}", self.0)
            }
        }
        impl std::error::Error for Embeds {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let io = std::fs::read(&missing).unwrap_err();
        let err = anyhow::Error::new(Embeds(io)).context("downloading");
        assert_eq!(format!("{err:#}").matches(cause).count(), 2, "{err:#}");
        let text = error_text(&err);
        assert_eq!(text.matches(cause).count(), 1, "{text}");
        assert!(text.starts_with("downloading: request error: "), "{text}");

        // A failed turn names its session and turn once, even when its cause names them.
        let turn = music_crs::Error::Turn {
            session_id: "s1".into(),
            turn_number: 3,
            error: Box::new(music_crs::Error::Generate(
                music_crs_generate::Error::PromptTooLong {
                    session_id: "s1".into(),
                    turn_number: 3,
                    tokens: 9000,
                    limit: 4096,
                },
            )),
        };
        let text = error_text(&anyhow::Error::new(turn).context("predicting"));
        assert_eq!(text.matches("session s1, turn 3").count(), 1, "{text}");
        assert!(text.contains("9000 tokens"), "{text}");
    }
}

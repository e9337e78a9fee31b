//! `music-crs`: run a method over a split, score or validate prediction files, regenerate the
//! demo dataset, or chat with the recommender.
//!
//! With no arguments it runs `config/bm25_template.toml` (BM25 + template replies) on the demo
//! dataset's `test` split, writes `exp/inference/bm25_template.json` and prints the scores.
//! `train-ranker` trains the LambdaMART model a `ranked` config names.

mod args;
mod commands;
mod logging;
mod plot;

use std::time::Instant;

use clap::{Parser, Subcommand};

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
    /// Talk to the recommender (a REPL on stdin, or one message with --query).
    Chat(ChatArgs),
}

fn main() {
    let started = Instant::now();
    let cli = Cli::parse();
    logging::init(cli.quiet, cli.verbose);
    let quiet = cli.quiet;
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
        Command::Chat(args) => commands::chat::chat(args),
    };
    match outcome {
        Ok(code) => std::process::exit(code),
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::exit(2);
        }
    }
}

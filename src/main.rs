//! `music-crs`: run a method over a split, score or validate prediction files, regenerate the
//! demo dataset, or chat with the recommender.
//!
//! With no arguments it runs `config/bm25_template.toml` (BM25 + template replies) on the demo
//! dataset's `test` split, writes `exp/inference/bm25_template.json` and prints the scores.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use music_crs::config::{
    CrsConfig, DEFAULT_CONFIG_PATH, GeneratorConfig, LlamaConfig, LlamaParams, ModelSource, Preset,
    RetrieverKind, SplitKind,
};
use music_crs::{Conversation, Crs, Reply, RunData};
use music_crs_metrics::{
    DEFAULT_CATALOG_SIZE, EvaluationParams, Evaluator, GroundTruth, PredictionFile, Validator,
};
use tracing::info;
use tracing_subscriber::EnvFilter;

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
    /// Score a prediction file against a ground truth.
    Evaluate(EvaluateArgs),
    /// Check a prediction file and list every problem (non-zero exit when invalid).
    Validate(ValidateArgs),
    /// Regenerate the demo dataset.
    DemoData(DemoDataArgs),
    /// Talk to the recommender (a REPL on stdin, or one message with --query).
    Chat(ChatArgs),
}

/// The config file and its dataset overrides, shared by every command that loads data.
#[derive(Debug, Clone, Default, Args)]
struct DatasetArgs {
    /// The method's config file [default: config/bm25_template.toml].
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Start from this dataset preset instead of the config's (demo-test, demo-blind,
    /// challenge-dev, challenge-blind-a, challenge-blind-b, ...).
    #[arg(long, value_name = "NAME")]
    preset: Option<Preset>,
    /// Conversations source: a directory in the hub layout, a parquet file, or a hub id.
    #[arg(long, value_name = "SRC")]
    conversations: Option<String>,
    /// Conversations split (several joined with `+`).
    #[arg(long, value_name = "NAME")]
    split: Option<String>,
    /// Predict only the final user turn of each row (blind sets).
    #[arg(long)]
    blind: bool,
    /// Track catalog source.
    #[arg(long, value_name = "SRC")]
    tracks: Option<String>,
    /// Catalog split.
    #[arg(long, value_name = "NAME")]
    tracks_split: Option<String>,
    /// User profiles source.
    #[arg(long, value_name = "SRC")]
    users: Option<String>,
    /// User profiles split.
    #[arg(long, value_name = "NAME")]
    users_split: Option<String>,
}

impl DatasetArgs {
    /// The config file with the command-line overrides applied.
    fn load_config(&self) -> Result<CrsConfig> {
        let mut config = match &self.config {
            Some(path) => CrsConfig::load(path)?,
            None if Path::new(DEFAULT_CONFIG_PATH).is_file() => {
                CrsConfig::load(DEFAULT_CONFIG_PATH)?
            }
            None => {
                info!("{DEFAULT_CONFIG_PATH} not found: using the built-in default method");
                CrsConfig::default()
            }
        };
        let dataset = &mut config.dataset;
        if let Some(preset) = self.preset {
            dataset.preset = Some(preset);
        }
        let set = |slot: &mut Option<String>, value: &Option<String>| {
            if value.is_some() {
                slot.clone_from(value);
            }
        };
        set(&mut dataset.conversations.source, &self.conversations);
        set(&mut dataset.conversations.split, &self.split);
        set(&mut dataset.tracks.source, &self.tracks);
        set(&mut dataset.tracks.split, &self.tracks_split);
        set(&mut dataset.users.source, &self.users);
        set(&mut dataset.users.split, &self.users_split);
        if self.blind {
            dataset.split_kind = Some(SplitKind::Blind);
        }
        Ok(config)
    }

    /// True when any dataset option was given.
    fn any(&self) -> bool {
        self.config.is_some()
            || self.preset.is_some()
            || self.conversations.is_some()
            || self.split.is_some()
            || self.blind
            || self.tracks.is_some()
            || self.tracks_split.is_some()
            || self.users.is_some()
            || self.users_split.is_some()
    }
}

#[derive(Debug, Default, Args)]
struct RunArgs {
    #[command(flatten)]
    dataset: DatasetArgs,
    /// Retriever kind (overrides the config; parameters of other kinds are dropped).
    #[arg(long, value_enum)]
    retriever: Option<RetrieverArg>,
    /// Generator kind (overrides the config).
    #[arg(long, value_enum)]
    generator: Option<GeneratorArg>,
    /// Generator model for `--generator llama`: a model directory, a .gguf file, or
    /// hub:owner/name (greedy decoding).
    #[arg(long, value_name = "SPEC")]
    model: Option<String>,
    /// Reply tokens at most (llama generator).
    #[arg(long, value_name = "N")]
    max_new_tokens: Option<usize>,
    /// Method name: the output is exp/inference/<TID>.json.
    #[arg(long)]
    tid: Option<String>,
    /// Tracks per turn (1..=20).
    #[arg(short = 'k', long)]
    top_k: Option<usize>,
    /// Leave out tracks already played in the conversation.
    #[arg(long)]
    exclude_played: bool,
    /// Predict only the first N turns.
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    /// Prediction file [default: exp/inference/<tid>.json].
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum RetrieverArg {
    Random,
    Popularity,
    Bm25,
    Bert,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum GeneratorArg {
    Template,
    Llama,
}

#[derive(Debug, Args)]
struct EvaluateArgs {
    /// The prediction file.
    #[arg(long, short, value_name = "FILE")]
    predictions: PathBuf,
    /// Ground truth JSON (`{session_id, user_id, turn_number, ground_truth_track_id}` rows);
    /// without it, the gold tracks of the config's conversations split are used.
    #[arg(long, value_name = "FILE")]
    ground_truth: Option<PathBuf>,
    #[command(flatten)]
    dataset: DatasetArgs,
    /// Catalog size for catalog diversity [default: the loaded catalog's, or 47071 with
    /// --ground-truth].
    #[arg(long, value_name = "N")]
    catalog_size: Option<usize>,
    /// Score file [default: exp/scores/<predictions file stem>.json].
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct ValidateArgs {
    /// The prediction file.
    file: PathBuf,
    /// Ground truth JSON: also check that every gold turn is predicted once.
    #[arg(long, value_name = "FILE")]
    ground_truth: Option<PathBuf>,
    /// Check against the config's dataset: turns to predict and catalog ids.
    #[arg(long)]
    with_dataset: bool,
    #[command(flatten)]
    dataset: DatasetArgs,
}

#[derive(Debug, Args)]
struct DemoDataArgs {
    /// Output directory.
    #[arg(long, default_value = music_crs::config::DEFAULT_DEMO_DIR)]
    out: PathBuf,
    /// Generator seed.
    #[arg(long)]
    seed: Option<u64>,
}

#[derive(Debug, Args)]
struct ChatArgs {
    #[command(flatten)]
    dataset: DatasetArgs,
    /// The listener's id (personalises replies when the users table knows it).
    #[arg(long, default_value = "")]
    user_id: String,
    /// One message, answered once (no REPL).
    #[arg(long)]
    query: Option<String>,
    /// Tracks shown per reply.
    #[arg(long, default_value_t = 5)]
    show: usize,
}

fn main() {
    let started = Instant::now();
    let cli = Cli::parse();
    init_logging(cli.quiet, cli.verbose);
    let quiet = cli.quiet;
    let outcome = match cli
        .command
        .unwrap_or_else(|| Command::Run(RunArgs::default()))
    {
        Command::Run(args) => run(args, quiet, started),
        Command::Evaluate(args) => evaluate(args),
        Command::Validate(args) => validate(args),
        Command::DemoData(args) => demo_data(args),
        Command::Chat(args) => chat(args),
    };
    match outcome {
        Ok(code) => std::process::exit(code),
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::exit(2);
        }
    }
}

fn init_logging(quiet: bool, verbose: u8) {
    let default = match (quiet, verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

fn run(args: RunArgs, quiet: bool, started: Instant) -> Result<i32> {
    let mut config = args.dataset.load_config()?;
    apply_run_overrides(&mut config, &args)?;
    config
        .validate()
        .context("the config with command-line overrides is invalid")?;
    info!(tid = %config.tid, "loading {}", config.dataset.to_spec()?.conversations);
    let dataset = RunData::load(&config.dataset)?;
    let mut turns = dataset.turns()?;
    if let Some(limit) = args.limit {
        turns.truncate(limit);
    }
    info!(
        sessions = dataset.sessions.len(),
        turns = turns.len(),
        tracks = dataset.catalog.len(),
        "dataset loaded in {:.2}s",
        started.elapsed().as_secs_f64()
    );
    let crs = music_crs::build_crs(&config, &dataset)?;
    info!(
        retriever = crs.retriever_name(),
        generator = crs.generator_name(),
        "recommender ready"
    );

    let bar = progress_bar(turns.len() as u64, quiet);
    let predict_start = Instant::now();
    let predictions = crs.predict_with_progress(&turns, &|n| bar.inc(n as u64))?;
    bar.finish_and_clear();
    info!(
        "predicted {} turns in {:.2}s",
        predictions.len(),
        predict_start.elapsed().as_secs_f64()
    );

    let output = args
        .output
        .clone()
        .unwrap_or_else(|| config.predictions_path());
    music_crs::output::write_predictions(&output, &predictions)?;
    println!(
        "wrote {} predictions to {}",
        predictions.len(),
        output.display()
    );

    let truth = GroundTruth::from_turn_contexts(turns.iter().filter(|t| t.gold_track_id.is_some()))
        .context("building the ground truth from the split's gold tracks")?;
    let file = PredictionFile::from_predictions(predictions, &output.display().to_string());
    let mut code = 0;
    if truth.is_empty() {
        let report = Validator::new()
            .with_catalog(dataset.catalog.as_ref())
            .validate(&file);
        println!("{}", report.summary());
        if !report.is_valid() {
            print!("{report}");
            code = 1;
        }
    } else {
        let report = Validator::new()
            .with_ground_truth(&truth)
            .with_catalog(dataset.catalog.as_ref())
            .validate(&file);
        if !report.is_valid() {
            print!("{report}");
            code = 1;
        }
        let params = EvaluationParams {
            catalog_size: dataset.catalog.len(),
            ..EvaluationParams::default()
        };
        let scores = Evaluator::new(params)?.evaluate(&truth, file.predictions())?;
        println!("{}", scores.table());
        let scores_path = config.scores_path();
        create_parent_dir(&scores_path)?;
        scores.write_official_json(&scores_path)?;
        println!("wrote scores to {}", scores_path.display());
    }
    println!(
        "total wall time: {:.2}s (load included)",
        started.elapsed().as_secs_f64()
    );
    Ok(code)
}

fn apply_run_overrides(config: &mut CrsConfig, args: &RunArgs) -> Result<()> {
    if let Some(kind) = args.retriever {
        let kind = match kind {
            RetrieverArg::Random => RetrieverKind::Random,
            RetrieverArg::Popularity => RetrieverKind::Popularity,
            RetrieverArg::Bm25 => RetrieverKind::Bm25,
            RetrieverArg::Bert => RetrieverKind::Bert,
        };
        if kind != config.retriever.kind {
            // Parameters of the config's kind would not apply to the new one.
            let previous = std::mem::take(&mut config.retriever);
            config.retriever.kind = kind;
            config.retriever.k = previous.k;
            config.retriever.exclude_played = previous.exclude_played;
            if kind == RetrieverKind::Bert {
                config.retriever.model = Some(music_crs::config::DEFAULT_BERT_MODEL.into());
            }
        }
    }
    match (args.generator, &args.model) {
        (Some(GeneratorArg::Template), Some(_)) => {
            bail!("--model applies to the llama generator, not the template one")
        }
        (Some(GeneratorArg::Template), None) => {
            if !matches!(config.generator, GeneratorConfig::Template(_)) {
                config.generator = GeneratorConfig::default();
            }
        }
        (Some(GeneratorArg::Llama), model) | (None, model @ Some(_)) => {
            let mut llama = match &config.generator {
                GeneratorConfig::Llama(llama) => llama.clone(),
                _ => LlamaConfig {
                    model: ModelSource::default(),
                    params: LlamaParams::greedy(),
                },
            };
            if let Some(spec) = model {
                llama.model = ModelSource::parse(spec)?;
            }
            config.generator = GeneratorConfig::Llama(llama);
        }
        (None, None) => {}
    }
    if let Some(max_new_tokens) = args.max_new_tokens {
        match &mut config.generator {
            GeneratorConfig::Llama(llama) => llama.params.max_new_tokens = max_new_tokens,
            _ => bail!("--max-new-tokens applies to the llama generator"),
        }
    }
    if let Some(tid) = &args.tid {
        config.tid = tid.clone();
    }
    if let Some(k) = args.top_k {
        config.retriever.k = k;
    }
    if args.exclude_played {
        config.retriever.exclude_played = true;
    }
    Ok(())
}

fn create_parent_dir(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs_err::create_dir_all(dir)?;
    }
    Ok(())
}

fn progress_bar(len: u64, quiet: bool) -> ProgressBar {
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

fn evaluate(args: EvaluateArgs) -> Result<i32> {
    let file = PredictionFile::from_json_file(&args.predictions)?;
    let (truth, catalog_size) = match &args.ground_truth {
        Some(path) => (
            GroundTruth::from_json_file(path)?,
            args.catalog_size.unwrap_or(DEFAULT_CATALOG_SIZE),
        ),
        None => {
            let config = args.dataset.load_config()?;
            let dataset = RunData::load(&config.dataset)?;
            let turns = dataset.turns()?;
            let truth = GroundTruth::from_turn_contexts(
                turns.iter().filter(|t| t.gold_track_id.is_some()),
            )?;
            if truth.is_empty() {
                bail!(
                    "the conversations {} have no gold tracks to score against (a blind set?); \
                     give --ground-truth",
                    config.dataset.to_spec()?.conversations
                );
            }
            (truth, args.catalog_size.unwrap_or(dataset.catalog.len()))
        }
    };
    let params = EvaluationParams {
        catalog_size,
        ..EvaluationParams::default()
    };
    let scores = Evaluator::new(params)?.evaluate(&truth, file.predictions())?;
    println!("{}", scores.table());
    let output = args.output.unwrap_or_else(|| {
        let stem = args
            .predictions
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "predictions".into());
        Path::new("exp/scores").join(format!("{stem}.json"))
    });
    create_parent_dir(&output)?;
    scores.write_official_json(&output)?;
    println!("wrote scores to {}", output.display());
    Ok(0)
}

fn validate(args: ValidateArgs) -> Result<i32> {
    let file = PredictionFile::from_json_file(&args.file)?;
    let truth_file = args
        .ground_truth
        .as_ref()
        .map(GroundTruth::from_json_file)
        .transpose()?;
    let dataset = if args.with_dataset || args.dataset.any() {
        let config = args.dataset.load_config()?;
        let dataset = RunData::load(&config.dataset)?;
        let turns = dataset.turns()?;
        Some((dataset, turns))
    } else {
        None
    };
    // Gold turns of the dataset, when it has them (not blind sets).
    let truth_from_dataset = match (&truth_file, &dataset) {
        (None, Some((_, turns))) if turns.iter().all(|t| t.gold_track_id.is_some()) => {
            Some(GroundTruth::from_turn_contexts(turns)?)
        }
        _ => None,
    };
    let mut validator = Validator::new();
    if let Some(truth) = truth_file.as_ref().or(truth_from_dataset.as_ref()) {
        validator = validator.with_ground_truth(truth);
    }
    if let Some((dataset, _)) = &dataset {
        validator = validator.with_catalog(dataset.catalog.as_ref());
    }
    let report = validator.validate(&file);
    println!("{report}");
    let mut valid = report.is_valid();
    // A blind set has no gold: check the (session, turn) pairs it asks for instead.
    if let (None, None, Some((_, turns))) = (&truth_file, &truth_from_dataset, &dataset) {
        let problems = music_crs::output::coverage_problems(file.predictions(), turns);
        for problem in &problems {
            println!("  - {problem}");
        }
        if problems.is_empty() {
            println!(
                "every one of the {} turns to predict has one prediction",
                turns.len()
            );
        }
        valid &= problems.is_empty();
    }
    Ok(if valid { 0 } else { 1 })
}

fn demo_data(args: DemoDataArgs) -> Result<i32> {
    let mut params = music_crs_data::demo::DemoParams::default();
    if let Some(seed) = args.seed {
        params.seed = seed;
    }
    let demo = music_crs_data::demo::DemoDataset::generate(&params)?;
    let files = demo
        .write(&args.out)
        .with_context(|| format!("writing the demo dataset to {}", args.out.display()))?;
    println!(
        "wrote {} tracks, {} users, {} train / {} test / {} blind sessions (seed {}):",
        demo.tracks.len(),
        demo.users.len(),
        demo.train.len(),
        demo.test.len(),
        demo.blind.len(),
        params.seed
    );
    for file in files {
        println!("  {}", file.display());
    }
    Ok(0)
}

fn chat(args: ChatArgs) -> Result<i32> {
    let config = args.dataset.load_config()?;
    let dataset = RunData::load_catalog_and_users(&config.dataset)?;
    let crs = music_crs::build_crs(&config, &dataset)?;
    let mut conversation = Conversation::new("chat", args.user_id.clone());
    if let Some(query) = &args.query {
        let reply = conversation.say(&crs, query)?;
        print_reply(&crs, &reply, args.show);
        return Ok(0);
    }
    eprintln!(
        "music-crs chat ({} + {}, {} tracks). Type a message; an empty line or Ctrl-D quits.",
        crs.retriever_name(),
        crs.generator_name(),
        crs.catalog().len()
    );
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    loop {
        eprint!("you> ");
        std::io::stderr().flush().ok();
        let Some(line) = lines.next() else { break };
        let line = line.context("reading stdin")?;
        let message = line.trim();
        if message.is_empty() {
            break;
        }
        match conversation.say(&crs, message) {
            Ok(reply) => print_reply(&crs, &reply, args.show),
            Err(err) => eprintln!("error: {err}"),
        }
    }
    Ok(0)
}

fn print_reply(crs: &Crs, reply: &Reply, show: usize) {
    for (rank, scored) in reply.tracks.iter().take(show).enumerate() {
        let Some(track) = crs.catalog().get(&scored.track_id) else {
            println!("{:>2}. {}", rank + 1, scored.track_id);
            continue;
        };
        let link = music_crs::spotify_link(&track.track_id)
            .map(|url| format!("  {url}"))
            .unwrap_or_default();
        println!(
            "{:>2}. {} — {}{link}",
            rank + 1,
            track.name(),
            track.artist()
        );
    }
    println!("crs> {}", reply.response);
}

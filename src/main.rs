//! `music-crs`: run a method over a split, score or validate prediction files, regenerate the
//! demo dataset, or chat with the recommender.
//!
//! With no arguments it runs `config/bm25_template.toml` (BM25 + template replies) on the demo
//! dataset's `test` split, writes `exp/inference/bm25_template.json` and prints the scores.
//! `train-ranker` trains the LambdaMART model a `ranked` config names.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use music_crs::config::{
    CrsConfig, DEFAULT_CONFIG_PATH, GeneratorConfig, LlamaConfig, LlamaParams, ModelSource, Preset,
    RetrieverKind, SplitKind, local_dataset,
};
use music_crs::{Conversation, Crs, RankData, Reply, RunData};
use music_crs_metrics::{
    DEFAULT_CATALOG_SIZE, EvaluationParams, Evaluator, GroundTruth, PredictionFile, Validator,
};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber, info};
use tracing_subscriber::layer::{Context as LayerContext, Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, filter};

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
    /// Read every part from a local dataset root laid out like data/demo
    /// (conversations/, tracks/, users/, track_embeddings/, user_embeddings/), keeping the
    /// config's splits.
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
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
        if let Some(root) = &self.data {
            let spec = config.dataset.to_spec()?;
            config.dataset = local_dataset(root, &spec.conversations.split, spec.split_kind);
        }
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
            || self.data.is_some()
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

#[derive(Debug, Args)]
struct TrainRankerArgs {
    #[command(flatten)]
    dataset: DatasetArgs,
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
    /// Catalog size [default: the demo's 3,000].
    #[arg(long)]
    tracks: Option<usize>,
    /// Number of listeners.
    #[arg(long)]
    users: Option<usize>,
    /// Sessions in the `train` split.
    #[arg(long)]
    train: Option<usize>,
    /// Sessions in the `test` split (e.g. 1,000 for a dev-sized split of 8,000 turns).
    #[arg(long)]
    test: Option<usize>,
    /// Sessions in the `blind` split.
    #[arg(long)]
    blind: Option<usize>,
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
        Command::TrainRanker(args) => train_ranker(args, quiet, started),
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

fn active_bar() -> Option<ProgressBar> {
    ACTIVE_BAR.lock().ok().and_then(|bar| bar.clone())
}

fn set_active_bar(bar: Option<&ProgressBar>) {
    if let Ok(mut slot) = ACTIVE_BAR.lock() {
        *slot = bar.cloned();
    }
}

/// Writes log lines to stderr, suspending the active progress bar around each.
struct LogWriter;

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
struct RankProgress;

#[derive(Default)]
struct ProgressFields {
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

fn run(args: RunArgs, quiet: bool, started: Instant) -> Result<i32> {
    let mut config = args.dataset.load_config()?;
    apply_run_overrides(&mut config, &args)?;
    config
        .validate()
        .context("the config with command-line overrides is invalid")?;
    require_ranker_model(&config, &args.dataset)?;
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
    set_active_bar(Some(&bar));
    let predict_start = Instant::now();
    let predictions = crs.predict_with_progress(&turns, &|n| bar.inc(n as u64));
    set_active_bar(None);
    bar.finish_and_clear();
    let predictions = predictions?;
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

/// Stops a `ranked` run before any loading when its model file is missing, naming the
/// command that writes it.
fn require_ranker_model(config: &CrsConfig, dataset: &DatasetArgs) -> Result<()> {
    let Some(model) = config.retriever.ranker_model_path() else {
        return Ok(());
    };
    if model.exists() {
        return Ok(());
    }
    let config_path = dataset
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH));
    let data = dataset
        .data
        .as_ref()
        .map(|root| format!(" --data {}", root.display()))
        .unwrap_or_default();
    bail!(
        "ranker model {} does not exist: run `music-crs train-ranker --config {}{data}` first",
        model.display(),
        config_path.display()
    )
}

fn train_ranker(args: TrainRankerArgs, quiet: bool, started: Instant) -> Result<i32> {
    let config = args.dataset.load_config()?;
    config
        .validate()
        .context("the config with command-line overrides is invalid")?;
    let Some(model_path) = config.retriever.ranker_model_path() else {
        bail!(
            "train-ranker needs a config with `[retriever] kind = \"ranked\"` and its `model` \
             file; {} has kind {:?}",
            args.dataset
                .config
                .as_deref()
                .unwrap_or(Path::new(DEFAULT_CONFIG_PATH))
                .display(),
            config.retriever.kind.as_str()
        );
    };
    let spec = config.dataset.to_spec()?;
    info!(
        tid = %config.tid,
        "loading the catalog {} and the {:?} split of {}",
        spec.tracks,
        config.retriever.train_split(),
        spec.conversations.source
    );
    let data = RunData::load_catalog_and_users(&config.dataset)?;
    let rank_data = RankData::load(&config, data.catalog.clone())?;
    info!(
        tracks = data.catalog.len(),
        train_sessions = rank_data.train_sessions.len(),
        "data loaded in {:.2}s",
        started.elapsed().as_secs_f64()
    );

    let bar = spinner(quiet);
    bar.set_message("building channels");
    set_active_bar(Some(&bar));
    let train_start = Instant::now();
    let model = music_crs::train_ranker(&config, &rank_data);
    set_active_bar(None);
    bar.finish_and_clear();
    let model = model?;
    let train_seconds = train_start.elapsed().as_secs_f64();
    let summary = model.summary();
    println!(
        "wrote ranker model to {} ({} trees over {} features) in {train_seconds:.1}s",
        model_path.display(),
        model.tree_count(),
        model.feature_names().len()
    );
    println!(
        "training: {} turns drawn ({} train / {} validation with the target among the \
         candidates), {} rows; candidate recall {:.3}; {:.1}s candidates and features, {:.1}s \
         boosting",
        summary.turns,
        summary.train_queries,
        summary.valid_queries,
        summary.train_rows,
        summary.candidate_recall,
        summary.feature_seconds,
        summary.boosting_seconds
    );
    println!(
        "validation nDCG@{}: model {:.4}, candidate union RRF {:.4}",
        model.params().ndcg_k,
        summary.valid_ndcg_model,
        summary.valid_ndcg_union
    );
    println!(
        "total wall time: {:.2}s (load included)",
        started.elapsed().as_secs_f64()
    );
    Ok(0)
}

fn spinner(quiet: bool) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    let style = ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    bar.set_style(style);
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
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
    // Larger sizes make challenge-scale synthetic data for timing (the demo ships the defaults).
    for (value, field) in [
        (args.tracks, &mut params.num_tracks),
        (args.users, &mut params.num_users),
        (args.train, &mut params.num_train_sessions),
        (args.test, &mut params.num_test_sessions),
        (args.blind, &mut params.num_blind_sessions),
    ] {
        if let Some(value) = value {
            *field = value;
        }
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
    require_ranker_model(&config, &args.dataset)?;
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

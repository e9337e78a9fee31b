//! `music-crs run`: predict every turn of a split, write the predictions and score them.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use music_crs::checkpoint::{Checkpoint, Resumed, RunIdentity};
use music_crs::config::{
    CrsConfig, DEFAULT_CONFIG_PATH, GeneratorConfig, LlamaConfig, LlamaParams, ModelSource,
    RetrieverConfig, RetrieverKind,
};
use music_crs::core::{Catalog, ComputeDevice, Prediction, TurnContext};
use music_crs::replies::{ReplyCounts, flawed_turn_lines, reply_table_path, write_reply_table};
use music_crs::{PredictedTurn, RunData};
use music_crs_metrics::{EvaluationParams, GroundTruth, PredictionFile, Validator};
use tracing::{info, warn};

use super::{first_sessions, print_report, refuse_overwriting_inputs, score_and_save};
use crate::args::DatasetArgs;
use crate::logging::{progress_bar, set_active_bar};

#[derive(Debug, Default, Args)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    pub(crate) dataset: DatasetArgs,
    /// Retriever kind (overrides the config; parameters of other kinds are dropped).
    #[arg(long, value_enum)]
    pub(crate) retriever: Option<RetrieverArg>,
    /// Generator kind (overrides the config).
    #[arg(long, value_enum)]
    pub(crate) generator: Option<GeneratorArg>,
    /// Generator model for `--generator llama`: a model directory, a .gguf file, or
    /// hub:owner/name (greedy decoding).
    #[arg(long, value_name = "SPEC")]
    pub(crate) model: Option<String>,
    /// Reply tokens at most (llama generator).
    #[arg(long, value_name = "N")]
    pub(crate) max_new_tokens: Option<usize>,
    /// Where Candle models run (the llama generator, the bert retriever): cpu, cuda[:N]
    /// (a build with the `cuda` feature) or metal[:N] (`metal`) [default: the config's, else
    /// cpu].
    #[arg(long, value_name = "DEVICE")]
    pub(crate) device: Option<ComputeDevice>,
    /// Method name: the output is exp/inference/<TID>.json.
    #[arg(long)]
    pub(crate) tid: Option<String>,
    /// Tracks per turn (1..=20).
    #[arg(short = 'k', long)]
    pub(crate) top_k: Option<usize>,
    /// Leave out tracks already played in the conversation.
    #[arg(long)]
    pub(crate) exclude_played: bool,
    /// Predict only the turns of the first N sessions (all their turns; blind sets have one
    /// turn per session).
    #[arg(long, value_name = "N")]
    pub(crate) sessions: Option<usize>,
    /// Predict only the first N turns (after --sessions; a session has up to 8 turns).
    #[arg(long, value_name = "N")]
    pub(crate) limit: Option<usize>,
    /// Prediction file [default: exp/inference/<tid>.json]. Scores go to
    /// `<dir>/../scores/<stem>.json` when the file is in an `inference` folder, else beside it
    /// as `<stem>.scores.json`.
    #[arg(short, long, value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,
    /// Go on with a killed run: keep the turns its checkpoint (`<output>.partial.jsonl`)
    /// answered and predict the rest. The checkpoint must come from the same config, split,
    /// data and model files. Without --resume an old checkpoint is replaced.
    #[arg(long)]
    pub(crate) resume: bool,
    /// Turns per batch: the retriever's batch, the checkpoint's unit (a kill loses at most
    /// one batch) and, for a GGUF llama model on CPU, the replies decoded together (each
    /// thread a share of them) [default: 256; with the llama generator 64 per thread].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) batch_size: Option<u64>,
}

/// Turns per batch and thread with the llama generator: a kill should lose seconds of
/// replies, not minutes, while the own forward pass decodes up to 24 sequences a thread
/// together, starting the next turns of its share of the batch as earlier ones end (on the
/// demo with SmolLM2-135M and 2 threads, with earlier kernels, 200 turns took
/// 19.8-20.6 s in batches of 32, 19.6-19.7 s of 64, 19.5-20.1 s of 128 and 18.6-18.8 s of
/// 200; a batch of 128 is now ~10 s).
const LLAMA_TURNS_PER_THREAD: usize = 64;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum RetrieverArg {
    Random,
    Popularity,
    Bm25,
    Bert,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum GeneratorArg {
    Template,
    Llama,
}

pub(crate) fn run(args: RunArgs, quiet: bool, started: Instant) -> Result<i32> {
    let mut config = args.dataset.load_config()?;
    apply_run_overrides(&mut config, &args)?;
    config
        .validate()
        .context("the config with command-line overrides is invalid")?;
    let (output, scores_path) = match &args.output {
        Some(output) => (output.clone(), scores_path_for(output)),
        None => (config.predictions_path(), config.scores_path()),
    };
    // Checked before any work: the scores must never replace the predictions.
    refuse_overwriting_inputs(&scores_path, &[output.as_path()])?;
    info!(tid = %config.tid, "loading {}", config.dataset.to_spec()?.conversations);
    let dataset = RunData::load_for(&config).map_err(|e| with_train_hint(e, &args.dataset))?;
    let mut labeled = dataset.labeled_turns()?;
    if let Some(sessions) = args.sessions {
        labeled = first_sessions(labeled, sessions, |turn| &turn.context.session_id);
    }
    if let Some(limit) = args.limit {
        labeled.truncate(limit);
    }
    // The gold tracks stay here, for scoring; the recommender sees the contexts only.
    let truth =
        GroundTruth::from_labeled_turns(labeled.iter().filter(|t| t.gold_track_id.is_some()))
            .context("building the ground truth from the split's gold tracks")?;
    let turns: Vec<TurnContext> = labeled.into_iter().map(|turn| turn.context).collect();
    info!(
        sessions = dataset.sessions.len(),
        turns = turns.len(),
        tracks = dataset.catalog.len(),
        "dataset loaded in {:.2}s",
        started.elapsed().as_secs_f64()
    );
    // A checkpoint to resume is checked before the (possibly slow) build, so a mismatch
    // fails at once; a new one is started after it, so a build that fails replaces nothing.
    let identity = RunIdentity::new(&config, &turns, &dataset.catalog, &dataset.users)?;
    let checkpoint_path = Checkpoint::path_for(&output);
    let resumed = if args.resume {
        resume_checkpoint(&checkpoint_path, &identity, &turns)?
    } else {
        None
    };
    let batch_size = match args.batch_size {
        Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
        None if matches!(config.generator, GeneratorConfig::Llama(_)) => {
            LLAMA_TURNS_PER_THREAD * rayon::current_num_threads()
        }
        None => music_crs::DEFAULT_BATCH_SIZE,
    };
    let crs = music_crs::build_crs(&config, &dataset)
        .map_err(|e| with_train_hint(e, &args.dataset))?
        .with_batch_size(batch_size)?;
    info!(
        retriever = crs.retriever_name(),
        generator = crs.generator_name(),
        "recommender ready"
    );

    let (mut checkpoint, mut predicted) = match resumed {
        Some(resumed) => (resumed.checkpoint, resumed.answered),
        None => (
            new_checkpoint(&checkpoint_path, &identity, args.resume)?,
            Vec::new(),
        ),
    };
    let bar = progress_bar(turns.len() as u64, quiet);
    bar.set_position(predicted.len() as u64);
    set_active_bar(Some(&bar));
    let predict_start = Instant::now();
    let remaining = crs.predict_turns(
        &turns[predicted.len()..],
        &|n| bar.inc(n as u64),
        &mut |batch| checkpoint.append(batch),
    );
    set_active_bar(None);
    bar.finish_and_clear();
    let remaining = remaining?;
    info!(
        "predicted {} turns in {:.2}s",
        remaining.len(),
        predict_start.elapsed().as_secs_f64()
    );
    predicted.extend(remaining);
    let predictions: Vec<Prediction> = predicted.iter().map(|t| t.prediction.clone()).collect();

    replace_predictions(&output, &scores_path, &predictions)?;
    println!(
        "wrote {} predictions to {}",
        predictions.len(),
        output.display()
    );
    // Only now is the checkpoint's work in the final file.
    checkpoint.remove()?;
    info!("removed the checkpoint {}", checkpoint_path.display());
    report_replies(&predicted, &dataset.catalog, &scores_path)?;

    let file = PredictionFile::from_predictions(predictions, &output.display().to_string());
    let mut code = 0;
    if truth.is_empty() {
        let report = Validator::new()
            .with_catalog(dataset.catalog.as_ref())
            .validate(&file);
        if report.is_valid() {
            println!("{}", report.summary());
        } else {
            print_report(&report, &output);
            code = 1;
        }
    } else {
        let params = EvaluationParams {
            catalog_size: dataset.catalog.len(),
            ..EvaluationParams::default()
        };
        code = score_and_save(
            &truth,
            &file,
            &output,
            Some(dataset.catalog.as_ref()),
            params,
            &scores_path,
            None,
        )?;
    }
    // A dev score is not what a learned ranker reaches on unseen sessions: show the
    // model's own cross-validated estimate beside it.
    if let Some(path) = config.retriever.ranker_model_path() {
        let model = music_crs_rank::RankerModel::load(path)?;
        println!("{}", music_crs::cross_validation::describe(&model));
    }
    println!(
        "total wall time: {:.2}s (load included)",
        started.elapsed().as_secs_f64()
    );
    Ok(code)
}

/// The checkpoint at `path` and the turns it answered, checked to be this run's; `None`
/// when there is none.
fn resume_checkpoint(
    path: &Path,
    identity: &RunIdentity,
    turns: &[TurnContext],
) -> Result<Option<Resumed>> {
    if !path.try_exists().unwrap_or(true) {
        info!(
            "--resume: no checkpoint at {}; starting from the first turn",
            path.display()
        );
        return Ok(None);
    }
    let resumed = Checkpoint::resume(path, identity, turns)?;
    if resumed.dropped_partial_line {
        warn!(
            "{}: dropped its half-written last line (the run was killed while writing it); \
             that turn is predicted again",
            path.display()
        );
    }
    info!(
        "resuming from {}: {} of {} turns already answered",
        path.display(),
        resumed.answered.len(),
        turns.len()
    );
    Ok(Some(resumed))
}

/// A new checkpoint at `path`, replacing (with a warning) one an unfinished run left.
fn new_checkpoint(path: &Path, identity: &RunIdentity, resume: bool) -> Result<Checkpoint> {
    if !resume && path.try_exists().unwrap_or(false) {
        warn!(
            "replacing the checkpoint {} of an earlier run that did not finish (give --resume \
             to go on with it instead)",
            path.display()
        );
    }
    Ok(Checkpoint::create(path, identity)?)
}

/// Prints the counts of empty and degenerate replies and the first flawed turns, and writes
/// the per-turn reply table beside the scores.
fn report_replies(
    predicted: &[PredictedTurn],
    catalog: &Catalog,
    scores_path: &Path,
) -> Result<()> {
    let counts = ReplyCounts::of(predicted, catalog);
    let table = reply_table_path(scores_path);
    write_reply_table(&table, predicted, catalog)?;
    println!("{counts} (per turn: {})", table.display());
    let flawed = counts.empty + counts.degenerate;
    for line in flawed_turn_lines(predicted, LISTED_FLAWED_REPLIES) {
        println!("  {line}");
    }
    if flawed > LISTED_FLAWED_REPLIES {
        println!(
            "  ... and {} more in {}",
            flawed - LISTED_FLAWED_REPLIES,
            table.display()
        );
    }
    Ok(())
}

/// Flawed replies the summary lists before the rest are only counted.
const LISTED_FLAWED_REPLIES: usize = 10;

/// Writes `predictions` to `output` after removing the scores and reply table of the
/// predictions they replace (at `scores_path`): a scoring that fails, or a kill before the
/// new scores are written, leaves the new predictions without scores rather than beside old
/// ones.
fn replace_predictions(
    output: &Path,
    scores_path: &Path,
    predictions: &[Prediction],
) -> Result<()> {
    for stale in music_crs_metrics::remove_score_files(scores_path)? {
        info!(
            "removed {}: it scored the predictions being replaced",
            stale.display()
        );
    }
    let replies = reply_table_path(scores_path);
    match fs_err::remove_file(&replies) {
        Ok(()) => info!(
            "removed {}: it checked the predictions being replaced",
            replies.display()
        ),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(err.into()),
    }
    music_crs::output::write_predictions(output, predictions)?;
    Ok(())
}

/// Where the scores of predictions written to `output` go: `<dir>/../scores/<stem>.json`
/// when `output` is in an `inference` folder (the default layout), else
/// `<dir>/<stem>.scores.json` beside it.
pub(crate) fn scores_path_for(output: &Path) -> PathBuf {
    let stem = output
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "predictions".into());
    let dir = output.parent().unwrap_or(Path::new(""));
    match dir.parent() {
        Some(root) if dir.file_name().is_some_and(|name| name == "inference") => {
            root.join("scores").join(format!("{stem}.json"))
        }
        _ => dir.join(format!("{stem}.scores.json")),
    }
}

/// Loading's or building's error, with the exact `train-ranker` command when the ranker
/// model a `ranked` config names is missing (the loader checks model files before reading
/// data) or no longer fits the config (building checks channels and features).
pub(crate) fn with_train_hint(err: music_crs::Error, dataset: &DatasetArgs) -> anyhow::Error {
    let config_path = dataset
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH));
    let data = dataset
        .data
        .as_ref()
        .map(|root| format!(" --data {}", root.display()))
        .unwrap_or_default();
    let command = format!(
        "music-crs train-ranker --config {}{data}",
        config_path.display()
    );
    match &err {
        music_crs::Error::RankerModelMissing { path } => anyhow::anyhow!(
            "ranker model {} does not exist: run `{command}` first",
            path.display()
        ),
        music_crs::Error::RankerModelStale { path, reason } => anyhow::anyhow!(
            "ranker model {} (`retriever.model`) no longer fits {}: {reason}; retrain it with \
             `{command}`",
            path.display(),
            config_path.display()
        ),
        _ => err.into(),
    }
}

pub(crate) fn apply_run_overrides(config: &mut CrsConfig, args: &RunArgs) -> Result<()> {
    if let Some(kind) = args.retriever {
        let kind = match kind {
            RetrieverArg::Random => RetrieverKind::Random,
            RetrieverArg::Popularity => RetrieverKind::Popularity,
            RetrieverArg::Bm25 => RetrieverKind::Bm25,
            RetrieverArg::Bert => RetrieverKind::Bert,
        };
        if kind != config.retriever.kind() {
            // Parameters of the config's kind would not apply to the new one.
            config.retriever = config.retriever.switched_to(kind);
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
    if let Some(device) = args.device {
        set_device(config, device)?;
    }
    if let Some(tid) = &args.tid {
        config.tid = tid.clone();
    }
    if let Some(k) = args.top_k {
        config.retriever.set_k(k);
    }
    if args.exclude_played {
        config.retriever.set_exclude_played(true);
    }
    Ok(())
}

/// Puts the models of `config` on `device`: the llama generator's and the bert retriever's.
/// A config with neither has nothing to put there, which is an error rather than an option
/// silently ignored.
fn set_device(config: &mut CrsConfig, device: ComputeDevice) -> Result<()> {
    let mut models = 0;
    if let GeneratorConfig::Llama(llama) = &mut config.generator {
        llama.params.device = device;
        models += 1;
    }
    if let RetrieverConfig::Bert(bert) = &mut config.retriever {
        bert.device = device;
        models += 1;
    }
    if models == 0 {
        bail!(
            "--device {device} applies to the llama generator and the bert retriever; this \
             config ({} retriever, {} generator) runs no Candle model",
            config.retriever.kind().as_str(),
            match config.generator {
                GeneratorConfig::Template(_) => "template",
                GeneratorConfig::Llama(_) => "llama",
            }
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_device_goes_to_every_candle_model_of_the_config() {
        let mut config = CrsConfig::default();
        let err = set_device(&mut config, ComputeDevice::Cuda(0))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--device cuda:0 applies to the llama generator"),
            "{err}"
        );
        assert!(
            err.contains("(bm25 retriever, template generator)"),
            "{err}"
        );
        config.generator = GeneratorConfig::Llama(LlamaConfig::default());
        config.retriever = config.retriever.switched_to(RetrieverKind::Bert);
        set_device(&mut config, ComputeDevice::Metal(1)).unwrap();
        let GeneratorConfig::Llama(llama) = &config.generator else {
            unreachable!()
        };
        assert_eq!(llama.params.device, ComputeDevice::Metal(1));
        let RetrieverConfig::Bert(bert) = &config.retriever else {
            unreachable!()
        };
        assert_eq!(bert.device, ComputeDevice::Metal(1));
    }

    #[test]
    fn replaced_predictions_never_sit_beside_the_old_scores() {
        let dir = tempfile::tempdir().unwrap();
        let output = dir.path().join("inference/bm25.json");
        let scores = scores_path_for(&output);
        std::fs::create_dir_all(scores.parent().unwrap()).unwrap();
        std::fs::write(&scores, b"{\"ndcg@20\": 0.9}").unwrap();
        let prediction = Prediction {
            session_id: "s".into(),
            user_id: "u".into(),
            turn_number: 1,
            predicted_track_ids: vec!["t".into()],
            predicted_response: "r".into(),
        };
        replace_predictions(&output, &scores, std::slice::from_ref(&prediction)).unwrap();
        // The scoring that would follow has not run (failed, or the process was killed).
        assert!(!scores.exists());
        let written = music_crs::output::read_predictions(&output).unwrap();
        assert_eq!(written, [prediction]);
    }

    #[test]
    fn scores_follow_the_prediction_file() {
        assert_eq!(
            scores_path_for(Path::new("exp/inference/bm25.json")),
            Path::new("exp/scores/bm25.json")
        );
        assert_eq!(
            scores_path_for(Path::new("/elsewhere.json")),
            Path::new("/elsewhere.scores.json")
        );
        assert_eq!(
            scores_path_for(Path::new("exp/scores/t.json")),
            Path::new("exp/scores/t.scores.json")
        );
        assert_eq!(
            scores_path_for(Path::new("out.json")),
            Path::new("out.scores.json")
        );
    }
}

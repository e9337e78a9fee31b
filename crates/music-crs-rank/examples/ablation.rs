//! Ablation of the multi-channel recipe: every channel alone, their fusion, and the learned
//! ranker, scored with the official macro nDCG@1/10/20 on the test split (the ranker learns on
//! the train split only; nothing is tuned on test).
//!
//! ```text
//! # the committed demo dataset
//! cargo run --release -p music-crs-rank --example ablation -- --data data/demo
//! # a generated one at challenge scale (timings)
//! cargo run --release -p music-crs-rank --example ablation -- --generate \
//!     --tracks 47000 --train 15000 --test 1000 --only ranker
//! ```
//!
//! Prints a markdown table (one row per method: nDCG@1/10/20, seconds to rank the test turns)
//! and the ranker's training figures.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Parser;
use music_crs_core::{
    Catalog, EmbeddingTable, LabeledTurn, Prediction, Session, TrackField, TurnContext,
};
use music_crs_data::demo::{DemoDataset, DemoParams};
use music_crs_data::{Dataset, DatasetSpec, Loader, SplitKind, TRACK_EMBEDDING_KINDS};
use music_crs_metrics::{EvaluationParams, Evaluator, GroundTruth};
use music_crs_rank::{
    Bm25ChannelConfig, CatalogIndex, ChannelConfig, ChannelResources, CoOccurrenceMode,
    CoOccurrenceParams, ContinuityParams, FeatureSpec, FusionChildConfig, FusionConfig,
    FusionParams, ItemNeighboursConfig, NamedChannelConfig, PopularityPriorParams, RankerConfig,
    RankerParams, UserSimilarityConfig, build_channel,
};
use music_crs_retrieval::dense::NeighbourParams;
use music_crs_retrieval::{Bm25Params, QueryRenderParams, Retriever};

#[derive(Parser)]
struct Args {
    /// A demo dataset directory (conversations/, tracks/, ... as `DemoDataset::write` lays out).
    #[arg(long, default_value = "data/demo")]
    data: PathBuf,
    /// Generate the dataset in memory instead of reading `--data`.
    #[arg(long)]
    generate: bool,
    /// Catalog size when generating.
    #[arg(long, default_value_t = music_crs_data::demo::DEFAULT_NUM_TRACKS)]
    tracks: usize,
    /// Listeners when generating.
    #[arg(long, default_value_t = music_crs_data::demo::DEFAULT_NUM_USERS)]
    users: usize,
    /// Train sessions when generating.
    #[arg(long, default_value_t = music_crs_data::demo::DEFAULT_NUM_TRAIN_SESSIONS)]
    train: usize,
    /// Test sessions when generating.
    #[arg(long, default_value_t = music_crs_data::demo::DEFAULT_NUM_TEST_SESSIONS)]
    test: usize,
    /// Run only the methods whose name contains one of these (comma-separated).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Where the ranker model is written.
    #[arg(long, default_value = "target/ablation-ranker.json")]
    model: PathBuf,
    /// Boosting rounds of the ranker.
    #[arg(long, default_value_t = RankerParams::DEFAULT_TREES)]
    trees: usize,
}

struct Data {
    catalog: Arc<Catalog>,
    train: Vec<Session>,
    test: Vec<Session>,
    track_embeddings: Vec<Arc<EmbeddingTable>>,
    user_embeddings: Vec<Arc<EmbeddingTable>>,
}

fn load(args: &Args) -> Result<Data> {
    if args.generate {
        let params = DemoParams {
            num_tracks: args.tracks,
            num_users: args.users,
            num_train_sessions: args.train,
            num_test_sessions: args.test,
            num_blind_sessions: 1,
            ..DemoParams::default()
        };
        let demo = DemoDataset::generate(&params)?;
        return Ok(Data {
            catalog: Arc::new(demo.catalog()?),
            train: demo.train,
            test: demo.test,
            track_embeddings: demo.track_embeddings.into_iter().map(Arc::new).collect(),
            user_embeddings: demo.user_embeddings.into_iter().map(Arc::new).collect(),
        });
    }
    let split = |name: &str| {
        Dataset::new(
            DatasetSpec::local_layout(&args.data, name, SplitKind::Full),
            Loader::default(),
        )
    };
    let (train, test) = (split("train"), split("test"));
    let kinds: Vec<&str> = TRACK_EMBEDDING_KINDS.to_vec();
    Ok(Data {
        catalog: Arc::new(test.catalog().context("loading the catalog")?),
        train: train.sessions().context("loading the train split")?,
        test: test.sessions().context("loading the test split")?,
        track_embeddings: test
            .track_embeddings(&kinds)?
            .unwrap_or_default()
            .into_iter()
            .map(Arc::new)
            .collect(),
        user_embeddings: test
            .user_embeddings(&["cf-bpr"])?
            .unwrap_or_default()
            .into_iter()
            .map(Arc::new)
            .collect(),
    })
}

fn named(name: &str, depth: usize, channel: ChannelConfig) -> NamedChannelConfig {
    NamedChannelConfig {
        name: name.into(),
        depth,
        channel,
    }
}

/// Every channel of the recipe, named.
fn channels(kinds: &[String]) -> Vec<NamedChannelConfig> {
    let baseline_bm25 = Bm25ChannelConfig {
        fields: TrackField::BASELINE.to_vec(),
        query: QueryRenderParams::default(),
        bm25: Bm25Params::default(),
    };
    let mut out = vec![
        named("bm25_baseline", 100, ChannelConfig::Bm25(baseline_bm25)),
        named(
            "bm25_enriched",
            100,
            ChannelConfig::Bm25(Bm25ChannelConfig::default()),
        ),
        named(
            "continuity",
            100,
            ChannelConfig::Continuity(ContinuityParams::default()),
        ),
        named(
            "same_album",
            50,
            ChannelConfig::Continuity(ContinuityParams {
                artist_weight: 0.0,
                ..ContinuityParams::default()
            }),
        ),
        named(
            "co_occurrence",
            100,
            ChannelConfig::CoOccurrence(CoOccurrenceParams::default()),
        ),
        named(
            "next_track",
            50,
            ChannelConfig::CoOccurrence(CoOccurrenceParams {
                mode: CoOccurrenceMode::Next,
                ..CoOccurrenceParams::default()
            }),
        ),
        named(
            "popularity_prior",
            50,
            ChannelConfig::PopularityPrior(PopularityPriorParams::default()),
        ),
    ];
    for kind in kinds {
        out.push(named(
            &format!("neighbours:{kind}"),
            100,
            ChannelConfig::ItemNeighbours(ItemNeighboursConfig {
                embedding: kind.clone(),
                params: NeighbourParams {
                    recency_decay: 0.7,
                    ..NeighbourParams::default()
                },
            }),
        ));
    }
    out.push(named(
        "user_cf",
        50,
        ChannelConfig::UserSimilarity(UserSimilarityConfig::default()),
    ));
    out
}

struct Row {
    method: String,
    ndcg: [f64; 3],
    seconds: f64,
}

fn score(
    retriever: &dyn Retriever,
    turns: &[TurnContext],
    truth: &GroundTruth,
    evaluator: &Evaluator,
) -> Result<([f64; 3], f64)> {
    let started = Instant::now();
    let hits = retriever.retrieve_batch(turns, 20)?;
    let seconds = started.elapsed().as_secs_f64();
    let predictions: Vec<Prediction> = turns
        .iter()
        .zip(hits)
        .map(|(turn, hits)| Prediction {
            session_id: turn.session_id.clone(),
            user_id: turn.user_id.clone(),
            turn_number: turn.turn_number,
            predicted_track_ids: hits.into_iter().map(|h| h.track_id).collect(),
            predicted_response: String::new(),
        })
        .collect();
    let scores = evaluator.evaluate(truth, &predictions)?;
    let at = |k| scores.macro_scores.ndcg(k).unwrap_or(f64::NAN);
    Ok(([at(1), at(10), at(20)], seconds))
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let started = Instant::now();
    let data = load(&args)?;
    eprintln!(
        "loaded {} tracks, {} train and {} test sessions in {:.1}s",
        data.catalog.len(),
        data.train.len(),
        data.test.len(),
        started.elapsed().as_secs_f64()
    );
    let index = Arc::new(CatalogIndex::new(data.catalog.clone()));
    let resources = ChannelResources {
        index: index.clone(),
        train_sessions: &data.train,
        track_embeddings: &data.track_embeddings,
        user_embeddings: &data.user_embeddings,
    };
    let labeled: Vec<LabeledTurn> = data
        .test
        .iter()
        .map(|s| s.labeled_turns())
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .flatten()
        .filter(|t| t.gold_track_id.is_some())
        .collect();
    if labeled.is_empty() {
        bail!("the test split has no turn with a gold track");
    }
    let truth = GroundTruth::from_labeled_turns(&labeled)?;
    let turns: Vec<TurnContext> = LabeledTurn::contexts(&labeled);
    let evaluator = Evaluator::new(EvaluationParams {
        catalog_size: data.catalog.len(),
        ..EvaluationParams::default()
    })?;
    // Content kinds in the order participants found them useful, then the rest.
    let kinds: Vec<String> = data
        .track_embeddings
        .iter()
        .map(|t| t.kind().to_string())
        .collect();
    let all = channels(&kinds);
    let wanted = |name: &str| args.only.is_empty() || args.only.iter().any(|o| name.contains(o));
    let mut rows = Vec::new();
    for channel in &all {
        if !wanted(&channel.name) {
            continue;
        }
        let retriever = build_channel(&channel.name, &channel.channel, &resources)?;
        let (ndcg, seconds) = score(retriever.as_ref(), &turns, &truth, &evaluator)?;
        eprintln!(
            "{}: {:.4} {:.4} {:.4}",
            channel.name, ndcg[0], ndcg[1], ndcg[2]
        );
        rows.push(Row {
            method: channel.name.clone(),
            ndcg,
            seconds,
        });
    }
    // Fusion and ranker use every channel except the baseline BM25 (the enriched one
    // supersedes it).
    let members: Vec<NamedChannelConfig> = all
        .iter()
        .filter(|c| c.name != "bm25_baseline")
        .cloned()
        .collect();
    if wanted("fusion") {
        let fusion = ChannelConfig::Fusion(FusionConfig {
            params: FusionParams::default(),
            children: members
                .iter()
                .map(|c| FusionChildConfig {
                    name: c.name.clone(),
                    weight: 1.0,
                    channel: c.channel.clone(),
                })
                .collect(),
        });
        let retriever = build_channel("fusion", &fusion, &resources)?;
        let (ndcg, seconds) = score(retriever.as_ref(), &turns, &truth, &evaluator)?;
        rows.push(Row {
            method: "fusion (RRF, all channels, equal weights)".into(),
            ndcg,
            seconds,
        });
    }
    let mut training = None;
    if wanted("ranker") {
        let config = RankerConfig {
            model: args.model.clone(),
            channels: members.clone(),
            features: FeatureSpec {
                similarity_kinds: kinds.clone(),
                user_kind: data
                    .user_embeddings
                    .iter()
                    .any(|t| t.kind() == "cf-bpr")
                    .then(|| "cf-bpr".to_string()),
            },
            params: RankerParams {
                trees: args.trees,
                ..RankerParams::default()
            },
        };
        if let Some(dir) = args.model.parent() {
            fs_err::create_dir_all(dir)?;
        }
        let train_started = Instant::now();
        let model = config.train(&resources)?;
        let train_seconds = train_started.elapsed().as_secs_f64();
        training = Some((model.summary().clone(), train_seconds));
        let ranked = config.load("ranker", &resources)?;
        let (ndcg, seconds) = score(&ranked, &turns, &truth, &evaluator)?;
        rows.push(Row {
            method: "ranker (LambdaMART over all channels)".into(),
            ndcg,
            seconds,
        });
    }
    println!(
        "{} tracks, {} train sessions, {} test turns\n",
        data.catalog.len(),
        data.train.len(),
        turns.len()
    );
    println!("| method | nDCG@1 | nDCG@10 | nDCG@20 | seconds (test turns) |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    for row in &rows {
        println!(
            "| {} | {:.4} | {:.4} | {:.4} | {:.2} |",
            row.method, row.ndcg[0], row.ndcg[1], row.ndcg[2], row.seconds
        );
    }
    if let Some((summary, seconds)) = training {
        println!(
            "\nranker training: {seconds:.1}s total ({:.1}s candidates and features, {:.1}s \
             boosting), {} turns ({} train / {} validation), {} rows, {} trees, candidate \
             recall {:.3}, validation nDCG@20 {:.4} (union RRF order {:.4})",
            summary.feature_seconds,
            summary.boosting_seconds,
            summary.turns,
            summary.train_queries,
            summary.valid_queries,
            summary.train_rows,
            summary.trees,
            summary.candidate_recall,
            summary.valid_ndcg_model,
            summary.valid_ndcg_union,
        );
    }
    Ok(())
}

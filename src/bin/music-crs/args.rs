//! Command-line options shared by the commands that load a dataset.

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;
use music_crs::config::{CrsConfig, DEFAULT_CONFIG_PATH, Preset, SplitKind, local_dataset};
use tracing::info;

/// The config file and its dataset overrides, shared by every command that loads data.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct DatasetArgs {
    /// The method's config file [default: config/bm25_template.toml].
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Read every part from a local dataset root laid out like data/demo
    /// (conversations/, tracks/, users/, track_embeddings/, user_embeddings/), keeping the
    /// config's splits.
    #[arg(long, value_name = "DIR")]
    pub(crate) data: Option<PathBuf>,
    /// Start from this dataset preset instead of the config's (demo-test, demo-blind,
    /// challenge-dev, challenge-blind-a, challenge-blind-b, ...).
    #[arg(long, value_name = "NAME")]
    pub(crate) preset: Option<Preset>,
    /// Conversations source: a directory in the hub layout, a parquet file, or a hub id.
    #[arg(long, value_name = "SRC")]
    pub(crate) conversations: Option<String>,
    /// Conversations split (several joined with `+`).
    #[arg(long, value_name = "NAME")]
    pub(crate) split: Option<String>,
    /// Predict only the final user turn of each row (blind sets).
    #[arg(long)]
    pub(crate) blind: bool,
    /// Track catalog source.
    #[arg(long, value_name = "SRC")]
    pub(crate) tracks: Option<String>,
    /// Catalog split.
    #[arg(long, value_name = "NAME")]
    pub(crate) tracks_split: Option<String>,
    /// User profiles source.
    #[arg(long, value_name = "SRC")]
    pub(crate) users: Option<String>,
    /// User profiles split.
    #[arg(long, value_name = "NAME")]
    pub(crate) users_split: Option<String>,
}

impl DatasetArgs {
    /// The config file with the command-line overrides applied.
    pub(crate) fn load_config(&self) -> Result<CrsConfig> {
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
    pub(crate) fn any(&self) -> bool {
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

/// Where the gold tracks come from, shared by the commands that score predictions.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct GroundTruthArgs {
    /// Ground truth JSON (`{session_id, user_id, turn_number, ground_truth_track_id}` rows);
    /// without it, the gold tracks of the config's conversations split are used.
    #[arg(long, value_name = "FILE")]
    pub(crate) ground_truth: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) dataset: DatasetArgs,
    /// Catalog size for catalog diversity [default: the size of the dataset's catalog (the
    /// config's, or --config/--data/... beside --ground-truth), else the challenge's 47071].
    #[arg(long, value_name = "N")]
    pub(crate) catalog_size: Option<usize>,
}

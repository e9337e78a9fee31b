//! `music-crs export`: the catalog in the bulk formats of OpenSearch / Elasticsearch (BM25
//! documents) and Qdrant (track embeddings), for a move past one machine (docs/SCALING.md).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use music_crs::RunData;
use music_crs::export::{
    DEFAULT_DOCS_PER_BULK_FILE, DEFAULT_POINTS_PER_FILE, OpenSearchExport, QdrantExport,
    write_opensearch, write_qdrant,
};

use crate::args::DatasetArgs;

/// The engine whose bulk format to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ExportFormat {
    /// OpenSearch or Elasticsearch: index settings (BM25 and analyzer) and `_bulk` files.
    Opensearch,
    /// Qdrant: collection settings (one named cosine vector per kind) and upsert batches.
    Qdrant,
}

#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// The engine to write for.
    #[arg(long, value_enum)]
    pub(crate) format: ExportFormat,
    /// Output directory.
    #[arg(long, short)]
    pub(crate) out: PathBuf,
    /// Qdrant: the Track-Embeddings kinds to export [default: the six hub kinds].
    #[arg(long, value_delimiter = ',')]
    pub(crate) kinds: Vec<String>,
    /// OpenSearch: the index name in the bulk actions.
    #[arg(long, default_value = "tracks")]
    pub(crate) index: String,
    /// Documents (OpenSearch) or points (Qdrant) per file [default: 5,000 / 256].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub(crate) per_file: Option<u64>,
    #[command(flatten)]
    pub(crate) dataset: DatasetArgs,
}

pub(crate) fn export(args: ExportArgs) -> Result<i32> {
    let config = args.dataset.load_config()?;
    let data = RunData::load_catalog_and_users(&config.dataset)?;
    // The parser bounds the value far below usize::MAX.
    let per_file = args.per_file.map(|n| n as usize);
    let files = match args.format {
        ExportFormat::Opensearch => {
            let export = OpenSearchExport {
                index: args.index,
                docs_per_file: per_file.unwrap_or(DEFAULT_DOCS_PER_BULK_FILE),
                ..OpenSearchExport::default()
            };
            write_opensearch(&data.catalog, &export, &args.out)
        }
        ExportFormat::Qdrant => {
            let kinds = if args.kinds.is_empty() {
                music_crs_data::TRACK_EMBEDDING_KINDS
                    .iter()
                    .map(|k| k.to_string())
                    .collect()
            } else {
                args.kinds
            };
            let tables = RunData::load_track_embeddings(&config.dataset, &kinds)?;
            let tables: Vec<_> = tables.iter().map(|t| t.as_ref()).collect();
            let export = QdrantExport {
                points_per_file: per_file.unwrap_or(DEFAULT_POINTS_PER_FILE),
            };
            write_qdrant(&data.catalog, &tables, &export, &args.out)
        }
    }
    .with_context(|| format!("exporting to {}", args.out.display()))?;
    println!(
        "wrote {} files for {} tracks to {} (loading commands: docs/SCALING.md)",
        files.len(),
        data.catalog.len(),
        args.out.display()
    );
    Ok(0)
}

//! Fetching a safetensors checkpoint from the Hugging Face hub (feature `hub`).

use std::path::PathBuf;

use hf_hub::api::sync::{ApiBuilder, ApiRepo};
use hf_hub::{Repo, RepoType};

use crate::{Error, Result};

fn hub_error(repo: &str, file: &str, message: impl ToString) -> Error {
    Error::Hub {
        repo: repo.to_string(),
        file: file.to_string(),
        message: message.to_string(),
    }
}

fn get(api: &ApiRepo, repo: &str, file: &str) -> Result<PathBuf> {
    api.get(file).map_err(|e| hub_error(repo, file, e))
}

/// Downloads (or finds in the hub cache, `HF_HOME`) the files of a Llama checkpoint and
/// returns the snapshot directory holding them.
pub(super) fn download(repo: &str, revision: Option<&str>) -> Result<PathBuf> {
    let api = ApiBuilder::from_env()
        .with_progress(false)
        .build()
        .map_err(|e| hub_error(repo, "(client)", e))?;
    let api = api.repo(Repo::with_revision(
        repo.to_string(),
        RepoType::Model,
        revision.unwrap_or("main").to_string(),
    ));
    let config = get(&api, repo, "config.json")?;
    get(&api, repo, "tokenizer.json")?;
    for optional in ["tokenizer_config.json", "generation_config.json"] {
        if let Err(e) = api.get(optional) {
            tracing::debug!("{repo}: no {optional} ({e})");
        }
    }
    if api.get("model.safetensors").is_err() {
        let index = get(&api, repo, "model.safetensors.index.json")?;
        let text = fs_err::read_to_string(&index)?;
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| Error::BadModelFile {
                path: index.clone(),
                reason: format!("not valid JSON: {e}"),
            })?;
        let mut shards: Vec<&str> = json
            .get("weight_map")
            .and_then(|m| m.as_object())
            .map(|m| m.values().filter_map(|v| v.as_str()).collect())
            .unwrap_or_default();
        shards.sort_unstable();
        shards.dedup();
        for shard in shards {
            get(&api, repo, shard)?;
        }
    }
    config.parent().map(PathBuf::from).ok_or_else(|| {
        hub_error(
            repo,
            "config.json",
            "downloaded file has no parent directory",
        )
    })
}

//! Fetching a safetensors checkpoint from the Hugging Face hub (feature `hub`), through the
//! shared hub client and settings of `music_crs_core::hub`.

use std::path::PathBuf;

use music_crs_core::hub::{HubClient, HubFailure, HubParams, HubRepo, RepoKind};

use crate::{Error, Result};

/// The single-file weights; else the index and the shards it names.
const WEIGHTS: &str = "model.safetensors";
const WEIGHTS_INDEX: &str = "model.safetensors.index.json";

/// Downloads (or finds in the hub cache) the files of a Llama checkpoint and returns the
/// snapshot directory holding them.
pub(super) fn download(repo: &str, revision: Option<&str>, hub: &HubParams) -> Result<PathBuf> {
    let repo = HubRepo::new(RepoKind::Model, repo, revision)?;
    let client = HubClient::new(hub)?;
    let config = client.get(&repo, "config.json")?;
    client.get(&repo, "tokenizer.json")?;
    for optional in ["tokenizer_config.json", "generation_config.json"] {
        if client.get_optional(&repo, optional)?.is_none() {
            tracing::debug!("{repo}: no {optional}");
        }
    }
    if client.get_optional(&repo, WEIGHTS)?.is_none() {
        let index = client.get(&repo, WEIGHTS_INDEX).map_err(|e| match e {
            // Neither weights layout is there: name both.
            music_crs_core::Error::Hub {
                repo,
                failure: failure @ (HubFailure::NotFound | HubFailure::NotCached { .. }),
                ..
            } => music_crs_core::Error::Hub {
                repo,
                file: Some(format!("{WEIGHTS} (or {WEIGHTS_INDEX} and its shards)")),
                failure,
            },
            other => other,
        })?;
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
            // `get` checks the name: an index cannot point outside the snapshot.
            client.get(&repo, shard)?;
        }
    }
    config
        .parent()
        .map(PathBuf::from)
        .ok_or_else(|| Error::BadModelFile {
            path: config.clone(),
            reason: "downloaded file has no parent directory".into(),
        })
}

#[cfg(test)]
mod tests {
    use music_crs_core::hub::stand_in::{StandIn, StandInRepo};

    use super::*;

    #[test]
    fn a_checkpoint_is_downloaded_once_and_then_read_offline() {
        let files: [(&str, &[u8]); 4] = [
            ("config.json", b"{}"),
            ("tokenizer.json", b"{}"),
            (
                WEIGHTS_INDEX,
                br#"{"weight_map": {"a": "w-1.safetensors", "b": "w-2.safetensors"}}"#,
            ),
            ("w-1.safetensors", b"one"),
        ];
        let mut files = files.to_vec();
        files.push(("w-2.safetensors", b"two"));
        let hub =
            StandIn::start(vec![StandInRepo::new(RepoKind::Model, "o/llama", &files)]).unwrap();
        let cache = tempfile::tempdir().unwrap();
        let dir = download("o/llama", None, &hub.hub_params(cache.path())).unwrap();
        assert!(dir.starts_with(cache.path()));
        assert_eq!(std::fs::read(dir.join("w-2.safetensors")).unwrap(), b"two");
        assert_eq!(hub.downloads(), 5, "{:#?}", hub.requests());

        let requests = hub.requests().len();
        let offline = HubParams {
            offline: true,
            ..hub.hub_params(cache.path())
        };
        assert_eq!(download("o/llama", None, &offline).unwrap(), dir);
        assert_eq!(hub.requests().len(), requests, "offline never asks the hub");
        let err = download("o/other", None, &offline).unwrap_err().to_string();
        assert!(
            err.contains("o/other")
                && err.contains("config.json")
                && err.contains("HF_HUB_OFFLINE"),
            "{err}"
        );
    }

    #[test]
    fn offline_without_weights_names_both_layouts() {
        let files: [(&str, &[u8]); 2] = [("config.json", b"{}"), ("tokenizer.json", b"{}")];
        let hub = StandIn::start(vec![StandInRepo::new(RepoKind::Model, "o/m", &files)]).unwrap();
        let cache = tempfile::tempdir().unwrap();
        let err = download("o/m", None, &hub.hub_params(cache.path()))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(WEIGHTS) && err.contains(WEIGHTS_INDEX) && err.contains("HTTP 404"),
            "{err}"
        );
        let offline = HubParams {
            offline: true,
            ..hub.hub_params(cache.path())
        };
        let err = download("o/m", None, &offline).unwrap_err().to_string();
        assert!(
            err.contains(WEIGHTS_INDEX) && err.contains("HF_HUB_OFFLINE"),
            "{err}"
        );
    }

    #[test]
    fn an_index_cannot_name_files_outside_the_snapshot() {
        let files: [(&str, &[u8]); 3] = [
            ("config.json", b"{}"),
            ("tokenizer.json", b"{}"),
            (
                WEIGHTS_INDEX,
                br#"{"weight_map": {"a": "../../../../escape.safetensors"}}"#,
            ),
        ];
        let hub = StandIn::start(vec![StandInRepo::new(RepoKind::Model, "o/m", &files)]).unwrap();
        let cache = tempfile::tempdir().unwrap();
        let err = download("o/m", None, &hub.hub_params(cache.path()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("invalid hub file name"), "{err}");
    }

    #[test]
    fn a_revision_that_leaves_the_cache_is_refused() {
        let err = download("o/m", Some("../../../somewhere"), &HubParams::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("invalid hub revision"), "{err}");
    }
}

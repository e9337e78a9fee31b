//! Hugging Face hub datasets: the shared settings of `music_crs_core::hub` (always available,
//! so configs need no `cfg`) and, with the `hub` feature, shard listing and cached downloads
//! through its client.

use std::path::PathBuf;

pub use music_crs_core::hub::{
    HF_ENDPOINT_ENV, HF_HOME_ENV, HF_HUB_CACHE_ENV, HF_HUB_OFFLINE_ENV, HF_TOKEN_ENV, HubParams,
};

#[cfg(feature = "hub")]
use crate::source::{expected_layout, found_list, is_shard_of};
use crate::{Error, Result};

/// Lists and fetches the shards of `splits` of a hub dataset.
#[cfg(not(feature = "hub"))]
pub(crate) fn hub_shards(
    repo_id: &str,
    revision: Option<&str>,
    _splits: &[&str],
    _params: &HubParams,
) -> Result<Vec<PathBuf>> {
    music_crs_core::hub::HubRepo::new(music_crs_core::hub::RepoKind::Dataset, repo_id, revision)?;
    Err(Error::HubDisabled {
        repo_id: repo_id.into(),
    })
}

/// Lists and fetches the shards of `splits` of a hub dataset.
///
/// Online: lists the repo's files, then fetches each shard through the cache. Offline, or
/// when the hub cannot be reached: lists the cached snapshot instead.
#[cfg(feature = "hub")]
pub(crate) fn hub_shards(
    repo_id: &str,
    revision: Option<&str>,
    splits: &[&str],
    params: &HubParams,
) -> Result<Vec<PathBuf>> {
    use music_crs_core::hub::{HubClient, HubRepo, RepoKind};

    let repo = HubRepo::new(RepoKind::Dataset, repo_id, revision)?;
    let client = HubClient::new(params)?;
    let files = client.list_files(&repo)?;
    let mut shards = Vec::new();
    for split in splits {
        let mut names: Vec<&String> = files
            .iter()
            .filter(|f| {
                f.strip_prefix("data/")
                    .is_some_and(|name| is_shard_of(name, split))
            })
            .collect();
        if names.is_empty() {
            let mut others: Vec<String> = files
                .iter()
                .filter(|f| f.ends_with(".parquet"))
                .cloned()
                .collect();
            others.sort();
            return Err(Error::NoShards {
                source_name: format!("{repo} (cache {})", client.cache_dir().display()),
                split: (*split).into(),
                expected: expected_layout(split),
                found: found_list(&others),
            });
        }
        names.sort();
        for name in names {
            tracing::info!(repo_id, file = %name, "fetching shard");
            shards.push(client.get(&repo, name)?);
        }
    }
    Ok(shards)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(not(feature = "hub"))]
    #[test]
    fn hub_ids_need_the_feature() {
        let err = hub_shards("o/n", None, &["test"], &HubParams::default()).unwrap_err();
        assert!(err.to_string().contains("`hub` feature"), "{err}");
    }

    #[cfg(feature = "hub")]
    #[test]
    fn offline_uncached_is_a_clear_error() {
        let cache = tempfile::tempdir().unwrap();
        let params = HubParams {
            cache_dir: Some(cache.path().to_path_buf()),
            offline: true,
            ..HubParams::default()
        };
        let err = hub_shards("talkpl-ai/Nope", None, &["test"], &params)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("talkpl-ai/Nope")
                && err.contains("HF_HUB_OFFLINE")
                && err.contains("not in the hub cache"),
            "{err}"
        );
    }

    #[cfg(feature = "hub")]
    #[test]
    fn unreachable_hub_without_cache_names_repo_and_cache() {
        let cache = tempfile::tempdir().unwrap();
        let params = HubParams {
            cache_dir: Some(cache.path().to_path_buf()),
            // Nothing listens on the discard port: the connection is refused at once.
            endpoint: Some("http://127.0.0.1:9".into()),
            ..HubParams::default()
        };
        let err = hub_shards("talkpl-ai/Nope", None, &["test"], &params)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("talkpl-ai/Nope")
                && err.contains("nothing is cached")
                && err.contains(&cache.path().display().to_string()),
            "{err}"
        );
    }

    #[cfg(feature = "hub")]
    #[test]
    fn offline_reads_a_cached_snapshot() {
        let cache = tempfile::tempdir().unwrap();
        let repo_dir = cache.path().join("datasets--talkpl-ai--Demo");
        std::fs::create_dir_all(repo_dir.join("refs")).unwrap();
        std::fs::write(repo_dir.join("refs/main"), "abc123\n").unwrap();
        let data = repo_dir.join("snapshots/abc123/data");
        std::fs::create_dir_all(&data).unwrap();
        for name in [
            "test-00001-of-00002.parquet",
            "test-00000-of-00002.parquet",
            "train-00000-of-00001.parquet",
        ] {
            std::fs::write(data.join(name), b"").unwrap();
        }
        let params = HubParams {
            cache_dir: Some(cache.path().to_path_buf()),
            offline: true,
            ..HubParams::default()
        };
        let shards = hub_shards("talkpl-ai/Demo", None, &["test"], &params).unwrap();
        assert_eq!(
            shards,
            vec![
                data.join("test-00000-of-00002.parquet"),
                data.join("test-00001-of-00002.parquet")
            ]
        );
    }

    #[cfg(feature = "hub")]
    #[test]
    fn shards_come_from_the_hub_once_then_from_the_cache() {
        use music_crs_core::hub::RepoKind;
        use music_crs_core::hub::stand_in::{StandIn, StandInRepo};

        let files: [(&str, &[u8]); 3] = [
            ("data/test-00001-of-00002.parquet", b"second"),
            ("data/test-00000-of-00002.parquet", b"first"),
            ("data/train-00000-of-00001.parquet", b"train"),
        ];
        let mut gated = StandInRepo::new(RepoKind::Dataset, "o/gated", &files);
        gated.token = Some("hf_t".into());
        let hub = StandIn::start(vec![
            StandInRepo::new(RepoKind::Dataset, "o/d", &files),
            gated,
        ])
        .unwrap();
        let cache = tempfile::tempdir().unwrap();
        let params = hub.hub_params(cache.path());
        let shards = hub_shards("o/d", None, &["test"], &params).unwrap();
        let contents: Vec<Vec<u8>> = shards.iter().map(|p| std::fs::read(p).unwrap()).collect();
        assert_eq!(contents, [b"first".to_vec(), b"second".to_vec()]);
        assert_eq!(hub.downloads(), 2, "{:#?}", hub.requests());

        // Second run: the listing is asked again, the shards come from the cache.
        assert_eq!(hub_shards("o/d", None, &["test"], &params).unwrap(), shards);
        assert_eq!(hub.downloads(), 2, "{:#?}", hub.requests());
        let requests = hub.requests().len();
        let offline = HubParams {
            offline: true,
            ..params.clone()
        };
        assert_eq!(
            hub_shards("o/d", None, &["test"], &offline).unwrap(),
            shards
        );
        let err = hub_shards("o/d", None, &["train"], &offline)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no parquet shard") && err.contains("train"),
            "{err}"
        );
        assert_eq!(hub.requests().len(), requests, "offline never asks the hub");

        let err = hub_shards("o/gated", None, &["test"], &params)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("HTTP 401") && err.contains("HF_TOKEN"),
            "{err}"
        );
        let with_token = HubParams {
            token: Some("hf_t".into()),
            ..params
        };
        assert_eq!(
            hub_shards("o/gated", None, &["test"], &with_token)
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn revisions_that_leave_the_cache_are_refused_before_any_access() {
        let err = hub_shards(
            "o/n",
            Some("../../../somewhere"),
            &["test"],
            &HubParams::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("revision") && err.contains("../../../somewhere"),
            "{err}"
        );
    }
}

//! Hugging Face hub access: the settings (always available, so configs need no `cfg`) and,
//! with the `hub` feature, shard listing and cached downloads through hf-hub's sync API.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[cfg(feature = "hub")]
use crate::source::{expected_layout, found_list, is_shard_of};
use crate::{Error, Result};

/// `HF_HOME`: the Hugging Face home; the cache is `$HF_HOME/hub`.
pub const HF_HOME_ENV: &str = "HF_HOME";
/// `HF_HUB_CACHE`: the hub cache directory itself (wins over `HF_HOME`).
pub const HF_HUB_CACHE_ENV: &str = "HF_HUB_CACHE";
/// `HF_HUB_OFFLINE`: `1`/`true`/`yes`/`on` forbids network access.
pub const HF_HUB_OFFLINE_ENV: &str = "HF_HUB_OFFLINE";
/// `HF_TOKEN`: the access token (else hf-hub reads `$HF_HOME/token`).
pub const HF_TOKEN_ENV: &str = "HF_TOKEN";
/// `HF_ENDPOINT`: another hub URL (a mirror).
pub const HF_ENDPOINT_ENV: &str = "HF_ENDPOINT";

/// How hub dataset ids are resolved. [`HubParams::from_env`] reads the usual HF variables.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HubParams {
    /// The hub cache directory; `None` is `$HF_HUB_CACHE`, `$HF_HOME/hub` or
    /// `~/.cache/huggingface/hub`, in that order.
    pub cache_dir: Option<PathBuf>,
    /// Never touch the network: use cached files only.
    pub offline: bool,
    /// The access token; `None` lets hf-hub read the token file of the HF home. Never written
    /// out when a config is saved.
    #[serde(skip_serializing)]
    pub token: Option<String>,
    /// Another hub URL; `None` is `https://huggingface.co`.
    pub endpoint: Option<String>,
    /// Show hf-hub's download progress bar (binaries only; off by default).
    pub progress: bool,
}

impl HubParams {
    /// Settings from `HF_HUB_CACHE` / `HF_HOME`, `HF_HUB_OFFLINE`, `HF_TOKEN` and `HF_ENDPOINT`.
    pub fn from_env() -> Self {
        Self::from_vars(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// Settings from any variable lookup (testable without touching the process environment).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Self {
        let cache_dir = var(HF_HUB_CACHE_ENV)
            .map(PathBuf::from)
            .or_else(|| var(HF_HOME_ENV).map(|home| PathBuf::from(home).join("hub")));
        let offline = var(HF_HUB_OFFLINE_ENV).is_some_and(|v| {
            matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "1" | "true" | "yes" | "on"
            )
        });
        HubParams {
            cache_dir,
            offline,
            token: var(HF_TOKEN_ENV),
            endpoint: var(HF_ENDPOINT_ENV),
            progress: false,
        }
    }

    /// The cache directory in effect.
    pub fn resolved_cache_dir(&self) -> PathBuf {
        if let Some(dir) = &self.cache_dir {
            return dir.clone();
        }
        let home = std::env::var_os("HOME")
            .or_else(|| std::env::var_os("USERPROFILE"))
            .map(PathBuf::from)
            .unwrap_or_default();
        home.join(".cache").join("huggingface").join("hub")
    }
}

/// Lists and fetches the shards of `splits` of a hub dataset.
#[cfg(not(feature = "hub"))]
pub(crate) fn hub_shards(
    repo_id: &str,
    _revision: Option<&str>,
    _splits: &[&str],
    _params: &HubParams,
) -> Result<Vec<PathBuf>> {
    Err(Error::HubDisabled {
        repo_id: repo_id.into(),
    })
}

/// Lists and fetches the shards of `splits` of a hub dataset.
///
/// Online: lists the repo's files (`info().siblings`), then fetches each shard through the
/// cache. Offline, or when the hub cannot be reached: lists the cached snapshot instead.
#[cfg(feature = "hub")]
pub(crate) fn hub_shards(
    repo_id: &str,
    revision: Option<&str>,
    splits: &[&str],
    params: &HubParams,
) -> Result<Vec<PathBuf>> {
    use hf_hub::api::sync::ApiBuilder;
    use hf_hub::{Repo, RepoType};

    let cache_dir = params.resolved_cache_dir();
    let repo = Repo::with_revision(
        repo_id.to_string(),
        RepoType::Dataset,
        revision.unwrap_or("main").to_string(),
    );
    let hub_error = |message: String| Error::Hub {
        repo_id: repo_id.into(),
        message,
    };
    if params.offline {
        return cached_shards(&cache_dir, &repo, repo_id, splits).map_err(|reason| {
            hub_error(format!(
                "offline ({HF_HUB_OFFLINE_ENV} is set) and not cached: {reason}"
            ))
        });
    }

    let mut builder = ApiBuilder::from_cache(hf_hub::Cache::new(cache_dir.clone()))
        .with_progress(params.progress);
    if let Some(token) = &params.token {
        builder = builder.with_token(Some(token.clone()));
    }
    if let Some(endpoint) = &params.endpoint {
        builder = builder.with_endpoint(endpoint.clone());
    }
    let api = builder
        .build()
        .map_err(|e| hub_error(format!("cannot build the hub client: {e}")))?;
    let api_repo = api.repo(repo.clone());
    let files: Vec<String> = match api_repo.info() {
        Ok(info) => info.siblings.into_iter().map(|s| s.rfilename).collect(),
        Err(online_error) => {
            // Same fallback as the Python client: a cached snapshot beats failing.
            tracing::warn!(repo_id, error = %online_error, "hub unreachable; trying the cache");
            return cached_shards(&cache_dir, &repo, repo_id, splits).map_err(|reason| {
                hub_error(format!(
                    "cannot list the repository ({online_error}), and no cached copy: {reason}"
                ))
            });
        }
    };
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
                source_name: format!("hub dataset {repo_id}"),
                split: (*split).into(),
                expected: expected_layout(split),
                found: found_list(&others),
            });
        }
        names.sort();
        for name in names {
            tracing::info!(repo_id, file = %name, "fetching shard");
            let path = api_repo
                .get(name)
                .map_err(|e| hub_error(format!("cannot download {name}: {e}")))?;
            shards.push(path);
        }
    }
    Ok(shards)
}

/// The cached shards of a snapshot (`<cache>/datasets--o--n/snapshots/<commit>/data/`).
#[cfg(feature = "hub")]
fn cached_shards(
    cache_dir: &std::path::Path,
    repo: &hf_hub::Repo,
    repo_id: &str,
    splits: &[&str],
) -> std::result::Result<Vec<PathBuf>, String> {
    let repo_dir = cache_dir.join(repo.folder_name());
    let revision = repo.revision();
    let commit = std::fs::read_to_string(repo_dir.join("refs").join(revision))
        .map(|c| c.trim().to_string())
        .unwrap_or_else(|_| revision.to_string());
    let data = repo_dir.join("snapshots").join(commit).join("data");
    let entries = std::fs::read_dir(&data)
        .map_err(|e| format!("{} ({e}) in cache {}", data.display(), cache_dir.display()))?;
    let names: Vec<String> = entries
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    let mut shards = Vec::new();
    for split in splits {
        let mut of_split: Vec<&String> = names.iter().filter(|n| is_shard_of(n, split)).collect();
        if of_split.is_empty() {
            return Err(format!(
                "no cached {} for {repo_id} in {}",
                expected_layout(split),
                data.display()
            ));
        }
        of_split.sort();
        shards.extend(of_split.into_iter().map(|n| data.join(n)));
    }
    Ok(shards)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_variables_are_honoured() {
        let vars = |name: &str| match name {
            HF_HOME_ENV => Some("/hf".to_string()),
            HF_HUB_OFFLINE_ENV => Some("TRUE".to_string()),
            HF_TOKEN_ENV => Some("t0k".to_string()),
            _ => None,
        };
        let params = HubParams::from_vars(vars);
        assert_eq!(params.cache_dir, Some(PathBuf::from("/hf/hub")));
        assert!(params.offline);
        assert_eq!(params.token.as_deref(), Some("t0k"));
        let cache_first = HubParams::from_vars(|name| match name {
            HF_HOME_ENV => Some("/hf".to_string()),
            HF_HUB_CACHE_ENV => Some("/cache".to_string()),
            HF_HUB_OFFLINE_ENV => Some("0".to_string()),
            _ => None,
        });
        assert_eq!(cache_first.cache_dir, Some(PathBuf::from("/cache")));
        assert!(!cache_first.offline);
    }

    #[test]
    fn token_is_never_serialized() {
        let params = HubParams {
            token: Some("secret".into()),
            ..HubParams::default()
        };
        let json = serde_json::to_string(&params).unwrap();
        assert!(!json.contains("secret"), "{json}");
    }

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
            err.contains("talkpl-ai/Nope") && err.contains("offline") && err.contains("not cached"),
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
                && err.contains("no cached copy")
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
}

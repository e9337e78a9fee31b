//! The hub download client (feature `hub`): hf-hub's blocking client driven by [`HubParams`].

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use hf_hub::api::Progress;
use hf_hub::api::sync::{Api, ApiBuilder, ApiError};
use hf_hub::{Repo, RepoType};
use indicatif::{ProgressBar, ProgressStyle};

use super::{HubFailure, HubParams, HubRepo, RepoKind, validate_file_name};
use crate::{Error, Result};

/// Downloads files of hub repositories into the hub cache, or finds them there.
///
/// Every file is looked up in the cache first (`snapshots/<commit>/<file>` of the revision);
/// only a miss goes to the network, and offline ([`HubParams::offline`]) a miss is an error
/// naming the file, the repository and the cache. A download whose size differs from the
/// size the hub announced is discarded (hf-hub would keep it).
#[derive(Debug, Clone)]
pub struct HubClient {
    params: HubParams,
    cache_dir: PathBuf,
    api: Option<Api>,
}

impl HubClient {
    /// A client for `params` (checked by [`HubParams::validate`]). Offline, no network
    /// client is built at all.
    pub fn new(params: &HubParams) -> Result<Self> {
        params.validate()?;
        let cache_dir = params.resolved_cache_dir();
        let api = if params.offline {
            None
        } else {
            let mut builder = ApiBuilder::from_cache(hf_hub::Cache::new(cache_dir.clone()))
                .with_endpoint(params.resolved_endpoint().to_owned())
                .with_progress(false);
            if let Some(token) = &params.token {
                builder = builder.with_token(Some(token.clone()));
            }
            let api = builder.build().map_err(|e| Error::Hub {
                repo: params.resolved_endpoint().to_owned(),
                file: None,
                failure: HubFailure::Other(format!("cannot build the hub client: {e}")),
            })?;
            Some(api)
        };
        Ok(HubClient {
            params: params.clone(),
            cache_dir,
            api,
        })
    }

    /// The settings in use.
    pub fn params(&self) -> &HubParams {
        &self.params
    }

    /// The cache directory in use.
    pub fn cache_dir(&self) -> &Path {
        &self.cache_dir
    }

    fn error(&self, repo: &HubRepo, file: Option<&str>, failure: HubFailure) -> Error {
        Error::Hub {
            repo: repo.to_string(),
            file: file.map(str::to_owned),
            failure,
        }
    }

    /// Whether a token is sent: the settings' own, or the HF home's token file.
    fn with_token(&self) -> bool {
        self.params.token.is_some() || hf_hub::Cache::new(self.cache_dir.clone()).token().is_some()
    }

    fn failure(&self, error: ApiError) -> HubFailure {
        let request = match error {
            ApiError::RequestError(request) => request,
            ApiError::TooManyRetries(inner) => return self.failure(*inner),
            other => return HubFailure::Other(other.to_string()),
        };
        match *request {
            ureq::Error::StatusCode(status @ (401 | 403)) => HubFailure::Unauthorized {
                status,
                with_token: self.with_token(),
            },
            ureq::Error::StatusCode(404) => HubFailure::NotFound,
            ureq::Error::StatusCode(status) => {
                HubFailure::Other(format!("the hub answered HTTP {status}"))
            }
            ureq::Error::Io(_)
            | ureq::Error::Timeout(_)
            | ureq::Error::HostNotFound
            | ureq::Error::ConnectionFailed
            | ureq::Error::Tls(_) => HubFailure::Unreachable {
                endpoint: self.params.resolved_endpoint().to_owned(),
                reason: request.to_string(),
            },
            other => HubFailure::Other(other.to_string()),
        }
    }

    /// The repository's file paths: the hub's listing online, the cached snapshot's offline.
    /// When the hub cannot be reached, the cached snapshot is used too (the Python client does
    /// the same); other failures (access denied, not found) are errors.
    pub fn list_files(&self, repo: &HubRepo) -> Result<Vec<String>> {
        let cached = || {
            repo.cached_files(&self.cache_dir).ok_or_else(|| {
                self.error(
                    repo,
                    None,
                    HubFailure::NotCached {
                        cache_dir: self.cache_dir.clone(),
                    },
                )
            })
        };
        let Some(api) = &self.api else {
            return cached();
        };
        match api.repo(hf_repo(repo)).info() {
            Ok(info) => {
                let files: Vec<String> = info.siblings.into_iter().map(|s| s.rfilename).collect();
                // A listing is the hub's word, but its names still become paths.
                for file in &files {
                    validate_file_name(file)?;
                }
                Ok(files)
            }
            Err(error) => {
                let failure = self.failure(error);
                if !failure.is_unreachable() {
                    return Err(self.error(repo, None, failure));
                }
                repo.cached_files(&self.cache_dir).ok_or_else(|| {
                    self.error(
                        repo,
                        None,
                        HubFailure::Other(format!(
                            "{failure}, and nothing is cached in {}",
                            self.cache_dir.display()
                        )),
                    )
                })
            }
        }
    }

    /// The local path of `file` of `repo`: from the cache, else downloaded into it.
    pub fn get(&self, repo: &HubRepo, file: &str) -> Result<PathBuf> {
        if let Some(path) = repo.cached_file(&self.cache_dir, file)? {
            return Ok(path);
        }
        let Some(api) = &self.api else {
            return Err(self.error(
                repo,
                Some(file),
                HubFailure::NotCached {
                    cache_dir: self.cache_dir.clone(),
                },
            ));
        };
        let tally = Rc::new(Cell::new((0_u64, 0_u64)));
        let tracker = Tracker {
            bar: self.params.progress.then(ProgressBar::no_length),
            tally: Rc::clone(&tally),
        };
        let path = api
            .repo(hf_repo(repo))
            .download_with_progress(file, tracker)
            .map_err(|e| self.error(repo, Some(file), self.failure(e)))?;
        let (received, expected) = tally.get();
        if received != expected {
            discard(&path);
            return Err(self.error(
                repo,
                Some(file),
                HubFailure::Truncated { received, expected },
            ));
        }
        Ok(path)
    }

    /// [`HubClient::get`], with `None` when the file does not exist in the repository (or,
    /// offline, is not cached).
    pub fn get_optional(&self, repo: &HubRepo, file: &str) -> Result<Option<PathBuf>> {
        match self.get(repo, file) {
            Ok(path) => Ok(Some(path)),
            Err(Error::Hub {
                failure: HubFailure::NotFound | HubFailure::NotCached { .. },
                ..
            }) => Ok(None),
            Err(other) => Err(other),
        }
    }
}

fn hf_repo(repo: &HubRepo) -> Repo {
    let kind = match repo.kind() {
        RepoKind::Model => RepoType::Model,
        RepoKind::Dataset => RepoType::Dataset,
    };
    Repo::with_revision(repo.id().to_owned(), kind, repo.revision().to_owned())
}

/// Removes a snapshot entry and the blob it links to.
fn discard(pointer: &Path) {
    if let Ok(blob) = std::fs::canonicalize(pointer)
        && blob != pointer
    {
        let _ = std::fs::remove_file(blob);
    }
    let _ = std::fs::remove_file(pointer);
}

/// Counts the bytes of a download against its announced size, and draws a bar when asked.
struct Tracker {
    bar: Option<ProgressBar>,
    /// (bytes received, bytes announced).
    tally: Rc<Cell<(u64, u64)>>,
}

impl Progress for Tracker {
    fn init(&mut self, size: usize, filename: &str) {
        // hf-hub calls this before each (resumed) transfer; it then reports the bytes a
        // resumed transfer starts from through `update`.
        self.tally.set((0, size as u64));
        if let Some(bar) = &self.bar {
            bar.set_length(size as u64);
            bar.set_position(0);
            if let Ok(style) = ProgressStyle::with_template(
                "{msg} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({bytes_per_sec}, ETA {eta})",
            ) {
                bar.set_style(style);
            }
            bar.set_message(format!("downloading {filename}"));
        }
    }

    fn update(&mut self, size: usize) {
        let (received, expected) = self.tally.get();
        self.tally.set((received + size as u64, expected));
        if let Some(bar) = &self.bar {
            bar.inc(size as u64);
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::stand_in::{StandIn, StandInRepo};

    const CONFIG: &[u8] = br#"{"hidden_size": 8}"#;

    fn weights() -> Vec<u8> {
        (0..10_000_u32).flat_map(|i| i.to_le_bytes()).collect()
    }

    fn model(id: &str) -> StandInRepo {
        StandInRepo::new(
            RepoKind::Model,
            id,
            &[("config.json", CONFIG), ("model.safetensors", &weights())],
        )
    }

    fn repo(id: &str) -> HubRepo {
        HubRepo::new(RepoKind::Model, id, None).unwrap()
    }

    #[test]
    fn first_download_fills_the_cache_and_the_second_is_served_from_it() {
        let hub = StandIn::start(vec![model("o/m")]).unwrap();
        let cache = tempfile::tempdir().unwrap();
        let client = HubClient::new(&hub.hub_params(cache.path())).unwrap();
        let path = client.get(&repo("o/m"), "model.safetensors").unwrap();
        assert!(path.starts_with(cache.path()), "{}", path.display());
        assert_eq!(std::fs::read(&path).unwrap(), weights());
        assert_eq!(hub.downloads(), 1, "{:#?}", hub.requests());
        let before = hub.requests().len();

        let again = HubClient::new(&hub.hub_params(cache.path())).unwrap();
        assert_eq!(again.get(&repo("o/m"), "model.safetensors").unwrap(), path);
        assert_eq!(hub.requests().len(), before, "{:#?}", hub.requests());
    }

    #[test]
    fn offline_works_from_the_cache_and_names_what_is_missing() {
        let hub = StandIn::start(vec![model("o/m")]).unwrap();
        let cache = tempfile::tempdir().unwrap();
        HubClient::new(&hub.hub_params(cache.path()))
            .unwrap()
            .get(&repo("o/m"), "config.json")
            .unwrap();
        let requests = hub.requests().len();
        let offline = HubClient::new(&HubParams {
            offline: true,
            ..hub.hub_params(cache.path())
        })
        .unwrap();
        let config = offline.get(&repo("o/m"), "config.json").unwrap();
        assert_eq!(std::fs::read(config).unwrap(), CONFIG);
        let err = offline
            .get(&repo("o/m"), "model.safetensors")
            .unwrap_err()
            .to_string();
        for needle in [
            "hub model o/m",
            "model.safetensors",
            "HF_HUB_OFFLINE",
            &cache.path().display().to_string(),
        ] {
            assert!(err.contains(needle), "{needle:?} missing from {err}");
        }
        assert_eq!(
            offline
                .get_optional(&repo("o/m"), "tokenizer.json")
                .unwrap(),
            None
        );
        assert_eq!(hub.requests().len(), requests, "offline never asks the hub");
    }

    #[test]
    fn a_gated_repo_without_a_token_names_hf_token() {
        let mut gated = model("o/gated");
        gated.token = Some("hf_secret".into());
        let hub = StandIn::start(vec![gated]).unwrap();
        let cache = tempfile::tempdir().unwrap();
        let client = HubClient::new(&hub.hub_params(cache.path())).unwrap();
        let err = client
            .get(&repo("o/gated"), "config.json")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("HTTP 401") && err.contains("HF_TOKEN") && err.contains("o/gated"),
            "{err}"
        );
        let wrong = HubClient::new(&HubParams {
            token: Some("hf_wrong".into()),
            ..hub.hub_params(cache.path())
        })
        .unwrap();
        let err = wrong
            .get(&repo("o/gated"), "config.json")
            .unwrap_err()
            .to_string();
        assert!(err.contains("with the token given"), "{err}");
        let right = HubClient::new(&HubParams {
            token: Some("hf_secret".into()),
            ..hub.hub_params(cache.path())
        })
        .unwrap();
        let path = right.get(&repo("o/gated"), "config.json").unwrap();
        assert_eq!(std::fs::read(path).unwrap(), CONFIG);
    }

    #[test]
    fn a_truncated_download_is_an_error_and_not_a_cached_file() {
        let mut broken = model("o/m");
        broken.truncated = vec!["model.safetensors".into()];
        let hub = StandIn::start(vec![broken]).unwrap();
        let cache = tempfile::tempdir().unwrap();
        let client = HubClient::new(&hub.hub_params(cache.path())).unwrap();
        let err = client
            .get(&repo("o/m"), "model.safetensors")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("ended after 20000 of 40000 bytes") && err.contains("model.safetensors"),
            "{err}"
        );
        assert_eq!(
            repo("o/m")
                .cached_file(cache.path(), "model.safetensors")
                .unwrap(),
            None
        );
        let blobs = cache.path().join("models--o--m/blobs");
        let left: Vec<_> = std::fs::read_dir(&blobs)
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(
            left.iter()
                .all(|name| name.to_string_lossy().ends_with(".lock")),
            "{left:?}"
        );
    }

    #[test]
    fn missing_files_and_repositories_are_not_found() {
        let hub = StandIn::start(vec![model("o/m")]).unwrap();
        let cache = tempfile::tempdir().unwrap();
        let client = HubClient::new(&hub.hub_params(cache.path())).unwrap();
        assert_eq!(
            client.get_optional(&repo("o/m"), "tokenizer.json").unwrap(),
            None
        );
        let err = client
            .get(&repo("o/none"), "config.json")
            .unwrap_err()
            .to_string();
        assert!(err.contains("HTTP 404") && err.contains("o/none"), "{err}");
    }

    #[test]
    fn listing_online_and_from_the_cache() {
        let data = StandInRepo::new(
            RepoKind::Dataset,
            "o/d",
            &[
                ("data/test-00000-of-00001.parquet", b"PAR1"),
                ("README.md", b"#"),
            ],
        );
        let hub = StandIn::start(vec![data]).unwrap();
        let cache = tempfile::tempdir().unwrap();
        let repo = HubRepo::new(RepoKind::Dataset, "o/d", None).unwrap();
        let client = HubClient::new(&hub.hub_params(cache.path())).unwrap();
        let files = client.list_files(&repo).unwrap();
        assert_eq!(files, ["data/test-00000-of-00001.parquet", "README.md"]);
        client.get(&repo, &files[0]).unwrap();
        assert!(
            hub.requests()
                .iter()
                .any(|r| r.path.starts_with("/datasets/o/d/resolve/main/")),
            "{:#?}",
            hub.requests()
        );
        let offline = HubClient::new(&HubParams {
            offline: true,
            ..hub.hub_params(cache.path())
        })
        .unwrap();
        assert_eq!(
            offline.list_files(&repo).unwrap(),
            ["data/test-00000-of-00001.parquet"]
        );
        // Nothing listens on the discard port: unreachable, so the cache answers.
        let unreachable = HubClient::new(&HubParams {
            endpoint: Some("http://127.0.0.1:9".into()),
            ..hub.hub_params(cache.path())
        })
        .unwrap();
        assert_eq!(unreachable.list_files(&repo).unwrap().len(), 1);
        let empty = tempfile::tempdir().unwrap();
        let err = HubClient::new(&HubParams {
            endpoint: Some("http://127.0.0.1:9".into()),
            cache_dir: Some(empty.path().to_path_buf()),
            ..HubParams::default()
        })
        .unwrap()
        .list_files(&repo)
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("cannot reach the hub at http://127.0.0.1:9")
                && err.contains(&empty.path().display().to_string()),
            "{err}"
        );
    }
}

//! Hugging Face hub access shared by every crate that reads from the hub (datasets, Llama and
//! BERT models): one set of settings ([`HubParams`]), checked repository ids, revisions and
//! file names ([`HubRepo`]), and the layout of the local hub cache.
//!
//! This module has no dependencies. With the `hub` feature, [`HubClient`] downloads through
//! hf-hub's blocking client, honouring the settings: the endpoint (`HF_ENDPOINT`), the cache
//! (`HF_HUB_CACHE` / `HF_HOME`), offline mode (`HF_HUB_OFFLINE`), the token (`HF_TOKEN`) and
//! a download progress bar.
//!
//! Names are checked before they reach a path or the network: a revision such as
//! `../../../somewhere` or a repository id with `..` would otherwise name a folder outside
//! the cache.
//!
//! ```
//! use music_crs_core::hub::{HubRepo, RepoKind};
//!
//! let repo = HubRepo::new(RepoKind::Model, "meta-llama/Llama-3.2-1B-Instruct", None)?;
//! assert_eq!(repo.folder_name(), "models--meta-llama--Llama-3.2-1B-Instruct");
//! assert!(HubRepo::new(RepoKind::Model, "o/n", Some("../../../somewhere")).is_err());
//! assert!(HubRepo::new(RepoKind::Dataset, "../etc", None).is_err());
//! # Ok::<(), music_crs_core::Error>(())
//! ```

#[cfg(feature = "hub")]
mod client;
#[cfg(any(test, feature = "hub-stand-in"))]
pub mod stand_in;

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[cfg(feature = "hub")]
#[cfg_attr(docsrs, doc(cfg(feature = "hub")))]
pub use client::HubClient;

use crate::{Error, Result};

/// `HF_HOME`: the Hugging Face home; the cache is `$HF_HOME/hub`.
pub const HF_HOME_ENV: &str = "HF_HOME";
/// `HF_HUB_CACHE`: the hub cache directory itself (wins over `HF_HOME`).
pub const HF_HUB_CACHE_ENV: &str = "HF_HUB_CACHE";
/// `HF_HUB_OFFLINE`: `1`/`true`/`yes`/`on` forbids network access.
pub const HF_HUB_OFFLINE_ENV: &str = "HF_HUB_OFFLINE";
/// `HF_TOKEN`: the access token (else the token file of the HF home is read).
pub const HF_TOKEN_ENV: &str = "HF_TOKEN";
/// `HF_ENDPOINT`: another hub URL (a mirror).
pub const HF_ENDPOINT_ENV: &str = "HF_ENDPOINT";
/// The hub used when no endpoint is set.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";
/// The revision used when none is given.
pub const DEFAULT_REVISION: &str = "main";

/// How the hub is reached: the one set of settings every hub access uses.
/// [`HubParams::from_env`] reads the usual HF variables.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HubParams {
    /// The hub cache directory; `None` is `$HF_HUB_CACHE`, `$HF_HOME/hub` or
    /// `~/.cache/huggingface/hub`, in that order.
    pub cache_dir: Option<PathBuf>,
    /// Never touch the network: use cached files only.
    pub offline: bool,
    /// The access token; `None` reads the token file of the HF home (`$HF_HOME/token`).
    /// Never written out when a config is saved.
    #[serde(skip_serializing)]
    pub token: Option<String>,
    /// Another hub URL; `None` is [`DEFAULT_ENDPOINT`].
    pub endpoint: Option<String>,
    /// Draw a download progress bar on stderr (binaries set it when stderr is a terminal and
    /// logs are not quiet; off by default).
    pub progress: bool,
}

impl HubParams {
    /// Settings from `HF_HUB_CACHE` / `HF_HOME`, `HF_HUB_OFFLINE`, `HF_TOKEN` and
    /// `HF_ENDPOINT` (progress off).
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
            token: var(HF_TOKEN_ENV).map(|t| t.trim().to_owned()),
            endpoint: var(HF_ENDPOINT_ENV),
            progress: false,
        }
    }

    /// Checks the endpoint (an `http://` or `https://` URL).
    pub fn validate(&self) -> Result<()> {
        if let Some(endpoint) = &self.endpoint
            && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
        {
            return Err(Error::InvalidValue {
                field: format!("hub endpoint ({HF_ENDPOINT_ENV})"),
                reason: format!("{endpoint:?} is not an http:// or https:// URL"),
            });
        }
        Ok(())
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

    /// The endpoint in effect, without a trailing `/`.
    pub fn resolved_endpoint(&self) -> &str {
        self.endpoint
            .as_deref()
            .unwrap_or(DEFAULT_ENDPOINT)
            .trim_end_matches('/')
    }
}

static PROCESS_PARAMS: std::sync::OnceLock<HubParams> = std::sync::OnceLock::new();

/// Installs the hub settings of this process (a binary calls it once at start, after reading
/// its flags: e.g. progress only when stderr is a terminal and logs are not quiet). Returns
/// false when settings were installed already (they are kept).
pub fn install_process_params(params: HubParams) -> bool {
    PROCESS_PARAMS.set(params).is_ok()
}

impl HubParams {
    /// The settings of this process: those installed with [`install_process_params`], else
    /// [`HubParams::from_env`]. Every hub access that is not given settings explicitly
    /// (datasets, Llama and BERT models) uses these.
    pub fn process() -> Self {
        PROCESS_PARAMS.get().cloned().unwrap_or_else(Self::from_env)
    }
}

/// What sort of hub repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RepoKind {
    /// A model repository (`models--owner--name` in the cache).
    Model,
    /// A dataset repository (`datasets--owner--name` in the cache).
    Dataset,
}

/// A hub repository at a revision, with the id and revision checked.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HubRepo {
    kind: RepoKind,
    id: String,
    revision: String,
}

impl HubRepo {
    /// A repository at `revision` (`main` when `None`); fails when the id or revision is not
    /// a hub name (see [`validate_repo_id`], [`validate_revision`]).
    pub fn new(kind: RepoKind, id: &str, revision: Option<&str>) -> Result<Self> {
        validate_repo_id(id)?;
        let revision = revision.unwrap_or(DEFAULT_REVISION);
        validate_revision(revision)?;
        Ok(HubRepo {
            kind,
            id: id.to_owned(),
            revision: revision.to_owned(),
        })
    }

    /// Model or dataset.
    pub fn kind(&self) -> RepoKind {
        self.kind
    }

    /// `owner/name`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The branch, tag or commit.
    pub fn revision(&self) -> &str {
        &self.revision
    }

    /// The repository's folder in the cache: `models--owner--name` or `datasets--owner--name`.
    pub fn folder_name(&self) -> String {
        let prefix = match self.kind {
            RepoKind::Model => "models",
            RepoKind::Dataset => "datasets",
        };
        format!("{prefix}--{}", self.id.replace('/', "--"))
    }

    /// The cached snapshot of this revision: `snapshots/<commit>` where `refs/<revision>`
    /// names the commit, or `snapshots/<revision>` when the revision is itself a cached
    /// commit. `None` when nothing is cached.
    pub fn cached_snapshot(&self, cache_dir: &Path) -> Option<PathBuf> {
        let repo_dir = cache_dir.join(self.folder_name());
        let commit = std::fs::read_to_string(repo_dir.join("refs").join(&self.revision))
            .ok()
            .map(|c| c.trim().to_owned())
            .filter(|c| validate_revision(c).is_ok())
            .unwrap_or_else(|| self.revision.clone());
        Some(repo_dir.join("snapshots").join(commit)).filter(|dir| dir.is_dir())
    }

    /// A file of the cached snapshot, when it is there (`file` is checked by
    /// [`validate_file_name`]).
    pub fn cached_file(&self, cache_dir: &Path, file: &str) -> Result<Option<PathBuf>> {
        validate_file_name(file)?;
        Ok(self
            .cached_snapshot(cache_dir)
            .map(|dir| dir.join(file))
            .filter(|path| path.is_file()))
    }

    /// Every file of the cached snapshot, as repository paths (`data/x.parquet`), sorted.
    pub fn cached_files(&self, cache_dir: &Path) -> Option<Vec<String>> {
        let snapshot = self.cached_snapshot(cache_dir)?;
        let mut files = Vec::new();
        let mut pending = vec![(snapshot, String::new())];
        while let Some((dir, prefix)) = pending.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let path = entry.path();
                let relative = format!("{prefix}{name}");
                if path.is_dir() {
                    pending.push((path, format!("{relative}/")));
                } else if path.is_file() {
                    files.push(relative);
                }
            }
        }
        files.sort();
        Some(files)
    }
}

impl fmt::Display for HubRepo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            RepoKind::Model => "model",
            RepoKind::Dataset => "dataset",
        };
        write!(f, "hub {kind} {}", self.id)?;
        if self.revision != DEFAULT_REVISION {
            write!(f, "@{}", self.revision)?;
        }
        Ok(())
    }
}

fn invalid(what: &'static str, value: &str, reason: impl Into<String>) -> Error {
    Error::InvalidHubName {
        what,
        value: value.to_owned(),
        reason: reason.into(),
    }
}

/// True for the characters of a hub name part (letters, digits, `-`, `_`, `.`).
fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

/// Checks a repository id: `name` or `owner/name`, each part of letters, digits, `-`, `_`
/// and `.`, not starting or ending with `-` or `.`, without `--` or `..`, at most 96
/// characters (the hub's own rules).
pub fn validate_repo_id(id: &str) -> Result<()> {
    const WHAT: &str = "repository id";
    if id.is_empty() || id.len() > 96 {
        return Err(invalid(
            WHAT,
            id,
            "expected owner/name of 1 to 96 characters",
        ));
    }
    let parts: Vec<&str> = id.split('/').collect();
    if parts.len() > 2 {
        return Err(invalid(WHAT, id, "expected owner/name (one `/` at most)"));
    }
    for part in parts {
        if part.is_empty() || !part.chars().all(is_name_char) {
            return Err(invalid(
                WHAT,
                id,
                "each part of owner/name is letters, digits, `-`, `_` or `.`",
            ));
        }
        if part.contains("..") || part.contains("--") {
            return Err(invalid(WHAT, id, "`..` and `--` are not allowed"));
        }
        if part.starts_with(['-', '.']) || part.ends_with(['-', '.']) {
            return Err(invalid(
                WHAT,
                id,
                "a part cannot start or end with `-` or `.`",
            ));
        }
    }
    Ok(())
}

/// Checks a revision (branch, tag or commit): at most 256 characters, `/`-separated parts
/// (`refs/pr/1`) of letters, digits, `-`, `_`, `.` and `+`, none empty, `.` or `..`.
pub fn validate_revision(revision: &str) -> Result<()> {
    const WHAT: &str = "revision";
    if revision.is_empty() || revision.len() > 256 {
        return Err(invalid(WHAT, revision, "expected 1 to 256 characters"));
    }
    for part in revision.split('/') {
        if part.is_empty() || part == "." || part == ".." {
            return Err(invalid(
                WHAT,
                revision,
                "a branch, tag or commit has no empty, `.` or `..` parts",
            ));
        }
        if !part.chars().all(|c| is_name_char(c) || c == '+') {
            return Err(invalid(
                WHAT,
                revision,
                "a branch, tag or commit is letters, digits, `-`, `_`, `.`, `+` and `/`",
            ));
        }
    }
    Ok(())
}

/// Checks a file name inside a repository (`config.json`, `data/test-00000-of-00001.parquet`):
/// relative, `/`-separated, no empty, `.` or `..` part, no `\` or control character.
pub fn validate_file_name(file: &str) -> Result<()> {
    const WHAT: &str = "file name";
    if file.is_empty() || file.len() > 1024 {
        return Err(invalid(WHAT, file, "expected 1 to 1024 characters"));
    }
    if file.chars().any(|c| c == '\\' || c.is_control()) {
        return Err(invalid(WHAT, file, "no `\\` or control characters"));
    }
    if file
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return Err(invalid(
            WHAT,
            file,
            "a relative path with no empty, `.` or `..` parts",
        ));
    }
    Ok(())
}

/// Why a hub access failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HubFailure {
    /// Offline mode, and the file is not in the cache.
    NotCached {
        /// The cache directory searched.
        cache_dir: PathBuf,
    },
    /// The hub refused access (HTTP 401 or 403).
    Unauthorized {
        /// The HTTP status.
        status: u16,
        /// Whether a token was sent.
        with_token: bool,
    },
    /// No such repository, revision or file (HTTP 404).
    NotFound,
    /// The download ended early; the partial file was discarded.
    Truncated {
        /// Bytes received.
        received: u64,
        /// Bytes announced.
        expected: u64,
    },
    /// The hub could not be reached.
    Unreachable {
        /// The endpoint tried.
        endpoint: String,
        /// The client's message.
        reason: String,
    },
    /// Anything else the client reported.
    Other(String),
}

impl HubFailure {
    /// True when a network access could not happen at all (the cache may still help).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, HubFailure::Unreachable { .. })
    }
}

impl fmt::Display for HubFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HubFailure::NotCached { cache_dir } => write!(
                f,
                "not in the hub cache {} and {HF_HUB_OFFLINE_ENV} forbids downloading it; run once \
                 with network access or unset {HF_HUB_OFFLINE_ENV}",
                cache_dir.display()
            ),
            HubFailure::Unauthorized {
                status,
                with_token: false,
            } => write!(
                f,
                "access denied (HTTP {status}): the repository is gated or private; set \
                 {HF_TOKEN_ENV} to a token of an account that has access \
                 (https://huggingface.co/settings/tokens)"
            ),
            HubFailure::Unauthorized {
                status,
                with_token: true,
            } => write!(
                f,
                "access denied (HTTP {status}) with the token given ({HF_TOKEN_ENV} or the HF \
                 home's token file): the token is wrong, or its account has not been granted \
                 access to this gated repository"
            ),
            HubFailure::NotFound => write!(
                f,
                "not found on the hub (HTTP 404): check the repository id, revision and file name"
            ),
            HubFailure::Truncated { received, expected } => write!(
                f,
                "the download ended after {received} of {expected} bytes; the partial file was \
                 discarded, try again"
            ),
            HubFailure::Unreachable { endpoint, reason } => {
                write!(f, "cannot reach the hub at {endpoint} ({reason})")
            }
            HubFailure::Other(reason) => f.write_str(reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_variables_are_honoured() {
        let vars = |name: &str| match name {
            HF_HOME_ENV => Some("/hf".to_string()),
            HF_HUB_OFFLINE_ENV => Some("TRUE".to_string()),
            HF_TOKEN_ENV => Some("t0k\n".to_string()),
            HF_ENDPOINT_ENV => Some("http://127.0.0.1:1/".to_string()),
            _ => None,
        };
        let params = HubParams::from_vars(vars);
        assert_eq!(params.cache_dir, Some(PathBuf::from("/hf/hub")));
        assert!(params.offline);
        assert_eq!(params.token.as_deref(), Some("t0k"));
        assert_eq!(params.resolved_endpoint(), "http://127.0.0.1:1");
        assert!(params.validate().is_ok());
        let cache_first = HubParams::from_vars(|name| match name {
            HF_HOME_ENV => Some("/hf".to_string()),
            HF_HUB_CACHE_ENV => Some("/cache".to_string()),
            HF_HUB_OFFLINE_ENV => Some("0".to_string()),
            HF_ENDPOINT_ENV => Some("ftp://x".to_string()),
            _ => None,
        });
        assert_eq!(cache_first.cache_dir, Some(PathBuf::from("/cache")));
        assert!(!cache_first.offline);
        assert_eq!(cache_first.resolved_endpoint(), "ftp://x");
        let err = cache_first.validate().unwrap_err().to_string();
        assert!(
            err.contains(HF_ENDPOINT_ENV) && err.contains("ftp://x"),
            "{err}"
        );
        assert_eq!(HubParams::default().resolved_endpoint(), DEFAULT_ENDPOINT);
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

    #[test]
    fn repo_ids_that_could_leave_the_cache_are_refused() {
        for good in [
            "gpt2",
            "meta-llama/Llama-3.2-1B-Instruct",
            "talkpl-ai/TalkPlayData-Challenge-Dataset",
            "sentence-transformers/all-MiniLM-L6-v2",
            "a.b_c/d.e",
        ] {
            assert!(validate_repo_id(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "..",
            "../etc",
            "o/..",
            "o/../../x",
            "/abs/path",
            "o/n/",
            "o//n",
            "a/b/c",
            "o\\n",
            "o/n x",
            "o/n--x",
            ".hidden/n",
            "o/n.",
            "o/n\0",
        ] {
            let err = validate_repo_id(bad).unwrap_err().to_string();
            assert!(err.contains("repository id"), "{bad:?}: {err}");
        }
        assert!(validate_repo_id(&"a".repeat(97)).is_err());
    }

    #[test]
    fn revisions_that_could_leave_the_cache_are_refused() {
        for good in [
            "main",
            "v1.0",
            "refs/pr/1",
            "0123456789abcdef0123456789abcdef01234567",
            "release+1",
        ] {
            assert!(validate_revision(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "..",
            "../../../somewhere",
            "refs/../../x",
            "/etc",
            "a//b",
            "a/./b",
            "a\\b",
            "a b",
            "x\n",
        ] {
            let err = validate_revision(bad).unwrap_err().to_string();
            assert!(err.contains("revision"), "{bad:?}: {err}");
        }
        let err = HubRepo::new(RepoKind::Model, "o/n", Some("../../../somewhere"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("../../../somewhere"), "{err}");
    }

    #[test]
    fn file_names_that_could_leave_the_snapshot_are_refused() {
        for good in [
            "config.json",
            "data/test-00000-of-00001.parquet",
            "1_Pooling/config.json",
        ] {
            assert!(validate_file_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "../x",
            "a/../../b",
            "/etc/passwd",
            "a//b",
            "./a",
            "a\\b",
        ] {
            let err = validate_file_name(bad).unwrap_err().to_string();
            assert!(err.contains("file name"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn cached_snapshot_follows_the_ref_or_a_commit_revision() {
        let cache = std::env::temp_dir().join(format!("music-crs-hub-{}", std::process::id()));
        let repo = HubRepo::new(RepoKind::Dataset, "o/n", None).unwrap();
        let repo_dir = cache.join("datasets--o--n");
        std::fs::create_dir_all(repo_dir.join("refs")).unwrap();
        std::fs::write(repo_dir.join("refs/main"), "abc123\n").unwrap();
        let snapshot = repo_dir.join("snapshots/abc123");
        std::fs::create_dir_all(snapshot.join("data")).unwrap();
        std::fs::write(snapshot.join("data/x.parquet"), b"").unwrap();
        std::fs::write(snapshot.join("README.md"), b"").unwrap();
        assert_eq!(repo.cached_snapshot(&cache), Some(snapshot.clone()));
        assert_eq!(
            repo.cached_file(&cache, "data/x.parquet").unwrap(),
            Some(snapshot.join("data/x.parquet"))
        );
        assert_eq!(repo.cached_file(&cache, "nope.json").unwrap(), None);
        assert!(repo.cached_file(&cache, "../refs/main").is_err());
        assert_eq!(
            repo.cached_files(&cache).unwrap(),
            vec!["README.md".to_string(), "data/x.parquet".to_string()]
        );
        let pinned = HubRepo::new(RepoKind::Dataset, "o/n", Some("abc123")).unwrap();
        assert_eq!(pinned.cached_snapshot(&cache), Some(snapshot));
        let other = HubRepo::new(RepoKind::Dataset, "o/n", Some("v2")).unwrap();
        assert_eq!(other.cached_snapshot(&cache), None);
        assert_eq!(
            other.to_string(),
            "hub dataset o/n@v2",
            "the revision is shown when it is not main"
        );
        std::fs::remove_dir_all(&cache).unwrap();
    }
}

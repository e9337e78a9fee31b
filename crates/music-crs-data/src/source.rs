//! Where a dataset part comes from: a local directory (or file) or a Hugging Face hub dataset,
//! and how a split name maps to its parquet shards.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::hub::HubParams;
use crate::{Error, Result};

/// The folder of a dataset directory that holds the shards (as on the hub).
pub const DATA_DIR: &str = "data";

/// The prefix that forces a string to be read as a hub dataset id.
pub const HUB_PREFIX: &str = "hf://datasets/";

/// A dataset location, parsed from a string by [`Source::parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A local directory laid out as `data/<split>-NNNNN-of-NNNNN.parquet`, or one parquet
    /// file (the split is then ignored).
    Local(PathBuf),
    /// A Hugging Face hub dataset.
    Hub {
        /// `owner/name`.
        repo_id: String,
        /// A branch, tag or commit; `None` is the default branch (`main`).
        revision: Option<String>,
    },
}

impl Source {
    /// Parses a source string.
    ///
    /// - An existing path is [`Source::Local`].
    /// - `hf://datasets/owner/name[@revision]`, or `owner/name[@revision]` that is not an
    ///   existing path, is [`Source::Hub`]. Write `./owner/name` to force a relative path.
    /// - Anything else (starts with `.`, `/` or `~`, holds a `\`, or has more than one `/`) is
    ///   a path; when it does not exist this is [`Error::NotFound`] naming it, never a hub try.
    ///
    /// ```
    /// use music_crs_data::Source;
    ///
    /// let hub = Source::parse("talkpl-ai/TalkPlayData-Challenge-Dataset")?;
    /// assert_eq!(
    ///     hub,
    ///     Source::Hub { repo_id: "talkpl-ai/TalkPlayData-Challenge-Dataset".into(), revision: None }
    /// );
    /// let pinned = Source::parse("hf://datasets/talkpl-ai/TalkPlayData-2@v1")?;
    /// assert!(matches!(pinned, Source::Hub { revision: Some(r), .. } if r == "v1"));
    /// let err = Source::parse("./no/such/dir").unwrap_err();
    /// assert!(err.to_string().contains("./no/such/dir"));
    /// # Ok::<(), music_crs_data::Error>(())
    /// ```
    pub fn parse(source: &str) -> Result<Source> {
        let trimmed = source.trim();
        if trimmed.is_empty() {
            return Err(Error::InvalidName {
                what: "source",
                value: source.into(),
                reason: "empty; give a local directory or a hub dataset id such as \
                         talkpl-ai/TalkPlayData-Challenge-Dataset"
                    .into(),
            });
        }
        if let Some(rest) = trimmed.strip_prefix(HUB_PREFIX) {
            let hub = parse_hub_id(rest).ok_or_else(|| Error::InvalidName {
                what: "source",
                value: source.into(),
                reason: "expected hf://datasets/owner/name[@revision]".into(),
            })?;
            return hub.checked();
        }
        let path = Path::new(trimmed);
        if path.exists() {
            return Ok(Source::Local(path.to_path_buf()));
        }
        if !looks_like_path(trimmed)
            && let Some(hub) = parse_hub_id(trimmed)
        {
            return hub.checked();
        }
        Err(Error::NotFound {
            path: path.to_path_buf(),
            expected: format!(
                "a directory holding {DATA_DIR}/<split>-NNNNN-of-NNNNN.parquet, a parquet file, \
                 or a hub dataset id owner/name"
            ),
        })
    }

    /// A hub source whose id and revision cannot name a folder outside the hub cache.
    fn checked(self) -> Result<Source> {
        if let Source::Hub { repo_id, revision } = &self {
            music_crs_core::hub::HubRepo::new(
                music_crs_core::hub::RepoKind::Dataset,
                repo_id,
                revision.as_deref(),
            )?;
        }
        Ok(self)
    }

    /// The parquet shards of `split`, sorted by name.
    ///
    /// `split` may join several splits with `+` (`test_warm+test_cold`): their shards are
    /// concatenated in that order. A local source that is a file is returned as is.
    pub fn shards(&self, split: &str, hub: &HubParams) -> Result<Vec<PathBuf>> {
        let splits = parse_splits(split)?;
        match self {
            Source::Local(path) if path.is_file() => Ok(vec![path.clone()]),
            Source::Local(dir) => {
                let mut shards = Vec::new();
                for split in splits {
                    shards.extend(local_shards(dir, split)?);
                }
                Ok(shards)
            }
            Source::Hub { repo_id, revision } => {
                crate::hub::hub_shards(repo_id, revision.as_deref(), &splits, hub)
            }
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Local(path) => write!(f, "{}", path.display()),
            Source::Hub {
                repo_id,
                revision: None,
            } => write!(f, "{HUB_PREFIX}{repo_id}"),
            Source::Hub {
                repo_id,
                revision: Some(rev),
            } => write!(f, "{HUB_PREFIX}{repo_id}@{rev}"),
        }
    }
}

fn looks_like_path(s: &str) -> bool {
    s.starts_with('.')
        || s.starts_with('/')
        || s.starts_with('~')
        || s.contains('\\')
        || s.matches('/').count() != 1
}

fn is_hub_name_part(part: &str) -> bool {
    !part.is_empty()
        && !part.starts_with(['.', '-'])
        && part
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn parse_hub_id(s: &str) -> Option<Source> {
    let (id, revision) = match s.split_once('@') {
        Some((id, rev)) if !rev.is_empty() => (id, Some(rev.to_string())),
        Some(_) => return None,
        None => (s, None),
    };
    let (owner, name) = id.split_once('/')?;
    (is_hub_name_part(owner) && is_hub_name_part(name)).then(|| Source::Hub {
        repo_id: id.to_string(),
        revision,
    })
}

/// Splits `a+b` into its split names, checking each.
pub(crate) fn parse_splits(split: &str) -> Result<Vec<&str>> {
    let splits: Vec<&str> = split.split('+').map(str::trim).collect();
    for name in &splits {
        let valid = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.'));
        if !valid {
            return Err(Error::InvalidName {
                what: "split",
                value: split.into(),
                reason: "expected names of letters, digits, `_` or `.`, joined with `+`".into(),
            });
        }
    }
    Ok(splits)
}

/// True when `file_name` is a shard of `split`: `<split>-<digit>...parquet`.
pub(crate) fn is_shard_of(file_name: &str, split: &str) -> bool {
    file_name
        .strip_prefix(split)
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
        && file_name.ends_with(".parquet")
}

/// The layout a split is expected in, for error messages.
pub(crate) fn expected_layout(split: &str) -> String {
    format!("{DATA_DIR}/{split}-NNNNN-of-NNNNN.parquet")
}

fn local_shards(dir: &Path, split: &str) -> Result<Vec<PathBuf>> {
    let data = dir.join(DATA_DIR);
    if !data.is_dir() {
        return Err(Error::NotFound {
            path: data,
            expected: format!("a folder holding {}", expected_layout(split)),
        });
    }
    let entries = std::fs::read_dir(&data).map_err(|e| Error::io(&data, e))?;
    let mut shards = Vec::new();
    let mut others = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(&data, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_shard_of(&name, split) {
            shards.push(entry.path());
        } else if name.ends_with(".parquet") {
            others.push(name);
        }
    }
    if shards.is_empty() {
        others.sort();
        return Err(Error::NoShards {
            source_name: dir.display().to_string(),
            split: split.into(),
            expected: expected_layout(split),
            found: found_list(&others),
        });
    }
    shards.sort();
    Ok(shards)
}

/// `"; found: a, b"` (at most a few names), or empty.
pub(crate) fn found_list(names: &[String]) -> String {
    const SHOWN: usize = 6;
    if names.is_empty() {
        return "; the folder holds no parquet file".into();
    }
    let mut list = names
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        list.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    format!("; found {list}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_ids_and_paths_are_told_apart() {
        assert!(matches!(
            Source::parse("talkpl-ai/TalkPlayData-2").unwrap(),
            Source::Hub { revision: None, .. }
        ));
        for path in ["./a/b", "/nope/at/all", "a/b/c", "~/x", "a\\b", "solo"] {
            let err = Source::parse(path).unwrap_err();
            assert!(
                matches!(&err, Error::NotFound { path: p, .. } if p == Path::new(path)),
                "{path}: {err}"
            );
        }
        assert!(Source::parse("").is_err());
        assert!(Source::parse("hf://datasets/a").is_err());
        assert!(Source::parse("owner/name@").is_err());
        for escaping in [
            "hf://datasets/o/n@../../../somewhere",
            "hf://datasets/o/..@main",
            "o/n@..",
        ] {
            let err = Source::parse(escaping).unwrap_err().to_string();
            assert!(err.starts_with("invalid"), "{escaping}: {err}");
        }
    }

    #[test]
    fn existing_path_wins_over_hub_id() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("owner");
        std::fs::create_dir_all(sub.join("name")).unwrap();
        let cwd_relative = sub.join("name");
        assert_eq!(
            Source::parse(cwd_relative.to_str().unwrap()).unwrap(),
            Source::Local(cwd_relative)
        );
    }

    #[test]
    fn shard_names_match_their_split_only() {
        assert!(is_shard_of("test-00000-of-00002.parquet", "test"));
        assert!(!is_shard_of("test_tracks-00000-of-00001.parquet", "test"));
        assert!(!is_shard_of("test-00000-of-00001.json", "test"));
        assert!(!is_shard_of("testing-0.parquet", "test"));
        assert!(is_shard_of("2026-00000-of-00001.parquet", "2026"));
    }

    #[test]
    fn splits_join_with_plus() {
        assert_eq!(
            parse_splits("test_warm+test_cold").unwrap(),
            vec!["test_warm", "test_cold"]
        );
        assert!(parse_splits("../x").is_err());
        assert!(parse_splits("a+").is_err());
    }

    #[test]
    fn several_shards_are_sorted_and_split_specific() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join(DATA_DIR);
        std::fs::create_dir_all(&data).unwrap();
        for name in [
            "train-00001-of-00002.parquet",
            "train-00000-of-00002.parquet",
            "test-00000-of-00001.parquet",
        ] {
            std::fs::write(data.join(name), b"").unwrap();
        }
        let source = Source::Local(dir.path().to_path_buf());
        let hub = HubParams::default();
        let shards = source.shards("train", &hub).unwrap();
        let names: Vec<_> = shards
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "train-00000-of-00002.parquet",
                "train-00001-of-00002.parquet"
            ]
        );
        assert_eq!(source.shards("test+train", &hub).unwrap().len(), 3);
        let err = source.shards("all_tracks", &hub).unwrap_err().to_string();
        assert!(
            err.contains("all_tracks") && err.contains("test-00000"),
            "{err}"
        );
    }
}

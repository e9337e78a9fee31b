//! What to load: a source and split per dataset part, named presets for the dataset
//! families, and the serde form a pipeline config embeds.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::turns::SplitKind;
use crate::{Error, Result};

/// The Hugging Face organisation of the TalkPlayData datasets.
pub const HUB_ORG: &str = "talkpl-ai";

/// The local demo dataset's root, relative to the working directory.
pub const DEMO_DIR: &str = "data/demo";

/// Sub-folders of a local dataset root (such as [`DEMO_DIR`]), one per part.
pub const PART_DIRS: [&str; 5] = [
    "conversations",
    "tracks",
    "users",
    "track_embeddings",
    "user_embeddings",
];

/// One dataset part: where it is and which split to read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartSpec {
    /// A local directory (`data/<split>-*.parquet` inside), a parquet file, or a hub dataset
    /// id (see [`crate::Source::parse`]).
    pub source: String,
    /// The split; `a+b` reads both. Ignored when `source` is a file.
    pub split: String,
}

impl PartSpec {
    /// A part.
    pub fn new(source: impl Into<String>, split: impl Into<String>) -> Self {
        PartSpec {
            source: source.into(),
            split: split.into(),
        }
    }

    fn hub(repo: &str, split: &str) -> Self {
        PartSpec::new(format!("{HUB_ORG}/{repo}"), split)
    }
}

impl fmt::Display for PartSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} [{}]", self.source, self.split)
    }
}

/// Everything a run reads: conversations and catalog, optionally users and embeddings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetSpec {
    /// The conversations to predict (or train on).
    pub conversations: PartSpec,
    /// Whether the conversations are a blind split (one turn per row) or full.
    #[serde(default)]
    pub split_kind: SplitKind,
    /// The track catalog.
    pub tracks: PartSpec,
    /// User profiles.
    #[serde(default)]
    pub users: Option<PartSpec>,
    /// Pre-extracted track embeddings.
    #[serde(default)]
    pub track_embeddings: Option<PartSpec>,
    /// Pre-extracted user embeddings.
    #[serde(default)]
    pub user_embeddings: Option<PartSpec>,
}

impl DatasetSpec {
    /// A local dataset root laid out like the demo: `<root>/{conversations,tracks,users,
    /// track_embeddings,user_embeddings}/data/<split>-NNNNN-of-NNNNN.parquet`, with tracks and
    /// track embeddings in split `all_tracks`, users and user embeddings in `all_users`.
    pub fn local_layout(root: &Path, conversation_split: &str, split_kind: SplitKind) -> Self {
        let part = |dir: &str, split: &str| {
            // A `./` prefix keeps a relative two-component root from reading as a hub id.
            let path = root.join(dir);
            let text = path.to_string_lossy().into_owned();
            let text = if path.is_relative() && !text.starts_with('.') {
                format!("./{text}")
            } else {
                text
            };
            PartSpec::new(text, split)
        };
        DatasetSpec {
            conversations: part(PART_DIRS[0], conversation_split),
            split_kind,
            tracks: part(PART_DIRS[1], "all_tracks"),
            users: Some(part(PART_DIRS[2], "all_users")),
            track_embeddings: Some(part(PART_DIRS[3], "all_tracks")),
            user_embeddings: Some(part(PART_DIRS[4], "all_users")),
        }
    }

    /// The same spec with another conversations split (and its kind).
    pub fn with_conversations_split(mut self, split: &str, split_kind: SplitKind) -> Self {
        self.conversations.split = split.into();
        self.split_kind = split_kind;
        self
    }
}

/// Named dataset choices. Serialised in kebab-case (`challenge-dev`, `demo-blind`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// TalkPlayData-Challenge-Dataset `train` (15,199 sessions).
    ChallengeTrain,
    /// TalkPlayData-Challenge-Dataset `test`: the development set (1,000 sessions).
    ChallengeDev,
    /// TalkPlayData-Challenge-Blind-A `test` (blind).
    ChallengeBlindA,
    /// TalkPlayData-Challenge-Blind-B `test` (blind, no user ids or profiles).
    ChallengeBlindB,
    /// TalkPlayData-2 `train`.
    #[serde(rename = "talkplaydata2-train")]
    TalkPlayData2Train,
    /// TalkPlayData-2 `test`.
    #[serde(rename = "talkplaydata2-test")]
    TalkPlayData2Test,
    /// TalkPlayData-Blind `2026` (blind, TalkPlayData-2 catalog).
    #[serde(rename = "talkplaydata-blind")]
    TalkPlayDataBlind,
    /// The local demo dataset at [`DEMO_DIR`], `train`.
    DemoTrain,
    /// The local demo dataset, `test`.
    DemoTest,
    /// The local demo dataset, `blind`.
    DemoBlind,
}

impl Preset {
    /// Every preset.
    pub const ALL: [Preset; 10] = [
        Preset::ChallengeTrain,
        Preset::ChallengeDev,
        Preset::ChallengeBlindA,
        Preset::ChallengeBlindB,
        Preset::TalkPlayData2Train,
        Preset::TalkPlayData2Test,
        Preset::TalkPlayDataBlind,
        Preset::DemoTrain,
        Preset::DemoTest,
        Preset::DemoBlind,
    ];

    /// The kebab-case name used in configs and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Preset::ChallengeTrain => "challenge-train",
            Preset::ChallengeDev => "challenge-dev",
            Preset::ChallengeBlindA => "challenge-blind-a",
            Preset::ChallengeBlindB => "challenge-blind-b",
            Preset::TalkPlayData2Train => "talkplaydata2-train",
            Preset::TalkPlayData2Test => "talkplaydata2-test",
            Preset::TalkPlayDataBlind => "talkplaydata-blind",
            Preset::DemoTrain => "demo-train",
            Preset::DemoTest => "demo-test",
            Preset::DemoBlind => "demo-blind",
        }
    }

    /// The parts this preset reads.
    pub fn spec(self) -> DatasetSpec {
        use Preset::*;
        match self {
            ChallengeTrain | ChallengeDev | ChallengeBlindA | ChallengeBlindB => {
                let (repo, split, kind) = match self {
                    ChallengeTrain => ("TalkPlayData-Challenge-Dataset", "train", SplitKind::Full),
                    ChallengeDev => ("TalkPlayData-Challenge-Dataset", "test", SplitKind::Full),
                    ChallengeBlindA => ("TalkPlayData-Challenge-Blind-A", "test", SplitKind::Blind),
                    _ => ("TalkPlayData-Challenge-Blind-B", "test", SplitKind::Blind),
                };
                DatasetSpec {
                    conversations: PartSpec::hub(repo, split),
                    split_kind: kind,
                    tracks: PartSpec::hub("TalkPlayData-Challenge-Track-Metadata", "all_tracks"),
                    users: Some(PartSpec::hub(
                        "TalkPlayData-Challenge-User-Metadata",
                        "all_users",
                    )),
                    track_embeddings: Some(PartSpec::hub(
                        "TalkPlayData-Challenge-Track-Embeddings",
                        "all_tracks",
                    )),
                    user_embeddings: Some(PartSpec::hub(
                        "TalkPlayData-Challenge-User-Embeddings",
                        "train+test_warm+test_cold",
                    )),
                }
            }
            TalkPlayData2Train | TalkPlayData2Test | TalkPlayDataBlind => {
                let (repo, split, kind) = match self {
                    TalkPlayData2Train => ("TalkPlayData-2", "train", SplitKind::Full),
                    TalkPlayData2Test => ("TalkPlayData-2", "test", SplitKind::Full),
                    _ => ("TalkPlayData-Blind", "2026", SplitKind::Blind),
                };
                let warm_cold = "test_warm+test_cold";
                DatasetSpec {
                    conversations: PartSpec::hub(repo, split),
                    split_kind: kind,
                    tracks: PartSpec::hub("TalkPlayData-2-Track-Metadata", warm_cold),
                    users: Some(PartSpec::hub("TalkPlayData-2-User-Metadata", warm_cold)),
                    track_embeddings: Some(PartSpec::hub(
                        "TalkPlayData-2-Track-Embeddings",
                        warm_cold,
                    )),
                    user_embeddings: Some(PartSpec::hub(
                        "TalkPlayData-2-User-Embeddings",
                        "train+test_warm+test_cold",
                    )),
                }
            }
            DemoTrain => DatasetSpec::local_layout(Path::new(DEMO_DIR), "train", SplitKind::Full),
            DemoTest => DatasetSpec::local_layout(Path::new(DEMO_DIR), "test", SplitKind::Full),
            DemoBlind => DatasetSpec::local_layout(Path::new(DEMO_DIR), "blind", SplitKind::Blind),
        }
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Preset {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Preset::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| Error::InvalidName {
                what: "preset",
                value: s.into(),
                reason: format!(
                    "expected one of {}",
                    Preset::ALL.map(Preset::name).join(", ")
                ),
            })
    }
}

/// A change to one part of a preset: either field may be left out to keep the preset's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PartOverride {
    /// Another source.
    pub source: Option<String>,
    /// Another split.
    pub split: Option<String>,
}

impl PartOverride {
    fn apply(&self, base: Option<PartSpec>, part: &str) -> Result<Option<PartSpec>> {
        if self.source.is_none() && self.split.is_none() {
            return Ok(base);
        }
        match (base, &self.source, &self.split) {
            (Some(base), source, split) => Ok(Some(PartSpec {
                source: source.clone().unwrap_or(base.source),
                split: split.clone().unwrap_or(base.split),
            })),
            (None, Some(source), Some(split)) => Ok(Some(PartSpec::new(source, split))),
            (None, _, _) => Err(Error::InvalidParam {
                field: format!("dataset.{part}"),
                reason: "no preset gives this part: set both `source` and `split`".into(),
            }),
        }
    }
}

/// The dataset section of a config: a preset, each part optionally overridden.
///
/// ```
/// use music_crs_data::{DatasetConfig, Preset, SplitKind};
///
/// let config: DatasetConfig = serde_json::from_str(
///     r#"{ "preset": "challenge-dev", "conversations": { "split": "train" } }"#,
/// )?;
/// let spec = config.to_spec()?;
/// assert_eq!(spec.conversations.split, "train");
/// assert_eq!(spec.tracks, Preset::ChallengeDev.spec().tracks);
/// assert_eq!(spec.split_kind, SplitKind::Full);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatasetConfig {
    /// The starting point; without one, `conversations` and `tracks` must be given fully.
    pub preset: Option<Preset>,
    /// Overrides the preset's split kind.
    pub split_kind: Option<SplitKind>,
    /// Overrides the conversations part.
    pub conversations: PartOverride,
    /// Overrides the catalog part.
    pub tracks: PartOverride,
    /// Overrides the users part.
    pub users: PartOverride,
    /// Overrides the track embeddings part.
    pub track_embeddings: PartOverride,
    /// Overrides the user embeddings part.
    pub user_embeddings: PartOverride,
}

impl DatasetConfig {
    /// The config of a preset without overrides.
    pub fn preset(preset: Preset) -> Self {
        DatasetConfig {
            preset: Some(preset),
            ..DatasetConfig::default()
        }
    }

    /// The spec: the preset's parts with the overrides applied.
    pub fn to_spec(&self) -> Result<DatasetSpec> {
        let base = self.preset.map(Preset::spec);
        let missing = |part: &str| Error::InvalidParam {
            field: format!("dataset.{part}"),
            reason: "no preset gives this part: set both `source` and `split`".into(),
        };
        let conversations = self
            .conversations
            .apply(
                base.as_ref().map(|b| b.conversations.clone()),
                "conversations",
            )?
            .ok_or_else(|| missing("conversations"))?;
        let tracks = self
            .tracks
            .apply(base.as_ref().map(|b| b.tracks.clone()), "tracks")?
            .ok_or_else(|| missing("tracks"))?;
        let users = self
            .users
            .apply(base.as_ref().and_then(|b| b.users.clone()), "users")?;
        let track_embeddings = self.track_embeddings.apply(
            base.as_ref().and_then(|b| b.track_embeddings.clone()),
            "track_embeddings",
        )?;
        let user_embeddings = self.user_embeddings.apply(
            base.as_ref().and_then(|b| b.user_embeddings.clone()),
            "user_embeddings",
        )?;
        let split_kind = self
            .split_kind
            .or(base.map(|b| b.split_kind))
            .unwrap_or_default();
        Ok(DatasetSpec {
            conversations,
            split_kind,
            tracks,
            users,
            track_embeddings,
            user_embeddings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Source;

    #[test]
    fn preset_names_round_trip_and_match_serde() {
        for preset in Preset::ALL {
            assert_eq!(preset.name().parse::<Preset>().unwrap(), preset);
            let json = serde_json::to_string(&preset).unwrap();
            assert_eq!(json, format!("\"{}\"", preset.name()));
        }
        let err = "nope".parse::<Preset>().unwrap_err().to_string();
        assert!(err.contains("challenge-dev"), "{err}");
    }

    #[test]
    fn hub_presets_name_talkpl_ai_repos() {
        let spec = Preset::ChallengeBlindB.spec();
        assert_eq!(
            spec.conversations,
            PartSpec::new("talkpl-ai/TalkPlayData-Challenge-Blind-B", "test")
        );
        assert_eq!(spec.split_kind, SplitKind::Blind);
        assert_eq!(spec.tracks.split, "all_tracks");
        assert_eq!(Preset::TalkPlayDataBlind.spec().conversations.split, "2026");
        for preset in Preset::ALL {
            let spec = preset.spec();
            for part in [
                Some(&spec.conversations),
                Some(&spec.tracks),
                spec.users.as_ref(),
            ]
            .into_iter()
            .flatten()
            {
                if !part.source.starts_with("./") {
                    assert!(
                        matches!(Source::parse(&part.source), Ok(Source::Hub { .. })),
                        "{part}"
                    );
                }
            }
        }
    }

    #[test]
    fn demo_preset_uses_the_local_layout() {
        let spec = Preset::DemoBlind.spec();
        assert_eq!(
            spec.conversations,
            PartSpec::new("./data/demo/conversations", "blind")
        );
        assert_eq!(spec.split_kind, SplitKind::Blind);
        assert_eq!(
            spec.user_embeddings,
            Some(PartSpec::new("./data/demo/user_embeddings", "all_users"))
        );
    }

    #[test]
    fn config_without_preset_needs_full_parts() {
        let err = DatasetConfig::default().to_spec().unwrap_err().to_string();
        assert!(err.contains("dataset.conversations"), "{err}");
        let config = DatasetConfig {
            conversations: PartOverride {
                source: Some("/x".into()),
                split: Some("test".into()),
            },
            tracks: PartOverride {
                source: Some("/y".into()),
                split: Some("all_tracks".into()),
            },
            split_kind: Some(SplitKind::Blind),
            ..DatasetConfig::default()
        };
        let spec = config.to_spec().unwrap();
        assert_eq!(spec.users, None);
        assert_eq!(spec.split_kind, SplitKind::Blind);
        let toml_like = serde_json::to_value(&config).unwrap();
        let back: DatasetConfig = serde_json::from_value(toml_like).unwrap();
        assert_eq!(back, config);
    }
}

//! Export of the catalog to the search engines a user moves to when one machine is no longer
//! enough (see `docs/SCALING.md`): the BM25 documents as OpenSearch / Elasticsearch bulk files,
//! the track embeddings as Qdrant point batches. Each engine loads them with its own HTTP API
//! (`curl` commands in `docs/SCALING.md`); nothing here talks to a server.
//!
//! Both exports write numbered files of bounded size, so no single request exceeds the
//! engines' default body limits, each file written atomically.
//!
//! ```
//! use music_crs::core::{Catalog, Track, TrackField};
//! use music_crs::export::{OpenSearchExport, write_opensearch};
//!
//! let catalog = Catalog::new(vec![Track {
//!     track_id: "t1".into(),
//!     track_name: vec!["Blue Monday".into()],
//!     artist_name: vec!["New Order".into()],
//!     ..Track::default()
//! }])?;
//! let dir = tempfile::tempdir()?;
//! let export = OpenSearchExport { fields: TrackField::BASELINE.to_vec(), ..Default::default() };
//! let files = write_opensearch(&catalog, &export, dir.path())?;
//! assert_eq!(files.len(), 2); // the index settings, then one bulk file
//! let bulk = std::fs::read_to_string(&files[1])?;
//! let action: serde_json::Value = serde_json::from_str(bulk.lines().next().unwrap())?;
//! assert_eq!(action["index"]["_id"], "t1");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};

use music_crs_core::{Catalog, EmbeddingTable, TrackField};
use music_crs_retrieval::Bm25Params;
use serde_json::{Value, json};

use crate::{Error, Result};

/// Documents per OpenSearch bulk file: about 2 MB of track text, far under the default
/// 100 MB `http.max_content_length`.
pub const DEFAULT_DOCS_PER_BULK_FILE: usize = 5_000;

/// Points per Qdrant batch file: 256 tracks with all six hub kinds (4,480 floats each) are
/// about 12 MB of JSON, under Qdrant's default 32 MB request limit.
pub const DEFAULT_POINTS_PER_FILE: usize = 256;

/// What the OpenSearch export writes.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenSearchExport {
    /// The index name written into every bulk action line.
    pub index: String,
    /// The catalog fields of the indexed text, as the BM25 retriever renders them.
    pub fields: Vec<TrackField>,
    /// BM25 `k1`, `b` and the stop words of the analyzer (the retriever's defaults: bm25s's).
    pub bm25: Bm25Params,
    /// Documents per bulk file.
    pub docs_per_file: usize,
}

impl Default for OpenSearchExport {
    fn default() -> Self {
        OpenSearchExport {
            index: "tracks".into(),
            fields: TrackField::BASELINE.to_vec(),
            bm25: Bm25Params::default(),
            docs_per_file: DEFAULT_DOCS_PER_BULK_FILE,
        }
    }
}

impl OpenSearchExport {
    /// Checks the values.
    pub fn validate(&self) -> Result<()> {
        self.bm25.validate()?;
        if self.index.is_empty() || self.index.chars().any(|c| c.is_whitespace() || c == '"') {
            return Err(invalid(
                "index",
                format!("{:?} is not an index name", self.index),
            ));
        }
        if self.fields.is_empty() {
            return Err(invalid("fields", "no track field to index".into()));
        }
        if self.docs_per_file == 0 {
            return Err(invalid("docs_per_file", "must be at least 1".into()));
        }
        Ok(())
    }

    /// The index settings and mappings: one analysed `text` field scored with BM25 at the
    /// retriever's `k1` and `b`, split on runs of two or more word characters, lower-cased,
    /// with the retriever's stop words (bm25s's tokenizer); the catalog fields beside it as
    /// stored keywords, for filters and display.
    pub fn index_settings(&self) -> Value {
        let tokenizer = &self.bm25.tokenizer;
        let mut filters = Vec::new();
        if tokenizer.lowercase {
            filters.push("lowercase");
        }
        let stopwords = tokenizer.stopwords.words();
        if !stopwords.is_empty() {
            filters.push("music_crs_stop");
        }
        let keyword_fields: serde_json::Map<String, Value> = self
            .fields
            .iter()
            .map(|f| (f.column_name().to_string(), json!({ "type": "keyword" })))
            .chain([("track_id".to_string(), json!({ "type": "keyword" }))])
            .collect();
        let mut properties = keyword_fields;
        properties.insert(
            "text".into(),
            json!({ "type": "text", "analyzer": "music_crs_bm25", "similarity": "music_crs_bm25" }),
        );
        json!({
            "settings": {
                "index": {
                    "similarity": {
                        "music_crs_bm25": { "type": "BM25", "k1": self.bm25.k1, "b": self.bm25.b }
                    }
                },
                "analysis": {
                    "tokenizer": {
                        // bm25s's token pattern `(?u)\b\w\w+\b`: the tokens are the matches,
                        // `\w` Unicode-aware as in Python (Java's is ASCII unless told).
                        "music_crs_words": {
                            "type": "pattern",
                            "pattern": "\\w\\w+",
                            "group": 0,
                            "flags": "UNICODE_CHARACTER_CLASS"
                        }
                    },
                    "filter": {
                        "music_crs_stop": { "type": "stop", "stopwords": stopwords, "ignore_case": false }
                    },
                    "analyzer": {
                        "music_crs_bm25": {
                            "type": "custom",
                            "tokenizer": "music_crs_words",
                            "filter": filters
                        }
                    }
                }
            },
            "mappings": { "properties": properties }
        })
    }
}

/// Writes `index.json` (the settings of [`OpenSearchExport::index_settings`]) and
/// `bulk-00000.ndjson`, `bulk-00001.ndjson`... (an `index` action line, then the document,
/// per track) into `dir`; returns the files in that order.
pub fn write_opensearch(
    catalog: &Catalog,
    export: &OpenSearchExport,
    dir: &Path,
) -> Result<Vec<PathBuf>> {
    export.validate()?;
    let settings_path = dir.join("index.json");
    let settings = serde_json::to_vec_pretty(&export.index_settings()).map_err(json_error)?;
    crate::output::write_atomically(&settings_path, &settings)?;
    let mut files = vec![settings_path];
    for (number, tracks) in catalog.tracks().chunks(export.docs_per_file).enumerate() {
        let path = dir.join(format!("bulk-{number:05}.ndjson"));
        music_crs_core::atomic::write_atomically(&path, |out| -> Result<()> {
            for track in tracks {
                let action = json!({ "index": { "_index": export.index, "_id": track.track_id } });
                let mut document = serde_json::Map::new();
                document.insert("track_id".into(), json!(track.track_id));
                for &field in &export.fields {
                    document.insert(field.column_name().into(), json!(track.field_text(field)));
                }
                document.insert("text".into(), json!(track.document_text(&export.fields)));
                serde_json::to_writer(&mut *out, &action).map_err(json_error)?;
                out.write_all(b"\n")?;
                serde_json::to_writer(&mut *out, &document).map_err(json_error)?;
                out.write_all(b"\n")?;
            }
            Ok(())
        })?;
        files.push(path);
    }
    Ok(files)
}

/// What the Qdrant export writes.
#[derive(Debug, Clone, PartialEq)]
pub struct QdrantExport {
    /// Points per batch file.
    pub points_per_file: usize,
}

impl Default for QdrantExport {
    fn default() -> Self {
        QdrantExport {
            points_per_file: DEFAULT_POINTS_PER_FILE,
        }
    }
}

/// Writes `collection.json` (one named cosine vector per table, at its dimension) and
/// `points-00000.json`, `points-00001.json`... (`{"points": [...]}` bodies of Qdrant's upsert
/// request) into `dir`; returns the files in that order.
///
/// A point's id is the track's position in the catalog (Qdrant ids are integers or UUIDs;
/// track ids are neither), its payload holds `track_id`, and it carries the vector of each
/// kind the track has (Qdrant lets a point lack a named vector). A table row that is not a
/// catalog track, or a non-finite value, is an error naming the kind and track.
pub fn write_qdrant(
    catalog: &Catalog,
    tables: &[&EmbeddingTable],
    export: &QdrantExport,
    dir: &Path,
) -> Result<Vec<PathBuf>> {
    if export.points_per_file == 0 {
        return Err(invalid("points_per_file", "must be at least 1".into()));
    }
    if tables.is_empty() {
        return Err(invalid("kinds", "no embedding table to export".into()));
    }
    for table in tables {
        check_table(catalog, table)?;
    }
    let vectors: serde_json::Map<String, Value> = tables
        .iter()
        .map(|t| {
            let config = json!({ "size": t.dim(), "distance": "Cosine" });
            (t.kind().to_string(), config)
        })
        .collect();
    let collection_path = dir.join("collection.json");
    let collection =
        serde_json::to_vec_pretty(&json!({ "vectors": vectors })).map_err(json_error)?;
    crate::output::write_atomically(&collection_path, &collection)?;
    let mut files = vec![collection_path];
    let tracks = catalog.tracks();
    for (number, start) in (0..tracks.len())
        .step_by(export.points_per_file)
        .enumerate()
    {
        let end = (start + export.points_per_file).min(tracks.len());
        let path = dir.join(format!("points-{number:05}.json"));
        music_crs_core::atomic::write_atomically(&path, |out| -> Result<()> {
            out.write_all(b"{\"points\":[")?;
            for (position, track) in tracks[start..end].iter().enumerate() {
                let id = start + position;
                let mut vectors = serde_json::Map::new();
                for table in tables {
                    if let Some(v) = table.get(&track.track_id) {
                        vectors.insert(table.kind().into(), json!(v));
                    }
                }
                let point = json!({
                    "id": id,
                    "vector": vectors,
                    "payload": { "track_id": track.track_id },
                });
                if position > 0 {
                    out.write_all(b",")?;
                }
                serde_json::to_writer(&mut *out, &point).map_err(json_error)?;
            }
            out.write_all(b"]}\n")?;
            Ok(())
        })?;
        files.push(path);
    }
    Ok(files)
}

/// Every present row of `table` is a catalog track with finite values: Qdrant would refuse a
/// NaN in the middle of a batch, and a vector for an unknown track would be silently lost.
fn check_table(catalog: &Catalog, table: &EmbeddingTable) -> Result<()> {
    for (row, (id, &present)) in table.ids().iter().zip(table.present()).enumerate() {
        if !present {
            continue;
        }
        if catalog.get(id).is_none() {
            return Err(invalid(
                "kinds",
                format!(
                    "{} row {row}: track {id:?} is not in the catalog",
                    table.kind()
                ),
            ));
        }
        if table
            .row(row)
            .is_some_and(|v| v.iter().any(|x| !x.is_finite()))
        {
            return Err(invalid(
                "kinds",
                format!(
                    "{} row {row}: track {id:?} has a non-finite value",
                    table.kind()
                ),
            ));
        }
    }
    Ok(())
}

fn invalid(key: &str, reason: String) -> Error {
    Error::InvalidSetting {
        key: format!("export {key}"),
        reason,
    }
}

fn json_error(e: serde_json::Error) -> Error {
    Error::Io(std::io::Error::other(e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use music_crs_core::Track;
    use music_crs_retrieval::StopWords;

    fn track(id: &str, name: &str, artist: &str) -> Track {
        Track {
            track_id: id.into(),
            track_name: vec![name.into()],
            artist_name: vec![artist.into()],
            album_name: vec!["An Album".into()],
            tag_list: vec!["synth pop".into(), "80s".into()],
            release_date: Some("1983-03-07".into()),
            ..Track::default()
        }
    }

    fn catalog(count: usize) -> Catalog {
        Catalog::new(
            (0..count)
                .map(|i| track(&format!("t{i}"), &format!("Song \"{i}\"\n"), "Ärtist"))
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn bulk_files_pair_each_action_with_its_document_and_split_by_size() {
        let dir = tempfile::tempdir().unwrap();
        let export = OpenSearchExport {
            docs_per_file: 4,
            ..Default::default()
        };
        let catalog = catalog(10);
        let files = write_opensearch(&catalog, &export, dir.path()).unwrap();
        let names: Vec<_> = files
            .iter()
            .map(|f| f.file_name().unwrap().to_owned())
            .collect();
        assert_eq!(
            names,
            [
                "index.json",
                "bulk-00000.ndjson",
                "bulk-00001.ndjson",
                "bulk-00002.ndjson"
            ]
        );
        let mut ids = Vec::new();
        for file in &files[1..] {
            let text = std::fs::read_to_string(file).unwrap();
            assert!(text.ends_with('\n'), "the bulk API wants a final newline");
            let lines: Vec<Value> = text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            for pair in lines.chunks(2) {
                let id = pair[0]["index"]["_id"].as_str().unwrap().to_string();
                assert_eq!(pair[0]["index"]["_index"], "tracks");
                assert_eq!(pair[1]["track_id"], id.as_str());
                let track = catalog.get(&id).unwrap();
                assert_eq!(pair[1]["text"], track.document_text(&export.fields));
                assert_eq!(pair[1]["artist_name"], "Ärtist");
                ids.push(id);
            }
        }
        let expected: Vec<String> = (0..10).map(|i| format!("t{i}")).collect();
        assert_eq!(ids, expected);
    }

    #[test]
    fn settings_carry_the_retrievers_bm25_and_tokenizer() {
        let export = OpenSearchExport::default();
        let settings = export.index_settings();
        let bm25 = &settings["settings"]["index"]["similarity"]["music_crs_bm25"];
        assert_eq!(bm25["k1"].as_f64().unwrap(), export.bm25.k1);
        assert_eq!(bm25["b"].as_f64().unwrap(), export.bm25.b);
        let stop = settings["settings"]["analysis"]["filter"]["music_crs_stop"]["stopwords"]
            .as_array()
            .unwrap();
        assert_eq!(stop.len(), StopWords::English.words().len());
        assert!(stop.iter().any(|w| w == "the"));
        assert_eq!(
            settings["settings"]["analysis"]["analyzer"]["music_crs_bm25"]["filter"],
            json!(["lowercase", "music_crs_stop"])
        );
        assert_eq!(
            settings["mappings"]["properties"]["text"]["similarity"],
            "music_crs_bm25"
        );
        assert_eq!(
            settings["mappings"]["properties"]["track_id"]["type"],
            "keyword"
        );
        let words = &settings["settings"]["analysis"]["tokenizer"]["music_crs_words"];
        assert_eq!(words["pattern"], r"\w\w+");
        assert_eq!(words["flags"], "UNICODE_CHARACTER_CLASS");

        let mut plain = OpenSearchExport::default();
        plain.bm25.tokenizer.stopwords = StopWords::None;
        plain.bm25.tokenizer.lowercase = false;
        let filters =
            &plain.index_settings()["settings"]["analysis"]["analyzer"]["music_crs_bm25"]["filter"];
        assert_eq!(filters, &json!([]));
    }

    #[test]
    fn bad_settings_are_named() {
        let dir = tempfile::tempdir().unwrap();
        for (export, key) in [
            (
                OpenSearchExport {
                    index: "my index".into(),
                    ..Default::default()
                },
                "index",
            ),
            (
                OpenSearchExport {
                    fields: Vec::new(),
                    ..Default::default()
                },
                "fields",
            ),
            (
                OpenSearchExport {
                    docs_per_file: 0,
                    ..Default::default()
                },
                "docs_per_file",
            ),
        ] {
            let err = write_opensearch(&catalog(2), &export, dir.path()).unwrap_err();
            assert!(err.to_string().contains(key), "{err}");
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    fn table(kind: &str, dim: usize, rows: Vec<(String, Option<Vec<f32>>)>) -> EmbeddingTable {
        EmbeddingTable::new(kind, dim, rows).unwrap()
    }

    #[test]
    fn qdrant_points_carry_named_vectors_and_skip_missing_ones() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = catalog(5);
        let audio = table(
            "audio",
            2,
            (0..5)
                .map(|i| (format!("t{i}"), (i != 3).then(|| vec![i as f32, 1.0])))
                .collect(),
        );
        let cf = table("cf-bpr", 3, vec![("t4".into(), Some(vec![0.5, 0.25, 1.0]))]);
        let export = QdrantExport { points_per_file: 2 };
        let files = write_qdrant(&catalog, &[&audio, &cf], &export, dir.path()).unwrap();
        assert_eq!(files.len(), 4, "collection + ceil(5 / 2) batches");
        let collection: Value = serde_json::from_slice(&std::fs::read(&files[0]).unwrap()).unwrap();
        assert_eq!(
            collection["vectors"]["audio"],
            json!({"size": 2, "distance": "Cosine"})
        );
        assert_eq!(collection["vectors"]["cf-bpr"]["size"], 3);
        let mut points = Vec::new();
        for file in &files[1..] {
            let batch: Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
            points.extend(batch["points"].as_array().unwrap().clone());
        }
        assert_eq!(points.len(), 5);
        for (i, point) in points.iter().enumerate() {
            assert_eq!(point["id"], i);
            assert_eq!(point["payload"]["track_id"], format!("t{i}"));
        }
        assert_eq!(points[1]["vector"], json!({"audio": [1.0, 1.0]}));
        assert_eq!(
            points[3]["vector"],
            json!({}),
            "t3 has no vector of either kind"
        );
        assert_eq!(
            points[4]["vector"],
            json!({"audio": [4.0, 1.0], "cf-bpr": [0.5, 0.25, 1.0]})
        );
    }

    #[test]
    fn qdrant_refuses_unknown_tracks_and_non_finite_values() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = catalog(2);
        let stranger = table("audio", 1, vec![("nope".into(), Some(vec![1.0]))]);
        let err = write_qdrant(&catalog, &[&stranger], &QdrantExport::default(), dir.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("audio row 0") && err.contains("nope"), "{err}");
        let nan = table(
            "image",
            1,
            vec![
                ("t0".into(), Some(vec![1.0])),
                ("t1".into(), Some(vec![f32::NAN])),
            ],
        );
        let err = write_qdrant(&catalog, &[&nan], &QdrantExport::default(), dir.path())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("image row 1") && err.contains("non-finite"),
            "{err}"
        );
        assert!(
            write_qdrant(&catalog, &[], &QdrantExport::default(), dir.path()).is_err(),
            "no table"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}

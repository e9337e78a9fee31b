//! Saving and loading a [`Bm25Index`]: one little-endian binary file with a format version and
//! a checksum, written to a temporary file and renamed into place.
//!
//! Layout of `bm25.index`:
//!
//! ```text
//! magic "MCRSBM25" | format version u32 | payload length u64 | FNV-1a-64 of payload u64 | payload
//! payload: params JSON (u32 length + bytes)
//!          document count u64, then per document: id (u32 length + UTF-8 bytes), length u32
//!          avgdl f64
//!          term count u64, then per term in id order: text (u32 length + UTF-8 bytes)
//!          term count + 1 offsets u64
//!          postings: per posting doc u32, weight f32
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::{Bm25Index, Bm25Params, Posting};
use crate::hash::{FNV_OFFSET, FxBuildHasher, fnv1a};
use crate::tokenizer::Tokenizer;
use crate::{Error, Result};

/// The file name of a saved index inside its directory.
pub const INDEX_FILE_NAME: &str = "bm25.index";
/// The version of the saved-index format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

const MAGIC: &[u8; 8] = b"MCRSBM25";
const HEADER_LEN: usize = 8 + 4 + 8 + 8;

impl Bm25Index {
    /// Saves the index as `dir/bm25.index` (creating `dir`), atomically: a temporary file is
    /// written, then renamed.
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<PathBuf> {
        let dir = dir.as_ref();
        fs_err::create_dir_all(dir)?;
        let payload = self.encode_payload()?;
        let mut file = Vec::with_capacity(HEADER_LEN + payload.len());
        file.extend_from_slice(MAGIC);
        file.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        file.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        file.extend_from_slice(&fnv1a(FNV_OFFSET, &payload).to_le_bytes());
        file.extend_from_slice(&payload);
        let path = dir.join(INDEX_FILE_NAME);
        music_crs_core::atomic::write_bytes_atomically(&path, &file)?;
        Ok(path)
    }

    /// Loads an index saved by [`Bm25Index::save`] from `dir`. A missing, truncated, corrupt
    /// or differently versioned file is an error naming the file and the fault.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self> {
        let path = dir.as_ref().join(INDEX_FILE_NAME);
        let bytes = fs_err::read(&path)?;
        Self::from_saved_bytes(&bytes, &path)
    }

    /// [`Bm25Index::load`] on the bytes of a saved index; `path` names them in errors.
    pub fn from_saved_bytes(bytes: &[u8], path: &Path) -> Result<Self> {
        let corrupt = |reason: String| Error::CorruptFile {
            path: path.to_path_buf(),
            reason,
        };
        if bytes.len() < HEADER_LEN {
            return Err(corrupt(format!(
                "truncated: {} bytes, shorter than the {HEADER_LEN}-byte header",
                bytes.len()
            )));
        }
        if &bytes[..8] != MAGIC {
            return Err(corrupt(
                "not a music-crs BM25 index (bad magic bytes)".into(),
            ));
        }
        let version = u32::from_le_bytes(bytes[8..12].try_into().unwrap_or_default());
        if version != FORMAT_VERSION {
            return Err(corrupt(format!(
                "index format version {version}, this build reads version {FORMAT_VERSION}; rebuild the index"
            )));
        }
        let payload_len = u64::from_le_bytes(bytes[12..20].try_into().unwrap_or_default());
        let checksum = u64::from_le_bytes(bytes[20..28].try_into().unwrap_or_default());
        let payload = &bytes[HEADER_LEN..];
        if payload.len() as u64 != payload_len {
            return Err(corrupt(format!(
                "truncated or padded: the header announces {payload_len} payload bytes, the file holds {}",
                payload.len()
            )));
        }
        if fnv1a(FNV_OFFSET, payload) != checksum {
            return Err(corrupt("checksum mismatch: the file is corrupt".into()));
        }
        Self::decode_payload(payload).map_err(corrupt)
    }

    fn encode_payload(&self) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(self.postings.len() * 8 + self.doc_ids.len() * 48);
        let params = serde_json::to_vec(&self.params).map_err(|e| Error::InvalidParameter {
            name: "bm25 params",
            reason: e.to_string(),
        })?;
        put_bytes(&mut out, &params);
        out.extend_from_slice(&(self.doc_ids.len() as u64).to_le_bytes());
        for (id, &len) in self.doc_ids.iter().zip(&self.doc_lengths) {
            put_bytes(&mut out, id.as_bytes());
            out.extend_from_slice(&len.to_le_bytes());
        }
        out.extend_from_slice(&self.avg_doc_len.to_le_bytes());
        let mut terms: Vec<(&str, u32)> = self.vocab.iter().map(|(t, &id)| (&**t, id)).collect();
        terms.sort_unstable_by_key(|&(_, id)| id);
        out.extend_from_slice(&(terms.len() as u64).to_le_bytes());
        for (term, _) in &terms {
            put_bytes(&mut out, term.as_bytes());
        }
        for &offset in &self.offsets {
            out.extend_from_slice(&(offset as u64).to_le_bytes());
        }
        for posting in &self.postings {
            out.extend_from_slice(&posting.doc.to_le_bytes());
            out.extend_from_slice(&posting.weight.to_le_bytes());
        }
        Ok(out)
    }

    fn decode_payload(payload: &[u8]) -> std::result::Result<Self, String> {
        let mut reader = Reader {
            bytes: payload,
            at: 0,
        };
        let params: Bm25Params = serde_json::from_slice(reader.bytes_field("params")?)
            .map_err(|e| format!("bad params: {e}"))?;
        params.validate().map_err(|e| format!("bad params: {e}"))?;
        let tokenizer = Tokenizer::new(params.tokenizer.clone()).map_err(|e| e.to_string())?;
        let n_docs = reader.count("document count", 12)?;
        let mut doc_ids = Vec::with_capacity(n_docs);
        let mut doc_lengths = Vec::with_capacity(n_docs);
        for doc in 0..n_docs {
            doc_ids.push(reader.string(&format!("id of document {doc}"))?);
            doc_lengths.push(reader.u32(&format!("length of document {doc}"))?);
        }
        let avg_doc_len = f64::from_le_bytes(reader.array("avgdl")?);
        let n_terms = reader.count("term count", 4)?;
        let mut vocab: HashMap<Box<str>, u32, FxBuildHasher> = HashMap::default();
        vocab.reserve(n_terms);
        for term in 0..n_terms {
            let text = reader.string(&format!("term {term}"))?;
            // Queries rely on it: a stop word in the vocabulary would match where bm25s drops it.
            if tokenizer.is_stopword(&text) {
                return Err(format!("term {term} ({text:?}) is a stop word"));
            }
            if vocab.insert(text.into_boxed_str(), term as u32).is_some() {
                return Err(format!("term {term} appears twice"));
            }
        }
        let mut offsets = Vec::with_capacity(n_terms + 1);
        for term in 0..=n_terms {
            let offset = u64::from_le_bytes(reader.array(&format!("offset {term}"))?);
            let offset = usize::try_from(offset).map_err(|_| format!("offset {term} too large"))?;
            if offsets.last().is_some_and(|&prev| offset < prev) || (term == 0 && offset != 0) {
                return Err(format!("posting offsets are not increasing at term {term}"));
            }
            offsets.push(offset);
        }
        let n_postings = offsets.last().copied().unwrap_or(0);
        if reader.remaining() != n_postings.saturating_mul(8) {
            return Err(format!(
                "expected {n_postings} postings ({} bytes), found {} bytes",
                n_postings.saturating_mul(8),
                reader.remaining()
            ));
        }
        let mut postings = Vec::with_capacity(n_postings);
        for i in 0..n_postings {
            let doc = reader.u32("posting")?;
            let weight = f32::from_le_bytes(reader.array("posting")?);
            if doc as usize >= n_docs {
                return Err(format!("posting {i} points at document {doc} of {n_docs}"));
            }
            postings.push(Posting { doc, weight });
        }
        Ok(Bm25Index::assemble(
            params,
            tokenizer,
            doc_ids,
            doc_lengths,
            avg_doc_len,
            vocab,
            offsets,
            postings,
        ))
    }
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// Bounds-checked little-endian reads; every failure says what was being read.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }

    fn take(&mut self, len: usize, what: &str) -> std::result::Result<&'a [u8], String> {
        if self.remaining() < len {
            return Err(format!("truncated while reading {what}"));
        }
        let slice = &self.bytes[self.at..self.at + len];
        self.at += len;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self, what: &str) -> std::result::Result<[u8; N], String> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    fn u32(&mut self, what: &str) -> std::result::Result<u32, String> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    /// A u64 count whose items take at least `min_item_bytes` each (so a corrupt count cannot
    /// trigger a huge allocation).
    fn count(&mut self, what: &str, min_item_bytes: usize) -> std::result::Result<usize, String> {
        let count = u64::from_le_bytes(self.array(what)?);
        match usize::try_from(count) {
            Ok(count) if count.saturating_mul(min_item_bytes) <= self.remaining() => Ok(count),
            _ => Err(format!("{what} {count} does not fit in the file")),
        }
    }

    fn bytes_field(&mut self, what: &str) -> std::result::Result<&'a [u8], String> {
        let len = self.u32(what)? as usize;
        self.take(len, what)
    }

    fn string(&mut self, what: &str) -> std::result::Result<String, String> {
        let bytes = self.bytes_field(what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| format!("{what} is not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Bm25Index {
        let docs = [
            ("a", "track_name: Wild Ones\nartist_name: Flo Rida\n"),
            ("b", "track_name: Feel Good Inc\nartist_name: Gorillaz\n"),
            ("c", "track_name: Good Feeling\nartist_name: Flo Rida\n"),
        ];
        Bm25Index::build(
            docs.iter().map(|(id, t)| (id.to_string(), t.to_string())),
            Bm25Params::default(),
        )
        .unwrap()
    }

    #[test]
    fn round_trip_keeps_results() {
        let dir = tempfile::tempdir().unwrap();
        let index = sample();
        let path = index.save(dir.path()).unwrap();
        assert!(path.ends_with(INDEX_FILE_NAME));
        assert!(!dir.path().join(format!("{INDEX_FILE_NAME}.tmp")).exists());
        let loaded = Bm25Index::load(dir.path()).unwrap();
        assert_eq!(loaded.doc_ids(), index.doc_ids());
        assert_eq!(loaded.params(), index.params());
        for query in ["flo rida", "good", "gorillaz feel", "nothing"] {
            assert_eq!(loaded.search(query, 3), index.search(query, 3));
            assert_eq!(loaded.scores(query), index.scores(query));
        }
    }

    fn saved_bytes() -> (tempfile::TempDir, PathBuf, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let path = sample().save(dir.path()).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        (dir, path, bytes)
    }

    fn load_error(dir: &Path) -> String {
        Bm25Index::load(dir).unwrap_err().to_string()
    }

    #[test]
    fn truncated_file_is_reported() {
        let (dir, path, bytes) = saved_bytes();
        std::fs::write(&path, &bytes[..bytes.len() - 5]).unwrap();
        let err = load_error(dir.path());
        assert!(
            err.contains("truncated") && err.contains(INDEX_FILE_NAME),
            "{err}"
        );
        std::fs::write(&path, &bytes[..10]).unwrap();
        assert!(load_error(dir.path()).contains("header"));
    }

    #[test]
    fn corrupt_byte_fails_the_checksum() {
        let (dir, path, mut bytes) = saved_bytes();
        let last = bytes.len() - 3;
        bytes[last] ^= 0x40;
        std::fs::write(&path, &bytes).unwrap();
        assert!(load_error(dir.path()).contains("checksum"));
    }

    #[test]
    fn other_version_or_format_is_reported() {
        let (dir, path, mut bytes) = saved_bytes();
        bytes[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
        std::fs::write(&path, &bytes).unwrap();
        let err = load_error(dir.path());
        assert!(err.contains("format version 2"), "{err}");
        std::fs::write(
            &path,
            b"{\"not\": \"an index at all, just some json text\"}",
        )
        .unwrap();
        assert!(load_error(dir.path()).contains("magic"));
    }

    #[test]
    fn consistent_checksum_but_bad_structure_is_reported() {
        // A payload whose checksum is right but whose postings point past the documents.
        let (dir, path, bytes) = saved_bytes();
        let mut payload = bytes[HEADER_LEN..].to_vec();
        let posting_doc_at = payload.len() - 8;
        payload[posting_doc_at..posting_doc_at + 4].copy_from_slice(&99u32.to_le_bytes());
        let mut file = bytes[..20].to_vec();
        file.extend_from_slice(&fnv1a(FNV_OFFSET, &payload).to_le_bytes());
        file.extend_from_slice(&payload);
        std::fs::write(&path, &file).unwrap();
        let err = load_error(dir.path());
        assert!(err.contains("points at document 99"), "{err}");
    }

    #[test]
    fn stop_word_in_the_vocabulary_is_reported() {
        // Queries skip the stop-word test because no saved vocabulary holds one: a file
        // claiming the English list over a vocabulary with "the" must not load.
        let keep_all = Bm25Params {
            tokenizer: crate::TokenizerParams {
                stopwords: crate::StopWords::None,
                ..Default::default()
            },
            ..Bm25Params::default()
        };
        let index =
            Bm25Index::build([("a".to_string(), "the song".to_string())], keep_all).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = index.save(dir.path()).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let old_params_len =
            u32::from_le_bytes(bytes[HEADER_LEN..HEADER_LEN + 4].try_into().unwrap()) as usize;
        let params = serde_json::to_vec(&Bm25Params::default()).unwrap();
        let mut payload = (params.len() as u32).to_le_bytes().to_vec();
        payload.extend_from_slice(&params);
        payload.extend_from_slice(&bytes[HEADER_LEN + 4 + old_params_len..]);
        let mut file = bytes[..12].to_vec();
        file.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        file.extend_from_slice(&fnv1a(FNV_OFFSET, &payload).to_le_bytes());
        file.extend_from_slice(&payload);
        std::fs::write(&path, &file).unwrap();
        let err = load_error(dir.path());
        assert!(
            err.contains("\"the\") is a stop word") && err.contains(INDEX_FILE_NAME),
            "{err}"
        );
    }

    #[test]
    fn missing_file_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let err = load_error(dir.path());
        assert!(err.contains(INDEX_FILE_NAME), "{err}");
    }
}

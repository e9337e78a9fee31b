//! A binary file of labelled vectors: the on-disk form of catalog embedding caches and of
//! saved exact indexes.
//!
//! Layout, little-endian: the magic `MCRSVEC1`, a `u32` format version, the `u32` dimension,
//! the `u64` row count, a `u32`-prefixed UTF-8 key (what the vectors are: model, fields...),
//! one `u32`-prefixed UTF-8 id per row, the `f32` matrix row by row, and a `u64` checksum of
//! everything before it, so truncation and corruption are reported instead of misread.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

const MAGIC: &[u8; 8] = b"MCRSVEC1";
const VERSION: u32 = 1;

/// Labelled vectors as stored in a vector file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VectorFile {
    /// What the vectors are (e.g. the encoder and the document fields); checked on load by
    /// callers that need a particular content.
    pub key: String,
    /// Dimensions per row.
    pub dim: usize,
    /// One id per row.
    pub ids: Vec<String>,
    /// The row-major matrix, `ids.len() * dim` values.
    pub data: Vec<f32>,
}

impl VectorFile {
    /// Writes the file through a temporary sibling that is renamed into place, so readers never
    /// see half a file.
    pub fn save(&self, path: &Path) -> Result<()> {
        if self.data.len() != self.ids.len() * self.dim {
            return Err(Error::DimensionMismatch {
                what: format!("vectors for {}", path.display()),
                expected: self.ids.len() * self.dim,
                found: self.data.len(),
            });
        }
        let dim = u32::try_from(self.dim).map_err(|_| Error::InvalidParameter {
            name: "dim",
            reason: format!("{} does not fit the file format", self.dim),
        })?;
        let mut bytes = Vec::with_capacity(32 + self.key.len() + self.data.len() * 4);
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&VERSION.to_le_bytes());
        bytes.extend_from_slice(&dim.to_le_bytes());
        bytes.extend_from_slice(&(self.ids.len() as u64).to_le_bytes());
        push_str(&mut bytes, &self.key)?;
        for id in &self.ids {
            push_str(&mut bytes, id)?;
        }
        for value in &self.data {
            bytes.extend_from_slice(&value.to_le_bytes());
        }
        let checksum = checksum(&bytes);
        bytes.extend_from_slice(&checksum.to_le_bytes());
        write_atomically(path, &bytes)
    }

    /// Reads a file written by [`VectorFile::save`]; a wrong magic, version, size or checksum
    /// is an [`Error::CorruptFile`] naming the path.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = fs_err::read(path)?;
        let corrupt = |reason: &str| Error::CorruptFile {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        };
        if bytes.len() < MAGIC.len() + 8 || &bytes[..MAGIC.len()] != MAGIC {
            return Err(corrupt("not a music-crs vector file (bad magic)"));
        }
        let (body, tail) = bytes.split_at(bytes.len() - 8);
        let stored = u64::from_le_bytes(tail.try_into().map_err(|_| corrupt("truncated"))?);
        if checksum(body) != stored {
            return Err(corrupt("checksum mismatch (truncated or corrupt file)"));
        }
        let mut reader = Reader {
            bytes: body,
            pos: MAGIC.len(),
        };
        let version = reader.u32().ok_or_else(|| corrupt("truncated header"))?;
        if version != VERSION {
            return Err(corrupt(&format!(
                "format version {version}, expected {VERSION}"
            )));
        }
        let dim = reader.u32().ok_or_else(|| corrupt("truncated header"))? as usize;
        let rows = reader.u64().ok_or_else(|| corrupt("truncated header"))?;
        let key = reader.string().ok_or_else(|| corrupt("bad key"))?;
        let rows = usize::try_from(rows).map_err(|_| corrupt("row count too large"))?;
        // Each row needs at least its 4-byte id length: refuse absurd counts before allocating.
        if rows > body.len() / 4 {
            return Err(corrupt("row count larger than the file"));
        }
        let mut ids = Vec::with_capacity(rows);
        for row in 0..rows {
            ids.push(
                reader
                    .string()
                    .ok_or_else(|| corrupt(&format!("bad id at row {row}")))?,
            );
        }
        let expected = rows
            .checked_mul(dim)
            .and_then(|n| n.checked_mul(4))
            .ok_or_else(|| corrupt("matrix size overflows"))?;
        let rest = &body[reader.pos..];
        if rest.len() != expected {
            return Err(corrupt(&format!(
                "matrix has {} bytes, expected {expected} for {rows} x {dim}",
                rest.len()
            )));
        }
        let data = rest
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Ok(VectorFile {
            key,
            dim,
            ids,
            data,
        })
    }
}

fn push_str(bytes: &mut Vec<u8>, s: &str) -> Result<()> {
    let len = u32::try_from(s.len()).map_err(|_| Error::InvalidParameter {
        name: "id",
        reason: "an id or key longer than 4 GiB".into(),
    })?;
    bytes.extend_from_slice(&len.to_le_bytes());
    bytes.extend_from_slice(s.as_bytes());
    Ok(())
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let end = self.pos.checked_add(n)?;
        let slice = self.bytes.get(self.pos..end)?;
        self.pos = end;
        Some(slice)
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn string(&mut self) -> Option<String> {
        let len = self.u32()? as usize;
        String::from_utf8(self.take(len)?.to_vec()).ok()
    }
}

/// A 64-bit FNV-1a-style checksum over 8-byte words (bytes would be 8x slower on large
/// matrices; this only guards against truncation and bit rot, not tampering).
pub(crate) fn checksum(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET ^ bytes.len() as u64;
    let words = bytes.chunks_exact(8);
    let tail = words.remainder();
    for word in words {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        hash = (hash ^ u64::from_le_bytes(w)).wrapping_mul(PRIME);
    }
    for &b in tail {
        hash = (hash ^ u64::from(b)).wrapping_mul(PRIME);
    }
    hash
}

/// Writes `bytes` to a temporary sibling of `path`, then renames it into place.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs_err::create_dir_all(parent)?;
    }
    let tmp = temp_sibling(path);
    let mut file = fs_err::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    fs_err::rename(&tmp, path)?;
    Ok(())
}

/// A hidden sibling path unique to this process, for write-then-rename.
pub(crate) fn temp_sibling(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> VectorFile {
        VectorFile {
            key: "model=x;fields=track_name".into(),
            dim: 3,
            ids: vec!["a".into(), "b".into()],
            data: vec![1.0, 2.0, 3.0, -4.0, 5.5, 0.0],
        }
    }

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.bin");
        sample().save(&path).unwrap();
        assert_eq!(VectorFile::load(&path).unwrap(), sample());
    }

    #[test]
    fn corruption_and_truncation_are_named_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.bin");
        sample().save(&path).unwrap();
        let good = std::fs::read(&path).unwrap();

        let mut flipped = good.clone();
        flipped[30] ^= 0x55;
        std::fs::write(&path, &flipped).unwrap();
        let err = VectorFile::load(&path).unwrap_err();
        assert!(matches!(err, Error::CorruptFile { .. }), "{err}");
        assert!(err.to_string().contains("v.bin"), "{err}");

        std::fs::write(&path, &good[..good.len() - 5]).unwrap();
        assert!(matches!(
            VectorFile::load(&path),
            Err(Error::CorruptFile { .. })
        ));

        std::fs::write(&path, b"hello").unwrap();
        assert!(matches!(
            VectorFile::load(&path),
            Err(Error::CorruptFile { .. })
        ));

        let missing = VectorFile::load(&dir.path().join("nope.bin")).unwrap_err();
        assert!(missing.to_string().contains("nope.bin"), "{missing}");
    }

    #[test]
    fn inconsistent_matrix_is_refused_on_save() {
        let mut bad = sample();
        bad.data.pop();
        let dir = tempfile::tempdir().unwrap();
        assert!(bad.save(&dir.path().join("x")).is_err());
    }
}

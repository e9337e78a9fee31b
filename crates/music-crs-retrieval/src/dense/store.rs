//! A binary file of labelled vectors: the on-disk form of catalog embedding caches and of
//! saved exact indexes.
//!
//! Layout, little-endian: the magic `MCRSVEC1`, a `u32` format version, the `u32` dimension,
//! the `u64` row count, a `u32`-prefixed UTF-8 key (what the vectors are: model, fields...),
//! one `u32`-prefixed UTF-8 id per row, the `f32` matrix row by row, and a `u64` checksum of
//! everything before it, so truncation and corruption are reported instead of misread.
//!
//! The framing (magic, version, trailing checksum, write-then-rename) and the id-map codec are
//! shared with the HNSW index manifest.

use std::io::Read;
use std::path::Path;

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
        let size = 16 + self.key.len() + self.data.len() * 4;
        save_framed(path, MAGIC, VERSION, size, |bytes| {
            bytes.extend_from_slice(&dim.to_le_bytes());
            bytes.extend_from_slice(&(self.ids.len() as u64).to_le_bytes());
            push_str(bytes, &self.key)?;
            push_strs(bytes, &self.ids)?;
            for value in &self.data {
                bytes.extend_from_slice(&value.to_le_bytes());
            }
            Ok(())
        })
    }

    /// Reads a file written by [`VectorFile::save`]; a wrong magic, version, size or checksum
    /// is an [`Error::CorruptFile`] naming the path.
    pub fn load(path: &Path) -> Result<Self> {
        Self::from_bytes(fs_err::read(path)?, path)
    }

    /// [`VectorFile::load`] on the bytes of a file; `path` names them in errors.
    pub fn from_bytes(bytes: Vec<u8>, path: &Path) -> Result<Self> {
        let framed = framed_from_bytes(path, bytes, MAGIC, VERSION, "a music-crs vector file")?;
        let corrupt = |reason: String| corrupt_file(path, reason);
        let mut reader = framed.reader();
        let dim = reader
            .u32()
            .ok_or_else(|| corrupt("truncated header".into()))? as usize;
        let rows = reader
            .u64()
            .ok_or_else(|| corrupt("truncated header".into()))?;
        let key = reader.string().ok_or_else(|| corrupt("bad key".into()))?;
        let ids = reader.strings(rows).map_err(corrupt)?;
        let rows = ids.len();
        let expected = rows
            .checked_mul(dim)
            .and_then(|n| n.checked_mul(4))
            .ok_or_else(|| corrupt("matrix size overflows".into()))?;
        let rest = reader.rest();
        if rest.len() != expected {
            return Err(corrupt(format!(
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

/// An [`Error::CorruptFile`] naming `path`.
pub(crate) fn corrupt_file(path: &Path, reason: impl Into<String>) -> Error {
    Error::CorruptFile {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Writes a framed file atomically: the 8-byte `magic`, a `u32` `version`, the body that
/// `body` appends (about `size` bytes), and a `u64` checksum of everything before it.
pub(crate) fn save_framed(
    path: &Path,
    magic: &[u8; 8],
    version: u32,
    size: usize,
    body: impl FnOnce(&mut Vec<u8>) -> Result<()>,
) -> Result<()> {
    let mut bytes = Vec::with_capacity(magic.len() + 12 + size);
    bytes.extend_from_slice(magic);
    bytes.extend_from_slice(&version.to_le_bytes());
    body(&mut bytes)?;
    let checksum = checksum(&bytes);
    bytes.extend_from_slice(&checksum.to_le_bytes());
    write_atomically(path, &bytes)
}

/// The body of a file written by [`save_framed`], its magic, checksum and version checked.
pub(crate) struct Framed {
    bytes: Vec<u8>,
}

/// Magic plus version: where a framed body starts.
const FRAME_HEADER: usize = 12;

impl Framed {
    /// A reader over the body (after magic and version, before the checksum).
    pub(crate) fn reader(&self) -> Reader<'_> {
        Reader {
            bytes: &self.bytes[..self.bytes.len() - 8],
            pos: FRAME_HEADER,
        }
    }
}

/// Reads a framed file; a missing file names the path (fs-err), a wrong magic, checksum or
/// version is an [`Error::CorruptFile`]. `what` names the format in errors.
pub(crate) fn load_framed(
    path: &Path,
    magic: &[u8; 8],
    version: u32,
    what: &str,
) -> Result<Framed> {
    framed_from_bytes(path, fs_err::read(path)?, magic, version, what)
}

/// [`load_framed`] on the bytes of `path`.
pub(crate) fn framed_from_bytes(
    path: &Path,
    bytes: Vec<u8>,
    magic: &[u8; 8],
    version: u32,
    what: &str,
) -> Result<Framed> {
    if bytes.len() < FRAME_HEADER + 8 || &bytes[..magic.len()] != magic {
        return Err(corrupt_file(path, format!("not {what} (bad magic)")));
    }
    let (body, tail) = bytes.split_at(bytes.len() - 8);
    let mut stored = [0u8; 8];
    stored.copy_from_slice(tail);
    if checksum(body) != u64::from_le_bytes(stored) {
        return Err(corrupt_file(
            path,
            "checksum mismatch (truncated or corrupt file)",
        ));
    }
    let mut found = [0u8; 4];
    found.copy_from_slice(&body[magic.len()..FRAME_HEADER]);
    let found = u32::from_le_bytes(found);
    if found != version {
        return Err(corrupt_file(
            path,
            format!("format version {found}, expected {version}"),
        ));
    }
    Ok(Framed { bytes })
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

/// Appends `u32`-prefixed strings (an id map; its length is stored by the caller).
pub(crate) fn push_strs(bytes: &mut Vec<u8>, strings: &[String]) -> Result<()> {
    strings.iter().try_for_each(|s| push_str(bytes, s))
}

/// Reads the body of a framed file.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let slice = self.bytes.get(self.pos..end)?;
        self.pos = end;
        Some(slice)
    }
    pub(crate) fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    pub(crate) fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    /// `len` raw bytes.
    pub(crate) fn bytes(&mut self, len: u64) -> Option<&'a [u8]> {
        self.take(usize::try_from(len).ok()?)
    }
    pub(crate) fn string(&mut self) -> Option<String> {
        let len = self.u32()? as usize;
        String::from_utf8(self.take(len)?.to_vec()).ok()
    }
    /// `count` strings written by [`push_strs`]; the error names the first bad row.
    pub(crate) fn strings(&mut self, count: u64) -> std::result::Result<Vec<String>, String> {
        let count = usize::try_from(count).map_err(|_| "row count too large".to_string())?;
        // Each row needs at least its 4-byte length: refuse absurd counts before allocating.
        if count > self.bytes.len() / 4 {
            return Err("row count larger than the file".into());
        }
        (0..count)
            .map(|row| self.string().ok_or_else(|| format!("bad id at row {row}")))
            .collect()
    }
    /// Everything not read yet.
    pub(crate) fn rest(&self) -> &'a [u8] {
        &self.bytes[self.pos..]
    }
}

/// A 64-bit FNV-1a-style checksum over 8-byte words (bytes would be 8x slower on large
/// matrices; this only guards against truncation and bit rot, not tampering).
pub(crate) fn checksum(bytes: &[u8]) -> u64 {
    let mut sum = Checksum::new(bytes.len() as u64);
    sum.update(bytes);
    sum.finish()
}

/// [`checksum`] computed piece by piece: the total length is needed up front (it seeds the
/// hash), then the bytes may come in pieces of any size.
pub(crate) struct Checksum {
    hash: u64,
    /// Bytes of an incomplete 8-byte word.
    pending: [u8; 8],
    pending_len: usize,
}

const CHECKSUM_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const CHECKSUM_PRIME: u64 = 0x0000_0100_0000_01b3;

impl Checksum {
    /// A checksum of `len` bytes to come.
    pub(crate) fn new(len: u64) -> Self {
        Checksum {
            hash: CHECKSUM_OFFSET ^ len,
            pending: [0; 8],
            pending_len: 0,
        }
    }

    fn word(&mut self, word: [u8; 8]) {
        self.hash = (self.hash ^ u64::from_le_bytes(word)).wrapping_mul(CHECKSUM_PRIME);
    }

    /// Adds the next bytes.
    pub(crate) fn update(&mut self, mut bytes: &[u8]) {
        if self.pending_len > 0 {
            let take = (8 - self.pending_len).min(bytes.len());
            self.pending[self.pending_len..self.pending_len + take].copy_from_slice(&bytes[..take]);
            self.pending_len += take;
            bytes = &bytes[take..];
            if self.pending_len < 8 {
                return;
            }
            self.word(self.pending);
            self.pending_len = 0;
        }
        let words = bytes.chunks_exact(8);
        let tail = words.remainder();
        for word in words {
            let mut w = [0u8; 8];
            w.copy_from_slice(word);
            self.word(w);
        }
        self.pending[..tail.len()].copy_from_slice(tail);
        self.pending_len = tail.len();
    }

    /// The checksum (the last incomplete word is hashed byte by byte).
    pub(crate) fn finish(self) -> u64 {
        self.pending[..self.pending_len]
            .iter()
            .fold(self.hash, |hash, &b| {
                (hash ^ u64::from(b)).wrapping_mul(CHECKSUM_PRIME)
            })
    }
}

/// A reader that computes the [`checksum`] of everything read through it.
pub(crate) struct ChecksumReader<R> {
    inner: R,
    sum: Checksum,
    /// The length the file had when opened (it seeds the checksum).
    len: u64,
    read: u64,
}

impl<R: Read> ChecksumReader<R> {
    /// Checksums `inner`, which holds `len` bytes.
    pub(crate) fn new(inner: R, len: u64) -> Self {
        ChecksumReader {
            inner,
            sum: Checksum::new(len),
            len,
            read: 0,
        }
    }

    /// Reads whatever is left of the file at `path` and returns the checksum of all of it.
    /// A file that grew or shrank since it was opened is an error: its checksum would be
    /// meaningless.
    pub(crate) fn finish_reading(mut self, path: &Path) -> Result<u64> {
        std::io::copy(&mut self, &mut std::io::sink())?;
        if self.read != self.len {
            return Err(corrupt_file(path, "changed while being read"));
        }
        Ok(self.sum.finish())
    }
}

impl<R: Read> Read for ChecksumReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sum.update(&buf[..n]);
        self.read += n as u64;
        Ok(n)
    }
}

/// The [`checksum`] of a file, read through a fixed buffer.
pub(crate) fn checksum_file(path: &Path) -> Result<u64> {
    let file = fs_err::File::open(path)?;
    let len = file.metadata()?.len();
    ChecksumReader::new(file, len).finish_reading(path)
}

/// Writes `bytes` to `path` atomically ([`music_crs_core::atomic`]).
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    Ok(music_crs_core::atomic::write_bytes_atomically(path, bytes)?)
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
    fn checksum_reader_reads_the_rest_and_notices_a_changed_length() {
        let bytes: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let path = Path::new("dump");
        let mut reader = ChecksumReader::new(&bytes[..], 1000);
        let mut head = [0u8; 10];
        reader.read_exact(&mut head).unwrap();
        assert_eq!(reader.finish_reading(path).unwrap(), checksum(&bytes));

        // Opened at 1,001 bytes, 1,000 read: the file shrank while being read.
        let err = ChecksumReader::new(&bytes[..], 1001)
            .finish_reading(path)
            .unwrap_err();
        assert!(
            err.to_string().contains("changed while being read"),
            "{err}"
        );
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
    fn streamed_checksum_equals_the_whole_buffer_checksum() {
        let bytes: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 251) as u8).collect();
        for len in [0, 1, 7, 8, 9, 63, 64, 999, 1000] {
            let whole = checksum(&bytes[..len]);
            for piece in [1, 3, 8, 13, 500] {
                let mut sum = Checksum::new(len as u64);
                bytes[..len].chunks(piece).for_each(|p| sum.update(p));
                assert_eq!(sum.finish(), whole, "len {len}, pieces of {piece}");
            }
        }
        // The value itself is fixed (saved manifests hold it): the word-wise FNV-1a of the
        // first format, computed independently.
        assert_eq!(checksum(b"music-crs"), 0xb6f1_43d6_ce03_b000);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(checksum_file(&path).unwrap(), checksum(&bytes));
    }

    #[test]
    fn inconsistent_matrix_is_refused_on_save() {
        let mut bad = sample();
        bad.data.pop();
        let dir = tempfile::tempdir().unwrap();
        assert!(bad.save(&dir.path().join("x")).is_err());
    }
}

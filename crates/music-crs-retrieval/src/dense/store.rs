//! A binary file of labelled vectors: the on-disk form of catalog embedding caches and of
//! saved exact indexes.
//!
//! Layout, little-endian: the magic `MCRSVEC1`, a `u32` format version, the `u32` dimension,
//! the `u64` row count, a `u32`-prefixed UTF-8 key (what the vectors are: model, fields...),
//! one `u32`-prefixed UTF-8 id per row, the `f32` matrix row by row, and a `u64` checksum of
//! everything before it, so truncation and corruption are reported instead of misread.
//!
//! The framing (magic, version, trailing checksum, write-then-rename) is shared with the HNSW
//! index file, which streams it ([`save_framed_streamed`], [`FramedReader`]) instead of holding
//! a second copy of the graph in memory.

use std::io::{self, Read, Write};
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

/// Reads the bytes of a framed file at `path` (named in errors): a wrong magic, checksum or
/// version is an [`Error::CorruptFile`]. `what` names the format in errors.
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
    check_version(path, found, version, what)?;
    Ok(Framed { bytes })
}

/// The error for a format version other than `expected`: a newer one says so (the file was
/// written by a newer build), an older one says to rebuild the file.
pub(crate) fn check_version(path: &Path, found: u32, expected: u32, what: &str) -> Result<()> {
    if found == expected {
        return Ok(());
    }
    let reason = if found > expected {
        format!(
            "{what} of format version {found}, written by a newer version of music-crs; this \
             build reads version {expected}"
        )
    } else {
        format!(
            "{what} of format version {found}, written by an older version of music-crs; this \
             build reads version {expected}: rebuild the file"
        )
    };
    Err(corrupt_file(path, reason))
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
struct ChecksumReader<R> {
    inner: R,
    sum: Checksum,
    /// The length the stream has (it seeds the checksum).
    len: u64,
    read: u64,
}

impl<R: Read> ChecksumReader<R> {
    /// Checksums `inner`, which holds `len` bytes.
    fn new(inner: R, len: u64) -> Self {
        ChecksumReader {
            inner,
            sum: Checksum::new(len),
            len,
            read: 0,
        }
    }
}

impl<R: Read> Read for ChecksumReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sum.update(&buf[..n]);
        self.read += n as u64;
        Ok(n)
    }
}

/// Values per piece when `f32`s are converted to or from bytes while streaming.
const F32_PIECE: usize = 4096;

/// Writes a framed file atomically while streaming its body: the 8-byte `magic`, a `u32`
/// `version`, the `body_len` bytes that `body` writes, and a `u64` checksum of everything
/// before it; the same layout as [`save_framed`], without holding the file in memory. The
/// checksum is seeded with the length, so `body_len` must be exact: a body of another length
/// is an error and nothing replaces `path`.
pub(crate) fn save_framed_streamed(
    path: &Path,
    magic: &[u8; 8],
    version: u32,
    body_len: u64,
    body: impl FnOnce(&mut FramedWriter<'_>) -> Result<()>,
) -> Result<()> {
    music_crs_core::atomic::write_atomically(path, |out| {
        let planned = FRAME_HEADER as u64 + body_len;
        let mut writer = FramedWriter {
            path,
            out,
            sum: Checksum::new(planned),
            written: 0,
        };
        writer.bytes(magic)?;
        writer.bytes(&version.to_le_bytes())?;
        body(&mut writer)?;
        if writer.written != planned {
            return Err(Error::Io(io::Error::other(format!(
                "{}: wrote {} bytes where {planned} were planned (a bug in the writer)",
                path.display(),
                writer.written
            ))));
        }
        let sum = std::mem::replace(&mut writer.sum, Checksum::new(0)).finish();
        writer.raw(&sum.to_le_bytes())
    })
}

/// The body writer of [`save_framed_streamed`]: little-endian values, checksummed as written.
pub(crate) struct FramedWriter<'a> {
    path: &'a Path,
    out: &'a mut dyn Write,
    sum: Checksum,
    written: u64,
}

impl FramedWriter<'_> {
    fn raw(&mut self, bytes: &[u8]) -> Result<()> {
        self.out.write_all(bytes).map_err(|e| {
            Error::Io(io::Error::new(
                e.kind(),
                format!("{}: {e}", self.path.display()),
            ))
        })
    }

    /// Writes raw bytes.
    pub(crate) fn bytes(&mut self, bytes: &[u8]) -> Result<()> {
        self.sum.update(bytes);
        self.written += bytes.len() as u64;
        self.raw(bytes)
    }

    pub(crate) fn u32(&mut self, value: u32) -> Result<()> {
        self.bytes(&value.to_le_bytes())
    }

    pub(crate) fn u64(&mut self, value: u64) -> Result<()> {
        self.bytes(&value.to_le_bytes())
    }

    /// Writes `values` as little-endian `u32`s.
    pub(crate) fn u32s(&mut self, values: &[u32]) -> Result<()> {
        self.words(values, |value| value.to_le_bytes())
    }

    /// Writes `values` as little-endian `f32`s.
    pub(crate) fn f32s(&mut self, values: &[f32]) -> Result<()> {
        self.words(values, |value| value.to_le_bytes())
    }

    /// Writes 4-byte values, a piece of [`F32_PIECE`] at a time.
    fn words<T>(&mut self, values: &[T], le_bytes: impl Fn(&T) -> [u8; 4]) -> Result<()> {
        let mut piece = [0u8; 4 * F32_PIECE];
        for chunk in values.chunks(F32_PIECE) {
            for (bytes, value) in piece.chunks_exact_mut(4).zip(chunk) {
                bytes.copy_from_slice(&le_bytes(value));
            }
            self.bytes(&piece[..4 * chunk.len()])?;
        }
        Ok(())
    }

    /// Writes a `u32`-prefixed UTF-8 string (the id map's codec, [`push_strs`]).
    pub(crate) fn str(&mut self, s: &str) -> Result<()> {
        let len = u32::try_from(s.len()).map_err(|_| Error::InvalidParameter {
            name: "id",
            reason: "an id or key longer than 4 GiB".into(),
        })?;
        self.u32(len)?;
        self.bytes(s.as_bytes())
    }
}

/// Reads a framed file as a stream, its body field by field: the counterpart of
/// [`save_framed_streamed`]. Nothing is read past the body's end (known from the length),
/// so a truncated file is an error naming the field it ends in; [`FramedReader::finish`]
/// then checks that the body was read whole and its checksum.
pub(crate) struct FramedReader<'p, R> {
    path: &'p Path,
    body: ChecksumReader<io::Take<R>>,
}

impl<'p, R: Read> FramedReader<'p, R> {
    /// Starts reading `inner`, the `len` bytes of the file at `path`: checks the magic and
    /// returns the format version, which the caller checks. `what` names the format.
    pub(crate) fn open(
        path: &'p Path,
        inner: R,
        len: u64,
        magic: &[u8; 8],
        what: &str,
    ) -> Result<(Self, u32)> {
        if len < (FRAME_HEADER + 8) as u64 {
            return Err(corrupt_file(path, format!("not {what} (only {len} bytes)")));
        }
        let body_len = len - 8;
        let mut reader = FramedReader {
            path,
            body: ChecksumReader::new(inner.take(body_len), body_len),
        };
        let mut found = [0u8; 8];
        reader.read_exact(&mut found, "the magic")?;
        if &found != magic {
            return Err(corrupt_file(path, format!("not {what} (bad magic)")));
        }
        let version = reader.u32("the format version")?;
        Ok((reader, version))
    }

    /// Body bytes not read yet.
    pub(crate) fn remaining(&self) -> u64 {
        self.body.len - self.body.read
    }

    /// An [`Error::CorruptFile`] naming the file.
    pub(crate) fn corrupt(&self, reason: impl Into<String>) -> Error {
        corrupt_file(self.path, reason)
    }

    /// Fills `buf`; `what` names the field in the error when the body ends first.
    pub(crate) fn read_exact(&mut self, buf: &mut [u8], what: &str) -> Result<()> {
        if buf.len() as u64 > self.remaining() {
            return Err(self.corrupt(format!("truncated: the file ends inside {what}")));
        }
        self.body.read_exact(buf).map_err(|e| self.read_error(e))
    }

    fn read_error(&self, e: io::Error) -> Error {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            // The length was taken when the file was opened: it shrank since.
            self.corrupt("changed while being read")
        } else {
            Error::Io(e)
        }
    }

    pub(crate) fn u32(&mut self, what: &str) -> Result<u32> {
        let mut bytes = [0u8; 4];
        self.read_exact(&mut bytes, what)?;
        Ok(u32::from_le_bytes(bytes))
    }

    pub(crate) fn u64(&mut self, what: &str) -> Result<u64> {
        let mut bytes = [0u8; 8];
        self.read_exact(&mut bytes, what)?;
        Ok(u64::from_le_bytes(bytes))
    }

    /// `len` bytes, refused before allocating when the body holds fewer.
    pub(crate) fn bytes(&mut self, len: u64, what: &str) -> Result<Vec<u8>> {
        if len > self.remaining() {
            return Err(self.corrupt(format!("truncated: the file ends inside {what}")));
        }
        let mut bytes = vec![0u8; len as usize];
        self.read_exact(&mut bytes, what)?;
        Ok(bytes)
    }

    /// A `u32`-prefixed UTF-8 string.
    pub(crate) fn string(&mut self, what: &str) -> Result<String> {
        let len = self.u32(what)?;
        let bytes = self.bytes(u64::from(len), what)?;
        String::from_utf8(bytes).map_err(|_| self.corrupt(format!("{what} is not UTF-8")))
    }

    /// Appends `count` little-endian `u32`s to `out`.
    pub(crate) fn u32s(&mut self, count: usize, out: &mut Vec<u32>, what: &str) -> Result<()> {
        self.values(count, what, |bytes| {
            out.extend(
                bytes
                    .chunks_exact(4)
                    .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            )
        })
    }

    /// Appends `count` little-endian `f32`s to `out`.
    pub(crate) fn f32s(&mut self, count: usize, out: &mut Vec<f32>, what: &str) -> Result<()> {
        self.values(count, what, |bytes| {
            out.extend(
                bytes
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            )
        })
    }

    /// Reads `count` 4-byte values in pieces, each handed to `take`.
    fn values(&mut self, count: usize, what: &str, mut take: impl FnMut(&[u8])) -> Result<()> {
        let fits = count
            .checked_mul(4)
            .is_some_and(|len| len as u64 <= self.remaining());
        if !fits {
            return Err(self.corrupt(format!("truncated: the file ends inside {what}")));
        }
        let mut piece = [0u8; 4 * F32_PIECE];
        let mut left = count;
        while left > 0 {
            let n = left.min(F32_PIECE);
            self.read_exact(&mut piece[..4 * n], what)?;
            take(&piece[..4 * n]);
            left -= n;
        }
        Ok(())
    }

    /// Checks that the body was read to its end and that its checksum matches the file's.
    pub(crate) fn finish(self) -> Result<()> {
        let left = self.remaining();
        if left > 0 {
            return Err(self.corrupt(format!(
                "{left} unexpected bytes after the last field (corrupt file)"
            )));
        }
        let path = self.path;
        let ChecksumReader { inner, sum, .. } = self.body;
        let mut stored = [0u8; 8];
        inner.into_inner().read_exact(&mut stored).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                corrupt_file(path, "changed while being read")
            } else {
                Error::Io(e)
            }
        })?;
        if sum.finish() != u64::from_le_bytes(stored) {
            return Err(corrupt_file(
                path,
                "checksum mismatch (truncated or corrupt file)",
            ));
        }
        Ok(())
    }
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
    fn streamed_frames_read_back_and_name_their_faults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("framed.bin");
        let (magic, what) = (b"MCRSTEST", "a test file");
        let body_len = 4 + 8 + 4 + 3 + 2 * 4 + 5000 * 4;
        let floats: Vec<f32> = (0..5000).map(|i| i as f32 * 0.5).collect();
        save_framed_streamed(&path, magic, 7, body_len, |w| {
            w.u32(42)?;
            w.u64(u64::MAX)?;
            w.str("abc")?;
            w.u32s(&[1, 2])?;
            w.f32s(&floats)
        })
        .unwrap();
        let bytes = std::fs::read(&path).unwrap();
        // The same framing as the in-memory writer: its reader accepts the file.
        framed_from_bytes(&path, bytes.clone(), magic, 7, what).unwrap();

        type Fields = (u32, u64, String, Vec<u32>, Vec<f32>);
        let read = |bytes: &[u8]| -> Result<Fields> {
            let (mut r, version) =
                FramedReader::open(&path, bytes, bytes.len() as u64, magic, what)?;
            check_version(&path, version, 7, what)?;
            let (a, b, s) = (r.u32("a")?, r.u64("b")?, r.string("s")?);
            let (mut ints, mut values) = (Vec::new(), Vec::new());
            r.u32s(2, &mut ints, "ints")?;
            r.f32s(5000, &mut values, "floats")?;
            r.finish()?;
            Ok((a, b, s, ints, values))
        };
        assert_eq!(
            read(&bytes).unwrap(),
            (42, u64::MAX, "abc".into(), vec![1, 2], floats)
        );
        for cut in [0, 5, 12, 19, 30, bytes.len() - 1] {
            let err = read(&bytes[..cut]).unwrap_err();
            assert!(matches!(err, Error::CorruptFile { .. }), "{err}");
            assert!(err.to_string().contains("framed.bin"), "{err}");
        }
        let err = read(&bytes[..60]).unwrap_err().to_string();
        assert!(err.contains("ends inside floats"), "{err}");
        let mut flipped = bytes.clone();
        flipped[100] ^= 0x10;
        let err = read(&flipped).unwrap_err().to_string();
        assert!(err.contains("checksum mismatch"), "{err}");
        let mut longer = bytes[..bytes.len() - 8].to_vec();
        longer.push(0);
        longer.extend(checksum(&longer).to_le_bytes());
        let err = read(&longer).unwrap_err().to_string();
        assert!(err.contains("1 unexpected bytes"), "{err}");
        let mut newer = bytes[..bytes.len() - 8].to_vec();
        newer[8..12].copy_from_slice(&9u32.to_le_bytes());
        newer.extend(checksum(&newer).to_le_bytes());
        let err = read(&newer).unwrap_err().to_string();
        assert!(err.contains("version 9") && err.contains("newer"), "{err}");

        // A body of another length than planned is refused and leaves no file.
        let other = dir.path().join("short.bin");
        assert!(save_framed_streamed(&other, magic, 7, 8, |w| w.u32(1)).is_err());
        assert!(!other.exists());
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
        // The value itself is fixed (saved files hold it): the word-wise FNV-1a of the first
        // format, computed independently.
        assert_eq!(checksum(b"music-crs"), 0xb6f1_43d6_ce03_b000);
    }

    #[test]
    fn inconsistent_matrix_is_refused_on_save() {
        let mut bad = sample();
        bad.data.pop();
        let dir = tempfile::tempdir().unwrap();
        assert!(bad.save(&dir.path().join("x")).is_err());
    }
}

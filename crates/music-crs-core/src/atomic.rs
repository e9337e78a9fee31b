//! Writing a file so that it is never seen half-written: the one helper every crate's outputs
//! go through (predictions, scores, models, indexes, parquet shards).
//!
//! The bytes go to a temporary file beside the target, which is synced to disk, renamed over
//! the target, and the directory is synced so the rename itself survives a crash. The file gets
//! the mode an ordinary new file gets under the user's umask (0644 under the usual 022), not a
//! temporary file's private 0600. Errors name the target path.
//!
//! ```
//! use std::io::Write;
//!
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("out/scores.json");
//! music_crs_core::atomic::write_atomically(&path, |w| w.write_all(b"{}\n"))?;
//! assert_eq!(std::fs::read(&path)?, b"{}\n");
//! # Ok::<(), std::io::Error>(())
//! ```

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

/// Writes `path` atomically: creates its directory, lets `fill` write a temporary file beside
/// it (buffered), syncs the file, renames it over `path` and syncs the directory. `fill`'s
/// error is returned as is; the helper's own I/O errors are converted with `E::from`, their
/// message naming `path`. On any error the target is left as it was.
pub fn write_atomically<E>(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<&File>) -> Result<(), E>,
) -> Result<(), E>
where
    E: From<io::Error>,
{
    let named =
        |e: io::Error| E::from(io::Error::new(e.kind(), format!("{}: {e}", path.display())));
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(named)?;
    let mut builder = tempfile::Builder::new();
    builder.prefix(".music-crs-").suffix(".tmp");
    // A temporary file is private (0600); an output is an ordinary file: 0644 under umask.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o644));
    }
    let temp = builder.tempfile_in(dir).map_err(named)?;
    {
        let mut writer = BufWriter::new(temp.as_file());
        fill(&mut writer)?;
        writer.flush().map_err(named)?;
    }
    temp.as_file().sync_all().map_err(named)?;
    temp.persist(path).map_err(|e| named(e.error))?;
    sync_dir(dir).map_err(named)?;
    Ok(())
}

/// [`write_atomically`] of a byte slice.
pub fn write_bytes_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomically(path, |w| w.write_all(bytes))
}

/// Makes a rename in `dir` durable (a no-op where directories cannot be opened as files).
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/out.txt");
        write_bytes_atomically(&path, b"first").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
        // A failing fill leaves the old content and no temporary file.
        let err = write_atomically(&path, |w| {
            w.write_all(b"half")?;
            Err(io::Error::other("stopped"))
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "stopped");
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["out.txt"]);
    }

    #[cfg(unix)]
    #[test]
    fn outputs_get_the_ordinary_mode_not_a_temporary_files() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.json");
        write_bytes_atomically(&path, b"{}").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        // Whatever the umask takes away, the group and others are not shut out as 0600 does.
        assert_ne!(mode, 0o600, "{mode:o}");
        assert_eq!(mode & 0o600, 0o600, "{mode:o}");
    }

    #[test]
    fn errors_name_the_target() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, b"x").unwrap();
        let err = write_bytes_atomically(&blocker.join("under/a/file"), b"x").unwrap_err();
        assert!(err.to_string().contains("under/a/file"), "{err}");
    }
}

//! Writing a file so that it is never seen half-written: the one helper every crate's outputs
//! go through (predictions, scores, models, indexes, parquet shards).
//!
//! The bytes go to a temporary file beside the target, which is synced to disk, renamed over
//! the target, and the directory is synced so the rename itself survives a crash. The file gets
//! the mode an ordinary new file gets under the user's umask (0644 under the usual 022), not a
//! temporary file's private 0600. Errors name the target path.
//!
//! Temporary names carry the writer's process id (`.music-crs-<pid>-<random>.tmp`), so a
//! write also removes what a killed writer left in the same folder
//! ([`remove_stale_temp_files`]) without touching a live writer's file.
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
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How every temporary name of ours starts; the process id and a `-` follow.
const TEMP_PREFIX: &str = ".music-crs-";
/// How every temporary name of ours ends.
const TEMP_SUFFIX: &str = ".tmp";
/// A temporary file whose writer is gone is removed once it is this old: the folder may be
/// shared with another host, whose live writers' ids mean nothing here.
const STALE_WHEN_WRITER_GONE: Duration = Duration::from_secs(60);
/// A temporary file whose writer cannot be told (no `/proc`, or a name from before ids
/// were written into it) is removed once it is this old.
const STALE_WHEN_WRITER_UNKNOWN: Duration = Duration::from_secs(24 * 60 * 60);

/// The temporary name prefix of this process.
fn temp_prefix() -> String {
    format!("{TEMP_PREFIX}{}-", std::process::id())
}

/// A temporary name for staging `label` (a file or a folder) in this process: it follows
/// the pattern [`remove_stale_temp_files`] knows, so a killed writer's leftover is removed
/// by a later write to the same folder.
pub fn temp_name(label: &str) -> String {
    format!("{}{label}{TEMP_SUFFIX}", temp_prefix())
}

/// Removes from `dir` the temporary files and folders a killed writer left: names of our
/// pattern whose process is no longer running (and that are over a minute old), or whose
/// process cannot be told and that are over a day old. Never this process's own. Best
/// effort: what cannot be read or removed is left; returns the paths removed.
pub fn remove_stale_temp_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let now = SystemTime::now();
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(middle) = name
            .strip_prefix(TEMP_PREFIX)
            .and_then(|rest| rest.strip_suffix(TEMP_SUFFIX))
        else {
            continue;
        };
        let writer = middle
            .split_once('-')
            .and_then(|(pid, _)| pid.parse::<u32>().ok());
        if writer == Some(std::process::id()) {
            continue;
        }
        let Ok(metadata) = entry.metadata() else {
            continue;
        };
        let age = metadata
            .modified()
            .ok()
            .and_then(|modified| now.duration_since(modified).ok())
            .unwrap_or_default();
        let stale = match writer.and_then(process_is_running) {
            Some(true) => false,
            Some(false) => age >= STALE_WHEN_WRITER_GONE,
            None => age >= STALE_WHEN_WRITER_UNKNOWN,
        };
        if !stale {
            continue;
        }
        let path = entry.path();
        let gone = if metadata.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        if gone.is_ok() {
            removed.push(path);
        }
    }
    removed
}

/// Whether process `pid` runs on this host; `None` where that cannot be told.
fn process_is_running(pid: u32) -> Option<bool> {
    let proc = Path::new("/proc");
    if !proc.join("self").exists() {
        return None;
    }
    Some(proc.join(pid.to_string()).exists())
}

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
    remove_stale_temp_files(dir);
    let prefix = temp_prefix();
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(TEMP_SUFFIX);
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
    fn a_write_removes_what_killed_writers_left_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let long_ago = SystemTime::now() - Duration::from_secs(3 * 24 * 60 * 60);
        let left = |name: &str, modified: SystemTime| {
            let path = dir.path().join(name);
            std::fs::write(&path, b"half").unwrap();
            File::options()
                .write(true)
                .open(&path)
                .unwrap()
                .set_modified(modified)
                .unwrap();
        };
        // Process ids stay below 2^22 on Linux: 999999999 is never running.
        left(".music-crs-999999999-a1b2c3.tmp", long_ago);
        // From before ids were written into names: removed once over a day old.
        left(".music-crs-Xy12Zq.tmp", long_ago);
        // Kept: a gone writer's file too fresh to judge, this process's own file, a file of
        // another pattern, an output.
        left(".music-crs-999999999-fresh.tmp", SystemTime::now());
        left(
            &format!(".music-crs-{}-mine.tmp", std::process::id()),
            long_ago,
        );
        left(".music-crs-notes.txt", long_ago);
        left("scores.json", long_ago);
        // A staging folder of a killed writer goes too.
        let staging = dir.path().join(".music-crs-999999999-hnsw-dump.tmp");
        std::fs::create_dir(&staging).unwrap();
        std::fs::write(staging.join("index.hnsw.graph"), b"x").unwrap();
        File::open(&staging)
            .unwrap()
            .set_modified(long_ago)
            .unwrap();

        write_bytes_atomically(&dir.path().join("out.json"), b"{}").unwrap();
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        let mine = format!(".music-crs-{}-mine.tmp", std::process::id());
        let mut expected = vec![
            ".music-crs-999999999-fresh.tmp",
            ".music-crs-notes.txt",
            mine.as_str(),
            "out.json",
            "scores.json",
        ];
        expected.sort();
        assert_eq!(names, expected);
        assert_eq!(
            temp_name("x"),
            format!(".music-crs-{}-x.tmp", std::process::id())
        );
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

//! Atomic writes: every file is written to a temporary name in the same folder, synced, and
//! renamed into place, so a crash leaves either the old file or the new one, never a torn one.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::pause_points::pause;

/// The prefix of the temporary files [`write_together`] writes next to their targets.
pub const TEMP_PREFIX: &str = ".backprop-tmp-";

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, fsync, rename.
///
/// # Errors
/// When the folder is not writable or the disk is full; `path` is then untouched.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    write_together(&[(path, bytes)])
}

/// Writes several files as one: each goes to a temporary file beside its target and is
/// synced to disk; only when all of them are there are they renamed into place. A failed
/// write (a full disk, a read-only folder) therefore changes none of the targets, and a
/// process killed at any moment leaves each target either old or new, never torn. The
/// temporaries of a failed write are removed; those of a killed process are named
/// [`TEMP_PREFIX`]`…` and removed by [`remove_stale_temporaries`].
///
/// # Errors
/// When a folder is not writable or the disk is full; no target is changed then.
pub fn write_together(files: &[(&Path, &[u8])]) -> Result<()> {
    let mut staged = Staged::default();
    for (path, bytes) in files {
        staged.add(path, bytes)?;
    }
    staged.commit()
}

/// Files written to synced temporaries, waiting to be renamed into place.
#[derive(Default)]
struct Staged {
    files: Vec<(tempfile::NamedTempFile, PathBuf)>,
}

impl Staged {
    /// Writes `bytes` to a synced temporary file beside `path`.
    fn add(&mut self, path: &Path, bytes: &[u8]) -> Result<()> {
        let mut builder = tempfile::Builder::new();
        builder.prefix(TEMP_PREFIX);
        // tempfile's 0600 would make results unreadable to other users; use a regular file's mode.
        #[cfg(unix)]
        builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644));
        let dir = folder_of(path);
        let mut tmp = builder
            .tempfile_in(dir)
            .map_err(|e| Error::io(dir, without_temp_name(e)))?;
        pause(|| format!("temporary {}", file_name(path)));
        let file = tmp.as_file_mut();
        let (first, second) = bytes.split_at(bytes.len() / 2);
        file.write_all(first).map_err(|e| Error::io(path, e))?;
        pause(|| format!("half {}", file_name(path)));
        file.write_all(second).map_err(|e| Error::io(path, e))?;
        file.sync_all().map_err(|e| Error::io(path, e))?;
        pause(|| format!("synced {}", file_name(path)));
        self.files.push((tmp, path.to_path_buf()));
        Ok(())
    }

    /// Renames every staged file into place, in the order added, and syncs their folders so
    /// the renames survive a power cut. A rename fails only if the folder changed under the
    /// process; the files renamed before it stay renamed.
    fn commit(self) -> Result<()> {
        let mut folders: Vec<PathBuf> = Vec::new();
        for (tmp, path) in self.files {
            tmp.persist(&path)
                .map_err(|e| Error::io(&path, without_temp_name(e.error)))?;
            pause(|| format!("renamed {}", file_name(&path)));
            let dir = folder_of(&path).to_path_buf();
            if !folders.contains(&dir) {
                folders.push(dir);
            }
        }
        for dir in folders {
            // Not every file system lets a folder be synced; the data itself already is.
            if let Ok(handle) = std::fs::File::open(&dir) {
                let _ = handle.sync_all();
            }
        }
        Ok(())
    }
}

/// The operating system's error without the temporary file's name that `tempfile` appends
/// to it: the messages name the file being written instead.
fn without_temp_name(e: std::io::Error) -> std::io::Error {
    let text = e.to_string();
    match text.find(" at path \"") {
        Some(end) => std::io::Error::new(e.kind(), &text[..end]),
        None => e,
    }
}

/// The last part of `path`, as the pause points name it.
fn file_name(path: &Path) -> std::borrow::Cow<'_, str> {
    path.file_name()
        .unwrap_or(path.as_os_str())
        .to_string_lossy()
}

/// The folder `path` is in (`.` for a bare file name).
fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Removes the temporary files that a killed process left in `dir` (named [`TEMP_PREFIX`]`…`);
/// returns how many there were.
///
/// # Errors
/// When `dir` cannot be listed or a temporary cannot be removed.
pub fn remove_stale_temporaries(dir: &Path) -> Result<usize> {
    let mut removed = 0;
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
            let path = entry.path();
            std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_of_a_set_changes_none_of_its_files() {
        let dir = tempfile::tempdir().unwrap();
        let first = dir.path().join("metrics.csv");
        std::fs::write(&first, "old").unwrap();
        let missing = dir.path().join("no-such-folder/model.safetensors");
        let err = write_together(&[(&first, b"new"), (&missing, b"model")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}: No such file or directory (os error 2)",
                missing.parent().unwrap().display()
            )
        );
        assert_eq!(std::fs::read_to_string(&first).unwrap(), "old");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["metrics.csv"], "a temporary was left behind");

        write_together(&[(&first, b"new")]).unwrap();
        assert_eq!(std::fs::read_to_string(&first).unwrap(), "new");
    }

    #[test]
    fn stale_temporaries_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            ".backprop-tmp-abc",
            ".backprop-tmp-x1",
            "model.safetensors",
            ".tmp-other",
        ] {
            std::fs::write(dir.path().join(name), "x").unwrap();
        }
        assert_eq!(remove_stale_temporaries(dir.path()).unwrap(), 2);
        let mut names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, [".tmp-other", "model.safetensors"]);
    }
}

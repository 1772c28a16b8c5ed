//! Guards of a run directory: one writer at a time (a lock file), no silent replacement of an existing run,
//! and run names that stay inside `runs/`.

use super::{checkpoint, CONFIG_FILE, METRICS_FILE, SUMMARY_FILE};
use crate::error::{Error, IoContext, Result};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::Path;

/// Held (an exclusive OS file lock) by the process that trains into the directory.
pub const LOCK_FILE: &str = "carve.lock";

/// Entries whose presence makes a directory a run.
const RUN_ENTRIES: [&str; 6] = [
    CONFIG_FILE,
    METRICS_FILE,
    SUMMARY_FILE,
    checkpoint::DIR,
    "checkpoint.tmp",
    "checkpoint.old",
];

/// Entries derived from a run, which `--overwrite` removes with [`RUN_ENTRIES`].
const DERIVED: [&str; 2] = ["eval.json", "figures"];

/// The exclusive lock on a run directory. The OS releases it when the file is closed: on drop, and when the
/// process dies in any way (SIGKILL included), so a crash leaves no stale lock.
#[derive(Debug)]
pub struct RunLock {
    file: File,
}

impl RunLock {
    /// Locks `dir` (which must exist), or fails naming the directory and the process that holds it.
    pub fn acquire(dir: &Path) -> Result<Self> {
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .at(&path)?;
        match file.try_lock() {
            Ok(()) => {
                // The holder's pid, for the message another process gets; best effort (a full disk may
                // refuse even these few bytes, and the lock holds without them).
                let _ = file
                    .set_len(0)
                    .and_then(|_| file.rewind())
                    .and_then(|_| write!(file, "{}", std::process::id()));
                Ok(Self { file })
            }
            Err(TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                let holder = match pid.trim() {
                    "" => "another carve process".to_string(),
                    p => format!("another carve process (pid {p})"),
                };
                Err(Error::msg(format!(
                    "{}: {holder} is writing this run directory (it holds {}); wait for it to finish or \
                     write to another directory",
                    dir.display(),
                    path.display()
                )))
            }
            Err(TryLockError::Error(e)) => Err(Error::io(&path, e)),
        }
    }
}

impl Drop for RunLock {
    /// Clears the pid so that no later message names a process that has finished.
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
    }
}

/// The run entries present in `dir`.
pub fn run_entries(dir: &Path) -> Vec<&'static str> {
    RUN_ENTRIES
        .into_iter()
        .filter(|e| dir.join(e).exists())
        .collect()
}

/// Readies `dir` (locked by the caller) for a new run: refuses a directory that already holds one unless
/// `overwrite`, in which case the old run's files are removed (other files in `dir` are left alone).
pub fn prepare_new_run(dir: &Path, overwrite: bool) -> Result<()> {
    let found = run_entries(dir);
    if found.is_empty() {
        return Ok(());
    }
    if !overwrite {
        return Err(Error::msg(format!(
            "{}: already holds a run ({}); resume it with --resume {}, or pass --overwrite to replace it",
            dir.display(),
            found.join(", "),
            dir.display()
        )));
    }
    log::warn!("replacing the run in {}", dir.display());
    for entry in RUN_ENTRIES.iter().chain(&DERIVED) {
        let path = dir.join(entry);
        if path.is_dir() {
            std::fs::remove_dir_all(&path).at(&path)?;
        } else if path.exists() {
            std::fs::remove_file(&path).at(&path)?;
        }
    }
    Ok(())
}

/// Ok for a name that is one plain path component, so that `runs/<name>-<time>` stays inside `runs/`.
pub fn check_run_name(name: &str) -> Result<()> {
    let plain = !name.is_empty()
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| matches!(c, '/' | '\\') || c.is_control());
    if plain {
        Ok(())
    } else {
        Err(Error::Config {
            location: "field `name`".into(),
            message: format!(
                "{name:?} is not a plain folder name (it must be non-empty, not `.` or `..`, without `/`, `\\` \
                 or control characters): runs are written to runs/<name>-<time>"
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_names_that_leave_runs_are_rejected() {
        for bad in [
            "",
            ".",
            "..",
            "../x",
            "/abs",
            "a/b",
            "a\\b",
            "nul\0",
            "line\nbreak",
        ] {
            let err = check_run_name(bad).unwrap_err().to_string();
            assert!(err.contains("field `name`"), "{bad:?}: {err}");
        }
        for good in ["run", "beta-vae_2", "..dots", "ünïcode"] {
            check_run_name(good).unwrap();
        }
    }

    #[test]
    fn a_second_lock_on_one_directory_fails_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let first = RunLock::acquire(dir.path()).unwrap();
        let err = RunLock::acquire(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains(&dir.path().display().to_string())
                && err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        drop(first);
        RunLock::acquire(dir.path()).unwrap();
    }

    #[test]
    fn an_existing_run_is_kept_unless_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        prepare_new_run(dir.path(), false).unwrap();
        std::fs::write(dir.path().join(CONFIG_FILE), "()").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "mine").unwrap();
        let err = prepare_new_run(dir.path(), false).unwrap_err().to_string();
        assert!(
            err.contains("already holds a run") && err.contains("--overwrite"),
            "{err}"
        );
        assert!(dir.path().join(CONFIG_FILE).exists());
        prepare_new_run(dir.path(), true).unwrap();
        assert!(!dir.path().join(CONFIG_FILE).exists());
        assert!(dir.path().join("notes.txt").exists());
    }
}

//! Gone marks kept on this machine, for registries wsadmin must not write
//! into unasked.
//!
//! The stale rule ([`crate::stale`]) deletes a record without connected-at
//! only after two 410s a grace apart; the first one is a mark. In our own
//! table the mark is an attribute (`goneSeenAt`). In a team's table wsadmin
//! writes no attribute unless the mapping names one (`gone-mark`, the
//! owner's consent): the marks live here instead, one file per table and
//! endpoint under the state directory, append-only lines `ID EPOCH_MS`
//! (several wsadmin processes may append at once: each line is one
//! `write` on an `O_APPEND` file, and the first mark of an id wins when
//! read). A mark lost with this machine only costs one more run before the
//! record goes: it never makes anything go sooner.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::files::FileError;

/// Environment variable overriding the directory of the marks files.
pub const ENV_MARKS_DIR: &str = "WSADMIN_MARKS_DIR";

#[derive(Debug, Clone)]
pub struct LocalMarks {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    /// Read once, on first use; kept up to date with this process' marks.
    marks: Mutex<Option<HashMap<String, i64>>>,
}

impl LocalMarks {
    /// The marks of `table` at `endpoint`, in the state directory.
    pub fn for_table(table: &str, endpoint: &str) -> Self {
        let dir = std::env::var_os(ENV_MARKS_DIR)
            .map(PathBuf::from)
            .or_else(|| {
                dirs::state_dir()
                    .or_else(dirs::data_local_dir)
                    .map(|d| d.join("wsadmin").join("marks"))
            })
            .unwrap_or_else(|| std::env::temp_dir().join("wsadmin-marks"));
        let safe = |s: &str| -> String {
            s.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                        c
                    } else {
                        '_'
                    }
                })
                .collect()
        };
        Self::at(&dir.join(format!("{}@{}.marks", safe(table), safe(endpoint))))
    }

    pub fn at(path: &Path) -> Self {
        Self {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                marks: Mutex::new(None),
            }),
        }
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, i64>) -> T) -> T {
        let mut guard = self
            .inner
            .marks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let marks = guard.get_or_insert_with(|| read(&self.inner.path));
        f(marks)
    }

    /// When `id` was first seen gone, if it was.
    pub fn get(&self, id: &str) -> Option<i64> {
        self.with(|m| m.get(id).copied())
    }

    /// Marks `id` gone at `at_ms` unless it already is; whether this call
    /// marked it.
    pub fn mark(&self, id: &str, at_ms: i64) -> Result<bool, FileError> {
        if self.get(id).is_some() {
            return Ok(false);
        }
        let path = &self.inner.path;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(FileError::on("create", dir))?;
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(FileError::on("write", path))?;
        file.write_all(format!("{id} {at_ms}\n").as_bytes())
            .map_err(FileError::on("write", path))?;
        self.with(|m| {
            m.entry(id.to_owned()).or_insert(at_ms);
        });
        Ok(true)
    }
}

/// The marks in `path` (none when it is missing or unreadable: a lost
/// mark only delays a delete). Malformed lines are skipped.
fn read(path: &Path) -> HashMap<String, i64> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut marks = HashMap::new();
    for line in text.lines() {
        if let Some((id, at)) = line.split_once(' ')
            && let Ok(at) = at.trim().parse::<i64>()
        {
            marks.entry(id.to_owned()).or_insert(at);
        }
    }
    marks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_mark_wins_and_survives_a_restart() {
        let dir = std::env::temp_dir().join(format!("wsadmin-marks-{}", std::process::id()));
        let path = dir.join("t.marks");
        let _ = std::fs::remove_file(&path);
        let marks = LocalMarks::at(&path);
        assert_eq!(marks.get("a="), None);
        assert!(marks.mark("a=", 100).unwrap());
        assert!(!marks.mark("a=", 200).unwrap());
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"garbage\nb= 7\n")
            .unwrap();
        let again = LocalMarks::at(&path);
        assert_eq!((again.get("a="), again.get("b=")), (Some(100), Some(7)));
        let _ = std::fs::remove_dir_all(&dir);
    }
}

//! A file that could not be read, written or made room for, named: the
//! one error of core's own files (the contexts file, the local stack's
//! state file). Its message says what and where; the OS's reason is its
//! source, printed after it once.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
#[error("cannot {action} {}", path.display())]
pub struct FileError {
    /// `read`, `write`, `create`.
    pub action: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

impl FileError {
    /// `map_err(FileError::on("read", path))`.
    pub fn on(action: &'static str, path: &Path) -> impl Fn(std::io::Error) -> Self {
        let path = path.to_owned();
        move |source| Self {
            action,
            path: path.clone(),
            source,
        }
    }
}

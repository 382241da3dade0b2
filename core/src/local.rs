//! What a running `wsstack local` tells the tools that operate it: its
//! endpoints and credentials, in a small JSON file in the user's state
//! directory. `wsstack local` writes it on start and removes it on stop;
//! `wsadmin`'s built-in `local` context reads it. Nothing here starts or
//! talks to the stack.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Overrides where the file lives (tests, several stacks side by side).
pub const ENV_STATE_FILE: &str = "WSADMIN_LOCAL_STATE";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalStackInfo {
    pub websocket_url: String,
    pub management_endpoint: String,
    pub dynamodb_endpoint: String,
    pub table: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// The `wsstack` process, to tell a live stack from a stale file.
    pub pid: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum LocalStateError {
    #[error("no local stack is running (no {}): start one with `wsstack local`", path.display())]
    NotRunning { path: PathBuf },
    #[error("the local stack recorded in {} (pid {pid}) is no longer running: start one with `wsstack local`", path.display())]
    Stale { path: PathBuf, pid: u32 },
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a local stack description: {source} (delete it and restart `wsstack local`)", path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl LocalStackInfo {
    /// `$WSADMIN_LOCAL_STATE`, else `<state dir>/wsadmin/local-stack.json`
    /// (`~/.local/state` on Linux), else the same under the temp directory.
    pub fn default_path() -> PathBuf {
        if let Some(p) = std::env::var_os(ENV_STATE_FILE).filter(|p| !p.is_empty()) {
            return PathBuf::from(p);
        }
        dirs::state_dir()
            .or_else(dirs::data_local_dir)
            .unwrap_or_else(std::env::temp_dir)
            .join("wsadmin")
            .join("local-stack.json")
    }

    pub fn write(&self, path: &Path) -> Result<(), LocalStateError> {
        let err = |source| LocalStateError::Write {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let json = serde_json::to_string_pretty(self).map_err(|e| err(std::io::Error::other(e)))?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, json).map_err(err)?;
        std::fs::rename(&tmp, path).map_err(err)
    }

    /// Reads the file and checks that its process still runs (on Linux,
    /// where `/proc` tells).
    pub fn read(path: &Path) -> Result<Self, LocalStateError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(LocalStateError::NotRunning {
                    path: path.to_owned(),
                });
            }
            Err(source) => {
                return Err(LocalStateError::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        let info: Self = serde_json::from_str(&text).map_err(|source| LocalStateError::Parse {
            path: path.to_owned(),
            source,
        })?;
        let proc = Path::new("/proc");
        if proc.is_dir() && !proc.join(info.pid.to_string()).exists() {
            return Err(LocalStateError::Stale {
                path: path.to_owned(),
                pid: info.pid,
            });
        }
        Ok(info)
    }

    /// Removes the file if it still describes this process's stack.
    pub fn remove_if_mine(path: &Path) {
        if let Ok(info) = Self::read(path)
            && info.pid == std::process::id()
        {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(pid: u32) -> LocalStackInfo {
        LocalStackInfo {
            websocket_url: "ws://127.0.0.1:3001/dev".into(),
            management_endpoint: "http://127.0.0.1:3001/dev".into(),
            dynamodb_endpoint: "http://127.0.0.1:4567".into(),
            table: "WS_CONNECTIONS".into(),
            region: "us-east-1".into(),
            access_key_id: "AKIAWSSTACKLOCAL".into(),
            secret_access_key: "wsstack-local-secret".into(),
            pid,
        }
    }

    #[test]
    fn round_trips_and_knows_stale_files() {
        let dir = std::env::temp_dir().join(format!("wsadmin-local-{}", std::process::id()));
        let path = dir.join("nested").join("local-stack.json");
        let err = LocalStackInfo::read(&path).expect_err("missing");
        assert!(
            err.to_string().starts_with("no local stack is running"),
            "{err}"
        );
        let mine = info(std::process::id());
        mine.write(&path).expect("write");
        assert_eq!(LocalStackInfo::read(&path).expect("read"), mine);
        info(u32::MAX - 7).write(&path).expect("write");
        let err = LocalStackInfo::read(&path).expect_err("stale");
        assert!(err.to_string().contains("no longer running"), "{err}");
        std::fs::write(&path, "{").expect("write");
        assert!(matches!(
            LocalStackInfo::read(&path),
            Err(LocalStateError::Parse { .. })
        ));
        mine.write(&path).expect("write");
        LocalStackInfo::remove_if_mine(&path);
        assert!(!path.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}

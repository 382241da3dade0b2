//! What a running `wsstack local` tells the tools that operate it: its
//! endpoints and credentials, in a small JSON file in the user's state
//! directory. `wsadmin`'s built-in `local` context reads it. Nothing here
//! starts or talks to the stack.
//!
//! One stack per state file: `wsstack local` first takes a [`StateClaim`]
//! (an exclusive lock on `FILE.lock`, held while it runs and released by
//! the kernel however it ends), so a second stack with the same file is
//! refused instead of taking the entry over; on stop the claim removes the
//! file only while it still holds what this stack wrote.

use std::ffi::OsString;
use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::files::FileError;

/// Overrides where the file lives (tests, several stacks side by side).
pub const ENV_STATE_FILE: &str = "WSADMIN_LOCAL_STATE";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalStackInfo {
    pub websocket_url: String,
    pub management_endpoint: String,
    pub dynamodb_endpoint: String,
    pub table: String,
    /// The table's hash key, when the stack declares one other than ours
    /// (`connectionId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_key: Option<String>,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// The `wsstack` process, to tell a live stack from a stale file.
    pub pid: u32,
    /// `wss://localhost:PORT/STAGE`, when the stack serves TLS (files
    /// written before it did have none, nor the next two).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wss_url: Option<String>,
    /// `https://localhost:PORT/STAGE`: the Management API over TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub https_management_endpoint: Option<String>,
    /// The PEM certificate of the CA that signed the stack's certificate:
    /// what a client of the TLS endpoint must trust.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// The stage's access log (JSON lines, API Gateway's fields): what
    /// `wsadmin inspect --history` and `wsadmin logs` read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_log: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum LocalStateError {
    #[error("no local stack is running (no {}): start one with `wsstack local`", path.display())]
    NotRunning { path: PathBuf },
    #[error("the local stack recorded in {} (pid {pid}) is no longer running: start one with `wsstack local`", path.display())]
    Stale { path: PathBuf, pid: u32 },
    #[error(transparent)]
    File(#[from] FileError),
    #[error("{} is not a local stack description (delete it and restart `wsstack local`)", path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "another `wsstack local` {running} with the state file {}: stop it first, or give this one its own file with WSADMIN_LOCAL_STATE=PATH", path.display()
    )]
    Busy {
        path: PathBuf,
        /// What the file says of the other stack: `is running (pid N, URL)`,
        /// or `is starting` while it has not written it yet.
        running: String,
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

    /// Claims `path` for this process's stack: refused ([`LocalStateError::Busy`])
    /// while another process holds it. Nothing is written yet.
    pub fn claim(path: &Path) -> Result<StateClaim, LocalStateError> {
        let lock_path = suffixed(path, ".lock");
        let err = FileError::on("write", &lock_path);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(&err)?;
        }
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(&err)?;
        match lock.try_lock() {
            Ok(()) => Ok(StateClaim {
                path: path.to_owned(),
                _lock: lock,
                written: None,
            }),
            Err(TryLockError::WouldBlock) => Err(LocalStateError::Busy {
                path: path.to_owned(),
                running: match Self::read(path) {
                    Ok(other) => format!(
                        "is running (pid {}, {}) and recorded",
                        other.pid, other.websocket_url
                    ),
                    Err(_) => "is starting".to_owned(),
                },
            }),
            Err(TryLockError::Error(source)) => Err(err(source).into()),
        }
    }

    pub fn write(&self, path: &Path) -> Result<(), LocalStateError> {
        let err = FileError::on("write", path);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(&err)?;
        }
        let json = serde_json::to_string_pretty(self).map_err(|e| err(std::io::Error::other(e)))?;
        let tmp = suffixed(path, ".tmp");
        std::fs::write(&tmp, json).map_err(&err)?;
        std::fs::rename(&tmp, path).map_err(&err)?;
        Ok(())
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
            Err(source) => return Err(FileError::on("read", path)(source).into()),
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
}

/// A state file this process's stack holds (see [`LocalStackInfo::claim`]).
/// Dropping it removes the file if it still holds what [`StateClaim::write`]
/// wrote, then lets the file go.
#[derive(Debug)]
pub struct StateClaim {
    path: PathBuf,
    /// Locked while the claim lives; the kernel unlocks it when the
    /// process ends, however it ends.
    _lock: File,
    /// What this stack wrote: only that is removed.
    written: Option<LocalStackInfo>,
}

impl StateClaim {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `info` to the claimed file.
    pub fn write(&mut self, info: LocalStackInfo) -> Result<(), LocalStateError> {
        info.write(&self.path)?;
        self.written = Some(info);
        Ok(())
    }
}

impl Drop for StateClaim {
    fn drop(&mut self) {
        let Some(mine) = &self.written else { return };
        let still_mine = std::fs::read_to_string(&self.path)
            .ok()
            .and_then(|text| serde_json::from_str::<LocalStackInfo>(&text).ok())
            .is_some_and(|info| &info == mine);
        if still_mine {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// `path` with `suffix` added to its file name (`local-stack.json.lock`).
fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(suffix);
    PathBuf::from(name)
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
            table_key: None,
            region: "us-east-1".into(),
            access_key_id: "AKIAWSSTACKLOCAL".into(),
            secret_access_key: "wsstack-local-secret".into(),
            pid,
            wss_url: Some("wss://localhost:3443/dev".into()),
            https_management_endpoint: Some("https://localhost:3443/dev".into()),
            ca_file: Some("/home/u/.local/state/wsadmin/tls/ca.pem".into()),
            access_log: Some("/home/u/.local/state/wsadmin/local-stack.access.log".into()),
        }
    }

    #[test]
    fn files_from_before_tls_still_read() {
        let old = r#"{"websocketUrl":"ws://127.0.0.1:3001/dev","managementEndpoint":"http://127.0.0.1:3001/dev","dynamodbEndpoint":"http://127.0.0.1:4567","table":"WS_CONNECTIONS","region":"us-east-1","accessKeyId":"AKIAWSSTACKLOCAL","secretAccessKey":"wsstack-local-secret","pid":1}"#;
        let read: LocalStackInfo = serde_json::from_str(old).expect("old file");
        assert_eq!(read.wss_url, None);
        assert_eq!(read.ca_file, None);
        assert_eq!(read.access_log, None);
        let json = serde_json::to_value(info(1)).expect("json");
        assert_eq!(json["wssUrl"], "wss://localhost:3443/dev");
        assert_eq!(
            json["httpsManagementEndpoint"],
            "https://localhost:3443/dev"
        );
        assert_eq!(json["caFile"], "/home/u/.local/state/wsadmin/tls/ca.pem");
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
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_claim_is_exclusive_and_removes_only_its_own_entry() {
        let dir = tempfile_dir("claim");
        let path = dir.join("state").join("local-stack.json");
        let mut first = LocalStackInfo::claim(&path).expect("first claim");
        let err = LocalStackInfo::claim(&path).expect_err("claimed");
        assert!(err.to_string().contains("is starting"), "{err}");
        first.write(info(std::process::id())).expect("write");
        let err = LocalStackInfo::claim(&path)
            .expect_err("claimed")
            .to_string();
        assert!(
            err.contains(&format!("pid {}", std::process::id()))
                && err.contains("WSADMIN_LOCAL_STATE"),
            "{err}"
        );
        drop(first);
        assert!(!path.exists(), "its own entry goes with it");

        // An entry someone else wrote meanwhile stays.
        let mut second = LocalStackInfo::claim(&path).expect("free again");
        second.write(info(std::process::id())).expect("write");
        let mut other = info(std::process::id());
        other.websocket_url = "ws://127.0.0.1:9/dev".into();
        other.write(&path).expect("overwrite");
        drop(second);
        assert_eq!(LocalStackInfo::read(&path).expect("kept"), other);
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn tempfile_dir(what: &str) -> PathBuf {
        std::env::temp_dir().join(format!("wsadmin-local-{what}-{}", std::process::id()))
    }
}

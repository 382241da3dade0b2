//! The stage's access log: one JSON line per CONNECT, MESSAGE and
//! DISCONNECT, with the keys and the `$context` values of the access log
//! format our template gives a deployed stage (`requestId`, `requestTime`,
//! `eventType`, `routeKey`, `connectionId`, `status`, `sourceIp`, `error`)
//! plus `requestTimeEpoch`, `integrationErrorMessage` and
//! `disconnectStatusCode`. As API Gateway renders a format, every value is a
//! string and a variable with no value is `-`.
//!
//! Management API calls (`@connections`) are not in it: API Gateway's
//! stage access log records route requests only.
//!
//! Lines are handed to a writer thread: an event never waits on the disk.
//! The file is truncated when the emulator starts (this run's log).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::mpsc::{Sender, channel};

use serde_json::{Map, Value};

use crate::dates;

/// `$context.eventType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Connect,
    Message,
    Disconnect,
}

impl EventType {
    fn as_str(self) -> &'static str {
        match self {
            EventType::Connect => "CONNECT",
            EventType::Message => "MESSAGE",
            EventType::Disconnect => "DISCONNECT",
        }
    }
}

/// One request of the stage, as its access log line says it.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    pub event_type: EventType,
    pub route_key: &'a str,
    pub connection_id: &'a str,
    pub source_ip: &'a str,
    pub request_id: &'a str,
    pub at_ms: i64,
    pub status: u16,
    /// `$context.error.message`: what API Gateway told the client.
    pub error: Option<&'a str>,
    pub integration_error: Option<String>,
    pub disconnect_status_code: Option<u16>,
}

impl<'a> Entry<'a> {
    /// An answered request (200) of `event_type` on `route_key`, now.
    pub fn new(
        event_type: EventType,
        route_key: &'a str,
        connection_id: &'a str,
        source_ip: &'a str,
        request_id: &'a str,
        at_ms: i64,
    ) -> Self {
        Self {
            event_type,
            route_key,
            connection_id,
            source_ip,
            request_id,
            at_ms,
            status: 200,
            error: None,
            integration_error: None,
            disconnect_status_code: None,
        }
    }

    pub fn status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    pub fn error(mut self, message: &'a str) -> Self {
        self.error = Some(message);
        self
    }

    pub fn integration_error(mut self, message: impl ToString) -> Self {
        self.integration_error = Some(message.to_string());
        self
    }

    pub fn close_code(mut self, code: u16) -> Self {
        self.disconnect_status_code = Some(code);
        self
    }

    /// The line, without its newline.
    pub fn line(&self) -> String {
        let dash = |v: Option<String>| Value::String(v.unwrap_or_else(|| "-".to_owned()));
        let mut m = Map::new();
        m.insert("requestId".into(), self.request_id.into());
        m.insert("requestTime".into(), dates::request_time(self.at_ms).into());
        m.insert("requestTimeEpoch".into(), self.at_ms.to_string().into());
        m.insert("eventType".into(), self.event_type.as_str().into());
        m.insert("routeKey".into(), self.route_key.into());
        m.insert("connectionId".into(), self.connection_id.into());
        m.insert("status".into(), self.status.to_string().into());
        m.insert("sourceIp".into(), self.source_ip.into());
        m.insert("error".into(), dash(self.error.map(str::to_owned)));
        m.insert(
            "integrationErrorMessage".into(),
            dash(self.integration_error.clone()),
        );
        m.insert(
            "disconnectStatusCode".into(),
            dash(self.disconnect_status_code.map(|c| c.to_string())),
        );
        Value::Object(m).to_string()
    }
}

/// Where lines go: a file, or nowhere.
#[derive(Debug, Default)]
pub struct AccessLog {
    lines: Option<Mutex<Sender<String>>>,
    path: Option<PathBuf>,
}

impl AccessLog {
    /// Writes to `path` (truncated), from a thread of its own.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let file = File::create(path)?;
        let (tx, rx) = channel::<String>();
        let shown = path.display().to_string();
        std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || {
                let mut out = BufWriter::new(file);
                // Ends when the emulator (every sender) is gone.
                while let Ok(line) = rx.recv() {
                    let mut batch = vec![line];
                    batch.extend(rx.try_iter());
                    let written = batch
                        .iter()
                        .try_for_each(|l| writeln!(out, "{l}"))
                        .and_then(|()| out.flush());
                    if let Err(e) = written {
                        tracing::warn!("access log {shown}: {e}");
                    }
                }
            })?;
        Ok(Self {
            lines: Some(Mutex::new(tx)),
            path: Some(path.to_owned()),
        })
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    pub fn write(&self, entry: Entry<'_>) {
        if let Some(lines) = &self.lines {
            let line = entry.line();
            let _ = lines
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .send(line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_has_the_formats_keys_as_strings_and_dashes_for_none() {
        let line = Entry::new(
            EventType::Disconnect,
            "$disconnect",
            "abc=",
            "127.0.0.1",
            "r1",
            1_700_000_000_123,
        )
        .close_code(4001)
        .line();
        let v: Value = serde_json::from_str(&line).expect("json");
        assert_eq!(v["eventType"], "DISCONNECT");
        assert_eq!(v["status"], "200");
        assert_eq!(v["disconnectStatusCode"], "4001");
        assert_eq!(v["error"], "-");
        assert_eq!(v["integrationErrorMessage"], "-");
        assert_eq!(v["requestTimeEpoch"], "1700000000123");
        assert_eq!(v["requestTime"], "14/Nov/2023:22:13:20 +0000");
    }
}

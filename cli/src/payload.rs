//! The message of `send` and `broadcast`: from --data, --file or standard
//! input, checked (not empty, within API Gateway's 128 KB) before anything
//! is sent.

use std::io::Read;
use std::path::Path;

use anyhow::{Context as _, Result};
use bytes::Bytes;
use wsadmin_core::GatewayError;

use crate::exit::usage;
use crate::flags::PayloadArgs;

/// Reads the payload; `stdin` is true when a bare `-` was given.
pub fn read(args: &PayloadArgs, stdin: bool) -> Result<Bytes> {
    let sources =
        usize::from(args.data.is_some()) + usize::from(args.file.is_some()) + usize::from(stdin);
    if sources == 0 {
        return Err(usage(
            "no message: pass --data TEXT or --file PATH (`--file -` reads standard input)",
        ));
    }
    if sources > 1 {
        return Err(usage(
            "pass the message once: --data TEXT, --file PATH or -, not several",
        ));
    }
    let bytes = match (&args.data, &args.file) {
        (Some(text), _) => Bytes::from(text.clone().into_bytes()),
        (_, Some(path)) if path == Path::new("-") => read_stdin()?,
        (_, Some(path)) => read_file(path)?,
        (None, None) => read_stdin()?,
    };
    if bytes.is_empty() {
        return Err(usage(
            "the message is empty: API Gateway cannot deliver an empty message",
        ));
    }
    GatewayError::check_payload(bytes.len()).map_err(usage)?;
    Ok(bytes)
}

/// Reads at most one byte past the limit, whatever the file is (a
/// regular file is refused by its size before a byte is read; `/dev/zero`
/// or a FIFO by the bytes read).
fn read_file(path: &Path) -> Result<Bytes> {
    let cannot = || {
        format!(
            "cannot read message file {} (check the path and its permissions)",
            path.display()
        )
    };
    let file = std::fs::File::open(path).with_context(cannot)?;
    let meta = file.metadata().with_context(cannot)?;
    if meta.is_dir() {
        return Err(usage(format!(
            "message file {} is a directory",
            path.display()
        )));
    }
    let limit = wsadmin_core::MAX_PAYLOAD_BYTES as u64;
    if meta.is_file() && meta.len() > limit {
        return Err(usage(format!(
            "message file {} is {} bytes, over API Gateway's limit of {limit} bytes (128 KB)",
            path.display(),
            meta.len()
        )));
    }
    let mut data = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut data)
        .with_context(cannot)?;
    Ok(Bytes::from(data))
}

fn read_stdin() -> Result<Bytes> {
    let mut data = Vec::new();
    // One byte past the limit is enough to refuse it.
    std::io::stdin()
        .lock()
        .take(wsadmin_core::MAX_PAYLOAD_BYTES as u64 + 1)
        .read_to_end(&mut data)
        .context("cannot read the message from standard input")?;
    Ok(Bytes::from(data))
}

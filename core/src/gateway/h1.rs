//! The lean path's HTTP/1.1: keep-alive connections of its own (plain TCP
//! or rustls), a request written straight into the connection's buffer and
//! sent with one write, the answer read with `httparse` in the caller's
//! task. No connection task, no channel between tasks, no header map or URI
//! per request: hyper's client cost more than signing, the engine and the
//! scan together (BENCHMARKS.md, issue 18).
//!
//! What it keeps of hyper's client: connections are pooled and reused
//! (most recent first) until idle for [`POOL_IDLE`], one whose server
//! closed it while idle is not reused, a request whose write fails on a
//! reused connection (the server had closed it, so it read nothing) is
//! sent once more on a new one, and an answer that ends early is an
//! error, never retried here (the engine decides). Bodies are read by
//! `Content-Length`, chunked, or to the end of the connection.

use std::io;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::CONNECT_TIMEOUT;
use crate::sdk_error::SdkFailure;

/// Idle pooled connections are closed after this long.
const POOL_IDLE: Duration = Duration::from_secs(90);
/// An answer's head (status line and headers) may be this long at most.
const MAX_HEAD: usize = 64 * 1024;
/// An answer's body may be this long at most (the Management API's are a
/// few hundred bytes).
const MAX_BODY: usize = 8 * 1024 * 1024;
/// Headers read of one answer at most.
const MAX_HEADERS: usize = 64;

/// An answer, with the two headers the lean path reads.
#[derive(Debug)]
pub(super) struct Answer {
    pub status: u16,
    /// `Date`.
    pub date: Option<String>,
    /// `x-amzn-ErrorType`.
    pub error_type: Option<String>,
    pub body: Vec<u8>,
}

/// A pool of HTTP/1.1 connections to one server.
pub(super) struct H1Client {
    /// The host to connect to (an IPv6 address without its brackets).
    host: String,
    port: u16,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    idle: Mutex<Vec<Conn>>,
}

impl std::fmt::Debug for H1Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H1Client")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

struct Conn {
    io: Io,
    /// Bytes read and not yet parsed.
    read: BytesMut,
    /// The request being written.
    write: Vec<u8>,
    idle_since: Instant,
    /// Reused from the pool for this request.
    reused: bool,
}

enum Io {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Io {
    fn tcp(&self) -> &TcpStream {
        match self {
            Io::Plain(s) => s,
            Io::Tls(s) => s.get_ref().0,
        }
    }

    async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Io::Plain(s) => s.write_all(bytes).await,
            Io::Tls(s) => {
                s.write_all(bytes).await?;
                s.flush().await
            }
        }
    }

    async fn read_buf(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        match self {
            Io::Plain(s) => s.read_buf(buf).await,
            Io::Tls(s) => s.read_buf(buf).await,
        }
    }
}

/// How an answer's body is framed.
enum Framing {
    Length(usize),
    Chunked,
    /// To the end of the connection (then it cannot be reused).
    ToClose,
}

impl Conn {
    /// Whether an idle connection may carry a request: the server has not
    /// closed it (nothing readable: an idle connection is sent nothing but
    /// its end).
    fn open(&self) -> bool {
        let mut byte = [0u8; 1];
        let mut buf = ReadBuf::new(&mut byte);
        let mut cx = Context::from_waker(Waker::noop());
        matches!(self.io.tcp().poll_peek(&mut cx, &mut buf), Poll::Pending)
    }

    /// Reads more of the answer; the end of the connection is an error.
    async fn fill(&mut self) -> io::Result<()> {
        if self.read.capacity() - self.read.len() < 1024 {
            self.read.reserve(8 * 1024);
        }
        match self.io.read_buf(&mut self.read).await? {
            0 => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed before the answer was complete",
            )),
            _ => Ok(()),
        }
    }

    /// Reads one answer; also whether the connection may be reused.
    async fn answer(&mut self) -> io::Result<(Answer, bool)> {
        loop {
            // Parsed apart from the awaits: the headers' array stays off
            // the future.
            let (head, head_len) = loop {
                match parse_head(&self.read)? {
                    Some(parsed) => break parsed,
                    None if self.read.len() < MAX_HEAD => self.fill().await?,
                    None => return Err(invalid("an answer's head over 64 KiB")),
                }
            };
            let Head {
                status,
                date,
                error_type,
                framing,
                mut reusable,
            } = head;
            self.read.advance(head_len);
            // An interim answer (100 Continue): the real one follows.
            if (100..200).contains(&status) && status != 101 {
                continue;
            }
            let framing = if status == 204 || status == 304 || (100..200).contains(&status) {
                Framing::Length(0)
            } else {
                framing
            };
            let body = match framing {
                Framing::Length(len) => {
                    if len > MAX_BODY {
                        return Err(invalid("an answer's body over 8 MiB"));
                    }
                    while self.read.len() < len {
                        self.fill().await?;
                    }
                    let body = self.read[..len].to_vec();
                    self.read.advance(len);
                    body
                }
                Framing::Chunked => self.chunked().await?,
                Framing::ToClose => {
                    reusable = false;
                    loop {
                        if self.read.len() > MAX_BODY {
                            return Err(invalid("an answer's body over 8 MiB"));
                        }
                        self.read.reserve(8 * 1024);
                        if self.io.read_buf(&mut self.read).await? == 0 {
                            break;
                        }
                    }
                    std::mem::take(&mut self.read).to_vec()
                }
            };
            // Bytes past the answer: nothing was asked for them.
            if !self.read.is_empty() {
                reusable = false;
            }
            return Ok((
                Answer {
                    status,
                    date,
                    error_type,
                    body,
                },
                reusable,
            ));
        }
    }

    /// A chunked body, its trailers skipped.
    async fn chunked(&mut self) -> io::Result<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let size = loop {
                match httparse::parse_chunk_size(&self.read) {
                    Ok(httparse::Status::Complete((len, size))) => {
                        self.read.advance(len);
                        break size;
                    }
                    Ok(httparse::Status::Partial) if self.read.len() < MAX_HEAD => {
                        self.fill().await?
                    }
                    _ => return Err(invalid("an unreadable chunk size")),
                }
            };
            let size = usize::try_from(size)
                .ok()
                .filter(|s| body.len() + s <= MAX_BODY)
                .ok_or_else(|| invalid("an answer's body over 8 MiB"))?;
            if size == 0 {
                // Trailers, each a line, then an empty line.
                loop {
                    let line = loop {
                        match self.read.windows(2).position(|w| w == b"\r\n") {
                            Some(at) => break at,
                            None if self.read.len() < MAX_HEAD => self.fill().await?,
                            None => return Err(invalid("trailers over 64 KiB")),
                        }
                    };
                    self.read.advance(line + 2);
                    if line == 0 {
                        return Ok(body);
                    }
                }
            }
            while self.read.len() < size + 2 {
                self.fill().await?;
            }
            if &self.read[size..size + 2] != b"\r\n" {
                return Err(invalid("a chunk without its line end"));
            }
            body.extend_from_slice(&self.read[..size]);
            self.read.advance(size + 2);
        }
    }
}

struct Head {
    status: u16,
    date: Option<String>,
    error_type: Option<String>,
    framing: Framing,
    reusable: bool,
}

/// The answer's head and its length, once `buf` holds all of it.
fn parse_head(buf: &[u8]) -> io::Result<Option<(Head, usize)>> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut res = httparse::Response::new(&mut headers);
    match res.parse(buf) {
        Ok(httparse::Status::Complete(len)) => Ok(Some((read_head(&res)?, len))),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(e) => Err(invalid(&format!("an unreadable answer ({e})"))),
    }
}

fn read_head(res: &httparse::Response<'_, '_>) -> io::Result<Head> {
    let status = res
        .code
        .ok_or_else(|| invalid("an answer without a status"))?;
    let mut head = Head {
        status,
        date: None,
        error_type: None,
        framing: Framing::ToClose,
        // HTTP/1.0 closes unless asked not to: not reused.
        reusable: res.version == Some(1),
    };
    let mut length = None;
    let mut chunked = false;
    for h in res.headers.iter() {
        let name = h.name;
        let text = || std::str::from_utf8(h.value).ok().map(str::trim);
        if name.eq_ignore_ascii_case("content-length") {
            let len = text()
                .and_then(|t| t.parse::<usize>().ok())
                .ok_or_else(|| invalid("an unreadable Content-Length"))?;
            if length.is_some_and(|l| l != len) {
                return Err(invalid("two different Content-Lengths"));
            }
            length = Some(len);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = text().is_some_and(|t| {
                t.rsplit(',')
                    .next()
                    .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"))
            });
            if !chunked {
                return Err(invalid("a transfer encoding other than chunked"));
            }
        } else if name.eq_ignore_ascii_case("connection") {
            if text().is_some_and(|t| {
                t.split(',')
                    .any(|token| token.trim().eq_ignore_ascii_case("close"))
            }) {
                head.reusable = false;
            }
        } else if name.eq_ignore_ascii_case("date") {
            head.date = text().map(str::to_owned);
        } else if name.eq_ignore_ascii_case("x-amzn-errortype") {
            head.error_type = text().map(str::to_owned);
        }
    }
    head.framing = match (chunked, length) {
        (true, _) => Framing::Chunked,
        (false, Some(len)) => Framing::Length(len),
        (false, None) => Framing::ToClose,
    };
    Ok(head)
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("the server sent {what}"),
    )
}

impl H1Client {
    /// A client for `host:port`, over TLS with `tls` (HTTP/1.1 offered by
    /// ALPN) when given.
    pub fn new(host: &str, port: u16, tls: Option<rustls::ClientConfig>) -> Result<Self, String> {
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host)
            .to_owned();
        let tls = match tls {
            None => None,
            Some(mut config) => {
                config.alpn_protocols = vec![b"http/1.1".to_vec()];
                let name = ServerName::try_from(host.clone())
                    .map_err(|e| format!("{host} is no TLS server name: {e}"))?;
                Some((TlsConnector::from(Arc::new(config)), name))
            }
        };
        Ok(Self {
            host,
            port,
            tls,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// Sends the request `write` puts in the buffer it is given, and reads
    /// its answer. Only a request that never reached the server (its write
    /// failed on a connection the server had closed) is sent again.
    pub async fn send(&self, write: impl Fn(&mut Vec<u8>)) -> Result<Answer, SdkFailure> {
        let mut conn = self.checkout().await?;
        loop {
            conn.write.clear();
            write(&mut conn.write);
            let sent = {
                let Conn { io, write, .. } = &mut conn;
                io.write_all(write).await
            };
            match sent {
                Ok(()) => break,
                Err(_) if conn.reused => conn = Box::pin(self.connect()).await?,
                Err(e) => return Err(failure(e)),
            }
        }
        let (answer, reusable) = conn.answer().await.map_err(failure)?;
        if reusable {
            conn.idle_since = Instant::now();
            conn.reused = true;
            self.idle
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(conn);
        }
        Ok(answer)
    }

    /// The most recently used open connection, or a new one.
    async fn checkout(&self) -> Result<Conn, SdkFailure> {
        loop {
            let conn = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
            match conn {
                Some(conn) if conn.idle_since.elapsed() < POOL_IDLE && conn.open() => {
                    return Ok(conn);
                }
                Some(_stale) => continue,
                // Boxed: a TLS handshake's state is large, and
                // rare; every request's future would carry its size.
                None => return Box::pin(self.connect()).await,
            }
        }
    }

    async fn connect(&self) -> Result<Conn, SdkFailure> {
        let connecting = async {
            let tcp = TcpStream::connect((self.host.as_str(), self.port)).await?;
            tcp.set_nodelay(true)?;
            let io = match &self.tls {
                None => Io::Plain(tcp),
                Some((connector, name)) => {
                    Io::Tls(Box::new(connector.connect(name.clone(), tcp).await?))
                }
            };
            Ok::<_, io::Error>(io)
        };
        let io = match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
            Ok(io) => io.map_err(failure)?,
            Err(_) => {
                return Err(SdkFailure::Timeout(format!(
                    "no connection to {}:{} within {CONNECT_TIMEOUT:?}",
                    self.host, self.port
                )));
            }
        };
        Ok(Conn {
            io,
            read: BytesMut::with_capacity(8 * 1024),
            write: Vec::with_capacity(1024),
            idle_since: Instant::now(),
            reused: false,
        })
    }
}

/// No answer: a refused or reset connection, a TLS failure, an answer
/// that broke off or made no sense.
fn failure(e: io::Error) -> SdkFailure {
    let text = match e.get_ref() {
        // rustls's and our own errors: their own words.
        Some(inner) => inner.to_string(),
        None => e.to_string(),
    };
    match e.kind() {
        io::ErrorKind::TimedOut => SdkFailure::Timeout(text),
        _ => SdkFailure::Unreachable(text),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// What the raw server does with each request, in turn.
    #[derive(Clone, Copy)]
    enum Then {
        /// Answers these bytes and keeps the connection.
        Answer(&'static [u8]),
        /// Answers these bytes, then closes the connection.
        AnswerAndClose(&'static [u8]),
        /// Closes the connection without an answer.
        Close,
    }

    struct Raw {
        port: u16,
        connections: Arc<AtomicUsize>,
        requests: Arc<Mutex<Vec<String>>>,
    }

    /// A server on 127.0.0.1 that reads each request (head and
    /// `content-length` body) and does the next step of `script`.
    async fn raw(script: Vec<Then>) -> Raw {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let steps = Arc::new(Mutex::new(script.into_iter()));
        let (c, r) = (connections.clone(), requests.clone());
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                c.fetch_add(1, Ordering::SeqCst);
                let (steps, requests) = (steps.clone(), r.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    loop {
                        let Some(request) = read_request(&mut socket, &mut buf).await else {
                            return;
                        };
                        requests.lock().expect("lock").push(request);
                        let step = steps.lock().expect("lock").next();
                        match step {
                            Some(Then::Answer(bytes)) => {
                                socket.write_all(bytes).await.expect("write")
                            }
                            Some(Then::AnswerAndClose(bytes)) => {
                                socket.write_all(bytes).await.expect("write");
                                return;
                            }
                            Some(Then::Close) | None => return,
                        }
                    }
                });
            }
        });
        Raw {
            port,
            connections,
            requests,
        }
    }

    async fn read_request(socket: &mut tokio::net::TcpStream, buf: &mut Vec<u8>) -> Option<String> {
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .map_or(0, |l| l.parse::<usize>().expect("length"));
                if buf.len() >= end + 4 + length {
                    let request = String::from_utf8_lossy(&buf[..end + 4 + length]).into_owned();
                    buf.drain(..end + 4 + length);
                    return Some(request);
                }
            }
            let mut chunk = [0u8; 4096];
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    fn client(port: u16) -> H1Client {
        H1Client::new("127.0.0.1", port, None).expect("client")
    }

    async fn post(client: &H1Client, body: &str) -> Result<Answer, SdkFailure> {
        client
            .send(|out| {
                out.extend_from_slice(
                    format!(
                        "POST /dev/@connections/a HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    )
                    .as_bytes(),
                )
            })
            .await
    }

    const OK: &[u8] =
        b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\ndate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n";

    #[tokio::test]
    async fn one_connection_carries_requests_in_turn() {
        let server = raw(vec![Then::Answer(OK); 3]).await;
        let client = client(server.port);
        for body in ["a", "bb", "ccc"] {
            let answer = post(&client, body).await.expect("answer");
            assert_eq!(answer.status, 200);
            assert_eq!(
                answer.date.as_deref(),
                Some("Sun, 06 Nov 1994 08:49:37 GMT")
            );
            assert!(answer.body.is_empty());
        }
        assert_eq!(server.connections.load(Ordering::SeqCst), 1);
        let requests = server.requests.lock().expect("lock").clone();
        assert_eq!(requests.len(), 3);
        assert!(requests[2].ends_with("\r\n\r\nccc"), "{requests:?}");
    }

    #[tokio::test]
    async fn bodies_are_read_by_length_chunks_or_to_the_close() {
        let server = raw(vec![
            Then::Answer(
                b"HTTP/1.1 410 Gone\r\nx-amzn-ErrorType: GoneException\r\ncontent-length: 14\r\n\r\n{\"message\":\"\"}",
            ),
            Then::Answer(
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n6\r\n world\r\n0\r\ntrailer: t\r\n\r\n",
            ),
            Then::AnswerAndClose(b"HTTP/1.1 500 Oops\r\n\r\nto the end"),
            Then::Answer(OK),
        ])
        .await;
        let client = client(server.port);
        let gone = post(&client, "").await.expect("gone");
        assert_eq!(
            (gone.status, gone.error_type.as_deref(), &gone.body[..]),
            (410, Some("GoneException"), &b"{\"message\":\"\"}"[..])
        );
        let chunked = post(&client, "").await.expect("chunked");
        assert_eq!(
            (chunked.status, &chunked.body[..]),
            (200, &b"hello world"[..])
        );
        let to_close = post(&client, "").await.expect("to the close");
        assert_eq!(
            (to_close.status, &to_close.body[..]),
            (500, &b"to the end"[..])
        );
        // The connection read to its end is not reused.
        assert_eq!(post(&client, "").await.expect("ok").status, 200);
        assert_eq!(server.connections.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_connection_the_server_closed_is_not_reused() {
        let server = raw(vec![
            Then::AnswerAndClose(
                b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
            ),
            // Closed after answering, without saying so: found closed
            // while idle.
            Then::AnswerAndClose(OK),
            Then::Answer(OK),
        ])
        .await;
        let client = client(server.port);
        for _ in 0..3 {
            assert_eq!(post(&client, "x").await.expect("answer").status, 200);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(server.connections.load(Ordering::SeqCst), 3);
        assert_eq!(server.requests.lock().expect("lock").len(), 3);
    }

    #[tokio::test]
    async fn an_answer_that_breaks_off_is_a_failure_sent_once() {
        let server = raw(vec![Then::Answer(OK), Then::Close]).await;
        let client = client(server.port);
        post(&client, "first").await.expect("first");
        match post(&client, "second").await {
            Err(SdkFailure::Unreachable(text)) => {
                assert!(text.contains("closed before the answer"), "{text}")
            }
            other => panic!("{other:?}"),
        }
        // Read by the server, so not sent again.
        assert_eq!(server.requests.lock().expect("lock").len(), 2);
    }

    #[tokio::test]
    async fn answers_that_make_no_sense_are_failures() {
        for bad in [
            &b"HTTP/1.1 2000 OK\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
        ] {
            let bad: &'static [u8] = Box::leak(bad.to_vec().into_boxed_slice());
            let server = raw(vec![Then::AnswerAndClose(bad)]).await;
            match post(&client(server.port), "x").await {
                Err(SdkFailure::Unreachable(text)) => {
                    assert!(text.starts_with("the server sent"), "{text}")
                }
                other => panic!("{}: {other:?}", String::from_utf8_lossy(bad)),
            }
        }
    }

    #[tokio::test]
    async fn a_refused_connection_says_so() {
        let port = wsadmin_testkit::closed_port();
        match post(&client(port), "x").await {
            Err(SdkFailure::Unreachable(text)) => {
                assert!(text.to_lowercase().contains("refused"), "{text}")
            }
            other => panic!("{other:?}"),
        }
    }
}

//! Bad input, as property tests (issue 8's "Bad input" acceptance): route
//! selection, event JSON, Management API requests and client frames. Each
//! input gets a clear answer, nothing panics (a panic hook counts panics on
//! every thread, the in-process stack's included), and other connections are
//! unaffected. One stack per property, never one per case.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sdk_apigatewaymanagement::primitives::Blob;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use futures::{SinkExt, StreamExt};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use wsadmin_core::stack::StackSpec;
use wsadmin_emulator::event::{self, Context, Kind};
use wsadmin_emulator::{
    LOCAL_ACCESS_KEY_ID, LOCAL_REGION, LOCAL_SECRET_ACCESS_KEY, MAX_MESSAGE_BYTES, route,
};
use wsadmin_harness::{Client, Harness, recv_text, start};

// ---------------------------------------------------------------- helpers

/// Counts panics on any thread of this process from the moment it is called.
fn count_panics() -> &'static AtomicUsize {
    static PANICS: AtomicUsize = AtomicUsize::new(0);
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            previous(info);
        }));
    });
    &PANICS
}

/// A runner for properties over one stack (no regression files: the
/// `proptest!` properties keep theirs).
fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config {
        failure_persistence: None,
        ..Config::with_cases(cases)
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Arbitrary JSON, nested a few levels.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        any::<String>().prop_map(Value::String),
        "[a-zA-Z$]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z$._]{0,10}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// JSON pointers to every node of `v` (the root is `""`).
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                pointers(item, format!("{at}/{i}"), out);
            }
        }
        Value::Object(map) => {
            for (k, item) in map {
                let key = k.replace('~', "~0").replace('/', "~1");
                pointers(item, format!("{at}/{key}"), out);
            }
        }
        _ => {}
    }
    out.push(at);
}

async fn bystander_still_served(h: &Harness, bystander: &mut Client, marker: &str) {
    h.management()
        .post_to_connection()
        .connection_id(&bystander.id)
        .data(Blob::new(marker.to_owned()))
        .send()
        .await
        .expect("post to the bystander");
    // Broadcasts the cases caused may come first.
    while recv_text(&mut bystander.ws).await != marker {}
}

/// One stack for a whole property, on its own runtime, with a bystander
/// client that no case may disturb, and the panics counted from the start.
struct OneStack {
    rt: tokio::runtime::Runtime,
    h: Harness,
    bystander: tokio::sync::Mutex<Client>,
    bystander_id: String,
    panics_before: usize,
}

impl OneStack {
    fn start() -> Self {
        let panics_before = count_panics().load(Ordering::SeqCst);
        let rt = runtime();
        let h = rt.block_on(start(|_| {}));
        let bystander = rt.block_on(h.client("bystander"));
        Self {
            bystander_id: bystander.id.clone(),
            bystander: tokio::sync::Mutex::new(bystander),
            rt,
            h,
            panics_before,
        }
    }

    /// The bystander still receives a post (`marker`).
    async fn bystander_served(&self, marker: &str) {
        let mut bystander = self.bystander.lock().await;
        bystander_still_served(&self.h, &mut bystander, marker).await;
    }

    /// Stops the stack; fails with the property's failure, or if anything
    /// panicked meanwhile.
    fn finish<T: std::fmt::Debug>(self, result: Result<(), TestError<T>>) {
        self.rt.block_on(self.h.stop());
        if let Err(e) = result {
            panic!("{e}");
        }
        assert_eq!(
            count_panics().load(Ordering::SeqCst),
            self.panics_before,
            "something panicked"
        );
    }
}

// ---------------------------------------------------------- route selection

fn routes_with_default(k: &str) -> bool {
    ["$connect", "$disconnect", "$default", "message"].contains(&k)
}

proptest! {
    #![proptest_config(Config::with_cases(256))]

    /// Whatever the expression and the body: no panic, and a route.
    #[test]
    fn route_selection_never_panics(
        expression in prop_oneof![
            any::<String>(),
            "\\$request\\.body\\.[a-zA-Z0-9_.$]{0,20}",
            "\\$\\{request\\.body\\.[a-zA-Z0-9_.]{0,20}\\}",
        ],
        body in prop_oneof![any::<String>(), json().prop_map(|v| v.to_string())],
    ) {
        let spec = StackSpec { route_selection_expression: expression, ..StackSpec::default() };
        if let Ok(path) = spec.selection_path() {
            let selected = route::select(&body, &path);
            let key = route::resolve(selected, routes_with_default);
            prop_assert!(key.is_some(), "with $default, every message has a route");
        }
    }

    /// A body that is not JSON goes to `$default`.
    #[test]
    fn non_json_goes_to_default(body in any::<String>()) {
        prop_assume!(serde_json::from_str::<Value>(&body).is_err());
        let selected = route::select(&body, &["type"]);
        prop_assert_eq!(selected.clone(), None);
        let resolved = route::resolve(selected, routes_with_default);
        prop_assert_eq!(resolved.as_deref(), Some("$default"));
    }

    /// JSON without the key (or with a non-string there) goes to `$default`;
    /// with a string there, to that route if it exists and is not reserved.
    #[test]
    fn the_key_decides(mut value in json(), key in prop_oneof![
        Just(None),
        Just(Some(Value::from("message"))),
        Just(Some(Value::from("$connect"))),
        Just(Some(Value::from("$default"))),
        "[a-z$]{0,8}".prop_map(|s| Some(Value::from(s))),
        json().prop_map(Some),
    ]) {
        if let Value::Object(map) = &mut value {
            map.remove("type");
            if let Some(k) = key.clone() {
                map.insert("type".into(), k);
            }
        }
        let selected = route::select(&value.to_string(), &["type"]);
        let want = match (&value, &key) {
            (Value::Object(_), Some(Value::String(s))) => {
                prop_assert_eq!(selected.as_deref(), Some(s.as_str()));
                if s == "message" { "message" } else { "$default" }
            }
            _ => {
                prop_assert_eq!(selected.clone(), None);
                "$default"
            }
        };
        let resolved = route::resolve(selected, routes_with_default);
        prop_assert_eq!(resolved.as_deref(), Some(want));
    }
}

#[test]
fn deeply_nested_bodies_go_to_default_without_overflowing() {
    for body in ["[".repeat(100_000), "{\"type\":".repeat(50_000)] {
        assert_eq!(route::select(&body, &["type"]), None);
    }
}

// ------------------------------------------------------------ event JSON

fn valid_event(kind: u8, ctx_strings: &[String; 4], times: (i64, i64), body: &str) -> Value {
    let ctx = Context {
        api_id: &ctx_strings[0],
        stage: &ctx_strings[1],
        domain_name: &ctx_strings[2],
        connection_id: &ctx_strings[3],
        connected_at_ms: times.0,
        source_ip: "127.0.0.1",
        user_agent: Some(&ctx_strings[0]),
        authorizer: None,
        caller: None,
    };
    let headers = [("Host".to_owned(), ctx_strings[2].clone())];
    let query = [("q".to_owned(), body.to_owned())];
    let kind = match kind % 3 {
        0 => Kind::Connect {
            headers: &headers,
            query: &query,
        },
        1 => Kind::Message {
            route_key: "message",
            message_id: "mid=",
            body,
            is_base64: false,
        },
        _ => Kind::Disconnect {
            status_code: 1006,
            reason: body,
        },
    };
    event::build(&ctx, &kind, "rid=", times.1)
}

proptest! {
    #![proptest_config(Config::with_cases(256))]

    /// The builders take any strings and times and always produce an event
    /// Lambda's deserialiser reads back, with the same values.
    #[test]
    fn built_events_always_parse_back(
        kind in any::<u8>(),
        strings in any::<[String; 4]>(),
        times in any::<(i64, i64)>(),
        body in any::<String>(),
    ) {
        let ev = valid_event(kind, &strings, times, &body);
        let parsed = wsadmin_handlers::parse_event(&ev.to_string());
        prop_assert!(parsed.is_ok(), "{:?}", parsed.err());
        let parsed = parsed.expect("checked");
        prop_assert_eq!(parsed.request_context.connection_id.as_deref(), Some(strings[3].as_str()));
        prop_assert_eq!(parsed.request_context.connected_at, times.0);
        prop_assert_eq!(parsed.request_context.request_time_epoch, times.1);
    }

    /// Any text, any JSON: an event or an error, never a panic.
    #[test]
    fn arbitrary_json_is_an_error_not_a_panic(
        text in prop_oneof![any::<String>(), json().prop_map(|v| v.to_string())],
    ) {
        let _ = wsadmin_handlers::parse_event(&text);
    }

    /// A valid event with one node removed or replaced: an event or an
    /// error (one that says what is wrong), never a panic.
    #[test]
    fn mutated_events_are_errors_not_panics(
        kind in any::<u8>(),
        strings in any::<[String; 4]>(),
        times in any::<(i64, i64)>(),
        at in any::<Index>(),
        replacement in prop::option::of(json()),
    ) {
        let mut ev = valid_event(kind, &strings, times, "{\"type\":\"message\"}");
        let mut all = Vec::new();
        pointers(&ev, String::new(), &mut all);
        let pointer = at.get(&all).clone();
        match (replacement, pointer.rsplit_once('/')) {
            (Some(v), _) => {
                if let Some(node) = ev.pointer_mut(&pointer) {
                    *node = v;
                }
            }
            (None, Some((parent, key))) => {
                match ev.pointer_mut(parent) {
                    Some(Value::Object(map)) => {
                        map.remove(&key.replace("~1", "/").replace("~0", "~"));
                    }
                    Some(Value::Array(items)) => {
                        if let Ok(i) = key.parse::<usize>() && i < items.len() {
                            items.remove(i);
                        }
                    }
                    _ => {}
                }
            }
            (None, None) => ev = Value::Null,
        }
        if let Err(e) = wsadmin_handlers::parse_event(&ev.to_string()) {
            prop_assert!(e.to_string().starts_with("not an API Gateway WebSocket event"), "{e}");
        }
    }
}

// ---------------------------------------------------- Management API requests

/// Characters a path segment may carry on the wire, `%` included.
const SEGMENT_CHARS: &[u8] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@%";

/// A raw id segment: valid-looking ids, stray `%`, broken and arbitrary
/// escapes (control characters, `/`, invalid UTF-8), overlong ids.
fn raw_id() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => prop::sample::select(SEGMENT_CHARS).prop_map(|c| char::from(c).to_string()),
        2 => any::<u8>().prop_map(|b| format!("%{b:02X}")),
        1 => "%[0-9a-fA-F]?[g-z]?".prop_map(|s| s),
        1 => Just("%3D".to_owned()),
    ];
    prop_oneof![
        6 => prop::collection::vec(piece, 1..24).prop_map(|p| p.concat()),
        2 => "[A-Za-z0-9_=-]{1,24}",
        1 => (1usize..400).prop_map(|n| "A".repeat(n)),
        1 => Just("L0SM9cOFvHcCIhw%3D".to_owned()),
    ]
}

/// What a raw id should get, decided independently of the emulator's code:
/// malformed escape, not UTF-8, empty, over 256 bytes, whitespace, control
/// characters or one of `/ ? # %` once decoded: 400; otherwise 410 (no such
/// connection).
fn expected_for(raw: &str) -> u16 {
    let bytes = raw.as_bytes();
    let mut decoded = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            match bytes.get(i + 1..i + 3).and_then(|h| {
                std::str::from_utf8(h)
                    .ok()
                    .filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit()))
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
            }) {
                Some(b) => decoded.push(b),
                None => return 400,
            }
            i += 3;
        } else {
            decoded.push(bytes[i]);
            i += 1;
        }
    }
    let Ok(id) = String::from_utf8(decoded) else {
        return 400;
    };
    let bad = id.is_empty()
        || id.len() > 256
        || id
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || "/?#%".contains(c));
    if bad { 400 } else { 410 }
}

/// One HTTP/1.1 exchange over a fresh socket. The body is written while the
/// answer is read, so an early answer (403, 413) is never lost to a reset.
async fn exchange(
    addr: SocketAddr,
    head: &str,
    body: Vec<u8>,
    expect_body: bool,
) -> (u16, String, String) {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut rd, mut wr) = stream.into_split();
    let head = head.to_owned();
    let writer = tokio::spawn(async move {
        let _ = wr.write_all(head.as_bytes()).await;
        let _ = wr.write_all(&body).await;
        wr
    });
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    let answer = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&got[..end]).to_lowercase();
                let len = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                let want = if expect_body { len } else { 0 };
                if got.len() >= end + 4 + want {
                    let body = String::from_utf8_lossy(&got[end + 4..end + 4 + want]).into_owned();
                    return (head, body);
                }
            }
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => panic!(
                    "connection ended before a full answer: {:?}",
                    String::from_utf8_lossy(&got)
                ),
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .expect("an answer within 10 s");
    writer.abort();
    let (head, body) = answer;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    (status, head, body)
}

/// A request head signed with the stack's credentials, as an SDK signs.
fn signed_head(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> String {
    let identity: Identity = Credentials::new(
        LOCAL_ACCESS_KEY_ID,
        LOCAL_SECRET_ACCESS_KEY,
        None,
        None,
        "test",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(LOCAL_REGION)
        .name("execute-api")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .expect("params")
        .into();
    let host = addr.to_string();
    let request = SignableRequest::new(
        method,
        format!("http://{host}{path}"),
        [("host", host.as_str())].into_iter(),
        SignableBody::Bytes(body),
    )
    .expect("signable");
    let (instructions, _) = sign(request, &params).expect("sign").into_parts();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\n");
    for (name, value) in instructions.headers() {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    head
}

fn assert_aws_error(
    status: u16,
    head: &str,
    body: &str,
    want: (u16, &str),
    expect_body: bool,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(status, want.0, "{}", head);
    let error_type = format!("x-amzn-errortype: {}", want.1.to_lowercase());
    prop_assert!(head.contains(&error_type), "{}", head);
    if expect_body {
        let json: Value = serde_json::from_str(body)
            .map_err(|e| TestCaseError::fail(format!("not JSON ({e}): {body:?}")))?;
        prop_assert!(json["message"].is_string(), "{}", body);
    }
    Ok(())
}

#[test]
fn management_requests_get_aws_answers_in_aws_order() {
    let one = OneStack::start();
    let addr = one.h.addr();

    let mut runner = runner(96);
    let method = prop_oneof![
        4 => prop::sample::select(vec!["GET", "POST", "DELETE"]),
        1 => prop::sample::select(vec!["PUT", "PATCH", "OPTIONS", "HEAD", "FROB"]),
    ];
    let body_len = prop_oneof![
        3 => 0usize..64,
        1 => Just(MAX_MESSAGE_BYTES + 1),
        1 => Just(200 * 1024),
    ];
    let cases = (method, raw_id(), body_len, any::<bool>());
    let result = runner.run(&cases, |(method, raw, body_len, signed)| {
        one.rt.block_on(async {
            let path = format!("/dev/@connections/{raw}");
            let body = vec![b'x'; body_len];
            let expect_body = method != "HEAD";
            let known = matches!(method, "GET" | "POST" | "DELETE");
            let head = if signed {
                signed_head(addr, method, &path, &body)
            } else {
                format!(
                    "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {body_len}\r\nConnection: close\r\n\r\n"
                )
            };
            let (status, head, text) = exchange(addr, &head, body, expect_body).await;
            let want = if !known || !signed {
                // Unsigned: refused before the size or the id is looked at.
                (403, "ForbiddenException")
            } else if body_len > MAX_MESSAGE_BYTES {
                (413, "PayloadTooLargeException")
            } else if expected_for(&raw) == 400 {
                (400, "BadRequestException")
            } else {
                (410, "GoneException")
            };
            assert_aws_error(status, &head, &text, want, expect_body)?;
            if want.0 == 400 {
                prop_assert!(text.contains("Invalid connectionId"), "{}", text);
            }
            Ok(())
        })
    });
    one.rt.block_on(one.bystander_served("still here"));
    one.finish(result);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_client_gets_400_for_an_id_that_cannot_be() {
    let h = start(|_| {}).await;
    for id in ["%%%", "a/b", "a b", &"A".repeat(300)] {
        let e = h
            .management()
            .get_connection()
            .connection_id(id)
            .send()
            .await
            .expect_err("400");
        let status = e.raw_response().map(|r| r.status().as_u16());
        assert_eq!(status, Some(400), "{id}: {e:?}");
        let message = e
            .as_service_error()
            .and_then(aws_sdk_apigatewaymanagement::error::ProvideErrorMetadata::message)
            .unwrap_or_default();
        assert!(message.starts_with("Invalid connectionId"), "{message}");
    }
    h.stop().await;
}

// ----------------------------------------------------------- client frames

/// A WebSocket frame built by hand, often wrongly: any opcode, RSV bits,
/// masked or not, a length that may lie, any payload.
fn raw_frame() -> impl Strategy<Value = Vec<u8>> {
    // Mostly well-formed headers, so the payload rules are reached too.
    (
        any::<bool>(),
        prop_oneof![4 => Just(0u8), 1 => 0u8..8],
        prop_oneof![4 => prop::sample::select(vec![0u8, 1, 2, 8, 9, 10]), 1 => 0u8..16],
        prop::bool::weighted(0.85),
        prop_oneof![4 => Just(None), 1 => any::<u64>().prop_map(Some)],
        prop::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(|(fin, rsv, opcode, masked, lie, payload)| {
            let mut f = vec![(u8::from(fin) << 7) | (rsv << 4) | opcode];
            let len = lie.unwrap_or(payload.len() as u64);
            let mask_bit = u8::from(masked) << 7;
            if len < 126 {
                f.push(mask_bit | len as u8);
            } else if len <= u64::from(u16::MAX) {
                f.push(mask_bit | 126);
                f.extend_from_slice(&(len as u16).to_be_bytes());
            } else {
                f.push(mask_bit | 127);
                f.extend_from_slice(&len.to_be_bytes());
            }
            if masked {
                f.extend_from_slice(&[1, 2, 3, 4]);
                f.extend(
                    payload
                        .iter()
                        .enumerate()
                        .map(|(i, b)| b ^ [1, 2, 3, 4][i % 4]),
                );
            } else {
                f.extend_from_slice(&payload);
            }
            f
        })
}

/// A real handshake over a plain socket, so raw bytes can follow.
async fn raw_client(addr: SocketAddr) -> TcpStream {
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "GET /dev HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         User-Agent: raw-frames\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).await.expect("write");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tcp.read(&mut byte).await.expect("read");
        assert_eq!(n, 1, "closed during the handshake");
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "handshake refused");
    tcp
}

#[test]
fn random_bytes_and_malformed_frames_end_only_that_connection() {
    let one = OneStack::start();
    let addr = one.h.addr();

    let mut runner = runner(64);
    let input = prop_oneof![
        prop::collection::vec(any::<u8>(), 1..2048),
        prop::collection::vec(raw_frame(), 1..4).prop_map(|f| f.concat()),
    ];
    let cases = AtomicUsize::new(0);
    let result = runner.run(&input, |bytes| {
        let case = cases.fetch_add(1, Ordering::SeqCst) + 1;
        one.rt.block_on(async {
            let mut tcp = raw_client(addr).await;
            let _ = tcp.write_all(&bytes).await;
            // No more from us: whatever the server waited for, it now ends.
            let _ = tcp.shutdown().await;
            let mut rest = Vec::new();
            let ended =
                tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut rest)).await;
            prop_assert!(ended.is_ok(), "the server never closed the connection");
            // That connection's `$disconnect` ran; the bystander is untouched.
            one.h.wait_for_ids(&[&one.bystander_id]).await;
            prop_assert_eq!(one.h.stack.connection_count(), 1);
            one.bystander_served(&format!("after case {case}")).await;
            Ok(())
        })
    });
    one.finish(result);
}

#[test]
fn random_messages_get_answers_and_disturb_no_one() {
    let one = OneStack::start();

    let mut runner = runner(32);
    let message = prop_oneof![
        any::<String>().prop_map(Message::text),
        (
            prop::sample::select(vec!["message", "$default", "$connect", "chat"]),
            json()
        )
            .prop_map(|(t, data)| Message::text(
                serde_json::json!({ "type": t, "data": data }).to_string()
            )),
        prop::collection::vec(any::<u8>(), 0..512).prop_map(Message::binary),
        (33usize * 1024..40 * 1024).prop_map(|n| Message::text("z".repeat(n))),
    ];
    let cases = AtomicUsize::new(0);
    let result = runner.run(&prop::collection::vec(message, 1..4), |messages| {
        let case = cases.fetch_add(1, Ordering::SeqCst) + 1;
        one.rt.block_on(async {
            let mut c = one.h.client(&format!("random-{case}")).await;
            for m in messages {
                if c.ws.send(m).await.is_err() {
                    break; // closed on us (1009): a clear answer
                }
            }
            // Take whatever comes back, then leave properly.
            let _ = c.ws.close(None).await;
            let drained = tokio::time::timeout(Duration::from_secs(10), async {
                while let Some(Ok(_)) = c.ws.next().await {}
            })
            .await;
            prop_assert!(drained.is_ok(), "the connection never finished closing");
            one.h.wait_for_ids(&[&one.bystander_id]).await;
            one.bystander_served(&format!("after case {case}")).await;
            Ok(())
        })
    });
    one.finish(result);
}

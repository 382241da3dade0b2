//! `wsbench`: load for a running `wsstack local`, from another process.
//!
//! - `wsbench connections --count N`: opens N real WebSocket clients as fast
//!   as `--concurrency` allows, reports connections/s and the stack's memory
//!   while they are all open, then closes them.
//! - `wsbench post --clients N --seconds T`: opens N clients, then posts to
//!   them round-robin through the Management API (signed, as the SDK does)
//!   for T seconds; reports posts/s and deliveries/s counted at the clients.
//!
//! It finds the stack through the state file `wsstack local` writes
//! (`WSADMIN_LOCAL_STATE`). It only ever talks to loopback addresses.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use futures::{StreamExt, TryStreamExt};
use tokio::net::TcpSocket;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use wsadmin_core::local::LocalStackInfo;
use wsadmin_core::{
    ConnectionStore, Gateway, GatewayClient, ManagementEndpoint, ScanOptions, TableConfig,
};

#[derive(Debug, Parser)]
#[command(
    name = "wsbench",
    about = "Load for a running wsstack local (loopback only)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum PostClient {
    /// wsadmin-core's `Gateway` on its lean path (`raw` names it too).
    #[value(alias = "raw")]
    Lean,
    /// wsadmin-core's `Gateway` on the AWS SDK's client.
    Sdk,
}

impl From<PostClient> for GatewayClient {
    fn from(c: PostClient) -> Self {
        match c {
            PostClient::Lean => GatewayClient::Lean,
            PostClient::Sdk => GatewayClient::Sdk,
        }
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Open N clients, report connections/s and the stack's memory.
    Connections {
        #[arg(long, default_value_t = 20_000)]
        count: usize,
        /// Handshakes in flight at once.
        #[arg(long, default_value_t = 256)]
        concurrency: usize,
        /// Keep them open this many seconds before closing.
        #[arg(long, default_value_t = 3)]
        hold: u64,
    },
    /// Open N clients, then post to them round-robin for T seconds.
    Post {
        #[arg(long, default_value_t = 1_000)]
        clients: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Posts in flight at once.
        #[arg(long, default_value_t = 128)]
        concurrency: usize,
        /// Bytes per message.
        #[arg(long, default_value_t = 64)]
        size: usize,
        /// `lean` (or `raw`): wsadmin-core's Gateway on its lean path,
        /// SigV4-signed keep-alive HTTP/1.1 (cheap, so the emulator is what
        /// is measured; what the CLI and the handlers use); `sdk`: the same
        /// Gateway over the AWS SDK's client (heavier per request).
        #[arg(long, value_enum, default_value_t = PostClient::Lean)]
        client: PostClient,
    },
    /// Open N clients, print `ready`, count what they receive until each
    /// got `--expect` messages or `--seconds` pass; report per-client counts.
    Hold {
        #[arg(long, default_value_t = 10_000)]
        count: usize,
        #[arg(long, default_value_t = 1)]
        expect: u64,
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
    },
    /// Run the `ws-message` function's own code (wsadmin-handlers' message
    /// route, without the Lambda runtime) `--runs` times in this process:
    /// each run broadcasts to every registered connection, as one warm
    /// invocation would. Prints one JSON line per run: its wall time, this
    /// process's CPU during it, and the function's summary. Run it in a
    /// cgroup with a CPU quota to model a Lambda's share of a vCPU.
    Message {
        #[arg(long, default_value_t = 3)]
        runs: u32,
        /// The function's BROADCAST_CONCURRENCY (its default otherwise).
        #[arg(long)]
        concurrency: Option<usize>,
        /// Reach the Management API over TLS, as a function on AWS does
        /// (the stack's https endpoint; trust its CA with SSL_CERT_FILE).
        #[arg(long)]
        tls: bool,
        /// Seconds between runs (the clients read what they got).
        #[arg(long, default_value_t = 1.0)]
        pause: f64,
    },
    /// Write N records of connections that do not exist (stale, as a
    /// best-effort `$disconnect` leaves them) straight into the registry.
    Seed {
        #[arg(long, default_value_t = 100_000)]
        records: usize,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match bench(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wsbench: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn bench(cli: Cli) -> Result<()> {
    // `message` runs the function's code as its binary runs it: on one
    // thread (`wsadmin_handlers::lambda::main`).
    let rt = if matches!(cli.command, Command::Message { .. }) {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Runtime::new()?
    };
    rt.block_on(async {
        let info = LocalStackInfo::read(&LocalStackInfo::default_path())?;
        let target: SocketAddr = info
            .websocket_url
            .trim_start_matches("ws://")
            .split('/')
            .next()
            .unwrap_or_default()
            .parse()
            .context("the stack's WebSocket URL is not on a loopback socket address")?;
        if !target.ip().is_loopback() {
            bail!("wsbench only loads loopback addresses, not {target}");
        }
        match cli.command {
            Command::Connections {
                count,
                concurrency,
                hold,
            } => connections(&info, target, count, concurrency, hold).await,
            Command::Post {
                clients,
                seconds,
                concurrency,
                size,
                client,
            } => post(&info, target, clients, seconds, concurrency, size, client).await,
            Command::Hold {
                count,
                expect,
                seconds,
                concurrency,
            } => hold(&info, target, count, expect, seconds, concurrency).await,
            Command::Seed { records } => seed(&info, records).await,
            Command::Message {
                runs,
                concurrency,
                tls,
                pause,
            } => message(&info, runs, concurrency, tls, pause).await,
        }
    })
}

type Client = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// One client, from source address 127.0.0.x so that many clients do not run
/// out of ephemeral ports on one source address.
async fn open(info: &LocalStackInfo, target: SocketAddr, n: usize) -> Result<Client> {
    let socket = TcpSocket::new_v4()?;
    let source: SocketAddr = format!("127.0.{}.{}:0", (n / 200) % 250, 1 + n % 200).parse()?;
    socket.bind(source)?;
    let stream = socket.connect(target).await?;
    let mut req = info.websocket_url.as_str().into_client_request()?;
    req.headers_mut().insert(
        "User-Agent",
        HeaderValue::from_str(&format!("wsbench-{n}"))?,
    );
    let config = WebSocketConfig::default().read_buffer_size(4 * 1024);
    let (ws, _) = tokio_tungstenite::client_async_with_config(req, stream, Some(config)).await?;
    Ok(ws)
}

async fn open_many(
    info: &LocalStackInfo,
    target: SocketAddr,
    count: usize,
    concurrency: usize,
) -> Result<(Vec<Client>, Duration)> {
    let started = Instant::now();
    let clients: Vec<Client> = futures::stream::iter(0..count)
        .map(|n| open(info, target, n))
        .buffered(concurrency.max(1))
        .try_collect()
        .await?;
    Ok((clients, started.elapsed()))
}

fn rss_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

async fn connections(
    info: &LocalStackInfo,
    target: SocketAddr,
    count: usize,
    concurrency: usize,
    hold: u64,
) -> Result<()> {
    let before = rss_kib(info.pid);
    let (clients, took) = open_many(info, target, count, concurrency).await?;
    let rate = count as f64 / took.as_secs_f64();
    tokio::time::sleep(Duration::from_secs(hold)).await;
    let during = rss_kib(info.pid);
    let out = serde_json::json!({
        "scenario": "connections",
        "count": count,
        "concurrency": concurrency,
        "openSeconds": took.as_secs_f64(),
        "connectionsPerSecond": rate,
        "stackRssKiBBefore": before.map(|r| r.0),
        "stackRssKiBWithAllOpen": during.map(|r| r.0),
        "stackPeakRssKiB": during.map(|r| r.1),
    });
    println!("{out}");
    drop(clients);
    Ok(())
}

/// This process's user + system CPU time so far, from `/proc/self/stat`
/// (clock ticks of 10 ms).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // After the command's ")": state is field 3, utime 14, stime 15.
    let ticks = |i: usize| fields.get(i - 3)?.parse::<f64>().ok();
    Some((ticks(14)? + ticks(15)?) / 100.0)
}

async fn message(
    info: &LocalStackInfo,
    runs: u32,
    concurrency: Option<usize>,
    tls: bool,
    pause: f64,
) -> Result<()> {
    use wsadmin_handlers::{Handlers, Route, parse_event};
    let endpoint = if tls {
        info.https_management_endpoint
            .clone()
            .context("the stack serves no TLS Management endpoint")?
    } else {
        info.management_endpoint.clone()
    };
    let vars: HashMap<&str, String> = [
        (wsadmin_handlers::ENV_TABLE, info.table.clone()),
        (wsadmin_handlers::ENV_MANAGEMENT_ENDPOINT, endpoint.clone()),
    ]
    .into_iter()
    .chain(concurrency.map(|n| (wsadmin_handlers::ENV_BROADCAST_CONCURRENCY, n.to_string())))
    .collect();
    let handlers = Handlers::from_vars(sdk_config(info), |k| vars.get(k).cloned())?;
    for run in 1..=runs {
        let event = parse_event(
            &serde_json::json!({
                "requestContext": {
                    "routeKey": "message", "eventType": "MESSAGE", "stage": "dev",
                    "messageId": format!("wsbench-{run}"), "extendedRequestId": format!("wsbench-{run}"),
                    "requestTime": "03/Dec/2026:12:00:00 +0000", "messageDirection": "IN",
                    "connectedAt": 1_796_300_000_000_i64, "requestTimeEpoch": 1_796_300_000_000_i64,
                    "identity": {"userAgent": "wsbench", "sourceIp": "127.0.0.1"},
                    "connectionId": "wsbench=", "requestId": format!("wsbench-{run}"),
                    "domainName": "localhost", "apiId": "local",
                },
                "body": serde_json::json!({"type": "message", "data": format!("wsbench message #{run}")}).to_string(),
                "isBase64Encoded": false,
            })
            .to_string(),
        )?;
        let cpu = cpu_seconds();
        let started = Instant::now();
        let res = handlers.handle(Route::Message, event).await;
        let seconds = started.elapsed().as_secs_f64();
        let cpu = cpu.zip(cpu_seconds()).map(|(a, b)| b - a);
        let body = match res.body {
            Some(aws_lambda_events::encodings::Body::Text(t)) => t,
            _ => String::new(),
        };
        let delivered: Option<u64> = body
            .strip_prefix("delivered ")
            .and_then(|r| r.split(' ').next())
            .and_then(|n| n.parse().ok());
        println!(
            "{}",
            serde_json::json!({
                "scenario": "message", "run": run, "tls": tls,
                "client": GatewayClient::from_env()?.to_string(),
                "status": res.status_code, "seconds": seconds, "cpuSeconds": cpu,
                "delivered": delivered,
                "deliveriesPerSecond": delivered.map(|d| d as f64 / seconds),
                "cpuMicrosPerDelivery": cpu.zip(delivered).map(|(c, d)| c * 1e6 / d.max(1) as f64),
                "summary": body,
            })
        );
        if run < runs {
            tokio::time::sleep(Duration::from_secs_f64(pause)).await;
        }
    }
    Ok(())
}

fn sdk_config(info: &LocalStackInfo) -> aws_config::SdkConfig {
    wsadmin_core::sdk::static_config_at(
        info.region.clone(),
        info.access_key_id.clone(),
        info.secret_access_key.clone(),
        info.dynamodb_endpoint.clone(),
    )
}

async fn hold(
    info: &LocalStackInfo,
    target: SocketAddr,
    count: usize,
    expect: u64,
    seconds: u64,
    concurrency: usize,
) -> Result<()> {
    let (clients, took) = open_many(info, target, count, concurrency).await?;
    let started = Instant::now();
    let counts: Arc<Vec<AtomicU64>> = Arc::new((0..count).map(|_| AtomicU64::new(0)).collect());
    let last_ms = Arc::new(AtomicU64::new(0));
    let readers: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(i, mut ws)| {
            let (counts, last_ms) = (counts.clone(), last_ms.clone());
            tokio::spawn(async move {
                while let Some(Ok(msg)) = ws.next().await {
                    if msg.is_text() || msg.is_binary() {
                        counts[i].fetch_add(1, Ordering::Relaxed);
                        last_ms.fetch_max(started.elapsed().as_millis() as u64, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    println!("ready {count} clients in {:.2}s", took.as_secs_f64());
    let deadline = started + Duration::from_secs(seconds);
    let done = || counts.iter().all(|c| c.load(Ordering::Relaxed) >= expect);
    // Until everyone has what was expected, the deadline, or a SIGINT (a
    // benchmark whose runs reached only some clients, as the seed's one
    // Scan page does, ends the hold so: its counts still tell who got a
    // message twice).
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    while !done() && Instant::now() < deadline {
        tokio::select! {
            _ = &mut interrupted => break,
            () = tokio::time::sleep(Duration::from_millis(10)) => {}
        }
    }
    // Anything arriving late would be a duplicate: wait a little for it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got: Vec<u64> = counts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
    let out = serde_json::json!({
        "scenario": "hold",
        "clients": count,
        "expect": expect,
        "received": got.iter().sum::<u64>(),
        "exactlyExpected": got.iter().filter(|&&n| n == expect).count(),
        "missing": got.iter().filter(|&&n| n < expect).count(),
        "duplicated": got.iter().filter(|&&n| n > expect).count(),
        "lastDeliveryMsAfterReady": last_ms.load(Ordering::Relaxed),
    });
    println!("{out}");
    for r in readers {
        r.abort();
    }
    Ok(())
}

async fn seed(info: &LocalStackInfo, records: usize) -> Result<()> {
    let store = ConnectionStore::from_conf(&sdk_config(info), TableConfig::new(info.table.clone()));
    let started = Instant::now();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let all: Vec<_> = (0..records)
        .map(|i| {
            let mut r = wsadmin_core::ConnectionRecord::new(format!("stale{i:010}A="))
                .connected_at(now_ms - 60_000);
            r.source_ip = Some(format!("10.1.{}.{}", i / 250 % 250, i % 250));
            r.user_agent = Some("wsbench-seed/1.0 (stale record)".to_owned());
            r.meta.insert("user".to_owned(), format!("u{i}"));
            r
        })
        .collect();
    let chunks: Vec<_> = all.chunks(500).collect();
    futures::stream::iter(chunks)
        .map(|chunk| store.put_batch(chunk))
        .buffer_unordered(8)
        .try_collect::<Vec<_>>()
        .await?;
    println!(
        "{}",
        serde_json::json!({"scenario": "seed", "records": records, "seconds": started.elapsed().as_secs_f64()})
    );
    Ok(())
}

async fn post(
    info: &LocalStackInfo,
    target: SocketAddr,
    count: usize,
    seconds: u64,
    concurrency: usize,
    size: usize,
    client: PostClient,
) -> Result<()> {
    let (clients, _) = open_many(info, target, count, 256).await?;
    // Map each client to its connection id through the registry.
    let sdk = sdk_config(info);
    let store = ConnectionStore::from_conf(&sdk, TableConfig::new(info.table.clone()));
    let by_agent: HashMap<String, String> = store
        .scan(ScanOptions::default())
        .try_filter_map(|r| async move { Ok(r.user_agent.map(|ua| (ua, r.connection_id))) })
        .try_collect()
        .await?;
    let ids: Vec<String> = (0..count)
        .filter_map(|n| by_agent.get(&format!("wsbench-{n}")).cloned())
        .collect();
    if ids.len() != count {
        bail!("only {} of {count} clients are registered", ids.len());
    }

    let received = Arc::new(AtomicU64::new(0));
    let readers: Vec<_> = clients
        .into_iter()
        .map(|mut ws| {
            let received = received.clone();
            tokio::spawn(async move {
                while let Some(Ok(msg)) = ws.next().await {
                    if msg.is_text() || msg.is_binary() {
                        received.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();

    let gateway = Gateway::with_client(
        &sdk,
        ManagementEndpoint::parse(&info.management_endpoint)?,
        wsadmin_core::clock::Clock::system(),
        client.into(),
    )?;
    let payload = bytes::Bytes::from("x".repeat(size.max(1)));
    let sent = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let ids = Arc::new(ids);
    let mut workers = Vec::new();
    for w in 0..concurrency.max(1) {
        let (gateway, payload, ids) = (gateway.clone(), payload.clone(), ids.clone());
        let (sent, failed) = (sent.clone(), failed.clone());
        workers.push(tokio::spawn(async move {
            let mut i = w;
            while Instant::now() < deadline {
                let id = &ids[i % ids.len()];
                if gateway.post(id, payload.clone()).await.is_ok() {
                    sent.fetch_add(1, Ordering::Relaxed);
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
                i += concurrency;
            }
        }));
    }
    for w in workers {
        w.await?;
    }
    let posting = started.elapsed();
    let posted = sent.load(Ordering::Relaxed);
    // Let the last messages land.
    let wait_until = Instant::now() + Duration::from_secs(10);
    while received.load(Ordering::Relaxed) < posted && Instant::now() < wait_until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let delivered = received.load(Ordering::Relaxed);
    let out = serde_json::json!({
        "scenario": "post",
        "client": format!("{client:?}").to_lowercase(),
        "clients": count,
        "concurrency": concurrency,
        "payloadBytes": size,
        "seconds": posting.as_secs_f64(),
        "posted": posted,
        "failed": failed.load(Ordering::Relaxed),
        "delivered": delivered,
        "postsPerSecond": posted as f64 / posting.as_secs_f64(),
        "deliveriesPerSecond": delivered as f64 / posting.as_secs_f64(),
        "stackPeakRssKiB": rss_kib(info.pid).map(|r| r.1),
    });
    println!("{out}");
    for r in readers {
        r.abort();
    }
    Ok(())
}

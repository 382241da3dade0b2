//! Ctrl-C and SIGTERM: the first asks the running sweep to stop (it stops
//! taking targets, lets requests in flight finish, and the command prints
//! its partial report and exits 130); a second one exits at once.

use std::io::Write;
use std::sync::OnceLock;

use tokio_util::sync::CancellationToken;

static TOKEN: OnceLock<CancellationToken> = OnceLock::new();

/// The token every sweep of this process stops on.
pub fn token() -> CancellationToken {
    TOKEN.get_or_init(CancellationToken::new).clone()
}

/// Listens for SIGINT and SIGTERM (call once, inside the runtime).
pub fn install() {
    let token = token();
    tokio::spawn(async move {
        let mut signals = match Signals::new() {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("cannot listen for signals: {e}");
                return;
            }
        };
        signals.next().await;
        token.cancel();
        let _ = writeln!(
            std::io::stderr(),
            "wsadmin: stopping: letting requests in flight finish (again to quit at once)"
        );
        signals.next().await;
        let _ = writeln!(std::io::stderr(), "wsadmin: interrupted");
        std::process::exit(130);
    });
}

struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
        })
    }

    async fn next(&mut self) {
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
    }
}

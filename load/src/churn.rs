//! Churn: clients leave at a steady rate (some with a close frame, some by
//! dropping their socket) and new ones join so that about N stay open. It
//! stops by itself after its duration or at the fleet's deadline. Every
//! client's lifetime is in its log, so a test can tell which clients were
//! connected throughout any interval and which are open now.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::oneshot;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::client::Leave;
use crate::fleet::{Fleet, Inner};
use crate::rate::Rate;
use crate::{LoadError, now_ms};

/// The shortest pause between two rounds of leaves and joins.
const MIN_TICK: Duration = Duration::from_millis(10);

/// How to churn.
#[derive(Debug, Clone, Copy)]
pub struct Churn {
    /// Clients leaving per second; each is replaced by a newcomer.
    pub rate: Rate,
    /// The fraction of leaves that drop the TCP socket without a close
    /// frame (0 to 1); the others close cleanly.
    pub drop_fraction: f64,
    /// Churn stops after this long (or at the fleet's deadline, if sooner).
    pub duration: Duration,
}

impl Churn {
    pub fn validate(&self) -> Result<(), LoadError> {
        if !(0.0..=1.0).contains(&self.drop_fraction) {
            return Err(LoadError::DropFraction {
                value: self.drop_fraction,
            });
        }
        if self.duration.is_zero() {
            return Err(LoadError::ZeroDuration {
                name: "the churn duration",
            });
        }
        Ok(())
    }
}

/// What a churn run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChurnSummary {
    pub started_at_ms: u64,
    pub ended_at_ms: u64,
    /// Clients told to leave with a close frame.
    pub left_clean: usize,
    /// Clients told to drop their socket.
    pub left_dropped: usize,
    /// Newcomers that completed their handshake.
    pub joined: usize,
    pub join_failures: usize,
    pub last_join_error: Option<String>,
}

/// A churn in progress.
#[derive(Debug)]
pub struct Churning {
    done: oneshot::Receiver<ChurnSummary>,
    stop: CancellationToken,
}

impl Churning {
    /// Waits for the churn to end by itself; newcomers still handshaking
    /// then are waited for (up to the handshake timeout).
    pub async fn finished(self) -> Result<ChurnSummary, LoadError> {
        self.done.await.map_err(|_| LoadError::FleetClosed)
    }

    /// Ends the churn now.
    pub async fn stop(self) -> Result<ChurnSummary, LoadError> {
        self.stop.cancel();
        self.finished().await
    }
}

impl Fleet {
    /// Starts churning this fleet, keeping about `FleetConfig::clients`
    /// open. Never-read clients do not leave.
    pub fn churn(&self, churn: Churn) -> Result<Churning, LoadError> {
        churn.validate()?;
        if self.inner.stop.is_cancelled() {
            return Err(LoadError::FleetClosed);
        }
        let (tx, rx) = oneshot::channel();
        let stop = self.inner.stop.child_token();
        let inner = self.inner.clone();
        let token = stop.clone();
        self.inner.spawn(async move {
            let summary = run(inner, churn, token).await;
            let _ = tx.send(summary);
        });
        Ok(Churning { done: rx, stop })
    }
}

async fn run(inner: Arc<Inner>, churn: Churn, stop: CancellationToken) -> ChurnSummary {
    let summary = Arc::new(Mutex::new(ChurnSummary {
        started_at_ms: now_ms(),
        ..ChurnSummary::default()
    }));
    let joining = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let end = (started + churn.duration).min(inner.deadline);
    let tick = churn.rate.interval().max(MIN_TICK);
    let mut left: u64 = 0;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = tokio::time::sleep_until(end) => break,
            _ = stop.cancelled() => break,
        }
        // Leaves due by now, at the rate, picked at random among readers.
        let due = (started.elapsed().as_secs_f64() * churn.rate.as_per_second()) as u64;
        let slots = inner.slot_list();
        let mut staying: Vec<_> = slots.iter().filter(|s| s.is_staying()).collect();
        let mut readers: Vec<usize> = (0..staying.len())
            .filter(|&i| !staying[i].never_reads)
            .collect();
        let mut leaving = Vec::new();
        while left < due && !readers.is_empty() {
            let pick = readers.swap_remove(fastrand::usize(..readers.len()));
            let how = if fastrand::f64() < churn.drop_fraction {
                Leave::Drop
            } else {
                Leave::Close
            };
            if staying[pick].leave(how) {
                let mut s = lock(&summary);
                match how {
                    Leave::Drop => s.left_dropped += 1,
                    Leave::Close => s.left_clean += 1,
                }
            }
            leaving.push(pick);
            left += 1;
        }
        // Nobody to leave: the debt is forgiven, not paid in a burst later.
        left = left.max(due);
        leaving.sort_unstable();
        for i in leaving.into_iter().rev() {
            staying.swap_remove(i);
        }
        // Newcomers for every client gone, whatever the cause.
        let have = staying.len() + joining.load(Ordering::Relaxed);
        for _ in have..inner.config.clients {
            joining.fetch_add(1, Ordering::Relaxed);
            let (inner2, summary, joining, stop) = (
                inner.clone(),
                summary.clone(),
                joining.clone(),
                stop.clone(),
            );
            inner.spawn(async move {
                let index = inner2.next_index();
                let result = tokio::select! {
                    r = inner2.open_one(index, false) => Some(r),
                    _ = stop.cancelled() => None,
                };
                {
                    let mut s = lock(&summary);
                    match result {
                        Some(Ok(_)) => s.joined += 1,
                        Some(Err(e)) => {
                            s.join_failures += 1;
                            s.last_join_error = Some(e.to_string());
                        }
                        None => {}
                    }
                }
                joining.fetch_sub(1, Ordering::Relaxed);
            });
        }
        inner.reap();
    }
    // Newcomers mid-handshake finish (or, when stopped, are cut off), and
    // the clients told to leave are closed, before the summary: it counts
    // both, and whoever reads it next counts the fleet's open clients.
    let wait_until = Instant::now() + inner.config.handshake_timeout;
    while (joining.load(Ordering::Relaxed) > 0 || inner.slot_list().iter().any(|s| s.is_leaving()))
        && Instant::now() < wait_until
    {
        tokio::time::sleep(MIN_TICK).await;
    }
    let mut s = lock(&summary).clone();
    s.ended_at_ms = now_ms();
    s
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn churn_settings_are_checked() {
        let ok = Churn {
            rate: Rate::parse("10/s").expect("rate"),
            drop_fraction: 0.2,
            duration: Duration::from_secs(1),
        };
        assert!(ok.validate().is_ok());
        for bad in [-0.1, 1.5, f64::NAN] {
            let e = Churn {
                drop_fraction: bad,
                ..ok
            }
            .validate()
            .expect_err("bad fraction")
            .to_string();
            assert!(e.contains("drop fraction"), "{e}");
        }
        assert!(
            Churn {
                duration: Duration::ZERO,
                ..ok
            }
            .validate()
            .is_err()
        );
    }
}

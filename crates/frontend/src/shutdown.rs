//! Shutdown requests, in PostgreSQL's three modes, carried by a `tokio::sync::watch` channel.
//!
//! The server's control code holds the `ShutdownTrigger`; every listener and connection task
//! holds a `ShutdownWatch`. A request only ever escalates (`Running < Smart < Fast <
//! Immediate`), as `pg_ctl stop` escalates by sending a stronger signal:
//!
//! - **Smart**: stop accepting; existing sessions run until their clients disconnect.
//! - **Fast**: stop accepting; running statements are cancelled, and each session is ended
//!   with FATAL 57P01 "terminating connection due to administrator command" as soon as it
//!   waits for its client.
//! - **Immediate**: every connection is dropped at once, without a message (its session is
//!   dropped, so an open transaction rolls back in memory).
//!
//! If the trigger is dropped, watchers see "no request ever": dropping the handle that can ask
//! for shutdown is not itself a request.

use tokio::sync::watch;

/// How far shutdown has gone; ordered by severity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum ShutdownMode {
    #[default]
    Running,
    Smart,
    Fast,
    Immediate,
}

/// Asks for shutdown.
#[derive(Debug)]
pub struct ShutdownTrigger {
    tx: watch::Sender<ShutdownMode>,
}

/// Observes shutdown requests; cheap to clone.
#[derive(Clone, Debug)]
pub struct ShutdownWatch {
    rx: watch::Receiver<ShutdownMode>,
}

/// A new trigger and its watch, in the `Running` state.
pub fn shutdown_channel() -> (ShutdownTrigger, ShutdownWatch) {
    let (tx, rx) = watch::channel(ShutdownMode::Running);
    (ShutdownTrigger { tx }, ShutdownWatch { rx })
}

impl ShutdownTrigger {
    /// Requests `mode`; a request weaker than the current one is ignored.
    pub fn request(&self, mode: ShutdownMode) {
        self.tx.send_if_modified(|current| {
            if mode > *current {
                *current = mode;
                true
            } else {
                false
            }
        });
    }

    pub fn mode(&self) -> ShutdownMode {
        *self.tx.borrow()
    }

    /// Another watch on this trigger.
    pub fn watch(&self) -> ShutdownWatch {
        ShutdownWatch {
            rx: self.tx.subscribe(),
        }
    }
}

/// Tells one connection to end (fast shutdown). Each connection has its own, so the read
/// loop waits on an uncontended notifier instead of registering with the shared shutdown
/// channel twice per message.
#[derive(Debug, Default)]
pub(crate) struct EndSignal {
    raised: std::sync::atomic::AtomicBool,
    notify: tokio::sync::Notify,
}

impl EndSignal {
    pub(crate) fn raise(&self) {
        self.raised
            .store(true, std::sync::atomic::Ordering::Release);
        self.notify.notify_waiters();
    }

    /// Resolves once `raise` was called (also if it was called before).
    pub(crate) async fn wait(&self) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.raised.load(std::sync::atomic::Ordering::Acquire) {
                return;
            }
            notified.await;
        }
    }
}

impl ShutdownWatch {
    pub fn mode(&self) -> ShutdownMode {
        *self.rx.borrow()
    }

    /// Resolves once shutdown has reached at least `mode`; never, if the trigger is dropped
    /// first. Cancel-safe.
    pub async fn reached(&mut self, mode: ShutdownMode) {
        if self.rx.wait_for(|m| *m >= mode).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn requests_only_escalate() {
        let (trigger, mut watch) = shutdown_channel();
        assert_eq!(watch.mode(), ShutdownMode::Running);
        trigger.request(ShutdownMode::Fast);
        trigger.request(ShutdownMode::Smart);
        assert_eq!(watch.mode(), ShutdownMode::Fast);
        watch.reached(ShutdownMode::Smart).await;
        watch.reached(ShutdownMode::Fast).await;
        let immediate = tokio::time::timeout(
            Duration::from_millis(20),
            watch.reached(ShutdownMode::Immediate),
        )
        .await;
        assert!(immediate.is_err());
        trigger.request(ShutdownMode::Immediate);
        watch.reached(ShutdownMode::Immediate).await;
    }

    #[tokio::test]
    async fn dropped_trigger_is_not_a_request() {
        let (trigger, mut watch) = shutdown_channel();
        drop(trigger);
        let r = tokio::time::timeout(
            Duration::from_millis(20),
            watch.reached(ShutdownMode::Smart),
        )
        .await;
        assert!(r.is_err());
    }
}

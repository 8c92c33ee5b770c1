//! Interrupting a session's waits: query cancel, statement timeout, termination.
//!
//! A session owns one `Interrupt`; a CancelRequest, `pg_cancel_backend`, a statement timer or
//! `pg_terminate_backend` raise it from elsewhere. Every wait in this crate (row locks, DDL
//! locks, commit acknowledgement) selects on it. The session clears a pending cancel at the
//! start of each statement, as PostgreSQL ignores a cancel that arrives between statements;
//! termination is never cleared.

use std::sync::atomic::{AtomicU8, Ordering};

use tokio::sync::Notify;

use crate::error::TxnError;

const NONE: u8 = 0;
const CANCEL: u8 = 1;
const TIMEOUT: u8 = 2;
const TERMINATE: u8 = 3;

#[derive(Debug, Default)]
pub struct Interrupt {
    reason: AtomicU8,
    notify: Notify,
}

impl Interrupt {
    pub fn new() -> Self {
        Self::default()
    }

    fn raise(&self, reason: u8) {
        // Termination outranks the others and is never overwritten.
        let _ = self
            .reason
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |cur| {
                (cur != TERMINATE).then_some(reason.max(cur))
            });
        self.notify.notify_waiters();
    }

    pub fn cancel(&self) {
        self.raise(CANCEL);
    }

    pub fn statement_timeout(&self) {
        self.raise(TIMEOUT);
    }

    pub fn terminate(&self) {
        self.raise(TERMINATE);
    }

    /// Forgets a pending cancel or timeout (start of a statement). Termination stays.
    pub fn clear(&self) {
        let _ = self
            .reason
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |cur| {
                (cur != TERMINATE).then_some(NONE)
            });
    }

    pub fn is_terminated(&self) -> bool {
        self.reason.load(Ordering::Acquire) == TERMINATE
    }

    /// The pending interruption as an error, if any.
    pub fn check(&self) -> Result<(), TxnError> {
        match self.reason.load(Ordering::Acquire) {
            NONE => Ok(()),
            CANCEL => Err(TxnError::Canceled),
            TIMEOUT => Err(TxnError::StatementTimeout),
            _ => Err(TxnError::Terminated),
        }
    }

    /// Resolves when an interruption is pending, with its error.
    pub async fn wait(&self) -> TxnError {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Err(e) = self.check() {
                return e;
            }
            notified.await;
        }
    }
}

//! One connection's socket with its two buffers, and the reasons a connection ends.
//!
//! `rbuf` holds bytes read but not yet split into messages; `out` holds encoded backend
//! messages not yet written. Writing happens only in `flush`: callers decide when (PostgreSQL's
//! flush points, see `conn`), which is what keeps a pgbench transaction at one write per
//! Sync instead of one per message.
//!
//! Idle memory is bounded: after a large message or result, buffers that grew beyond
//! `BUFFER_KEEP_MAX` are shrunk back once empty.
//!
//! Spinning: on the machines we run on, waking a thread that sleeps in `epoll` costs ~25 µs
//! (a loopback round trip measured 54–68 µs with a sleeping server and 20 µs with a spinning
//! one). A pgbench transaction is seven round trips. So while `base::spin` allows it (few
//! sessions), a connection that waits for its client's next message first polls the socket
//! without sleeping for up to `SPIN_BUDGET`; with more sessions the CPU is better spent on
//! them, and it sleeps at once.

use std::io;
use std::time::{Duration, Instant};

use base::PgError;
use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::stream::ClientStream;
use crate::wire::{self, FrameError};

/// Initial and minimum free space for a socket read: one read usually takes a whole pgbench
/// transaction's messages.
const READ_CHUNK: usize = 8 * 1024;
/// Buffers larger than this are shrunk when empty, so a connection that once moved a big COPY
/// or result does not keep that memory while idle.
const BUFFER_KEEP_MAX: usize = 1 << 20;

/// How long to spin before sleeping: longer than a client's turnaround between a reply and
/// its next request (pgbench: ~10–30 µs), short enough that an idle session costs nothing
/// noticeable.
const SPIN_BUDGET: Duration = Duration::from_micros(200);

/// Why a connection ends.
#[derive(Debug)]
pub(crate) enum ConnEnd {
    /// The client closed the connection or sent Terminate.
    Closed,
    /// Reading or writing the socket failed.
    Io(io::Error),
    /// Send this FATAL error (after any pending output), then close.
    Fatal(PgError),
    /// Garbage before or during start-up: close without a reply, as PostgreSQL does for an
    /// invalid startup packet (there is no protocol state to answer in).
    Silent(&'static str),
}

impl From<io::Error> for ConnEnd {
    fn from(e: io::Error) -> Self {
        ConnEnd::Io(e)
    }
}

pub(crate) struct Transport {
    pub(crate) stream: ClientStream,
    pub(crate) rbuf: BytesMut,
    pub(crate) out: Vec<u8>,
    /// The configured limit for the large message types.
    pub(crate) max_message_len: usize,
}

impl Transport {
    pub(crate) fn new(stream: ClientStream, max_message_len: usize) -> Self {
        Transport {
            stream,
            rbuf: BytesMut::with_capacity(READ_CHUNK),
            out: Vec::with_capacity(READ_CHUNK),
            max_message_len,
        }
    }

    /// Reads more bytes into `rbuf`; returns 0 at end of stream. Cancel-safe.
    pub(crate) async fn fill(&mut self) -> io::Result<usize> {
        if self.rbuf.capacity() - self.rbuf.len() < READ_CHUNK / 2 {
            self.rbuf.reserve(READ_CHUNK);
        }
        if base::spin::spinning_allowed() {
            let deadline = Instant::now() + SPIN_BUDGET;
            let mut chunk = [0u8; READ_CHUNK];
            loop {
                match self.stream.recv_now(&mut chunk) {
                    Ok(n) => {
                        self.rbuf.extend_from_slice(&chunk[..n]);
                        return Ok(n);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        if Instant::now() >= deadline {
                            break;
                        }
                        // A pause, not sched_yield (unlike the commit wait, `txn::waiters`):
                        // here the thread we wait for is the client, which the scheduler keeps
                        // on the other core while we spin; yielding gained nothing in
                        // interleaved 1-client A/B runs and made them vary more.
                        std::hint::spin_loop();
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        self.stream.read_buf(&mut self.rbuf).await
    }

    /// Writes out everything in `out`.
    pub(crate) async fn flush(&mut self) -> io::Result<()> {
        if !self.out.is_empty() {
            self.stream.write_all(&self.out).await?;
            self.out.clear();
            if self.out.capacity() > BUFFER_KEEP_MAX {
                self.out.shrink_to(READ_CHUNK);
            }
        }
        if self.rbuf.is_empty() && self.rbuf.capacity() > BUFFER_KEEP_MAX {
            self.rbuf = BytesMut::with_capacity(READ_CHUNK);
        }
        Ok(())
    }

    /// The next startup-phase packet; `None` at a clean end of stream.
    pub(crate) async fn read_startup_packet(&mut self) -> Result<Option<Bytes>, ConnEnd> {
        loop {
            match wire::split_startup_packet(&mut self.rbuf) {
                Ok(Some(p)) => return Ok(Some(p)),
                Ok(None) => {}
                Err(_) => return Err(ConnEnd::Silent("invalid length of startup packet")),
            }
            if self.fill().await? == 0 {
                return if self.rbuf.is_empty() {
                    Ok(None)
                } else {
                    Err(ConnEnd::Silent("incomplete startup packet"))
                };
            }
        }
    }

    /// The next password-family (`p`) message during authentication; `None` at end of
    /// stream. Any other type is refused on its first byte, so an unauthenticated client can
    /// never make us buffer more than `p`'s 64 KiB limit.
    pub(crate) async fn read_auth_message(&mut self) -> Result<Option<Bytes>, ConnEnd> {
        loop {
            if let Some(&t) = self.rbuf.first()
                && t != b'p'
            {
                return Err(ConnEnd::Fatal(PgError::fatal(
                    base::error::sqlstate::PROTOCOL_VIOLATION,
                    format!("expected password response, got message type {t}"),
                )));
            }
            if let Some((_, body)) = self.try_message()? {
                return Ok(Some(body));
            }
            if self.fill().await? == 0 {
                return Ok(None);
            }
        }
    }

    /// A complete message from `rbuf`, if there is one.
    pub(crate) fn try_message(&mut self) -> Result<Option<(u8, Bytes)>, ConnEnd> {
        wire::split_message(&mut self.rbuf, self.max_message_len).map_err(|e| {
            let msg = match e {
                FrameError::UnknownType(t) => format!("invalid frontend message type {t}"),
                FrameError::BadLength => "invalid message length".to_owned(),
            };
            ConnEnd::Fatal(PgError::fatal(
                base::error::sqlstate::PROTOCOL_VIOLATION,
                msg,
            ))
        })
    }

    /// Ends the connection: a FATAL error is written after any pending output; then the
    /// socket is shut down. Errors are ignored: the peer may be gone already.
    pub(crate) async fn finish(mut self, end: ConnEnd) {
        match end {
            ConnEnd::Fatal(err) => {
                tracing::debug!(code = %err.code, message = %err.message, "closing connection");
                wire::error_or_notice(&mut self.out, &err);
                let _ = self.flush().await;
            }
            ConnEnd::Io(e) => {
                tracing::debug!(error = %e, "connection lost");
                return;
            }
            ConnEnd::Silent(why) => {
                tracing::debug!(why, "closing connection without reply");
            }
            ConnEnd::Closed => {
                let _ = self.flush().await;
            }
        }
        let _ = self.stream.shutdown().await;
    }
}

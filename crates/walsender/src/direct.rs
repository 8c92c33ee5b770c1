//! Direct send: the WAL writer ships freshly written WAL to a caught-up standby itself.
//!
//! What it does: a streaming walsender that has sent everything and has nothing else to
//! write *arms* its `DirectSend` before it goes to sleep. While armed, the WAL write hook
//! (`WalBuffer::on_write`, on the thread that just wrote the WAL: a committing session on the
//! inline path, or the WAL flusher under load) encodes the XLogData message and `send`s it on
//! a duplicate of the walsender's socket, without blocking. When the walsender task wakes up
//! for any reason it *disarms* and takes over what the hook did: the new sent LSN (for its
//! state machine, `pg_stat_replication` and the lag tracker) and any part of a message the
//! socket did not take, which it sends first.
//!
//! Why: waking the walsender's thread costs ~25 µs on this kind of machine, and with
//! `synchronous_commit = on` that wake-up sits on every commit's path before the standby even
//! starts its write and flush. Sent from the writing thread, the WAL is on its way while the
//! local fdatasync runs.
//!
//! Where it runs: `try_send` on the WAL writer's thread (it holds the writer role, so calls
//! come in LSN order); `arm`/`disarm` on the walsender task.
//!
//! Invariants: the hook sends only while armed and only the WAL that starts exactly at the
//! armed position, so the stream stays contiguous; the task writes to the socket only while
//! disarmed (it disarms before it looks at what to send and arms only after its output is
//! flushed), so the two never interleave bytes. A message the socket took in part leaves the
//! rest in `pending` and disarms: nothing else may follow until the task sent it.
//!
//! What it deliberately does not do: wait (a full socket buffer just leaves the WAL to the
//! task, which reads it from the window like any other), send keepalives, or handle
//! catch-up, historic timelines or shutdown (never armed then).
//!
//! How it fails: a send error disarms; the task's own socket use then meets the same error
//! and ends the connection as usual.

use std::io;
use std::time::Instant;

use base::Lsn;
use parking_lot::Mutex;
use replication::messages::{PgTimestamp, encode_xlog_data_header};

/// The largest write shipped directly: bigger ones (COPY, catch-up bursts) go through the
/// walsender task, which splits them into bounded messages and reads replies in between.
pub const DIRECT_SEND_MAX: usize = 64 << 10;

/// What the hook did while the task slept.
#[derive(Debug, Default)]
pub struct DirectSent {
    /// The end of the WAL the hook sent, the walEnd it announced, and when.
    pub sent: Option<(Lsn, Lsn, Instant)>,
    /// The unsent rest of the last message, to be written before anything else.
    pub pending: Vec<u8>,
}

struct State {
    sock: socket2::Socket,
    armed: bool,
    /// Where the next XLogData must start.
    next: Lsn,
    taken: DirectSent,
    /// Reused for encoding.
    buf: Vec<u8>,
}

/// One walsender's direct-send channel (see the module documentation).
pub struct DirectSend {
    state: Mutex<State>,
}

impl DirectSend {
    /// `sock` is a duplicate of the walsender's (non-blocking) socket.
    pub fn new(sock: socket2::Socket) -> DirectSend {
        DirectSend {
            state: Mutex::new(State {
                sock,
                armed: false,
                next: Lsn::ZERO,
                taken: DirectSent::default(),
                buf: Vec::new(),
            }),
        }
    }

    /// The task is idle, caught up at `sent`, with its output flushed: the hook may send.
    pub fn arm(&self, sent: Lsn) {
        let mut st = self.state.lock();
        debug_assert!(st.taken.pending.is_empty(), "armed with unsent bytes");
        st.armed = true;
        st.next = sent;
    }

    /// The task takes over: no more direct sends until it arms again.
    pub fn disarm(&self) -> DirectSent {
        let mut st = self.state.lock();
        st.armed = false;
        std::mem::take(&mut st.taken)
    }

    /// Called by the WAL write hook with the WAL just written at `start`; sends it if armed
    /// and contiguous. `wal_end` is the primary's flush LSN to announce.
    pub fn try_send(&self, start: Lsn, bytes: &[u8], wal_end: Lsn) {
        let mut guard = self.state.lock();
        let st = &mut *guard;
        if !st.armed || st.next != start {
            return;
        }
        if bytes.len() > DIRECT_SEND_MAX {
            st.armed = false;
            return;
        }
        let now = Instant::now();
        let header = encode_xlog_data_header(start, wal_end, PgTimestamp::now());
        st.buf.clear();
        st.buf.push(b'd');
        st.buf
            .extend_from_slice(&((4 + header.len() + bytes.len()) as u32).to_be_bytes());
        st.buf.extend_from_slice(&header);
        st.buf.extend_from_slice(bytes);
        let end = Lsn(start.0 + bytes.len() as u64);
        match send_all_now(&st.sock, &st.buf) {
            Ok(n) if n == st.buf.len() => {
                st.next = end;
                st.taken.sent = Some((end, wal_end, now));
            }
            Ok(0) => st.armed = false,
            Ok(n) => {
                // The message is committed to the stream: the task must finish it first.
                st.taken.pending = st.buf[n..].to_vec();
                st.taken.sent = Some((end, wal_end, now));
                st.armed = false;
            }
            Err(_) => st.armed = false,
        }
    }
}

/// Writes as much of `buf` as the socket takes now (never waits).
fn send_all_now(sock: &socket2::Socket, buf: &[u8]) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match sock.send(&buf[done..]) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::{TcpListener, TcpStream};

    fn pair() -> (DirectSend, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let client = TcpStream::connect(l.local_addr().expect("addr")).expect("connect");
        let (server, _) = l.accept().expect("accept");
        server.set_nonblocking(true).expect("nonblocking");
        (DirectSend::new(socket2::Socket::from(server)), client)
    }

    fn read_message(c: &mut TcpStream) -> (Lsn, Vec<u8>) {
        let mut head = [0u8; 5];
        c.read_exact(&mut head).expect("head");
        assert_eq!(head[0], b'd');
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        let mut body = vec![0u8; len - 4];
        c.read_exact(&mut body).expect("body");
        assert_eq!(body[0], b'w');
        let start = u64::from_be_bytes(body[1..9].try_into().expect("8 bytes"));
        (Lsn(start), body[25..].to_vec())
    }

    #[test]
    fn sends_only_while_armed_and_contiguous() {
        let (d, mut c) = pair();
        d.try_send(Lsn(100), b"early", Lsn(100));
        assert!(d.disarm().sent.is_none(), "not armed: nothing sent");

        d.arm(Lsn(100));
        d.try_send(Lsn(96), b"gap", Lsn(96));
        d.try_send(Lsn(100), b"abcd", Lsn(100));
        d.try_send(Lsn(104), b"efgh", Lsn(104));
        let taken = d.disarm();
        let (end, wal_end, _) = taken.sent.expect("sent");
        assert_eq!((end, wal_end), (Lsn(108), Lsn(104)));
        assert!(taken.pending.is_empty());
        assert_eq!(read_message(&mut c), (Lsn(100), b"abcd".to_vec()));
        assert_eq!(read_message(&mut c), (Lsn(104), b"efgh".to_vec()));

        // Disarmed: the task owns the socket again.
        d.try_send(Lsn(108), b"ijkl", Lsn(108));
        assert!(d.disarm().sent.is_none());
    }

    #[test]
    fn a_full_socket_leaves_the_rest_to_the_task() {
        let (d, _c) = pair();
        d.arm(Lsn(0));
        let chunk = vec![7u8; DIRECT_SEND_MAX];
        let mut at = 0u64;
        // The client never reads: the socket buffers fill, and the hook must stop at once.
        for _ in 0..10_000 {
            d.try_send(Lsn(at), &chunk, Lsn(at));
            at += chunk.len() as u64;
            let st = d.state.lock();
            if !st.armed {
                break;
            }
        }
        let taken = d.disarm();
        let (end, _, _) = taken.sent.expect("some WAL was sent");
        assert!(end.0 <= at);
        // Whatever was cut off is handed over, never dropped: its length is below one message.
        assert!(taken.pending.len() < DIRECT_SEND_MAX + 64);
        // Once disarmed, further WAL is not sent.
        d.try_send(end, &chunk, end);
        assert!(d.disarm().sent.is_none());
    }

    #[test]
    fn oversized_writes_are_left_to_the_task() {
        let (d, _c) = pair();
        d.arm(Lsn(0));
        d.try_send(Lsn(0), &vec![0u8; DIRECT_SEND_MAX + 1], Lsn(0));
        assert!(d.disarm().sent.is_none());
    }
}

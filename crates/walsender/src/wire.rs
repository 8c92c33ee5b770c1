//! The few PostgreSQL protocol messages a walsender sends and reads, encoded by hand: the
//! frontend's encoder is private to it, and a replication connection needs only a dozen
//! message types.
//!
//! Reading: a dedicated task ([`spawn_reader`]) turns the socket into whole messages on a
//! channel, so the walsender's `select!` never cancels a half-read message. A message whose
//! length is impossible or above [`MAX_MESSAGE_LEN`] ends the connection with FATAL 08P01;
//! nothing a client sends can panic.

use base::PgError;
use base::error::sqlstate;
use bytes::{Buf, BytesMut};
use replication::commands::results::ResultRow;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;

/// The largest message a standby or backup client sends: replication commands are short and
/// standby replies are 34 bytes; 1 MiB leaves room for long BASE_BACKUP option lists while
/// keeping a hostile length field from making us allocate gigabytes.
pub const MAX_MESSAGE_LEN: usize = 1 << 20;

/// One message from the client: type byte and body.
#[derive(Debug)]
pub struct Frame {
    pub tag: u8,
    pub body: bytes::Bytes,
}

/// Spawns the reader task: frames arrive on the returned channel; `Err` is the FATAL to
/// send (garbage length); the channel closes at EOF.
pub fn spawn_reader<R: AsyncRead + Unpin + Send + 'static>(
    mut rd: R,
    mut buf: BytesMut,
) -> mpsc::Receiver<Result<Frame, PgError>> {
    // Eight frames in flight: enough to keep reading standby replies while the sender
    // writes, small enough that a client flooding us is throttled by TCP.
    let (tx, rx) = mpsc::channel(8);
    tokio::spawn(async move {
        loop {
            while buf.len() >= 5 {
                let tag = buf[0];
                let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
                if !(4..=MAX_MESSAGE_LEN).contains(&len) {
                    let _ = tx
                        .send(Err(PgError::fatal(
                            sqlstate::PROTOCOL_VIOLATION,
                            format!("invalid message length {len}"),
                        )))
                        .await;
                    return;
                }
                if buf.len() < 1 + len {
                    break;
                }
                buf.advance(5);
                let body = buf.split_to(len - 4).freeze();
                if tx.send(Ok(Frame { tag, body })).await.is_err() {
                    return;
                }
            }
            buf.reserve(8192);
            match rd.read_buf(&mut buf).await {
                Ok(0) | Err(_) => {
                    if !buf.is_empty() {
                        let _ = tx
                            .send(Err(PgError::fatal(
                                sqlstate::PROTOCOL_VIOLATION,
                                "unexpected EOF within message",
                            )))
                            .await;
                    }
                    return;
                }
                Ok(_) => {}
            }
        }
    });
    rx
}

fn begin(out: &mut Vec<u8>, tag: u8) -> usize {
    out.push(tag);
    let at = out.len();
    out.extend_from_slice(&[0, 0, 0, 0]);
    at
}

fn finish(out: &mut [u8], at: usize) {
    let len = (out.len() - at) as u32;
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

fn cstr(out: &mut Vec<u8>, s: &str) {
    // A NUL inside would end the string early on the client: drop it.
    out.extend(s.bytes().filter(|b| *b != 0));
    out.push(0);
}

pub fn parameter_status(out: &mut Vec<u8>, name: &str, value: &str) {
    let at = begin(out, b'S');
    cstr(out, name);
    cstr(out, value);
    finish(out, at);
}

pub fn backend_key_data(out: &mut Vec<u8>, pid: i32, key: i32) {
    let at = begin(out, b'K');
    out.extend_from_slice(&pid.to_be_bytes());
    out.extend_from_slice(&key.to_be_bytes());
    finish(out, at);
}

pub fn ready_for_query(out: &mut Vec<u8>) {
    let at = begin(out, b'Z');
    out.push(b'I');
    finish(out, at);
}

pub fn command_complete(out: &mut Vec<u8>, tag: &str) {
    let at = begin(out, b'C');
    cstr(out, tag);
    finish(out, at);
}

pub fn empty_query(out: &mut Vec<u8>) {
    let at = begin(out, b'I');
    finish(out, at);
}

/// ErrorResponse or NoticeResponse, with PostgreSQL's field codes.
pub fn error(out: &mut Vec<u8>, e: &PgError) {
    let notice = matches!(
        e.severity,
        base::error::Severity::Warning | base::error::Severity::Notice
    );
    let at = begin(out, if notice { b'N' } else { b'E' });
    out.push(b'S');
    cstr(out, e.severity.as_str());
    out.push(b'V');
    cstr(out, e.severity.as_str());
    out.push(b'C');
    cstr(out, e.code.code());
    out.push(b'M');
    cstr(out, &e.message);
    if let Some(d) = &e.detail {
        out.push(b'D');
        cstr(out, d);
    }
    if let Some(h) = &e.hint {
        out.push(b'H');
        cstr(out, h);
    }
    out.push(0);
    finish(out, at);
}

/// RowDescription + DataRow of a one-row result (no CommandComplete).
pub fn result_row(out: &mut Vec<u8>, row: &ResultRow) {
    let at = begin(out, b'T');
    out.extend_from_slice(&(row.columns.len() as u16).to_be_bytes());
    for c in &row.columns {
        cstr(out, &c.name);
        out.extend_from_slice(&0u32.to_be_bytes()); // table oid
        out.extend_from_slice(&0u16.to_be_bytes()); // column number
        out.extend_from_slice(&c.type_oid.to_be_bytes());
        let size: i16 = match c.type_oid {
            base::types::oid::INT4 | base::types::oid::OID => 4,
            base::types::oid::INT8 => 8,
            _ => -1,
        };
        out.extend_from_slice(&size.to_be_bytes());
        out.extend_from_slice(&(-1i32).to_be_bytes()); // typmod
        out.extend_from_slice(&0u16.to_be_bytes()); // text format
    }
    finish(out, at);
    data_row(out, &row.values);
}

pub fn data_row(out: &mut Vec<u8>, values: &[Option<Vec<u8>>]) {
    let at = begin(out, b'D');
    out.extend_from_slice(&(values.len() as u16).to_be_bytes());
    for v in values {
        match v {
            None => out.extend_from_slice(&(-1i32).to_be_bytes()),
            Some(b) => {
                out.extend_from_slice(&(b.len() as u32).to_be_bytes());
                out.extend_from_slice(b);
            }
        }
    }
    finish(out, at);
}

/// CopyBothResponse ('W') or CopyOutResponse ('H'): binary overall format, no columns.
pub fn copy_response(out: &mut Vec<u8>, tag: u8) {
    let at = begin(out, tag);
    out.push(0);
    out.extend_from_slice(&0u16.to_be_bytes());
    finish(out, at);
}

pub fn copy_data(out: &mut Vec<u8>, payload: &[u8]) {
    let at = begin(out, b'd');
    out.extend_from_slice(payload);
    finish(out, at);
}

pub fn copy_done(out: &mut Vec<u8>) {
    let at = begin(out, b'c');
    finish(out, at);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reader_rejects_garbage_length_and_truncation() {
        let data: &[u8] = &[b'Q', 0xff, 0xff, 0xff, 0xff];
        let mut rx = spawn_reader(data, BytesMut::new());
        let e = rx.recv().await.expect("frame").expect_err("garbage");
        assert_eq!(e.code.code(), "08P01");
        let data: &[u8] = &[b'Q', 0, 0, 0, 9, b'a'];
        let mut rx = spawn_reader(data, BytesMut::new());
        let e = rx.recv().await.expect("frame").expect_err("truncated");
        assert_eq!(e.code.code(), "08P01");
        let data: &[u8] = &[b'X', 0, 0, 0, 4];
        let mut rx = spawn_reader(data, BytesMut::new());
        let f = rx.recv().await.expect("frame").expect("ok");
        assert_eq!(f.tag, b'X');
        assert!(rx.recv().await.is_none());
    }
}

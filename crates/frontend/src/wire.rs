//! The PostgreSQL v3 wire format: framing and decoding of frontend messages, encoding of
//! backend messages.
//!
//! Runs inside every connection task. Framing reads from a `BytesMut` that the connection
//! fills from its socket; a complete message is split off without copying and decoded into a
//! `FrontendMessage` that borrows from it. Backend messages are appended to one reusable
//! `Vec<u8>` per connection, which the connection writes out only at PostgreSQL's flush points
//! (see `conn`).
//!
//! Why not pgwire's codec: pgwire 0.42.1's `decode_body` functions read with `Buf::get_u16`
//! and friends, which panic on a body shorter than its fields, and they read from the whole
//! receive buffer rather than the declared message, so a malformed message could consume the
//! next one. Here every message is cut to its declared length first and decoded with the
//! bounds-checked `Reader`, the way PostgreSQL's `pq_getmsg*` functions work: a short, long or
//! otherwise malformed body is a `DecodeError`, never a panic.
//!
//! Limits (each is PostgreSQL's, for the same reason):
//! - Startup-phase packets (StartupMessage, SSLRequest, GSSENCRequest, CancelRequest): 8 to
//!   10 000 bytes (`MAX_STARTUP_PACKET_LENGTH`): an unauthenticated peer gets no big buffer.
//! - Authentication messages (`p`): 65 535 bytes (`PG_MAX_AUTH_TOKEN_LENGTH`).
//! - Query, Parse, Bind, CopyData, FunctionCall: `max_message_len` from the configuration,
//!   default 1 GiB - 1 (`PQ_LARGE_MESSAGE_LIMIT`): these carry statement text and values, and
//!   PostgreSQL clients may legitimately send values that large. The buffer grows only as
//!   bytes arrive, so a lying length does not allocate up front.
//! - Every other message: 10 000 bytes (`PQ_SMALL_MESSAGE_LIMIT`): they hold a name or two, so
//!   a bigger length means a broken or hostile client.
//!
//! Invariants: a message type is checked before its length, so garbage fails fast; a
//! `FrontendMessage` never outlives the `Bytes` it borrows from; every encoded message's length
//! word is patched after its body is written, so it always matches.

use std::fmt::Write as _;

use base::error::{Severity, sqlstate};
use base::{DataType, PgError};
use bytes::{Bytes, BytesMut};
use smallvec::SmallVec;

/// PostgreSQL's `MAX_STARTUP_PACKET_LENGTH`.
pub(crate) const STARTUP_PACKET_MAX_LEN: usize = 10_000;
/// A startup-phase packet is at least its length word and a 4-byte code.
pub(crate) const STARTUP_PACKET_MIN_LEN: usize = 8;
/// PostgreSQL's `PG_MAX_AUTH_TOKEN_LENGTH`.
pub(crate) const AUTH_MESSAGE_MAX_LEN: usize = 65_535;
/// PostgreSQL's `PQ_SMALL_MESSAGE_LIMIT`.
pub(crate) const SMALL_MESSAGE_MAX_LEN: usize = 10_000;
/// PostgreSQL's `PQ_LARGE_MESSAGE_LIMIT` (MaxAllocSize - 1).
pub const LARGE_MESSAGE_MAX_LEN_DEFAULT: usize = (1 << 30) - 1;

/// Startup-phase request codes (PostgreSQL's `pqcomm.h`).
pub(crate) const CANCEL_REQUEST_CODE: u32 = (1234 << 16) | 5678;
pub(crate) const SSL_REQUEST_CODE: u32 = (1234 << 16) | 5679;
pub(crate) const GSSENC_REQUEST_CODE: u32 = (1234 << 16) | 5680;

/// The message types a client may send after start-up, with their size class. `None` for a
/// type byte PostgreSQL does not define.
pub(crate) fn message_limit(msg_type: u8, large: usize) -> Option<usize> {
    match msg_type {
        b'Q' | b'P' | b'B' | b'd' | b'F' => Some(large),
        b'p' => Some(AUTH_MESSAGE_MAX_LEN),
        b'D' | b'E' | b'C' | b'H' | b'S' | b'X' | b'c' | b'f' => Some(SMALL_MESSAGE_MAX_LEN),
        _ => None,
    }
}

/// A framing failure: the connection cannot continue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum FrameError {
    #[error("invalid frontend message type {0}")]
    UnknownType(u8),
    #[error("invalid message length")]
    BadLength,
}

/// Splits one complete message (type byte, length, body) off the front of `buf`. Returns the
/// type and the body; `Ok(None)` when more bytes are needed. `large` is the configured limit
/// for the large message types.
pub(crate) fn split_message(
    buf: &mut BytesMut,
    large: usize,
) -> Result<Option<(u8, Bytes)>, FrameError> {
    let Some(&msg_type) = buf.first() else {
        return Ok(None);
    };
    let limit = message_limit(msg_type, large).ok_or(FrameError::UnknownType(msg_type))?;
    let Some(len_bytes) = buf.get(1..5) else {
        return Ok(None);
    };
    let len = i32::from_be_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]);
    let body_len = usize::try_from(len)
        .ok()
        .and_then(|l| l.checked_sub(4))
        .filter(|l| *l <= limit)
        .ok_or(FrameError::BadLength)?;
    let total = 5 + body_len;
    if buf.len() < total {
        // Grow towards the message, in steps, so a lying length costs no memory up front.
        const GROW_STEP_MAX: usize = 1 << 20;
        buf.reserve((total - buf.len()).min(GROW_STEP_MAX));
        return Ok(None);
    }
    let mut frame = buf.split_to(total);
    let _ = frame.split_to(5);
    Ok(Some((msg_type, frame.freeze())))
}

/// Splits one startup-phase packet (length word, then body) off `buf`.
pub(crate) fn split_startup_packet(buf: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
    let Some(len_bytes) = buf.get(0..4) else {
        return Ok(None);
    };
    let len = i32::from_be_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]);
    let len = usize::try_from(len)
        .ok()
        .filter(|l| (STARTUP_PACKET_MIN_LEN..=STARTUP_PACKET_MAX_LEN).contains(l))
        .ok_or(FrameError::BadLength)?;
    if buf.len() < len {
        buf.reserve(len - buf.len());
        return Ok(None);
    }
    let mut frame = buf.split_to(len);
    let _ = frame.split_to(4);
    Ok(Some(frame.freeze()))
}

/// Why a message body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// The body does not have the message's layout: a protocol violation that ends the
    /// connection (FATAL 08P01 "invalid message format").
    Malformed(&'static str),
    /// A string is not valid UTF-8: an ordinary ERROR (22021), the connection goes on.
    Encoding(String),
}

impl DecodeError {
    pub(crate) fn to_pg_error(&self) -> PgError {
        match self {
            DecodeError::Malformed(what) => {
                PgError::fatal(sqlstate::PROTOCOL_VIOLATION, "invalid message format")
                    .with_detail(*what)
            }
            DecodeError::Encoding(bytes) => PgError::new(
                sqlstate::CHARACTER_NOT_IN_REPERTOIRE,
                format!("invalid byte sequence for encoding \"UTF8\": {bytes}"),
            ),
        }
    }
}

/// Bounds-checked reads from a message body, like PostgreSQL's `pq_getmsg*`.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError::Malformed("insufficient data left in message"));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub(crate) fn i16(&mut self) -> Result<i16, DecodeError> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    pub(crate) fn i32(&mut self) -> Result<i32, DecodeError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        self.take(n)
    }

    /// The rest of the body.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// A NUL-terminated string, without its NUL.
    pub(crate) fn cstr_bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let nul = self
            .buf
            .iter()
            .position(|b| *b == 0)
            .ok_or(DecodeError::Malformed("invalid string in message"))?;
        let s = &self.buf[..nul];
        self.buf = &self.buf[nul + 1..];
        Ok(s)
    }

    /// A NUL-terminated UTF-8 string.
    pub(crate) fn cstr(&mut self) -> Result<&'a str, DecodeError> {
        utf8(self.cstr_bytes()?)
    }

    /// PostgreSQL's `pq_getmsgend`: the body must be used up exactly.
    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::Malformed("unexpected data at end of message"))
        }
    }
}

/// Validates UTF-8, reporting the offending bytes as PostgreSQL does.
pub(crate) fn utf8(b: &[u8]) -> Result<&str, DecodeError> {
    std::str::from_utf8(b).map_err(|e| {
        let start = e.valid_up_to();
        let end = (start + e.error_len().unwrap_or(1)).min(b.len());
        let mut shown = String::new();
        for (i, byte) in b[start..end].iter().enumerate() {
            if i > 0 {
                shown.push(' ');
            }
            let _ = write!(shown, "0x{byte:02x}");
        }
        DecodeError::Encoding(shown)
    })
}

/// Inline capacity for per-Bind lists: pgbench binds at most 4 parameters, most clients few.
pub(crate) type Small<T> = SmallVec<[T; 8]>;

/// A decoded frontend message, borrowing from its body.
#[derive(Debug, PartialEq)]
pub(crate) enum FrontendMessage<'a> {
    Query(&'a str),
    Parse {
        name: &'a str,
        query: &'a str,
        param_types: Small<u32>,
    },
    Bind {
        portal: &'a str,
        statement: &'a str,
        param_formats: Small<i16>,
        params: Small<Option<&'a [u8]>>,
        result_formats: Small<i16>,
    },
    Describe {
        kind: u8,
        name: &'a str,
    },
    Execute {
        portal: &'a str,
        max_rows: i32,
    },
    Close {
        kind: u8,
        name: &'a str,
    },
    Flush,
    Sync,
    Terminate,
    CopyData(&'a [u8]),
    CopyDone,
    CopyFail(&'a str),
    FunctionCall,
    /// `p`: a password or SASL message; its layout depends on the authentication step.
    Password(&'a [u8]),
}

impl<'a> FrontendMessage<'a> {
    /// Decodes a body whose type byte passed `message_limit`.
    pub(crate) fn decode(msg_type: u8, body: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let msg = match msg_type {
            b'Q' => FrontendMessage::Query(r.cstr()?),
            b'P' => {
                let name = r.cstr()?;
                let query = r.cstr()?;
                let n = r.u16()?;
                let mut param_types = Small::with_capacity(usize::from(n));
                for _ in 0..n {
                    param_types.push(r.u32()?);
                }
                FrontendMessage::Parse {
                    name,
                    query,
                    param_types,
                }
            }
            b'B' => {
                let portal = r.cstr()?;
                let statement = r.cstr()?;
                let n = r.u16()?;
                let mut param_formats = Small::with_capacity(usize::from(n));
                for _ in 0..n {
                    param_formats.push(r.i16()?);
                }
                let n = r.u16()?;
                let mut params = Small::with_capacity(usize::from(n));
                for _ in 0..n {
                    let len = r.i32()?;
                    params.push(match len {
                        -1 => None,
                        l if l < -1 => {
                            return Err(DecodeError::Malformed("invalid parameter length"));
                        }
                        l => Some(r.bytes(l as usize)?),
                    });
                }
                let n = r.u16()?;
                let mut result_formats = Small::with_capacity(usize::from(n));
                for _ in 0..n {
                    result_formats.push(r.i16()?);
                }
                FrontendMessage::Bind {
                    portal,
                    statement,
                    param_formats,
                    params,
                    result_formats,
                }
            }
            b'D' => {
                let kind = r.u8()?;
                FrontendMessage::Describe {
                    kind,
                    name: r.cstr()?,
                }
            }
            b'E' => {
                let portal = r.cstr()?;
                FrontendMessage::Execute {
                    portal,
                    max_rows: r.i32()?,
                }
            }
            b'C' => {
                let kind = r.u8()?;
                FrontendMessage::Close {
                    kind,
                    name: r.cstr()?,
                }
            }
            b'H' => FrontendMessage::Flush,
            b'S' => FrontendMessage::Sync,
            b'X' => FrontendMessage::Terminate,
            b'd' => FrontendMessage::CopyData(r.rest()),
            // PostgreSQL ignores any bytes in CopyDone.
            b'c' => {
                r.rest();
                FrontendMessage::CopyDone
            }
            b'f' => FrontendMessage::CopyFail(r.cstr()?),
            b'F' => {
                r.rest();
                FrontendMessage::FunctionCall
            }
            b'p' => FrontendMessage::Password(r.rest()),
            _ => return Err(DecodeError::Malformed("invalid frontend message type")),
        };
        r.finish()?;
        Ok(msg)
    }
}

// ---- Backend messages -------------------------------------------------------------------
//
// Each function appends one complete message to `out`. `begin`/`end` write the type byte and
// patch the length word after the body.

#[inline]
pub(crate) fn begin(out: &mut Vec<u8>, msg_type: u8) -> usize {
    out.push(msg_type);
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    at
}

/// Patches the length word written by `begin`. Messages other than DataRow are bounded by
/// what the client sent us (at most `max_message_len`) or by small server strings, and
/// DataRow checks its size before calling this, so the length fits in an i32.
#[inline]
pub(crate) fn end(out: &mut [u8], at: usize) {
    let len = i32::try_from(out.len() - at).unwrap_or(i32::MAX);
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

/// A NUL-terminated string. PostgreSQL strings cannot hold NUL; one inside `s` is dropped so
/// that it cannot end the string early and desynchronise the client.
#[inline]
pub(crate) fn put_cstr(out: &mut Vec<u8>, s: &str) {
    if s.as_bytes().contains(&0) {
        out.extend(s.bytes().filter(|b| *b != 0));
    } else {
        out.extend_from_slice(s.as_bytes());
    }
    out.push(0);
}

pub(crate) fn authentication(out: &mut Vec<u8>, code: i32, data: &[u8]) {
    let at = begin(out, b'R');
    out.extend_from_slice(&code.to_be_bytes());
    out.extend_from_slice(data);
    end(out, at);
}

pub(crate) const AUTH_OK: i32 = 0;
pub(crate) const AUTH_CLEARTEXT_PASSWORD: i32 = 3;
pub(crate) const AUTH_SASL: i32 = 10;
pub(crate) const AUTH_SASL_CONTINUE: i32 = 11;
pub(crate) const AUTH_SASL_FINAL: i32 = 12;

pub(crate) fn authentication_sasl(out: &mut Vec<u8>, mechanisms: &[&str]) {
    let at = begin(out, b'R');
    out.extend_from_slice(&AUTH_SASL.to_be_bytes());
    for m in mechanisms {
        put_cstr(out, m);
    }
    out.push(0);
    end(out, at);
}

pub(crate) fn parameter_status(out: &mut Vec<u8>, name: &str, value: &str) {
    let at = begin(out, b'S');
    put_cstr(out, name);
    put_cstr(out, value);
    end(out, at);
}

pub(crate) fn backend_key_data(out: &mut Vec<u8>, pid: i32, secret: i32) {
    let at = begin(out, b'K');
    out.extend_from_slice(&pid.to_be_bytes());
    out.extend_from_slice(&secret.to_be_bytes());
    end(out, at);
}

pub(crate) fn ready_for_query(out: &mut Vec<u8>, status: u8) {
    out.extend_from_slice(&[b'Z', 0, 0, 0, 5, status]);
}

/// NegotiateProtocolVersion: the newest minor version we support for the requested major,
/// and the `_pq_.` options we did not recognise.
pub(crate) fn negotiate_protocol_version(out: &mut Vec<u8>, minor: u16, unrecognised: &[String]) {
    let at = begin(out, b'v');
    let version = (3i32 << 16) | i32::from(minor);
    out.extend_from_slice(&version.to_be_bytes());
    let n = i32::try_from(unrecognised.len()).unwrap_or(i32::MAX);
    out.extend_from_slice(&n.to_be_bytes());
    for o in unrecognised {
        put_cstr(out, o);
    }
    end(out, at);
}

/// A message with no body.
#[inline]
pub(crate) fn empty(out: &mut Vec<u8>, msg_type: u8) {
    out.extend_from_slice(&[msg_type, 0, 0, 0, 4]);
}

pub(crate) fn parse_complete(out: &mut Vec<u8>) {
    empty(out, b'1');
}
pub(crate) fn bind_complete(out: &mut Vec<u8>) {
    empty(out, b'2');
}
pub(crate) fn close_complete(out: &mut Vec<u8>) {
    empty(out, b'3');
}
pub(crate) fn no_data(out: &mut Vec<u8>) {
    empty(out, b'n');
}
pub(crate) fn portal_suspended(out: &mut Vec<u8>) {
    empty(out, b's');
}
pub(crate) fn empty_query_response(out: &mut Vec<u8>) {
    empty(out, b'I');
}

#[inline]
pub(crate) fn command_complete(out: &mut Vec<u8>, tag: &str) {
    let at = begin(out, b'C');
    put_cstr(out, tag);
    end(out, at);
}

pub(crate) fn parameter_description(out: &mut Vec<u8>, types: &[DataType]) {
    let at = begin(out, b't');
    // The count is an unsigned 16-bit number on the wire, as in Parse and Bind.
    let n = u16::try_from(types.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&n.to_be_bytes());
    for t in types.iter().take(usize::from(n)) {
        out.extend_from_slice(&t.oid().to_be_bytes());
    }
    end(out, at);
}

/// RowDescription; `format(i)` gives column i's format code.
pub(crate) fn row_description(
    out: &mut Vec<u8>,
    fields: &[sql::FieldInfo],
    format: impl Fn(usize) -> i16,
) {
    let at = begin(out, b'T');
    let n = i16::try_from(fields.len()).unwrap_or(i16::MAX);
    out.extend_from_slice(&n.to_be_bytes());
    for (i, f) in fields.iter().take(n as usize).enumerate() {
        put_cstr(out, &f.name);
        out.extend_from_slice(&f.table_oid.to_be_bytes());
        out.extend_from_slice(&f.column_id.to_be_bytes());
        out.extend_from_slice(&f.data_type.oid().to_be_bytes());
        out.extend_from_slice(&f.data_type.type_len().to_be_bytes());
        out.extend_from_slice(&f.data_type.type_modifier().to_be_bytes());
        out.extend_from_slice(&format(i).to_be_bytes());
    }
    end(out, at);
}

/// CopyInResponse for a text-format COPY of `columns` columns.
/// CopyOutResponse ('H'): text format overall and per column.
pub(crate) fn copy_out_response(out: &mut Vec<u8>, columns: usize) {
    copy_response(out, b'H', columns);
}

/// CopyData ('d') from the server.
pub(crate) fn copy_data(out: &mut Vec<u8>, data: &[u8]) {
    let at = begin(out, b'd');
    out.extend_from_slice(data);
    end(out, at);
}

/// CopyDone ('c') from the server.
pub(crate) fn copy_done(out: &mut Vec<u8>) {
    let at = begin(out, b'c');
    end(out, at);
}

/// CopyInResponse ('G'): text format overall and per column.
pub(crate) fn copy_in_response(out: &mut Vec<u8>, columns: usize) {
    copy_response(out, b'G', columns);
}

fn copy_response(out: &mut Vec<u8>, msg_type: u8, columns: usize) {
    let at = begin(out, msg_type);
    out.push(0);
    let n = i16::try_from(columns).unwrap_or(i16::MAX);
    out.extend_from_slice(&n.to_be_bytes());
    for _ in 0..n {
        out.extend_from_slice(&0i16.to_be_bytes());
    }
    end(out, at);
}

/// ErrorResponse or NoticeResponse (chosen by severity) with every field the error has.
pub(crate) fn error_or_notice(out: &mut Vec<u8>, err: &PgError) {
    let msg_type = match err.severity {
        Severity::Error | Severity::Fatal | Severity::Panic => b'E',
        _ => b'N',
    };
    let at = begin(out, msg_type);
    let mut field = |code: u8, value: &str| {
        out.push(code);
        put_cstr(out, value);
    };
    field(b'S', err.severity.as_str());
    field(b'V', err.severity.as_str());
    field(b'C', err.code.code());
    field(b'M', &err.message);
    if let Some(d) = &err.detail {
        field(b'D', d);
    }
    if let Some(h) = &err.hint {
        field(b'H', h);
    }
    if let Some(p) = err.position {
        field(b'P', &p.to_string());
    }
    if let Some(t) = &err.table {
        field(b't', t);
    }
    if let Some(c) = &err.column {
        field(b'c', c);
    }
    if let Some(c) = &err.constraint {
        field(b'n', c);
    }
    out.push(0);
    end(out, at);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use bytes::BufMut;

    fn frame(msg_type: u8, body: &[u8]) -> BytesMut {
        let mut b = BytesMut::new();
        b.put_u8(msg_type);
        b.put_i32(body.len() as i32 + 4);
        b.put_slice(body);
        b
    }

    #[test]
    fn framing_waits_for_whole_messages() {
        let mut buf = frame(b'Q', b"select 1\0");
        let whole = buf.clone();
        let mut partial = BytesMut::from(&whole[..7]);
        assert_eq!(split_message(&mut partial, 1000), Ok(None));
        let (t, body) = split_message(&mut buf, 1000).unwrap().unwrap();
        assert_eq!((t, &body[..]), (b'Q', &b"select 1\0"[..]));
        assert!(buf.is_empty());
        assert_eq!(split_message(&mut BytesMut::new(), 1000), Ok(None));
    }

    #[test]
    fn framing_rejects_bad_types_and_lengths() {
        assert_eq!(
            split_message(&mut BytesMut::from(&b"\x01"[..]), 1000),
            Err(FrameError::UnknownType(1))
        );
        for len in [-1i32, 0, 3, i32::MAX, 10_005] {
            let mut b = BytesMut::new();
            b.put_u8(b'S');
            b.put_i32(len);
            assert_eq!(
                split_message(&mut b, 1 << 20),
                Err(FrameError::BadLength),
                "{len}"
            );
        }
        // The large limit applies to Query; small types keep theirs.
        let mut b = BytesMut::new();
        b.put_u8(b'Q');
        b.put_i32(2000);
        assert_eq!(split_message(&mut b, 1000), Err(FrameError::BadLength));
        let mut b = BytesMut::new();
        b.put_u8(b'Q');
        b.put_i32(2000);
        assert_eq!(split_message(&mut b, 5000), Ok(None));
    }

    #[test]
    fn startup_packet_bounds() {
        for len in [0i32, 7, 10_001, -5] {
            let mut b = BytesMut::new();
            b.put_i32(len);
            assert_eq!(split_startup_packet(&mut b), Err(FrameError::BadLength));
        }
        let mut b = BytesMut::new();
        b.put_i32(8);
        b.put_u32(SSL_REQUEST_CODE);
        let body = split_startup_packet(&mut b).unwrap().unwrap();
        assert_eq!(&body[..], &SSL_REQUEST_CODE.to_be_bytes());
    }

    #[test]
    fn decodes_every_message() {
        assert_eq!(
            FrontendMessage::decode(b'Q', b"select 1\0"),
            Ok(FrontendMessage::Query("select 1"))
        );
        let mut parse = b"s1\0select $1\0".to_vec();
        parse.extend_from_slice(&[0, 1, 0, 0, 0, 23]);
        assert_eq!(
            FrontendMessage::decode(b'P', &parse),
            Ok(FrontendMessage::Parse {
                name: "s1",
                query: "select $1",
                param_types: [23].into_iter().collect(),
            })
        );
        let mut bind = b"p\0s1\0".to_vec();
        bind.extend_from_slice(&[0, 1, 0, 1]); // one param format: binary
        bind.extend_from_slice(&[0, 2, 0, 0, 0, 2, b'4', b'2', 0xff, 0xff, 0xff, 0xff]);
        bind.extend_from_slice(&[0, 0]);
        let FrontendMessage::Bind {
            portal,
            statement,
            param_formats,
            params,
            result_formats,
        } = FrontendMessage::decode(b'B', &bind).unwrap()
        else {
            panic!()
        };
        assert_eq!((portal, statement), ("p", "s1"));
        assert_eq!(&param_formats[..], &[1]);
        assert_eq!(&params[..], &[Some(&b"42"[..]), None]);
        assert!(result_formats.is_empty());

        assert_eq!(
            FrontendMessage::decode(b'E', b"\0\0\0\0\x05"),
            Ok(FrontendMessage::Execute {
                portal: "",
                max_rows: 5
            })
        );
        assert_eq!(
            FrontendMessage::decode(b'D', b"Sx\0"),
            Ok(FrontendMessage::Describe {
                kind: b'S',
                name: "x"
            })
        );
        assert_eq!(
            FrontendMessage::decode(b'S', b""),
            Ok(FrontendMessage::Sync)
        );
        assert_eq!(
            FrontendMessage::decode(b'd', b"1\t2\n"),
            Ok(FrontendMessage::CopyData(b"1\t2\n"))
        );
        assert_eq!(
            FrontendMessage::decode(b'f', b"oops\0"),
            Ok(FrontendMessage::CopyFail("oops"))
        );
    }

    #[test]
    fn malformed_bodies_are_errors_not_panics() {
        let cases: &[(u8, &[u8])] = &[
            (b'Q', b"no terminator"),
            (b'Q', b"select 1\0extra"),
            (b'P', b"s\0q\0\x00"),
            (b'P', b"s\0q\0\x00\x02\0\0\0\x17"),
            (b'B', b"\0\0\xff\xff"),
            (b'B', b"\0\0\0\0\0\x01\x00\x00\x00\x09ab\0\0"),
            (b'B', b"\0\0\0\0\0\x01\xff\xff\xff\xfe\0\0"),
            (b'E', b"\0\0\0"),
            (b'D', b""),
            (b'S', b"x"),
        ];
        for (t, body) in cases {
            assert!(
                matches!(
                    FrontendMessage::decode(*t, body),
                    Err(DecodeError::Malformed(_))
                ),
                "{} {body:?}",
                *t as char
            );
        }
        assert_eq!(
            FrontendMessage::decode(b'Q', b"\xc3\x28\0"),
            Err(DecodeError::Encoding("0xc3".into()))
        );
    }

    #[test]
    fn random_bodies_never_panic() {
        let mut seed = 0x1234_5678_9abc_def1u64;
        let types = b"QPBDECHSXdcfFp";
        for i in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 40) as usize;
            let body: Vec<u8> = (0..len)
                .map(|j| {
                    let x = seed.rotate_left(j as u32 * 7);
                    // Favour zeros and small numbers, which reach deeper into the decoders.
                    if x.is_multiple_of(3) {
                        0
                    } else {
                        (x >> 8) as u8 % 4
                    }
                })
                .collect();
            let _ = FrontendMessage::decode(types[i % types.len()], &body);
        }
    }

    #[test]
    fn error_response_carries_every_field() {
        let err = PgError::new(sqlstate::UNIQUE_VIOLATION, "dup")
            .with_detail("d")
            .with_hint("h")
            .with_position(7)
            .with_table("t")
            .with_column("c")
            .with_constraint("k");
        let mut out = Vec::new();
        error_or_notice(&mut out, &err);
        assert_eq!(out[0], b'E');
        let body = &out[5..];
        let text: Vec<&[u8]> = body.split(|b| *b == 0).collect();
        assert_eq!(
            text[..10],
            [
                &b"SERROR"[..],
                b"VERROR",
                b"C23505",
                b"Mdup",
                b"Dd",
                b"Hh",
                b"P7",
                b"tt",
                b"cc",
                b"nk"
            ]
        );
        let mut out = Vec::new();
        error_or_notice(&mut out, &PgError::notice("hi"));
        assert_eq!(out[0], b'N');
        let len = i32::from_be_bytes([out[1], out[2], out[3], out[4]]) as usize;
        assert_eq!(len + 1, out.len());
    }

    #[test]
    fn cstr_drops_embedded_nul() {
        let mut out = Vec::new();
        put_cstr(&mut out, "a\0b");
        assert_eq!(out, b"ab\0");
    }
}

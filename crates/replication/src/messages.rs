//! The CopyData payloads of physical streaming replication, byte for byte as PostgreSQL 15's
//! protocol documentation ("Streaming Replication Protocol") lays them out.
//!
//! After `START_REPLICATION` the connection is in CopyBoth mode and each CopyData message
//! carries one of these payloads. The first byte names the message:
//!
//! ```text
//! primary -> standby   'w' XLogData            Int64 dataStart, Int64 walEnd, Int64 sendTime, Byte_n WAL
//!                      'k' Primary keepalive   Int64 walEnd, Int64 sendTime, Byte1 replyRequested
//! standby -> primary   'r' Standby status      Int64 write, Int64 flush, Int64 apply, Int64 clock,
//!                                              Byte1 replyRequested
//!                      'h' Hot standby feedb.  Int64 clock, Int32 xmin, Int32 xmin epoch,
//!                                              Int32 catalog_xmin, Int32 catalog_xmin epoch
//! ```
//!
//! All integers are big-endian (network order). Times are PostgreSQL `TimestampTz` values:
//! microseconds since 2000-01-01 00:00:00 UTC ([`PgTimestamp`]). LSNs follow PostgreSQL's
//! "last byte + 1" convention, and 0/0 means "not known" (`InvalidXLogRecPtr`).
//!
//! **lockstep's one extension: `walEnd` carries the primary's flush LSN.** lockstep ships WAL
//! when it is *written* on the primary, before the local fsync (DESIGN.md decision 4), so a
//! standby holds WAL the primary could still lose in a crash. The standby must therefore never
//! replay past the primary's flush LSN, and it must learn that LSN from the stream. PostgreSQL's
//! documentation defines `walEnd` in 'w' and 'k' as "the current end of WAL on the server"; its
//! own walsender fills 'w' with `GetFlushRecPtr()` (it only ever sends flushed WAL, so the end
//! of sendable WAL *is* the flush LSN) and 'k' with what it has sent so far. A PostgreSQL
//! walreceiver uses the field only for `pg_stat_wal_receiver.latest_end_lsn`; `pg_receivewal`
//! and libpq-based clients ignore it. So lockstep always puts its flush LSN there: the meaning
//! is exactly PostgreSQL's for 'w', a conservative (never larger) value for 'k', no stock client
//! misbehaves, and the message layouts stay byte-identical. The price: in lockstep a 'w'
//! message may carry data *beyond* its own `walEnd` (`data_start + len > wal_end`), which a
//! PostgreSQL primary never sends; stock clients do not check this. Because the flush LSN can
//! advance after the WAL was sent, the sender also emits a keepalive whenever its flush LSN
//! passes the last `walEnd` it announced (see `walsender`), otherwise a standby's replay would
//! stall until the next write.
//!
//! Where it runs: both ends of every replication connection (the walsender encodes 'w'/'k'
//! and decodes 'r'/'h'; the walreceiver the reverse). Invariant: `decode(encode(m)) == m`
//! for every message, and a decoded XLogData's byte range never overflows the LSN space.
//!
//! What this module deliberately does not do: framing (the CopyData 'd' envelope and its
//! length belong to the driver), reading WAL, or deciding when to send anything (that is
//! `walsender`/`walreceiver`). Decoding never panics and never reads past the input; every
//! malformed input is a typed [`MessageError`], which [`MessageError::to_pg_error`] turns into
//! the 08P01 error PostgreSQL raises in the same situation. Fixed-size messages must have
//! exactly their size (PostgreSQL's walreceiver checks 'k' the same way; it ignores trailing
//! bytes after 'r'/'h', but a correct peer never sends any and accepting them would hide
//! framing bugs). A nonzero `replyRequested` byte means "true", as in PostgreSQL.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base::Lsn;
use base::error::{PgError, sqlstate};
use bytes::{BufMut, Bytes};

/// Type byte of XLogData (primary -> standby).
pub const XLOG_DATA: u8 = b'w';
/// Type byte of the primary keepalive (primary -> standby).
pub const PRIMARY_KEEPALIVE: u8 = b'k';
/// Type byte of the standby status update (standby -> primary).
pub const STANDBY_STATUS_UPDATE: u8 = b'r';
/// Type byte of hot standby feedback (standby -> primary).
pub const HOT_STANDBY_FEEDBACK: u8 = b'h';

/// Type byte plus dataStart, walEnd and sendTime; the WAL bytes follow.
pub const XLOG_DATA_HEADER_LEN: usize = 1 + 8 + 8 + 8;
/// Type byte, walEnd, sendTime, replyRequested.
pub const PRIMARY_KEEPALIVE_LEN: usize = 1 + 8 + 8 + 1;
/// Type byte, write, flush, apply, clock, replyRequested.
pub const STANDBY_STATUS_UPDATE_LEN: usize = 1 + 8 + 8 + 8 + 8 + 1;
/// Type byte, clock, xmin, xmin epoch, catalog_xmin, catalog_xmin epoch.
pub const HOT_STANDBY_FEEDBACK_LEN: usize = 1 + 8 + 4 + 4 + 4 + 4;

/// The most WAL one XLogData carries: PostgreSQL's `MAX_SEND_SIZE` (16 × 8 KiB pages). The
/// bound keeps one message small enough that the sender interleaves keepalives and reads
/// standby replies between chunks, and that a receiver's per-message buffer stays small. The
/// decoder does not enforce it (the CopyData frame is already in memory, and PostgreSQL's
/// receiver does not either); the sender never exceeds it.
pub const MAX_SEND_SIZE: u64 = 16 * 8192;

/// Seconds from the Unix epoch to PostgreSQL's epoch, 2000-01-01 00:00:00 UTC.
const POSTGRES_EPOCH_UNIX_SECS: u64 = 946_684_800;

/// A PostgreSQL `TimestampTz`: microseconds since 2000-01-01 00:00:00 UTC (negative before).
///
/// Replication messages carry the sender's wall clock in this form; it is informational
/// (`reply_time`, `last_msg_send_time`, lag estimates) and never used for timeouts, which run
/// on the receiver's monotonic clock.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct PgTimestamp(pub i64);

impl PgTimestamp {
    /// PostgreSQL's epoch itself.
    pub const EPOCH: PgTimestamp = PgTimestamp(0);

    /// Converts a wall-clock time. Times outside ±292,000 years saturate.
    pub fn from_system_time(t: SystemTime) -> PgTimestamp {
        let pg_epoch = UNIX_EPOCH + Duration::from_secs(POSTGRES_EPOCH_UNIX_SECS);
        match t.duration_since(pg_epoch) {
            Ok(after) => PgTimestamp(i64::try_from(after.as_micros()).unwrap_or(i64::MAX)),
            Err(before) => {
                PgTimestamp(i64::try_from(before.duration().as_micros()).map_or(i64::MIN, |us| -us))
            }
        }
    }

    /// The current wall-clock time. Only drivers call this; the pure state machines take
    /// times as inputs.
    pub fn now() -> PgTimestamp {
        PgTimestamp::from_system_time(SystemTime::now())
    }

    /// Converts back to wall-clock time.
    pub fn to_system_time(self) -> SystemTime {
        let pg_epoch = UNIX_EPOCH + Duration::from_secs(POSTGRES_EPOCH_UNIX_SECS);
        if self.0 >= 0 {
            pg_epoch + Duration::from_micros(self.0.unsigned_abs())
        } else {
            pg_epoch - Duration::from_micros(self.0.unsigned_abs())
        }
    }
}

/// Which way a message travels; used in errors.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Direction {
    PrimaryToStandby,
    StandbyToPrimary,
}

/// 'w': a chunk of WAL.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct XLogData {
    /// The LSN of the first byte of `data`.
    pub data_start: Lsn,
    /// PostgreSQL: "the current end of WAL on the server". lockstep: the primary's **flush
    /// LSN** when the message was built (see the module header). May be below
    /// `data_start + data.len()`.
    pub wal_end: Lsn,
    /// The sender's wall clock when the message was built.
    pub send_time: PgTimestamp,
    /// The WAL bytes, `data_start .. data_start + data.len()`.
    pub data: Bytes,
}

impl XLogData {
    /// The LSN just past the last byte carried. Decoded messages never overflow; a message
    /// built by hand that would overflow saturates at `Lsn::MAX`.
    pub fn end_lsn(&self) -> Lsn {
        Lsn(self.data_start.0.saturating_add(self.data.len() as u64))
    }

    /// lockstep's reading of `wal_end`: the primary's flush LSN.
    pub fn primary_flush_lsn(&self) -> Lsn {
        self.wal_end
    }
}

/// 'k': the primary is alive; carries its position and may ask for an immediate reply.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PrimaryKeepalive {
    /// lockstep: the primary's flush LSN (see the module header).
    pub wal_end: Lsn,
    pub send_time: PgTimestamp,
    /// The standby should reply with a status update at once (the sender is about to time
    /// out, or wants fresh positions).
    pub reply_requested: bool,
}

impl PrimaryKeepalive {
    /// lockstep's reading of `wal_end`: the primary's flush LSN.
    pub fn primary_flush_lsn(&self) -> Lsn {
        self.wal_end
    }
}

/// 'r': the standby's progress. Each LSN is "last byte + 1"; 0/0 means not reported.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct StandbyStatusUpdate {
    /// WAL received and written to the standby's disk (not necessarily flushed).
    pub write_lsn: Lsn,
    /// WAL flushed to the standby's disk.
    pub flush_lsn: Lsn,
    /// WAL replayed (applied) on the standby.
    pub apply_lsn: Lsn,
    /// The standby's wall clock when it sent the message (`pg_stat_replication.reply_time`).
    pub send_time: PgTimestamp,
    /// The primary should answer at once with a keepalive (the standby is about to time out).
    pub reply_requested: bool,
}

/// 'h': the oldest transactions the standby's queries still need. xmin = catalog_xmin = 0
/// means hot standby feedback was switched off.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct HotStandbyFeedback {
    pub send_time: PgTimestamp,
    pub xmin: u32,
    pub xmin_epoch: u32,
    pub catalog_xmin: u32,
    pub catalog_xmin_epoch: u32,
}

impl HotStandbyFeedback {
    /// Whether the standby withdrew its feedback (both xmins invalid), as PostgreSQL reads it.
    pub fn is_off(&self) -> bool {
        self.xmin == 0 && self.catalog_xmin == 0
    }
}

/// Every CopyData payload a primary sends during physical streaming.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum PrimaryMessage {
    XLogData(XLogData),
    Keepalive(PrimaryKeepalive),
}

/// Every CopyData payload a standby sends during physical streaming.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum StandbyMessage {
    StatusUpdate(StandbyStatusUpdate),
    HotStandbyFeedback(HotStandbyFeedback),
}

/// Why a CopyData payload is not a valid replication message.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MessageError {
    #[error("empty CopyData message on a replication connection ({direction:?})")]
    Empty { direction: Direction },
    #[error("unexpected message type {} ({:?})", TypeByte(*type_byte), direction)]
    UnexpectedType { direction: Direction, type_byte: u8 },
    #[error("{message} message is {len} bytes, shorter than its {min}-byte header")]
    Truncated {
        message: &'static str,
        len: usize,
        min: usize,
    },
    #[error("{message} message is {len} bytes, expected exactly {expected}")]
    WrongLength {
        direction: Direction,
        message: &'static str,
        len: usize,
        expected: usize,
    },
    #[error("XLogData at {data_start} with {len} bytes runs past the end of the WAL address space")]
    WalRangeOverflow { data_start: Lsn, len: usize },
}

impl MessageError {
    /// The error PostgreSQL raises for the same fault, SQLSTATE 08P01, with our description as
    /// the detail. A standby decoding primary messages words it like `walreceiver.c`; a
    /// primary decoding standby messages like `walsender.c`.
    pub fn to_pg_error(&self) -> PgError {
        let message = match self {
            MessageError::UnexpectedType {
                direction: Direction::StandbyToPrimary,
                type_byte,
            } => format!("unexpected message type {}", TypeByte(*type_byte)),
            MessageError::UnexpectedType {
                direction: Direction::PrimaryToStandby,
                type_byte,
            } => format!("invalid replication message type {type_byte}"),
            MessageError::Empty {
                direction: Direction::StandbyToPrimary,
            }
            | MessageError::WrongLength {
                direction: Direction::StandbyToPrimary,
                ..
            } => "insufficient data left in message".to_owned(),
            MessageError::Empty { .. }
            | MessageError::WrongLength { .. }
            | MessageError::Truncated { .. }
            | MessageError::WalRangeOverflow { .. } => {
                "invalid WAL message received from primary".to_owned()
            }
        };
        PgError::new(sqlstate::PROTOCOL_VIOLATION, message).with_detail(self.to_string())
    }
}

/// Prints a type byte as PostgreSQL's `"%c"` would, escaping what is not printable.
struct TypeByte(u8);

impl fmt::Display for TypeByte {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_ascii_graphic() {
            write!(f, "\"{}\"", char::from(self.0))
        } else {
            write!(f, "\"\\x{:02x}\"", self.0)
        }
    }
}

/// A bounds-checked big-endian reader. Every read returns `None` instead of reading past the
/// end, which is what makes decoding panic-free.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.buf.split_first_chunk::<N>()?;
        self.buf = rest;
        Some(*head)
    }

    fn u64(&mut self) -> Option<u64> {
        self.take::<8>().map(u64::from_be_bytes)
    }

    fn i64(&mut self) -> Option<i64> {
        self.take::<8>().map(i64::from_be_bytes)
    }

    fn u32(&mut self) -> Option<u32> {
        self.take::<4>().map(u32::from_be_bytes)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take::<1>().map(|[b]| b)
    }
}

fn exact(
    direction: Direction,
    message: &'static str,
    buf: &[u8],
    expected: usize,
) -> Result<(), MessageError> {
    if buf.len() == expected {
        Ok(())
    } else {
        Err(MessageError::WrongLength {
            direction,
            message,
            len: buf.len(),
            expected,
        })
    }
}

/// The length checks above guarantee every field is present; this turns the impossible
/// `None` into an error instead of a panic, so a future layout edit cannot introduce one.
fn field<T>(
    v: Option<T>,
    message: &'static str,
    len: usize,
    min: usize,
) -> Result<T, MessageError> {
    v.ok_or(MessageError::Truncated { message, len, min })
}

/// Builds the 25-byte XLogData header, so a driver can send the header and the WAL bytes
/// without first copying the WAL into one buffer (vectored write).
pub fn encode_xlog_data_header(
    data_start: Lsn,
    wal_end: Lsn,
    send_time: PgTimestamp,
) -> [u8; XLOG_DATA_HEADER_LEN] {
    let mut h = [0u8; XLOG_DATA_HEADER_LEN];
    h[0] = XLOG_DATA;
    h[1..9].copy_from_slice(&data_start.0.to_be_bytes());
    h[9..17].copy_from_slice(&wal_end.0.to_be_bytes());
    h[17..25].copy_from_slice(&send_time.0.to_be_bytes());
    h
}

impl PrimaryMessage {
    /// Decodes one CopyData payload sent by a primary. `payload` is shared, not copied: the
    /// WAL of an XLogData is a slice of it.
    ///
    /// ```
    /// use base::Lsn;
    /// use bytes::Bytes;
    /// use replication::messages::{PgTimestamp, PrimaryKeepalive, PrimaryMessage};
    ///
    /// let k = PrimaryMessage::Keepalive(PrimaryKeepalive {
    ///     wal_end: Lsn(0x300_0000),
    ///     send_time: PgTimestamp(0),
    ///     reply_requested: true,
    /// });
    /// let bytes = k.encode();
    /// assert_eq!(bytes[0], b'k');
    /// assert_eq!(PrimaryMessage::decode(Bytes::from(bytes)), Ok(k));
    /// ```
    pub fn decode(payload: Bytes) -> Result<PrimaryMessage, MessageError> {
        let len = payload.len();
        let Some(&type_byte) = payload.first() else {
            return Err(MessageError::Empty {
                direction: Direction::PrimaryToStandby,
            });
        };
        match type_byte {
            XLOG_DATA => {
                const NAME: &str = "XLogData";
                if len < XLOG_DATA_HEADER_LEN {
                    return Err(MessageError::Truncated {
                        message: NAME,
                        len,
                        min: XLOG_DATA_HEADER_LEN,
                    });
                }
                let mut r = Reader { buf: &payload[1..] };
                let min = XLOG_DATA_HEADER_LEN;
                let data_start = Lsn(field(r.u64(), NAME, len, min)?);
                let wal_end = Lsn(field(r.u64(), NAME, len, min)?);
                let send_time = PgTimestamp(field(r.i64(), NAME, len, min)?);
                let data = payload.slice(XLOG_DATA_HEADER_LEN..);
                if data_start.checked_add(data.len() as u64).is_none() {
                    return Err(MessageError::WalRangeOverflow {
                        data_start,
                        len: data.len(),
                    });
                }
                Ok(PrimaryMessage::XLogData(XLogData {
                    data_start,
                    wal_end,
                    send_time,
                    data,
                }))
            }
            PRIMARY_KEEPALIVE => {
                const NAME: &str = "primary keepalive";
                exact(
                    Direction::PrimaryToStandby,
                    NAME,
                    &payload,
                    PRIMARY_KEEPALIVE_LEN,
                )?;
                let mut r = Reader { buf: &payload[1..] };
                let min = PRIMARY_KEEPALIVE_LEN;
                Ok(PrimaryMessage::Keepalive(PrimaryKeepalive {
                    wal_end: Lsn(field(r.u64(), NAME, len, min)?),
                    send_time: PgTimestamp(field(r.i64(), NAME, len, min)?),
                    reply_requested: field(r.u8(), NAME, len, min)? != 0,
                }))
            }
            other => Err(MessageError::UnexpectedType {
                direction: Direction::PrimaryToStandby,
                type_byte: other,
            }),
        }
    }

    /// Decodes from a borrowed buffer (copies it once).
    pub fn decode_slice(payload: &[u8]) -> Result<PrimaryMessage, MessageError> {
        PrimaryMessage::decode(Bytes::copy_from_slice(payload))
    }

    /// Appends the payload to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            PrimaryMessage::XLogData(x) => {
                out.reserve(XLOG_DATA_HEADER_LEN + x.data.len());
                out.extend_from_slice(&encode_xlog_data_header(
                    x.data_start,
                    x.wal_end,
                    x.send_time,
                ));
                out.extend_from_slice(&x.data);
            }
            PrimaryMessage::Keepalive(k) => {
                out.reserve(PRIMARY_KEEPALIVE_LEN);
                out.put_u8(PRIMARY_KEEPALIVE);
                out.put_u64(k.wal_end.0);
                out.put_i64(k.send_time.0);
                out.put_u8(u8::from(k.reply_requested));
            }
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }
}

impl StandbyMessage {
    /// Decodes one CopyData payload sent by a standby.
    pub fn decode(payload: &[u8]) -> Result<StandbyMessage, MessageError> {
        let len = payload.len();
        let Some(&type_byte) = payload.first() else {
            return Err(MessageError::Empty {
                direction: Direction::StandbyToPrimary,
            });
        };
        let mut r = Reader { buf: &payload[1..] };
        match type_byte {
            STANDBY_STATUS_UPDATE => {
                const NAME: &str = "standby status update";
                const MIN: usize = STANDBY_STATUS_UPDATE_LEN;
                exact(Direction::StandbyToPrimary, NAME, payload, MIN)?;
                Ok(StandbyMessage::StatusUpdate(StandbyStatusUpdate {
                    write_lsn: Lsn(field(r.u64(), NAME, len, MIN)?),
                    flush_lsn: Lsn(field(r.u64(), NAME, len, MIN)?),
                    apply_lsn: Lsn(field(r.u64(), NAME, len, MIN)?),
                    send_time: PgTimestamp(field(r.i64(), NAME, len, MIN)?),
                    reply_requested: field(r.u8(), NAME, len, MIN)? != 0,
                }))
            }
            HOT_STANDBY_FEEDBACK => {
                const NAME: &str = "hot standby feedback";
                const MIN: usize = HOT_STANDBY_FEEDBACK_LEN;
                exact(Direction::StandbyToPrimary, NAME, payload, MIN)?;
                Ok(StandbyMessage::HotStandbyFeedback(HotStandbyFeedback {
                    send_time: PgTimestamp(field(r.i64(), NAME, len, MIN)?),
                    xmin: field(r.u32(), NAME, len, MIN)?,
                    xmin_epoch: field(r.u32(), NAME, len, MIN)?,
                    catalog_xmin: field(r.u32(), NAME, len, MIN)?,
                    catalog_xmin_epoch: field(r.u32(), NAME, len, MIN)?,
                }))
            }
            other => Err(MessageError::UnexpectedType {
                direction: Direction::StandbyToPrimary,
                type_byte: other,
            }),
        }
    }

    /// Appends the payload to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            StandbyMessage::StatusUpdate(s) => {
                out.reserve(STANDBY_STATUS_UPDATE_LEN);
                out.put_u8(STANDBY_STATUS_UPDATE);
                out.put_u64(s.write_lsn.0);
                out.put_u64(s.flush_lsn.0);
                out.put_u64(s.apply_lsn.0);
                out.put_i64(s.send_time.0);
                out.put_u8(u8::from(s.reply_requested));
            }
            StandbyMessage::HotStandbyFeedback(h) => {
                out.reserve(HOT_STANDBY_FEEDBACK_LEN);
                out.put_u8(HOT_STANDBY_FEEDBACK);
                out.put_i64(h.send_time.0);
                out.put_u32(h.xmin);
                out.put_u32(h.xmin_epoch);
                out.put_u32(h.catalog_xmin);
                out.put_u32(h.catalog_xmin_epoch);
            }
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    /// Byte layouts written out by hand from the protocol documentation, so an encoder bug
    /// cannot hide behind a matching decoder bug.
    #[test]
    fn layouts_match_the_protocol_documentation() {
        struct Case {
            name: &'static str,
            bytes: &'static str,
            primary: Option<PrimaryMessage>,
            standby: Option<StandbyMessage>,
        }
        let cases = [
            Case {
                name: "XLogData with three WAL bytes",
                bytes: "77 0000000100000028 0000000100000100 0000000000000102 aabbcc",
                primary: Some(PrimaryMessage::XLogData(XLogData {
                    data_start: Lsn(0x1_0000_0028),
                    wal_end: Lsn(0x1_0000_0100),
                    send_time: PgTimestamp(0x102),
                    data: Bytes::from_static(&[0xaa, 0xbb, 0xcc]),
                })),
                standby: None,
            },
            Case {
                name: "XLogData without WAL bytes",
                bytes: "77 0000000000000001 0000000000000002 ffffffffffffffff",
                primary: Some(PrimaryMessage::XLogData(XLogData {
                    data_start: Lsn(1),
                    wal_end: Lsn(2),
                    send_time: PgTimestamp(-1),
                    data: Bytes::new(),
                })),
                standby: None,
            },
            Case {
                name: "keepalive asking for a reply",
                bytes: "6b 0000000002000000 0000000000000007 01",
                primary: Some(PrimaryMessage::Keepalive(PrimaryKeepalive {
                    wal_end: Lsn(0x200_0000),
                    send_time: PgTimestamp(7),
                    reply_requested: true,
                })),
                standby: None,
            },
            Case {
                name: "standby status update",
                bytes: "72 0000000000000030 0000000000000020 0000000000000010 0000000000000005 00",
                primary: None,
                standby: Some(StandbyMessage::StatusUpdate(StandbyStatusUpdate {
                    write_lsn: Lsn(0x30),
                    flush_lsn: Lsn(0x20),
                    apply_lsn: Lsn(0x10),
                    send_time: PgTimestamp(5),
                    reply_requested: false,
                })),
            },
            Case {
                name: "hot standby feedback",
                bytes: "68 0000000000000009 000003e8 00000001 000003e7 00000002",
                primary: None,
                standby: Some(StandbyMessage::HotStandbyFeedback(HotStandbyFeedback {
                    send_time: PgTimestamp(9),
                    xmin: 1000,
                    xmin_epoch: 1,
                    catalog_xmin: 999,
                    catalog_xmin_epoch: 2,
                })),
            },
        ];
        for c in cases {
            let bytes = hex(c.bytes);
            if let Some(m) = c.primary {
                assert_eq!(m.encode(), bytes, "{}", c.name);
                assert_eq!(PrimaryMessage::decode_slice(&bytes), Ok(m), "{}", c.name);
                assert!(StandbyMessage::decode(&bytes).is_err(), "{}", c.name);
            }
            if let Some(m) = c.standby {
                assert_eq!(m.encode(), bytes, "{}", c.name);
                assert_eq!(StandbyMessage::decode(&bytes), Ok(m), "{}", c.name);
                assert!(PrimaryMessage::decode_slice(&bytes).is_err(), "{}", c.name);
            }
        }
    }

    #[test]
    fn malformed_payloads_are_typed_errors() {
        use MessageError::*;
        let cases: &[(&str, &[u8], MessageError)] = &[
            (
                "empty",
                &[],
                Empty {
                    direction: Direction::PrimaryToStandby,
                },
            ),
            (
                "unknown type",
                b"z",
                UnexpectedType {
                    direction: Direction::PrimaryToStandby,
                    type_byte: b'z',
                },
            ),
            (
                "XLogData header cut short",
                &[b'w', 0, 0, 0],
                Truncated {
                    message: "XLogData",
                    len: 4,
                    min: 25,
                },
            ),
            (
                "keepalive one byte long",
                &[b'k'; 19],
                WrongLength {
                    direction: Direction::PrimaryToStandby,
                    message: "primary keepalive",
                    len: 19,
                    expected: 18,
                },
            ),
        ];
        for (name, bytes, want) in cases {
            assert_eq!(
                PrimaryMessage::decode_slice(bytes).as_ref(),
                Err(want),
                "{name}"
            );
        }
        let mut overflow =
            encode_xlog_data_header(Lsn(u64::MAX - 1), Lsn(0), PgTimestamp(0)).to_vec();
        overflow.extend_from_slice(&[1, 2, 3]);
        assert_eq!(
            PrimaryMessage::decode_slice(&overflow),
            Err(WalRangeOverflow {
                data_start: Lsn(u64::MAX - 1),
                len: 3
            })
        );
        assert_eq!(
            StandbyMessage::decode(b"r\0"),
            Err(WrongLength {
                direction: Direction::StandbyToPrimary,
                message: "standby status update",
                len: 2,
                expected: 34
            })
        );
        assert_eq!(
            StandbyMessage::decode(&[b'h'; 26]),
            Err(WrongLength {
                direction: Direction::StandbyToPrimary,
                message: "hot standby feedback",
                len: 26,
                expected: 25
            })
        );
    }

    #[test]
    fn errors_read_like_postgres() {
        let e = StandbyMessage::decode(b"q").expect_err("unknown");
        let pg = e.to_pg_error();
        assert_eq!(pg.code, sqlstate::PROTOCOL_VIOLATION);
        assert_eq!(pg.message, "unexpected message type \"q\"");
        let e = StandbyMessage::decode(b"r").expect_err("short");
        assert_eq!(e.to_pg_error().message, "insufficient data left in message");
        let e = PrimaryMessage::decode_slice(b"w").expect_err("short");
        assert_eq!(
            e.to_pg_error().message,
            "invalid WAL message received from primary"
        );
        let e = PrimaryMessage::decode_slice(&[0x01]).expect_err("unknown");
        assert_eq!(
            e.to_pg_error().message,
            "invalid replication message type 1"
        );
        assert_eq!(
            StandbyMessage::decode(&[0x07]).expect_err("x").to_string(),
            "unexpected message type \"\\x07\" (StandbyToPrimary)"
        );
    }

    #[test]
    fn nonzero_reply_requested_is_true() {
        let mut b = PrimaryMessage::Keepalive(PrimaryKeepalive {
            wal_end: Lsn(1),
            send_time: PgTimestamp(2),
            reply_requested: false,
        })
        .encode();
        b[17] = 7;
        match PrimaryMessage::decode_slice(&b) {
            Ok(PrimaryMessage::Keepalive(k)) => assert!(k.reply_requested),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn xlog_data_shares_the_payload_and_reports_its_end() {
        let mut v = encode_xlog_data_header(Lsn(0x100), Lsn(0x102), PgTimestamp(0)).to_vec();
        v.extend_from_slice(&[9; 10]);
        let payload = Bytes::from(v);
        let Ok(PrimaryMessage::XLogData(x)) = PrimaryMessage::decode(payload.clone()) else {
            panic!("decode");
        };
        assert_eq!(x.end_lsn(), Lsn(0x10A));
        // lockstep may ship beyond its own flush LSN.
        assert!(x.end_lsn() > x.primary_flush_lsn());
        assert_eq!(x.data.as_ptr(), payload[XLOG_DATA_HEADER_LEN..].as_ptr());
    }

    #[test]
    fn timestamps_use_the_postgres_epoch() {
        let y2000 = UNIX_EPOCH + Duration::from_secs(POSTGRES_EPOCH_UNIX_SECS);
        assert_eq!(PgTimestamp::from_system_time(y2000), PgTimestamp(0));
        assert_eq!(
            PgTimestamp::from_system_time(y2000 + Duration::from_micros(1_500_000)),
            PgTimestamp(1_500_000)
        );
        assert_eq!(
            PgTimestamp::from_system_time(UNIX_EPOCH),
            PgTimestamp(-946_684_800_000_000)
        );
        for t in [0i64, 1, -1, 1_000_000_007, -5_000_000] {
            assert_eq!(
                PgTimestamp::from_system_time(PgTimestamp(t).to_system_time()),
                PgTimestamp(t)
            );
        }
    }
}

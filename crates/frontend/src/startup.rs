//! Connection start-up, before authentication: SSL/GSS negotiation, CancelRequest, and the
//! StartupMessage with protocol-version negotiation and its parameters.
//!
//! Runs first on every new connection, under `authentication_timeout`. PostgreSQL's
//! `ProcessStartupPacket`, step by step:
//!
//! - SSLRequest and GSSENCRequest are answered `N` (lockstep has no TLS or GSS encryption yet)
//!   and the client goes on in plaintext; each may come once.
//! - CancelRequest is handed to the engine (`Engine::cancel_request`) and the connection is
//!   closed without a reply, whatever the outcome, so a client learns nothing about other
//!   sessions. A key of any length but 4 bytes (protocol 3.2 allows up to 256) matches no
//!   session of ours and is ignored.
//! - StartupMessage: major version 3 only. Minor versions 0 and 2 are served as asked; a newer
//!   minor (or `_pq_.` protocol options) gets NegotiateProtocolVersion offering 3.2, as
//!   PostgreSQL 18 does. Nothing we send differs between 3.0 and 3.2: our cancel key is 4 bytes.
//! - Parameters: `user` (required), `database` (default: the user), `application_name`,
//!   `options` (see `options`), `replication`, `_pq_.*` (protocol options, none known); every
//!   other parameter is a setting, applied like `SET` after the `options` ones, in packet order.
//!   `user` and `database` are truncated to 63 bytes, as PostgreSQL truncates to NAMEDATALEN.
//!
//! Failure: a bad length or unknown request code closes the connection without a reply (logged
//! at debug), as PostgreSQL does before it has a protocol to answer in; a bad layout or value
//! is a FATAL error with PostgreSQL's SQLSTATE and wording.

use auth::ReplicationKind;
use base::PgError;
use base::error::sqlstate;
use bytes::Bytes;

use crate::options::{parse_bool, parse_options};
use crate::transport::{ConnEnd, Transport};
use crate::wire::{self, CANCEL_REQUEST_CODE, GSSENC_REQUEST_CODE, Reader, SSL_REQUEST_CODE};

/// The newest protocol minor version served (3.2, PostgreSQL 18's).
const PROTOCOL_MINOR_LATEST: u16 = 2;
/// PostgreSQL's NAMEDATALEN - 1.
const NAME_MAX_LEN: usize = 63;

/// What the client asked for in its StartupMessage.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct StartupParams {
    /// Negotiated (major, minor).
    pub protocol: (u16, u16),
    pub user: String,
    pub database: String,
    pub application_name: String,
    pub replication: ReplicationKind,
    /// `options` settings, then the other parameters, in order.
    pub settings: Vec<(String, String)>,
    /// Every parameter as sent, in packet order.
    pub raw: Vec<(String, String)>,
}

/// The first meaningful packet of a connection.
#[derive(Debug, PartialEq)]
pub(crate) enum FirstPacket {
    Startup(StartupParams),
    Cancel {
        pid: i32,
        secret: Option<i32>,
    },
    /// The client closed the connection before sending anything (port scanners, health
    /// checks): not worth a log line.
    Nothing,
}

/// Reads packets until a StartupMessage or CancelRequest; answers SSL/GSS requests on the way.
/// A NegotiateProtocolVersion, if needed, is left in `io.out` for the next flush.
pub(crate) async fn read_first_packet(io: &mut Transport) -> Result<FirstPacket, ConnEnd> {
    let mut ssl_answered = false;
    let mut gss_answered = false;
    loop {
        let Some(packet) = io.read_startup_packet().await? else {
            return Ok(FirstPacket::Nothing);
        };
        let mut r = Reader::new(&packet);
        let code = r
            .u32()
            .map_err(|_| ConnEnd::Silent("invalid startup packet"))?;
        match code {
            SSL_REQUEST_CODE if !ssl_answered => {
                ssl_answered = true;
                refuse_encryption(io).await?;
            }
            GSSENC_REQUEST_CODE if !gss_answered => {
                gss_answered = true;
                refuse_encryption(io).await?;
            }
            SSL_REQUEST_CODE | GSSENC_REQUEST_CODE => {
                return Err(ConnEnd::Fatal(PgError::fatal(
                    sqlstate::PROTOCOL_VIOLATION,
                    "encryption was already refused on this connection",
                )));
            }
            CANCEL_REQUEST_CODE => {
                let pid = r
                    .i32()
                    .map_err(|_| ConnEnd::Silent("invalid cancel request"))?;
                let key = r.rest();
                let secret = <[u8; 4]>::try_from(key).ok().map(i32::from_be_bytes);
                return Ok(FirstPacket::Cancel { pid, secret });
            }
            _ => {
                let params = parse_startup(&packet, &mut io.out)?;
                return Ok(FirstPacket::Startup(params));
            }
        }
    }
}

/// `N`: no SSL / no GSS encryption. Sent at once, since the client waits for this one byte.
async fn refuse_encryption(io: &mut Transport) -> Result<(), ConnEnd> {
    // An encryption request must be the only thing the client sent: anything after it would
    // have been meant for an encrypted channel (PostgreSQL's CVE-2021-23214 check).
    if !io.rbuf.is_empty() {
        return Err(ConnEnd::Fatal(PgError::fatal(
            sqlstate::PROTOCOL_VIOLATION,
            "received unencrypted data after SSL request",
        )));
    }
    io.out.push(b'N');
    io.flush().await?;
    Ok(())
}

fn fatal(code: base::SqlState, message: impl Into<String>) -> ConnEnd {
    ConnEnd::Fatal(PgError::fatal(code, message))
}

/// Parses a StartupMessage body (version word included).
pub(crate) fn parse_startup(packet: &Bytes, out: &mut Vec<u8>) -> Result<StartupParams, ConnEnd> {
    let mut r = Reader::new(packet);
    let (major, minor) = match (r.u16(), r.u16()) {
        (Ok(major), Ok(minor)) => (major, minor),
        _ => return Err(ConnEnd::Silent("invalid startup packet")),
    };
    if major != 3 {
        return Err(fatal(
            sqlstate::FEATURE_NOT_SUPPORTED,
            format!(
                "unsupported frontend protocol {major}.{minor}: server supports 3.0 to \
                 3.{PROTOCOL_MINOR_LATEST}"
            ),
        ));
    }

    let layout = |_: wire::DecodeError| {
        fatal(
            sqlstate::PROTOCOL_VIOLATION,
            "invalid startup packet layout: expected terminator as last byte",
        )
    };
    let mut raw = Vec::new();
    loop {
        let name = r.cstr_bytes().map_err(layout)?;
        if name.is_empty() {
            break;
        }
        let value = r.cstr_bytes().map_err(layout)?;
        let (Ok(name), Ok(value)) = (wire::utf8(name), wire::utf8(value)) else {
            return Err(fatal(
                sqlstate::PROTOCOL_VIOLATION,
                "invalid startup packet: parameter is not valid UTF-8",
            ));
        };
        raw.push((name.to_owned(), value.to_owned()));
    }
    if !r.is_empty() {
        return Err(layout(wire::DecodeError::Malformed("trailing bytes")));
    }

    let mut params = StartupParams {
        protocol: (3, minor.min(PROTOCOL_MINOR_LATEST)),
        ..StartupParams::default()
    };
    let mut user = None;
    let mut option_settings = Vec::new();
    let mut other_settings = Vec::new();
    let mut unrecognised = Vec::new();
    for (name, value) in &raw {
        match name.as_str() {
            "user" => user = Some(truncate_name(value)),
            "database" => params.database = truncate_name(value),
            "application_name" => params.application_name = value.clone(),
            "options" => option_settings = parse_options(value).map_err(ConnEnd::Fatal)?,
            "replication" => params.replication = parse_replication(value)?,
            n if n.starts_with("_pq_.") => unrecognised.push(name.clone()),
            _ => other_settings.push((name.clone(), value.clone())),
        }
    }
    if minor > PROTOCOL_MINOR_LATEST || !unrecognised.is_empty() {
        wire::negotiate_protocol_version(out, params.protocol.1, &unrecognised);
    }
    params.user = match user {
        Some(u) if !u.is_empty() => u,
        _ => {
            return Err(fatal(
                sqlstate::INVALID_AUTHORIZATION_SPECIFICATION,
                "no PostgreSQL user name specified in startup packet",
            ));
        }
    };
    if params.database.is_empty() {
        params.database = params.user.clone();
    }
    params.settings = option_settings;
    params.settings.extend(other_settings);
    params.raw = raw;
    Ok(params)
}

fn parse_replication(value: &str) -> Result<ReplicationKind, ConnEnd> {
    if value == "database" {
        return Ok(ReplicationKind::Logical);
    }
    match parse_bool(value) {
        Some(true) => Ok(ReplicationKind::Physical),
        Some(false) => Ok(ReplicationKind::None),
        None => Err(ConnEnd::Fatal(
            PgError::fatal(
                sqlstate::INVALID_PARAMETER_VALUE,
                format!("invalid value for parameter \"replication\": \"{value}\""),
            )
            .with_hint("Valid values are: \"false\", 0, \"true\", 1, \"database\"."),
        )),
    }
}

/// Truncates to NAMEDATALEN - 1 bytes on a character boundary.
fn truncate_name(s: &str) -> String {
    if s.len() <= NAME_MAX_LEN {
        return s.to_owned();
    }
    let mut end = NAME_MAX_LEN;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn packet(minor: u16, params: &[(&str, &str)]) -> Bytes {
        let mut b = vec![0, 3];
        b.extend_from_slice(&minor.to_be_bytes());
        for (k, v) in params {
            b.extend_from_slice(k.as_bytes());
            b.push(0);
            b.extend_from_slice(v.as_bytes());
            b.push(0);
        }
        b.push(0);
        Bytes::from(b)
    }

    fn parse(minor: u16, params: &[(&str, &str)]) -> Result<(StartupParams, Vec<u8>), PgError> {
        let mut out = Vec::new();
        match parse_startup(&packet(minor, params), &mut out) {
            Ok(p) => Ok((p, out)),
            Err(ConnEnd::Fatal(e)) => Err(e),
            Err(other) => panic!("{other:?}"),
        }
    }

    #[test]
    fn user_database_and_settings() {
        let (p, out) = parse(
            0,
            &[
                ("user", "alice"),
                ("application_name", "psql"),
                ("DateStyle", "ISO"),
                ("options", "-c synchronous_commit=local --work-mem=1MB"),
                ("client_encoding", "UTF8"),
            ],
        )
        .unwrap();
        assert!(out.is_empty());
        assert_eq!(p.protocol, (3, 0));
        assert_eq!(p.user, "alice");
        assert_eq!(p.database, "alice", "database defaults to the user");
        assert_eq!(p.application_name, "psql");
        assert_eq!(p.replication, ReplicationKind::None);
        let names: Vec<&str> = p.settings.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "synchronous_commit",
                "work_mem",
                "DateStyle",
                "client_encoding"
            ]
        );
        assert_eq!(p.raw.len(), 5);
    }

    #[test]
    fn missing_user_is_28000() {
        let e = parse(0, &[("database", "db")]).unwrap_err();
        assert_eq!(e.code, sqlstate::INVALID_AUTHORIZATION_SPECIFICATION);
        assert_eq!(
            e.message,
            "no PostgreSQL user name specified in startup packet"
        );
        assert!(parse(0, &[("user", "")]).is_err());
    }

    #[test]
    fn replication_values() {
        let kind =
            |v: &str| parse(0, &[("user", "u"), ("replication", v)]).map(|p| p.0.replication);
        assert_eq!(kind("true").unwrap(), ReplicationKind::Physical);
        assert_eq!(kind("on").unwrap(), ReplicationKind::Physical);
        assert_eq!(kind("1").unwrap(), ReplicationKind::Physical);
        assert_eq!(kind("yes").unwrap(), ReplicationKind::Physical);
        assert_eq!(kind("database").unwrap(), ReplicationKind::Logical);
        assert_eq!(kind("false").unwrap(), ReplicationKind::None);
        let e = kind("maybe").unwrap_err();
        assert_eq!(e.code, sqlstate::INVALID_PARAMETER_VALUE);
        assert!(e.hint.is_some());
    }

    #[test]
    fn protocol_negotiation() {
        let (p, out) = parse(2, &[("user", "u")]).unwrap();
        assert_eq!(p.protocol, (3, 2));
        assert!(out.is_empty());

        let (p, out) = parse(9999, &[("user", "u"), ("_pq_.magic", "1")]).unwrap();
        assert_eq!(p.protocol, (3, 2));
        assert_eq!(out[0], b'v');
        assert_eq!(&out[5..9], &((3i32 << 16) | 2).to_be_bytes());
        assert_eq!(&out[9..13], &1i32.to_be_bytes());
        assert_eq!(&out[13..], b"_pq_.magic\0");
        assert!(p.settings.is_empty(), "protocol options are not settings");

        let (_, out) = parse(0, &[("user", "u"), ("_pq_.x", "1")]).unwrap();
        assert_eq!(&out[5..9], &(3i32 << 16).to_be_bytes());

        let mut bad = vec![0, 2, 0, 0];
        bad.extend_from_slice(b"user\0u\0\0");
        let Err(ConnEnd::Fatal(e)) = parse_startup(&Bytes::from(bad), &mut Vec::new()) else {
            panic!()
        };
        assert_eq!(e.code, sqlstate::FEATURE_NOT_SUPPORTED);
        assert_eq!(
            e.message,
            "unsupported frontend protocol 2.0: server supports 3.0 to 3.2"
        );
    }

    #[test]
    fn layout_errors() {
        for body in [
            &b"\0\x03\0\0user\0u\0"[..],
            &b"\0\x03\0\0user\0u\0\0extra"[..],
            &b"\0\x03\0\0user"[..],
            &b"\0\x03\0\0user\0u"[..],
        ] {
            let r = parse_startup(&Bytes::copy_from_slice(body), &mut Vec::new());
            let Err(ConnEnd::Fatal(e)) = r else {
                panic!("{body:?}: {r:?}")
            };
            assert_eq!(e.code, sqlstate::PROTOCOL_VIOLATION, "{body:?}");
        }
        assert!(matches!(
            parse_startup(&Bytes::from_static(b"\0\x03"), &mut Vec::new()),
            Err(ConnEnd::Silent(_))
        ));
    }

    #[test]
    fn names_are_truncated_like_postgres() {
        let long = "é".repeat(40); // 80 bytes
        let (p, _) = parse(0, &[("user", &long), ("database", &"d".repeat(100))]).unwrap();
        assert_eq!(p.user.len(), 62, "cut on a character boundary");
        assert_eq!(p.database.len(), 63);
    }

    #[test]
    fn bad_options_are_fatal() {
        let e = parse(0, &[("user", "u"), ("options", "-X")]).unwrap_err();
        assert_eq!(e.code, sqlstate::SYNTAX_ERROR);
    }
}

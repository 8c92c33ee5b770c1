//! Client authentication: pg_hba.conf decides the method, then the method runs over the
//! connection (PostgreSQL's `ClientAuthentication`).
//!
//! Runs once per connection, after the StartupMessage and within `authentication_timeout`.
//!
//! - `trust`: no exchange.
//! - `reject`, or no matching line: FATAL 28000 with PostgreSQL's wording.
//! - `scram-sha-256` and `md5`: SCRAM-SHA-256 over SASL (AuthenticationSASL,
//!   SASLInitialResponse, AuthenticationSASLContinue, SASLResponse, AuthenticationSASLFinal),
//!   driven by `auth::ScramExchange`. Only the plain mechanism is offered: no TLS, so no
//!   channel binding.
//! - `password`: AuthenticationCleartextPassword, then the password is checked against the
//!   stored verifier.
//!
//! Role checks follow PostgreSQL. Under a password method a missing role, or one without a
//! password, runs a mock exchange and fails like a wrong password (28P01 `password
//! authentication failed for user "x"`), so a client cannot probe for role names. Under
//! `trust` a missing role is 28000 `role "x" does not exist`. After authentication a role
//! without LOGIN gets 28000 `role "x" is not permitted to log in`.
//!
//! Deliberately not done here: the REPLICATION privilege check (the caller does it, only for
//! replication connections), AuthenticationOk (sent by the caller once the session exists),
//! database existence (the SQL layer's `open_session`).
//!
//! Failure: any refusal is `ConnEnd::Fatal` with a SQLSTATE; a client that hangs up in the
//! middle (psql does, to prompt for a password and reconnect) ends quietly with
//! `ConnEnd::Closed`.

use std::net::SocketAddr;

use auth::{
    AuthMethod, HbaFile, HbaRequest, HbaVerdict, Role, RoleStore, SCRAM_SHA_256, ScramError,
    ScramExchange, Transport, verify_plain_password,
};
use base::PgError;
use base::error::sqlstate;

use crate::startup::StartupParams;
use crate::transport::{ConnEnd, Transport as Io};
use crate::wire::{self, Reader};

/// Where a connection comes from.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Peer {
    pub transport: Transport,
    /// `None` for Unix-domain sockets.
    pub client_addr: Option<SocketAddr>,
    /// The local address the client connected to (for `samehost`).
    pub server_addr: Option<SocketAddr>,
}

/// Authenticates the client named in `params`; returns its role.
pub(crate) async fn authenticate(
    io: &mut Io,
    params: &StartupParams,
    peer: &Peer,
    hba: &HbaFile,
    roles: &RoleStore,
) -> Result<Role, ConnEnd> {
    let req = HbaRequest {
        transport: peer.transport,
        database: &params.database,
        user: &params.user,
        client_addr: peer.client_addr.map(|a| a.ip()),
        server_addr: peer.server_addr.map(|a| a.ip()),
        replication: params.replication,
    };
    let line = match hba.check(&req) {
        HbaVerdict::NoEntry => return Err(auth_refused(req.no_entry_message())),
        HbaVerdict::Matched(line) => line,
    };
    let role = roles.get(&params.user);
    let user = params.user.as_str();
    match line.method {
        AuthMethod::Reject => return Err(auth_refused(req.rejected_message())),
        AuthMethod::Trust => {}
        AuthMethod::Password => {
            if !password_exchange(io, role.as_ref()).await? {
                return Err(password_failed(user));
            }
        }
        AuthMethod::ScramSha256 | AuthMethod::Md5 => {
            scram_exchange(io, role.as_ref(), user).await?;
        }
    }
    tracing::debug!(
        user,
        database = %params.database,
        method = line.method.as_str(),
        hba_line = line.line_number,
        "authenticated"
    );
    let Some(role) = role else {
        return Err(ConnEnd::Fatal(PgError::fatal(
            sqlstate::INVALID_AUTHORIZATION_SPECIFICATION,
            format!("role \"{user}\" does not exist"),
        )));
    };
    if !role.login {
        return Err(ConnEnd::Fatal(PgError::fatal(
            sqlstate::INVALID_AUTHORIZATION_SPECIFICATION,
            format!("role \"{user}\" is not permitted to log in"),
        )));
    }
    Ok(role)
}

fn auth_refused(message: String) -> ConnEnd {
    ConnEnd::Fatal(PgError::fatal(
        sqlstate::INVALID_AUTHORIZATION_SPECIFICATION,
        message,
    ))
}

fn password_failed(user: &str) -> ConnEnd {
    ConnEnd::Fatal(PgError::fatal(
        sqlstate::INVALID_PASSWORD,
        format!("password authentication failed for user \"{user}\""),
    ))
}

/// Sends what is in `io.out` and waits for the client's `p` message. EOF means the client gave
/// up (e.g. to prompt for a password): `ConnEnd::Closed`.
async fn ask(io: &mut Io) -> Result<bytes::Bytes, ConnEnd> {
    io.flush().await?;
    io.read_auth_message().await?.ok_or(ConnEnd::Closed)
}

/// The `password` method; returns whether the password is right.
async fn password_exchange(io: &mut Io, role: Option<&Role>) -> Result<bool, ConnEnd> {
    wire::authentication(&mut io.out, wire::AUTH_CLEARTEXT_PASSWORD, &[]);
    let body = ask(io).await?;
    let mut r = Reader::new(&body);
    let password = r
        .cstr_bytes()
        .and_then(|p| r.finish().map(|()| p))
        .map_err(|e| ConnEnd::Fatal(e.to_pg_error()))?;
    // PostgreSQL refuses an empty password outright ("empty password returned by client").
    let Ok(password) = std::str::from_utf8(password) else {
        return Ok(false);
    };
    if password.is_empty() {
        return Ok(false);
    }
    Ok(role
        .and_then(|r| r.password.as_ref())
        .is_some_and(|v| verify_plain_password(v, password)))
}

/// The SCRAM-SHA-256 exchange. On success AuthenticationSASLFinal is left in `io.out`.
async fn scram_exchange(io: &mut Io, role: Option<&Role>, user: &str) -> Result<(), ConnEnd> {
    let mut exchange = ScramExchange::new(role.and_then(|r| r.password.as_ref()), user);
    let scram_err = |e: ScramError| match e {
        ScramError::AuthenticationFailed => password_failed(user),
        other => ConnEnd::Fatal(PgError::fatal(other.sqlstate(), other.to_string())),
    };

    wire::authentication_sasl(&mut io.out, &[SCRAM_SHA_256]);
    let body = ask(io).await?;
    // SASLInitialResponse: mechanism, then Int32 length (-1: none) and the data.
    let mut r = Reader::new(&body);
    let malformed = |_| {
        ConnEnd::Fatal(PgError::fatal(
            sqlstate::PROTOCOL_VIOLATION,
            "malformed SASLInitialResponse message",
        ))
    };
    let mechanism = r.cstr_bytes().map_err(malformed)?;
    if mechanism != SCRAM_SHA_256.as_bytes() {
        return Err(ConnEnd::Fatal(PgError::fatal(
            sqlstate::PROTOCOL_VIOLATION,
            "client selected an invalid SASL authentication mechanism",
        )));
    }
    let len = r.i32().map_err(malformed)?;
    let data = match usize::try_from(len) {
        Ok(n) => r.bytes(n).map_err(malformed)?,
        Err(_) => &[][..],
    };
    r.finish().map_err(malformed)?;
    let server_first = exchange.handle_client_first(data).map_err(scram_err)?;
    wire::authentication(&mut io.out, wire::AUTH_SASL_CONTINUE, &server_first);

    let body = ask(io).await?;
    let server_final = exchange.handle_client_final(&body).map_err(scram_err)?;
    wire::authentication(&mut io.out, wire::AUTH_SASL_FINAL, &server_final);
    Ok(())
}

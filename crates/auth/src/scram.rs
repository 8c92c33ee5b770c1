//! SCRAM-SHA-256 (RFC 5802, RFC 7677): password verifiers and the server side of the exchange.
//!
//! A verifier is what `pg_authid.rolpassword` stores, in PostgreSQL's exact text format:
//! `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` (base64, standard alphabet with
//! padding). A verifier made here can be copied into a PostgreSQL cluster and back: the test
//! `postgres_made_verifier_checks_out` checks one that PostgreSQL 15 produced.
//!
//! `ScramExchange` is the server's half of one authentication, as a pure state machine: the
//! frontend feeds it the client's SASLInitialResponse and SASLResponse payloads and sends back
//! what it returns (AuthenticationSASLContinue / AuthenticationSASLFinal). It does no IO, so the
//! whole exchange is tested without sockets against an independent client implementation
//! (postgres-protocol's, the one tokio-postgres uses).
//!
//! Deliberately not done: channel binding (`SCRAM-SHA-256-PLUS`, needs TLS, which lockstep does
//! not offer yet), authorization identities (`a=`; PostgreSQL rejects them too), and the user
//! name inside the SCRAM message (`n=`), which PostgreSQL also ignores: the user is the one from
//! the startup packet.
//!
//! Invariants: an exchange succeeds only if the client proved knowledge of the password behind
//! the role's StoredKey; a role without a verifier (or a missing role) runs a *mock* exchange
//! with a salt derived from the user name and a per-process secret, which always fails at the
//! last step, so a client cannot tell a missing role or password from a wrong password (as
//! PostgreSQL's `scram_mock_salt`). Keys are compared in constant time.
//!
//! Failure: every error is a `ScramError`; `sqlstate()` gives the code PostgreSQL reports
//! (08P01 for malformed messages, 28P01 for a wrong proof, 0A000 for unsupported features). The
//! frontend turns them into FATAL errors: a failed exchange ends the connection.

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use base::SqlState;
use base::error::sqlstate;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, KeyInit, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// The mechanism name sent in AuthenticationSASL and expected in SASLInitialResponse.
pub const SCRAM_SHA_256: &str = "SCRAM-SHA-256";

/// PostgreSQL's default `scram_iterations` (the value before PostgreSQL 16 made it a setting).
pub const SCRAM_ITERATIONS_DEFAULT: u32 = 4096;

/// PostgreSQL's `SCRAM_DEFAULT_SALT_LEN`.
const SALT_LEN: usize = 16;

/// PostgreSQL's `SCRAM_RAW_NONCE_LEN`: 18 random bytes, 24 base64 characters.
const SERVER_NONCE_LEN: usize = 18;

/// SHA-256 output size: the length of StoredKey, ServerKey, proofs and signatures.
const KEY_LEN: usize = 32;

/// The verifier prefix in `pg_authid`.
const VERIFIER_PREFIX: &str = "SCRAM-SHA-256$";

type HmacSha256 = Hmac<Sha256>;

/// A stored SCRAM-SHA-256 password verifier.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramVerifier {
    pub iterations: u32,
    pub salt: Vec<u8>,
    pub stored_key: [u8; KEY_LEN],
    pub server_key: [u8; KEY_LEN],
}

impl fmt::Debug for ScramVerifier {
    // The keys are password-equivalent for a server that gets them stolen; keep them out of
    // logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramVerifier")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for ScramVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{VERIFIER_PREFIX}{}:{}${}:{}",
            self.iterations,
            B64.encode(&self.salt),
            B64.encode(self.stored_key),
            B64.encode(self.server_key)
        )
    }
}

/// Why a string is not a SCRAM-SHA-256 verifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid SCRAM-SHA-256 verifier: {0}")]
pub struct VerifierParseError(&'static str);

impl FromStr for ScramVerifier {
    type Err = VerifierParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let rest = s
            .strip_prefix(VERIFIER_PREFIX)
            .ok_or(VerifierParseError("missing \"SCRAM-SHA-256$\" prefix"))?;
        let (iter_salt, keys) = rest
            .split_once('$')
            .ok_or(VerifierParseError("missing '$' before the keys"))?;
        let (iterations, salt) = iter_salt
            .split_once(':')
            .ok_or(VerifierParseError("missing ':' after the iteration count"))?;
        let (stored_key, server_key) = keys
            .split_once(':')
            .ok_or(VerifierParseError("missing ':' between the keys"))?;
        let iterations: u32 = iterations
            .parse()
            .map_err(|_| VerifierParseError("iteration count is not a number"))?;
        if iterations == 0 {
            return Err(VerifierParseError("iteration count is zero"));
        }
        let salt = B64
            .decode(salt)
            .map_err(|_| VerifierParseError("salt is not valid base64"))?;
        if salt.is_empty() {
            return Err(VerifierParseError("salt is empty"));
        }
        Ok(ScramVerifier {
            iterations,
            salt,
            stored_key: decode_key(stored_key)
                .ok_or(VerifierParseError("StoredKey is not 32 bytes of base64"))?,
            server_key: decode_key(server_key)
                .ok_or(VerifierParseError("ServerKey is not 32 bytes of base64"))?,
        })
    }
}

fn decode_key(s: &str) -> Option<[u8; KEY_LEN]> {
    B64.decode(s).ok()?.try_into().ok()
}

/// Makes a verifier for `password` with a fresh random 16-byte salt, as PostgreSQL's
/// `pg_be_scram_build_secret` does. `iterations` is clamped to at least 1.
pub fn scram_verifier(password: &str, iterations: u32) -> ScramVerifier {
    let mut salt = vec![0u8; SALT_LEN];
    rand::rng().fill_bytes(&mut salt);
    scram_verifier_with_salt(password, &salt, iterations)
}

/// Makes a verifier with a given salt (deterministic; for tests and for checking a password).
pub fn scram_verifier_with_salt(password: &str, salt: &[u8], iterations: u32) -> ScramVerifier {
    let iterations = iterations.max(1);
    let salted = salted_password(password, salt, iterations);
    let client_key = hmac(&salted, b"Client Key");
    ScramVerifier {
        iterations,
        salt: salt.to_vec(),
        stored_key: sha256(&client_key),
        server_key: hmac(&salted, b"Server Key"),
    }
}

/// Checks a cleartext password (the `password` method) against a verifier, as PostgreSQL's
/// `scram_verify_plain_password`.
pub fn verify_plain_password(verifier: &ScramVerifier, password: &str) -> bool {
    let salted = salted_password(password, &verifier.salt, verifier.iterations);
    ct_eq(&hmac(&salted, b"Server Key"), &verifier.server_key)
}

/// SaltedPassword := Hi(Normalize(password), salt, i). Normalize is SASLprep; like
/// PostgreSQL's `pg_saslprep` (and libpq), a password SASLprep rejects is used as it is.
fn salted_password(password: &str, salt: &[u8], iterations: u32) -> [u8; KEY_LEN] {
    let prepared = stringprep::saslprep(password);
    let bytes = match &prepared {
        Ok(p) => p.as_bytes(),
        Err(_) => password.as_bytes(),
    };
    pbkdf2::pbkdf2_hmac_array::<Sha256, KEY_LEN>(bytes, salt, iterations)
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; KEY_LEN] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC-SHA-256 takes keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

fn sha256(data: &[u8]) -> [u8; KEY_LEN] {
    Sha256::digest(data).into()
}

/// Constant-time equality, so a timing side channel does not reveal how many leading bytes of
/// a key matched.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A per-process secret for mock salts: stable for the life of the process, so repeated
/// attempts for the same missing role see the same salt (as for a real role).
fn mock_secret() -> &'static [u8; 32] {
    static SECRET: OnceLock<[u8; 32]> = OnceLock::new();
    SECRET.get_or_init(|| {
        let mut s = [0u8; 32];
        rand::rng().fill_bytes(&mut s);
        s
    })
}

/// Why a SCRAM exchange failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScramError {
    #[error("malformed SCRAM message: {0}")]
    Malformed(&'static str),
    #[error(
        "the client selected SCRAM-SHA-256 without channel binding, but the SCRAM message \
         includes channel binding data"
    )]
    ChannelBindingUnexpected,
    #[error("client uses authorization identity, but it is not supported")]
    AuthorizationIdentity,
    #[error("SCRAM nonce mismatch")]
    NonceMismatch,
    #[error("SCRAM channel binding check failed")]
    ChannelBindingMismatch,
    /// The proof did not match (wrong password), or this was a mock exchange.
    #[error("password authentication failed")]
    AuthenticationFailed,
    #[error("SCRAM message received out of order")]
    OutOfOrder,
}

impl ScramError {
    /// The SQLSTATE PostgreSQL reports for this failure.
    pub fn sqlstate(&self) -> SqlState {
        match self {
            ScramError::AuthenticationFailed => sqlstate::INVALID_PASSWORD,
            ScramError::AuthorizationIdentity => sqlstate::FEATURE_NOT_SUPPORTED,
            _ => sqlstate::PROTOCOL_VIOLATION,
        }
    }
}

enum State {
    AwaitingClientFirst,
    AwaitingClientFinal {
        /// The gs2 header ("n,," or "y,,"), which `c=` in client-final must repeat.
        gs2_header: String,
        /// client-first-message-bare "," server-first-message: the first part of AuthMessage.
        auth_message_prefix: String,
        /// client nonce + server nonce.
        nonce: String,
    },
    Done,
}

/// The server side of one SCRAM-SHA-256 exchange.
pub struct ScramExchange {
    iterations: u32,
    salt: Vec<u8>,
    stored_key: [u8; KEY_LEN],
    server_key: [u8; KEY_LEN],
    /// True when there is no verifier to check against: the exchange runs to the end and fails.
    mock: bool,
    state: State,
}

impl ScramExchange {
    /// Starts an exchange against `verifier`; `None` (no such role, or no password) runs a mock
    /// exchange for `user` that always fails at the end.
    pub fn new(verifier: Option<&ScramVerifier>, user: &str) -> ScramExchange {
        match verifier {
            Some(v) => ScramExchange {
                iterations: v.iterations,
                salt: v.salt.clone(),
                stored_key: v.stored_key,
                server_key: v.server_key,
                mock: false,
                state: State::AwaitingClientFirst,
            },
            None => {
                let digest = hmac(mock_secret(), user.as_bytes());
                ScramExchange {
                    iterations: SCRAM_ITERATIONS_DEFAULT,
                    salt: digest[..SALT_LEN].to_vec(),
                    stored_key: [0; KEY_LEN],
                    server_key: [0; KEY_LEN],
                    mock: true,
                    state: State::AwaitingClientFirst,
                }
            }
        }
    }

    /// Handles client-first-message (the SASLInitialResponse data); returns
    /// server-first-message for AuthenticationSASLContinue.
    pub fn handle_client_first(&mut self, msg: &[u8]) -> Result<Vec<u8>, ScramError> {
        if !matches!(self.state, State::AwaitingClientFirst) {
            return Err(ScramError::OutOfOrder);
        }
        self.state = State::Done;
        let msg = std::str::from_utf8(msg).map_err(|_| ScramError::Malformed("not UTF-8"))?;

        // gs2-header = gs2-cbind-flag "," [ authzid ] ","
        let (cbind_flag, rest) = msg
            .split_once(',')
            .ok_or(ScramError::Malformed("missing gs2 header"))?;
        match cbind_flag {
            "n" | "y" => {}
            f if f.starts_with("p=") => return Err(ScramError::ChannelBindingUnexpected),
            _ => return Err(ScramError::Malformed("unexpected channel-binding flag")),
        }
        let (authzid, bare) = rest
            .split_once(',')
            .ok_or(ScramError::Malformed("missing gs2 header"))?;
        if !authzid.is_empty() {
            return Err(ScramError::AuthorizationIdentity);
        }

        // client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions]
        let mut attrs = bare.split(',');
        let user = attrs.next().unwrap_or_default();
        if user.starts_with("m=") {
            return Err(ScramError::Malformed("unsupported mandatory extension"));
        }
        if !user.starts_with("n=") {
            return Err(ScramError::Malformed("expected attribute \"n\""));
        }
        let client_nonce = attrs
            .next()
            .and_then(|a| a.strip_prefix("r="))
            .ok_or(ScramError::Malformed("expected attribute \"r\""))?;
        if client_nonce.is_empty() || !client_nonce.bytes().all(is_nonce_char) {
            return Err(ScramError::Malformed("invalid client nonce"));
        }

        let mut raw_nonce = [0u8; SERVER_NONCE_LEN];
        rand::rng().fill_bytes(&mut raw_nonce);
        let nonce = format!("{client_nonce}{}", B64.encode(raw_nonce));
        let server_first = format!(
            "r={nonce},s={},i={}",
            B64.encode(&self.salt),
            self.iterations
        );
        self.state = State::AwaitingClientFinal {
            gs2_header: format!("{cbind_flag},,"),
            auth_message_prefix: format!("{bare},{server_first}"),
            nonce,
        };
        Ok(server_first.into_bytes())
    }

    /// Handles client-final-message (the SASLResponse data); on success returns
    /// server-final-message for AuthenticationSASLFinal.
    pub fn handle_client_final(&mut self, msg: &[u8]) -> Result<Vec<u8>, ScramError> {
        let State::AwaitingClientFinal {
            gs2_header,
            auth_message_prefix,
            nonce,
        } = std::mem::replace(&mut self.state, State::Done)
        else {
            return Err(ScramError::OutOfOrder);
        };
        let msg = std::str::from_utf8(msg).map_err(|_| ScramError::Malformed("not UTF-8"))?;

        // client-final-message = channel-binding "," nonce ["," extensions] "," proof
        let (without_proof, proof) = msg
            .rsplit_once(",p=")
            .ok_or(ScramError::Malformed("expected attribute \"p\""))?;
        let mut attrs = without_proof.split(',');
        let cbind = attrs
            .next()
            .and_then(|a| a.strip_prefix("c="))
            .ok_or(ScramError::Malformed("expected attribute \"c\""))?;
        let cbind = B64
            .decode(cbind)
            .map_err(|_| ScramError::Malformed("invalid base64 in attribute \"c\""))?;
        if cbind != gs2_header.as_bytes() {
            return Err(ScramError::ChannelBindingMismatch);
        }
        let client_nonce = attrs
            .next()
            .and_then(|a| a.strip_prefix("r="))
            .ok_or(ScramError::Malformed("expected attribute \"r\""))?;
        if client_nonce != nonce {
            return Err(ScramError::NonceMismatch);
        }
        let proof: [u8; KEY_LEN] = B64
            .decode(proof)
            .ok()
            .and_then(|p| p.try_into().ok())
            .ok_or(ScramError::Malformed("invalid client proof"))?;

        let auth_message = format!("{auth_message_prefix},{without_proof}");
        let client_signature = hmac(&self.stored_key, auth_message.as_bytes());
        let mut client_key = [0u8; KEY_LEN];
        for (k, (p, s)) in client_key
            .iter_mut()
            .zip(proof.iter().zip(client_signature))
        {
            *k = p ^ s;
        }
        let proof_ok = ct_eq(&sha256(&client_key), &self.stored_key);
        if self.mock || !proof_ok {
            return Err(ScramError::AuthenticationFailed);
        }
        let server_signature = hmac(&self.server_key, auth_message.as_bytes());
        Ok(format!("v={}", B64.encode(server_signature)).into_bytes())
    }
}

/// RFC 5802 `printable`: %x21-2B / %x2D-7E (any visible ASCII character except ',').
fn is_nonce_char(b: u8) -> bool {
    (0x21..=0x7e).contains(&b) && b != b','
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};

    /// Made by PostgreSQL 15.18: `CREATE ROLE kat LOGIN PASSWORD 'pencil'`, then
    /// `SELECT rolpassword FROM pg_authid WHERE rolname = 'kat'`.
    const PG15_PENCIL: &str = "SCRAM-SHA-256$4096:LX1NUNEbFmSRd9rBgQaKng==$\
        JWB38Czo9/oVipuK6c4SK+PbQcM6m7JTI4FLIQrtarA=:x7GvWtbpA3+kenu+yQYHJXtmAADpBHHm6eDLIRXcC8k=";
    /// Made by PostgreSQL 15.18 for the password `IX`.
    const PG15_IX: &str = "SCRAM-SHA-256$4096:yZEMHhMcsknX4sanRJ81rA==$\
        s3v7czitOEYu0eaQkxqMdo/3ymbTuBvMZFzjVb6b48I=:NyvC7zT9JlOey5kVnb4w4iKLpav8TSAeC1eFR/razqU=";

    #[test]
    fn postgres_made_verifier_checks_out() {
        let pg: ScramVerifier = PG15_PENCIL.parse().unwrap();
        assert_eq!(pg.iterations, 4096);
        assert_eq!(pg.to_string(), PG15_PENCIL);
        let ours = scram_verifier_with_salt("pencil", &pg.salt, 4096);
        assert_eq!(ours, pg);
        assert!(verify_plain_password(&pg, "pencil"));
        assert!(!verify_plain_password(&pg, "pencil "));
    }

    #[test]
    fn passwords_are_saslprepped_like_postgres() {
        // U+00AD SOFT HYPHEN is "mapped to nothing" by SASLprep, so "I\u{AD}X" is "IX".
        let pg: ScramVerifier = PG15_IX.parse().unwrap();
        assert!(verify_plain_password(&pg, "IX"));
        assert!(verify_plain_password(&pg, "I\u{AD}X"));
        assert_eq!(scram_verifier_with_salt("I\u{AD}X", &pg.salt, 4096), pg);
    }

    #[test]
    fn new_verifiers_have_postgres_shape() {
        let v = scram_verifier("secret", SCRAM_ITERATIONS_DEFAULT);
        let text = v.to_string();
        assert!(text.starts_with("SCRAM-SHA-256$4096:"), "{text}");
        // 16-byte salt = 24 base64 characters; 32-byte keys = 44 characters each.
        let (_, rest) = text.split_once(':').unwrap();
        let (salt, keys) = rest.split_once('$').unwrap();
        assert_eq!(salt.len(), 24);
        let (k1, k2) = keys.split_once(':').unwrap();
        assert_eq!((k1.len(), k2.len()), (44, 44));
        assert_eq!(text.parse::<ScramVerifier>().unwrap(), v);
        // Salts are random.
        assert_ne!(scram_verifier("secret", 4096).salt, v.salt);
        assert!(verify_plain_password(&v, "secret"));
    }

    #[test]
    fn malformed_verifiers_are_rejected() {
        for bad in [
            "",
            "md5abcdef",
            "SCRAM-SHA-256$",
            "SCRAM-SHA-256$4096:c2FsdA==",
            "SCRAM-SHA-256$x:c2FsdA==$AAAA:AAAA",
            "SCRAM-SHA-256$0:c2FsdA==$JWB38Czo9/oVipuK6c4SK+PbQcM6m7JTI4FLIQrtarA=:x7GvWtbpA3+kenu+yQYHJXtmAADpBHHm6eDLIRXcC8k=",
            "SCRAM-SHA-256$4096:!!$JWB38Czo9/oVipuK6c4SK+PbQcM6m7JTI4FLIQrtarA=:x7GvWtbpA3+kenu+yQYHJXtmAADpBHHm6eDLIRXcC8k=",
            "SCRAM-SHA-256$4096:c2FsdA==$AAAA:x7GvWtbpA3+kenu+yQYHJXtmAADpBHHm6eDLIRXcC8k=",
        ] {
            assert!(bad.parse::<ScramVerifier>().is_err(), "{bad}");
        }
    }

    /// Runs a whole exchange with postgres-protocol's client (tokio-postgres's SCRAM code).
    fn run_exchange(
        verifier: Option<&ScramVerifier>,
        password: &str,
    ) -> Result<(), Box<dyn std::error::Error>> {
        let mut client = ScramSha256::new(password.as_bytes(), ChannelBinding::unsupported());
        let mut server = ScramExchange::new(verifier, "alice");
        let server_first = server.handle_client_first(client.message())?;
        client.update(&server_first)?;
        let server_final = server.handle_client_final(client.message())?;
        client.finish(&server_final)?;
        Ok(())
    }

    #[test]
    fn full_exchange_with_right_password_succeeds() {
        let v = scram_verifier("correct horse", 4096);
        run_exchange(Some(&v), "correct horse").unwrap();
        let pg: ScramVerifier = PG15_PENCIL.parse().unwrap();
        run_exchange(Some(&pg), "pencil").unwrap();
    }

    #[test]
    fn full_exchange_with_wrong_password_fails_with_28p01() {
        let v = scram_verifier("correct horse", 4096);
        let mut client = ScramSha256::new(b"battery staple", ChannelBinding::unsupported());
        let mut server = ScramExchange::new(Some(&v), "alice");
        let first = server.handle_client_first(client.message()).unwrap();
        client.update(&first).unwrap();
        let err = server.handle_client_final(client.message()).unwrap_err();
        assert_eq!(err, ScramError::AuthenticationFailed);
        assert_eq!(err.sqlstate(), sqlstate::INVALID_PASSWORD);
    }

    #[test]
    fn mock_exchange_always_fails_and_has_a_stable_salt() {
        let mut client = ScramSha256::new(b"", ChannelBinding::unsupported());
        let mut server = ScramExchange::new(None, "nobody");
        let first = server.handle_client_first(client.message()).unwrap();
        let again = ScramExchange::new(None, "nobody").salt;
        assert_eq!(server.salt, again);
        client.update(&first).unwrap();
        assert_eq!(
            server.handle_client_final(client.message()),
            Err(ScramError::AuthenticationFailed)
        );
    }

    #[test]
    fn client_first_variants() {
        let v = scram_verifier("pw", 4096);
        let first = |m: &str| ScramExchange::new(Some(&v), "u").handle_client_first(m.as_bytes());
        assert!(first("n,,n=,r=abc").is_ok());
        assert!(first("y,,n=someone,r=abc,x=ext").is_ok());
        assert_eq!(
            first("p=tls-server-end-point,,n=,r=abc"),
            Err(ScramError::ChannelBindingUnexpected)
        );
        assert_eq!(
            first("n,a=admin,n=,r=abc"),
            Err(ScramError::AuthorizationIdentity)
        );
        for bad in [
            "",
            "n",
            "n,",
            "x,,n=,r=abc",
            "n,,r=abc",
            "n,,n=",
            "n,,n=,r=",
            "n,,m=x,n=,r=a",
        ] {
            assert!(
                matches!(first(bad), Err(ScramError::Malformed(_))),
                "{bad:?}: {:?}",
                first(bad)
            );
        }
        assert!(matches!(
            first("n,,n=,r=a\u{7f}b"),
            Err(ScramError::Malformed(_))
        ));
    }

    #[test]
    fn client_final_checks_nonce_binding_and_order() {
        let v = scram_verifier("pw", 4096);
        let mut s = ScramExchange::new(Some(&v), "u");
        assert_eq!(
            s.handle_client_final(b"c=biws,r=x,p=AA=="),
            Err(ScramError::OutOfOrder)
        );

        let mut s = ScramExchange::new(Some(&v), "u");
        s.handle_client_first(b"n,,n=,r=abc").unwrap();
        assert_eq!(
            s.handle_client_final(b"c=biws,r=abcWRONG,p=AAAA"),
            Err(ScramError::NonceMismatch)
        );

        let mut s = ScramExchange::new(Some(&v), "u");
        let first = String::from_utf8(s.handle_client_first(b"n,,n=,r=abc").unwrap()).unwrap();
        let nonce = first.split(',').next().unwrap().strip_prefix("r=").unwrap();
        // "eSws" is base64("y,,"), which does not repeat the gs2 header "n,,".
        let msg = format!("c=eSws,r={nonce},p=AAAA");
        assert_eq!(
            s.handle_client_final(msg.as_bytes()),
            Err(ScramError::ChannelBindingMismatch)
        );
        // The exchange is over after a failure.
        assert_eq!(
            s.handle_client_first(b"n,,n=,r=abc"),
            Err(ScramError::OutOfOrder)
        );

        let mut s = ScramExchange::new(Some(&v), "u");
        let first = String::from_utf8(s.handle_client_first(b"n,,n=,r=abc").unwrap()).unwrap();
        let nonce = first.split(',').next().unwrap().strip_prefix("r=").unwrap();
        let msg = format!("c=biws,r={nonce},p=tooshort");
        assert!(matches!(
            s.handle_client_final(msg.as_bytes()),
            Err(ScramError::Malformed(_))
        ));
    }

    #[test]
    fn garbage_never_panics() {
        let v = scram_verifier("pw", 1);
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for len in 0..200 {
            let mut buf = vec![0u8; len % 64];
            for b in &mut buf {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                *b = (seed % 96) as u8 + 32;
            }
            let mut s = ScramExchange::new(Some(&v), "u");
            let _ = s.handle_client_first(&buf);
            let _ = s.handle_client_final(&buf);
            let mut s = ScramExchange::new(Some(&v), "u");
            if s.handle_client_first(b"n,,n=,r=abc").is_ok() {
                let _ = s.handle_client_final(&buf);
            }
        }
    }
}

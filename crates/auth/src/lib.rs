//! Who may connect, and how they prove it: roles, SCRAM-SHA-256 and pg_hba.conf.
//!
//! Used by the frontend during connection start-up and, later, by the SQL layer for
//! `CREATE ROLE … PASSWORD` / `ALTER ROLE`. Three parts, each in PostgreSQL's formats so that a
//! PostgreSQL DBA recognises them:
//!
//! - `roles`: the role file `DIR/global/pg_authid` and the thread-safe `RoleStore` over it.
//! - `scram`: SCRAM-SHA-256 verifiers (PostgreSQL's `rolpassword` text) and the server side of
//!   the SASL exchange, as a pure state machine.
//! - `hba`: `DIR/pg_hba.conf`: parsing, first-match lookup and a reloadable shared copy.
//!
//! Nothing here does network IO; file IO happens only when loading or saving the two files.

pub mod hba;
pub mod roles;
pub mod scram;

pub use hba::{
    AuthMethod, ConnType, DEFAULT_PG_HBA, HbaError, HbaFile, HbaLine, HbaRequest, HbaVerdict,
    ReplicationKind, SharedHba, Transport,
};
pub use roles::{Role, RoleError, RoleFileError, RoleStore};
pub use scram::{
    SCRAM_ITERATIONS_DEFAULT, SCRAM_SHA_256, ScramError, ScramExchange, ScramVerifier,
    scram_verifier, verify_plain_password,
};

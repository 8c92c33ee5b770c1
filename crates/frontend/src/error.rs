//! Errors of the frontend's own operations. Errors a client sees are `base::PgError`s.

use std::io;
use std::path::PathBuf;

/// Why the frontend could not start serving.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrontendError {
    #[error("could not resolve listen address \"{addr}\": {source}")]
    Resolve { addr: String, source: io::Error },
    #[error("could not create listen socket for \"{addr}\": {source}")]
    Listen { addr: String, source: io::Error },
    #[error("could not create Unix-domain socket \"{}\": {source}", path.display())]
    UnixSocket { path: PathBuf, source: io::Error },
    #[error(
        "another server is already listening on Unix-domain socket \"{}\"",
        path.display()
    )]
    UnixSocketInUse { path: PathBuf },
    #[error("no socket to listen on: listen_addresses and unix_socket_directories are both empty")]
    NothingToListenOn,
    #[error("could not create any listen socket: {0}")]
    NoListeners(String),
    #[error("could not start the session event loops: {0}")]
    Loops(io::Error),
}

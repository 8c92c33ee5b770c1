//! Frontend settings, named after PostgreSQL's configuration parameters.

use std::path::PathBuf;
use std::time::Duration;

use crate::wire::LARGE_MESSAGE_MAX_LEN_DEFAULT;

/// Where to listen and how long to wait; see each field.
#[derive(Clone, Debug)]
pub struct FrontendConfig {
    /// `listen_addresses`: comma-separated host names or IP addresses; `*` for all IPv4 and
    /// IPv6 addresses, `localhost` for both loopbacks, empty for no TCP at all.
    pub listen_addresses: String,
    /// `port`. 0 picks a free port (tests); the Unix socket is then named after the TCP port
    /// actually bound.
    pub port: u16,
    /// `unix_socket_directories`: a socket `.s.PGSQL.<port>` is created in each; empty for
    /// none.
    pub unix_socket_directories: Vec<PathBuf>,
    /// `authentication_timeout`: the whole start-up (startup packet and password exchange)
    /// must finish within this, so half-open or idle unauthenticated connections cannot pile
    /// up. PostgreSQL's default is 60 s.
    pub authentication_timeout: Duration,
    /// The largest Query, Parse, Bind or CopyData message accepted, in bytes. PostgreSQL's
    /// limit is 1 GiB - 1; a lower value bounds the memory one client can make a connection
    /// hold (the data of a message is held until it is processed).
    pub max_message_len: usize,
    /// Session event loops (single-threaded runtimes, one per core; see `loops`). 0 serves
    /// connections on the caller's runtime instead.
    pub session_threads: usize,
}

impl Default for FrontendConfig {
    fn default() -> Self {
        FrontendConfig {
            listen_addresses: "localhost".to_owned(),
            port: 5432,
            unix_socket_directories: Vec::new(),
            authentication_timeout: Duration::from_secs(60),
            max_message_len: LARGE_MESSAGE_MAX_LEN_DEFAULT,
            session_threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

//! Protocol tests against the scripted `FakeEngine` (see `fake`): a real server on
//! 127.0.0.1 with an ephemeral port, driven by tokio-postgres and by a raw protocol client.
//! Every wait has a timeout; every server is shut down at the end of its test.
#![allow(clippy::unwrap_used)]

mod fake;
mod protocol;

#[path = "../../tests/support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use auth::{HbaFile, Role, RoleStore, SharedHba};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use crate::config::FrontendConfig;
use crate::replication::ReplicationHandler;
use crate::server::Server;
use crate::shutdown::{ShutdownMode, ShutdownTrigger, shutdown_channel};
use fake::FakeEngine;
use support::Raw;

pub(crate) struct TestServer {
    pub addr: SocketAddr,
    pub engine: Arc<FakeEngine>,
    pub trigger: ShutdownTrigger,
    task: Option<JoinHandle<()>>,
    pub socket_dir: tempfile::TempDir,
}

pub(crate) struct Options {
    pub hba: &'static str,
    pub roles: Vec<Role>,
    pub replication: Option<Arc<dyn ReplicationHandler>>,
    pub auth_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        let mut alice = Role::bootstrap_superuser("alice");
        alice.password = Some(auth::scram_verifier("secret", 4096));
        Options {
            hba: "local all all trust\nhost all all 127.0.0.1/32 trust\n\
                  host replication all 127.0.0.1/32 trust\n",
            roles: vec![
                alice,
                Role {
                    login: true,
                    ..Role::new("bob")
                },
                Role {
                    login: true,
                    ..Role::new("toomany")
                },
            ],
            replication: None,
            auth_timeout: Duration::from_secs(60),
        }
    }
}

impl TestServer {
    pub(crate) async fn start() -> TestServer {
        TestServer::start_with(Options::default()).await
    }

    pub(crate) async fn start_with(opts: Options) -> TestServer {
        let socket_dir = tempfile::tempdir().unwrap();
        let config = FrontendConfig {
            listen_addresses: "127.0.0.1".into(),
            port: 0,
            unix_socket_directories: vec![socket_dir.path().to_owned()],
            authentication_timeout: opts.auth_timeout,
            ..FrontendConfig::default()
        };
        let engine = FakeEngine::new();
        let roles = Arc::new(RoleStore::in_memory(opts.roles).unwrap());
        let hba = Arc::new(SharedHba::fixed(HbaFile::parse(opts.hba, "test").unwrap()));
        let mut server = Server::bind(config, Arc::clone(&engine), roles, hba)
            .await
            .unwrap();
        if let Some(h) = opts.replication {
            server = server.with_replication(h);
        }
        let addr = server.local_addrs()[0];
        let (trigger, watch) = shutdown_channel();
        let task = tokio::spawn(server.run(watch));
        TestServer {
            addr,
            engine,
            trigger,
            task: Some(task),
            socket_dir,
        }
    }

    pub(crate) async fn raw(&self) -> Raw<TcpStream> {
        Raw::new(TcpStream::connect(self.addr).await.unwrap())
    }

    /// A raw client past start-up as `user` (trust).
    pub(crate) async fn session(&self, user: &str) -> Raw<TcpStream> {
        let mut c = self.raw().await;
        c.startup(&[("user", user), ("database", "db")]).await;
        let msgs = c.until_ready().await;
        assert_eq!(msgs[0].tag, b'R', "{msgs:?}");
        c
    }

    pub(crate) async fn tokio_postgres(&self, user: &str) -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::Config::new()
            .host("127.0.0.1")
            .port(self.addr.port())
            .user(user)
            .dbname("db")
            .connect_timeout(support::WAIT)
            .connect(tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        client
    }

    /// Requests `mode` and waits for `run` to return.
    pub(crate) async fn stop(mut self, mode: ShutdownMode) {
        self.trigger.request(mode);
        if let Some(task) = self.task.take() {
            tokio::time::timeout(support::WAIT, task)
                .await
                .expect("server did not stop")
                .unwrap();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.trigger.request(ShutdownMode::Immediate);
    }
}

impl<B: crate::backend::Backend> Server<B> {
    pub(crate) fn with_replication(mut self, handler: Arc<dyn ReplicationHandler>) -> Self {
        self.set_replication(handler);
        self
    }
}

//! End-to-end tests of the public `Frontend` with the real `sql::Engine` (currently the
//! placeholder, whose statements all fail with 0A000): start-up, every authentication method,
//! pg_hba.conf decisions, hostile bytes before start-up, and real clients (tokio-postgres and,
//! where installed, psql). Each test runs its own server on 127.0.0.1 with an ephemeral port
//! and shuts it down; every wait has a timeout.
#![allow(clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use auth::{DEFAULT_PG_HBA, HbaFile, Role, RoleStore, SharedHba, scram_verifier};
use frontend::{Frontend, FrontendConfig, FrontendError, ShutdownMode, ShutdownTrigger};
use support::{Raw, WAIT, tags};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

struct Server {
    addr: SocketAddr,
    socket: PathBuf,
    trigger: ShutdownTrigger,
    task: Option<JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start(hba: &str) -> Server {
        let mut alice = Role::bootstrap_superuser("alice");
        alice.password = Some(scram_verifier("secret", 4096));
        let roles = vec![
            alice,
            Role {
                login: true,
                ..Role::new("nopassword")
            },
            Role::new("cannotlogin"),
        ];
        Server::start_with(hba, RoleStore::in_memory(roles).unwrap()).await
    }

    async fn start_with(hba: &str, roles: RoleStore) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let config = FrontendConfig {
            listen_addresses: "127.0.0.1".into(),
            port: 0,
            unix_socket_directories: vec![dir.path().to_owned()],
            ..FrontendConfig::default()
        };
        let hba = Arc::new(SharedHba::fixed(
            HbaFile::parse(hba, "pg_hba.conf").unwrap(),
        ));
        let frontend = Frontend::bind(config, sql::Engine::for_tests().0, Arc::new(roles), hba)
            .await
            .unwrap();
        let addr = frontend.local_addrs()[0];
        let socket = frontend.unix_socket_paths()[0].clone();
        assert_eq!(socket, dir.path().join(format!(".s.PGSQL.{}", addr.port())));
        let (trigger, watch) = frontend::shutdown_channel();
        let task = tokio::spawn(frontend.run(watch));
        Server {
            addr,
            socket,
            trigger,
            task: Some(task),
            _dir: dir,
        }
    }

    async fn raw(&self) -> Raw<TcpStream> {
        Raw::new(TcpStream::connect(self.addr).await.unwrap())
    }

    async fn connect(
        &self,
        user: &str,
        password: Option<&str>,
    ) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        let mut config = tokio_postgres::Config::new();
        config
            .host("127.0.0.1")
            .port(self.addr.port())
            .user(user)
            .dbname("db")
            .connect_timeout(WAIT);
        if let Some(p) = password {
            config.password(p);
        }
        let (client, conn) = config.connect(tokio_postgres::NoTls).await?;
        tokio::spawn(conn);
        Ok(client)
    }

    async fn stop(mut self) {
        self.trigger.request(ShutdownMode::Fast);
        let task = self.task.take().unwrap();
        tokio::time::timeout(WAIT, task).await.unwrap().unwrap();
        assert!(!self.socket.exists(), "socket file removed at shutdown");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.trigger.request(ShutdownMode::Immediate);
    }
}

fn db_code(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .map(|d| d.code().code().to_owned())
        .unwrap_or_else(|| format!("not a server error: {e}"))
}

const SCRAM_HBA: &str = "host all all 127.0.0.1/32 scram-sha-256\n";

#[tokio::test]
async fn trust_startup_and_errors_keep_the_session_usable() {
    let srv = Server::start("host all all 127.0.0.1/32 trust\n").await;
    let mut c = srv.raw().await;
    c.startup(&[("user", "alice"), ("database", "db")]).await;
    let msgs = c.until_ready().await;
    // AuthenticationOk, the session's ParameterStatus messages, BackendKeyData, RFQ.
    let t = tags(&msgs);
    assert!(t.starts_with("RS") && t.ends_with("KZ"), "{t}");
    assert_eq!(msgs.last().unwrap().body, b"I");

    let client = srv.connect("alice", None).await.unwrap();
    for _ in 0..3 {
        let err = client
            .simple_query("select * from nosuch")
            .await
            .unwrap_err();
        assert_eq!(db_code(&err), "42P01");
        let err = client
            .query("select $1::int / 0", &[&1i32])
            .await
            .unwrap_err();
        assert_eq!(db_code(&err), "22012");
        let row = client
            .query_one("select $1::int + 1", &[&1i32])
            .await
            .unwrap();
        assert_eq!(row.get::<_, i32>(0), 2);
    }
    drop(client);
    srv.stop().await;
}

#[tokio::test]
async fn extended_protocol_errors_skip_until_sync_with_the_real_engine() {
    let srv = Server::start("host all all 127.0.0.1/32 trust\n").await;
    let mut c = srv.raw().await;
    c.startup(&[("user", "alice")]).await;
    c.until_ready().await;
    // Parse fails (no such table); Bind and Execute are skipped.
    c.parse("s", "select * from nosuch", &[])
        .bind("", "s", &[], &[])
        .execute("", 0)
        .sync()
        .send()
        .await;
    let msgs = c.until_ready().await;
    assert_eq!(tags(&msgs), "EZ");
    assert_eq!(msgs[0].code(), "42P01");
    assert_eq!(msgs[0].fields()[&b'S'], "ERROR");
    // The statement does not exist afterwards; the session is still fine.
    c.bind("", "s", &[], &[]).sync().send().await;
    assert_eq!(c.until_ready().await[0].code(), "26000");
    c.query("").send().await;
    assert_eq!(c.tags_until_ready().await, "IZ");
    srv.stop().await;
}

#[tokio::test]
async fn scram_with_the_right_password_succeeds() {
    let srv = Server::start(SCRAM_HBA).await;
    let client = srv.connect("alice", Some("secret")).await.unwrap();
    let row = client.query_one("select 41 + 1", &[]).await.unwrap();
    assert_eq!(row.get::<_, i32>(0), 42);
    drop(client);
    srv.stop().await;
}

#[tokio::test]
async fn scram_failures_are_28p01() {
    let srv = Server::start(SCRAM_HBA).await;
    for (user, password) in [
        ("alice", "wrong"),
        ("nosuchrole", "secret"),
        ("nopassword", "anything"),
    ] {
        let err = srv.connect(user, Some(password)).await.unwrap_err();
        let db = err.as_db_error().unwrap();
        assert_eq!(db.code().code(), "28P01", "{user}");
        assert_eq!(db.severity(), "FATAL");
        assert_eq!(
            db.message(),
            format!("password authentication failed for user \"{user}\"")
        );
    }
    // No password given at all: the client cannot answer the SASL request.
    assert!(srv.connect("alice", None).await.is_err());
    srv.stop().await;
}

#[tokio::test]
async fn md5_lines_run_scram_and_password_lines_take_cleartext() {
    let srv =
        Server::start("host all alice 127.0.0.1/32 md5\nhost all all 127.0.0.1/32 password\n")
            .await;
    drop(srv.connect("alice", Some("secret")).await.unwrap());
    assert_eq!(
        db_code(&srv.connect("alice", Some("nope")).await.unwrap_err()),
        "28P01"
    );
    srv.stop().await;

    let mut alice = Role::bootstrap_superuser("alice");
    alice.password = Some(scram_verifier("secret", 4096));
    let srv = Server::start_with(
        "host all all 127.0.0.1/32 password\n",
        RoleStore::in_memory(vec![alice]).unwrap(),
    )
    .await;
    // Raw: the server asks for a cleartext password.
    let mut c = srv.raw().await;
    c.startup(&[("user", "alice")]).await;
    let m = c.recv().await.unwrap();
    assert_eq!((m.tag, &m.body[..]), (b'R', &[0, 0, 0, 3][..]));
    drop(c);
    drop(srv.connect("alice", Some("secret")).await.unwrap());
    let err = srv.connect("alice", Some("bad")).await.unwrap_err();
    assert_eq!(db_code(&err), "28P01");
    let err = srv.connect("ghost", Some("secret")).await.unwrap_err();
    assert_eq!(db_code(&err), "28P01");
    srv.stop().await;
}

#[tokio::test]
async fn hba_reject_no_entry_and_role_checks_are_28000() {
    let srv = Server::start(
        "host all nopassword 127.0.0.1/32 reject\nhost db2 all 127.0.0.1/32 trust\n\
         host db all 127.0.0.1/32 trust\n",
    )
    .await;
    let err = srv.connect("nopassword", None).await.unwrap_err();
    let db = err.as_db_error().unwrap();
    assert_eq!(db.code().code(), "28000");
    assert_eq!(
        db.message(),
        "pg_hba.conf rejects connection for host \"127.0.0.1\", user \"nopassword\", database \"db\", no encryption"
    );

    // Trust, but the role does not exist / may not log in.
    let err = srv.connect("ghost", None).await.unwrap_err();
    assert_eq!(
        err.as_db_error().unwrap().message(),
        "role \"ghost\" does not exist"
    );
    assert_eq!(db_code(&err), "28000");
    let err = srv.connect("cannotlogin", None).await.unwrap_err();
    assert_eq!(
        err.as_db_error().unwrap().message(),
        "role \"cannotlogin\" is not permitted to log in"
    );

    // No line for this database.
    let mut c = srv.raw().await;
    c.startup(&[("user", "alice"), ("database", "other")]).await;
    let msgs = c.until_closed().await;
    assert_eq!(msgs[0].code(), "28000");
    assert_eq!(
        msgs[0].message(),
        "no pg_hba.conf entry for host \"127.0.0.1\", user \"alice\", database \"other\", no encryption"
    );
    srv.stop().await;
}

#[tokio::test]
async fn startup_packet_problems() {
    let srv = Server::start("host all all 127.0.0.1/32 trust\n").await;

    // No user.
    let mut c = srv.raw().await;
    c.startup(&[("database", "db")]).await;
    let msgs = c.until_closed().await;
    assert_eq!(msgs[0].code(), "28000");
    assert_eq!(
        msgs[0].message(),
        "no PostgreSQL user name specified in startup packet"
    );

    // Protocol 2.0.
    let mut c = srv.raw().await;
    c.send_bytes(b"\0\0\0\x10\0\x02\0\0user\0u\0\0").await;
    let msgs = c.until_closed().await;
    assert_eq!(msgs[0].code(), "0A000");

    // Protocol 3.9999 with a protocol option: negotiated down to 3.2, session starts.
    let mut c = srv.raw().await;
    let mut packet = vec![0, 3, 0x27, 0x0f];
    packet.extend_from_slice(b"user\0alice\0_pq_.extra\0x\0\0");
    let mut framed = ((packet.len() + 4) as i32).to_be_bytes().to_vec();
    framed.extend_from_slice(&packet);
    c.send_bytes(&framed).await;
    let msgs = c.until_ready().await;
    let t = tags(&msgs);
    assert!(t.starts_with("vRS") && t.ends_with("KZ"), "{t}");
    assert_eq!(&msgs[0].body[..4], &[0, 3, 0, 2]);
    assert_eq!(&msgs[0].body[8..], b"_pq_.extra\0");

    // SSLRequest and GSSENCRequest are refused with 'N', then start-up goes on in plaintext.
    let mut c = srv.raw().await;
    c.send_bytes(&[0, 0, 0, 8, 4, 210, 22, 47]).await;
    assert_eq!(c.recv_byte().await, Some(b'N'));
    c.send_bytes(&[0, 0, 0, 8, 4, 210, 22, 48]).await;
    assert_eq!(c.recv_byte().await, Some(b'N'));
    c.startup(&[("user", "alice")]).await;
    let t = c.tags_until_ready().await;
    assert!(t.starts_with("RS") && t.ends_with("KZ"), "{t}");

    // A second SSLRequest is a protocol violation.
    let mut c = srv.raw().await;
    c.send_bytes(&[0, 0, 0, 8, 4, 210, 22, 47]).await;
    assert_eq!(c.recv_byte().await, Some(b'N'));
    c.send_bytes(&[0, 0, 0, 8, 4, 210, 22, 47]).await;
    assert_eq!(c.until_closed().await[0].code(), "08P01");

    // Bad replication value.
    let mut c = srv.raw().await;
    c.startup(&[("user", "alice"), ("replication", "sometimes")])
        .await;
    assert_eq!(c.until_closed().await[0].code(), "22023");
    srv.stop().await;
}

#[tokio::test]
async fn garbage_before_startup_closes_only_that_connection() {
    let srv = Server::start("host all all 127.0.0.1/32 trust\n").await;
    let hostile: &[&[u8]] = &[
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        &[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00],
        &[0x7f, 0xff, 0xff, 0xff, 0, 3, 0, 0],
        &[0xff, 0xff, 0xff, 0xff],
        &[0, 0, 0, 4],
        &[0, 0, 0, 7, 0, 3, 0],
        &[0, 0, 0x27, 0x11],
        &[0, 0, 0, 8, 0, 0, 0, 0],
        &[0, 0, 0, 12, 4, 210, 22, 46, 0, 0],
        b"",
    ];
    // Keep one session open throughout: it must not notice.
    let bystander = srv.connect("alice", None).await.unwrap();
    for bytes in hostile {
        let mut c = srv.raw().await;
        c.send_bytes(bytes).await;
        let _ = tokio::io::AsyncWriteExt::shutdown(&mut c.stream).await;
        // Closed with nothing, or with one FATAL error at most.
        let msgs = c.until_closed().await;
        assert!(msgs.len() <= 1, "{bytes:?}: {msgs:?}");
        if let Some(m) = msgs.first() {
            assert_eq!(m.tag, b'E', "{bytes:?}");
        }
    }
    // An oversized length with no body: the server does not wait for a gigabyte.
    let mut c = srv.raw().await;
    c.send_bytes(&[0x40, 0, 0, 0]).await;
    assert!(c.until_closed().await.is_empty());
    // A big claimed Query length after start-up is also refused, not buffered.
    let mut c = srv.raw().await;
    c.startup(&[("user", "alice")]).await;
    c.until_ready().await;
    c.send_bytes(&[b'Q', 0x7f, 0xff, 0xff, 0xff]).await;
    assert_eq!(
        c.until_closed().await[0].message(),
        "invalid message length"
    );

    assert_eq!(
        db_code(&bystander.simple_query("x").await.unwrap_err()),
        "42601"
    );
    drop(bystander);
    srv.stop().await;
}

#[tokio::test]
async fn files_written_by_init_work_end_to_end() {
    // What `lockstep init` would write: the default pg_hba.conf and a role file.
    let data = tempfile::tempdir().unwrap();
    let hba_path = data.path().join("pg_hba.conf");
    std::fs::write(&hba_path, DEFAULT_PG_HBA).unwrap();
    RoleStore::initialize(data.path(), vec![Role::bootstrap_superuser("lockstep")]).unwrap();
    let roles = Arc::new(RoleStore::open(data.path()).unwrap());
    let hba = Arc::new(SharedHba::load(&hba_path).unwrap());
    let config = FrontendConfig {
        listen_addresses: "127.0.0.1".into(),
        port: 0,
        ..FrontendConfig::default()
    };
    let frontend = Frontend::bind(
        config,
        sql::Engine::for_tests().0,
        roles.clone(),
        hba.clone(),
    )
    .await
    .unwrap();
    let addr = frontend.local_addrs()[0];
    let (trigger, watch) = frontend::shutdown_channel();
    let task = tokio::spawn(frontend.run(watch));

    let connect = |password: Option<&'static str>| async move {
        let mut config = tokio_postgres::Config::new();
        config
            .host("127.0.0.1")
            .port(addr.port())
            .user("lockstep")
            .connect_timeout(WAIT);
        if let Some(p) = password {
            config.password(p);
        }
        config
            .connect(tokio_postgres::NoTls)
            .await
            .map(|(c, conn)| {
                tokio::spawn(conn);
                c
            })
    };
    drop(connect(None).await.unwrap());

    // Switch to SCRAM by editing the file and reloading; set a password.
    std::fs::write(&hba_path, "host all all 127.0.0.1/32 scram-sha-256\n").unwrap();
    hba.reload().unwrap();
    roles.set_password("lockstep", Some("pw")).unwrap();
    assert!(connect(None).await.is_err());
    drop(connect(Some("pw")).await.unwrap());
    // The password survived in the file.
    let reopened = RoleStore::open(data.path()).unwrap();
    assert!(reopened.get("lockstep").unwrap().password.is_some());

    trigger.request(ShutdownMode::Smart);
    tokio::time::timeout(WAIT, task).await.unwrap().unwrap();
}

#[tokio::test]
async fn bind_errors() {
    let config = FrontendConfig {
        listen_addresses: String::new(),
        unix_socket_directories: vec![],
        ..FrontendConfig::default()
    };
    let hba = Arc::new(SharedHba::fixed(HbaFile::parse("", "x").unwrap()));
    let roles = Arc::new(RoleStore::in_memory(vec![]).unwrap());
    let engine = sql::Engine::for_tests().0;
    assert!(matches!(
        Frontend::bind(config, engine.clone(), roles.clone(), hba.clone()).await,
        Err(FrontendError::NothingToListenOn)
    ));

    // A socket a live server answers on cannot be taken over.
    let srv = Server::start("local all all trust\n").await;
    let config = FrontendConfig {
        listen_addresses: String::new(),
        port: srv.addr.port(),
        unix_socket_directories: vec![srv.socket.parent().unwrap().to_owned()],
        ..FrontendConfig::default()
    };
    assert!(matches!(
        Frontend::bind(config.clone(), engine.clone(), roles.clone(), hba.clone()).await,
        Err(FrontendError::UnixSocketInUse { .. })
    ));
    srv.stop().await;
    // A stale socket file (no server) is replaced.
    let dir = tempfile::tempdir().unwrap();
    let config = FrontendConfig {
        unix_socket_directories: vec![dir.path().to_owned()],
        ..config
    };
    let stale = dir.path().join(format!(".s.PGSQL.{}", config.port));
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    assert!(stale.exists());
    let f = Frontend::bind(config, engine, roles, hba).await.unwrap();
    assert_eq!(f.unix_socket_paths(), [stale]);

    // The TCP port is taken.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let config = FrontendConfig {
        listen_addresses: "127.0.0.1".into(),
        port: taken.local_addr().unwrap().port(),
        ..FrontendConfig::default()
    };
    let r = Frontend::bind(
        config,
        sql::Engine::for_tests().0,
        Arc::new(RoleStore::in_memory(vec![]).unwrap()),
        Arc::new(SharedHba::fixed(HbaFile::parse("", "x").unwrap())),
    )
    .await;
    assert!(
        matches!(r, Err(FrontendError::NoListeners(_))),
        "{:?}",
        r.err()
    );
}

/// psql, if installed: libpq's SCRAM, its error display, and Unix sockets.
#[tokio::test]
async fn psql_connects_over_tcp_with_scram_and_over_unix_socket() {
    let psql = ["/usr/bin/psql", "/usr/lib/postgresql/15/bin/psql"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    let Some(psql) = psql else {
        eprintln!("psql not installed; skipping");
        return;
    };
    let srv = Server::start("local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n").await;
    let run = |args: Vec<String>, password: &'static str| {
        let mut cmd = tokio::process::Command::new(psql);
        cmd.args(args)
            .env("PGPASSWORD", password)
            .env("PGCONNECT_TIMEOUT", "10")
            .env_remove("PGSERVICE")
            .kill_on_drop(true);
        async move {
            let out = tokio::time::timeout(Duration::from_secs(20), cmd.output())
                .await
                .expect("psql hung")
                .unwrap();
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        }
    };
    let tcp = |extra: &str| {
        vec![
            "-X".into(),
            "-w".into(),
            "-h".into(),
            "127.0.0.1".into(),
            "-p".into(),
            srv.addr.port().to_string(),
            "-U".into(),
            "alice".into(),
            "-d".into(),
            "db".into(),
            "-c".into(),
            extra.into(),
        ]
    };
    // Authenticated; the statement runs.
    let (code, err) = run(tcp("select 1"), "secret").await;
    assert_eq!(code, Some(0), "{err}");
    let (code, err) = run(tcp("select 1"), "wrong").await;
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("password authentication failed for user \"alice\""),
        "{err}"
    );
    let dir = srv.socket.parent().unwrap().display().to_string();
    let unix = vec![
        "-X".into(),
        "-w".into(),
        "-h".into(),
        dir,
        "-p".into(),
        srv.addr.port().to_string(),
        "-U".into(),
        "alice".into(),
        "-c".into(),
        "select 1".into(),
    ];
    let (code, err) = run(unix, "").await;
    assert_eq!(code, Some(0), "{err}");
    srv.stop().await;
}

#[tokio::test]
async fn unauthenticated_clients_cannot_send_big_messages() {
    let srv = Server::start(SCRAM_HBA).await;
    let mut c = srv.raw().await;
    c.startup(&[("user", "alice")]).await;
    assert_eq!(c.recv().await.unwrap().tag, b'R');
    // A Query header claiming 1 GiB instead of the SASL response: refused on its type byte.
    c.send_bytes(&[b'Q', 0x3f, 0xff, 0xff, 0xff]).await;
    let msgs = c.until_closed().await;
    assert_eq!(msgs[0].code(), "08P01");
    assert_eq!(
        msgs[0].message(),
        "expected password response, got message type 81"
    );
    // A password message over 64 KiB.
    let mut c = srv.raw().await;
    c.startup(&[("user", "alice")]).await;
    assert_eq!(c.recv().await.unwrap().tag, b'R');
    c.send_bytes(&[b'p', 0, 1, 0, 10]).await;
    assert_eq!(
        c.until_closed().await[0].message(),
        "invalid message length"
    );
    srv.stop().await;
}

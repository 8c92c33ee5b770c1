//! The replication client's connection set-up against PostgreSQL 15: every password method
//! PostgreSQL offers a replication connection (SCRAM-SHA-256, MD5, cleartext), trust, Unix
//! sockets, and the typed errors a caller sees.

mod common;

use common::*;
use walreceiver::conn::{ConnError, ConnectOptions, PgConnection};

async fn identify(conninfo: &str) -> Result<u64, ConnError> {
    let mut c = PgConnection::connect(conninfo, &ConnectOptions::default()).await?;
    let rs = c.simple_query("IDENTIFY_SYSTEM").await?;
    assert_eq!(rs.len(), 1);
    assert_eq!(rs[0].columns.len(), 4);
    assert_eq!(rs[0].columns[0].name, "systemid");
    assert_eq!(rs[0].text(0, 1), Some("1"));
    assert_eq!(
        rs[0].bytes(0, 3),
        None,
        "dbname is NULL on a physical connection"
    );
    let id = rs[0].text(0, 0).expect("systemid").parse().expect("u64");
    c.close().await;
    Ok(id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authenticates_and_reports_errors() {
    let pg = PgCluster::start(&[]);
    let sysid = pg.system_identifier();

    // trust over TCP and over the Unix socket (host is a directory).
    assert_eq!(identify(&pg.conninfo("")).await.expect("trust"), sysid);
    let unix = format!("host={} port={} user=postgres", pg.root.display(), pg.port);
    assert_eq!(identify(&unix).await.expect("unix socket"), sysid);
    // The URI form, too.
    let uri = format!("postgresql://postgres@127.0.0.1:{}/replication", pg.port);
    assert_eq!(identify(&uri).await.expect("uri"), sysid);

    for (user, password, method) in AUTH_USERS {
        let ok = pg.conninfo(&format!("user={user} password='{password}'"));
        assert_eq!(
            identify(&ok)
                .await
                .unwrap_or_else(|e| panic!("{method}: {e}")),
            sysid
        );
        let bad = pg.conninfo(&format!("user={user} password=wrong"));
        let err = identify(&bad).await.expect_err("wrong password");
        let se = err
            .server_error()
            .unwrap_or_else(|| panic!("{method}: {err}"));
        assert_eq!(se.code, "28P01", "{method}: {se}");
        assert_eq!(se.severity, "FATAL");
        assert!(se.message.contains("authentication failed"), "{se}");
        let none = pg.conninfo(&format!("user={user}"));
        match identify(&none).await {
            Err(ConnError::Auth(m)) => assert!(m.contains("no password supplied"), "{m}"),
            other => panic!("{method} without password: {other:?}"),
        }
    }

    // The password file (passfile=), as libpq reads it.
    let (user, password, _) = AUTH_USERS[0];
    let pass = tempfile::NamedTempFile::new().expect("passfile");
    std::fs::write(
        pass.path(),
        format!("127.0.0.1:{}:*:{user}:{password}\n", pg.port),
    )
    .expect("write passfile");
    let with_file = pg.conninfo(&format!("user={user} passfile={}", pass.path().display()));
    assert_eq!(identify(&with_file).await.expect("passfile"), sysid);

    // A query error is typed and leaves the connection usable.
    let mut c = PgConnection::connect(&pg.conninfo(""), &ConnectOptions::default())
        .await
        .expect("connect");
    let err = c
        .simple_query("TIMELINE_HISTORY 99")
        .await
        .expect_err("no such timeline");
    assert_eq!(
        err.server_error().map(|e| e.severity.as_str()),
        Some("ERROR"),
        "{err:?}"
    );
    let rs = c
        .simple_query("SHOW wal_segment_size")
        .await
        .expect("still usable");
    assert_eq!(rs[0].text(0, 0), Some("16MB"));
    c.close().await;

    // Nobody listening; a refused sslmode.
    let closed = "host=127.0.0.1 port=1 user=postgres connect_timeout=2";
    assert!(matches!(
        identify(closed).await,
        Err(ConnError::Connect { .. } | ConnError::ConnectTimeout { .. })
    ));
    assert!(matches!(
        identify(&pg.conninfo("sslmode=require")).await,
        Err(ConnError::SslRequired(_))
    ));
}

//! Failover without loss: clients record every acknowledged commit against a primary with one
//! synchronous standby (`synchronous_commit = on`); the primary is killed with `kill -9` at a
//! random moment; the standby is promoted; every acknowledged commit must be on it and the
//! pgbench balances invariant must hold. The promoted standby is the next round's primary,
//! with a fresh standby made by `lockstep basebackup`.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::sync::Mutex;

use common::TestServer;
use rand::Rng;

const ROUNDS: usize = 20;
const CLIENTS: usize = 4;
const ACCOUNTS: i32 = 1000;
const TELLERS: i32 = 10;

async fn setup_schema(primary: &TestServer) {
    let c = primary.client().await;
    c.batch_execute(
        "CREATE TABLE pgbench_branches (bid int PRIMARY KEY, bbalance bigint NOT NULL);
         CREATE TABLE pgbench_tellers (tid int PRIMARY KEY, bid int, tbalance bigint NOT NULL);
         CREATE TABLE pgbench_accounts (aid int PRIMARY KEY, bid int, abalance bigint NOT NULL);
         CREATE TABLE pgbench_history (hid bigint PRIMARY KEY, tid int, bid int, aid int, delta int);
         INSERT INTO pgbench_branches VALUES (1, 0);",
    )
    .await
    .expect("schema");
    let tellers: Vec<String> = (1..=TELLERS).map(|t| format!("({t}, 1, 0)")).collect();
    c.batch_execute(&format!(
        "INSERT INTO pgbench_tellers VALUES {}",
        tellers.join(",")
    ))
    .await
    .expect("tellers");
    let accounts: Vec<String> = (1..=ACCOUNTS).map(|a| format!("({a}, 1, 0)")).collect();
    c.batch_execute(&format!(
        "INSERT INTO pgbench_accounts VALUES {}",
        accounts.join(",")
    ))
    .await
    .expect("accounts");
}

/// pgbench's TPC-B-like transaction, with a unique history id so acknowledged commits can be
/// found again. Returns Ok only when COMMIT was acknowledged.
async fn transfer(
    c: &tokio_postgres::Client,
    hid: i64,
    rng_seed: u64,
) -> Result<(), tokio_postgres::Error> {
    let aid = (rng_seed % ACCOUNTS as u64) as i32 + 1;
    let tid = (rng_seed / 7 % TELLERS as u64) as i32 + 1;
    let delta = (rng_seed % 10_001) as i32 - 5000;
    c.batch_execute("BEGIN").await?;
    c.execute(
        "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2",
        &[&(delta as i64), &aid],
    )
    .await?;
    c.execute(
        "UPDATE pgbench_tellers SET tbalance = tbalance + $1 WHERE tid = $2",
        &[&(delta as i64), &tid],
    )
    .await?;
    c.execute(
        "UPDATE pgbench_branches SET bbalance = bbalance + $1 WHERE bid = 1",
        &[&(delta as i64)],
    )
    .await?;
    c.execute(
        "INSERT INTO pgbench_history VALUES ($1, $2, 1, $3, $4)",
        &[&hid, &tid, &aid, &delta],
    )
    .await?;
    c.batch_execute("COMMIT").await
}

async fn wait_writable(server: &TestServer) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(c) = server.try_client().await {
            let r = c.query_one("SELECT pg_is_in_recovery()", &[]).await;
            if let Ok(r) = r {
                let in_recovery: bool = r.get(0);
                if !in_recovery {
                    return;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "the promoted standby did not leave recovery; log:\n{}",
            server.log_text()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_primary_loses_no_acknowledged_commit() {
    let mut primary = TestServer::init();
    primary.start();
    setup_schema(&primary).await;
    primary.set_conf("synchronous_standby_names", "s1");
    let mut next_hid: i64 = 1;
    let mut total_acked = 0usize;
    let mut total_checked = 0usize;
    let mut rng = rand::rng();

    let rounds = common::soak_rounds(ROUNDS);
    for round in 0..rounds {
        // A fresh standby of the current primary (its config names s1 as synchronous).
        let mut standby = TestServer::standby_of(&primary, "s1");
        standby.start();
        primary.reload_conf().await;
        primary
            .wait_for_standby("s1", "streaming", Some("sync"))
            .await;

        let acked: Arc<Mutex<HashSet<i64>>> = Arc::new(Mutex::new(HashSet::new()));
        let mut tasks = Vec::new();
        for client_no in 0..CLIENTS {
            let acked = acked.clone();
            let conn = primary.conn_str();
            let first = next_hid + (client_no as i64) * 1_000_000;
            tasks.push(tokio::spawn(async move {
                let Ok((c, conn)) = tokio_postgres::connect(&conn, tokio_postgres::NoTls).await
                else {
                    return;
                };
                tokio::spawn(async move {
                    let _ = conn.await;
                });
                let mut hid = first;
                loop {
                    let seed = (hid as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11;
                    match transfer(&c, hid, seed).await {
                        Ok(()) => {
                            acked.lock().expect("lock").insert(hid);
                        }
                        Err(_) => return, // the primary is gone
                    }
                    hid += 1;
                }
            }));
        }
        next_hid += (CLIENTS as i64) * 1_000_000;

        tokio::time::sleep(Duration::from_millis(rng.random_range(200..1200))).await;
        primary.kill9();
        for t in tasks {
            let _ = tokio::time::timeout(Duration::from_secs(30), t).await;
        }
        let acked: HashSet<i64> = acked.lock().expect("lock").clone();

        // Promote, alternating the SQL function and the command line.
        if round % 2 == 0 {
            let c = standby.client().await;
            c.query_one("SELECT pg_promote()", &[])
                .await
                .expect("pg_promote");
        } else {
            let out = std::process::Command::new(common::BIN)
                .args(["promote", "-D"])
                .arg(&standby.datadir)
                .output()
                .expect("lockstep promote");
            assert!(
                out.status.success(),
                "lockstep promote failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        wait_writable(&standby).await;

        let c = standby.client().await;
        let rows = c
            .query("SELECT hid FROM pgbench_history", &[])
            .await
            .expect("history");
        let present: HashSet<i64> = rows.iter().map(|r| r.get(0)).collect();
        let missing: Vec<_> = acked.difference(&present).copied().collect();
        assert!(
            missing.is_empty(),
            "round {round}: {} of {} acknowledged commits missing after failover (e.g. {:?}); standby log:\n{}",
            missing.len(),
            acked.len(),
            &missing[..missing.len().min(5)],
            standby.log_text()
        );
        let sums = c
            .query_one(
                "SELECT (SELECT sum(abalance) FROM pgbench_accounts)::bigint,
                        (SELECT sum(tbalance) FROM pgbench_tellers)::bigint,
                        (SELECT sum(bbalance) FROM pgbench_branches)::bigint,
                        (SELECT coalesce(sum(delta), 0) FROM pgbench_history)::bigint",
                &[],
            )
            .await;
        // Older servers may not support scalar subqueries; fall back to four queries.
        let (a, t, b, d): (i64, i64, i64, i64) = match sums {
            Ok(r) => (r.get(0), r.get(1), r.get(2), r.get(3)),
            Err(_) => {
                let one = |sql: &'static str| {
                    let c = &c;
                    async move {
                        let r = c.query_one(sql, &[]).await.expect(sql);
                        r.get::<_, Option<i64>>(0).unwrap_or(0)
                    }
                };
                (
                    one("SELECT sum(abalance)::bigint FROM pgbench_accounts").await,
                    one("SELECT sum(tbalance)::bigint FROM pgbench_tellers").await,
                    one("SELECT sum(bbalance)::bigint FROM pgbench_branches").await,
                    one("SELECT sum(delta)::bigint FROM pgbench_history").await,
                )
            }
        };
        assert!(
            a == t && t == b && b == d,
            "round {round}: balances disagree after failover: accounts {a}, tellers {t}, branches {b}, history {d}"
        );
        total_acked += acked.len();
        total_checked += present.len();
        eprintln!(
            "round {round}: {} acknowledged commits, all present ({} history rows)",
            acked.len(),
            present.len()
        );
        primary = standby;
    }
    eprintln!(
        "failover: {rounds} rounds, {total_acked} acknowledged commits checked, 0 missing, {total_checked} history rows checked in total"
    );
    assert!(
        total_acked > rounds,
        "the workload acknowledged almost nothing"
    );
}

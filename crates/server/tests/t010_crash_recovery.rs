//! Crash safety: every acknowledged commit survives `kill -9`, no partial transaction does.
//!
//! A pgbench-like workload (accounts, tellers, branches, history) runs from several client
//! connections; each client records the id of every transaction whose COMMIT it saw succeed.
//! The server is killed with SIGKILL at random moments — 22 rounds, two of them while a
//! checkpoint is parked between writing its snapshot and installing it, and after installing
//! it before cleaning up (failpoints) — then restarted. After every restart: every
//! acknowledged id is in `history`, and `sum(abalance) = sum(tbalance) = sum(bbalance) =
//! sum(delta)`, which a partially applied transaction would break.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use common::TestServer;
use parking_lot::Mutex;
use rand::{Rng, SeedableRng};

const ACCOUNTS: i32 = 1000;
const TELLERS: i32 = 10;
const BRANCHES: i32 = 2;
const CLIENTS: usize = 6;
const ROUNDS: usize = 22;
/// Rounds whose kill lands inside a checkpoint (one per failpoint).
const CHECKPOINT_ROUNDS: [(usize, &str); 2] = [
    (4, "checkpoint-after-snapshot"),
    (13, "checkpoint-after-control-file"),
];

async fn setup(srv: &TestServer) {
    let c = srv.client().await;
    c.batch_execute("CREATE TABLE branches (bid int PRIMARY KEY, bbalance bigint NOT NULL);
         CREATE TABLE tellers (tid int PRIMARY KEY, bid int, tbalance bigint NOT NULL);
         CREATE TABLE accounts (aid int PRIMARY KEY, bid int, abalance bigint NOT NULL);
         CREATE TABLE history (hid bigint PRIMARY KEY, tid int, bid int, aid int, delta int, mtime timestamp);")
    .await
    .expect("schema");
    for b in 1..=BRANCHES {
        c.execute("INSERT INTO branches VALUES ($1, 0)", &[&b])
            .await
            .expect("branch");
    }
    for t in 1..=TELLERS {
        c.execute(
            "INSERT INTO tellers VALUES ($1, $2, 0)",
            &[&t, &(t % BRANCHES + 1)],
        )
        .await
        .expect("teller");
    }
    let mut copy = String::new();
    for a in 1..=ACCOUNTS {
        copy.push_str(&format!(
            "INSERT INTO accounts VALUES ({a}, {}, 0);",
            a % BRANCHES + 1
        ));
    }
    c.batch_execute(&copy).await.expect("accounts");
}

/// One client: transactions until its connection breaks. Returns nothing; acknowledged ids
/// are pushed to `acked`.
async fn client_loop(
    srv_conn: String,
    next_id: Arc<AtomicI64>,
    acked: Arc<Mutex<Vec<i64>>>,
    seed: u64,
    stop: Arc<AtomicBool>,
) {
    let Ok((mut client, conn)) = tokio_postgres::connect(&srv_conn, tokio_postgres::NoTls).await
    else {
        return;
    };
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    while !stop.load(Ordering::Relaxed) {
        let hid = next_id.fetch_add(1, Ordering::Relaxed);
        let aid: i32 = rng.random_range(1..=ACCOUNTS);
        let tid: i32 = rng.random_range(1..=TELLERS);
        let bid: i32 = rng.random_range(1..=BRANCHES);
        let delta: i32 = rng.random_range(-5000..=5000);
        let result: Result<(), tokio_postgres::Error> = async {
            let tx = client.transaction().await?;
            tx.execute(
                "UPDATE accounts SET abalance = abalance + $1 WHERE aid = $2",
                &[&i64::from(delta), &aid],
            )
            .await?;
            tx.query("SELECT abalance FROM accounts WHERE aid = $1", &[&aid])
                .await?;
            tx.execute(
                "UPDATE tellers SET tbalance = tbalance + $1 WHERE tid = $2",
                &[&i64::from(delta), &tid],
            )
            .await?;
            tx.execute(
                "UPDATE branches SET bbalance = bbalance + $1 WHERE bid = $2",
                &[&i64::from(delta), &bid],
            )
            .await?;
            tx.execute(
                "INSERT INTO history (hid, tid, bid, aid, delta, mtime) VALUES ($1, $2, $3, $4, $5, CURRENT_TIMESTAMP)",
                &[&hid, &tid, &bid, &aid, &delta],
            )
            .await?;
            tx.commit().await
        }
        .await;
        match result {
            Ok(()) => acked.lock().push(hid),
            // The server is gone (or the commit's outcome is unknown): stop.
            Err(_) => return,
        }
    }
}

async fn verify(srv: &TestServer, acked: &[i64], round: usize) -> usize {
    let c = srv.client().await;
    let rows = c
        .query("SELECT hid FROM history", &[])
        .await
        .expect("read history");
    let present: HashSet<i64> = rows.iter().map(|r| r.get::<_, i64>(0)).collect();
    let missing: Vec<i64> = acked
        .iter()
        .copied()
        .filter(|h| !present.contains(h))
        .collect();
    assert!(
        missing.is_empty(),
        "round {round}: {} acknowledged commits missing after restart, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    let sum = |q: &'static str| {
        let c = &c;
        async move {
            c.query_one(q, &[])
                .await
                .expect("sum")
                .get::<_, Option<rust_decimal::Decimal>>(0)
                .unwrap_or_default()
        }
    };
    let a = sum("SELECT sum(abalance) FROM accounts").await;
    let t = sum("SELECT sum(tbalance) FROM tellers").await;
    let b = sum("SELECT sum(bbalance) FROM branches").await;
    let d = c
        .query_one("SELECT sum(delta) FROM history", &[])
        .await
        .expect("sum delta")
        .get::<_, Option<i64>>(0)
        .unwrap_or_default();
    let d = rust_decimal::Decimal::from(d);
    assert!(
        a == t && t == b && b == d,
        "round {round}: balances disagree: accounts {a}, tellers {t}, branches {b}, history {d}"
    );
    present.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_commits_survive_kill_9() {
    let mut srv = TestServer::init_with(&["--wal-segsize", "1"]);
    let failpoints = CHECKPOINT_ROUNDS
        .iter()
        .map(|(_, f)| format!("{f}=sleep(1500)"))
        .collect::<Vec<_>>()
        .join(",");
    srv.env.push(("LOCKSTEP_FAILPOINTS".into(), failpoints));
    srv.start();
    setup(&srv).await;

    let next_id = Arc::new(AtomicI64::new(1));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x010C_57E9);
    let mut checked_total = 0;
    let rounds = common::soak_rounds(ROUNDS);
    for round in 0..rounds {
        let stop = Arc::new(AtomicBool::new(false));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|i| {
                tokio::spawn(client_loop(
                    srv.conn_str(),
                    next_id.clone(),
                    acked.clone(),
                    (round * 100 + i) as u64,
                    stop.clone(),
                ))
            })
            .collect();
        if let Some((_, fp)) = CHECKPOINT_ROUNDS.iter().find(|(r, _)| *r == round) {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let log_from = srv.log_text().len();
            let c = srv.client().await;
            let checkpoint = tokio::spawn(async move { c.batch_execute("CHECKPOINT").await });
            let needle = format!("failpoint \"{fp}\" reached");
            let srv_ref = &srv;
            assert!(
                tokio::task::block_in_place(|| srv_ref.wait_for_log(
                    &needle,
                    log_from,
                    Duration::from_secs(30)
                )),
                "checkpoint never reached {fp}"
            );
            srv.kill9();
            let _ = checkpoint.await;
        } else {
            let ms = rng.random_range(50..700);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            srv.kill9();
        }
        stop.store(true, Ordering::Relaxed);
        for c in clients {
            let _ = c.await;
        }
        srv.start();
        let acked_now: Vec<i64> = acked.lock().clone();
        let present = verify(&srv, &acked_now, round).await;
        assert!(present >= acked_now.len());
        checked_total = acked_now.len();
    }
    assert!(
        checked_total > 500,
        "the workload committed too little ({checked_total}) to mean much"
    );
    eprintln!(
        "crash test: {rounds} kill -9 rounds, {checked_total} acknowledged commits checked, 0 missing"
    );
    srv.stop();
}

/// Sequences after `kill -9`: a value a client saw (in a committed row, or returned by a
/// committed `SELECT nextval`) is never handed out again, whether the sequence's WAL record
/// was its own, the creating transaction's commit, or inside a checkpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequences_never_repeat_a_value_a_client_saw() {
    let mut srv = TestServer::init();
    srv.start();
    let c = srv.client().await;
    c.batch_execute(
        "CREATE TABLE ev (id bigserial PRIMARY KEY, round int);
         CREATE SEQUENCE s INCREMENT BY 7;
         BEGIN;
         CREATE TABLE made (id serial PRIMARY KEY, v int);
         INSERT INTO made (v) VALUES (1), (2), (3);
         COMMIT;",
    )
    .await
    .expect("setup");
    drop(c);
    let mut seen_s = 0i64;
    let mut rows = 0i64;
    for round in 0..6i32 {
        let c = srv.client().await;
        for _ in 0..40 {
            c.execute("INSERT INTO ev (round) VALUES ($1)", &[&round])
                .await
                .expect("insert");
            rows += 1;
        }
        c.execute("INSERT INTO made (v) VALUES ($1)", &[&round])
            .await
            .expect("insert made");
        if round == 3 {
            c.batch_execute("CHECKPOINT").await.expect("checkpoint");
        }
        // Last before the kill, a transaction that writes nothing but takes a value: its
        // commit must have waited for the sequence's record.
        let v: i64 = c
            .query_one("SELECT nextval('s')", &[])
            .await
            .expect("nextval")
            .get(0);
        assert!(v > seen_s, "round {round}: nextval {v} after {seen_s}");
        seen_s = v;
        drop(c);
        srv.kill9();
        srv.start();
    }
    let c = srv.client().await;
    // Inserting goes on without a duplicate key: the serial restarted past every used id.
    for _ in 0..10 {
        c.execute("INSERT INTO ev (round) VALUES (99)", &[])
            .await
            .expect("insert after crashes");
        c.execute("INSERT INTO made (v) VALUES (99)", &[])
            .await
            .expect("insert after crashes");
    }
    let n: i64 = c
        .query_one("SELECT count(*) FROM ev", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(n, rows + 10);
    let v: i64 = c
        .query_one("SELECT nextval('s')", &[])
        .await
        .expect("nextval")
        .get(0);
    assert!(v > seen_s, "after the crashes nextval {v}, seen {seen_s}");
    srv.stop();
}

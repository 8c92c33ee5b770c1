//! CPU cost of the SQL layer on pgbench's transaction, without the network and the WAL (the
//! in-memory log acknowledges at once). Not a benchmark of the server: a guard against gross
//! regressions in parsing, planning and execution. Run with
//! `cargo test --release -p sql --test perf -- --ignored --nocapture`.

mod common;

use std::time::Instant;

use common::{Collect, ok, open, q};
use sql::Session;

const ACCOUNTS: i64 = 100_000;

async fn init(s: &mut Session) {
    for ddl in [
        "create table pgbench_history(tid int,bid int,aid    int,delta int,mtime timestamp,filler char(22))",
        "create table pgbench_tellers(tid int not null,bid int,tbalance int,filler char(84)) with (fillfactor=100)",
        "create table pgbench_accounts(aid    int not null,bid int,abalance int,filler char(84)) with (fillfactor=100)",
        "create table pgbench_branches(bid int not null,bbalance int,filler char(88)) with (fillfactor=100)",
    ] {
        ok(s, ddl).await;
    }
    ok(s, "insert into pgbench_branches(bid,bbalance) values(1,0)").await;
    for t in 1..=10 {
        ok(
            s,
            &format!("insert into pgbench_tellers(tid,bid,tbalance) values ({t},1,0)"),
        )
        .await;
    }
    let stmts = s
        .parse_batch("copy pgbench_accounts from stdin")
        .expect("copy");
    let mut sink = Collect::default();
    s.execute(&stmts[0], &[], &mut sink).await.expect("copy");
    for aid in 1..=ACCOUNTS {
        s.copy_data(format!("{aid}\t1\t0\t\n").as_bytes())
            .await
            .expect("data");
    }
    s.copy_done().await.expect("done");
    s.end_implicit().await.expect("commit");
    for (t, c) in [
        ("pgbench_branches", "bid"),
        ("pgbench_tellers", "tid"),
        ("pgbench_accounts", "aid"),
    ] {
        ok(s, &format!("alter table {t} add primary key ({c})")).await;
    }
}

#[tokio::test]
#[ignore]
async fn pgbench_transaction_cost() {
    let (engine, _) = common::new_engine();
    let mut s = open(&engine);
    init(&mut s).await;
    const TXNS: i64 = 20_000;
    let started = Instant::now();
    for i in 0..TXNS {
        let aid = (i * 7919) % ACCOUNTS + 1;
        let tid = i % 10 + 1;
        let delta = i % 5000 - 2500;
        for sql in [
            "BEGIN;".to_owned(),
            format!("UPDATE pgbench_accounts SET abalance = abalance + {delta} WHERE aid = {aid};"),
            format!("SELECT abalance FROM pgbench_accounts WHERE aid = {aid};"),
            format!("UPDATE pgbench_tellers SET tbalance = tbalance + {delta} WHERE tid = {tid};"),
            format!("UPDATE pgbench_branches SET bbalance = bbalance + {delta} WHERE bid = 1;"),
            format!(
                "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ({tid}, 1, {aid}, {delta}, CURRENT_TIMESTAMP);"
            ),
            "END;".to_owned(),
        ] {
            let r = q(&mut s, &sql).await;
            assert!(r.outcome.is_ok(), "{sql}: {:?}", r.outcome);
        }
    }
    let simple = started.elapsed();
    println!(
        "simple protocol: {:.1} us per transaction",
        simple.as_secs_f64() * 1e6 / TXNS as f64
    );

    let texts = [
        "BEGIN;",
        "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2;",
        "SELECT abalance FROM pgbench_accounts WHERE aid = $1;",
        "UPDATE pgbench_tellers SET tbalance = tbalance + $1 WHERE tid = $2;",
        "UPDATE pgbench_branches SET bbalance = bbalance + $1 WHERE bid = $2;",
        "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP);",
        "END;",
    ];
    let prepared: Vec<_> = texts
        .iter()
        .map(|t| s.prepare(t, &[]).expect("prepare"))
        .collect();
    let started = Instant::now();
    for i in 0..TXNS {
        let aid = ((i * 7919) % ACCOUNTS + 1).to_string();
        let tid = (i % 10 + 1).to_string();
        let delta = (i % 5000 - 2500).to_string();
        let params: [Vec<&str>; 7] = [
            vec![],
            vec![&delta, &aid],
            vec![&aid],
            vec![&delta, &tid],
            vec![&delta, "1"],
            vec![&tid, "1", &aid, &delta],
            vec![],
        ];
        for (p, vals) in prepared.iter().zip(params.iter()) {
            let raw: Vec<Option<&[u8]>> = vals.iter().map(|v| Some(v.as_bytes())).collect();
            let bound = s.bind_params(p, &[], &raw).expect("bind");
            let mut sink = Collect::default();
            s.execute(p, &bound, &mut sink).await.expect("execute");
            s.end_implicit().await.expect("sync");
        }
    }
    let prep = started.elapsed();
    println!(
        "prepared protocol: {:.1} us per transaction",
        prep.as_secs_f64() * 1e6 / TXNS as f64
    );
}

//! Every statement pgbench 15 sends, exactly as it sends it (see
//! /work/shared/reference/crates.md §1), in simple form (literals, trailing `;`), extended
//! form (`$1..$4`, no parameter types, one Parse/Bind/Execute/Sync each) and prepared form
//! (Parse once, Bind/Execute many), followed by TPC-B's balance invariant.

mod common;

use common::{Collect, extended, ok, open, q, rows, simple};
use sql::{ExecOutcome, Session};

const ACCOUNTS: i64 = 1000;
const TELLERS: i64 = 10;

async fn init(s: &mut Session) {
    let r = simple(
        s,
        "drop table if exists pgbench_accounts, pgbench_branches, pgbench_history, pgbench_tellers",
    )
    .await;
    assert!(r.iter().all(|r| r.outcome.is_ok()), "{r:?}");
    for ddl in [
        "create table pgbench_history(tid int,bid int,aid    int,delta int,mtime timestamp,filler char(22))",
        "create table pgbench_tellers(tid int not null,bid int,tbalance int,filler char(84)) with (fillfactor=100)",
        "create table pgbench_accounts(aid    int not null,bid int,abalance int,filler char(84)) with (fillfactor=100)",
        "create table pgbench_branches(bid int not null,bbalance int,filler char(88)) with (fillfactor=100)",
    ] {
        assert_eq!(ok(s, ddl).await, "CREATE TABLE");
    }
    assert_eq!(ok(s, "begin").await, "BEGIN");
    assert_eq!(
        ok(
            s,
            "truncate table pgbench_accounts, pgbench_branches, pgbench_history, pgbench_tellers"
        )
        .await,
        "TRUNCATE TABLE"
    );
    assert_eq!(
        ok(s, "insert into pgbench_branches(bid,bbalance) values(1,0)").await,
        "INSERT 0 1"
    );
    for t in 1..=TELLERS {
        let sql = format!("insert into pgbench_tellers(tid,bid,tbalance) values ({t},1,0)");
        assert_eq!(ok(s, &sql).await, "INSERT 0 1");
    }
    let stmts = s
        .parse_batch("copy pgbench_accounts from stdin with (freeze on)")
        .expect("parse copy");
    let mut sink = Collect::default();
    let o = s.execute(&stmts[0], &[], &mut sink).await.expect("copy");
    assert_eq!(o, ExecOutcome::CopyIn { columns: 4 });
    for aid in 1..=ACCOUNTS {
        let line = format!("{aid}\t1\t0\t\n");
        s.copy_data(line.as_bytes()).await.expect("copy data");
    }
    s.copy_data(b"\\.\n").await.expect("end marker");
    assert_eq!(
        s.copy_done().await.expect("copy done"),
        format!("COPY {ACCOUNTS}")
    );
    s.end_implicit().await.expect("end");
    assert_eq!(ok(s, "commit").await, "COMMIT");
    for t in [
        "pgbench_branches",
        "pgbench_tellers",
        "pgbench_accounts",
        "pgbench_history",
    ] {
        assert_eq!(ok(s, &format!("vacuum analyze {t}")).await, "VACUUM");
    }
    for (t, c) in [
        ("pgbench_branches", "bid"),
        ("pgbench_tellers", "tid"),
        ("pgbench_accounts", "aid"),
    ] {
        assert_eq!(
            ok(s, &format!("alter table {t} add primary key ({c})")).await,
            "ALTER TABLE"
        );
    }
}

async fn run_setup(s: &mut Session) {
    assert_eq!(
        rows(s, "select count(*) from pgbench_branches").await,
        vec!["1"]
    );
    // pgbench ignores an error from its partition probe.
    let r = q(s, "select o.n, p.partstrat, pg_catalog.count(i.inhparent) from pg_catalog.pg_class as c join pg_catalog.pg_namespace as n on (n.oid = c.relnamespace) cross join lateral (select pg_catalog.array_position(pg_catalog.current_schemas(true), n.nspname)) as o(n) left join pg_catalog.pg_partitioned_table as p on (p.partrelid = c.oid) left join pg_catalog.pg_inherits as i on (c.oid = i.inhparent) where c.relname = 'pgbench_accounts' and o.n is not null group by 1, 2 order by 1 asc limit 1").await;
    assert!(r.outcome.is_err(), "{r:?}");
    assert_eq!(ok(s, "vacuum pgbench_branches").await, "VACUUM");
    assert_eq!(ok(s, "vacuum pgbench_tellers").await, "VACUUM");
    assert_eq!(ok(s, "truncate pgbench_history").await, "TRUNCATE TABLE");
}

/// Deterministic pseudo-random numbers (no dependency on rand's stream).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, lo: i64, hi: i64) -> i64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        lo + ((self.0 >> 33) as i64).rem_euclid(hi - lo + 1)
    }
}

async fn tpcb_simple(s: &mut Session, rng: &mut Lcg) -> i64 {
    let aid = rng.next(1, ACCOUNTS);
    let tid = rng.next(1, TELLERS);
    let delta = rng.next(-5000, 5000);
    let script = [
        "BEGIN;".to_owned(),
        format!("UPDATE pgbench_accounts SET abalance = abalance + {delta} WHERE aid = {aid};"),
        format!("SELECT abalance FROM pgbench_accounts WHERE aid = {aid};"),
        format!("UPDATE pgbench_tellers SET tbalance = tbalance + {delta} WHERE tid = {tid};"),
        format!("UPDATE pgbench_branches SET bbalance = bbalance + {delta} WHERE bid = 1;"),
        format!(
            "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ({tid}, 1, {aid}, {delta}, CURRENT_TIMESTAMP);"
        ),
        "END;".to_owned(),
    ];
    let expect = [
        "BEGIN",
        "UPDATE 1",
        "SELECT 1",
        "UPDATE 1",
        "UPDATE 1",
        "INSERT 0 1",
        "COMMIT",
    ];
    for (sql, tag) in script.iter().zip(expect) {
        let r = q(s, sql).await;
        assert_eq!(r.tag(), tag, "{sql}");
    }
    delta
}

const EXTENDED: [&str; 7] = [
    "BEGIN;",
    "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2;",
    "SELECT abalance FROM pgbench_accounts WHERE aid = $1;",
    "UPDATE pgbench_tellers SET tbalance = tbalance + $1 WHERE tid = $2;",
    "UPDATE pgbench_branches SET bbalance = bbalance + $1 WHERE bid = $2;",
    "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP);",
    "END;",
];

fn extended_params(aid: i64, tid: i64, delta: i64) -> [Vec<String>; 7] {
    let (a, t, d) = (aid.to_string(), tid.to_string(), delta.to_string());
    [
        vec![],
        vec![d.clone(), a.clone()],
        vec![a.clone()],
        vec![d.clone(), t.clone()],
        vec![d.clone(), "1".into()],
        vec![t, "1".into(), a, d],
        vec![],
    ]
}

async fn tpcb_extended(s: &mut Session, rng: &mut Lcg) -> i64 {
    let aid = rng.next(1, ACCOUNTS);
    let tid = rng.next(1, TELLERS);
    let delta = rng.next(-5000, 5000);
    let params = extended_params(aid, tid, delta);
    for (sql, p) in EXTENDED.iter().zip(params.iter()) {
        let p: Vec<Option<&str>> = p.iter().map(|x| Some(x.as_str())).collect();
        let r = extended(s, sql, &p).await;
        assert!(r.outcome.is_ok(), "{sql}: {:?}", r.outcome);
    }
    delta
}

async fn balances(s: &mut Session) -> Vec<String> {
    vec![
        rows(s, "select sum(abalance) from pgbench_accounts").await[0].clone(),
        rows(s, "select sum(tbalance) from pgbench_tellers").await[0].clone(),
        rows(s, "select sum(bbalance) from pgbench_branches").await[0].clone(),
        rows(s, "select sum(delta) from pgbench_history").await[0].clone(),
    ]
}

#[tokio::test]
async fn pgbench_init_and_simple_extended_prepared_runs_keep_balances() {
    let (engine, _) = common::new_engine();
    let mut s = open(&engine);
    init(&mut s).await;
    assert_eq!(
        rows(&mut s, "select count(*) from pgbench_accounts").await,
        vec![ACCOUNTS.to_string()]
    );
    run_setup(&mut s).await;

    let mut rng = Lcg(42);
    let mut total = 0i64;
    for _ in 0..200 {
        total += tpcb_simple(&mut s, &mut rng).await;
    }
    for _ in 0..200 {
        total += tpcb_extended(&mut s, &mut rng).await;
    }
    // Prepared mode: Parse once per statement, then Bind/Execute/Sync per transaction.
    let prepared: Vec<_> = EXTENDED
        .iter()
        .map(|sql| s.prepare(sql, &[]).expect("prepare"))
        .collect();
    assert_eq!(
        prepared[1].param_types(),
        &[base::DataType::Int4, base::DataType::Int4]
    );
    assert_eq!(prepared[5].param_types().len(), 4);
    let d = s.describe(&prepared[2]).expect("describe");
    let fields = d.fields.expect("fields");
    assert_eq!(fields[0].name, "abalance");
    assert_eq!(fields[0].data_type, base::DataType::Int4);
    assert!(fields[0].table_oid >= 16384);
    assert_eq!(fields[0].column_id, 3);
    for _ in 0..200 {
        let aid = rng.next(1, ACCOUNTS);
        let tid = rng.next(1, TELLERS);
        let delta = rng.next(-5000, 5000);
        total += delta;
        let params = extended_params(aid, tid, delta);
        for (p, vals) in prepared.iter().zip(params.iter()) {
            let raw: Vec<Option<&[u8]>> = vals.iter().map(|v| Some(v.as_bytes())).collect();
            let bound = s.bind_params(p, &[], &raw).expect("bind");
            let mut sink = Collect::default();
            s.execute(p, &bound, &mut sink).await.expect("execute");
            s.end_implicit().await.expect("sync");
        }
    }
    let b = balances(&mut s).await;
    assert_eq!(b, vec![total.to_string(); 4], "balance invariant");
    assert_eq!(
        rows(&mut s, "select count(*) from pgbench_history").await,
        vec!["600"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_pgbench_clients_keep_balances() {
    let (engine, _) = common::new_engine();
    let mut s = open(&engine);
    init(&mut s).await;
    run_setup(&mut s).await;
    let mut handles = Vec::new();
    for c in 0..4u64 {
        let engine = engine.clone();
        handles.push(tokio::spawn(async move {
            let mut s = open(&engine);
            let mut rng = Lcg(c + 7);
            let mut total = 0;
            for i in 0..150 {
                total += if i % 2 == 0 {
                    tpcb_simple(&mut s, &mut rng).await
                } else {
                    tpcb_extended(&mut s, &mut rng).await
                };
            }
            total
        }));
    }
    let mut total = 0;
    for h in handles {
        total += h.await.expect("client");
    }
    assert_eq!(balances(&mut s).await, vec![total.to_string(); 4]);
}

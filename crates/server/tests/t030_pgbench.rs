//! pgbench 15, unmodified: initialisation at scale 10, then 8 clients for 10 s in each of the
//! simple, extended and prepared protocols. No transaction may fail, and afterwards
//! `sum(abalance) = sum(tbalance) = sum(bbalance) = sum(delta)` and `pgbench_history` holds
//! exactly the transactions pgbench reported.

mod common;

use common::TestServer;

fn field(out: &str, prefix: &str) -> Option<i64> {
    out.lines()
        .find_map(|l| l.trim().strip_prefix(prefix))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

async fn check_invariant(srv: &TestServer, expected_history: i64) {
    let c = srv.client().await;
    let row = c
        .query_one(
            "SELECT (SELECT sum(abalance) FROM pgbench_accounts)::text,
                    (SELECT sum(tbalance) FROM pgbench_tellers)::text,
                    (SELECT sum(bbalance) FROM pgbench_branches)::text,
                    (SELECT coalesce(sum(delta), 0) FROM pgbench_history)::text,
                    (SELECT count(*) FROM pgbench_history)",
            &[],
        )
        .await;
    let (a, t, b, d, n): (String, String, String, String, i64) = match row {
        Ok(r) => (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)),
        // Scalar subqueries may be unsupported: ask one table at a time.
        Err(_) => {
            let one = |q: &'static str| {
                let c = &c;
                async move {
                    c.simple_query(q)
                        .await
                        .expect(q)
                        .into_iter()
                        .find_map(|m| match m {
                            tokio_postgres::SimpleQueryMessage::Row(r) => {
                                r.get(0).map(str::to_owned)
                            }
                            _ => None,
                        })
                        .unwrap_or_default()
                }
            };
            (
                one("SELECT sum(abalance) FROM pgbench_accounts").await,
                one("SELECT sum(tbalance) FROM pgbench_tellers").await,
                one("SELECT sum(bbalance) FROM pgbench_branches").await,
                one("SELECT coalesce(sum(delta), 0) FROM pgbench_history").await,
                one("SELECT count(*) FROM pgbench_history")
                    .await
                    .parse()
                    .unwrap_or(-1),
            )
        }
    };
    assert!(
        a == t && t == b && b == d,
        "balances disagree: {a} {t} {b} {d}"
    );
    assert_eq!(
        n, expected_history,
        "pgbench_history rows vs transactions reported"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgbench_in_three_protocols_keeps_the_invariant() {
    let mut srv = TestServer::init();
    srv.start();
    let init = srv.tool("pgbench", &["-i", "-s", "10", "postgres"]);
    assert!(
        init.status.success(),
        "pgbench -i failed:\n{}\n{}\nserver log:\n{}",
        String::from_utf8_lossy(&init.stdout),
        String::from_utf8_lossy(&init.stderr),
        srv.log_text()
    );
    let mut total = 0;
    for mode in ["simple", "extended", "prepared"] {
        // -n: no vacuum/truncate between runs, so history accumulates with the balances.
        let out = srv.tool(
            "pgbench",
            &[
                "-n", "-M", mode, "-c", "8", "-j", "2", "-T", "10", "postgres",
            ],
        );
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success(),
            "pgbench -M {mode} failed:\n{text}\n{}",
            srv.log_text()
        );
        let done = field(&text, "number of transactions actually processed:")
            .unwrap_or_else(|| panic!("no transaction count in:\n{text}"));
        let failed = field(&text, "number of failed transactions:").unwrap_or(0);
        assert_eq!(failed, 0, "-M {mode}:\n{text}");
        assert!(done > 0, "-M {mode}: nothing processed:\n{text}");
        total += done;
        eprintln!("pgbench -M {mode}: {done} transactions, 0 failed");
        check_invariant(&srv, total).await;
    }
    srv.stop();
}

#!/usr/bin/env bash
# Compares lockstep with PostgreSQL 15 on the same machine with the same pgbench.
#
# Both servers run with fsync on and synchronous_commit = on, each in a fresh temporary
# directory on its own port. Each is loaded with `pgbench -i -s $SCALE`; then the same
# `pgbench -M prepared -T $DURATION` runs against each, interleaved (PG, lockstep, PG,
# lockstep, ...) for $ROUNDS rounds at each client count, so slow drifts of the machine hit
# both alike. Reported: median TPS over rounds, median and p99 latency over every transaction
# of every round (from pgbench's per-transaction log), and lockstep/PostgreSQL ratios. Also
# lockstep's peak RSS after loading.
#
# Transport: by default pgbench connects over loopback TCP, as a client on another machine
# would; TRANSPORT=unix uses each server's Unix-domain socket (what pgbench and psql do when
# no host is given). Both servers always get the same transport; replication between primary
# and standby is TCP either way. The kernel's per-message cost is a large part of a lockstep
# transaction, so the ratios differ between the two: quote both.
#
# With MODE=replica each side is a primary plus one synchronous standby on the same machine:
# PostgreSQL's standby is made with `pg_basebackup -R` and named in synchronous_standby_names;
# lockstep's with `lockstep basebackup -R`. Every commit then waits for the standby's flush
# (synchronous_commit = on). At 1 client, lockstep also runs with synchronous_commit = local
# in the same interleaving ("ls-local"), which gives lockstep's own sync-vs-local ratio: the
# price of replication when WAL is shipped in parallel with the local flush.
#
# CPU: around every run the script also reads how much CPU each side's server processes used
# (from /proc: every live process of the server's tree plus the children the postmaster has
# reaped, standby included in MODE=replica) and how much pgbench itself used, and prints both
# per transaction with the throughput they allow on this machine's cores. At 32 clients both
# servers keep the cores busy, so this shows where each one's ceiling is and how much of it
# pgbench, which shares the machine, takes.
#
# Usage: bench/pgbench-compare.sh            (defaults: ROUNDS=3 DURATION=15 SCALE=10 CLIENTS="1 32")
#        ROUNDS=5 DURATION=20 CLIENTS="1 8 32" bench/pgbench-compare.sh
#        MODE=replica bench/pgbench-compare.sh
#        TRANSPORT=unix bench/pgbench-compare.sh  (Unix-domain sockets instead of loopback TCP)
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-15}
SCALE=${SCALE:-10}
CLIENTS=${CLIENTS:-"1 32"}
MODE=${MODE:-single}
TRANSPORT=${TRANSPORT:-tcp}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
LOCKSTEP=${LOCKSTEP:-$ROOT/target/release/lockstep}

if [ ! -x "$LOCKSTEP" ] || [ -n "${REBUILD:-}" ]; then
  (cd "$ROOT" && cargo build --release --bin lockstep >&2)
fi
command -v pgbench >/dev/null || { echo "pgbench not found (apt-get install postgresql-client-15)" >&2; exit 1; }
[ -x "$PGBIN/postgres" ] || { echo "PostgreSQL 15 server not found in $PGBIN (apt-get install postgresql-15)" >&2; exit 1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

WORK=$(mktemp -d /tmp/lockstep-bench.XXXXXX)
chmod 755 "$WORK"
PG_PORT=$(free_port)
LS_PORT=$(free_port)
PG_STANDBY_PORT=$(free_port)
LS_STANDBY_PORT=$(free_port)
LS_PID=""
LS_STANDBY_PID=""
cleanup() {
  set +e
  [ -n "$LS_PID" ] && kill -INT "$LS_PID" 2>/dev/null && wait "$LS_PID" 2>/dev/null
  [ -n "$LS_STANDBY_PID" ] && kill -INT "$LS_STANDBY_PID" 2>/dev/null && wait "$LS_STANDBY_PID" 2>/dev/null
  for d in pg pg-standby; do
    if [ -f "$WORK/$d/postmaster.pid" ]; then
      as_postgres "$PGBIN/pg_ctl" -D "$WORK/$d" -m immediate stop >/dev/null 2>&1
    fi
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "== setting up PostgreSQL 15 on port $PG_PORT and lockstep on port $LS_PORT in $WORK" >&2
mkdir -p "$WORK/pg" "$WORK/pglog"
[ "$(id -u)" = 0 ] && chown postgres "$WORK/pg" "$WORK/pglog"
as_postgres "$PGBIN/initdb" -D "$WORK/pg" -A trust -U postgres >/dev/null
as_postgres "$PGBIN/pg_ctl" -D "$WORK/pg" -l "$WORK/pglog/pg.log" -w start -o \
  "-p $PG_PORT -k $WORK/pglog -c listen_addresses=127.0.0.1 -c fsync=on -c synchronous_commit=on -c max_connections=100 -c shared_buffers=512MB" >/dev/null

"$LOCKSTEP" init -D "$WORK/ls" >/dev/null
mkdir -p "$WORK/lssock"
"$LOCKSTEP" start -D "$WORK/ls" -c port="$LS_PORT" -c listen_addresses=127.0.0.1 -c unix_socket_directories="$WORK/lssock" \
  -c fsync=on -c synchronous_commit=on -c max_connections=100 2>"$WORK/ls.log" &
LS_PID=$!
for _ in $(seq 100); do pg_isready -q -h 127.0.0.1 -p "$LS_PORT" && break; sleep 0.1; done

if [ "$MODE" = replica ]; then
  echo "== making synchronous standbys (PostgreSQL on $PG_STANDBY_PORT, lockstep on $LS_STANDBY_PORT)" >&2
  mkdir -m 700 "$WORK/pg-standby"; [ "$(id -u)" = 0 ] && chown postgres "$WORK/pg-standby"
  as_postgres "$PGBIN/pg_basebackup" -h 127.0.0.1 -p "$PG_PORT" -U postgres -D "$WORK/pg-standby" -R -X stream -c fast
  as_postgres "$PGBIN/pg_ctl" -D "$WORK/pg-standby" -l "$WORK/pglog/pg-standby.log" -w start -o \
    "-p $PG_STANDBY_PORT -k $WORK/pglog -c listen_addresses=127.0.0.1 -c fsync=on -c cluster_name=standby1 -c shared_buffers=512MB" >/dev/null
  as_postgres "$PGBIN/psql" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -c "ALTER SYSTEM SET synchronous_standby_names = 'standby1'" -c "SELECT pg_reload_conf()" >/dev/null
  "$LOCKSTEP" basebackup -d "host=127.0.0.1 port=$LS_PORT user=postgres application_name=standby1" -D "$WORK/ls-standby" -R >/dev/null
  "$LOCKSTEP" start -D "$WORK/ls-standby" -c port="$LS_STANDBY_PORT" -c listen_addresses=127.0.0.1 \
    -c fsync=on 2>"$WORK/ls-standby.log" &
  LS_STANDBY_PID=$!
  psql -q -h 127.0.0.1 -p "$LS_PORT" -U postgres -c "ALTER SYSTEM SET synchronous_standby_names = 'standby1'" -c "SELECT pg_reload_conf()" postgres >/dev/null
  for name in pg ls; do
    port=$PG_PORT; [ $name = ls ] && port=$LS_PORT
    for _ in $(seq 300); do
      st=$(psql -Atq -h 127.0.0.1 -p "$port" -U postgres -c "SELECT sync_state FROM pg_stat_replication WHERE application_name = 'standby1' AND state = 'streaming'" postgres 2>/dev/null || true)
      [ "$st" = sync ] && break; sleep 0.2
    done
    if [ "$st" != sync ]; then
      echo "$name standby did not become synchronous; last log lines:" >&2
      tail -n 5 "$WORK/ls.log" "$WORK/ls-standby.log" "$WORK/pglog/pg-standby.log" >&2 2>/dev/null
      exit 1
    fi
  done
fi

# TRANSPORT=unix runs pgbench over each server's Unix-domain socket (pgbench's and psql's
# default when no host is given); tcp over loopback TCP. Set-up always uses TCP.
PG_HOST=127.0.0.1; LS_HOST=127.0.0.1
if [ "$TRANSPORT" = unix ]; then PG_HOST=$WORK/pglog; LS_HOST=$WORK/lssock; fi
PG_CONN=(-h "$PG_HOST" -p "$PG_PORT" -U postgres postgres)
LS_CONN=(-h "$LS_HOST" -p "$LS_PORT" -U postgres postgres)

echo "== pgbench -i -s $SCALE" >&2
pgbench -i -q -s "$SCALE" "${PG_CONN[@]}" >/dev/null 2>&1
t0=$(date +%s.%N)
pgbench -i -q -s "$SCALE" "${LS_CONN[@]}" >/dev/null 2>&1
t1=$(date +%s.%N)
LS_LOAD_S=$(python3 -c "print(f'{$t1-$t0:.1f}')")
LS_RSS_KB=$(awk '/VmHWM/ {print $2}' "/proc/$LS_PID/status")

HZ=$(getconf CLK_TCK)
# CPU ticks used so far by the process tree rooted at $1: every live process's user+system
# time, plus the root's reaped children (PostgreSQL's backends exit when pgbench disconnects
# and the postmaster reaps them, which moves their time into its cutime/cstime).
tree_ticks() {
  python3 - "$1" <<'PY'
import os, sys
root = int(sys.argv[1])
stat = {}
for d in os.listdir("/proc"):
    if d.isdigit():
        try:
            raw = open(f"/proc/{d}/stat").read()
        except OSError:
            continue
        f = raw[raw.rindex(")") + 2:].split()
        stat[int(d)] = (int(f[1]), int(f[11]) + int(f[12]), int(f[13]) + int(f[14]))
tree, total = {root}, 0
changed = True
while changed:
    changed = False
    for pid, (ppid, _, _) in stat.items():
        if ppid in tree and pid not in tree:
            tree.add(pid); changed = True
for pid in tree:
    if pid in stat:
        total += stat[pid][1]
total += stat.get(root, (0, 0, 0))[2]
print(total)
PY
}
server_ticks() { # name -> CPU ticks of that side's servers (primary and, in replica mode, standby)
  local t=0 pid
  if [ "$1" = pg ]; then
    for d in pg pg-standby; do
      [ -f "$WORK/$d/postmaster.pid" ] || continue
      pid=$(head -n 1 "$WORK/$d/postmaster.pid")
      t=$((t + $(tree_ticks "$pid")))
    done
  else
    for pid in $LS_PID $LS_STANDBY_PID; do t=$((t + $(tree_ticks "$pid"))); done
  fi
  echo "$t"
}

# Before every run both sides checkpoint (standbys too) and the kernel writes back what is
# dirty, so no run pays for writes the other server, or its own earlier run, deferred: an
# idle server's background writeback (PostgreSQL's checkpointer spreads its writes over
# minutes; lockstep's periodic snapshot) otherwise lands in the middle of the other side's
# run and slows its fdatasyncs. Measured without this: lockstep's 1-client rounds ranged
# 2742-3549 tps in one run.
settle() {
  local port
  for port in "$PG_PORT" "$LS_PORT"; do
    psql -Atq -h 127.0.0.1 -p "$port" -U postgres -c CHECKPOINT postgres >/dev/null 2>&1 || true
  done
  if [ "$MODE" = replica ]; then
    for port in "$PG_STANDBY_PORT" "$LS_STANDBY_PORT"; do
      psql -Atq -h 127.0.0.1 -p "$port" -U postgres -c CHECKPOINT postgres >/dev/null 2>&1 || true
    done
  fi
  sync
  sleep 1
}

run() { # name clients round -> tps
  local name=$1 c=$2 r=$3 conn opts=""
  if [ "$name" = pg ]; then conn=("${PG_CONN[@]}"); else conn=("${LS_CONN[@]}"); fi
  [ "$name" = ls-local ] && opts="-c synchronous_commit=local"
  local j=2; [ "$c" -lt 2 ] && j=1
  local dir="$WORK/logs/$name-$c-$r"; mkdir -p "$dir"
  local side=ls; [ "$name" = pg ] && side=pg
  settle
  local before; before=$(server_ticks "$side")
  # `times` in the subshell reports its children's CPU, i.e. pgbench's own.
  (cd "$dir" && { PGOPTIONS="$opts" pgbench -M prepared -c "$c" -j "$j" -T "$DURATION" -l --log-prefix=tx "${conn[@]}" >out.txt 2>&1 || true; times >times.txt; })
  sleep 0.5 # lets the postmaster reap the backends pgbench just closed
  echo $(( $(server_ticks "$side") - before )) >"$dir/server_ticks.txt"
  grep -E "number of failed transactions" "$dir/out.txt" | grep -vq ": 0 " && echo "WARNING: failed transactions in $name c=$c round $r" >&2
  awk '/^tps = / {print $3}' "$dir/out.txt"
}

for c in $CLIENTS; do
  for r in $(seq "$ROUNDS"); do
    names="pg ls"; [ "$MODE" = replica ] && [ "$c" = 1 ] && names="pg ls ls-local"
    for name in $names; do
      t=$(run "$name" "$c" "$r")
      echo "   $name c=$c round $r: $t tps" >&2
      echo "$name-$c $t" >>"$WORK/tps.txt"
    done
  done
done

MODE=$MODE TRANSPORT=$TRANSPORT DURATION=$DURATION SCALE=$SCALE HZ=$HZ python3 - "$WORK/logs" "$CLIENTS" "$LS_RSS_KB" "$LS_LOAD_S" "$WORK/tps.txt" <<'PY'
import glob, os, statistics, sys
logs, clients, rss_kb, load_s = sys.argv[1], sys.argv[2].split(), int(sys.argv[3]), sys.argv[4]
tps = {}
for line in open(sys.argv[5]):
    k, v = line.split()
    tps.setdefault(k, []).append(float(v))

def lat(name, c):
    vals = []
    for f in glob.glob(os.path.join(logs, f"{name}-{c}-*", "tx.*")):
        with open(f) as fh:
            for line in fh:
                parts = line.split()
                if len(parts) >= 3:
                    vals.append(int(parts[2]) / 1000.0)  # µs -> ms
    vals.sort()
    if not vals:
        return float("nan"), float("nan")
    return statistics.median(vals), vals[min(len(vals) - 1, int(len(vals) * 0.99))]

replica = os.environ.get("MODE") == "replica"
setup = "primary + 1 synchronous standby each" if replica else "single node"
transport = "Unix-domain sockets" if os.environ.get("TRANSPORT") == "unix" else "loopback TCP"
print(f"pgbench -M prepared -T {os.environ.get('DURATION', '15')}, scale {os.environ.get('SCALE', '10')}, {setup}, "
      f"{os.cpu_count()} cores, {transport}, fsync=on, synchronous_commit=on, interleaved rounds: {len(next(iter(tps.values())))}")
print(f"{'clients':>7} | {'PG tps':>9} {'LS tps':>9} {'ratio':>6} | {'PG med ms':>9} {'LS med ms':>9} {'ratio':>6} | {'PG p99 ms':>9} {'LS p99 ms':>9} {'ratio':>6}")
for c in clients:
    pt, lt = statistics.median(tps[f"pg-{c}"]), statistics.median(tps[f"ls-{c}"])
    pm, p99 = lat("pg", c)
    lm, l99 = lat("ls", c)
    print(f"{c:>7} | {pt:9.0f} {lt:9.0f} {lt/pt:5.2f}x | {pm:9.3f} {lm:9.3f} {lm/pm:5.2f}x | {p99:9.3f} {l99:9.3f} {l99/p99:5.2f}x")
if "ls-local-1" in tps:
    lt, llt = statistics.median(tps["ls-1"]), statistics.median(tps["ls-local-1"])
    lm, _ = lat("ls", 1)
    llm, ll99 = lat("ls-local", 1)
    print(f"lockstep at 1 client, synchronous_commit=local: {llt:.0f} tps, median {llm:.3f} ms, p99 {ll99:.3f} ms; "
          f"sync/local median latency ratio {lm/llm:.2f}x")

def cpu(name, c):
    # Median over rounds of (server CPU, pgbench CPU) in microseconds per transaction.
    hz = int(os.environ["HZ"])
    srv, bench = [], []
    for d in glob.glob(os.path.join(logs, f"{name}-{c}-*")):
        try:
            out = open(os.path.join(d, "out.txt")).read()
            tx = int(out.split("number of transactions actually processed: ")[1].split()[0])
            ticks = int(open(os.path.join(d, "server_ticks.txt")).read())
            kids = open(os.path.join(d, "times.txt")).read().split("\n")[1].split()
        except (OSError, IndexError, ValueError):
            continue
        secs = lambda t: int(t.split("m")[0]) * 60 + float(t.split("m")[1].rstrip("s"))
        if tx:
            srv.append(ticks / hz * 1e6 / tx)
            bench.append((secs(kids[0]) + secs(kids[1])) * 1e6 / tx)
    if not srv:
        return float("nan"), float("nan")
    return statistics.median(srv), statistics.median(bench)

cores = os.cpu_count()
print(f"CPU per transaction, us (servers{' incl. standby' if replica else ''} | pgbench), and the tps {cores} fully busy cores would allow:")
for c in clients:
    ps, pb = cpu("pg", c)
    ls_, lb = cpu("ls", c)
    print(f"{c:>7} | PG {ps:6.0f} | {pb:4.0f}  -> {cores*1e6/(ps+pb):6.0f} tps | LS {ls_:6.0f} | {lb:4.0f}  -> {cores*1e6/(ls_+lb):6.0f} tps")
print(f"lockstep peak RSS after pgbench -i -s {os.environ.get('SCALE', '10')}: {rss_kb/1024:.0f} MB (load took {load_s} s)")
PY

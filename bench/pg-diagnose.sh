#!/usr/bin/env bash
# Where the time of a `send` with the ledger in PostgreSQL goes: the figures behind
# BENCHMARKS.md's "What limits it" (not a benchmark of its own; its runs are single and small).
#
#   BENCH_CONTACTS=20000 bash bench/pg-diagnose.sh
#
# In one throwaway cluster (bench/pg-cluster.sh, track_wal_io_timing on):
#   1. a `send` per entry of VARIANTS ("sqlite;pg" by default; "pg:NAME=VALUE" runs it with that
#      server setting, `pg:synchronous_commit=off` say), each printing its wall and CPU, the
#      server's CPU, the time until the ledger writer's last commit and after it (the run
#      report), the writer's commits and requests, and on PostgreSQL `pg_stat_wal` (records,
#      flushes and their time) and `pg_stat_database` (commits, rows inserted and updated);
#   2. unless PGBENCH=0, Postgres's own `pgbench` on the same server for 8 s each: `SELECT 1` (the
#      round trip), a transaction of 250 single-row `INSERT … ON CONFLICT DO NOTHING RETURNING`
#      into a table shaped like `messages`, and the same 250 rows as one `INSERT … SELECT`.
# With PG_OPTS="-c log_min_duration_statement=0" and BENCH_KEEP=1 the server's log (kept with
# the cluster) holds every statement with its duration; with PG_OPTS="-c
# shared_preload_libraries=auto_explain -c auto_explain.log_min_duration=0 -c
# auto_explain.log_analyze=on", each one's plan too. With PGSTAT=1, each PostgreSQL send is
# followed by its statements' planning and execution time and calls, by kind, from
# `pg_stat_statements` (track_planning on).
#
# Knobs: OUTREACH_BIN, BENCH_CONTACTS=20000, VARIANTS, PGBENCH=1, PGSTAT=0, BENCH_OUTBOX_DIR,
# PG_OPTS.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export BENCH_CONTACTS=${BENCH_CONTACTS:-20000}
source "$ROOT/bench/send-common.sh"
source "$ROOT/bench/pg-cluster.sh"
at_exit pg_stop
if [[ ${PGSTAT:-0} == 1 ]]; then
    PG_OPTS="-c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track_planning=on ${PG_OPTS:-}"
fi
PG_OPTS="-c track_wal_io_timing=on ${PG_OPTS:-}" pg_start
[[ ${PGSTAT:-0} == 1 ]] && pg_sql -c "CREATE EXTENSION pg_stat_statements"

seconds() { python3 -c "import sys; print(f'{float(sys.argv[1]) - float(sys.argv[2]):.2f}')" "$1" "$2"; }
# epoch TIMESTAMP: a tracing timestamp (RFC 3339, UTC) in seconds since the epoch.
epoch() { python3 -c "import datetime, sys; print(datetime.datetime.fromisoformat(sys.argv[1].replace('Z', '+00:00')).timestamp())" "$1"; }

i=0
IFS=';' read -ra variants <<<"${VARIANTS:-sqlite;pg}"
for v in "${variants[@]}"; do
    i=$((i + 1)); dir=$TMP/run$i; url=; c0=0; c1=0
    store=${v%%:*}; setting=${v#*:}; [[ $setting == "$v" ]] && setting=
    mkdir -p "$dir"
    if [[ $store == pg ]]; then
        pg_sql -c "ALTER SYSTEM RESET ALL"
        [[ -z $setting ]] || pg_sql -c "ALTER SYSTEM SET $setting"
        pg_sql -c "SELECT pg_reload_conf()" >/dev/null
        pg_sql -c "CREATE DATABASE d$i OWNER outreach"
        url=$(pg_url "d$i")
        pg_sql -c CHECKPOINT
        pg_sql -c "SELECT pg_stat_reset_shared('wal')" >/dev/null
        [[ ${PGSTAT:-0} == 1 ]] && pg_sql -c "SELECT pg_stat_statements_reset()" >/dev/null
    fi
    send_sets "$dir" "$url"
    sync; sleep 1
    [[ $store == pg ]] && c0=$(pg_cpu)
    t0=$(date +%s.%N)
    RUST_LOG=outreach::store::writer=debug,outreach=warn /usr/bin/time -f '%e %U %S' -o "$dir/time" \
        "$BIN" send campaigns/psoas.toml "${sets[@]}" --new-ledger --format json >"$dir/out.json" 2>"$dir/err"
    t1=$(date +%s.%N)
    if [[ $store == pg ]]; then sleep 1; c1=$(pg_cpu); fi
    read -r wall user system <"$dir/time"
    done_at=$(epoch "$(grep 'ledger writer done' "$dir/err" | grep -o '^[0-9T:.-]*Z' | head -1)")
    echo "== $v: sent $(python3 -c "import json, sys; print(sum(c['sent'] for c in json.load(open(sys.argv[1]))['channels']))" "$dir/out.json");" \
         "wall $wall s (until the writer's last commit $(seconds "$done_at" "$t0") s, after it $(seconds "$t1" "$done_at") s);" \
         "outreach CPU $user user + $system sys; server CPU $(seconds "$c1" "$c0") s;" \
         "writer $(grep -o 'commits=[0-9]* requests=[0-9]*' "$dir/err")"
    if [[ $store == pg ]]; then
        pg_sql -c "SELECT '   wal: records ' || wal_records || ', ' || pg_size_pretty(wal_bytes) || ', ' || wal_sync
                          || ' flushes taking ' || round(wal_sync_time::numeric) || ' ms' FROM pg_stat_wal"
        pg_sql -c "SELECT '   database: commits ' || xact_commit || ', rows inserted ' || tup_inserted
                          || ', updated ' || tup_updated || ', size ' || pg_size_pretty(pg_database_size(datname))
                   FROM pg_stat_database WHERE datname = 'd$i'"
        if [[ ${PGSTAT:-0} == 1 ]]; then
            echo "   statements (plan ms, execute ms, calls, text): all, then the 8 costliest kinds"
            pg_sql -F ' ' -c "SELECT '   ' || round(sum(total_plan_time)), round(sum(total_exec_time)), sum(calls), 'all'
                              FROM pg_stat_statements"
            pg_sql -F ' ' -c "SELECT '   ' || round(sum(total_plan_time)), round(sum(total_exec_time)), sum(calls),
                                     left(regexp_replace(query, '\s+', ' ', 'g'), 60)
                              FROM pg_stat_statements GROUP BY 4
                              ORDER BY sum(total_plan_time) + sum(total_exec_time) DESC LIMIT 8"
        fi
        pg_sql -c "DROP DATABASE d$i"
    fi
    rm -rf "$dir" "$(outbox_of "$dir")"
done

[[ ${PGBENCH:-1} == 1 ]] || exit 0
pg_sql -c "ALTER SYSTEM RESET ALL"; pg_sql -c "SELECT pg_reload_conf()" >/dev/null
pg_sql -c "CREATE DATABASE yardstick OWNER outreach"
PG_DB=yardstick pg_sql -c 'SET ROLE outreach; CREATE TABLE t (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, campaign TEXT COLLATE "C", channel TEXT COLLATE "C",
    address TEXT COLLATE "C", state TEXT, UNIQUE (campaign, channel, address))'
echo 'SELECT 1;' >"$TMP/select.sql"
{
    echo 'BEGIN;'
    for n in $(seq 1 250); do
        echo "INSERT INTO t (campaign, channel, address, state) VALUES ('c', 'email', 'a' || random()::text || '-$n', 'sending') ON CONFLICT DO NOTHING RETURNING id;"
    done
    echo 'COMMIT;'
} >"$TMP/rows.sql"
printf '%s\n' 'BEGIN;' "INSERT INTO t (campaign, channel, address, state) SELECT 'c', 'email', 'b' || random()::text || '-' || g, 'sending' FROM generate_series(1, 250) g ON CONFLICT DO NOTHING RETURNING id;" 'COMMIT;' >"$TMP/one.sql"
for script in select rows one; do
    c0=$(pg_cpu)
    out=$("$PG_BIN/pgbench" -n -M prepared -c 1 -j 1 -T 8 -h 127.0.0.1 -p "$PG_PORT" -U outreach -f "$TMP/$script.sql" yardstick 2>&1)
    sleep 1; c1=$(pg_cpu)
    echo "== pgbench $script.sql: $(grep -E 'actually processed' <<<"$out" | grep -o '[0-9]*$') transactions," \
         "$(grep -o 'latency average = [0-9.]* ms' <<<"$out"), server CPU $(seconds "$c1" "$c0") s"
done

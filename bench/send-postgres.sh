#!/usr/bin/env bash
# Benchmark of `outreach send` with the ledger in PostgreSQL against the same send with the
# ledger in SQLite: interleaved rounds, same binary, same contacts, same disk.
#
#   bash bench/send-postgres.sh
#
# Target (the PostgreSQL ledger's issue): one sender with the ledger in PostgreSQL at >= 50% of
# SQLite's messages/s. (Its other half, two senders of one campaign at once, cannot be measured
# yet: a second run of a campaign exits 4 while the first holds the lock.)
#
# What it does, in one temporary directory (removed at the end):
#   1. cargo build --release (or OUTREACH_BIN); bench/gen-contacts.py writes BENCH_CONTACTS
#      (100000) contacts; a throwaway PostgreSQL 15 cluster is started (bench/pg-cluster.sh:
#      127.0.0.1 only, trust, fsync and synchronous_commit on, default shared_buffers) and
#      stopped and deleted at exit;
#   2. BENCH_ROUNDS (3) rounds, each a `send` with rates off to the file transports with the
#      ledger in SQLite (a fresh state directory) and one with the ledger in PostgreSQL (a fresh
#      database, `sending.state_url`), the order alternating from round to round; each followed
#      by a `send` over the completed campaign, and checked as bench/send.sh checks (every due
#      message sent once, the outbox holding exactly that many, the rerun sending none; on
#      PostgreSQL the `messages` table must count them sent too); then its outbox and its
#      database are deleted, `sync`ed, and the server CHECKPOINTed before the next send;
#   3. a table: wall time, messages/s, the PostgreSQL/SQLite ratio per round and the medians;
#      outreach's CPU (user + system) and peak RSS; the server's CPU during the PostgreSQL send
#      (on 2 cores it shares the CPU with the sender), from /proc.
#
# Knobs (environment): OUTREACH_BIN, BENCH_CONTACTS=100000 BENCH_SEED=2026 BENCH_ROUNDS=3
# BENCH_KEEP=0, BENCH_OUTBOX_DIR (see bench/send-common.sh), PG_BIN, PG_OPTS (server settings
# for a diagnosis, see bench/pg-cluster.sh).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
ROUNDS=${BENCH_ROUNDS:-3}
source "$ROOT/bench/send-common.sh"
source "$ROOT/bench/pg-cluster.sh"
at_exit pg_stop
pg_start
[[ -z ${PG_OPTS:-} ]] || say "PG_OPTS='$PG_OPTS': a diagnosis, not the benchmark's figures"

# room STORE DIR: waits (up to 10 minutes) until the disk has room for a send's ledger and
# outbox: ~1.5 GB of outbox for 180,640 messages (unless BENCH_OUTBOX_DIR puts it elsewhere);
# PostgreSQL's database and write-ahead log (up to max_wal_size, 1 GB, between checkpoints).
# The disk is shared, and a send that runs out of it fails its messages instead of measuring.
room() {
    local need=0 free waited=0 outbox
    outbox=$(dirname "$(outbox_of "$2")")
    [[ $1 == postgres ]] && need=1500
    if [[ $(df -P "$outbox" | awk 'NR == 2 { print $1 }') == $(df -P "$2" | awk 'NR == 2 { print $1 }') ]]; then
        need=$((need + 1800))
    fi
    need=$((need + 200))
    while free=$(df -Pm "$2" | awk 'NR == 2 { print $4 }'); (( free < need )); do
        (( waited < 600 )) || { say "FAIL: only $free MB free on $2's file system (need $need)"; exit 1; }
        say "only $free MB free on $2's file system (need $need): waiting"
        sleep 15; waited=$((waited + 15))
    done
}

# one STORE ROUND: a send and its rerun with the ledger in STORE; appends a line to results.tsv.
one() {
    local store=$1 r=$2 dir=$TMP/$1-$2 url= db=bench_r$2 cpu0=0 cpu1=0 sent rows
    mkdir -p "$dir"
    if [[ $store == postgres ]]; then
        pg_sql -c "CREATE DATABASE $db OWNER outreach"
        url=$(pg_url "$db")
        pg_sql -c CHECKPOINT
    fi
    send_sets "$dir" "$url"
    room "$store" "$dir"
    sync
    sleep 1   # the backends of the statements above reaped, their CPU counted before the send
    [[ $store == postgres ]] && cpu0=$(pg_cpu)
    say "round $r: send, ledger in $store"
    run "$store-$r" send campaigns/psoas.toml "${sets[@]}" --new-ledger
    if [[ $store == postgres ]]; then sleep 1; cpu1=$(pg_cpu); fi
    run "$store-$r-rerun" send campaigns/psoas.toml "${sets[@]}"
    sent=$(verify "$store-$r" "$store-$r-rerun" "$dir")
    if [[ $store == postgres ]]; then
        rows=$(PG_DB=$db pg_sql -c "SELECT count(*) FROM messages WHERE state = 'sent'")
        [[ $rows == "$sent" ]] || { say "FAIL: PostgreSQL's ledger holds $rows sent, the run says $sent"; exit 1; }
        PG_DB=$db pg_sql -c "SELECT pg_size_pretty(pg_database_size('$db'))" >"$TMP/pg-size"
        pg_sql -c "DROP DATABASE $db"
    fi
    du -sh "$(outbox_of "$dir")" | cut -f1 >"$TMP/outbox-size"
    rm -rf "$dir" "$(outbox_of "$dir")"
    printf '%s\t%s\t%s\t%s\t%s\n' "$r" "$store" "$sent" "$cpu0" "$cpu1" >>"$TMP/results.tsv"
    say "round $r, $store: $(cat "$TMP/$store-$r.time") (wall s, peak RSS KiB, user s, system s)," \
        "server CPU $(python3 -c "print(f'{$cpu1 - $cpu0:.2f}')") s, rerun $(cut -d' ' -f1 "$TMP/$store-$r-rerun.time") s"
}

for r in $(seq 1 "$ROUNDS"); do
    if (( r % 2 )); then one sqlite "$r"; one postgres "$r"; else one postgres "$r"; one sqlite "$r"; fi
done

python3 - "$TMP" "$N" "$ROUNDS" "$(cat "$TMP/pg-size")" "$(cat "$TMP/outbox-size")" <<'EOF'
import statistics, sys
tmp, n, rounds, pg_size, outbox = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
runs = {}
for line in open(f"{tmp}/results.tsv"):
    r, store, sent, cpu0, cpu1 = line.split("\t")
    wall, rss, user, system = open(f"{tmp}/{store}-{r}.time").read().split()
    rerun = float(open(f"{tmp}/{store}-{r}-rerun.time").read().split()[0])
    runs[int(r), store] = dict(sent=int(sent), wall=float(wall), rss=int(rss) / 1024,
                               cpu=float(user) + float(system), server=float(cpu1) - float(cpu0),
                               rerun=rerun)
med = statistics.median
msgs = runs[1, "sqlite"]["sent"]
print(f"\n{n} contacts, {msgs} messages per send; {rounds} rounds, the order alternating "
      f"(odd rounds SQLite first)\n")
print("| round | SQLite s | SQLite msgs/s | PostgreSQL s | PostgreSQL msgs/s | PostgreSQL / SQLite |")
print("|---|---:|---:|---:|---:|---:|")
ratios = []
for r in range(1, rounds + 1):
    s, p = runs[r, "sqlite"], runs[r, "postgres"]
    ratios.append(s["wall"] / p["wall"])
    print(f"| {r} | {s['wall']:.2f} | {s['sent'] / s['wall']:,.0f} | {p['wall']:.2f} | "
          f"{p['sent'] / p['wall']:,.0f} | {ratios[-1]:.2f} |")
sw = med(runs[r, "sqlite"]["wall"] for r in range(1, rounds + 1))
pw = med(runs[r, "postgres"]["wall"] for r in range(1, rounds + 1))
print(f"| median | {sw:.2f} | {msgs / sw:,.0f} | {pw:.2f} | {msgs / pw:,.0f} | {med(ratios):.2f} |")
print()
print("| round | store | outreach CPU s (user + sys) | server CPU s | peak RSS MiB | rerun s |")
print("|---|---|---:|---:|---:|---:|")
for r in range(1, rounds + 1):
    for store in ("sqlite", "postgres"):
        x = runs[r, store]
        server = f"{x['server']:.2f}" if store == "postgres" else "-"
        print(f"| {r} | {store} | {x['cpu']:.2f} | {server} | {x['rss']:.1f} | {x['rerun']:.2f} |")
print()
m = med(ratios)
print(f"PostgreSQL at {m:.0%} of SQLite's messages/s in the median of the rounds "
      f"({min(ratios):.0%}-{max(ratios):.0%}); target >= 50%: {'PASS' if m >= 0.5 else 'MISS'}")
print("Two senders of one campaign at once: not measured (a second run of a campaign exits 4 for now).")
print(f"Sizes after a send: the PostgreSQL database {pg_size}, the outbox {outbox}.")
EOF

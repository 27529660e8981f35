#!/usr/bin/env bash
# Benchmark of `outreach send` with the ledger in PostgreSQL against the same send with the
# ledger in SQLite: interleaved rounds, same binary, same contacts, same disk.
#
#   bash bench/send-postgres.sh
#
# Targets (the PostgreSQL ledger's issue): one sender with the ledger in PostgreSQL at >= 50% of
# SQLite's messages/s; and, with BENCH_SENDERS=2, two senders of one campaign at once (two state
# directories, two hosts, one database) no slower than one.
#
#   BENCH_SENDERS=2 BENCH_CONTACTS=20000 bash bench/send-postgres.sh
#
# With BENCH_SENDERS=2 each round compares, instead of SQLite and PostgreSQL, one sender with
# the ledger in PostgreSQL (as below) and two `send`s of the campaign started together, each
# with a state directory and outboxes of its own, the ledger in one fresh database: their wall
# time is from both starting to both ending; they must have sent every due message once between
# them (`sent` summed; every email's contact and every SMS's number once across both outboxes,
# no more files and lines than that; a rerun sending none; the database counting them sent).
# Reported besides: each one's share, the messages it found taken by the other (its summary's
# `skipped: already_sent`: its claim refused, or passed over unmade once one was), outreach's
# CPU (both processes) and the server's. (The second run starts its walk of the list half-way:
# `send` does that when another run of the campaign is live.)
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
# for a diagnosis, see bench/pg-cluster.sh), BENCH_SENDERS=1 (or 2).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
ROUNDS=${BENCH_ROUNDS:-3}
SENDERS=${BENCH_SENDERS:-1}
[[ $SENDERS == 1 || $SENDERS == 2 ]] || { echo "BENCH_SENDERS=$SENDERS: 1 or 2" >&2; exit 2; }
source "$ROOT/bench/send-common.sh"
source "$ROOT/bench/pg-cluster.sh"
at_exit pg_stop
pg_start
[[ -z ${PG_OPTS:-} ]] || say "PG_OPTS='$PG_OPTS': a diagnosis, not the benchmark's figures"
# The two sides of a round: SQLite and PostgreSQL, or (BENCH_SENDERS=2) PostgreSQL with one
# sender and with two.
if [[ $SENDERS == 2 ]]; then SIDES=(postgres postgres2); else SIDES=(sqlite postgres); fi

# room STORE DIR: waits (up to 10 minutes) until the disk has room for a send's ledger and
# outbox: ~1.5 GB of outbox for 180,640 messages (unless BENCH_OUTBOX_DIR puts it elsewhere);
# PostgreSQL's database and write-ahead log (up to max_wal_size, 1 GB, between checkpoints).
# The disk is shared, and a send that runs out of it fails its messages instead of measuring.
room() {
    local need=0 free waited=0 outbox
    outbox=$(dirname "$(outbox_of "$2")")
    [[ $1 == postgres* ]] && need=1500
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

# two ROUND DIR URL: two sends of the campaign started together, each with a state directory
# and outboxes of its own (DIR/a, DIR/b), the ledger in URL's database; then a rerun. Leaves
# postgres2-ROUND.time as `run` does (wall: both started to both ended; peak RSS: the larger;
# CPU: both), and each one's own .time and .json (postgres2-ROUND-a, -b).
two() {
    local r=$1 dir=$2 url=$3 a b t0 t1
    send_sets "$dir/a" "$url"; local sets_a=("${sets[@]}")
    send_sets "$dir/b" "$url"; local sets_b=("${sets[@]}")
    mkdir -p "$dir/a" "$dir/b"
    say "round $r: two sends at once, ledger in postgres"
    t0=$(date +%s.%N)
    run "postgres2-$r-a" send campaigns/psoas.toml "${sets_a[@]}" --new-ledger & a=$!
    run "postgres2-$r-b" send campaigns/psoas.toml "${sets_b[@]}" --new-ledger & b=$!
    wait "$a" || { say "FAIL: sender a exited $?"; exit 1; }
    wait "$b" || { say "FAIL: sender b exited $?"; exit 1; }
    t1=$(date +%s.%N)
    python3 - "$TMP/postgres2-$r" "$t0" "$t1" <<'PY'
import sys
name, t0, t1 = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
times = [open(f"{name}-{s}.time").read().split() for s in "ab"]
rss = max(int(t[1]) for t in times)
user, system = (sum(float(t[i]) for t in times) for i in (2, 3))
open(f"{name}.time", "w").write(f"{t1 - t0:.2f} {rss} {user:.2f} {system:.2f}\n")
PY
    run "postgres2-$r-rerun" send campaigns/psoas.toml "${sets_a[@]}"
}

# verify_two ROUND DIR: the two sends of `two` sent the campaign's due messages (DUE) between
# them, each once: every email's contact and every SMS's number once across both outboxes, and
# as many files and lines as that; the rerun sent none. Prints the number sent.
verify_two() {
    local r=$1 dir=$2
    python3 - "$TMP" "$r" "$DUE" "$(outbox_of "$dir/a")" "$(outbox_of "$dir/b")" <<'PY' >&2
import json, os, sys
tmp, r, due, boxes = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
def sent_of(name):
    return sum(c["sent"] for c in json.load(open(f"{tmp}/{name}.json"))["channels"])
sent = [sent_of(f"postgres2-{r}-{s}") for s in "ab"]
rerun = sent_of(f"postgres2-{r}-rerun")
emails, numbers = [], []
for box in boxes:
    if os.path.isdir(f"{box}/email"):
        # CAMPAIGN+TIME-N-CONTACT.eml: the contact's id (file-name safe) after the last '-'.
        emails += [n[:-4].rsplit("-", 1)[1] for n in os.listdir(f"{box}/email") if n.endswith(".eml")]
    if os.path.exists(f"{box}/sms.jsonl"):
        numbers += [json.loads(l)["to"] for l in open(f"{box}/sms.jsonl")]
fail = []
if sum(sent) != due: fail.append(f"{sent[0]} + {sent[1]} sent, {due} due")
if len(set(emails)) != len(emails): fail.append(f"{len(emails) - len(set(emails))} contacts got two emails")
if len(set(numbers)) != len(numbers): fail.append(f"{len(numbers) - len(set(numbers))} numbers got two SMS")
if len(emails) + len(numbers) != due: fail.append(f"the outboxes hold {len(emails) + len(numbers)}, {due} due")
if rerun: fail.append(f"the rerun sent {rerun}")
for f in fail: print(f"==> FAIL (two senders, round {r}): {f}")
if fail: sys.exit(1)
print(f"==> verified (two senders, round {r}): {due} messages ({sent[0]} + {sent[1]}), each once "
      f"across both outboxes ({len(emails)} emails, {len(numbers)} SMS); the rerun sent none")
PY
    echo "$DUE"
}

# one STORE ROUND: a send and its rerun with the ledger in STORE (sqlite, postgres, or postgres2:
# two senders at once); appends a line to results.tsv.
one() {
    local store=$1 r=$2 dir=$TMP/$1-$2 url= db=bench_r$2_$1 cpu0=0 cpu1=0 sent rows
    mkdir -p "$dir"
    if [[ $store == postgres* ]]; then
        pg_sql -c "CREATE DATABASE $db OWNER outreach"
        url=$(pg_url "$db")
        pg_sql -c CHECKPOINT
    fi
    send_sets "$dir" "$url"
    room "$store" "$dir"
    sync
    sleep 1   # the backends of the statements above reaped, their CPU counted before the send
    [[ $store == postgres* ]] && cpu0=$(pg_cpu)
    if [[ $store == postgres2 ]]; then
        two "$r" "$dir" "$url"
        # Read after the rerun (run in `two`): a little more than the two sends' (its reads).
        sleep 1; cpu1=$(pg_cpu)
        sent=$(verify_two "$r" "$dir")
    else
        say "round $r: send, ledger in $store"
        run "$store-$r" send campaigns/psoas.toml "${sets[@]}" --new-ledger
        if [[ $store == postgres ]]; then sleep 1; cpu1=$(pg_cpu); fi
        run "$store-$r-rerun" send campaigns/psoas.toml "${sets[@]}"
        sent=$(verify "$store-$r" "$store-$r-rerun" "$dir")
    fi
    if [[ $store == postgres* ]]; then
        rows=$(PG_DB=$db pg_sql -c "SELECT count(*) FROM messages WHERE state = 'sent'")
        [[ $rows == "$sent" ]] || { say "FAIL: PostgreSQL's ledger holds $rows sent, the run says $sent"; exit 1; }
        PG_DB=$db pg_sql -c "SELECT pg_size_pretty(pg_database_size('$db'))" >"$TMP/pg-size"
        pg_sql -c "DROP DATABASE $db"
    fi
    [[ $store == postgres2 ]] || du -sh "$(outbox_of "$dir")" | cut -f1 >"$TMP/outbox-size"
    rm -rf "$dir" "$(outbox_of "$dir")" "$(outbox_of "$dir/a")" "$(outbox_of "$dir/b")"
    printf '%s\t%s\t%s\t%s\t%s\n' "$r" "$store" "$sent" "$cpu0" "$cpu1" >>"$TMP/results.tsv"
    say "round $r, $store: $(cat "$TMP/$store-$r.time") (wall s, peak RSS KiB, user s, system s)," \
        "server CPU $(python3 -c "print(f'{$cpu1 - $cpu0:.2f}')") s, rerun $(cut -d' ' -f1 "$TMP/$store-$r-rerun.time") s"
}

if [[ $SENDERS == 2 ]]; then
    # What is due: the two senders' sent messages are counted against it.
    send_sets "$TMP/dry"
    run dry send campaigns/psoas.toml "${sets[@]}" --dry-run
    DUE=$(field dry due)
    rm -rf "$TMP/dry"
    say "$DUE messages due"
fi
for r in $(seq 1 "$ROUNDS"); do
    if (( r % 2 )); then one "${SIDES[0]}" "$r"; one "${SIDES[1]}" "$r"; else one "${SIDES[1]}" "$r"; one "${SIDES[0]}" "$r"; fi
done

if [[ $SENDERS == 2 ]]; then
    python3 - "$TMP" "$N" "$ROUNDS" <<'EOF'
import json, statistics, sys
tmp, n, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
runs = {}
for line in open(f"{tmp}/results.tsv"):
    r, store, sent, cpu0, cpu1 = line.split("\t")
    wall, rss, user, system = open(f"{tmp}/{store}-{r}.time").read().split()
    x = dict(sent=int(sent), wall=float(wall), rss=int(rss) / 1024, user=float(user),
             system=float(system), server=float(cpu1) - float(cpu0))
    if store == "postgres2":
        for s in "ab":
            v = json.load(open(f"{tmp}/{store}-{r}-{s}.json"))
            x[s] = dict(sent=sum(c["sent"] for c in v["channels"]),
                        refused=sum(c["skipped"].get("already_sent", 0) for c in v["channels"]),
                        due=sum(c["due"] for c in v["channels"]),
                        wall=float(open(f"{tmp}/{store}-{r}-{s}.time").read().split()[0]))
    runs[int(r), store] = x
med = statistics.median
msgs = runs[1, "postgres"]["sent"]
print(f"\n{n} contacts, {msgs} messages per send, the ledger in PostgreSQL; {rounds} rounds, "
      f"the order alternating (odd rounds one sender first)\n")
print("| round | 1 sender s | 1 sender msgs/s | 2 senders s | 2 senders msgs/s | 2 / 1 |")
print("|---|---:|---:|---:|---:|---:|")
ratios = []
for r in range(1, rounds + 1):
    o, t = runs[r, "postgres"], runs[r, "postgres2"]
    ratios.append(o["wall"] / t["wall"])
    print(f"| {r} | {o['wall']:.2f} | {o['sent'] / o['wall']:,.0f} | {t['wall']:.2f} | "
          f"{t['sent'] / t['wall']:,.0f} | {ratios[-1]:.2f} |")
ow = med(runs[r, "postgres"]["wall"] for r in range(1, rounds + 1))
tw = med(runs[r, "postgres2"]["wall"] for r in range(1, rounds + 1))
print(f"| median | {ow:.2f} | {msgs / ow:,.0f} | {tw:.2f} | {msgs / tw:,.0f} | {med(ratios):.2f} |")
print()
print("| round | senders | outreach CPU s (user + sys) | server CPU s | peak RSS MiB | "
      "a: planned, sent, taken by b, s | b: planned, sent, taken by a, s |")
print("|---|---|---:|---:|---:|---|---|")
for r in range(1, rounds + 1):
    for store, k in (("postgres", 1), ("postgres2", 2)):
        x = runs[r, store]
        ab = [f"{x[s]['due']}, {x[s]['sent']}, {x[s]['refused']}, {x[s]['wall']:.1f}" if k == 2 else "-"
              for s in "ab"]
        print(f"| {r} | {k} | {x['user'] + x['system']:.2f} ({x['user']:.1f} + {x['system']:.1f}) | "
              f"{x['server']:.2f} | {x['rss']:.1f} | {ab[0]} | {ab[1]} |")
print()
m = med(ratios)
print(f"Two senders at {m:.2f}x one sender's messages/s in the median of the rounds "
      f"({min(ratios):.2f}-{max(ratios):.2f}); target >= 1.00 (no slower): {'PASS' if m >= 1 else 'MISS'}")
EOF
    exit 0
fi

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
print("Two senders of one campaign at once: BENCH_SENDERS=2 measures them against one.")
print(f"Sizes after a send: the PostgreSQL database {pg_size}, the outbox {outbox}.")
EOF

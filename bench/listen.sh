#!/usr/bin/env bash
# Benchmark of `outreach listen` under load: distinct, validly signed Twilio delivery receipts and
# one-click unsubscribes at concurrency 64, each checked in the ledger afterwards, beside a bare
# axum server that commits the same SQLite write per request, same machine, same run; then a
# SIGKILL of `listen` mid-load, after which everything it answered 2xx must be in the ledger.
#
#   bash bench/listen.sh
#
# Targets (the listen issue): nothing lost under load; receipts at >= 70% of the reference's
# rate and >= 2,000 receipts/s (a 100,000-message campaign's receipts in under a minute); a
# SIGKILL mid-load loses nothing that was answered 2xx.
#
# What it does, in one temporary directory (removed at the end):
#   1. builds outreach (bench/binary.sh: OUTREACH_BIN, or this tree in release) and the examples
#      listen_load (the load client: pre-built requests, each sent once, over keep-alive
#      connections) and listen_reference (the bare axum server);
#   2. BENCH_RECEIPTS (100000) SMS contacts, the first BENCH_UNSUBSCRIBES (10000) with an email
#      too, sent with the file transports (ledger on, rates off): the ledger then holds an SMS
#      provider id per SMS (`sms_parts`) and an unsubscribe token per email (`tokens`); that
#      state directory, checkpointed, is copied afresh for every server run below;
#   3. bench/listen-requests.py writes the requests: one Twilio status callback per SMS id
#      (MessageStatus=delivered, signed with the auth token as Twilio signs), one one-click
#      unsubscribe per token, and a mix of both for phase 2;
#   4. phase 1, BENCH_RUNS (5) rounds, the order of the two servers alternating: the reference,
#      then `outreach listen` (its campaign's SMS gateway set to the Twilio preset by --set: the
#      send went through the file transport, listen only checks the signatures), each taking
#      the receipts and then the unsubscribes, BENCH_CONCURRENCY (64) connections; a server
#      answering without writing (the reference with --null) first, the client's ceiling. After
#      each run: every request answered 2xx, every receipt in `receipts` once and `delivered`,
#      no other receipt, every unsubscribe in `unsubscribes` once and its address in
#      `suppressions`, nothing more;
#   5. phase 2: listen takes the mixed requests and is killed with SIGKILL BENCH_KILL_AFTER (1.5)
#      seconds in; the client logs each request answered 2xx, and each of those must be in the
#      ledger (PASS/FAIL). Then listen starts again on that ledger, all the mixed requests are
#      sent again (a provider retries what was not answered), and the ledger must hold each
#      once, as in phase 1;
#   6. a table: requests/s, p50 and p99 latency of each server (median of the rounds), listen's
#      ratio to the reference round by round, and the targets.
#
# Knobs (environment): OUTREACH_BIN, BENCH_RECEIPTS=100000 BENCH_UNSUBSCRIBES=10000
# BENCH_CONCURRENCY=64 BENCH_RUNS=5 BENCH_KILL_AFTER=1.5 BENCH_KEEP=0 (1 keeps the temp dir).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
RECEIPTS=${BENCH_RECEIPTS:-100000}
UNSUBS=${BENCH_UNSUBSCRIBES:-10000}
C=${BENCH_CONCURRENCY:-64}
RUNS=${BENCH_RUNS:-5}
KILL_AFTER=${BENCH_KILL_AFTER:-1.5}
CAMPAIGN=psoas-2026-11
BASE_URL=https://outreach.bench.example
export OUTREACH_NOW=${OUTREACH_NOW:-2026-11-25T18:00:00Z}   # US midday: no quiet hours
export OUTREACH_BENCH_TOKEN=bench-auth-token

say() { printf '==> %s\n' "$*" >&2; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/outreach-listen-bench.XXXXXX")
SERVER_PID=
stop_server() { # SIGNAL: stops the server this script started, if any, and waits for it
    if [[ -n $SERVER_PID ]]; then
        kill "-$1" "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=
    fi
}
cleanup() {
    stop_server TERM
    if [[ ${BENCH_KEEP:-0} == 1 ]]; then say "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT

source "$ROOT/bench/binary.sh"
say "building the load client and the reference (release)"
cargo build --release --quiet --example listen_load --example listen_reference
EX="${CARGO_TARGET_DIR:-$ROOT/target}/release/examples"
LOAD="$EX/listen_load"

# --- 2. a sent campaign ------------------------------------------------------------------------
say "writing $RECEIPTS SMS contacts, $UNSUBS of them with an email"
python3 - "$TMP/contacts.csv" "$RECEIPTS" "$UNSUBS" <<'PY'
import random, sys
path, n, emails = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
# Unique valid US numbers in no order, as in a real export.
numbers = [f"(312) {200 + i // 10000}-{i % 10000:04}" for i in range(n)]
random.Random(2026).shuffle(numbers)
with open(path, "w") as f:
    f.write("id,first_name,last_name,email,phone,channel,email_consent,sms_consent,timezone\n")
    for i, number in enumerate(numbers):
        if i < emails:
            f.write(f"P{i:06},Pat{i},Lee,pat{i}@example.org,{number},both,yes,yes,\n")
        else:
            f.write(f"P{i:06},Pat{i},Lee,,{number},sms,,yes,\n")
PY

common=(--set "contacts.path=$TMP/contacts.csv" --set "contacts.suppress=[]"
        --set "email.outbox=$TMP/outbox/email" --set "sms.outbox=$TMP/outbox/sms.jsonl"
        --set "sms.quiet_hours=" --set "listen.base_url=$BASE_URL")
say "send (file transports, ledger on)"
"$BIN" send campaigns/psoas.toml --new-ledger --format json "${common[@]}" \
    --set "sending.state_dir=$TMP/state" --set "campaign.require_approval=false" \
    --set "sending.email_rate=0" --set "sending.sms_rate=0" >"$TMP/send.json"
python3 - "$TMP/send.json" "$RECEIPTS" "$UNSUBS" "$TMP/state/ledger.sqlite" <<'PY'
import json, sqlite3, sys
summary, sms, email, ledger = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
sent = {c["channel"]: c["sent"] for c in json.load(open(summary))["channels"]}
if sent != {"email": email, "sms": sms}:
    sys.exit(f"send: {sent}, expected {email} emails and {sms} SMS")
db = sqlite3.connect(ledger)
db.execute("PRAGMA wal_checkpoint(TRUNCATE)")   # every copy starts from the main file alone
PY

say "writing the signed requests"
python3 bench/listen-requests.py "$TMP/state/ledger.sqlite" "$TMP/req" --base-url "$BASE_URL" \
    --campaign "$CAMPAIGN" --token "$OUTREACH_BENCH_TOKEN" \
    --receipts "$RECEIPTS" --unsubscribes "$UNSUBS"

# --- servers -------------------------------------------------------------------------------------
# Each starts on a fresh copy of the sent state directory, on 127.0.0.1 and a free port; ADDR is
# where it listens.
fresh() { rm -rf "$TMP/$1"; cp -r "$TMP/state" "$TMP/$1"; }

wait_for() { # FILE PATTERN: until FILE has a line matching PATTERN (60 s at most)
    for _ in $(seq 600); do
        if grep -qE "$2" "$1" 2>/dev/null; then return 0; fi
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then say "the server exited:"; cat "$1" >&2; exit 1; fi
        sleep 0.1
    done
    say "the server did not start:"; cat "$1" >&2; exit 1
}

# The parent empties the output first: a redirection is made in the child, after `&`, and
# wait_for must not read the line of an earlier start.
start_reference() { # DIR [--null]
    : >"$TMP/$1.out"
    "$EX/listen_reference" 127.0.0.1:0 "$TMP/$1/ledger.sqlite" ${2:-} >>"$TMP/$1.out" 2>&1 &
    SERVER_PID=$!
    wait_for "$TMP/$1.out" '^127\.0\.0\.1:[0-9]+$'
    ADDR=$(head -1 "$TMP/$1.out")
}

start_listen() { # DIR
    : >"$TMP/$1.out"
    "$BIN" listen campaigns/psoas.toml "${common[@]}" --set "sending.state_dir=$TMP/$1" \
        --set "sms.transport=http" --set "sms.gateway.preset=twilio" \
        --set "sms.gateway.account=AC$(printf 'a%.0s' {1..32})" \
        --set "sms.gateway.token_env=OUTREACH_BENCH_TOKEN" \
        --set "sms.gateway.base_url=http://127.0.0.1:9" \
        --addr 127.0.0.1:0 >>"$TMP/$1.out" 2>&1 &
    SERVER_PID=$!
    wait_for "$TMP/$1.out" '^Listening on '
    ADDR=$(sed -n 's/^Listening on \([^ ]*\) .*/\1/p' "$TMP/$1.out")
}

load() { # NAME FILE [OK_LOG]: the client's JSON line into $TMP/NAME.json
    "$LOAD" "$ADDR" "$TMP/req/$2.http" "$C" ${3:-} >"$TMP/$1.json"
    python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
ok, n, rate, p50, p99 = r["ok"], r["requests"], r["per_second"], r["p50_ms"], r["p99_ms"]
other, unanswered = r["other"], r["unanswered"]
print(f"  {sys.argv[2]:<28}{ok:>7} 2xx of {n}, {rate:>8,.0f}/s, p50 {p50:.2f} ms, "
      f"p99 {p99:.2f} ms, other {other}, unanswered {unanswered}")' "$TMP/$1.json" "$1" >&2
}

# verify LEDGER IDS... [--ok LOG]: every request of the .ids files is in the ledger once, and
# nothing else (with --ok: only the requests whose index LOG lists must be there, and what is
# there must be among the requests).
verify() {
    python3 - "$@" <<'PY'
import sqlite3, sys
args = sys.argv[1:]
ok_log = None
if "--ok" in args:
    i = args.index("--ok")
    ok_log = args[i + 1]
    del args[i:i + 2]
ledger, ids_files = args[0], args[1:]
sent = [line.split(" ", 1) for f in ids_files for line in open(f).read().splitlines()]
if ok_log is None:
    owed = sent
else:
    owed = [sent[int(i)] for i in open(ok_log).read().split()]
receipts = {v for k, v in sent if k == "receipt"}
tokens = {v for k, v in sent if k == "unsubscribe"}
owed_receipts = {v for k, v in owed if k == "receipt"}
owed_tokens = {v for k, v in owed if k == "unsubscribe"}

db = sqlite3.connect(ledger)
problems = []
rows = dict(db.execute("SELECT provider_id, state FROM receipts"))
missing = owed_receipts - rows.keys()
wrong = {i for i in owed_receipts & rows.keys() if rows[i] != "delivered"}
extra = rows.keys() - receipts
if missing: problems.append(f"{len(missing)} receipts answered 2xx are not in the ledger, e.g. {sorted(missing)[:3]}")
if wrong: problems.append(f"{len(wrong)} receipts not delivered, e.g. {sorted(wrong)[:3]}")
if extra: problems.append(f"{len(extra)} receipts nobody sent, e.g. {sorted(extra)[:3]}")
if ok_log is None and len(rows) != len(receipts):
    problems.append(f"{len(rows)} receipts in the ledger, {len(receipts)} sent")

unsubscribed = {t: a for t, a, u, s in db.execute(
    "SELECT t.token, m.address, u.message, s.address FROM tokens t JOIN messages m ON m.rowid = t.message "
    "LEFT JOIN unsubscribes u ON u.message = t.message LEFT JOIN suppressions s ON s.address = m.address "
    "WHERE u.message IS NOT NULL OR s.address IS NOT NULL")
    if u is not None and s is not None}
half = db.execute(
    "SELECT COUNT(*) FROM tokens t JOIN messages m ON m.rowid = t.message "
    "LEFT JOIN unsubscribes u ON u.message = t.message LEFT JOIN suppressions s ON s.address = m.address "
    "WHERE (u.message IS NULL) != (s.address IS NULL)").fetchone()[0]
count = db.execute("SELECT COUNT(*) FROM unsubscribes").fetchone()[0]
suppressed = db.execute("SELECT COUNT(*) FROM suppressions").fetchone()[0]
missing = owed_tokens - unsubscribed.keys()
extra = unsubscribed.keys() - tokens
if missing: problems.append(f"{len(missing)} unsubscribes answered 2xx are not in the ledger, e.g. {sorted(missing)[:3]}")
if extra: problems.append(f"{len(extra)} unsubscribes nobody sent, e.g. {sorted(extra)[:3]}")
if half: problems.append(f"{half} tokens in only one of unsubscribes and suppressions")
if count != len(unsubscribed) or suppressed != len(unsubscribed):
    problems.append(f"{count} unsubscribes and {suppressed} suppressions for {len(unsubscribed)} tokens")
if ok_log is None and len(unsubscribed) != len(tokens):
    problems.append(f"{len(unsubscribed)} unsubscribes in the ledger, {len(tokens)} sent")
if problems:
    sys.exit("FAIL: " + "; ".join(problems))
what = "answered 2xx" if ok_log is not None else "sent"
print(f"  verified: the {len(owed_receipts)} receipts and {len(owed_tokens)} unsubscribes {what} "
      f"are in the ledger once each ({len(rows)} receipts and {count} unsubscribes in all)", file=sys.stderr)
PY
}

all_ok() { # NAME...: every request of each run answered 2xx
    for n in "$@"; do
        python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if r["ok"] == r["requests"] else f"FAIL: {sys.argv[2]}: {r}")' "$TMP/$n.json" "$n"
    done
}

# --- 4. phase 1 ----------------------------------------------------------------------------------
run_reference() { # ROUND
    fresh "reference-$1"
    start_reference "reference-$1"
    load "reference-$1-receipts" receipts
    load "reference-$1-unsubscribes" unsubscribes
    stop_server TERM
    all_ok "reference-$1-receipts" "reference-$1-unsubscribes"
    verify "$TMP/reference-$1/ledger.sqlite" "$TMP/req/receipts.ids" "$TMP/req/unsubscribes.ids"
}
run_listen() { # ROUND
    fresh "listen-$1"
    start_listen "listen-$1"
    load "listen-$1-receipts" receipts
    load "listen-$1-unsubscribes" unsubscribes
    stop_server TERM
    all_ok "listen-$1-receipts" "listen-$1-unsubscribes"
    verify "$TMP/listen-$1/ledger.sqlite" "$TMP/req/receipts.ids" "$TMP/req/unsubscribes.ids"
}

for r in $(seq "$RUNS"); do
    say "round $r of $RUNS: a server that writes nothing (the client's ceiling)"
    mkdir -p "$TMP/null-$r"
    start_reference "null-$r" --null
    load "null-$r-receipts" receipts
    load "null-$r-unsubscribes" unsubscribes
    stop_server TERM
    if (( r % 2 )); then
        say "round $r: the reference (bare axum, one commit per request)"; run_reference "$r"
        say "round $r: outreach listen"; run_listen "$r"
    else
        say "round $r: outreach listen"; run_listen "$r"
        say "round $r: the reference (bare axum, one commit per request)"; run_reference "$r"
    fi
done

# --- 5. phase 2: SIGKILL mid-load ----------------------------------------------------------------
say "phase 2: outreach listen killed with SIGKILL ${KILL_AFTER} s into $((RECEIPTS + UNSUBS)) mixed requests"
fresh killed
start_listen killed
"$LOAD" "$ADDR" "$TMP/req/mixed.http" "$C" "$TMP/killed.ok" >"$TMP/killed.json" &
CLIENT_PID=$!
sleep "$KILL_AFTER"
stop_server KILL
wait "$CLIENT_PID"
KILL_RESULT=$(python3 - "$TMP/killed.json" "$TMP/killed.ok" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
ok = len(open(sys.argv[2]).read().split())
print(f"{ok} of {r['requests']} answered 2xx before the kill, {r['unanswered']} unanswered, other {r['other']}")
if ok == 0 or r["unanswered"] == 0:
    sys.exit(f"INCONCLUSIVE: the kill was not mid-load ({ok} answered 2xx, {r['unanswered']} not); "
             "change BENCH_KILL_AFTER")
PY
)
say "  $KILL_RESULT"
if verify "$TMP/killed/ledger.sqlite" "$TMP/req/mixed.ids" --ok "$TMP/killed.ok"; then
    KILLED=PASS
else
    KILLED=FAIL
fi
say "  SIGKILL: $KILLED"
say "phase 2: listen again on that ledger, every mixed request sent again"
start_listen killed
load killed-again mixed
stop_server TERM
all_ok killed-again
verify "$TMP/killed/ledger.sqlite" "$TMP/req/mixed.ids"

# --- 6. the table ------------------------------------------------------------------------------
python3 - "$TMP" "$RUNS" "$RECEIPTS" "$UNSUBS" "$C" "$KILLED" "$KILL_RESULT" <<'PY'
import json, statistics, sys
tmp, runs, receipts, unsubs, c, killed, kill_result = sys.argv[1:8]
runs = int(runs)
med = statistics.median
def runs_of(server, kind):
    return [json.load(open(f"{tmp}/{server}-{r}-{kind}.json")) for r in range(1, runs + 1)]
print(f"\n{receipts} signed receipts and {unsubs} one-click unsubscribes, concurrency {c}, "
      f"{runs} rounds (median of the rounds; best in brackets)")
print(f"{'':44}{'receipts/s':>17}{'p50 ms':>8}{'p99 ms':>8}{'unsubscribes/s':>19}{'p50 ms':>8}{'p99 ms':>8}")
rows = [("outreach listen (group commit)", "listen"),
        ("reference: bare axum, a commit per request", "reference"),
        ("null server: answers, writes nothing", "null")]
rates = {}
for label, server in rows:
    line = f"{label:<44}"
    for kind in ("receipts", "unsubscribes"):
        rs = runs_of(server, kind)
        xs = [r["per_second"] for r in rs]
        rates[server, kind] = xs
        line += f"{med(xs):>9,.0f} ({max(xs):>5,.0f})"
        line += f"{med(r['p50_ms'] for r in rs):>8.2f}{med(r['p99_ms'] for r in rs):>8.2f}"
        if kind == "receipts":
            line += "  "
    print(line)
for kind in ("receipts", "unsubscribes"):
    ratios = [l / r for l, r in zip(rates["listen", kind], rates["reference", kind])]
    ceiling = [l / n for l, n in zip(rates["listen", kind], rates["null", kind])]
    print(f"listen / reference, {kind}, round by round: {', '.join(f'{x:.2f}' for x in ratios)} "
          f"(median {med(ratios):.2f}); listen / null server: median {med(ceiling):.2f}")
ratio = med(l / r for l, r in zip(rates["listen", "receipts"], rates["reference", "receipts"]))
rate = med(rates["listen", "receipts"])
print(f"targets: receipts >= 70% of the reference: {'PASS' if ratio >= 0.7 else 'MISS'} ({ratio:.0%}); "
      f">= 2,000 receipts/s: {'PASS' if rate >= 2000 else 'MISS'} ({rate:,.0f}/s); "
      f"nothing lost: PASS (every run verified); SIGKILL mid-load: {killed} ({kill_result})")
PY
[[ $KILLED == PASS ]]

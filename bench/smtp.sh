#!/usr/bin/env bash
# Benchmark of `outreach send` over SMTP against Postfix's own client, same sink, same run.
#
#   bash bench/smtp.sh
#
# Targets (issue 4): BENCH_MESSAGES (100000) psoas emails to `smtp-sink` on loopback, rate limit
# off, at >= 70% of `smtp-source -d` (Postfix's SMTP load generator, connections reused) with the
# same number of sessions and the same message size; and >= 20x mailmerge 2.3.0 (one connection
# per message) against the same sink.
#
# What it does, in one temporary directory (removed at the end):
#   1. cargo build --release; bench/gen-contacts.py writes enough contacts for BENCH_MESSAGES
#      emails; the size of one psoas .eml is measured from a file-transport run (the average of
#      200 messages: that is smtp-source's -l);
#   2. for each of BENCH_RUNS rounds, each against a fresh smtp-sink: smtp-source -d -s SESSIONS
#      -m MESSAGES -l SIZE, then `outreach send --channel email --limit MESSAGES` with
#      concurrency = SESSIONS, the ledger on (fsynced group commits), TCP_NODELAY sessions;
#      the sink's own counter must show every message, and the ledger must record each as sent;
#   3. mailmerge 2.3.0 (bench/.venv, installed there if missing, as bench/check.sh does) sends
#      BENCH_MAILMERGE (2000) messages of the same size to a fresh sink;
#   4. a table: best wall time of each, messages/s, ratios.
#
# Knobs: OUTREACH_BIN (a prebuilt binary), BENCH_MESSAGES=100000 BENCH_SESSIONS=8 BENCH_RUNS=2 BENCH_MAILMERGE=2000 BENCH_KEEP=0.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
M=${BENCH_MESSAGES:-100000}
S=${BENCH_SESSIONS:-8}
RUNS=${BENCH_RUNS:-2}
MM_N=${BENCH_MAILMERGE:-2000}
export OUTREACH_NOW=${OUTREACH_NOW:-2026-11-25T18:00:00Z}

say() { printf '==> %s\n' "$*" >&2; }
command -v /usr/bin/time >/dev/null || apt-get install -y -qq time >/dev/null
[[ -x /usr/sbin/smtp-sink ]] || { say "smtp-sink missing: run scripts/test (it installs postfix)"; exit 1; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/outreach-smtp-bench.XXXXXX")
SINK_PID=
cleanup() { [[ -n $SINK_PID ]] && kill "$SINK_PID" 2>/dev/null; if [[ ${BENCH_KEEP:-0} == 1 ]]; then say "kept $TMP"; else rm -rf "$TMP"; fi; }
trap cleanup EXIT

source "$ROOT/bench/binary.sh"

# Contacts: about 85% of generated rows get an email; generate enough for M.
N=$(( M * 100 / 80 + 1000 ))
say "generating $N contacts"
python3 bench/gen-contacts.py "$TMP/contacts.csv" -n "$N" --seed 2026 >/dev/null

# The shipped campaign with its SMTP section pointed at the sink, without AUTH (smtp-sink has
# none) and with the templates at their absolute path.
python3 - "$ROOT" "$TMP/bench.toml" <<'PY'
import re, sys
root, out = sys.argv[1], sys.argv[2]
s = open(f"{root}/campaigns/psoas.toml").read()
s = re.sub(r'(?m)^(username|password_env|password_file)\s*=.*\n', '', s)
s = s.replace('dir = "../templates/psoas"', f'dir = "{root}/templates/psoas"')
open(out, "w").write(s)
PY
common=(--set "contacts.path=$TMP/contacts.csv" --set "contacts.suppress=[]"
        --set "campaign.require_approval=false" --set "sending.email_rate=0"
        --set "sending.concurrency=$S" --channel email)

say "measuring the size of one psoas email"
"$BIN" send --new-ledger "$TMP/bench.toml" "${common[@]}" --limit 200 -q \
    --set "sending.state_dir=$TMP/size-state" --set "email.outbox=$TMP/size-outbox"
SIZE=$(python3 -c "import os,sys; d=sys.argv[1]; f=[os.path.getsize(os.path.join(d,x)) for x in os.listdir(d)]; print(sum(f)//len(f))" "$TMP/size-outbox")
say "one email: $SIZE bytes"

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
SINK_USER=(); [[ $(id -u) == 0 ]] && SINK_USER=(-u postfix)
start_sink() { # LOG
    /usr/sbin/smtp-sink "${SINK_USER[@]}" -c "127.0.0.1:$PORT" 1024 >"$1" 2>&1 &
    SINK_PID=$!
    for _ in $(seq 100); do (echo >"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && return; sleep 0.05; done
    say "smtp-sink did not start"; exit 1
}
stop_sink() { kill "$SINK_PID" 2>/dev/null; wait "$SINK_PID" 2>/dev/null || true; SINK_PID=; }
received() { grep -o 'mesg=[0-9]*' "$1" | tail -1 | cut -d= -f2; }
timed() { # NAME CMD...: wall seconds and peak RSS into NAME.time
    local name=$1; shift
    /usr/bin/time -f '%e %M' -o "$TMP/$name.time" "$@"
}

for r in $(seq "$RUNS"); do
    say "round $r: smtp-source -d -s $S -m $M -l $SIZE"
    start_sink "$TMP/sink-source-$r.log"
    timed "source-$r" /usr/sbin/smtp-source -d -s "$S" -m "$M" -l "$SIZE" \
        -f care@riverside.example -t patient@example.com "127.0.0.1:$PORT"
    sleep 0.3; stop_sink
    got=$(received "$TMP/sink-source-$r.log"); [[ $got == "$M" ]] || { say "FAIL: sink got $got of $M from smtp-source"; exit 1; }

    say "round $r: outreach send over SMTP, concurrency $S"
    start_sink "$TMP/sink-outreach-$r.log"
    timed "outreach-$r" "$BIN" send --new-ledger "$TMP/bench.toml" "${common[@]}" --limit "$M" --format json \
        --set email.transport=smtp --set email.smtp.host=127.0.0.1 --set "email.smtp.port=$PORT" \
        --set email.smtp.tls=none --set "sending.state_dir=$TMP/state-$r" >"$TMP/outreach-$r.json"
    sleep 0.3; stop_sink
    got=$(received "$TMP/sink-outreach-$r.log")
    sent=$(python3 -c "import json,sys; print(sum(c['sent'] for c in json.load(open(sys.argv[1]))['channels']))" "$TMP/outreach-$r.json")
    [[ $got == "$M" && $sent == "$M" ]] || { say "FAIL: sink got $got, ledger says $sent sent, of $M"; exit 1; }
    say "verified: $M messages, each received once and recorded sent"
done

MM_RATE=0
if [[ $MM_N -gt 0 ]] && ! bench/.venv/bin/python -c "import importlib.metadata as m, sys; sys.exit(m.version('mailmerge') != '2.3.0')" 2>/dev/null; then
    say "creating bench/.venv with mailmerge==2.3.0"
    python3 -m venv bench/.venv
    bench/.venv/bin/pip install --quiet --disable-pip-version-check "mailmerge==2.3.0"
fi
if [[ $MM_N -gt 0 ]]; then
    say "mailmerge 2.3.0: $MM_N messages of $SIZE bytes, one connection each"
    mkdir -p "$TMP/mm"
    python3 - "$TMP/contacts.csv" "$TMP/mm" "$SIZE" "$PORT" <<'PY'
import csv, sys
src, d, size, port = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
rows = [r for r in csv.DictReader(open(src, encoding="utf-8-sig")) if "@" in (r.get("email") or "")]
with open(f"{d}/db.csv", "w", newline="") as f:
    w = csv.writer(f); w.writerow(["email", "name"])
    for r in rows: w.writerow([r["email"], r.get("first_name", "")])
head = "TO: {{email}}\nFROM: Riverside Physio <care@riverside.example>\nSUBJECT: Free phone assessment\n\nHi {{name}},\n"
line = "The psoas connects your spine to your legs; a tight psoas pulls on the lower back.\n"
body = line * max(1, (size - len(head)) // len(line))
open(f"{d}/template.txt", "w").write(head + body)
open(f"{d}/server.conf", "w").write(f"[smtp_server]\nhost = 127.0.0.1\nport = {port}\n")
PY
    start_sink "$TMP/sink-mm.log"
    timed mm bench/.venv/bin/mailmerge --no-dry-run --limit "$MM_N" --output-format raw \
        --template "$TMP/mm/template.txt" --database "$TMP/mm/db.csv" --config "$TMP/mm/server.conf" >/dev/null
    sleep 0.3; stop_sink
    got=$(received "$TMP/sink-mm.log"); [[ $got == "$MM_N" ]] || { say "FAIL: sink got $got of $MM_N from mailmerge"; exit 1; }
fi

python3 - "$TMP" "$M" "$S" "$SIZE" "$RUNS" "$MM_N" <<'PY'
import sys, os
tmp, m, s, size, runs, mm_n = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
def t(name):
    wall, rss = open(f"{tmp}/{name}.time").read().split()
    return float(wall), int(rss) / 1024
src = min(t(f"source-{r}") for r in range(1, runs + 1))
out = min(t(f"outreach-{r}") for r in range(1, runs + 1))
rows = [(f"smtp-source -d -s {s} (best of {runs})", m, *src),
        (f"outreach send, concurrency {s}, ledger on (best of {runs})", m, *out)]
mm = None
if os.path.exists(f"{tmp}/mm.time"):
    mm = t("mm"); rows.append(("mailmerge 2.3.0 --no-dry-run", mm_n, *mm))
print(f"{size}-byte messages to smtp-sink on 127.0.0.1")
print(f"{'client':<52}{'messages':>9}{'wall s':>8}{'msgs/s':>9}{'peak RSS MiB':>14}")
print("-" * 92)
for label, n, wall, rss in rows:
    print(f"{label:<52}{n:>9}{wall:>8.2f}{n / wall:>9,.0f}{rss:>14.1f}")
o_rate, s_rate = m / out[0], m / src[0]
print()
print(f"outreach / smtp-source: {o_rate / s_rate:.0%} (target >= 70%: {'PASS' if o_rate >= 0.7 * s_rate else 'MISS'})")
if mm:
    mm_rate = mm_n / mm[0]
    print(f"outreach / mailmerge: {o_rate / mm_rate:.1f}x (target >= 20x: {'PASS' if o_rate >= 20 * mm_rate else 'MISS'})")
PY

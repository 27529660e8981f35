#!/usr/bin/env bash
# Soak of "never twice across hosts": SOAK_SENDERS (3) concurrent `outreach send`s of one email
# campaign, the ledger in PostgreSQL, over SMTP to aiosmtpd storing every message it receives in
# a Maildir; each sender SIGKILLed at random instants and restarted, SOAK_KILLS (60) kills in
# all, then each run to the end, then one more run, which must send nothing.
#
#   bash bench/soak-postgres.sh
#
# The bar (the PostgreSQL ledger's issue): afterwards every recipient has exactly one message or
# is `unknown` (at most one), and lost <= unknown; no duplicate, ever. The suite runs the same
# at a small size (tests/shared_ledger.rs, `three_senders_killed_at_random_instants_…`).
#
# What it does, in one temporary directory (removed at the end):
#   1. cargo build --release (or OUTREACH_BIN); SOAK_CONTACTS (20000) patients with an email
#      address each (pat<N>@example.com); a throwaway PostgreSQL 15 cluster (bench/pg-cluster.sh:
#      fsync and synchronous_commit on); tests/servers/smtpd.py (aiosmtpd, from the tests'
#      .tools/venv: scripts/test installs it) on a free port, storing into a Maildir;
#   2. bench/soak.py: each sender, with a state directory of its own (its own host), is started,
#      left to run a random SOAK_MIN_MS..SOAK_MAX_MS (200..3000) ms (seed SOAK_SEED, default the
#      clock's, printed) and SIGKILLed if it still runs; its share of the kills done, it runs to
#      the end; rates off (SOAK_RATE: sending.email_rate, 0), so kills land on claims, sessions
#      and commits rather than on pacing sleeps;
#   3. the Maildir is read back (each message's To header) and held against the ledger and the
#      `runs` table (bench/soak.py says what is checked); the figures are printed, and the
#      script exits 1 on any duplicate or other failure (the temp dir then kept, with each
#      sender's stderr and the server's log: BENCH_KEEP=1 keeps it always).
#
# Knobs: OUTREACH_BIN, SOAK_CONTACTS=20000 SOAK_SENDERS=3 SOAK_KILLS=60 SOAK_SEED
# SOAK_MIN_MS=200 SOAK_MAX_MS=3000 SOAK_RATE=0 SOAK_CONCURRENCY (sending.concurrency, default
# the campaign's) BENCH_KEEP=0, PG_BIN.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
N=${SOAK_CONTACTS:-20000}
SENDERS=${SOAK_SENDERS:-3}
KILLS=${SOAK_KILLS:-60}
SEED=${SOAK_SEED:-$(date +%s%N | cut -c1-15)}
RATE=${SOAK_RATE:-0}
export OUTREACH_NOW=${OUTREACH_NOW:-2026-11-25T18:00:00Z}   # US midday
say() { printf '==> %s\n' "$*" >&2; }
PY=$ROOT/.tools/venv/bin/python
"$PY" -c 'import aiosmtpd' 2>/dev/null || { say "aiosmtpd missing ($PY): run scripts/test, which installs it"; exit 1; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/outreach-soak.XXXXXX")
SMTPD_PID=
KEEP=${BENCH_KEEP:-0}
on_exit() {
    [[ -n $SMTPD_PID ]] && { kill "$SMTPD_PID" 2>/dev/null; wait "$SMTPD_PID" 2>/dev/null || true; }
    declare -F pg_stop >/dev/null && pg_stop
    if [[ $KEEP == 1 ]]; then say "kept $TMP"; else rm -rf "$TMP"; fi
}
trap on_exit EXIT
source "$ROOT/bench/binary.sh"
source "$ROOT/bench/pg-cluster.sh"
pg_start
pg_sql -c "CREATE DATABASE soak OWNER outreach"

say "writing $N contacts"
python3 - "$TMP/contacts.csv" "$N" <<'EOF'
import sys
with open(sys.argv[1], "w") as f:
    f.write("id,first_name,last_name,email,phone,channel,email_consent,sms_consent,timezone\n")
    for i in range(int(sys.argv[2])):
        f.write(f"P{i},Pat,Num{i},pat{i}@example.com,,email,yes,,\n")
EOF
# The shipped campaign without AUTH, its templates at their absolute path (as bench/smtp.sh).
python3 - "$ROOT" "$TMP/soak.toml" <<'EOF'
import re, sys
root, out = sys.argv[1], sys.argv[2]
s = open(f"{root}/campaigns/psoas.toml").read()
s = re.sub(r'(?m)^(username|password_env|password_file)\s*=.*\n', '', s)
s = s.replace('dir = "../templates/psoas"', f'dir = "{root}/templates/psoas"')
open(out, "w").write(s)
EOF

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$PY" tests/servers/smtpd.py --port "$PORT" --maildir "$TMP/maildir" >"$TMP/smtpd.out" 2>"$TMP/smtpd.log" &
SMTPD_PID=$!
for _ in $(seq 100); do grep -q ready "$TMP/smtpd.out" 2>/dev/null && break; sleep 0.1; done
grep -q ready "$TMP/smtpd.out" || { say "aiosmtpd did not start"; cat "$TMP/smtpd.log" >&2; exit 1; }
say "aiosmtpd on 127.0.0.1:$PORT, Maildir $TMP/maildir"

sets=(--channel email --set "contacts.path=$TMP/contacts.csv" --set "contacts.suppress=[]"
      --set campaign.require_approval=false --set "sending.email_rate=$RATE"
      --set email.transport=smtp --set email.smtp.host=127.0.0.1 --set "email.smtp.port=$PORT"
      --set email.smtp.tls=none --set "sending.state_url=\"$(pg_url soak)\"")
[[ -z ${SOAK_CONCURRENCY:-} ]] || sets+=(--set "sending.concurrency=$SOAK_CONCURRENCY")

say "soak: $SENDERS senders, $KILLS kills at ${SOAK_MIN_MS:-200}-${SOAK_MAX_MS:-3000} ms, seed $SEED (SOAK_SEED=$SEED repeats the instants)"
cpu0=$(pg_cpu)
set +e
python3 bench/soak.py --bin "$BIN" --senders "$SENDERS" --kills "$KILLS" --seed "$SEED" \
    --min-ms "${SOAK_MIN_MS:-200}" --max-ms "${SOAK_MAX_MS:-3000}" --maildir "$TMP/maildir" \
    --psql "$PG_BIN/psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p $PG_PORT -U postgres -d soak" \
    --out "$TMP" -- "$TMP/soak.toml" "${sets[@]}" >"$TMP/figures.json"
status=$?
set -e
cpu1=$(pg_cpu)
[[ $status == 0 ]] || { KEEP=1; export BENCH_KEEP=1; }
python3 - "$TMP/figures.json" "$cpu0" "$cpu1" "$status" <<'EOF'
import json, sys
v = json.load(open(sys.argv[1]))
server = float(sys.argv[3]) - float(sys.argv[2])
print(f"""
seed {v['seed']}: {v['senders']} senders, {v['contacts']:,} contacts, {v['kills']} SIGKILLs
  runs {v['runs']}: killed mid-run (their run marked lost) {v['killed_mid_run']}, killed before
  their run began {v['killed_before_begin']}, killed after it ended {v['killed_after_end']}
  messages in the Maildir {v['messages']:,}; ledger: sent {v['sent']:,}, unknown {v['unknown']}
  (of which delivered {v['unknown_delivered']}, lost {v['lost']}); duplicates {v['duplicates']}
  lost <= unknown: {v['lost']} <= {v['unknown']}; states {v['states']}
  wall {v['wall_s']} s (kills done after {v['kill_phase_s']} s); server CPU {server:.1f} s
  {'PASS' if sys.argv[4] == '0' else 'FAIL'}""")
EOF
exit "$status"

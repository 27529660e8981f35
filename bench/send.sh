#!/usr/bin/env bash
# Benchmark of `outreach send` to the file transports with the ledger on.
#
#   bash bench/send.sh
#
# Targets (issue 3): 100,000 contacts x 2 channels at >= 10,000 messages/s with the ledger on; a
# rerun over the completed campaign in under 5 s; peak memory under 200 MB.
#
# What it does, in one temporary directory (removed at the end):
#   1. cargo build --release; bench/gen-contacts.py writes BENCH_CONTACTS (100000) contacts;
#   2. reference, same run: `send --dry-run` renders every message and records nothing (the cost
#      of the plan and rendering alone);
#   3. `send` with rates off: every message claimed in the ledger (SQLite unless BENCH_STORE says
#      otherwise; fsynced group commits), written to the outbox (.eml files, SMS JSON lines),
#      outcome recorded; the JSON summary must show every due message sent, and the outbox must
#      hold exactly that many messages;
#   4. `send` again over the completed campaign: nothing new may go;
#   each under /usr/bin/time (wall time, peak RSS); then a table.
#
# With BENCH_STORE=postgres the ledger is in a throwaway PostgreSQL 15 cluster instead
# (bench/pg-cluster.sh: 127.0.0.1, trust, fsync and synchronous_commit on); bench/send-postgres.sh
# compares the two stores in interleaved rounds.
#
# Knobs (environment): OUTREACH_BIN (a prebuilt binary), BENCH_CONTACTS=100000 BENCH_SEED=2026
# BENCH_KEEP=0 (1 keeps the temp dir), BENCH_STORE=sqlite (or postgres).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
STORE=${BENCH_STORE:-sqlite}
[[ $STORE == sqlite || $STORE == postgres ]] || { echo "BENCH_STORE=$STORE: sqlite or postgres" >&2; exit 2; }
source "$ROOT/bench/send-common.sh"

url=
if [[ $STORE == postgres ]]; then
    source "$ROOT/bench/pg-cluster.sh"
    at_exit pg_stop
    pg_start
    pg_sql -c "CREATE DATABASE bench OWNER outreach"
    url=$(pg_url bench)
fi
send_sets "$TMP" "$url"

say "reference: send --dry-run (render everything, record nothing)"
run dry send campaigns/psoas.toml "${sets[@]}" --dry-run
say "send (ledger on, file transports)"
run first send campaigns/psoas.toml "${sets[@]}" --new-ledger
say "send again over the completed campaign"
run rerun send campaigns/psoas.toml "${sets[@]}"

verify first rerun "$TMP" >/dev/null

python3 - "$TMP" "$N" <<'EOF'
import sys
tmp, n = sys.argv[1], int(sys.argv[2])
def read(name):
    return float(open(f"{tmp}/{name}.wall").read()), int(open(f"{tmp}/{name}.rss").read()) / 1024
import json
msgs = sum(c["due"] for c in json.load(open(f"{tmp}/first.json"))["channels"])
rows = [("send --dry-run (reference: render only)", "dry", msgs),
        ("send (ledger + file transports)", "first", msgs),
        ("send again (completed campaign)", "rerun", 0)]
print(f"{'run':<42}{'contacts':>9}{'messages':>10}{'wall s':>8}{'msgs/s':>9}{'peak RSS MiB':>14}")
print("-" * 92)
for label, name, m in rows:
    wall, rss = read(name)
    rate = f"{m / wall:,.0f}" if m else "-"
    print(f"{label:<42}{n:>9}{m:>10}{wall:>8.2f}{rate:>9}{rss:>14.1f}")
first, rss1 = read("first"); rerun, rss2 = read("rerun"); dry, _ = read("dry")
print()
print(f"send vs its own dry run: {dry / first:.2f}x the dry run's rate (the ledger and the outbox cost {first - dry:.1f} s)")
print(f"targets: >= 10,000 msgs/s: {'PASS' if msgs / first >= 10000 else 'MISS'} ({msgs / first:,.0f}); "
      f"rerun < 5 s: {'PASS' if rerun < 5 else 'MISS'} ({rerun:.2f} s); "
      f"peak RSS < 200 MiB: {'PASS' if max(rss1, rss2) < 200 else 'MISS'} ({max(rss1, rss2):.1f} MiB)")
EOF

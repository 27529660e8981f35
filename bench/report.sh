#!/usr/bin/env bash
# Benchmark of `outreach report --html` on a 1,000,000-message ledger, beside `status` on the
# same ledger.
#
#   bash bench/report.sh
#
# Target (issue 20): the HTML report of a 1,000,000-message ledger in under 3 s and 200 MB.
#
# What it does, in one temporary directory (removed at the end):
#   1. cargo build --release; bench/gen-contacts.py writes BENCH_CONTACTS (500000) contacts;
#   2. `outreach send --limit 1` creates the ledger (schema, campaign, a run) as outreach makes
#      it; then bench/report-ledger.py fills it with bulk SQL inserts: one message per contact
#      and channel (1,000,000 rows: 96% sent over three days and three runs, 2% failed for good,
#      1% to retry, 1% unknown), an SMS id and a receipt for every sent SMS (92% delivered, 4%
#      undelivered with a carrier code), returned mail for 3% of emails (hard, soft, policy,
#      complaint), unsubscribes and STOP replies. A real send of 500,000 contacts x 2 would
#      take minutes and gigabytes of outbox for the same rows;
#   3. BENCH_ROUNDS (3) interleaved rounds of: `status` (ledger only: its reference), `report
#      --all STATE_DIR --html` (ledger only), `report CAMPAIGN --html` (the ledger plus loading
#      the 500,000 contacts and asking the planner about each, for the funnel's skipped by
#      reason); each under /usr/bin/time (wall time, peak RSS);
#   4. checks the report's figures against the ledger (sqlite3) and prints the best round.
#
# Knobs: OUTREACH_BIN, BENCH_CONTACTS=500000 BENCH_ROUNDS=3 BENCH_SEED=2026 BENCH_KEEP=0.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
N=${BENCH_CONTACTS:-500000}
ROUNDS=${BENCH_ROUNDS:-3}
SEED=${BENCH_SEED:-2026}
export OUTREACH_NOW=${OUTREACH_NOW:-2026-11-28T18:00:00Z}

say() { printf '==> %s\n' "$*" >&2; }
command -v /usr/bin/time >/dev/null || { say "installing GNU time"; apt-get install -y -qq time >/dev/null; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/outreach-report-bench.XXXXXX")
if [[ ${BENCH_KEEP:-0} == 1 ]]; then trap 'say "kept $TMP"' EXIT; else trap 'rm -rf "$TMP"' EXIT; fi

source "$ROOT/bench/binary.sh"
say "generating $N contacts"
python3 bench/gen-contacts.py "$TMP/contacts.csv" -n "$N" --seed "$SEED" >/dev/null

sets=(--set "contacts.path=$TMP/contacts.csv" --set "contacts.suppress=[]" --set "campaign.require_approval=false"
      --set "sending.state_dir=$TMP/state" --set "email.outbox=$TMP/outbox/email"
      --set "sms.outbox=$TMP/outbox/sms.jsonl" --set "sending.email_rate=0" --set "sending.sms_rate=0"
      --set 'report.sms_price_per_segment="0.0079"')

say "creating the ledger (send --limit 1), then filling it"
"$BIN" send campaigns/psoas.toml "${sets[@]}" --new-ledger --limit 1 -q --set "sms.quiet_hours=" >/dev/null
python3 bench/report-ledger.py "$TMP/state/ledger.sqlite" "$TMP/contacts.csv"

# run NAME ARGS...: outreach under /usr/bin/time; appends "wall rss" to NAME.times
run() {
    local name=$1; shift
    /usr/bin/time -f '%e %M' -a -o "$TMP/$name.times" "$BIN" "$@" >/dev/null
}
for round in $(seq "$ROUNDS"); do
    say "round $round/$ROUNDS: status, report --all --html, report --html"
    run status status campaigns/psoas.toml "${sets[@]}" --format json
    run all report --all "$TMP/state" --html --out "$TMP/all.html"
    run html report campaigns/psoas.toml "${sets[@]}" --html --out "$TMP/report.html"
done

python3 - "$TMP" "$N" <<'PY'
import re, sqlite3, sys
tmp, n = sys.argv[1], int(sys.argv[2])
db = sqlite3.connect(f"{tmp}/state/ledger.sqlite")
html = open(f"{tmp}/report.html").read()
titles = re.findall(r"<title>([^<]*)</title>", html)
def plotted(what):
    return sum(int(m.group(1)) for t in titles for m in [re.match(r".*: (\d+) " + re.escape(what) + r"$", t)] if m)
for channel in ("email", "sms"):
    sent = db.execute("SELECT COUNT(*) FROM messages WHERE channel = ? AND state = 'sent'", (channel,)).fetchone()[0]
    assert plotted(f"{channel} sent") == sent, (channel, plotted(f"{channel} sent"), sent)
rows = db.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
print(f"verified: the report's sent per day add up to the ledger's ({rows:,} messages)")
def rounds(name):
    return [tuple(map(float, l.split())) for l in open(f"{tmp}/{name}.times") if l.strip() and l[0].isdigit()]
print()
print(f"{'command':<58}{'best s':>8}{'all rounds s':>22}{'peak RSS MiB':>14}")
print("-" * 102)
best = {}
for label, name in (("status (reference: ledger counts)", "status"),
                    ("report --all STATE_DIR --html (ledger only)", "all"),
                    (f"report CAMPAIGN --html (ledger + {n:,} contacts planned)", "html")):
    r = rounds(name)
    walls = [w for w, _ in r]
    rss = max(m for _, m in r) / 1024
    best[name] = (min(walls), rss)
    print(f"{label:<58}{min(walls):>8.2f}{', '.join(f'{w:.2f}' for w in walls):>22}{rss:>14.1f}")
w, rss = best["html"]
print()
print(f"report --html vs status: {w / best['status'][0]:.2f}x its time")
print(f"target: report --html < 3 s: {'PASS' if w < 3 else 'MISS'} ({w:.2f} s); "
      f"< 200 MiB: {'PASS' if rss < 200 else 'MISS'} ({rss:.1f} MiB)")
PY

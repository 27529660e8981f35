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
#   3. `send` with rates off: every message claimed in the SQLite ledger (fsynced group commits),
#      written to the outbox (.eml files, SMS JSON lines), outcome recorded; the JSON summary
#      must show every due message sent, and the outbox must hold exactly that many messages;
#   4. `send` again over the completed campaign: nothing new may go;
#   each under /usr/bin/time (wall time, peak RSS); then a table.
#
# Knobs (environment): OUTREACH_BIN (a prebuilt binary), BENCH_CONTACTS=100000 BENCH_SEED=2026 BENCH_KEEP=0 (1 keeps the temp dir).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
N=${BENCH_CONTACTS:-100000}
SEED=${BENCH_SEED:-2026}
export OUTREACH_NOW=${OUTREACH_NOW:-2026-11-25T18:00:00Z}   # US midday: no quiet hours

say() { printf '==> %s\n' "$*" >&2; }
command -v /usr/bin/time >/dev/null || { say "installing GNU time"; apt-get install -y -qq time >/dev/null; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/outreach-send-bench.XXXXXX")
if [[ ${BENCH_KEEP:-0} == 1 ]]; then trap 'say "kept $TMP"' EXIT; else trap 'rm -rf "$TMP"' EXIT; fi

source "$ROOT/bench/binary.sh"
say "generating $N contacts"
python3 bench/gen-contacts.py "$TMP/contacts.csv" -n "$N" --seed "$SEED" >/dev/null

sets=(--set "contacts.path=$TMP/contacts.csv" --set "contacts.suppress=[]" --set "campaign.require_approval=false"
      --set "sending.state_dir=$TMP/state" --set "email.outbox=$TMP/outbox/email"
      --set "sms.outbox=$TMP/outbox/sms.jsonl" --set "sending.email_rate=0" --set "sending.sms_rate=0")

# run NAME ARGS...: runs outreach under /usr/bin/time; leaves NAME.json, NAME.wall, NAME.rss
run() {
    local name=$1; shift
    /usr/bin/time -f '%e %M' -o "$TMP/$name.time" "$BIN" "$@" --format json >"$TMP/$name.json"
    read -r wall rss <"$TMP/$name.time"
    echo "$wall" >"$TMP/$name.wall"; echo "$rss" >"$TMP/$name.rss"
}
field() { python3 -c "import json,sys; v=json.load(open(sys.argv[1])); print(sum(c[sys.argv[2]] for c in v['channels']))" "$TMP/$1.json" "$2"; }

say "reference: send --dry-run (render everything, record nothing)"
run dry send campaigns/psoas.toml "${sets[@]}" --dry-run
say "send (ledger on, file transports)"
run first send campaigns/psoas.toml "${sets[@]}" --new-ledger
say "send again over the completed campaign"
run rerun send campaigns/psoas.toml "${sets[@]}"

due=$(field first due); sent=$(field first sent); again=$(field rerun sent)
files=$(find "$TMP/outbox/email" -name '*.eml' | wc -l); lines=$(wc -l <"$TMP/outbox/sms.jsonl")
[[ $sent == "$due" ]] || { say "FAIL: $sent sent of $due due"; exit 1; }
[[ $((files + lines)) == "$sent" ]] || { say "FAIL: outbox holds $((files + lines)), ledger says $sent"; exit 1; }
[[ $again == 0 ]] || { say "FAIL: the rerun sent $again"; exit 1; }
say "verified: $sent messages sent ($files emails, $lines SMS), each once; the rerun sent none"

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

#!/usr/bin/env bash
# The bounce benchmarks (BENCHMARKS.md, "Bounce classification" and "Bounces recorded"):
#
#   bash bench/bounces.sh
#
# 1. The classifier alone: 10,000 DSNs generated from tests/bounces, classified, against
#    mailparse alone on the same files (examples/bounce_bench.rs).
# 2. `outreach bounces` end to end: BENCH_CONTACTS (11,000) contacts emailed by the file transport
#    with a VERP bounce address (about 10,000 have an email and consent); a Maildir of one DSN for
#    each of the first 10,000 emails, made from the corpus's
#    eight DSN templates with that email's token and address put in; then, in BENCH_ROUNDS (3)
#    alternating rounds, the parser alone and the classifier on those files, and the release
#    binary reading, classifying, matching and recording them all into a copy of the ledger as it
#    was after the send (wall time, peak RSS). A run must read every message and record one
#    event each; a rerun must read none.
#
# Knobs (environment): OUTREACH_BIN (a prebuilt binary), BENCH_CONTACTS=11000 BENCH_ROUNDS=3
# BENCH_KEEP=0 (1 keeps the temp dir).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
N=${BENCH_CONTACTS:-11000}
ROUNDS=${BENCH_ROUNDS:-3}
export OUTREACH_NOW=${OUTREACH_NOW:-2026-11-25T18:00:00Z}   # US midday: no quiet hours

say() { printf '==> %s\n' "$*" >&2; }
command -v /usr/bin/time >/dev/null || { say "installing GNU time"; apt-get install -y -qq time >/dev/null; }

say "1. the classifier alone"
cargo run --quiet --release --example bounce_bench

TMP=$(mktemp -d "${TMPDIR:-/tmp}/outreach-bounces-bench.XXXXXX")
if [[ ${BENCH_KEEP:-0} == 1 ]]; then trap 'say "kept $TMP"' EXIT; else trap 'rm -rf "$TMP"' EXIT; fi
source "$ROOT/bench/binary.sh"

say "2. outreach bounces: $N emails sent with a VERP bounce address"
python3 bench/gen-contacts.py "$TMP/contacts.csv" -n "$N" --seed 2026 >/dev/null
sets=(--set "contacts.path=$TMP/contacts.csv" --set "contacts.suppress=[]"
      --set "campaign.require_approval=false" --set "campaign.channels=[\"email\"]"
      --set "sending.state_dir=$TMP/state" --set "email.outbox=$TMP/outbox"
      --set "sending.email_rate=0" --set "feedback.maildir=$TMP/maildir"
      --set "email.bounce_address=bounces+{{token}}@riverside.example")
"$BIN" send campaigns/psoas.toml "${sets[@]}" --new-ledger -q

say "a Maildir of one DSN per email"
python3 - "$TMP" <<'PY'
import csv, email, email.utils, os, re, sys
tmp = sys.argv[1]
expected = {r["file"]: r for r in csv.DictReader(open("tests/bounces/expected.tsv"), delimiter="\t")}
templates = ["postfix-dsn-511.eml", "postfix-delayed-4xx.eml", "exim-dsn.eml",
             "o365-recipientnotfound.eml", "o365-policy-571.eml", "gmail-511.eml",
             "gmail-422-full.eml", "dmarc-571.eml"]
texts = [open(f"tests/bounces/{t}").read() for t in templates]
for sub in ("new", "cur", "tmp"):
    os.makedirs(f"{tmp}/maildir/{sub}", exist_ok=True)
for i, name in enumerate(sorted(os.listdir(f"{tmp}/outbox"))[:10000]):
    head = open(f"{tmp}/outbox/{name}", "rb").read().split(b"\r\n\r\n", 1)[0].decode()
    token = re.search(r"bounces\+([a-z0-9]+)@", head).group(1)
    to = email.utils.parseaddr(email.message_from_string(head)["To"])[1]
    k = i % len(templates)
    row = expected[templates[k]]
    text = texts[k].replace(row["token"], token).replace(row["recipients"], to)
    text = text.replace("Margaret.Okafor@example.org", to)
    with open(f"{tmp}/maildir/new/1796573642.M{i}P1.bench", "w") as f:
        f.write(text)
PY
msgs=$(find "$TMP/maildir/new" -type f | wc -l)
cp "$TMP/state/ledger.sqlite" "$TMP/ledger.sent"

for round in $(seq 1 "$ROUNDS"); do
    say "round $round: parser and classifier alone, then outreach bounces"
    cargo run --quiet --release --example bounce_bench -- "$TMP/maildir" >"$TMP/alone.$round"
    cp "$TMP/ledger.sent" "$TMP/state/ledger.sqlite"
    rm -f "$TMP/state/ledger.sqlite-wal" "$TMP/state/ledger.sqlite-shm"
    /usr/bin/time -f '%e %M' -o "$TMP/run.$round.time" \
        "$BIN" bounces campaigns/psoas.toml "${sets[@]}" --format json >"$TMP/run.$round.json"
    "$BIN" bounces campaigns/psoas.toml "${sets[@]}" --format json >"$TMP/rerun.$round.json"
done

python3 - "$TMP" "$ROUNDS" "$msgs" <<'PY'
import json, re, sys
tmp, rounds, msgs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
print(f"{msgs} DSNs in a Maildir, one per email sent; best of 5 in-process rounds for the first two")
print(f"{'round':<6}{'parse only':>18}{'classify only':>18}{'outreach bounces':>22}{'bounces / parse':>17}{'peak RSS':>10}")
for r in range(1, rounds + 1):
    alone = open(f"{tmp}/alone.{r}").read()
    parse = float(re.search(r"parse only \(mailparse\):\s+([\d.]+) ms", alone).group(1)) / 1e3
    classify = float(re.search(r"classify:\s+([\d.]+) ms", alone).group(1)) / 1e3
    wall, rss = open(f"{tmp}/run.{r}.time").read().split()
    wall, rss = float(wall), int(rss) / 1024
    run = json.load(open(f"{tmp}/run.{r}.json"))
    again = json.load(open(f"{tmp}/rerun.{r}.json"))
    events = sum(run["events"].values())
    if run["read"] != msgs or events != msgs or again["read"] != 0:
        sys.exit(f"FAIL round {r}: read {run['read']}, events {events}, rerun read {again['read']}")
    rate = lambda s: f"{msgs / s:,.0f}/s"
    print(f"{r:<6}{parse * 1e3:>9.1f} ms {rate(parse):>8}{classify * 1e3:>9.1f} ms {rate(classify):>8}"
          f"{wall:>11.2f} s {rate(wall):>9}{wall / parse:>16.1f}x{rss:>7.1f} MiB")
print(f"verified each round: {msgs} read, {msgs} events recorded; the rerun read none")
PY

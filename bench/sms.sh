#!/usr/bin/env bash
# Benchmark of `outreach send` over the http SMS transport (Twilio preset) against a local gateway
# sink, beside a bare reqwest loop doing the same requests at the same concurrency, same run.
#
#   bash bench/sms.sh
#
# Target (issue 5): 50,000 SMS, rate limit off, at >= 70% of the bare reqwest loop's messages/s.
# The issue also names `oha` as a reference: it runs beside the others, for the record. It is not
# like-for-like with a reqwest client: it drives hyper directly, one connection per worker, and
# here does the same requests on less than half the CPU of the bare reqwest loop.
#
# What it does, in one temporary directory (removed at the end):
#   1. cargo build --release of outreach and the two examples (examples/gateway_sink.rs: HTTP/1.1
#      keep-alive on plain tokio, answering like Twilio; examples/http_reference.rs: the loop);
#      `cargo install oha` (OHA_VERSION, --locked) into target/bench-tools, once (~4 min);
#   2. writes BENCH_MESSAGES (50000) SMS contacts (unique valid US numbers in random order,
#      consent given), and the same numbers' request bodies for oha (`-Z`: one per line);
#   3. starts the sink on 127.0.0.1 (one process for the whole run);
#   4. BENCH_RUNS rounds of: the reference on one tokio worker (its fastest shape on 2 cores:
#      the target's reference); the same loop on one worker per core (what `#[tokio::main]`
#      gives; for comparison); oha (`-c` BENCH_CONCURRENCY connections, HTTP/1.1, the same
#      form POST with basic auth, its own requests/s); then `outreach send --channel sms` (shipped campaign and
#      templates, transport http, preset twilio, base_url the sink, sms_rate off, concurrency
#      BENCH_CONCURRENCY, ledger on, a new ledger each round), whose JSON summary must show
#      every message sent;
#   5. prints messages/s for both references and for outreach, over its whole process (loading
#      50,000 contacts, plan, credentials check, render, ledger claims, HTTP, outcomes, run
#      report) and over its run (the summary's seconds: from the ledger's opening to the last
#      outcome): the best round and the median of each, their ratios, and each round's ratio to
#      its own reference. The reference runs in one of two modes from run to run (~50,000 and
#      ~80,000 messages/s here), so no single figure is the whole story.
#
# Knobs (environment): BENCH_MESSAGES=50000 BENCH_CONCURRENCY=32 BENCH_RUNS=5 BENCH_KEEP=0 (1 keeps the dir).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
N=${BENCH_MESSAGES:-50000}
C=${BENCH_CONCURRENCY:-32}
RUNS=${BENCH_RUNS:-5}
OHA_VERSION=1.16.0
export OUTREACH_NOW=${OUTREACH_NOW:-2026-11-25T18:00:00Z}   # US midday
export OUTREACH_BENCH_TOKEN=bench-token

say() { printf '==> %s\n' "$*" >&2; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/outreach-sms-bench.XXXXXX")
SINK_PID=
cleanup() {
    [[ -n $SINK_PID ]] && kill "$SINK_PID" 2>/dev/null || true
    if [[ ${BENCH_KEEP:-0} == 1 ]]; then say "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT

say "building (release)"
cargo build --release --quiet --bin outreach --example gateway_sink --example http_reference
BIN="$ROOT/target/release/outreach"
EX="$ROOT/target/release/examples"
OHA="$ROOT/target/bench-tools/bin/oha"
if ! "$OHA" --version 2>/dev/null | grep -q "$OHA_VERSION"; then
    say "installing oha $OHA_VERSION into target/bench-tools (once)"
    cargo install --quiet --locked --version "$OHA_VERSION" --root "$ROOT/target/bench-tools" oha
fi

say "writing $N SMS contacts"
python3 - "$TMP/contacts.csv" "$N" "$TMP/oha-bodies.txt" <<'PY'
import random, sys, urllib.parse
path, n, bodies = sys.argv[1], int(sys.argv[2]), sys.argv[3]
# Area code 312, exchange 200-999 (valid US numbers, unique per row), in no order, as in a real
# export (sorted numbers would let the ledger's index take each group of claims in one page).
numbers = [f"(312) {200 + i // 10000}-{i % 10000:04}" for i in range(n)]
random.Random(2026).shuffle(numbers)
with open(path, "w") as f:
    f.write("id,first_name,last_name,email,phone,channel,email_consent,sms_consent,timezone\n")
    for i, number in enumerate(numbers):
        f.write(f"P{i:06},Pat{i},Lee,,{number},sms,,yes,\n")
# oha's requests: what examples/http_reference.rs posts (To, Body as long as the shipped SMS, From).
text = ("Riverside Physio: Hi Pat, lower back or hip pain? A tight psoas muscle may be the cause. "
        "Get a FREE phone assessment & treatment plan: https://riverside.example/book or call "
        "+1 312 555 0100. Reply STOP to opt out")
with open(bodies, "w") as f:
    for number in numbers:
        e164 = "+1" + "".join(c for c in number if c.isdigit())
        f.write(urllib.parse.urlencode([("To", e164), ("Body", text), ("From", "+13125550100")]) + "\n")
PY

"$EX/gateway_sink" 127.0.0.1:0 >"$TMP/sink.addr" &
SINK_PID=$!
for _ in $(seq 50); do [[ -s $TMP/sink.addr ]] && break; sleep 0.1; done
ADDR=$(head -1 "$TMP/sink.addr")
URL="http://$ADDR"
say "sink on $URL; concurrency $C"

# Prints its own line and appends it to $TMP/reference-$1.txt; $1: tokio worker threads (0: one
# per core).
reference() {
    local workers=$1
    [[ $workers == 0 ]] && workers=$(nproc)
    "$EX/http_reference" "$URL" "$N" "$C" "$workers" | tee -a "$TMP/reference-$1.txt" >&2
}

# oha's JSON report of round $1, kept for the summary below.
oha() {
    local account=ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
    "$OHA" --no-tui --http-version 1.1 -n "$N" -c "$C" -m POST -T application/x-www-form-urlencoded \
        -a "$account:token" -Z "$TMP/oha-bodies.txt" --output-format json \
        "$URL/2010-04-01/Accounts/$account/Messages.json" >"$TMP/oha-$1.json"
}

# Rounds of (references, outreach), each outreach run on a new ledger: the machine's speed
# drifts within a run, so each side gets the same number of tries, side by side.
for r in $(seq "$RUNS"); do
    say "round $r: reference (bare reqwest loop), one worker"
    reference 1
    say "round $r: reference, one worker per core"
    reference 0
    say "round $r: oha"
    oha "$r"
    say "round $r: outreach send (twilio preset, ledger on)"
    start=$(date +%s.%N)
    "$BIN" send campaigns/psoas.toml --new-ledger --channel sms --format json \
        --set "contacts.path=$TMP/contacts.csv" --set "contacts.suppress=[]" --set "campaign.require_approval=false" \
        --set "sending.state_dir=$TMP/state-$r" --set "sms.transport=http" --set "sms.quiet_hours=" \
        --set "sms.gateway.base_url=$URL" --set "sms.gateway.token_env=OUTREACH_BENCH_TOKEN" \
        --set "sms.gateway.account=ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" \
        --set "sending.sms_rate=0" --set "sending.concurrency=$C" >"$TMP/send-$r.json"
    end=$(date +%s.%N)
    echo "$start $end" >"$TMP/send-$r.time"
done

python3 - "$TMP" "$N" "$C" "$RUNS" <<'PY'
import json, re, statistics, sys
tmp, n, c, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rate = lambda path: [float(m) for m in re.findall(r"= (\d+) messages/s", open(path).read())]
ref1, refc = rate(f"{tmp}/reference-1.txt"), rate(f"{tmp}/reference-0.txt")
ohas = []
for r in range(1, runs + 1):
    report = json.load(open(f"{tmp}/oha-{r}.json"))
    assert report["statusCodeDistribution"] == {"201": n}, report["statusCodeDistribution"]
    ohas.append(report["summary"]["requestsPerSec"])
wholes, runs_only = [], []
for r in range(1, runs + 1):
    summary = json.load(open(f"{tmp}/send-{r}.json"))
    sms = summary["channels"][0]
    assert sms["sent"] == n, f"round {r}: expected {n} sent, got {sms}"
    start, end = map(float, open(f"{tmp}/send-{r}.time").read().split())
    wholes.append(n / (end - start))
    runs_only.append(n / summary["seconds"])
med = statistics.median
print(f"\n{n} SMS over HTTP/1.1 to a local sink, concurrency {c}, rate limit off, {runs} rounds")
print(f"{'':36}{'best/s':>9}{'median/s':>10}{'vs ref, best':>14}{'median':>8}{'vs ref/core':>13}")
rows = [
    ("bare reqwest loop, 1 worker (ref)", ref1),
    ("bare reqwest loop, 1 worker/core", refc),
    ("oha (hyper, not like-for-like)", ohas),
    ("outreach send, whole process", wholes),
    ("outreach send, run only", runs_only),
]
for name, xs in rows:
    print(f"{name:36}{max(xs):>9.0f}{med(xs):>10.0f}{max(xs) / max(ref1):>14.0%}"
          f"{med(xs) / med(ref1):>8.0%}{med(xs) / med(refc):>13.0%}")
# Each round's outreach against that round's reference: the machine's slow and fast spells
# fall on both sides of a ratio.
paired = sorted(w / r for w, r in zip(wholes, ref1))
print(f"whole process / reference, round by round: "
      f"{', '.join(f'{x:.0%}' for x in paired)} (median {med(paired):.0%})")
fmt = lambda xs: ", ".join(f"{x:.0f}" for x in xs)
print(f"whole process / oha: median {med(wholes) / med(ohas):.0%}")
print(f"all runs, messages/s: ref {fmt(ref1)}; ref per core {fmt(refc)}; oha {fmt(ohas)}; "
      f"whole {fmt(wholes)}; run only {fmt(runs_only)}")
print("target: outreach's whole process >= 70% of the reference (1 worker)")
PY

#!/usr/bin/env bash
# Benchmark of `outreach send` over the http SMS transport (Twilio preset) against a local gateway
# sink, beside a bare reqwest loop doing the same requests at the same concurrency, same run.
#
#   bash bench/sms.sh
#
# Target (issue 5): 50,000 SMS, rate limit off, at >= 70% of the bare reqwest loop's messages/s.
#
# What it does, in one temporary directory (removed at the end):
#   1. cargo build --release of outreach and the two examples (examples/gateway_sink.rs: HTTP/1.1
#      keep-alive on plain tokio, answering like Twilio; examples/http_reference.rs: the loop, on
#      a runtime of BENCH_REFERENCE_WORKERS (1) worker, its steadiest and fastest on 2 cores);
#   2. writes BENCH_MESSAGES (50000) SMS contacts (unique valid US numbers, consent given);
#   3. starts the sink on 127.0.0.1 (one process for the whole run);
#   4. BENCH_RUNS rounds of: the reference, then `outreach send --channel sms` (shipped campaign
#      and templates, transport http, preset twilio, base_url the sink, sms_rate off, concurrency
#      BENCH_CONCURRENCY, ledger on, a new ledger each round); every send's JSON summary must
#      show every message sent;
#   5. prints messages/s, best of the rounds for each and their medians (a run of under a second
#      here moves by up to 40% with the machine, so the median is the steadier figure): the
#      reference, outreach over its whole process
#      (loading 50,000 contacts, plan, credentials check, render, ledger claims, HTTP, outcomes)
#      and over its run (the summary's seconds: from the ledger's opening to the last outcome),
#      and the ratios.
#
# Knobs (environment): BENCH_MESSAGES=50000 BENCH_CONCURRENCY=32 BENCH_RUNS=5
# BENCH_REFERENCE_WORKERS=1 BENCH_KEEP=0 (1 keeps the dir).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
N=${BENCH_MESSAGES:-50000}
C=${BENCH_CONCURRENCY:-32}
RUNS=${BENCH_RUNS:-5}
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

say "writing $N SMS contacts"
python3 - "$TMP/contacts.csv" "$N" <<'PY'
import sys
path, n = sys.argv[1], int(sys.argv[2])
with open(path, "w") as f:
    f.write("id,first_name,last_name,email,phone,channel,email_consent,sms_consent,timezone\n")
    for i in range(n):
        # Area code 312, exchange 200-999 (valid US numbers, unique per row).
        f.write(f"P{i:06},Pat{i},Lee,,(312) {200 + i // 10000}-{i % 10000:04},sms,,yes,\n")
PY

"$EX/gateway_sink" 127.0.0.1:0 >"$TMP/sink.addr" &
SINK_PID=$!
for _ in $(seq 50); do [[ -s $TMP/sink.addr ]] && break; sleep 0.1; done
ADDR=$(head -1 "$TMP/sink.addr")
URL="http://$ADDR"
say "sink on $URL; concurrency $C"

reference() {
    "$EX/http_reference" "$URL" "$N" "$C" "${BENCH_REFERENCE_WORKERS:-1}" | tee -a "$TMP/reference.txt" >&2
}

# Rounds of (reference, outreach), each outreach run on a new ledger: the machine's speed drifts
# within a run, so both sides get the same number of tries and their best is compared.
for r in $(seq "$RUNS"); do
    say "round $r: reference (bare reqwest loop)"
    reference
    say "round $r: outreach send (twilio preset, ledger on)"
    start=$(date +%s.%N)
    "$BIN" send campaigns/psoas.toml --channel sms --format json \
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
refs = [float(m) for m in re.findall(r"= (\d+) messages/s", open(f"{tmp}/reference.txt").read())]
wholes, runs_only = [], []
for r in range(1, runs + 1):
    summary = json.load(open(f"{tmp}/send-{r}.json"))
    sms = summary["channels"][0]
    assert sms["sent"] == n, f"round {r}: expected {n} sent, got {sms}"
    start, end = map(float, open(f"{tmp}/send-{r}.time").read().split())
    wholes.append(n / (end - start))
    runs_only.append(n / summary["seconds"])
ref, whole, run = max(refs), max(wholes), max(runs_only)
print(f"\n{n} SMS over HTTP/1.1 to a local sink, concurrency {c}, rate limit off, best of {runs}")
print(f"{'':34}{'seconds':>9}{'messages/s':>12}{'vs reference':>14}")
print(f"{'bare reqwest loop':34}{n / ref:>9.2f}{ref:>12.0f}{'100%':>14}")
print(f"{'outreach send, whole process':34}{n / whole:>9.2f}{whole:>12.0f}{whole / ref:>13.0%}")
print(f"{'outreach send, run only':34}{n / run:>9.2f}{run:>12.0f}{run / ref:>13.0%}")
fmt = lambda xs: ", ".join(f"{x:.0f}" for x in xs)
print(f"all runs, messages/s: reference {fmt(refs)}; whole {fmt(wholes)}; run only {fmt(runs_only)}")
med = statistics.median
print(f"medians: reference {med(refs):.0f}, whole {med(wholes):.0f} ({med(wholes) / med(refs):.0%}), "
      f"run only {med(runs_only):.0f} ({med(runs_only) / med(refs):.0%}); target: >= 70%")
PY

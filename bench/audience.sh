#!/usr/bin/env bash
# Benchmark of the audience filter (BENCHMARKS.md, "Audience filter"):
#
#   bash bench/audience.sh
#
# Bar (issue 21): `check` of 100,000 contacts with a filter of three clauses and two languages
# stays within 10% of `check` without them. What it does, in one temporary directory:
#   1. cargo build --release (or OUTREACH_BIN); bench/gen-contacts.py writes BENCH_CONTACTS
#      (100000) contacts, and three columns are added the filter reads: last_visit (an ISO date
#      in the last two years), age (5-95, 1% empty), deceased (2% "yes"); B and C read a copy
#      with a fourth, language (60% en or empty, 25% es, 15% es-MX: the shipped campaign's
#      Spanish set), A the copy without it;
#   2. BENCH_ROUNDS (5) rounds, each running `check --format json` of the shipped campaign on them
#      without the filter (A) and with it (B), alternating which goes first, under /usr/bin/time;
#      every run must read every row; B must skip the same rows as A by the rules that come
#      before the audience's, leave out no more than the rows that fail the filter as worked out
#      here from the CSV, and have no more due than A (tests/audience.rs checks the filter's
#      results row by row);
#   3. a table of each round and the medians, B's and C's time over A's (C: a filter of the same
#      kinds that keeps every row, so the same messages are rendered: the filter's own cost).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
N=${BENCH_CONTACTS:-100000}
ROUNDS=${BENCH_ROUNDS:-5}
export OUTREACH_NOW=${OUTREACH_NOW:-2026-11-25T18:00:00Z}
FILTER='last_visit < today - 180d and age >= 18 and deceased != "yes"'
# The same three kinds of comparison (a date, a number, text) keeping every row: the filter's
# own cost, with the same messages rendered as without it.
EVERYONE='last_visit >= 2000-01-01 and (age < 1000 or age = "") and deceased != "x"'

say() { printf '==> %s\n' "$*" >&2; }
command -v /usr/bin/time >/dev/null || { say "installing GNU time"; apt-get install -y -qq time >/dev/null; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/outreach-audience-bench.XXXXXX")
if [[ ${BENCH_KEEP:-0} == 1 ]]; then trap 'say "kept $TMP"' EXIT; else trap 'rm -rf "$TMP"' EXIT; fi
source "$ROOT/bench/binary.sh"

say "generating $N contacts with last_visit, age and deceased"
python3 bench/gen-contacts.py "$TMP/plain.csv" -n "$N" --seed 2026 >/dev/null
expected=$(python3 - "$TMP" <<'PY'
import csv, datetime, random, sys
tmp = sys.argv[1]
rng = random.Random(21)
today = datetime.date(2026, 11, 25)
cut = today - datetime.timedelta(days=180)
left_out = 0
with open(f"{tmp}/plain.csv", newline="") as src, \
        open(f"{tmp}/contacts.csv", "w", newline="") as dst, \
        open(f"{tmp}/languages.csv", "w", newline="") as both:
    r, w, wl = csv.reader(src), csv.writer(dst), csv.writer(both)
    header = next(r) + ["last_visit", "age", "deceased"]
    w.writerow(header)
    wl.writerow(header + ["language"])
    for row in r:
        visit = today - datetime.timedelta(days=rng.randrange(730))
        age = "" if rng.random() < 0.01 else str(rng.randrange(5, 96))
        deceased = "yes" if rng.random() < 0.02 else ""
        w.writerow(row + [visit.isoformat(), age, deceased])
        x = rng.random()
        language = "es" if x < 0.25 else "es-MX" if x < 0.40 else "en" if x < 0.70 else ""
        wl.writerow(row + [visit.isoformat(), age, deceased, language])
        if not (visit < cut and age != "" and int(age) >= 18 and deceased != "yes"):
            left_out += 1
print(left_out)
PY
)
sets=(--set "contacts.suppress=[]")
A=(--set "contacts.path=$TMP/contacts.csv")
L=(--set "contacts.path=$TMP/languages.csv")

# run NAME ARGS...: check under /usr/bin/time; leaves NAME.json and NAME.time (wall s, RSS KiB)
run() {
    local name=$1; shift
    /usr/bin/time -f '%e %M' -o "$TMP/$name.time" \
        "$BIN" check campaigns/psoas.toml "${sets[@]}" "$@" --format json >"$TMP/$name.json" || true
}
for round in $(seq 1 "$ROUNDS"); do
    say "round $round"
    if (( round % 2 )); then
        run "a$round" "${A[@]}"; run "b$round" "${L[@]}" --set "contacts.where=$FILTER"
        run "c$round" "${L[@]}" --set "contacts.where=$EVERYONE"
    else
        run "c$round" "${L[@]}" --set "contacts.where=$EVERYONE"
        run "b$round" "${L[@]}" --set "contacts.where=$FILTER"; run "a$round" "${A[@]}"
    fi
done

python3 - "$TMP" "$ROUNDS" "$N" "$expected" <<'PY'
import json, statistics, sys
tmp, rounds, n, expected = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
def read(name):
    wall, rss = open(f"{tmp}/{name}.time").read().split()
    return float(wall), int(rss) / 1024, json.load(open(f"{tmp}/{name}.json"))
print(f"{n} contacts; filter: last_visit < today - 180d and age >= 18 and deceased != \"yes\"")
print("B and C with a language column (en, es, es-MX); C: a filter of the same three kinds that keeps every row")
print(f"{'round':<6}{'A: no filter':>14}{'B: filter':>12}{'C: all in':>12}{'B / A':>8}{'C / A':>8}{'A RSS':>10}{'C RSS':>10}")
a_walls, b_walls, c_walls = [], [], []
for i in range(1, rounds + 1):
    a, ar, av = read(f"a{i}")
    b, br, bv = read(f"b{i}")
    for v in (av, bv):
        if v["rows"] != n:
            sys.exit(f"FAIL round {i}: {v['rows']} rows read")
    # The rules before the audience's (channel choice, address, row errors, duplicates) skip the
    # same rows in A and B; of the rest, B leaves out those the filter does, which are at most the
    # rows worked out here, and sends a subset of A's.
    earlier = ["not_chosen", "invalid_address", "row_error", "no_address", "duplicate"]
    for ca, cb in zip(av["channels"], bv["channels"]):
        left = cb["skipped"].get("not_in_audience", 0)
        same = all(ca["skipped"].get(k, 0) == cb["skipped"].get(k, 0) for k in earlier)
        if not same or not 0 < left <= expected or cb["due"] > ca["due"]:
            sys.exit(f"FAIL round {i}, {cb['channel']}: A {ca}, B {cb}, expected <= {expected} left out")
    c, cr, cv = read(f"c{i}")
    if [x["due"] for x in cv["channels"]] != [x["due"] for x in av["channels"]]:
        sys.exit(f"FAIL round {i}: C must keep every row A sends")
    langs = {l["language"] for l in cv.get("languages", [])}
    if not {"en", "es"} <= langs:
        sys.exit(f"FAIL round {i}: C must render both languages, got {langs}")
    a_walls.append(a); b_walls.append(b); c_walls.append(c)
    print(f"{i:<6}{a:>12.2f} s{b:>10.2f} s{c:>10.2f} s{b / a:>8.3f}{c / a:>8.3f}{ar:>7.1f} MiB{cr:>6.1f} MiB")
ma, mb, mc = (statistics.median(w) for w in (a_walls, b_walls, c_walls))
print(f"{'median':<6}{ma:>12.2f} s{mb:>10.2f} s{mc:>10.2f} s{mb / ma:>8.3f}{mc / ma:>8.3f}")
left = {c["channel"]: c["skipped"]["not_in_audience"] for c in read("b1")[2]["channels"]}
print(f"verified: every run read {n} rows; the filter left out {left} of the rows that reached it ({expected} rows fail it in the CSV)")
print(f"bar: within 10%: {'PASS' if max(mb, mc) / ma <= 1.10 else 'MISS'} (B {(mb / ma - 1) * 100:+.1f}%, C {(mc / ma - 1) * 100:+.1f}%)")
PY

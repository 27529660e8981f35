#!/usr/bin/env bash
# Benchmark of `outreach check` against mailmerge 2.3.0's dry run, on the same generated contacts.
#
#   bash bench/check.sh
#
# Target (the issue): `outreach check` on 100,000 generated contacts renders every message of both
# channels at >= 20,000 contacts/s with peak RSS under 200 MB, on this 2-core machine.
#
# What it does:
#   a. a venv at bench/.venv (reused when it already has mailmerge 2.3.0) with mailmerge==2.3.0;
#   b. cargo build --release;
#   c. bench/gen-contacts.py writes BENCH_CONTACTS (100000) contacts into a mktemp dir;
#   d. `outreach check --format json` on them, BENCH_RUNS (3) times under /usr/bin/time -v: best
#      wall time, max peak RSS; every run's JSON must account for every row on every channel and
#      its due counts must equal those worked out independently from the CSV here (channel
#      choice and consent), so every message that should go was rendered;
#   e. mailmerge --dry-run --no-limit on the same CSV with a text email template made from the
#      text part of the outreach email (outreach preview), stdout to /dev/null, BENCH_RUNS times.
#      A 10,000-row probe runs first; if it predicts more than 5 minutes a run for all rows, the
#      probe's rate is reported instead (extrapolated; the table says so);
#   f. a table: tool, contacts, messages, wall s, contacts/s, messages/s, peak RSS, and ratios.
#
# Both tools run BENCH_RUNS times and the best wall time counts (this VM's timings vary by 10-25%
# from run to run); mailmerge takes about a minute a run on 100,000 rows, so the whole benchmark
# takes about 5 minutes.
#
# Knobs (environment): BENCH_CONTACTS=100000 BENCH_RUNS=3 BENCH_MAILMERGE_RUNS=$BENCH_RUNS
# BENCH_SEED=2026 BENCH_MAILMERGE=1 (0 skips mailmerge) BENCH_STRICT=0 (1: exit 1 when the
# target is missed) BENCH_KEEP=0 (1: keep the temp dir). OUTREACH_NOW defaults to a US midday.
# Nothing is written in the repository except bench/.venv and the release build in target/.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

N=${BENCH_CONTACTS:-100000}
RUNS=${BENCH_RUNS:-3}
SEED=${BENCH_SEED:-2026}
DO_MAILMERGE=${BENCH_MAILMERGE:-1}
MM_RUNS=${BENCH_MAILMERGE_RUNS:-$RUNS}
STRICT=${BENCH_STRICT:-0}
VENV="$ROOT/bench/.venv"
MAILMERGE_VERSION=2.3.0
MAILMERGE_PROBE=10000
MAILMERGE_BUDGET=300          # seconds: over that for all rows, report the probe's rate
TARGET_RATE=20000             # contacts/s
TARGET_RSS_MB=200
# Midday in the US: no SMS is in quiet hours (they would still be rendered, as deferred).
export OUTREACH_NOW=${OUTREACH_NOW:-2026-11-25T18:00:00Z}

say() { printf '==> %s\n' "$*" >&2; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/outreach-bench.XXXXXX")
if [[ ${BENCH_KEEP:-0} == 1 ]]; then
    trap 'say "kept $TMP"' EXIT
else
    trap 'rm -rf "$TMP"' EXIT
fi

# --- tools -----------------------------------------------------------------------------------
if [[ ! -x /usr/bin/time ]]; then
    say "installing GNU time (/usr/bin/time)"
    apt-get install -y time >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y time >/dev/null; }
fi

# --- a. venv with mailmerge ------------------------------------------------------------------
if [[ $DO_MAILMERGE == 1 ]]; then
    if [[ -x $VENV/bin/mailmerge ]] \
        && "$VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('mailmerge') != '$MAILMERGE_VERSION')" 2>/dev/null; then
        say "reusing $VENV (mailmerge $MAILMERGE_VERSION)"
    else
        say "creating $VENV with mailmerge==$MAILMERGE_VERSION"
        python3 -m venv "$VENV"
        "$VENV/bin/pip" install --quiet --disable-pip-version-check "mailmerge==$MAILMERGE_VERSION"
    fi
fi

# --- b. build ----------------------------------------------------------------------------------
say "cargo build --release"
cargo build --release --quiet
OUTREACH="$ROOT/target/release/outreach"

# --- c. contacts -------------------------------------------------------------------------------
CSV="$TMP/contacts.csv"
say "generating $N contacts (seed $SEED) into $CSV"
python3 bench/gen-contacts.py "$CSV" --count "$N" --seed "$SEED"

# Overrides: the generated contacts, no suppression list, and the token key in the temp dir
# (not the repo's .outreach/).
SETS=(--set "contacts.path=$CSV" --set "contacts.suppress=[]" --set "sending.state_dir=$TMP/state")

# --- d. outreach check -------------------------------------------------------------------------
for i in $(seq 1 "$RUNS"); do
    say "outreach check, run $i of $RUNS"
    rc=0
    /usr/bin/time -v -o "$TMP/outreach-time.$i" \
        "$OUTREACH" check campaigns/psoas.toml --format json "${SETS[@]}" \
        >"$TMP/outreach-report.$i.json" 2>"$TMP/outreach-stderr.$i" || rc=$?
    if [[ $rc != 0 ]]; then
        say "outreach check exited $rc; stderr:"
        head -c 4000 "$TMP/outreach-stderr.$i" >&2
        exit 1
    fi
done

# Verifies every run's report against the CSV and prints the summary: the best run's numbers.
python3 - "$CSV" "$TMP" "$RUNS" >"$TMP/outreach.summary" <<'PY'
import csv, json, re, sys
from datetime import date

path, tmp, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])

def consent(v):
    v = v.strip().lower()
    if v in ("yes", "y", "true", "1", "x"):
        return True
    if v in ("", "no", "n", "false", "0"):
        return False
    date.fromisoformat(v[:10])  # the generator writes no other values
    return True

rows = 0
expected = {"email": 0, "sms": 0}
with open(path, encoding="utf-8", newline="") as f:
    for r in csv.DictReader(f):
        rows += 1
        choice = r["channel"].strip().lower()
        for ch, col, addr in (("email", "email_consent", "email"), ("sms", "sms_consent", "phone")):
            if choice in ("", "both", "all", "any", ch) and r[addr].strip() and consent(r[col]):
                expected[ch] += 1

def seconds(s):
    parts = [float(p) for p in s.split(":")]
    t = 0.0
    for p in parts:
        t = t * 60 + p
    return t

best = None
peak_kb = 0
for i in range(1, runs + 1):
    with open(f"{tmp}/outreach-report.{i}.json") as f:
        raw = f.read()
    report = json.loads(raw)
    problems = []
    if report["rows"] != rows:
        problems.append(f"rows {report['rows']} != {rows} in the CSV")
    if report["rows_with_problems"] or report["errors"]:
        problems.append(f"{report['rows_with_problems']} rows with problems, "
                        f"{len(report['errors'])} errors (first: {report['errors'][:1]})")
    messages = 0
    skipped = 0
    per = {}
    for t in report["channels"]:
        ch = t["channel"]
        due = t["due"]
        deferred = sum(t["deferred"].values())
        sk = sum(t["skipped"].values())
        if due + deferred + sk != rows:
            problems.append(f"{ch}: due {due} + deferred {deferred} + skipped {sk} != {rows} rows")
        if due + deferred != expected[ch]:
            problems.append(f"{ch}: {due + deferred} would go, the CSV says {expected[ch]}")
        messages += due + deferred
        skipped += sk
        per[ch] = (due, deferred, sk)
    if sorted(per) != ["email", "sms"]:
        problems.append(f"channels {sorted(per)}, expected email and sms")
    if problems:
        sys.exit(f"outreach check run {i}: the report does not account for every contact:\n  "
                 + "\n  ".join(problems))
    with open(f"{tmp}/outreach-time.{i}") as f:
        timing = f.read()
    wall = seconds(re.search(r"Elapsed \(wall clock\) time.*: (\S+)", timing).group(1))
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", timing).group(1))
    user = float(re.search(r"User time \(seconds\): (\S+)", timing).group(1))
    system = float(re.search(r"System time \(seconds\): (\S+)", timing).group(1))
    peak_kb = max(peak_kb, rss)
    print(f"run {i}: wall {wall:.2f} s, cpu {user + system:.2f} s, peak RSS {rss / 1024:.1f} MiB, "
          f"report {len(raw)} bytes, {len(report['warnings'])} warnings", file=sys.stderr)
    if best is None or wall < best[0]:
        best = (wall, messages, skipped, per)

wall, messages, skipped, per = best
detail = ", ".join(f"{ch} {d} due/{df} deferred/{s} skipped" for ch, (d, df, s) in per.items())
print(f"verified: {rows} rows x 2 channels = {messages} messages rendered + {skipped} skipped "
      f"({detail})", file=sys.stderr)
print(rows, messages, f"{wall:.3f}", peak_kb)
PY
read -r O_ROWS O_MSGS O_WALL O_KB <"$TMP/outreach.summary"

# --- e. mailmerge --dry-run ------------------------------------------------------------------
M_NOTE=""
if [[ $DO_MAILMERGE == 1 ]]; then
    MM="$TMP/mailmerge"
    mkdir -p "$MM"
    # The template: the text part of the first contact's outreach email, as `outreach preview`
    # prints it, with the name, address and unsubscribe token turned into jinja2 fields. Only the
    # text part: outreach also renders an HTML part and an SMS per contact, so this favours
    # mailmerge.
    FIRST_ID=$(python3 -c 'import csv,sys; print(next(csv.DictReader(open(sys.argv[1], encoding="utf-8")))["id"])' "$CSV")
    "$OUTREACH" preview campaigns/psoas.toml --contact "$FIRST_ID" --channel email "${SETS[@]}" \
        >"$MM/preview.txt"
    python3 - "$CSV" "$MM/preview.txt" "$MM/mailmerge_template.txt" <<'PY'
import csv, re, sys

contacts, preview, out = sys.argv[1:4]
first = next(csv.DictReader(open(contacts, encoding="utf-8")))
text = open(preview, encoding="utf-8").read()
m = re.search(r"^=== email to .*===\n", text, re.M)
if not m:
    sys.exit(f"{preview}: no '=== email to ... ===' section in outreach preview's output")
section = text[m.end():]
section = re.split(r"^=== ", section, maxsplit=1, flags=re.M)[0]
head, sep, body = section.partition("\n\n")
if not sep:
    sys.exit(f"{preview}: no blank line after the email headers")

# Headers: keep those a sender writes; mailmerge adds Date, MIME-Version and Content-Type itself.
keep = ("from", "reply-to", "subject", "list-unsubscribe", "list-unsubscribe-post")
headers, current = [], None
for line in head.splitlines():
    if line[:1] in (" ", "\t"):
        if current is not None:
            headers[-1] += "\n" + line
        continue
    name = line.split(":", 1)[0].strip().lower()
    current = name if name in keep else None
    if current:
        headers.append(line)
token = re.search(r"unsubscribe\?t=([A-Za-z0-9_-]+)", text)
for part in (body, "\n".join(headers)):
    if "{{" in part or "{%" in part or "{#" in part:
        sys.exit("the rendered email contains jinja2 syntax; escape it first")
headers.insert(0, 'To: "{{ first_name }} {{ last_name }}" <{{ email }}>')
hi = f"Hi {first['first_name'] or 'there'},"
if hi not in body:
    sys.exit(f"{preview}: the greeting {hi!r} is not in the email text")
body = body.replace(hi, 'Hi {{ first_name or "there" }},', 1)
template = "\n".join(headers) + "\n\n" + body
if token:
    template = template.replace(token.group(1), "{{ id }}")
open(out, "w", encoding="utf-8").write(template)
PY
    cat >"$MM/mailmerge_server.conf" <<'EOF'
# A dry run contacts no server; mailmerge still requires this file.
[smtp_server]
host = localhost
port = 25
ratelimit = 0
EOF
    head -n $((MAILMERGE_PROBE + 1)) "$CSV" >"$MM/probe.csv"
    PROBE_ROWS=$(( N < MAILMERGE_PROBE ? N : MAILMERGE_PROBE ))

    run_mailmerge() { # DATABASE ROWS TAG
        say "mailmerge $MAILMERGE_VERSION --dry-run on $2 rows"
        /usr/bin/time -v -o "$MM/time.$3" "$VENV/bin/mailmerge" --dry-run --no-limit \
            --template "$MM/mailmerge_template.txt" --database "$1" \
            --config "$MM/mailmerge_server.conf" >/dev/null 2>"$MM/stderr.$3" || {
            say "mailmerge failed; stderr:"; head -c 4000 "$MM/stderr.$3" >&2; exit 1; }
        # A row it cannot render stops it (non-zero exit); and the last row is message ROWS.
        "$VENV/bin/mailmerge" --dry-run --no-limit --resume "$2" --output-format text \
            --template "$MM/mailmerge_template.txt" --database "$1" \
            --config "$MM/mailmerge_server.conf" 2>/dev/null \
            | grep -cx ">>> message $2 sent" >/dev/null || { say "mailmerge did not render message $2"; exit 1; }
    }
    wall_of() { python3 -c '
import re, sys
t = open(sys.argv[1]).read()
w = 0.0
for p in re.search(r"Elapsed \(wall clock\) time.*: (\S+)", t).group(1).split(":"):
    w = w * 60 + float(p)
print(f"{w:.3f}", re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1))' "$1"; }

    run_mailmerge "$MM/probe.csv" "$PROBE_ROWS" probe
    read -r P_WALL P_KB < <(wall_of "$MM/time.probe")
    PREDICTED=$(python3 -c "print(round($P_WALL * $N / $PROBE_ROWS))")
    if (( N > PROBE_ROWS )) && (( PREDICTED > MAILMERGE_BUDGET )); then
        M_ROWS=$PROBE_ROWS M_WALL=$P_WALL M_KB=$P_KB
        M_NOTE="mailmerge ran on the first $PROBE_ROWS rows only (all $N predicted at ${PREDICTED} s); its rate is extrapolated"
    elif (( N > PROBE_ROWS )); then
        M_ROWS=$N M_WALL="" M_KB=0
        for i in $(seq 1 "$MM_RUNS"); do
            run_mailmerge "$CSV" "$N" "full.$i"
            read -r wall kb < <(wall_of "$MM/time.full.$i")
            say "mailmerge run $i: wall $wall s, peak RSS $((kb / 1024)) MiB"
            if [[ -z $M_WALL ]] || python3 -c "import sys; sys.exit(not $wall < $M_WALL)"; then
                M_WALL=$wall
            fi
            if (( kb > M_KB )); then M_KB=$kb; fi
        done
    else
        M_ROWS=$PROBE_ROWS M_WALL=$P_WALL M_KB=$P_KB MM_RUNS=1
    fi
fi

# --- f. the table ------------------------------------------------------------------------------
met=0
(python3 - "$O_ROWS" "$O_MSGS" "$O_WALL" "$O_KB" "$RUNS" \
    "${M_ROWS:-0}" "${M_WALL:-0}" "${M_KB:-0}" "$TARGET_RATE" "$TARGET_RSS_MB" "$M_NOTE" "$MM_RUNS" <<'PY'
import subprocess, sys
o_rows, o_msgs, o_wall, o_kb, runs, m_rows, m_wall, m_kb, t_rate, t_rss = sys.argv[1:11]
note, mm_runs = sys.argv[11], 1 if sys.argv[11] else int(sys.argv[12])
o_rows, o_msgs, o_kb, runs, m_rows, m_kb = map(int, (o_rows, o_msgs, o_kb, runs, m_rows, m_kb))
o_wall, m_wall, t_rate, t_rss = map(float, (o_wall, m_wall, t_rate, t_rss))

def version():
    try:
        return subprocess.run(["target/release/outreach", "--version"], capture_output=True,
                              text=True).stdout.strip()
    except OSError:
        return "outreach"

rows = [("tool", "contacts", "messages", "wall s", "contacts/s", "messages/s", "peak RSS MiB")]
o_rate, o_mrate = o_rows / o_wall, o_msgs / o_wall
rows.append((f"{version()} check (best of {runs})", f"{o_rows}", f"{o_msgs}", f"{o_wall:.2f}",
             f"{o_rate:,.0f}", f"{o_mrate:,.0f}", f"{o_kb / 1024:.1f}"))
if m_rows:
    m_rate = m_rows / m_wall
    rows.append((f"mailmerge 2.3.0 --dry-run (best of {mm_runs})" + (" *" if note else ""), f"{m_rows}", f"{m_rows}",
                 f"{m_wall:.2f}", f"{m_rate:,.0f}", f"{m_rate:,.0f}", f"{m_kb / 1024:.1f}"))
widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
print()
for n, r in enumerate(rows):
    print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
    if n == 0:
        print("  ".join("-" * w for w in widths))
print()
print("outreach messages: email + SMS that would go (due + deferred), i.e. contacts x 2 channels "
      "minus skipped (channel not chosen, no consent); each email is subject + HTML + text.")
print("mailmerge messages: one text-only email per row (the outreach email's text part).")
if note:
    print(f"* {note}")
if m_rows:
    print(f"ratio outreach/mailmerge: {o_mrate / m_rate:.1f}x messages/s, "
          f"{o_rate / m_rate:.1f}x contacts/s")
ok_rate, ok_rss = o_rate >= t_rate, o_kb / 1024 < t_rss
print(f"target: >= {t_rate:,.0f} contacts/s: {'PASS' if ok_rate else 'FAIL'} ({o_rate:,.0f}); "
      f"peak RSS < {t_rss:.0f} MiB: {'PASS' if ok_rss else 'FAIL'} ({o_kb / 1024:.1f} MiB)")
sys.exit(0 if ok_rate and ok_rss else 3)
PY
) || met=$?
if [[ $STRICT == 1 && $met != 0 ]]; then
    exit 1
fi

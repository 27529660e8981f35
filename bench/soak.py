#!/usr/bin/env python3
"""The soak of bench/soak-postgres.sh: SENDERS `outreach send`s of one email campaign, each
SIGKILLed at random instants and restarted, then run to the end; then the Maildir the SMTP
server filled, held against the PostgreSQL ledger. Standard library only.

    soak.py --bin BIN --senders 3 --kills 60 --seed S --min-ms 200 --max-ms 3000
            --maildir DIR --psql 'psql ARGS...' --out TMP -- SEND_ARGS...

Each sender (a thread) runs `BIN send SEND_ARGS --set sending.state_dir=OUT/host-N/state`
(its own state directory: its own host), sleeps a random MIN..MAX ms (random.Random(seed + N)),
and SIGKILLs it if it is still running (a run that ended by itself must have exited 0), until it
has killed kills/senders (the kills spread evenly); then runs it to the end (exit 0). Then one
more run to the end, which must send nothing. Checks, each a FAIL (exit 1):

- every recipient has at most one message in the Maildir (by the To header), and no message
  is to an address with no ledger row: a duplicate is the never-twice bug;
- every ledger row is `sent` (exactly one message) or `unknown` (at most one); none `sending`;
- the recipients with no message (all `unknown`: claimed, never arrived) and the messages that
  arrived for a recipient not recorded `sent` are each no more than the `unknown` rows;
- every killed run's `runs` row, if it has one, is finished `lost` (or `completed`: killed
  after it ended); every other run `completed`.

Prints one line of figures as JSON on stdout; what happens on stderr.
"""

import argparse
import json
import os
import random
import shlex
import signal
import subprocess
import sys
import threading
import time


def say(*a):
    print("==>", *a, file=sys.stderr, flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", required=True)
    p.add_argument("--senders", type=int, default=3)
    p.add_argument("--kills", type=int, default=60)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--min-ms", type=int, default=200)
    p.add_argument("--max-ms", type=int, default=3000)
    p.add_argument("--maildir", required=True)
    p.add_argument("--psql", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("send_args", nargs=argparse.REMAINDER)
    a = p.parse_args()
    send_args = [x for x in a.send_args if x != "--"]
    psql = shlex.split(a.psql)

    def command(n):
        state = os.path.join(a.out, f"host-{n}", "state")
        return [a.bin, "send", *send_args, "--new-ledger", "--set", f"sending.state_dir={state}",
                "--format", "json"]

    failures = []
    lock = threading.Lock()
    runs = []  # (sender, pid, killed, returncode)

    def spawn(n):
        log = open(os.path.join(a.out, f"host-{n}.stderr"), "ab")
        return subprocess.Popen(command(n), stdout=subprocess.DEVNULL, stderr=log)

    def sender(n, kills):
        rng = random.Random(a.seed + n)
        killed = 0
        while killed < kills:
            child = spawn(n)
            time.sleep(rng.uniform(a.min_ms, a.max_ms) / 1000)
            if child.poll() is None:
                child.send_signal(signal.SIGKILL)
                child.wait()
                killed += 1
                with lock:
                    runs.append((n, child.pid, True, None))
            else:
                with lock:
                    runs.append((n, child.pid, False, child.returncode))
                    if child.returncode != 0:
                        failures.append(f"sender {n}: a run exited {child.returncode}")
        child = spawn(n)
        child.wait()
        with lock:
            runs.append((n, child.pid, False, child.returncode))
            if child.returncode != 0:
                failures.append(f"sender {n}: its last run exited {child.returncode}")

    started = time.monotonic()
    share = [a.kills // a.senders + (1 if n < a.kills % a.senders else 0) for n in range(a.senders)]
    threads = [threading.Thread(target=sender, args=(n, share[n])) for n in range(a.senders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    kill_phase = time.monotonic() - started
    say(f"{sum(share)} kills in {kill_phase:.1f} s; one more run to the end")
    last = subprocess.Popen(command(0), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = last.communicate()
    runs.append((0, last.pid, False, last.returncode))
    if last.returncode != 0:
        failures.append(f"the extra last run exited {last.returncode}: {err.decode()[-2000:]}")
    extra_sent = sum(c["sent"] for c in json.loads(out)["channels"]) if out else -1
    if extra_sent != 0:
        failures.append(f"the extra last run sent {extra_sent}: something was left to send")
    wall = time.monotonic() - started

    # The Maildir: messages per recipient, by the To header's address.
    received = {}
    new = os.path.join(a.maildir, "new")
    for name in os.listdir(new):
        with open(os.path.join(new, name), "rb") as f:
            head = f.read(16384).split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
        to = next((l.split(":", 1)[1] for l in head.split("\r\n") if l.lower().startswith("to:")), None)
        if to is None:
            failures.append(f"{name}: no To header")
            continue
        if "<" in to and ">" in to:
            to = to[to.rindex("<") + 1:to.rindex(">")]
        to = to.strip().lower()
        received[to] = received.get(to, 0) + 1

    def sql(q):
        out = subprocess.run(psql + ["-c", q], check=True, capture_output=True, text=True).stdout
        return [line.split("|") for line in out.splitlines() if line]

    rows = {addr.lower(): state for addr, state in
            sql("SELECT address, state FROM messages WHERE channel = 'email'")}
    states = {}
    for s in rows.values():
        states[s] = states.get(s, 0) + 1
    duplicates = {r: n for r, n in received.items() if n > 1}
    strangers = [r for r in received if r not in rows]
    sent = states.get("sent", 0)
    unknown = states.get("unknown", 0)
    undelivered = unrecorded = 0
    for addr, state in rows.items():
        n = received.get(addr, 0)
        if state == "sent" and n != 1:
            failures.append(f"a row sent with {n} messages")
        elif state == "unknown":
            undelivered += n == 0
            unrecorded += n
        elif state not in ("sent", "unknown"):
            failures.append(f"a row left {state!r}")
    if duplicates:
        failures.append(f"DUPLICATES: {len(duplicates)} recipients got more than one message")
    if strangers:
        failures.append(f"{len(strangers)} messages to addresses with no ledger row")
    if undelivered > unknown or unrecorded > unknown:
        failures.append(f"lost {undelivered} / unrecorded {unrecorded} > unknown {unknown}")

    outcomes = {int(pid): outcome for pid, outcome in sql("SELECT pid, COALESCE(outcome, '(unfinished)') FROM runs")}
    lost = completed_killed = unbegun = 0
    for n, pid, killed, code in runs:
        o = outcomes.get(pid)
        if killed:
            if o == "lost":
                lost += 1
            elif o == "completed":
                completed_killed += 1
            elif o is None:
                unbegun += 1
            else:
                failures.append(f"a killed run (pid {pid}) is {o!r}")
        elif o != "completed":
            failures.append(f"a run not killed (pid {pid}) is {o!r}")
    unfinished = sum(1 for o in outcomes.values() if o == "(unfinished)")
    if unfinished:
        failures.append(f"{unfinished} runs left unfinished")

    figures = dict(
        senders=a.senders, kills=sum(share), runs=len(runs), killed_mid_run=lost,
        killed_before_begin=unbegun, killed_after_end=completed_killed,
        contacts=len(rows), messages=sum(received.values()), sent=sent, unknown=unknown,
        lost=undelivered, unknown_delivered=unrecorded, duplicates=len(duplicates),
        states=states, kill_phase_s=round(kill_phase, 1), wall_s=round(wall, 1), seed=a.seed,
    )
    print(json.dumps(figures))
    for f in failures:
        say("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

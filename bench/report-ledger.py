#!/usr/bin/env python3
"""Fill a ledger that `outreach send` created with one message per contact and channel, for
bench/report.sh.

    python3 bench/report-ledger.py LEDGER CONTACTS.csv

The ledger must hold one campaign (its id and fingerprint are reused) and its first run. Every
contact gets an email and an SMS row (the addresses normalised as outreach does for these
files: emails lower-cased, phones +1 and ten digits): 96% sent over three days (one run a
day), 2% failed for good (half of them with the address in the error, as SMTP servers write
it), 1% to retry, 1% unknown; 1 or 2 segments per SMS. Then, by SQL over those rows: an SMS id
and a receipt for each sent SMS (92% delivered, 4% undelivered with carrier codes 30003 or
30006, the rest pending), returned mail for 3% of sent emails (hard, soft, policy, complaint,
at the address's domain), one-click unsubscribes for 0.5% of emails and STOP replies for 0.3% of
SMS. Deterministic. Standard library only.
"""

import csv
import sqlite3
import sys


def main():
    ledger, contacts = sys.argv[1], sys.argv[2]
    db = sqlite3.connect(ledger)
    db.execute("PRAGMA synchronous = OFF")
    campaign, fingerprint = db.execute("SELECT id, fingerprint FROM campaigns").fetchone()
    days = ["2026-11-25", "2026-11-26", "2026-11-27"]
    db.execute("DELETE FROM runs WHERE campaign = ? AND id > 1", (campaign,))
    db.execute("UPDATE runs SET started_at = ?, finished_at = ?, outcome = 'completed' WHERE id = 1",
               (f"{days[0]}T14:00:00.000000Z", f"{days[0]}T14:03:10.000000Z"))
    for day in days[1:]:
        db.execute("INSERT INTO runs (campaign, pid, started_at, finished_at, outcome, summary) "
                   "VALUES (?, 1, ?, ?, 'completed', '')",
                   (campaign, f"{day}T14:00:00.000000Z", f"{day}T14:02:40.000000Z"))
    runs = [r[0] for r in db.execute("SELECT id FROM runs WHERE campaign = ? ORDER BY id", (campaign,))]

    def rows():
        with open(contacts, newline="", encoding="utf-8-sig") as f:
            for i, c in enumerate(csv.DictReader(f)):
                digits = "".join(ch for ch in c["phone"] if ch.isdigit())
                if len(digits) == 11 and digits[0] == "1":
                    digits = digits[1:]
                for channel, address in (("email", c["email"].strip().lower()), ("sms", "+1" + digits)):
                    k = i * 2 + (channel == "sms")
                    day = k % 3
                    stamp = f"{days[day]}T{14 + k % 9:02d}:{k % 60:02d}:{k * 7 % 60:02d}.000000Z"
                    state, permanent, error, sent_at, segments = "sent", 0, None, stamp, None
                    pick = k % 100
                    if pick < 2:
                        state, permanent, sent_at = "failed", 1, None
                        if channel == "email":
                            error = (f"550 5.1.1 <{address}>: Recipient address rejected" if k % 4 < 2
                                     else "554 5.7.1 Message rejected as spam")
                        else:
                            error = "HTTP 400: Twilio error 21211: invalid 'To' number"
                    elif pick < 3:
                        state, error, sent_at = "failed", "421 4.7.0 try again later", None
                    elif pick < 4:
                        state, error, sent_at = "unknown", "interrupted: the run ended before the outcome was recorded", None
                    if channel == "sms" and state == "sent":
                        segments = 1 + (k % 7 == 0)
                    yield (campaign, channel, address, c["id"], state, permanent, 1,
                           None, error, fingerprint, runs[day], stamp, stamp, sent_at, segments)

    db.executemany(
        "INSERT OR IGNORE INTO messages (campaign, channel, address, contact_id, state, permanent,"
        " attempts, provider_id, last_error, fingerprint, run_id, created_at, updated_at, sent_at,"
        " segments) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows())
    db.executescript("""
        INSERT OR IGNORE INTO sms_parts (provider_id, message, part, parts)
            SELECT 'SM' || printf('%032d', rowid), rowid, 1, 1 FROM messages
            WHERE channel = 'sms' AND state = 'sent';
        INSERT OR IGNORE INTO receipts (provider_id, state, status, code, received_at, updated_at)
            SELECT p.provider_id,
                   CASE WHEN p.message % 25 < 23 THEN 'delivered'
                        WHEN p.message % 25 = 23 THEN 'undelivered' ELSE 'pending' END,
                   CASE WHEN p.message % 25 < 23 THEN 'delivered'
                        WHEN p.message % 25 = 23 THEN 'undelivered' ELSE 'sent' END,
                   CASE WHEN p.message % 25 = 23 THEN
                        CASE WHEN p.message % 2 = 0 THEN '30003' ELSE '30006' END END,
                   m.sent_at, m.sent_at
            FROM sms_parts p JOIN messages m ON m.rowid = p.message;
        INSERT INTO bounces (message, address, kind, status, diagnostic, domain, at)
            SELECT rowid, address,
                   CASE rowid % 4 WHEN 0 THEN 'hard' WHEN 1 THEN 'soft' WHEN 2 THEN 'policy'
                                  ELSE 'complaint' END,
                   CASE rowid % 4 WHEN 0 THEN '5.1.1' WHEN 1 THEN '4.2.2' WHEN 2 THEN '5.7.1'
                                  ELSE NULL END,
                   'bench', substr(address, instr(address, '@') + 1), sent_at
            FROM messages WHERE channel = 'email' AND state = 'sent' AND rowid % 33 = 0;
        INSERT OR IGNORE INTO unsubscribes (message, how, at)
            SELECT rowid, 'one-click', sent_at FROM messages
            WHERE channel = 'email' AND state = 'sent' AND rowid % 200 = 7;
        INSERT OR IGNORE INTO replies (provider_id, campaign, from_number, to_number, body, keyword,
                                       action, received_at)
            SELECT 'IN' || rowid, campaign, address, '+13125550100', 'STOP', 'opt_out', 'suppressed',
                   sent_at FROM messages
            WHERE channel = 'sms' AND state = 'sent' AND rowid % 300 = 11;
    """)
    db.commit()
    n = db.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
    print(f"ledger: {n:,} messages", file=sys.stderr)


if __name__ == "__main__":
    main()

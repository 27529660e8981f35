#!/usr/bin/env python3
"""Pre-built requests for bench/listen.sh, read from a ledger that a `send` filled.

    python3 bench/listen-requests.py LEDGER OUT_DIR --base-url URL --campaign ID --token TOKEN
        [--account SID] [--receipts N] [--unsubscribes N]

Writes, in OUT_DIR:
  receipts.http      N Twilio status callbacks (form POSTs to {base}/sms/{campaign}/status), one
                     per provider id of `sms_parts` (each distinct), MessageStatus=delivered,
                     each signed as Twilio signs: X-Twilio-Signature = base64(HMAC-SHA1(token,
                     the public URL + each parameter's name and value, sorted by name));
  unsubscribes.http  N one-click unsubscribes (RFC 8058: POST {base}/unsubscribe/{token}, body
                     List-Unsubscribe=One-Click), one per email token of `tokens`;
  mixed.http         both, a receipt ten to an unsubscribe (the SIGKILL phase);
  receipts.ids, unsubscribes.ids, mixed.ids
                     what each request of the file above is, one a line in the file's order:
                     `receipt PROVIDER_ID` or `unsubscribe TOKEN`.

Each file holds whole HTTP/1.1 requests one after the other (examples/listen_load.rs sends
them). Standard library only.
"""

import argparse
import base64
import hashlib
import hmac
import os
import sqlite3
import sys
import urllib.parse


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("ledger")
    p.add_argument("out")
    p.add_argument("--base-url", required=True)
    p.add_argument("--campaign", required=True)
    p.add_argument("--token", required=True, help="the Twilio auth token the receipts are signed with")
    p.add_argument("--account", default="AC" + "a" * 32)
    p.add_argument("--from-number", default="+13125550100")
    p.add_argument("--receipts", type=int, default=100_000)
    p.add_argument("--unsubscribes", type=int, default=10_000)
    a = p.parse_args()

    base = a.base_url.rstrip("/")
    parsed = urllib.parse.urlsplit(base)
    host, prefix = parsed.netloc, parsed.path
    db = sqlite3.connect(f"file:{a.ledger}?mode=ro", uri=True)
    parts = db.execute(
        "SELECT p.provider_id, m.address FROM sms_parts p JOIN messages m ON m.rowid = p.message "
        "WHERE m.campaign = ? ORDER BY p.message, p.part LIMIT ?",
        (a.campaign, a.receipts),
    ).fetchall()
    tokens = db.execute(
        "SELECT t.token FROM tokens t JOIN messages m ON m.rowid = t.message "
        "WHERE m.campaign = ? ORDER BY t.message LIMIT ?",
        (a.campaign, a.unsubscribes),
    ).fetchall()
    if len(parts) < a.receipts or len(tokens) < a.unsubscribes:
        sys.exit(f"{a.ledger}: {len(parts)} SMS ids and {len(tokens)} email tokens of campaign "
                 f"{a.campaign}; {a.receipts} and {a.unsubscribes} wanted")

    key = a.token.encode()
    status_path = f"{prefix}/sms/{urllib.parse.quote(a.campaign)}/status"
    status_url = f"{parsed.scheme}://{host}{status_path}"

    def receipt(provider_id, to):
        params = [
            ("AccountSid", a.account),
            ("ApiVersion", "2010-04-01"),
            ("From", a.from_number),
            ("MessageSid", provider_id),
            ("MessageStatus", "delivered"),
            ("SmsSid", provider_id),
            ("SmsStatus", "delivered"),
            ("To", to),
        ]
        signed = status_url + "".join(k + v for k, v in sorted(params))
        signature = base64.b64encode(hmac.new(key, signed.encode(), hashlib.sha1).digest()).decode()
        return request(status_path, urllib.parse.urlencode(params),
                       [("X-Twilio-Signature", signature), ("I-Twilio-Idempotency-Token", provider_id)])

    def unsubscribe(token):
        return request(f"{prefix}/unsubscribe/{token}", "List-Unsubscribe=One-Click", [])

    def request(path, body, headers):
        body = body.encode()
        head = [f"POST {path} HTTP/1.1", f"Host: {host}", "User-Agent: TwilioProxy/1.1",
                "Content-Type: application/x-www-form-urlencoded", f"Content-Length: {len(body)}"]
        head += [f"{k}: {v}" for k, v in headers]
        return ("\r\n".join(head) + "\r\n\r\n").encode() + body

    receipts = [(receipt(pid, to), f"receipt {pid}") for pid, to in parts]
    unsubs = [(unsubscribe(t), f"unsubscribe {t}") for (t,) in tokens]
    mixed, u = [], iter(unsubs)
    for i, r in enumerate(receipts):
        mixed.append(r)
        if i % 10 == 9:
            mixed.extend(x for x in [next(u, None)] if x)
    mixed.extend(u)

    os.makedirs(a.out, exist_ok=True)
    for name, reqs in (("receipts", receipts), ("unsubscribes", unsubs), ("mixed", mixed)):
        with open(os.path.join(a.out, f"{name}.http"), "wb") as f:
            for raw, _ in reqs:
                f.write(raw)
        with open(os.path.join(a.out, f"{name}.ids"), "w") as f:
            f.write("".join(what + "\n" for _, what in reqs))
    print(f"{len(receipts)} receipts, {len(unsubs)} unsubscribes, {len(mixed)} mixed", file=sys.stderr)


if __name__ == "__main__":
    main()
